"""Speed benchmarks (not tests): fit, predict, recommend, CLI end to end, discovery.

usage: python benchmarks/bench_speed.py [--data ../shared/data] [--skip-discovery]
Prints one line per benchmark; docs/BENCHMARKS.md holds the latest results.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path


warnings.filterwarnings("ignore")


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("ENERGYLENS_DATA", "../shared/data"))
    ap.add_argument("--skip-discovery", action="store_true")
    args = ap.parse_args()
    from energylens.data.importers import import_dataset
    from energylens.model.default import default_model
    from energylens.model.estimator import EnergyLensRegressor
    from energylens.recommendation.search import enumerate_candidates, recommend

    data = Path(args.data)
    v3 = import_dataset("mlenergy-v3", data / "mlenergy-v3")
    rows50 = v3.sample(50, random_state=0)
    med, best = timed(lambda: EnergyLensRegressor(random_state=0).fit(rows50), 10)
    print(f"fit --structure auto, 50 rows (mlenergy-v3; structures compared by 5-fold CV): median {1e3 * med:.0f} ms, "
          f"best {1e3 * best:.0f} ms (target < 2 s)")
    med, best = timed(lambda: EnergyLensRegressor(structure="physics", random_state=0, cv_folds=0).fit(rows50), 30)
    med_cv, _ = timed(lambda: EnergyLensRegressor(structure="physics", random_state=0).fit(rows50), 30)
    print(f"fit --structure physics, 50 rows (energy and time models, 4 starts each): median {1e3 * med:.1f} ms, "
          f"best {1e3 * best:.1f} ms (target < 20 ms); with its 5-fold CV error: median {1e3 * med_cv:.1f} ms")

    model = default_model()
    big = v3.drop(columns=[c for c in v3.columns if c.startswith("source")]).sample(1_000_000, replace=True, random_state=0)
    big = big.reset_index(drop=True)
    model.predict(big)  # first touch of the memory is not part of the steady state
    med, best = timed(lambda: model.predict(big), 5)
    print(f"predict energy per request of 1,000,000 configurations: median {med:.2f} s, best {best:.2f} s (target < 1 s)")
    med, best = timed(lambda: model.predict_frame(big), 3)
    print(f"predict_frame of 1,000,000 configurations (energy split, TTFT, ITL, 95% intervals): median {med:.2f} s")

    kw = dict(model="meta-llama/Llama-3.1-70B-Instruct", gpus=["H100", "B200", "A100", "H200", "MI300X"], max_gpus=64,
              input_tokens=1024, output_tokens=256, batches=list(range(1, 1025, 4)))
    n = len(enumerate_candidates(kw["model"], kw["gpus"], kw["max_gpus"], 1024, 256, kw["batches"]))
    med, best = timed(lambda: recommend(kw["model"], kw["gpus"], max_gpus=kw["max_gpus"], input_tokens=1024,
                                        output_tokens=256, batches=kw["batches"]), 3)
    print(f"recommend over {n:,} candidate configurations: median {med:.2f} s (target < 1 s for >= 100,000)")

    cmd = [sys.executable, "-m", "energylens", "recommend", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100",
           "--gpu", "B200", "--max-gpus", "8", "--input-tokens", "1024", "--output-tokens", "256"]
    med, best = timed(lambda: subprocess.run(cmd, capture_output=True, check=True), 5)
    print(f"CLI recommend end to end (process start to exit): median {med:.2f} s (target < 2 s)")

    if not args.skip_discovery:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "v3-50.csv"
            rows50.to_csv(csv, index=False)
            cmd = [sys.executable, "-m", "energylens", "discover", str(csv), "-o", str(Path(tmp) / "m.json")]
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            print(f"energylens discover on 50 ML.ENERGY v3 rows (default 20 s search budget, 1 thread), process start "
                  f"to model file: {time.perf_counter() - t:.0f} s (target < 30 s)")


if __name__ == "__main__":
    main()
