"""Traffic simulation benchmarks (not tests): speed, and agreement with the closed-form serving model.

usage: python benchmarks/bench_traffic.py [--data ../shared/data] [--compare] [--repeat 5]

Speed: the Azure 2023 conversation trace (19,366 requests, one hour) served by one deployment, timed after
the compiled loop is built (the first call's compile time is printed apart); per deployment and per request,
one process, one thread (the loop is serial). The step time is an illustrative roofline for an 8B-parameter
model in 16-bit weights on one H100 (weights 16 GB at 80% of 3.35 TB/s, 128 KiB of KV cache per context token,
2 x 8e9 FLOPs per token at 60% of 989 TFLOP/s, 1 ms + 10 us per request of host time): a physics estimate
written for this benchmark, not fitted on any measurement; speed does not depend on it much.

--compare: the simulation in a closed loop at fixed concurrency B (as a saturating benchmark client runs)
against model/serving.py's closed form, both on one step time t(d, p) = t0 + a d + c_pf p (d decoding
requests, p prompt tokens in the step): the closed form gets the decode step t(B, 0) and the prefill of B
prompts in one step t(0, B L_in), the inputs a time model gives it. Requests have fixed lengths; the first B
get staggered output lengths so the loop does not run in lockstep; the means are over requests issued after
the first 2B and finished before the last one was issued (the steady state). A closed loop issues a request
the moment one finishes, at a step boundary, so it waits no half step for the scheduler as the closed form
assumes of a request arriving at a random time: the TTFT difference is shown with and without that half step.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from energylens.traffic import Engine, StepTime, Workload, fewest_replicas, read_trace, simulate
from energylens.traffic.simulate import numba_available

ILLUSTRATIVE_8B_H100 = StepTime.roofline(
    fixed=[1e-3, 1e-5, 0, 0, 0],  # host time per step and per request in it
    memory=[16e9 / 2.68e12, 0, 131072 / 2.68e12, 0, 0],  # weights once per step, KV bytes per context token
    compute=[0, 16e9 / 593e12, 0, 16e9 / 593e12, 4 * 32 * 4096 / 593e12],  # linear FLOPs per token, attention pairs
)


def _numba_version() -> str:
    import numba

    return numba.__version__


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def speed(data: Path, repeat: int):
    conv = data / "azure-llm-trace-2023" / "AzureLLMInferenceTrace_conv.csv"
    code = data / "azure-llm-trace-2023" / "AzureLLMInferenceTrace_code.csv"
    if not conv.exists():
        print(f"speed: {conv} not found; skipped")
        return
    t0 = time.perf_counter()
    w = read_trace(conv)
    print(f"read_trace {conv.name}: {len(w):,} requests in {time.perf_counter() - t0:.3f} s")
    h100 = Engine.vllm_default("H100", 80)
    compiled = numba_available()
    how = f"numba {_numba_version()} compiles the loop or loads it from its cache" if compiled else "numba absent: Python"
    t0 = time.perf_counter()
    simulate(w.head(10), ILLUSTRATIVE_8B_H100, engine=h100)
    print(f"first call ({how}): {time.perf_counter() - t0:.2f} s")
    cases = [("conversation, 1 replica", w, dict(engine=h100)),
             ("conversation, 1 replica, 200k-token KV cache", w, dict(engine=Engine(1024, 8192, 200_000))),
             ("conversation, 4 replicas round robin", w, dict(replicas=4, engine=h100)),
             ("conversation, 4 replicas least loaded", w, dict(replicas=4, router="least_loaded", engine=h100)),
             ("conversation x4 rate, 1 replica", w.scaled(4), dict(engine=h100)),
             ("conversation, 4,096 replicas round robin", w, dict(replicas=4096, engine=h100))]
    if code.exists():
        cases.append(("code, 1 replica", read_trace(code), dict(engine=h100)))
    for name, wl, kw in cases:
        sec, res = timed(lambda: simulate(wl, ILLUSTRATIVE_8B_H100, **kw), repeat)
        s = res.summary()
        print(f"simulate {name}: {sec * 1e3:.1f} ms per deployment, {sec / len(wl) * 1e6:.2f} us per request "
              f"({int(res.steps.sum()):,} steps; p99 TTFT {s['ttft_p99_s']:.3f} s, p99 TPOT {s['tpot_p99_s'] * 1e3:.1f} ms, "
              f"utilization {s['utilization']:.2f}, mean batch {np.mean(s['mean_batch']):.1f})")
    sec, cap = timed(lambda: fewest_replicas(w.scaled(8), ILLUSTRATIVE_8B_H100, ttft_slo_s=0.5, tpot_slo_s=0.025,
                                             engine=Engine(256, 8192)), 1)
    print(f"fewest_replicas, conversation x8 rate, p99 TTFT <= 0.5 s and TPOT <= 25 ms, max_num_seqs 256: "
          f"{cap.replicas} replicas after {len(cap.trials)} searched counts + 2 reference runs, {sec:.2f} s")
    if compiled:
        small = w.head(2000)
        sec, _ = timed(lambda: simulate(small, ILLUSTRATIVE_8B_H100, engine=h100, compiled=False), 1)
        print(f"Python fallback (no numba), first 2,000 conversation requests, 1 replica: {sec:.2f} s, "
              f"{sec / len(small) * 1e6:.0f} us per request")


def steady_state(b, l_in, l_out, step, budget, n_requests):
    lengths_out = np.full(n_requests, l_out)
    lengths_out[:b] = np.ceil(l_out * (np.arange(b) + 1) / b)  # stagger the first wave
    w = Workload(np.zeros(n_requests), np.full(n_requests, l_in), lengths_out)
    res = simulate(w, step, engine=Engine(b, budget), concurrency=b)
    arrival = res.workload.arrival_s
    finish = arrival + res.latency_s
    keep = (np.arange(n_requests) >= 2 * b) & (finish <= arrival[-1])
    return float(np.mean(res.ttft_s[keep])), float(np.nanmean(res.tpot_s[keep])), int(keep.sum())


def compare():
    from energylens.model.serving import SCHEDULING_WAIT_STEPS, continuous_batching

    t0, a = 0.015, 1e-4  # 15 ms per step (weights), 0.1 ms per decoding request
    rows = []
    for b in (1, 4, 16, 64, 256):
        for l_in in (128, 1024, 4096):
            for l_out in (32, 256):
                for c_pf in (2e-5, 1e-4):
                    for budget in (2048, 8192):
                        step = StepTime.affine(t0, per_decoding_s=a, per_prefill_token_s=c_pf)
                        t_dec, t_pf = t0 + a * b, t0 + c_pf * b * l_in
                        budget_eff = budget if budget > b else 2 * b  # the closed form's rule, applied to both
                        cf = continuous_batching(np.array([t_pf]), np.array([t_dec]), np.array([b]), np.array([l_in]),
                                                 np.array([l_out]), np.array([budget]))
                        ttft, tpot, kept = steady_state(b, l_in, l_out, step, budget_eff, max(30 * b, 300))
                        cf_ttft, cf_tpot = float(cf["ttft_s"][0]), float(cf["tpot_s"][0])
                        rows.append((b, l_in, l_out, c_pf, budget, ttft, cf_ttft, cf_ttft - SCHEDULING_WAIT_STEPS * cf_tpot,
                                     tpot, cf_tpot, bool(cf["prefill_bound"][0])))
    print(f"closed loop at concurrency B vs model/serving.py; step = {t0 * 1e3:g} ms + {a * 1e3:g} ms per decoding "
          "request + c_pf per prompt token")
    # the summary by regime first, then every point
    arr = np.array([r[5:10] for r in rows])
    bound = np.array([r[10] for r in rows])
    d_ttft, d_ttft0, d_tpot = (arr[:, 1] / arr[:, 0] - 1) * 100, (arr[:, 2] / arr[:, 0] - 1) * 100, (arr[:, 4] / arr[:, 3] - 1) * 100
    for label, mask in (("all", np.ones(len(rows), bool)), ("prefill-bound", bound), ("not prefill-bound", ~bound)):
        if mask.any():
            print(f"{label} ({int(mask.sum())} points), closed form / simulation - 1: TTFT median {np.median(d_ttft[mask]):+.1f}% "
                  f"(range {d_ttft[mask].min():+.0f}% to {d_ttft[mask].max():+.0f}%); without the half-step wait median "
                  f"{np.median(d_ttft0[mask]):+.1f}% (range {d_ttft0[mask].min():+.0f}% to {d_ttft0[mask].max():+.0f}%); "
                  f"TPOT median {np.median(d_tpot[mask]):+.2f}% (range {d_tpot[mask].min():+.1f}% to {d_tpot[mask].max():+.1f}%)")
    print("| B | L_in | L_out | c_pf s/token | budget | TTFT sim ms | TTFT closed form ms | diff | diff without its "
          "half-step wait | TPOT sim ms | TPOT closed form ms | diff | prefill-bound (closed form) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for b, l_in, l_out, c_pf, budget, ts, tc, tc0, ps, pc, bound in rows:
        print(f"| {b} | {l_in} | {l_out} | {c_pf:g} | {budget} | {ts * 1e3:.1f} | {tc * 1e3:.1f} | {100 * (tc / ts - 1):+.0f}% "
              f"| {100 * (tc0 / ts - 1):+.0f}% | {ps * 1e3:.2f} | {pc * 1e3:.2f} | {100 * (pc / ps - 1):+.1f}% "
              f"| {'yes' if bound else 'no'} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("ENERGYLENS_DATA",
                                                     str(Path(__file__).resolve().parents[1].parent / "shared" / "data")))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--compare", action="store_true", help="also compare with the closed-form serving model")
    args = ap.parse_args()
    speed(Path(args.data), args.repeat)
    if args.compare:
        compare()


if __name__ == "__main__":
    main()
