"""What the benchmark importers (vllm-bench, guidellm) share: their options, and the join of each result's
time window with a GPU power log (data/powerlog.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ..powerlog import PowerLog, WindowEnergy, parse_tz, read_power_log, show_time, window_energy

MIN_OVERLAP = 0.9  # default share of a result's window the power log must cover


@dataclass
class BenchOptions:
    """The deployment and the power log a benchmark file does not record itself (`data import` options)."""

    power: Path | None = None
    tz: str | None = None  # zone of times written without one (vLLM's `date`, nvidia-smi); None: this machine's
    power_offset_s: float = 0.0  # added to the power log's times (a known clock skew)
    gpus: list | None = None  # GPUs of the log to count (indices or UUIDs); None: all
    gpu: str | None = None  # accelerator name when the log does not name it
    model: str | None = None
    tp: int | None = None
    pp: int | None = None
    ep: int | None = None
    dp: int | None = None
    max_num_seqs: int | None = None
    min_overlap: float = MIN_OVERLAP

    def load_power(self) -> PowerLog:
        if self.power is None:
            raise DataError("this kind needs a GPU power log: give --power FILE (nvidia-smi CSV, DCGM exporter dump "
                            "or Zeus JSON)")
        return read_power_log(self.power, parse_tz(self.tz), self.power_offset_s).select(self.gpus)


def join(log: PowerLog, t0: float, t1: float, what: str, path, min_overlap: float) -> WindowEnergy:
    """The energy of [t0, t1] from `log`; one DataError line when the log does not cover enough of it."""
    got = window_energy(log, t0, t1)
    if got.coverage <= 0 or got.energy_j is None:
        a, b = log.span()
        raise DataError(f"the clocks do not overlap: {what} ran {show_time(t0)} to {show_time(t1)}, the power log "
                        f"{log.path} spans {show_time(a)} to {show_time(b)}; if one clock is off give --power-offset "
                        "SECONDS, or --tz for the zone of times written without one", path=path)
    if got.coverage < min_overlap:
        raise DataError(f"the power log covers {got.coverage:.0%} of {what} ({show_time(t0)} to {show_time(t1)}); "
                        f"at least {min_overlap:.0%} is needed (--min-overlap)", path=path)
    return got


def deployment(opts: BenchOptions, log: PowerLog, meta: dict, path) -> dict:
    """num_gpus (GPUs in the log), gpu name, and tp/pp/ep/dp from the options, else the file's own metadata, else 1."""
    gpu = opts.gpu or log.gpu_name()
    if not gpu:
        raise DataError("the power log does not name the GPU model; give --gpu (e.g. --gpu H100)", path=path)
    out = {"gpu": gpu, "num_gpus": len(log.series)}
    for key, names in (("tp", ("tp", "tensor_parallel_size")), ("pp", ("pp", "pipeline_parallel_size")),
                       ("ep", ("ep", "expert_parallel_size")), ("dp", ("dp", "data_parallel_size"))):
        value = getattr(opts, key)
        if value is None:
            value = next((meta[n] for n in names if isinstance(meta, dict) and meta.get(n) not in (None, "")), 1)
        try:
            out[key] = int(value)
        except (TypeError, ValueError):
            raise DataError(f"{key} = {str(value)[:20]!r} in the file's metadata is not a whole number", path=path)
    return out


def number(obj, *keys, path=None, what="field"):
    """obj[k1][k2]... as a float; None where absent or null."""
    for k in keys:
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    if obj is None:
        return None
    try:
        value = float(obj)
    except (TypeError, ValueError):
        raise DataError(f"{what} '{'.'.join(keys)}' is not a number: {str(obj)[:30]!r}", path=path) from None
    return value if math.isfinite(value) else None
