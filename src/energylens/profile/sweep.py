"""Profiling sweeps: every configuration measured, appended atomically, resumable, failures recorded.

Output rows follow the profiling schema (docs/SCHEMA.md), so `energylens fit` reads them directly.
Failed configurations (out of memory, ...) go to a sidecar file `<output>.failed.csv` with the reason.
The local sweep (`run_sweep`) and the Ray sweep (`cluster.py`) share `pending`, `measure_row` and the
`record_*` functions, so resume, records and appends behave the same in both.
Warm-up runs are not recorded; repeats are summarized by their mean and standard deviation.
"""
from __future__ import annotations

import itertools
import math
import socket
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..data.schema import CPU_GPU
from ..errors import DataError, EnergyLensError
from ..data.schema import MAX_BATCH, MAX_DEGREE, MAX_TOKENS
from ..io import read_table, write_table
from .monitor import make_monitor

KEY = ("model", "tp", "pp", "batch_size", "input_tokens", "output_tokens")


# Bounds of a configuration (the schema's, which the recommender uses too): beyond them a value is a typo.
LIMITS = {"tp": int(MAX_DEGREE), "pp": int(MAX_DEGREE), "batch_size": int(MAX_BATCH), "input_tokens": int(MAX_TOKENS),
          "output_tokens": int(MAX_TOKENS)}


def _unique(values) -> list:
    """The values in their order, each once (`--batch 1,1` measures batch 1 once)."""
    return list(dict.fromkeys(values))


@dataclass
class SweepSpec:
    model: str
    tp: list = field(default_factory=lambda: [1])
    pp: list = field(default_factory=lambda: [1])
    batch: list = field(default_factory=lambda: [1])
    input_tokens: list = field(default_factory=lambda: [128])
    output_tokens: list = field(default_factory=lambda: [64])
    repeats: int = 3
    warmup: int = 1

    def configurations(self) -> list[dict]:
        """The grid's configurations, each once (repeated grid values are measured once)."""
        grid = itertools.product(_unique(self.tp), _unique(self.pp), _unique(self.batch), _unique(self.input_tokens),
                                 _unique(self.output_tokens))
        return [{"model": self.model, "tp": tp, "pp": pp, "batch_size": b, "input_tokens": i, "output_tokens": o}
                for tp, pp, b, i, o in grid]


def _plan_int(value, path, row: int, column: str) -> int:
    """A whole number in 1..LIMITS[column] from a plan file's cell; a one-line DataError naming the cell otherwise."""
    high = LIMITS[column]
    try:
        x = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not (math.isfinite(x) and x.is_integer() and 1 <= x <= high):
        shown = "an empty cell" if value is None or (isinstance(value, float) and math.isnan(value)) \
            or (isinstance(value, str) and not value.strip()) else repr(value.strip() if isinstance(value, str) else value)
        raise DataError(f"expected a whole number between 1 and {high:,}, got {shown}", path=path, row=row, column=column)
    return int(x)


def configurations_from_plan(path, model: str | None = None) -> list[dict]:
    """Configurations of a sweep file written by `energylens plan`, validated cell by cell and each once.

    A bad cell (not a whole number, empty, 0, out of range) is a DataError naming the file, row
    (1 = first data row) and column."""
    df = read_table(path)
    need = [c for c in ("tp", "pp", "batch_size", "input_tokens", "output_tokens") if c not in df.columns]
    if need:
        raise DataError(f"sweep file lacks column '{need[0]}'", path=path)
    if df.empty:
        raise DataError("sweep file has no configurations", path=path)
    out, seen = [], set()
    for i, (_, r) in enumerate(df.iterrows(), start=1):
        name = model
        if name is None:
            name = r.get("model")
            if name is None or (isinstance(name, float) and math.isnan(name)) or not str(name).strip():
                raise DataError("expected a model name", path=path, row=i, column="model")
            name = str(name).strip()
        cfg = {"model": name, **{c: _plan_int(r[c], path, i, c)
                                 for c in ("tp", "pp", "batch_size", "input_tokens", "output_tokens")}}
        if _key(cfg) not in seen:
            seen.add(_key(cfg))
            out.append(cfg)
    return out


def _key(row) -> tuple:
    return tuple((str(row[k]) if k == "model" else int(float(row[k]))) for k in KEY)


def failed_path(output) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".failed.csv")


def _keys_of(path, key=None, columns=KEY, text_columns=("model",)) -> set:
    """Keys (key(row), default `_key`) of the rows of `path` that have all `columns`; a row whose key is None
    is not one of the sweep's (another kind of profile in the same file)."""
    key = key or _key
    path = Path(path)
    keys = set()
    if path.exists() and path.stat().st_size > 0:
        df = read_table(path)
        if all(k in df.columns for k in columns):
            for i, (_, r) in enumerate(df.iterrows(), start=1):
                try:
                    k = key(r)
                except (TypeError, ValueError, OverflowError):  # a damaged file: say where, do not crash
                    bad = next((k for k in columns if k not in text_columns and not _is_whole(r[k])), columns[-1])
                    raise DataError(f"cannot resume from this file: expected a whole number, got {r[bad]!r}",
                                    path=path, row=i, column=bad) from None
                if k is not None:
                    keys.add(k)
    return keys


def _is_whole(value) -> bool:
    try:
        return float(value).is_integer()
    except (TypeError, ValueError, OverflowError):
        return False


def measured_keys(output) -> set:
    """Keys of the configurations measured in `output`."""
    return _keys_of(output)


def failed_keys(output) -> set:
    """Keys of the configurations recorded as failed in `<output>.failed.csv`."""
    return _keys_of(failed_path(output))


def done_keys(output) -> set:
    """Keys a resumed sweep skips: measured ones and, unless retried, failed ones."""
    return measured_keys(output) | failed_keys(output)


def drop_failed(output, key: tuple, replacement: dict | None = None, key_of=None, columns=KEY) -> None:
    """Remove a configuration's records from `<output>.failed.csv`, adding `replacement` in their place,
    in one atomic rewrite (the file is removed when nothing is left). `key_of` and `columns`: how a record's
    key is read (default: the local sweep's `_key` over KEY)."""
    key_of = key_of or _key
    path = failed_path(output)
    old = read_table(path) if path.exists() and path.stat().st_size > 0 else None
    if old is not None and all(k in old.columns for k in columns):
        old = old[[key_of(r) != key for _, r in old.iterrows()]]
    parts = [df for df in (old, None if replacement is None else pd.DataFrame([replacement])) if df is not None and len(df)]
    if parts:
        write_table(pd.concat(parts, ignore_index=True), path)
    elif path.exists():
        path.unlink()


def append_row(path, row: dict) -> None:
    """Append one row by rewriting the file atomically (never a half-written file)."""
    path = Path(path)
    old = read_table(path) if path.exists() and path.stat().st_size > 0 else None
    new = pd.DataFrame([row])
    df = new if old is None else pd.concat([old, new], ignore_index=True)
    write_table(df, path)


def _is_oom(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "outofmemory" in text


def _stats(values):
    vals = [v for v in values if v is not None]
    if len(vals) != len(values) or not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def measure_config(engine, monitor, cfg: dict, repeats: int, warmup: int) -> dict:
    b, lin, lout = cfg["batch_size"], cfg["input_tokens"], cfg["output_tokens"]
    for _ in range(warmup):  # compile, allocate, fill caches: not recorded
        engine.decode(engine.prefill(b, lin), min(lout, 4))
    pf_e, pf_t, dec_e, dec_t = [], [], [], []
    for _ in range(repeats):
        monitor.begin_window("prefill")
        state = engine.prefill(b, lin)
        m_pf = monitor.end_window("prefill")
        monitor.begin_window("decode")
        engine.decode(state, lout)
        m_dec = monitor.end_window("decode")
        e_dec, t_dec = m_dec.total_energy_j, m_dec.time_s
        if getattr(engine, "decode_includes_prefill", False):
            t_dec = max(t_dec - m_pf.time_s, 1e-9)
            e_dec = None if e_dec is None or m_pf.total_energy_j is None else max(e_dec - m_pf.total_energy_j, 0.0)
        pf_e.append(m_pf.total_energy_j)
        pf_t.append(m_pf.time_s)
        dec_e.append(e_dec)
        dec_t.append(t_dec)
    return {"pf_e": _stats(pf_e), "pf_t": _stats(pf_t), "dec_e": _stats(dec_e), "dec_t": _stats(dec_t)}


def summarize(cfg: dict, m: dict, gpu_info: dict, num_gpus: int, engine_name: str, idle_w, repeats: int) -> dict:
    b, lout = cfg["batch_size"], cfg["output_tokens"]
    (pf_e, pf_e_sd), (pf_t, pf_t_sd) = m["pf_e"], m["pf_t"]
    (dec_e, dec_e_sd), (dec_t, dec_t_sd) = m["dec_e"], m["dec_t"]
    has_energy = pf_e is not None and dec_e is not None and pf_e > 0 and dec_e > 0
    nan = math.nan
    gpu = gpu_info.get("name", CPU_GPU)
    for prefix in ("NVIDIA ", "Nvidia "):
        gpu = gpu[len(prefix):] if gpu.startswith(prefix) else gpu
    row = {
        "model": cfg["model"], "gpu": gpu, "num_gpus": num_gpus, "tp": cfg["tp"], "pp": cfg["pp"], "ep": 1, "dp": 1,
        "batch_size": b, "input_tokens": cfg["input_tokens"], "output_tokens": lout, "task": "fixed-length",
        # measured idle power per GPU replaces the catalog's estimate in the static term
        "gpu_idle_w": idle_w / num_gpus if idle_w is not None else nan,
        "modality": "text",
        "energy_request_j": (pf_e + dec_e) / b if has_energy else nan,
        "energy_token_j": (pf_e + dec_e) / b / lout if has_energy else nan,
        "prefill_energy_j": pf_e / b if has_energy else nan,
        "decode_energy_j": dec_e / b if has_energy else nan,
        "ttft_s": pf_t, "itl_s": dec_t / lout,
        "avg_power_w": (pf_e + dec_e) / (pf_t + dec_t) if has_energy else nan,
        "throughput_tok_s": b * lout / (pf_t + dec_t),
        "source": f"energylens-profile:{engine_name}",
        "raw_energy_available": bool(has_energy),
        "raw_repeats": repeats,
        "raw_batch_prefill_energy_j": pf_e if has_energy else nan, "raw_batch_prefill_energy_sd_j": pf_e_sd if has_energy else nan,
        "raw_batch_decode_energy_j": dec_e if has_energy else nan, "raw_batch_decode_energy_sd_j": dec_e_sd if has_energy else nan,
        "raw_batch_prefill_time_s": pf_t, "raw_batch_prefill_time_sd_s": pf_t_sd,
        "raw_batch_decode_time_s": dec_t, "raw_batch_decode_time_sd_s": dec_t_sd,
        "raw_idle_power_w": idle_w if idle_w is not None else nan,
        "raw_gpu_name": gpu_info.get("name", CPU_GPU), "raw_driver": gpu_info.get("driver", ""),
        "raw_power_limit_w": gpu_info.get("power_limit_w", nan), "raw_sm_clock_mhz": gpu_info.get("sm_clock_mhz", nan),
        "raw_mem_clock_mhz": gpu_info.get("mem_clock_mhz", nan),
        "raw_measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return row


def pending(configs: list, output, retry_failed: bool = False, *, key=None, row_key=None, columns=KEY,
            text_columns=("model",)) -> tuple[list, dict, set]:
    """What a sweep still has to measure: (configurations to run, counts so far, keys recorded as failed before).

    Each configuration once (by `key`, default the engine sweep's; `row_key` keys the rows already in the
    files, default `key`); those measured in `output` are skipped, and those recorded as failed unless
    `retry_failed`. The local, the cluster and the endpoint sweep all start here."""
    key = key or _key
    row_key = row_key or key
    measured = _keys_of(output, row_key, columns, text_columns)
    failed_before = _keys_of(failed_path(output), row_key, columns, text_columns)
    todo, seen = [], set()
    counts = {"measured": 0, "skipped": 0, "failed": 0, "previously_failed": 0}
    for c in configs:
        k = key(c)
        if k in seen:  # the same configuration twice in one sweep is measured once
            continue
        seen.add(k)
        if k in measured:
            counts["skipped"] += 1
        elif k in failed_before and not retry_failed:
            counts["previously_failed"] += 1
        else:
            todo.append(c)
    return todo, counts, failed_before


def gpus_needed(cfg: dict) -> int:
    """GPUs one configuration occupies: tp x pp x dp."""
    return int(cfg["tp"]) * int(cfg["pp"]) * int(cfg.get("dp", 1))


def measure_row(engine, monitor, gpus, cfg: dict, *, idle_w, repeats: int, warmup: int) -> dict:
    """Load the engine for `cfg`, measure it (warm-up, then repeats) and return its schema row, which
    names this host and the UUIDs of the GPUs measured."""
    engine.load(cfg["model"], cfg["tp"], cfg["pp"])
    m = measure_config(engine, monitor, cfg, repeats, warmup)
    n = max(len(gpus), cfg["tp"] * cfg["pp"]) if gpus else cfg["tp"] * cfg["pp"]
    info = gpus[0].info() if gpus else {"name": CPU_GPU}
    row = summarize(cfg, m, info, n, engine.name, idle_w, repeats)
    row["node"] = socket.gethostname()
    row["gpu_uuids"] = ",".join(str(g.info().get("uuid", "")) for g in gpus)
    return row


def failure_reason(exc: BaseException) -> str:
    """One line saying why a configuration failed (out of memory named as such)."""
    if not str(exc):
        return type(exc).__name__
    return ("out of memory: " if _is_oom(exc) else f"{type(exc).__name__}: ") + str(exc).splitlines()[0][:300]


def record_measured(output, row: dict, retried: bool) -> None:
    """Append a measured row atomically; a configuration that had failed before leaves the failed file."""
    append_row(output, row)
    if retried:
        drop_failed(output, _key(row))


def record_failed(output, cfg: dict, reason: str, retried: bool) -> None:
    """Record a failed configuration with its reason in `<output>.failed.csv` (replacing its old record)."""
    record = {**{k: cfg[k] for k in KEY}, "status": "failed", "reason": reason,
              "raw_measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if retried:  # the new failure replaces the old record
        drop_failed(output, _key(cfg), record)
    else:
        append_row(failed_path(output), record)


def run_sweep(configs: list[dict], engine, gpus, output, *, repeats: int = 3, warmup: int = 1,
              idle_seconds: float = 2.0, progress=None, retry_failed: bool = False) -> dict:
    """Measure every configuration not already in `output` (or its failed sidecar), one after another here.

    gpus: GpuDevice list, or [] to run without energy (CPU). Configurations recorded as failed are
    skipped on resume unless `retry_failed`: then they run again and leave the failed file when they
    succeed (a new failure replaces their old record). Returns counts: measured, skipped (already in
    `output`), failed (in this run), previously_failed (recorded as failed before and not retried).
    """
    if repeats < 1:
        raise EnergyLensError("--repeats must be >= 1")
    todo, counts, failed_before = pending(configs, output, retry_failed)
    monitor = make_monitor(gpus, sync=engine.sync)
    idle = monitor.idle_power_w(idle_seconds) if gpus and todo else None
    for i, cfg in enumerate(todo):
        if progress:
            progress(i, len(todo), cfg)
        retried = _key(cfg) in failed_before
        try:
            row = measure_row(engine, monitor, gpus, cfg, idle_w=idle, repeats=repeats, warmup=warmup)
        except EnergyLensError:
            raise
        except Exception as exc:  # recorded, never lost: the sweep goes on with the next configuration
            record_failed(output, cfg, failure_reason(exc), retried)
            counts["failed"] += 1
            if hasattr(engine, "release"):
                engine.release()
            continue
        record_measured(output, row, retried)
        counts["measured"] += 1
    if progress:
        progress(len(todo), len(todo), None)
    return counts
