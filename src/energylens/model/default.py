"""The coefficient file shipped with the package (fitted by the project on public real data).

The model file layer (model/modelfile.py) reads it; this module names it for callers."""
from __future__ import annotations

from .modelfile import DEFAULT_MODEL_FILE, default_model, default_model_dict

__all__ = ["DEFAULT_MODEL_FILE", "default_model", "default_model_dict"]
