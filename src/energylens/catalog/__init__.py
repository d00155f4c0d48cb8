"""Hardware, model and task catalogs shipped with the package and extendable with TOML files."""
from .hardware import GpuSpec, HardwareCatalog, hardware_catalog
from .hf_config import model_from_hf_config
from .models import ModelCatalog, ModelSpec, model_catalog
from .tasks import task_defaults

__all__ = ["GpuSpec", "HardwareCatalog", "hardware_catalog", "ModelSpec", "ModelCatalog",
           "model_catalog", "model_from_hf_config", "task_defaults"]
