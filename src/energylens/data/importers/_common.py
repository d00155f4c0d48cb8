"""Helpers shared by importers."""
from __future__ import annotations

from pathlib import Path

from ...catalog.tasks import task_defaults
from ...errors import DataError


def require(obj: dict, key: str, path: Path, what: str = "field"):
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(f"missing {what} '{key}'", path=path)
    return obj[key]


def assumed_input(task: str, modality: str = "text", model: str | None = None) -> tuple[float, float, str]:
    """Mean prompt tokens and visual tokens among them for a benchmark task (assumptions; see
    catalog/data/tasks.toml). A model whose encoder gives a fixed token count per image (model
    catalog `image_tokens`) replaces the task's image assumption."""
    from ...catalog import model_catalog

    d = task_defaults(task)
    if d is None:
        d = task_defaults("mllm-chat" if modality != "text" else "chat")
    total = float(d["input_tokens"])
    visual = float(d.get("video_tokens" if modality == "video" else "image_tokens", 0) or 0) if modality != "text" else 0.0
    source = f"assumed:{task}"
    if modality == "image" and model is not None and model in model_catalog():
        per_image = model_catalog().get(model).image_tokens
        if per_image is not None:
            total, visual = total - visual + per_image, float(per_image)
            source += "+model-image-tokens"
    return total, visual, source


PRECISION = {"bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "fp16": "fp16", "fp8": "fp8",
             "float8": "fp8", "mxfp4": "mxfp4", "int8": "int8", "int4": "int4"}
ARCH = {"dense transformer": "dense", "moe": "moe", "mamba-transformer hybrid": "hybrid", "mamba": "ssm"}
