"""Continuous batching with chunked prefill, per replica, with a router in front: `simulate`.

Each replica runs vLLM's V1 scheduler loop (vllm/v1/core/sched/scheduler.py, `Scheduler.schedule`):
every step has a budget of `max_num_batched_tokens`; running requests are served first, in admission
order (a decoding request takes one token, a partly prefilled prompt the next chunk of what is left);
then waiting requests are admitted first come first served while budget, seats (`max_num_seqs`
running) and KV-cache blocks last, each with a chunk of its prompt. When a running request needs a KV
block and none is free, the last admitted request is preempted (its cache dropped, recomputed when it
is admitted again; it goes back to the front of the queue) and no waiting request is admitted in that
step. A step's time comes from `StepTime`. Requests that arrive during a step wait for the next one; a
step that starts at time t sees every request that arrived at or before t.

The router assigns each request to a replica when it arrives: `round_robin` (request k to replica
k mod n) or `least_loaded` (the replica with the fewest requests assigned and not finished; ties to
the lowest index).
"""
from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..errors import EnergyLensError
from ..io import clip
from . import _kernel
from .steptime import StepTime
from .workload import Workload

ROUTERS = {"round_robin": _kernel.ROUND_ROBIN, "least_loaded": _kernel.LEAST_LOADED}
PERCENTILES = (50, 90, 99)
# vLLM's OpenAI-server batch defaults (vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults): GPUs with
# at least 70 GiB that are not A100s get the large pair, others the small one; max_num_seqs is then capped at
# max_num_batched_tokens. model/serving.py carries the same token budgets (a test checks they agree).
LARGE_GPU_DEFAULTS = (1024, 8192)  # (max_num_seqs, max_num_batched_tokens)
SMALL_GPU_DEFAULTS = (256, 2048)
LARGE_GPU_GIB = 70.0
BLOCK_SIZE = 16  # vLLM's default KV-cache block size on CUDA (tokens per block)
MAX_REPLICAS = 100_000


@dataclass(frozen=True)
class Engine:
    """The scheduler limits of one replica. `kv_cache_tokens`: KV-cache capacity in tokens (None: no limit,
    so no preemption); it is counted in blocks of `block_size` tokens, as vLLM allocates it."""

    max_num_seqs: int = SMALL_GPU_DEFAULTS[0]
    max_num_batched_tokens: int = SMALL_GPU_DEFAULTS[1]
    kv_cache_tokens: int | None = None
    block_size: int = BLOCK_SIZE

    def __post_init__(self):
        for name in ("max_num_seqs", "max_num_batched_tokens", "block_size"):
            _whole_option(getattr(self, name), name, 1, 10_000_000)
        if self.kv_cache_tokens is not None:
            _whole_option(self.kv_cache_tokens, "kv_cache_tokens", self.block_size, 10**13)
        if self.max_num_batched_tokens < self.max_num_seqs:
            raise EnergyLensError(f"max_num_batched_tokens ({self.max_num_batched_tokens}) must be >= max_num_seqs "
                                  f"({self.max_num_seqs}), as vLLM requires")

    @classmethod
    def vllm_default(cls, gpu_name: str, gpu_mem_gib: float, kv_cache_tokens: int | None = None) -> "Engine":
        """vLLM's OpenAI-server defaults for this GPU (one device; memory in GiB)."""
        large = gpu_mem_gib >= LARGE_GPU_GIB and "a100" not in str(gpu_name).lower()
        seqs, tokens = LARGE_GPU_DEFAULTS if large else SMALL_GPU_DEFAULTS
        return cls(min(seqs, tokens), tokens, kv_cache_tokens)

    @property
    def kv_blocks(self) -> int:
        return -1 if self.kv_cache_tokens is None else self.kv_cache_tokens // self.block_size


def _whole_option(value, name, lo, hi) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and lo <= value <= hi
    if not ok:
        raise EnergyLensError(f"{name}: expected a whole number from {lo:,} to {hi:,}, got {clip(value)}")
    return int(value)


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Per request (arrival order) and per replica outcomes of one simulation; times in seconds.

    `tpot_s` is (finish - first token) / (output tokens - 1), NaN for one-token outputs (as vLLM's benchmark
    leaves them out). `queue_s` is the wait from arrival to first admission. The horizon runs from the
    workload's origin (time 0) to the end of the last step; every replica is busy or idle throughout it.
    """

    workload: Workload  # the requests as simulated (closed loop: with the arrival times the loop gave them)
    replicas: int
    router: str
    engine: Engine
    replica: np.ndarray
    queue_s: np.ndarray
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    latency_s: np.ndarray
    preemptions: np.ndarray
    busy_s: np.ndarray
    busy_in_window_s: np.ndarray  # busy time before the last arrival (closed loop: all of it)
    window_s: float  # the traffic window: from time 0 to the last arrival
    steps: np.ndarray
    prefill_tokens: np.ndarray
    decode_tokens: np.ndarray
    mean_batch: np.ndarray  # time-averaged requests per step while busy
    horizon_s: float
    step_log: dict | None = field(default=None, repr=False)
    workload_is_open: bool = True

    @property
    def idle_s(self) -> np.ndarray:
        return self.horizon_s - self.busy_s

    @property
    def utilization(self) -> np.ndarray:
        """Busy share of the horizon, per replica."""
        return self.busy_s / self.horizon_s if self.horizon_s > 0 else np.zeros_like(self.busy_s)

    @property
    def load(self) -> float:
        """Busy share of the traffic window (time 0 to the last arrival), over all replicas: the utilization the
        offered rate causes, without the drain after the last arrival (which `utilization` includes). For a closed
        loop, the same as the mean of `utilization`."""
        if not self.workload_is_open:
            return float(self.busy_s.sum() / (self.replicas * self.horizon_s)) if self.horizon_s > 0 else 0.0
        return float(self.busy_in_window_s.sum() / (self.replicas * self.window_s)) if self.window_s > 0 else math.nan

    @property
    def throughput(self) -> float:
        """Requests finished per second over the horizon."""
        return len(self.ttft_s) / self.horizon_s if self.horizon_s > 0 else math.inf

    def percentile(self, metric: str, q: float) -> float:
        """The q-th percentile (linear interpolation) of `ttft_s`, `tpot_s`, `queue_s` or `latency_s`;
        NaN entries (TPOT of one-token outputs) are left out, NaN if nothing is left."""
        x = getattr(self, metric)
        x = x[~np.isnan(x)]
        return float(np.percentile(x, q)) if x.size else math.nan

    def summary(self) -> dict:
        """Flat JSON-ready numbers: p50/p90/p99 of TTFT, TPOT, queueing and latency; utilization; busy and idle."""
        out = {"requests": len(self.ttft_s), "replicas": self.replicas, "router": self.router,
               "horizon_s": self.horizon_s, "throughput_rps": self.throughput}
        for metric in ("ttft_s", "tpot_s", "queue_s", "latency_s"):
            base = metric[:-2]
            for q in PERCENTILES:
                out[f"{base}_p{q}_s"] = self.percentile(metric, q)
            x = getattr(self, metric)
            out[f"{base}_mean_s"] = float(np.nanmean(x)) if np.isfinite(x).any() else math.nan
        out["utilization"] = float(self.busy_s.sum() / (self.replicas * self.horizon_s)) if self.horizon_s > 0 else 0.0
        out["load"] = self.load
        out["busy_s"] = self.busy_s.tolist()
        out["idle_s"] = self.idle_s.tolist()
        out["mean_batch"] = self.mean_batch.tolist()
        out["preemptions"] = int(self.preemptions.sum())
        return out


def numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


@lru_cache(maxsize=None)
def _compiled():
    import numba

    return numba.njit(cache=True, nogil=True)(_kernel.run)


def use_compiled(compiled: bool | None) -> bool:
    """Whether a run is compiled: `None` -> numba when installed and ENERGYLENS_NO_COMPILE is unset."""
    if compiled is None:
        return numba_available() and not os.environ.get("ENERGYLENS_NO_COMPILE")
    if compiled and not numba_available():
        raise EnergyLensError("the compiled simulation needs numba (pip install 'energylens[fast]')")
    return bool(compiled)


def simulate(workload: Workload, step_time: StepTime, *, replicas: int = 1, router: str = "round_robin",
             engine: Engine = Engine(), concurrency: int | None = None, record_steps: bool = False,
             compiled: bool | None = None) -> SimulationResult:
    """Serve `workload` on `replicas` replicas, each an `engine` whose steps take `step_time`.

    Open loop by default: each request arrives at its time. `concurrency=B` closes the loop as a
    saturating benchmark client does: the first B requests arrive at time 0 and each later one when a
    request finishes (the workload's arrival times are ignored). `record_steps` keeps every step
    (replica, start, duration, its inputs d, c, p, q and the requests it carries) in `step_log`. `compiled`: None uses numba when installed.
    """
    if not isinstance(workload, Workload):
        raise EnergyLensError("simulate expects a Workload (traffic.poisson or traffic.read_trace)")
    n_rep = _whole_option(replicas, "replicas", 1, MAX_REPLICAS)
    if router not in ROUTERS:
        raise EnergyLensError(f"router: unknown {clip(router)!r}; expected one of {', '.join(ROUTERS)}")
    if concurrency is not None:
        _whole_option(concurrency, "concurrency", 1, 10**9)
    st = step_time.for_replicas(n_rep)
    if st.by_tokens.shape[1] and st.by_tokens.shape[1] <= engine.max_num_batched_tokens:
        raise EnergyLensError(f"step time by_tokens covers {st.by_tokens.shape[1]} token counts; a step can carry "
                              f"0 to {engine.max_num_batched_tokens} (max_num_batched_tokens)")
    if engine.kv_cache_tokens is not None:
        # A request's cache peaks at prompt + output - 1 tokens (the last token is never fed back).
        blocks = -(-(workload.prompt_tokens + workload.output_tokens - 1) // engine.block_size)
        too_big = np.flatnonzero(blocks > engine.kv_blocks)
        if too_big.size:
            i = int(too_big[0])
            raise EnergyLensError(f"request {i} needs {int(workload.prompt_tokens[i] + workload.output_tokens[i] - 1):,} "
                                  f"tokens of KV cache, more than a replica's {engine.kv_blocks * engine.block_size:,}")
    kernel = _compiled() if use_compiled(compiled) else _kernel.run
    arrival_in = np.zeros(len(workload)) if concurrency is not None else workload.arrival_s
    out = kernel(np.ascontiguousarray(arrival_in, dtype=np.float64),
                 np.ascontiguousarray(workload.prompt_tokens, dtype=np.int64),
                 np.ascontiguousarray(workload.output_tokens, dtype=np.int64),
                 n_rep, ROUTERS[router], 0 if concurrency is None else int(concurrency),
                 engine.max_num_seqs, engine.max_num_batched_tokens, engine.kv_blocks, engine.block_size,
                 st.fixed, st.memory, st.compute, st.by_tokens, bool(record_steps),
                 math.inf if concurrency is not None else float(workload.arrival_s[-1]))
    (arrival, replica_of, first_sched, first_token, finish, preemptions, busy, busy_window, batch_time, steps,
     prefill_tok, decode_tok, horizon, done, log_f, log_i) = out
    if done != len(workload):  # the loop serves every request; anything else is a bug here, not bad input
        raise RuntimeError(f"simulation ended with {len(workload) - done} requests unserved")
    out_tokens = workload.output_tokens
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out_tokens > 1, (finish - first_token) / (out_tokens - 1), np.nan)
        mean_batch = np.where(busy > 0, batch_time / busy, 0.0)
    served = workload if concurrency is None else Workload(arrival, workload.prompt_tokens, out_tokens,
                                                           f"{workload.source}, closed loop at {concurrency}")
    log = None
    if record_steps:
        log = {"replica": log_i[:, 0], "start_s": log_f[:, 0], "duration_s": log_f[:, 1], "decoding": log_i[:, 1],
               "context_tokens": log_i[:, 2], "prefill_tokens": log_i[:, 3], "prefill_pairs": log_i[:, 4],
               "requests": log_i[:, 5]}
    return SimulationResult(workload=served, replicas=n_rep, router=router, engine=engine, replica=replica_of,
                            queue_s=first_sched - arrival, ttft_s=first_token - arrival, tpot_s=tpot,
                            latency_s=finish - arrival, preemptions=preemptions, busy_s=busy,
                            busy_in_window_s=busy_window, window_s=float(arrival[-1]), steps=steps,
                            prefill_tokens=prefill_tok, decode_tokens=decode_tok, mean_batch=mean_batch,
                            horizon_s=float(horizon), step_log=log, workload_is_open=concurrency is None)
