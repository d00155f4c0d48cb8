"""Helpers shared by importers."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...catalog import model_catalog
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


WITHOUT_ENERGY = "without energy (listed without a measurement)"


# Every importer says what it left out: the frame it returns carries attrs["rows_read"] (source rows or
# configurations seen) and attrs["dropped"] ({reason: count}); `drop_summary` words them for the CLI.
def drop_rows(raw: pd.DataFrame, bad, reason: str, dropped: dict) -> pd.DataFrame:
    """`raw` without the rows where `bad` is true, counted under `reason` in `dropped`."""
    bad = pd.Series(bad, index=raw.index).fillna(True).astype(bool)
    if bad.any():
        dropped[reason] = dropped.get(reason, 0) + int(bad.sum())
    return raw[~bad].reset_index(drop=True)


def with_drops(df: pd.DataFrame, rows_read: int, dropped: dict) -> pd.DataFrame:
    df.attrs["rows_read"] = int(rows_read)
    df.attrs["dropped"] = {k: int(v) for k, v in dropped.items() if v}
    return df


def drop_summary(df: pd.DataFrame) -> str:
    """'dropped 1000 of 1260 rows: 1000 without power (no energy)', or 'dropped none of 838 rows'."""
    read, dropped = df.attrs.get("rows_read"), df.attrs.get("dropped") or {}
    if read is None:
        return ""
    if not dropped:
        return f"dropped none of {read} rows"
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items(), key=lambda kv: -kv[1]))
    return f"dropped {sum(dropped.values())} of {read} rows: {why}"
