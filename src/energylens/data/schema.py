"""The profiling-record schema: one row = one measured configuration (docs/SCHEMA.md).

`validate` checks a table against the schema and fills model and hardware descriptors from the
catalogs where they are absent. The first violation raises a DataError naming file, row and column:
a value that is not a number (booleans and dates/times included), not finite, outside the column's
range (Column.minimum / positive / maximum), or a row that contradicts itself physically. Messages
are one short line whatever the input (echoed text is escaped and cut short).
"""
from __future__ import annotations

import datetime as dt
import decimal
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..catalog.hardware import HARDWARE_COLUMNS, hardware_catalog
from ..catalog.models import MODEL_COLUMNS, model_catalog
from ..errors import CatalogError, DataError
from ..io import read_table
from ..vocabulary import ARCHS, MODALITIES, PP_SCHEDULES, PRECISIONS, SEQUENTIAL_PP_ENGINES


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
    maximum: float | None = None  # inclusive upper bound (numeric columns; see the limits below)


# Upper bounds (Column.maximum, inclusive). They are generous physical limits, far above any real deployment,
# meant to refuse typos and overflow-sized values (1e308 tokens give inf/nan predictions), not to
# judge plausibility: a real measurement must never hit one.
MAX_TOKENS = 1e7  # tokens per request: the longest context windows today are 1M-10M tokens
MAX_GPUS = 1e5  # GPUs serving one configuration: a served replica set uses at most a few hundred; 1e5 is
#                 the scale of the largest training clusters
MAX_DEGREE = 1e5  # tp, pp, ep, dp: a parallel degree cannot exceed the GPU count
MAX_BATCH = 1e6  # concurrent requests: far above any server's max_num_seqs (one limit: the recommender and the profiler use it)
# Descriptors: the same upper bounds as the catalogs (MODEL_BOUNDS in catalog/models.py, HARDWARE_BOUNDS in
# catalog/hardware.py), so that a row's own descriptor and a catalog entry obey one limit. Today's largest
# models have ~2,000 billion parameters, 126 layers, width 16,384, 256 experts, head_dim 576, ~70 MB SSM state.
MAX_PARAMS_B = 1e6  # 1e9 params: a quadrillion parameters
MAX_LAYERS = 1e4
MAX_WIDTH = 1e6  # hidden_size
MAX_HEADS = 1e5  # heads, kv_heads, head_dim
MAX_EXPERTS = 1e5  # experts, active_experts
MAX_STATE_MB = 1e6  # SSM state per sequence: 1 TB
# Accelerators: far beyond today's largest devices, wafer-scale systems included (B200: 2,250
# TFLOP/s, 8 TB/s, 180 GB, 1,000 W, NVLink 1,800 GB/s; Cerebras WSE-3: ~125,000 TFLOP/s, 21,000 TB/s, 23 kW).
MAX_TFLOPS = 1e6  # 1 EFLOP/s per device
MAX_MEM_BW_TBS = 1e5  # 100 PB/s
MAX_MEM_GB = 1e5  # 100 TB of device memory
MAX_DEVICE_W = 1e5  # board power limit and idle power: 100 kW
MAX_LINK_GBS = 1e5  # 100 TB/s interconnect per device
MAX_ENERGY_J = 1e12  # J per request or token: 1 TJ (~280 MWh), ~3 hours of 100,000 GPUs at 1 kW each
MAX_TIME_S = 1e7  # seconds for a first token or one decode step: ~116 days
MAX_POWER_W = 1e9  # W for all GPUs together: 1 GW, i.e. MAX_GPUS accelerators at 10 kW each
MAX_THROUGHPUT = 1e9  # tokens/s: MAX_GPUS accelerators at 10,000 tokens/s each

COLUMNS: tuple[Column, ...] = (
    # configuration
    Column("model", "str", "", "model name (catalog name or Hugging Face id)", required=True),
    Column("gpu", "str", "", "accelerator name, resolved to its canonical catalog name", required=True),
    Column("num_gpus", "int", "GPUs", "GPUs serving the configuration", required=True, minimum=1, maximum=MAX_GPUS),
    Column("tp", "int", "", "tensor-parallel degree", required=True, minimum=1, maximum=MAX_DEGREE),
    Column("pp", "int", "", "pipeline-parallel degree", required=True, minimum=1, maximum=MAX_DEGREE),
    Column("ep", "int", "", "expert-parallel degree", default=1, minimum=1, maximum=MAX_DEGREE),
    Column("dp", "int", "", "data-parallel replicas", default=1, minimum=1, maximum=MAX_DEGREE),
    Column("batch_size", "int", "requests", "max concurrent requests (max_num_seqs)", required=True, minimum=1,
           maximum=MAX_BATCH),
    Column("input_tokens", "float", "tokens", "mean prompt tokens per request, image/video tokens included",
           required=True, minimum=0, maximum=MAX_TOKENS),
    Column("output_tokens", "float", "tokens", "mean generated tokens per request", required=True, positive=True,
           maximum=MAX_TOKENS),
    Column("visual_tokens", "float", "tokens", "image/video tokens among input_tokens (default: the task's assumption)",
           minimum=0, maximum=MAX_TOKENS),
    Column("avg_batch_size", "float", "requests", "measured mean running batch", positive=True, maximum=MAX_BATCH),
    Column("task", "str", "", "workload / request dataset"),
    Column("precision", "str", "", "weight precision: " + ", ".join(PRECISIONS)),
    Column("modality", "str", "", "input modality: " + ", ".join(MODALITIES), default="text"),
    Column("engine", "str", "", "serving engine that ran the row (vllm, sglang, trtllm, tgi, transformers, ...)"),
    Column("pp_schedule", "str", "", "how pipeline stages run: " + ", ".join(PP_SCHEDULES) + " (default: the "
           "engine's: sequential for " + ", ".join(SEQUENTIAL_PP_ENGINES) + ", else microbatch)"),
    # model descriptors
    Column("arch", "str", "", "dense, moe, ssm or hybrid"),
    Column("params_total_b", "float", "1e9 params", "all parameters", positive=True, maximum=MAX_PARAMS_B),
    Column("params_active_b", "float", "1e9 params", "parameters active per token", positive=True,
           maximum=MAX_PARAMS_B),
    Column("layers", "float", "", "transformer (or mixer) layers", minimum=0, maximum=MAX_LAYERS),
    Column("hidden_size", "float", "", "model width", minimum=0, maximum=MAX_WIDTH),
    Column("heads", "float", "", "attention heads", minimum=0, maximum=MAX_HEADS),
    Column("kv_heads", "float", "", "key/value heads", minimum=0, maximum=MAX_HEADS),
    Column("head_dim", "float", "", "attention head width", minimum=0, maximum=MAX_HEADS),
    Column("experts", "float", "", "routed experts (0 dense)", minimum=0, maximum=MAX_EXPERTS),
    Column("active_experts", "float", "", "experts active per token (0 dense)", minimum=0, maximum=MAX_EXPERTS),
    Column("attention_layers", "float", "", "layers with a KV cache (hybrids)", minimum=0, maximum=MAX_LAYERS),
    Column("kv_cache_dim", "float", "", "KV-cache values per token and attention layer, K and V together (0 or "
           "absent: 2 x kv_heads x head_dim; MLA: kv_lora_rank + qk_rope_head_dim)", minimum=0, maximum=MAX_WIDTH),
    Column("sliding_window", "float", "tokens", "tokens a sliding-window (or chunked) attention layer caches (0: none)",
           minimum=0, maximum=MAX_TOKENS),
    Column("sliding_layers", "float", "", "attention layers with that window; the others cache the whole context",
           minimum=0, maximum=MAX_LAYERS),
    Column("vision_params_b", "float", "1e9 params", "vision/audio encoder size", minimum=0, maximum=MAX_PARAMS_B),
    Column("ssm_state_mb", "float", "MB", "recurrent (SSM) state per sequence, all layers (hybrids)", minimum=0,
           maximum=MAX_STATE_MB),
    # hardware descriptors
    Column("gpu_peak_tflops", "float", "TFLOP/s", "dense BF16 peak", positive=True, maximum=MAX_TFLOPS),
    Column("gpu_mem_bw_tbs", "float", "TB/s", "memory bandwidth", positive=True, maximum=MAX_MEM_BW_TBS),
    Column("gpu_mem_gb", "float", "GB", "device memory", positive=True, maximum=MAX_MEM_GB),
    Column("gpu_tdp_w", "float", "W", "board power limit", positive=True, maximum=MAX_DEVICE_W),
    Column("gpu_idle_w", "float", "W", "idle power (at most gpu_tdp_w)", minimum=0, maximum=MAX_DEVICE_W),
    Column("gpu_link_gbs", "float", "GB/s", "intra-node interconnect per GPU", positive=True, maximum=MAX_LINK_GBS),
    # measurements
    Column("energy_request_j", "float", "J", "energy per request, prefill included (all GPUs)", positive=True,
           maximum=MAX_ENERGY_J),
    Column("energy_token_j", "float", "J", "energy per output token (all GPUs)", positive=True, maximum=MAX_ENERGY_J),
    Column("prefill_energy_j", "float", "J", "prefill energy per request", positive=True, maximum=MAX_ENERGY_J),
    Column("decode_energy_j", "float", "J", "decode energy per request", positive=True, maximum=MAX_ENERGY_J),
    Column("ttft_s", "float", "s", "time to first token", positive=True, maximum=MAX_TIME_S),
    Column("itl_s", "float", "s", "inter-token latency", positive=True, maximum=MAX_TIME_S),
    Column("avg_power_w", "float", "W", "mean power of all GPUs", positive=True, maximum=MAX_POWER_W),
    Column("throughput_tok_s", "float", "tokens/s", "output-token throughput", positive=True, maximum=MAX_THROUGHPUT),
    Column("source", "str", "", "where the row came from"),
    Column("node", "str", "", "host that measured the row (the profiler writes it)"),
    Column("gpu_uuids", "str", "", "comma-separated UUIDs of the GPUs measured (the profiler writes it)"),
)
BY_NAME = {c.name: c for c in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
ENERGY_COLUMNS = ("energy_request_j", "energy_token_j", "prefill_energy_j", "decode_energy_j")
CPU_GPU = "cpu"  # the gpu of rows the profiler measured without a GPU (--allow-cpu): refused with that reason

# Where a row gives prefill_energy_j, decode_energy_j and energy_request_j, the parts must add up to the
# total within this relative tolerance (of energy_request_j). Parts and total are measured separately, so
# they never agree exactly; the project's own H100 split (data/gpu-prefill-decode) agrees to 1e-5, so 5%
# only refuses rows whose parts belong to another configuration or unit (e.g. a whole batch's prefill).
SPLIT_TOLERANCE = 0.05
# Text echoed back in a message (a name, a bad value) is cut to ECHO_LIMIT characters plus "…", with
# newlines and other non-printable characters escaped, so that an error is always one short line.
ECHO_LIMIT = 60
MESSAGE_LIMIT = 240  # the message after "file, row N, column 'c': ", whatever a catalog adds
LONG_NAME = 200  # longer model/GPU names cannot be catalog entries and are not looked up


def _clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` with non-printable characters (newlines included) escaped, cut to `limit` characters + '…'."""
    out, n = [], 0
    for ch in text:
        piece = ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
        if n + len(piece) > limit:
            out.append("…")
            break
        out.append(piece)
        n += len(piece)
    return "".join(out)


def _show(value) -> str:
    """A value as echoed in a message: quoted if text, always short and on one line."""
    if isinstance(value, str):
        return f"'{_clip(value)}'"
    if isinstance(value, (float, np.floating)) and not isinstance(value, bool):
        return f"{value:g}"
    try:
        text = repr(value)
    except Exception:  # e.g. an int too long to print
        text = f"<{type(value).__name__}>"
    return _clip(text)


def _fmt(x: float) -> str:
    """A limit as written in messages and docs/SCHEMA.md: 10,000,000 or 1e12."""
    x = float(x)
    if abs(x) < 1e8:
        return f"{int(x):,}" if x.is_integer() else f"{x:g}"
    mantissa, exponent = f"{x:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _fail(msg, path, row=None, column=None):
    where = path or "<table>"
    if not str(where).isprintable():
        where = _clip(str(where), 4096)
    raise DataError(_clip(str(msg), MESSAGE_LIMIT), path=where, row=row,
                    column=None if column is None else _clip(str(column)))


def _first_bad(mask) -> int:
    return int(np.flatnonzero(np.asarray(mask, dtype=bool))[0])


def _text(x) -> str:
    """str(x) for a cell of a text column, even where str() fails (an int of more than 4300 digits)."""
    if isinstance(x, str):
        return x
    try:
        return str(x)
    except Exception:
        return f"<{type(x).__name__}>"


def _distinct(col: pd.Series):
    """(codes, uniques) of a column of text, each distinct value once in order of first appearance (code -1:
    missing), so that a check or mapping runs once per distinct name, not per row. None when the column holds
    anything but text and missing values: factorizing would merge values Python calls equal whose text
    differs (1, 1.0, True), so those columns are checked cell by cell."""
    if col.dtype.kind in "biufcmM":
        return None
    if not isinstance(col.dtype, pd.StringDtype) and pd.api.types.infer_dtype(col, skipna=True) not in ("string",
                                                                                                       "empty"):
        return None
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)


def _first_of(codes: np.ndarray, hits) -> int | None:
    """The first row whose distinct value (code) is among `hits` (a bool per distinct value), or None."""
    hits = np.append(np.asarray(hits, dtype=bool), False)  # code -1 (missing) is never a hit
    rows = hits[codes]
    return _first_bad(rows) if rows.any() else None


def _blank(col: pd.Series) -> np.ndarray:
    """Cells that are missing or only whitespace."""
    if col.dtype.kind in "biufcmM":
        return col.isna().to_numpy()
    found = _distinct(col)
    if found is not None:
        codes, uniques = found
        return np.array([not u.strip() for u in uniques] + [True], dtype=bool)[codes]  # code -1: missing
    return np.array([(not x.strip()) if isinstance(x, str) else (pd.api.types.is_scalar(x) and bool(pd.isna(x)))
                     for x in col.tolist()], dtype=bool)


def _map_text(col: pd.Series, fn) -> pd.Series:
    """fn(the text of each cell), computed once per distinct value where the column holds only text; missing
    cells give None (callers keep their own value there)."""
    found = _distinct(col)
    if found is None:
        return col.map(lambda x: fn(_text(x)))
    codes, uniques = found
    mapped = [fn(u) for u in uniques]
    if isinstance(col.dtype, pd.StringDtype) and mapped == list(uniques):
        return col  # nothing changes (names already clean): no new column
    dtype = col.dtype if isinstance(col.dtype, pd.StringDtype) else None  # as Series.map keeps it
    return pd.Series(np.array(mapped + [None], dtype=object)[codes], index=col.index, dtype=dtype)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(df: pd.DataFrame, path) -> None:
    """Text columns must hold text that can be written back (no lone surrogates from a Python caller)."""
    for col in df.columns:
        spec = BY_NAME.get(col)
        dtype = df[col].dtype
        if spec is None or spec.kind != "str" or dtype.kind in "biufcmM":
            continue
        if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
            continue  # Arrow strings are valid UTF-8 by construction
        found = _distinct(df[col])
        if found is not None:
            codes, uniques = found
            i = _first_of(codes, [not _encodable(u) for u in uniques])
            if i is not None:
                _fail(f"expected text that is valid Unicode, got {_show(uniques[codes[i]])}", path, i + 1, col)
            continue
        for i, x in enumerate(df[col].tolist()):
            if isinstance(x, str):
                try:
                    x.encode("utf-8")
                except UnicodeEncodeError:
                    _fail(f"expected text that is valid Unicode, got {_show(x)}", path, i + 1, col)


class _NotANumber(ValueError):
    pass


_BOOL_WORDS = {"true", "false"}
_TIME_TYPES = (dt.date, dt.time, dt.timedelta, np.datetime64, np.timedelta64, pd.Period)


def _cell_number(x) -> float:
    """One cell of a numeric column as a float (NaN when empty); _NotANumber for anything else."""
    if x is None or x is pd.NA or x is pd.NaT:
        return np.nan
    if isinstance(x, (bool, np.bool_)):
        raise _NotANumber(f"expected a number, got a boolean ({x})")
    if isinstance(x, _TIME_TYPES):
        if pd.isna(x):
            return np.nan
        raise _NotANumber(f"expected a number, got a date/time ({_show(str(x))})")
    if isinstance(x, str):
        text = x.strip()
        if not text:
            return np.nan
        if text.lower() in _BOOL_WORDS:
            raise _NotANumber(f"expected a number, got a boolean ({_show(x)})")
        try:
            return float(text)
        except ValueError:
            raise _NotANumber(f"expected a number, got {_show(x)}") from None
    if isinstance(x, (numbers.Real, decimal.Decimal)):
        try:
            return float(x)
        except OverflowError:  # an integer beyond float range: refused below as not finite
            return np.inf if x > 0 else -np.inf
        except (ValueError, TypeError):
            raise _NotANumber(f"expected a number, got {_show(x)}") from None
    raise _NotANumber(f"expected a number, got {_show(x)}")


def _column_numbers(raw: pd.Series, path, col) -> np.ndarray:
    """A numeric column as float64 (NaN = empty). Booleans, dates/times, text and other objects are
    refused rather than read as numbers (True is not 1, a timestamp is not nanoseconds)."""
    dtype = raw.dtype
    if dtype == np.float64 or dtype == np.int64:  # the common case, first
        return raw.to_numpy(dtype=float)
    present = raw.notna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype):
        if present.any():
            i = _first_bad(present)
            _fail(f"expected a number, got a boolean ({raw.iloc[i]})", path, i + 1, col)
        return np.full(len(raw), np.nan)
    if (pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)
            or isinstance(dtype, pd.PeriodDtype)):
        if present.any():
            i = _first_bad(present)
            _fail(f"expected a number, got a date/time ({_show(str(raw.iloc[i]))})", path, i + 1, col)
        return np.full(len(raw), np.nan)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return raw.to_numpy(dtype=float, na_value=np.nan)
    out = np.empty(len(raw))
    for i, x in enumerate(raw.tolist()):
        try:
            out[i] = _cell_number(x)
        except _NotANumber as exc:
            _fail(str(exc), path, i + 1, col)
    return out


def _coerce(df: pd.DataFrame, path) -> None:
    for col in df.columns:
        spec = BY_NAME.get(col)
        if spec is None or spec.kind == "str":
            continue
        raw = df[col]
        num = _column_numbers(raw, path, col)
        inf = np.isinf(num)
        if inf.any():
            i = _first_bad(inf)
            _fail(f"expected a finite number, got {_show(raw.iloc[i])}", path, i + 1, col)
        if raw.dtype != np.float64:  # a float64 column is its own numbers already
            df[col] = num


def _check_ranges(df: pd.DataFrame, path, columns=None) -> None:
    """Each numeric column (of `columns`, default all) within its Column bounds; NaN (absent) passes."""
    for col in df.columns if columns is None else columns:
        spec = BY_NAME.get(col)
        if spec is None or spec.kind == "str":
            continue
        v = df[col].to_numpy(dtype=float)  # numbers by now (_coerce): numpy comparisons, no pandas per check
        present = ~np.isnan(v)
        if spec.positive:
            bad = present & (v <= 0)
            if bad.any():
                i = _first_bad(bad)
                _fail(f"expected a value > 0, got {v[i]:g}", path, i + 1, col)
        if spec.minimum is not None:
            bad = present & (v < spec.minimum)
            if bad.any():
                i = _first_bad(bad)
                _fail(f"expected a value >= {spec.minimum:g}, got {v[i]:g}", path, i + 1, col)
        if spec.maximum is not None:
            bad = present & (v > spec.maximum)
            if bad.any():
                i = _first_bad(bad)
                unit = "" if not spec.unit else f" x {spec.unit}" if spec.unit[0].isdigit() else f" {spec.unit}"
                _fail(f"expected a value <= {_fmt(spec.maximum)}{unit} (the schema's upper bound), "
                      f"got {v[i]:g}", path, i + 1, col)
        if spec.kind == "int":
            bad = present & (v != np.round(v))
            if bad.any():
                i = _first_bad(bad)
                _fail(f"expected a whole number, got {v[i]:g}", path, i + 1, col)


def _check_consistency(df: pd.DataFrame, path) -> None:
    """Rows whose columns contradict each other physically (NaN compares false: checked where given)."""
    if "gpu_idle_w" in df.columns and "gpu_tdp_w" in df.columns:
        idle, tdp = df["gpu_idle_w"].astype(float), df["gpu_tdp_w"].astype(float)
        bad = idle > tdp
        if bad.any():
            i = _first_bad(bad)
            _fail(f"gpu_idle_w = {idle.iloc[i]:g} W exceeds gpu_tdp_w = {tdp.iloc[i]:g} W; "
                  "idle power cannot exceed the board power limit", path, i + 1, "gpu_idle_w")
    if all(c in df.columns for c in ("prefill_energy_j", "decode_energy_j", "energy_request_j")):
        parts = df["prefill_energy_j"].astype(float) + df["decode_energy_j"].astype(float)
        total = df["energy_request_j"].astype(float)
        gap = (parts - total).abs() / total
        bad = gap > SPLIT_TOLERANCE
        if bad.any():
            i = _first_bad(bad)
            _fail(f"prefill_energy_j + decode_energy_j = {parts.iloc[i]:.6g} J differs from energy_request_j = "
                  f"{total.iloc[i]:.6g} J by {gap.iloc[i]:.1%}; they must agree within {SPLIT_TOLERANCE:.0%}",
                  path, i + 1, "energy_request_j")
    if "visual_tokens" in df.columns and "input_tokens" in df.columns:
        vis, inp = df["visual_tokens"].astype(float), df["input_tokens"].astype(float)
        bad = vis > inp
        if bad.any():
            i = _first_bad(bad)
            _fail(f"visual_tokens = {vis.iloc[i]:g} exceeds input_tokens = {inp.iloc[i]:g}; "
                  "input_tokens counts the image/video tokens", path, i + 1, "visual_tokens")


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
        _fail("column appears twice", path, column=dup[0])  # _fail cuts a long name short
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        _fail(f"missing required column (required: {', '.join(REQUIRED)})", path, column=missing[0])
    if len(df) == 0:
        _fail("no data rows; expected at least one configuration", path)
    _refuse_cpu_rows(df, path)
    if require_energy and not any(c in df.columns for c in ENERGY_COLUMNS):
        _fail(f"no energy column; expected at least one of {', '.join(ENERGY_COLUMNS)}", path)
    df = df.reset_index(drop=True)
    for col in df.columns:  # text columns hold text (an all-empty CSV column arrives as float NaN)
        if col in BY_NAME and BY_NAME[col].kind == "str" and df[col].dtype.kind in "biufcmM":
            df[col] = df[col].astype(object)
    _check_text(df, path)
    for c in REQUIRED:
        empty = _blank(df[c])
        if empty.any():
            _fail("empty value in a required column", path, _first_bad(empty) + 1, c)
    for col, spec in BY_NAME.items():
        if spec.default is not None and col not in df.columns:
            df[col] = spec.default
        elif spec.default is not None and spec.kind == "str":  # numeric defaults: after _coerce
            df[col] = df[col].where(df[col].notna(), spec.default)
    _coerce(df, path)
    for col, spec in BY_NAME.items():  # a cell that was empty text is empty now: its default applies
        if spec.default is not None and spec.kind != "str":
            df[col] = df[col].fillna(spec.default)
    for c in REQUIRED:
        if BY_NAME[c].kind != "str" and df[c].isna().any():  # e.g. the text "nan"
            _fail("empty value in a required column", path, _first_bad(df[c].isna()) + 1, c)
    _check_ranges(df, path)
    if require_energy:
        energy = df[[c for c in ENERGY_COLUMNS if c in df.columns]]
        none = energy.isna().all(axis=1)
        if none.any():
            _fail(f"no energy value in this row; expected one of {', '.join(ENERGY_COLUMNS)}", path,
                  _first_bad(none) + 1, ENERGY_COLUMNS[0] if ENERGY_COLUMNS[0] in df.columns else energy.columns[0])
    for c in ("model", "gpu"):
        df[c] = _map_text(df[c], str.strip)
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
    for col, allowed in (("precision", PRECISIONS), ("modality", MODALITIES), ("arch", ARCHS),
                         ("pp_schedule", PP_SCHEDULES)):
        if col in df.columns:
            vals = df[col].where(df[col].isna(), _map_text(df[col], lambda t: t.strip().lower()))
            bad = vals.notna() & ~vals.isin(allowed)
            if bad.any():
                i = _first_bad(bad)
                _fail(f"expected one of {', '.join(allowed)}, got {_show(df[col].iloc[i])}", path, i + 1, col)
            df[col] = vals
    for col, spec in BY_NAME.items():
        if spec.kind == "int" and col in df.columns and df[col].notna().all():
            df[col] = df[col].astype("int64")
    if fill:
        df = _fill_descriptors(df, path, hardware or hardware_catalog(), models or model_catalog())
        _check_ranges(df, path, DESCRIPTORS)  # descriptors from a user's catalog file obey the same bounds
    _check_consistency(df, path)
    if "arch" in df.columns and "ep" in df.columns:
        bad = (df["ep"] > 1) & (df["arch"].isin(["dense", "ssm"]))
        if bad.any():
            i = _first_bad(bad)
            _fail("ep > 1 needs a mixture-of-experts model (arch moe or hybrid)", path, i + 1, "ep")
    return df


def _refuse_cpu_rows(df: pd.DataFrame, path) -> None:
    """Rows `energylens profile --allow-cpu` measured without a GPU (gpu CPU_GPU) hold timings only: no
    energy, and no accelerator whose descriptors a model could use. One line says so, not an unknown GPU."""
    found = _distinct(df["gpu"])
    if found is not None:
        codes, uniques = found
        cpu = np.array([u.strip().lower() == CPU_GPU for u in uniques] + [False], dtype=bool)[codes]
    else:
        cpu = df["gpu"].map(lambda g: isinstance(g, str) and g.strip().lower() == CPU_GPU).to_numpy(bool)
    if cpu.all():
        _fail(f"a CPU-only profile (energylens profile --allow-cpu): {len(df)} rows of timings without energy or a "
              "GPU to describe, which fit and predict cannot use; profile on an NVIDIA GPU for rows they can", path)
    if cpu.any():
        _fail("measured on the CPU (energylens profile --allow-cpu): no energy and no GPU to describe", path,
              _first_bad(cpu) + 1, "gpu")


def _lookup(catalog, name: str, what: str):
    """catalog.get(name), with the name cut short and escaped in the error (a catalog echoes it whole)."""
    if len(name) > LONG_NAME:
        raise CatalogError(f"unknown {what} {_show(name)}")
    try:
        return catalog.get(name)
    except CatalogError as exc:
        raise CatalogError(str(exc).replace(f"'{name}'", _show(name))) from None


# The columns _fill_descriptors fills from the catalogs.
DESCRIPTORS = (*HARDWARE_COLUMNS, *MODEL_COLUMNS, "attention_layers", "vision_params_b", "ssm_state_mb")


def _catalog_entries(col: pd.Series, lookup, described: np.ndarray, path, give: str):
    """(codes, names, entries): the catalog entry of each distinct name of `col`, looked up once, in order of first
    appearance; None for a name the catalog lacks whose first row describes it itself (`described`), a
    DataError naming that row otherwise."""
    codes, names = pd.factorize(col)  # stripped text by now, never missing
    first = np.unique(codes, return_index=True)[1]
    entries = []
    for k, name in enumerate(names):
        try:
            entries.append(lookup(name))
        except CatalogError as exc:
            if not described[first[k]]:
                _fail(f"{exc}; or give {give}", path, int(first[k]) + 1, col.name)
            entries.append(None)
    return codes, names, entries


def _fill_from(df: pd.DataFrame, col: str, codes: np.ndarray, entries, value, text: bool = False) -> None:
    """Missing cells of `col` in rows of a catalog entry take value(entry): whole columns, no per-name .loc."""
    known = np.array([e is not None for e in entries], dtype=bool)[codes]
    need = df[col].isna().to_numpy() & known
    if need.any():
        fill = np.array([value(e) if e is not None else None for e in entries], dtype=object if text else float)
        df[col] = df[col].mask(need, pd.Series(fill[codes], index=df.index))


def _fill_descriptors(df: pd.DataFrame, path, hw, models) -> pd.DataFrame:
    for col in DESCRIPTORS:
        if col not in df.columns:
            df[col] = np.nan if col != "arch" else None
    # GPUs: each distinct name resolved once; a GPU the catalog lacks needs its own descriptors.
    described = df[list(HARDWARE_COLUMNS)].notna().all(axis=1).to_numpy()
    codes, names, gpus = _catalog_entries(df["gpu"], lambda name: _lookup(hw, name, "GPU"), described, path,
                                          "the gpu_* descriptor columns")
    for col, field in HARDWARE_COLUMNS.items():
        _fill_from(df, col, codes, gpus, lambda e, field=field: getattr(e, field))
    canonical = np.array([e.name if e is not None else n for e, n in zip(gpus, names)], dtype=object)
    if (canonical != np.asarray(names, dtype=object)).any():
        df["gpu"] = pd.Series(canonical[codes], index=df.index, dtype=df["gpu"].dtype)
    described = df[["params_total_b", "params_active_b", "arch"]].notna().all(axis=1).to_numpy()
    codes, _, specs = _catalog_entries(df["model"], lambda name: _lookup(models, name, "model"), described, path,
                                       "arch, params_total_b and params_active_b")
    for col, field in MODEL_COLUMNS.items():
        _fill_from(df, col, codes, specs, lambda e, field=field: getattr(e, field), text=col == "arch")
    _fill_from(df, "attention_layers", codes, specs,
               lambda e: e.attention_layers if e.attention_layers is not None else np.nan)
    _fill_from(df, "vision_params_b", codes, specs, lambda e: e.vision_params_b)
    _fill_from(df, "ssm_state_mb", codes, specs, lambda e: e.ssm_state_mb)
    if "precision" not in df.columns and any(e is not None for e in specs):
        df["precision"] = None
    if "precision" in df.columns:
        _fill_from(df, "precision", codes, specs, lambda e: e.precision, text=True)
    bad = df["params_active_b"] > df["params_total_b"] * 1.0001
    if bad.any():
        i = _first_bad(bad)
        _fail("params_active_b exceeds params_total_b", path, i + 1, "params_active_b")
    df["precision"] = df["precision"].fillna("bf16") if "precision" in df.columns else "bf16"
    return df


def load_profiles(path, *, require_energy: bool = True, hardware=None, models=None) -> pd.DataFrame:
    """Read a CSV or Parquet file of profiling records and validate it."""
    return validate(read_table(path), path, require_energy=require_energy, hardware=hardware, models=models)


def load_many(paths, **kwargs) -> pd.DataFrame:
    """Several profiling files, each validated, as one table."""
    frames = [load_profiles(p, **kwargs) for p in paths]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _range(c: Column) -> str:
    """The allowed values of a numeric column, as docs/SCHEMA.md states them."""
    if c.kind == "str":
        return ""
    low = "> 0" if c.positive else (f">= {_fmt(c.minimum)}" if c.minimum is not None else "")
    high = f"<= {_fmt(c.maximum)}" if c.maximum is not None else ""
    return ", ".join(p for p in (low, high) if p)


def schema_markdown() -> str:
    """The column table of docs/SCHEMA.md (a test keeps the two equal)."""
    lines = ["| column | type | unit | required | range | meaning |", "|---|---|---|---|---|---|"]
    for c in COLUMNS:
        req = "yes" if c.required else (f"default {c.default}" if c.default is not None else "")
        lines.append(f"| `{c.name}` | {c.kind} | {c.unit} | {req} | {_range(c)} | {c.doc} |")
    return "\n".join(lines)
