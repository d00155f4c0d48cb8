"""The coefficient file shipped with the package (fitted by the project on public real data)."""
from __future__ import annotations

import json
from importlib import resources

DEFAULT_MODEL_FILE = "default.json"


def default_model_dict() -> dict:
    return json.loads(resources.files("energylens.model").joinpath("defaults", DEFAULT_MODEL_FILE).read_text())


def default_model(estimator: bool = False):
    from .modelfile import model_from_dict

    return model_from_dict(default_model_dict(), path="built-in default model", estimator=estimator)
