"""Hardware, model and task catalogs shipped with the package and extendable with TOML files."""
from __future__ import annotations

from .hardware import GpuSpec, HardwareCatalog, hardware_catalog
from .models import ModelCatalog, ModelSpec, model_catalog
from .tasks import task_defaults

__all__ = ["GpuSpec", "HardwareCatalog", "hardware_catalog", "ModelSpec", "ModelCatalog",
           "model_catalog", "model_from_hf_config", "task_defaults"]


def model_from_hf_config(path, name: str | None = None) -> ModelSpec:
    """A ModelSpec counted from a Hugging Face config.json the way its architecture defines it
    (catalog/hf_config.py); anything it cannot count with confidence is in `warnings`."""
    from .hf_config import read_hf_config  # loaded when a config is read, not with every command

    return read_hf_config(path, name)
