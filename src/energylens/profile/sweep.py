"""Profiling sweeps: every configuration measured, appended atomically, resumable, failures recorded.

Output rows follow the profiling schema (docs/SCHEMA.md), so `energylens fit` reads them directly.
Failed configurations (out of memory, ...) go to a sidecar file `<output>.failed.csv` with the reason.
Warm-up runs are not recorded; repeats are summarized by their mean and standard deviation.
"""
from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..errors import EnergyLensError
from ..io import read_table, write_table
from .monitor import make_monitor

KEY = ("model", "tp", "pp", "batch_size", "input_tokens", "output_tokens")


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
        return [{"model": self.model, "tp": tp, "pp": pp, "batch_size": b, "input_tokens": i, "output_tokens": o}
                for tp, pp, b, i, o in itertools.product(self.tp, self.pp, self.batch, self.input_tokens, self.output_tokens)]


def configurations_from_plan(path, model: str | None = None) -> list[dict]:
    """Configurations of a sweep file written by `energylens plan`."""
    df = read_table(path)
    need = [c for c in ("tp", "pp", "batch_size", "input_tokens", "output_tokens") if c not in df.columns]
    if need:
        raise EnergyLensError(f"{path}: sweep file lacks column '{need[0]}'")
    out = []
    for _, r in df.iterrows():
        out.append({"model": model or r.get("model"), "tp": int(r["tp"]), "pp": int(r["pp"]),
                    "batch_size": int(r["batch_size"]), "input_tokens": int(r["input_tokens"]),
                    "output_tokens": int(r["output_tokens"])})
    return out


def _key(row) -> tuple:
    return tuple((str(row[k]) if k == "model" else int(float(row[k]))) for k in KEY)


def failed_path(output) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".failed.csv")


def done_keys(output) -> set:
    keys = set()
    for p in (Path(output), failed_path(output)):
        if p.exists() and p.stat().st_size > 0:
            df = read_table(p)
            if all(k in df.columns for k in KEY):
                keys |= {_key(r) for _, r in df.iterrows()}
    return keys


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
    gpu = gpu_info.get("name", "cpu")
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
        "raw_gpu_name": gpu_info.get("name", "cpu"), "raw_driver": gpu_info.get("driver", ""),
        "raw_power_limit_w": gpu_info.get("power_limit_w", nan), "raw_sm_clock_mhz": gpu_info.get("sm_clock_mhz", nan),
        "raw_mem_clock_mhz": gpu_info.get("mem_clock_mhz", nan),
        "raw_measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return row


def run_sweep(configs: list[dict], engine, gpus, output, *, repeats: int = 3, warmup: int = 1,
              idle_seconds: float = 2.0, progress=None) -> dict:
    """Measure every configuration not already in `output` (or its failed sidecar).

    gpus: GpuDevice list, or [] to run without energy (CPU). Returns counts of done/skipped/failed.
    """
    if repeats < 1:
        raise EnergyLensError("--repeats must be >= 1")
    done = done_keys(output)
    todo = [c for c in configs if _key(c) not in done]
    monitor = make_monitor(gpus, sync=engine.sync)
    idle = monitor.idle_power_w(idle_seconds) if gpus and todo else None
    info = gpus[0].info() if gpus else {"name": "cpu"}
    counts = {"measured": 0, "skipped": len(configs) - len(todo), "failed": 0}
    for i, cfg in enumerate(todo):
        if progress:
            progress(i, len(todo), cfg)
        try:
            engine.load(cfg["model"], cfg["tp"], cfg["pp"])
            m = measure_config(engine, monitor, cfg, repeats, warmup)
            n = max(len(gpus), cfg["tp"] * cfg["pp"]) if gpus else cfg["tp"] * cfg["pp"]
            append_row(output, summarize(cfg, m, info, n, engine.name, idle, repeats))
            counts["measured"] += 1
        except EnergyLensError:
            raise
        except Exception as exc:  # recorded, never lost: the sweep goes on with the next configuration
            reason = ("out of memory: " if _is_oom(exc) else f"{type(exc).__name__}: ") + str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            append_row(failed_path(output), {**cfg, "status": "failed", "reason": reason,
                                             "raw_measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
            counts["failed"] += 1
            if hasattr(engine, "release"):
                engine.release()
    if progress:
        progress(len(todo), len(todo), None)
    return counts
