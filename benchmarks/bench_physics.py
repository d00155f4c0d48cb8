"""Physical bounds over everything `recommend` can enumerate: the mean power per GPU that each ranked
deployment implies (energy per request / its GPU-seconds per request) must lie between the GPU's idle
power and its TDP.

usage: python benchmarks/bench_physics.py [--max-gpus 16] [--model-file default]
Every catalog model on every catalog GPU (one GPU type at a time), up to --max-gpus GPUs, every layout and
the default batch sizes, SLOs lifted, prompt/output lengths of three workloads. Prints one line per count.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
WORKLOADS = ((1024, 256), (8000, 400), (200, 2000))  # (prompt, output) tokens: chat, long prompt, long output


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-gpus", type=int, default=16)
    ap.add_argument("--model-file", default=None)
    args = ap.parse_args()

    from energylens.catalog import hardware_catalog, model_catalog
    from energylens.errors import InfeasibleError
    from energylens.recommendation.search import recommend

    hw, models = hardware_catalog(), model_catalog()
    t0 = time.monotonic()
    rows = outside = deployments = 0
    low, high = np.inf, -np.inf
    for m in models.names():
        for g in hw.names():
            spec = hw.get(g)
            for lin, lout in WORKLOADS:
                try:
                    res = recommend(m, [g], max_gpus=args.max_gpus, input_tokens=lin, output_tokens=lout,
                                    itl_slo_ms=None, ttft_slo_ms=None, model_file=args.model_file, return_all=True)
                except InfeasibleError:
                    continue
                deployments += 1
                p = res["energy_request_j"].to_numpy() / res["gpu_seconds_per_request"].to_numpy()
                frac = (p - spec.idle_w) / (spec.tdp_w - spec.idle_w)
                rows += len(p)
                outside += int(np.sum((frac < -1e-9) | (frac > 1 + 1e-9) | ~np.isfinite(frac)))
                low, high = min(low, float(np.nanmin(frac))), max(high, float(np.nanmax(frac)))
    print(f"physical bounds: {outside} of {rows:,} ranked deployments imply a mean power per GPU outside [idle, TDP] "
          f"({len(models.names())} catalog models x {len(hw.names())} catalog GPUs x {len(WORKLOADS)} workloads, up to "
          f"{args.max_gpus} GPUs, SLOs lifted; {deployments} feasible searches); (power - idle) / (TDP - idle) spans "
          f"{low:.3f} to {high:.3f}; {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
