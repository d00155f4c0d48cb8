"""The profiling-record schema: one row = one measured configuration (docs/SCHEMA.md).

`validate` checks a table against the schema and fills model and hardware descriptors from the
catalogs where they are absent. The first violation raises a DataError naming file, row and column.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..catalog.hardware import HARDWARE_COLUMNS, hardware_catalog
from ..catalog.models import ARCHS, MODEL_COLUMNS, model_catalog
from ..errors import CatalogError, DataError

PRECISIONS = ("bf16", "fp16", "fp32", "fp8", "int8", "int4", "mxfp4")
MODALITIES = ("text", "image", "video")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "str", "int", "float"
    unit: str
    doc: str
    required: bool = False
    default: object = None
    minimum: float | None = None  # inclusive
    positive: bool = False  # strictly > 0


COLUMNS: tuple[Column, ...] = (
    # configuration
    Column("model", "str", "", "model name (catalog name or Hugging Face id)", required=True),
    Column("gpu", "str", "", "accelerator name, resolved to its canonical catalog name", required=True),
    Column("num_gpus", "int", "GPUs", "GPUs serving the configuration", required=True, minimum=1),
    Column("tp", "int", "", "tensor-parallel degree", required=True, minimum=1),
    Column("pp", "int", "", "pipeline-parallel degree", required=True, minimum=1),
    Column("ep", "int", "", "expert-parallel degree", default=1, minimum=1),
    Column("dp", "int", "", "data-parallel replicas", default=1, minimum=1),
    Column("batch_size", "int", "requests", "max concurrent requests (max_num_seqs)", required=True, minimum=1),
    Column("input_tokens", "float", "tokens", "mean prompt tokens per request, image/video tokens included", required=True, minimum=0),
    Column("output_tokens", "float", "tokens", "mean generated tokens per request", required=True, positive=True),
    Column("visual_tokens", "float", "tokens", "image/video tokens among input_tokens (default: the task's assumption)", minimum=0),
    Column("avg_batch_size", "float", "requests", "measured mean running batch", positive=True),
    Column("task", "str", "", "workload / request dataset"),
    Column("precision", "str", "", "weight precision: " + ", ".join(PRECISIONS)),
    Column("modality", "str", "", "input modality: " + ", ".join(MODALITIES), default="text"),
    # model descriptors
    Column("arch", "str", "", "dense, moe, ssm or hybrid"),
    Column("params_total_b", "float", "1e9 params", "all parameters", positive=True),
    Column("params_active_b", "float", "1e9 params", "parameters active per token", positive=True),
    Column("layers", "float", "", "transformer (or mixer) layers", minimum=0),
    Column("hidden_size", "float", "", "model width", minimum=0),
    Column("heads", "float", "", "attention heads", minimum=0),
    Column("kv_heads", "float", "", "key/value heads", minimum=0),
    Column("head_dim", "float", "", "attention head width", minimum=0),
    Column("experts", "float", "", "routed experts (0 dense)", minimum=0),
    Column("active_experts", "float", "", "experts active per token (0 dense)", minimum=0),
    Column("attention_layers", "float", "", "layers with a KV cache (hybrids)", minimum=0),
    Column("vision_params_b", "float", "1e9 params", "vision/audio encoder size", minimum=0),
    Column("ssm_state_mb", "float", "MB", "recurrent (SSM) state per sequence, all layers (hybrids)", minimum=0),
    # hardware descriptors
    Column("gpu_peak_tflops", "float", "TFLOP/s", "dense BF16 peak", positive=True),
    Column("gpu_mem_bw_tbs", "float", "TB/s", "memory bandwidth", positive=True),
    Column("gpu_mem_gb", "float", "GB", "device memory", positive=True),
    Column("gpu_tdp_w", "float", "W", "board power limit", positive=True),
    Column("gpu_idle_w", "float", "W", "idle power", minimum=0),
    Column("gpu_link_gbs", "float", "GB/s", "intra-node interconnect per GPU", positive=True),
    # measurements
    Column("energy_request_j", "float", "J", "energy per request, prefill included (all GPUs)", positive=True),
    Column("energy_token_j", "float", "J", "energy per output token (all GPUs)", positive=True),
    Column("prefill_energy_j", "float", "J", "prefill energy per request", positive=True),
    Column("decode_energy_j", "float", "J", "decode energy per request", positive=True),
    Column("ttft_s", "float", "s", "time to first token", positive=True),
    Column("itl_s", "float", "s", "inter-token latency", positive=True),
    Column("avg_power_w", "float", "W", "mean power of all GPUs", positive=True),
    Column("throughput_tok_s", "float", "tokens/s", "output-token throughput", positive=True),
    Column("source", "str", "", "where the row came from"),
)
BY_NAME = {c.name: c for c in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
ENERGY_COLUMNS = ("energy_request_j", "energy_token_j", "prefill_energy_j", "decode_energy_j")


def _fail(msg, path, row=None, column=None):
    raise DataError(msg, path=path or "<table>", row=row, column=column)


def _first_bad(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])


def _coerce(df: pd.DataFrame, path) -> None:
    for col in df.columns:
        spec = BY_NAME.get(col)
        if spec is None or spec.kind == "str":
            continue
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        if bad.any():
            i = _first_bad(bad)
            _fail(f"expected a number, got {raw.iloc[i]!r}", path, i + 1, col)
        if (np.isinf(num.astype(float))).any():
            i = _first_bad(np.isinf(num.astype(float)))
            _fail("expected a finite number, got infinity", path, i + 1, col)
        df[col] = num.astype(float)


def _check_ranges(df: pd.DataFrame, path) -> None:
    for col in df.columns:
        spec = BY_NAME.get(col)
        if spec is None or spec.kind == "str":
            continue
        v = df[col]
        present = v.notna()
        if spec.positive:
            bad = present & (v <= 0)
            if bad.any():
                i = _first_bad(bad)
                _fail(f"expected a value > 0, got {v.iloc[i]:g}", path, i + 1, col)
        if spec.minimum is not None:
            bad = present & (v < spec.minimum)
            if bad.any():
                i = _first_bad(bad)
                _fail(f"expected a value >= {spec.minimum:g}, got {v.iloc[i]:g}", path, i + 1, col)
        if spec.kind == "int":
            bad = present & (v != np.round(v))
            if bad.any():
                i = _first_bad(bad)
                _fail(f"expected a whole number, got {v.iloc[i]:g}", path, i + 1, col)


def validate(df: pd.DataFrame, path=None, *, require_energy: bool = True, fill: bool = True,
             hardware=None, models=None) -> pd.DataFrame:
    """Check `df` against the schema and return a normalized copy (descriptors filled from catalogs).

    Raises DataError on the first violation; nothing is modified in place.
    """
    if df is None or len(df.columns) == 0:
        _fail("file is empty; expected a header row and at least one data row", path)
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    dup = df.columns[df.columns.duplicated()]
    if len(dup):
        _fail("column appears twice", path, column=dup[0])
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        _fail(f"missing required column (required: {', '.join(REQUIRED)})", path, column=missing[0])
    if len(df) == 0:
        _fail("no data rows; expected at least one configuration", path)
    if require_energy and not any(c in df.columns for c in ENERGY_COLUMNS):
        _fail(f"no energy column; expected at least one of {', '.join(ENERGY_COLUMNS)}", path)
    df = df.reset_index(drop=True)
    for c in REQUIRED:
        empty = df[c].isna() | (df[c].astype(str).str.strip() == "")
        if empty.any():
            _fail("empty value in a required column", path, _first_bad(empty) + 1, c)
    for col, spec in BY_NAME.items():
        if spec.default is not None and col not in df.columns:
            df[col] = spec.default
        elif spec.default is not None:
            df[col] = df[col].where(df[col].notna(), spec.default)
    _coerce(df, path)
    _check_ranges(df, path)
    if require_energy:
        energy = df[[c for c in ENERGY_COLUMNS if c in df.columns]]
        none = energy.isna().all(axis=1)
        if none.any():
            _fail(f"no energy value in this row; expected one of {', '.join(ENERGY_COLUMNS)}", path,
                  _first_bad(none) + 1, ENERGY_COLUMNS[0] if ENERGY_COLUMNS[0] in df.columns else energy.columns[0])
    for c in ("model", "gpu"):
        df[c] = df[c].astype(str).str.strip()
    # Parallelism must fit the GPUs: tp*pp*dp <= num_gpus; ep divides num_gpus.
    used = df["tp"] * df["pp"] * df["dp"]
    bad = used > df["num_gpus"]
    if bad.any():
        i = _first_bad(bad)
        _fail(f"tp*pp*dp = {used.iloc[i]:g} exceeds num_gpus = {df['num_gpus'].iloc[i]:g}", path, i + 1, "num_gpus")
    bad = (df["ep"] > df["num_gpus"]) | (df["num_gpus"] % df["ep"] != 0)
    if bad.any():
        i = _first_bad(bad)
        _fail(f"ep = {df['ep'].iloc[i]:g} must divide num_gpus = {df['num_gpus'].iloc[i]:g}", path, i + 1, "ep")
    for col, allowed in (("precision", PRECISIONS), ("modality", MODALITIES), ("arch", ARCHS)):
        if col in df.columns:
            vals = df[col].where(df[col].isna(), df[col].astype(str).str.strip().str.lower())
            bad = vals.notna() & ~vals.isin(allowed)
            if bad.any():
                i = _first_bad(bad)
                _fail(f"expected one of {', '.join(allowed)}, got {df[col].iloc[i]!r}", path, i + 1, col)
            df[col] = vals
    for col, spec in BY_NAME.items():
        if spec.kind == "int" and col in df.columns and df[col].notna().all():
            df[col] = df[col].astype("int64")
    if fill:
        df = _fill_descriptors(df, path, hardware or hardware_catalog(), models or model_catalog())
    if "arch" in df.columns and "ep" in df.columns:
        bad = (df["ep"] > 1) & (df["arch"].isin(["dense", "ssm"]))
        if bad.any():
            i = _first_bad(bad)
            _fail("ep > 1 needs a mixture-of-experts model (arch moe or hybrid)", path, i + 1, "ep")
    return df


def _fill_descriptors(df: pd.DataFrame, path, hw, models) -> pd.DataFrame:
    for col in list(HARDWARE_COLUMNS) + list(MODEL_COLUMNS) + ["attention_layers", "vision_params_b", "ssm_state_mb"]:
        if col not in df.columns:
            df[col] = np.nan if col != "arch" else None
    # GPUs: resolve each distinct name once.
    canon = {}
    for i, name in enumerate(df["gpu"]):
        if name in canon:
            continue
        try:
            canon[name] = hw.get(name)
        except CatalogError as exc:
            row = df.iloc[i]
            if all(pd.notna(row[c]) for c in HARDWARE_COLUMNS):
                canon[name] = None
            else:
                _fail(f"{exc}; or give the gpu_* descriptor columns", path, i + 1, "gpu")
    for name, spec in canon.items():
        if spec is None:
            continue
        sel = df["gpu"] == name
        for col, field in HARDWARE_COLUMNS.items():
            df.loc[sel, col] = df.loc[sel, col].fillna(getattr(spec, field))
        df.loc[sel, "gpu"] = spec.name
    specs = {}
    for i, name in enumerate(df["model"]):
        if name in specs:
            continue
        try:
            specs[name] = models.get(name)
        except CatalogError as exc:
            row = df.iloc[i]
            if pd.notna(row["params_total_b"]) and pd.notna(row["params_active_b"]) and pd.notna(row["arch"]):
                specs[name] = None
            else:
                _fail(f"{exc}; or give arch, params_total_b and params_active_b", path, i + 1, "model")
    for name, spec in specs.items():
        if spec is None:
            continue
        sel = df["model"] == name
        for col, field in MODEL_COLUMNS.items():
            value = getattr(spec, field)
            if col == "arch":
                df.loc[sel, col] = df.loc[sel, col].where(df.loc[sel, col].notna(), value)
            else:
                df.loc[sel, col] = df.loc[sel, col].fillna(value)
        df.loc[sel, "attention_layers"] = df.loc[sel, "attention_layers"].fillna(
            spec.attention_layers if spec.attention_layers is not None else np.nan)
        df.loc[sel, "vision_params_b"] = df.loc[sel, "vision_params_b"].fillna(spec.vision_params_b)
        df.loc[sel, "ssm_state_mb"] = df.loc[sel, "ssm_state_mb"].fillna(spec.ssm_state_mb)
        if "precision" in df.columns:
            df.loc[sel, "precision"] = df.loc[sel, "precision"].where(df.loc[sel, "precision"].notna(), spec.precision)
        else:
            df["precision"] = None
            df.loc[sel, "precision"] = spec.precision
    bad = df["params_active_b"] > df["params_total_b"] * 1.0001
    if bad.any():
        i = _first_bad(bad)
        _fail("params_active_b exceeds params_total_b", path, i + 1, "params_active_b")
    df["precision"] = df["precision"].fillna("bf16") if "precision" in df.columns else "bf16"
    return df


def load_profiles(path, *, require_energy: bool = True, hardware=None, models=None) -> pd.DataFrame:
    """Read a CSV or Parquet file of profiling records and validate it."""
    from ..io import read_table

    return validate(read_table(path), path, require_energy=require_energy, hardware=hardware, models=models)


def load_many(paths, **kwargs) -> pd.DataFrame:
    """Several profiling files, each validated, as one table."""
    frames = [load_profiles(p, **kwargs) for p in paths]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def schema_markdown() -> str:
    """The column table of docs/SCHEMA.md (a test keeps the two equal)."""
    lines = ["| column | type | unit | required | meaning |", "|---|---|---|---|---|"]
    for c in COLUMNS:
        req = "yes" if c.required else (f"default {c.default}" if c.default is not None else "")
        lines.append(f"| `{c.name}` | {c.kind} | {c.unit} | {req} | {c.doc} |")
    return "\n".join(lines)
