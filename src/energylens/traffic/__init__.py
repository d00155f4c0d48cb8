"""Traffic: what a deployment does with the requests it is actually sent (docs/TRAFFIC.md).

Public API (everything else in this package is internal):

Workloads
    Workload(arrival_s, prompt_tokens, output_tokens, source)  requests in arrival order
    poisson(rate, input_tokens=, output_tokens=, requests= | duration_s=, spread=1.0, seed=0)
        Poisson arrivals with lognormal lengths of the given means (generated, seeded)
    read_trace(path, rate_scale=1.0)  Azure `TIMESTAMP,ContextTokens,GeneratedTokens` or plain
        `arrival_s,prompt_tokens,output_tokens` CSV; rate_scale K replays it K times faster
    Workload.scaled(K), Workload.head(n), Workload.offered_rate

Time model (supplied by the caller)
    StepTime(fixed, memory, compute, by_tokens)  seconds of one engine step per replica:
        fixed . x + max(memory . x, compute . x) + by_tokens[d + p],
        x = (1, decoding requests d, their context tokens c, prefill tokens p, prefill pairs q)
    StepTime.affine(...), StepTime.roofline(...), StepTime.constant(s)

Simulation
    Engine(max_num_seqs=256, max_num_batched_tokens=2048, kv_cache_tokens=None, block_size=16)
    Engine.vllm_default(gpu_name, gpu_mem_gib)  vLLM's OpenAI-server defaults for a GPU
    simulate(workload, step_time, replicas=1, router="round_robin" | "least_loaded", engine=Engine(),
             concurrency=None (open loop) | B (closed loop), record_steps=False, compiled=None)
        -> SimulationResult: per request queue_s, ttft_s, tpot_s, latency_s, replica, preemptions;
           per replica busy_s, idle_s (busy + idle = horizon_s), utilization, steps, prefill/decode
           tokens, mean_batch; load (busy share until the last arrival), throughput, step_log,
           percentile(metric, q), summary() (p50/p90/p99, JSON-ready)

Capacity
    fewest_replicas(workload, step_time, ttft_slo_s=, tpot_slo_s=, percentile=99, engine=, router=)
        -> Capacity(replicas, result, offered_rate, sustainable_rate, trials)
    sustainable_rate(workload, step_time, engine)  requests/s of one replica at saturation

Errors are the project's: `DataError` for a bad trace file (path, row, column), `EnergyLensError` for
a bad parameter, `InfeasibleError` when no replica count meets the SLOs; each one line.
"""
from .capacity import Capacity, fewest_replicas, sustainable_rate
from .simulate import ROUTERS, Engine, SimulationResult, simulate
from .steptime import StepTime
from .workload import Workload, poisson, read_trace

__all__ = ["Capacity", "Engine", "ROUTERS", "SimulationResult", "StepTime", "Workload", "fewest_replicas",
           "poisson", "read_trace", "simulate", "sustainable_rate"]
