"""Speed benchmarks (not tests): fit, predict, recommend, CLI end to end, discovery.

usage: python benchmarks/bench_speed.py [--data ../shared/data] [--skip-discovery] [--stream-rows N]
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

import numpy as np


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
    ap.add_argument("--stream-rows", type=int, default=1_000_000, help="rows of the CSV given to `energylens predict`")
    args = ap.parse_args()
    from energylens.data.importers import import_dataset
    from energylens.model.estimator import EnergyLensRegressor

    data = Path(args.data)
    v3 = import_dataset("mlenergy-v3", data / "mlenergy-v3")
    rows50 = v3.sample(50, random_state=0)
    med, best = timed(lambda: EnergyLensRegressor(random_state=0).fit(rows50), 5)
    print(f"fit --structure auto, 50 rows (mlenergy-v3; structures compared by 5-fold CV, no discovery): median "
          f"{med:.2f} s, best {best:.2f} s (target < 2 s)")
    med, best = timed(lambda: EnergyLensRegressor(structure="physics", random_state=0, cv_folds=0).fit(rows50), 10)
    med_cv, _ = timed(lambda: EnergyLensRegressor(structure="physics", random_state=0).fit(rows50), 10)
    print(f"fit --structure physics, 50 rows (time and energy jointly, 4 starts): median {1e3 * med:.0f} ms, "
          f"best {1e3 * best:.0f} ms; with its 5-fold CV error: median {1e3 * med_cv:.0f} ms")
    one = EnergyLensRegressor(structure="physics", random_state=0, cv_folds=0, n_starts=1)
    med1, best1 = timed(lambda: one.fit(rows50), 10)
    four = EnergyLensRegressor(structure="physics", random_state=0, cv_folds=0, n_starts=4).fit(rows50)
    change = float(np.max(np.abs(one.fit(rows50).coef_ / four.coef_ - 1)))
    print(f"fit --structure physics, 50 rows, 1 start: median {1e3 * med1:.0f} ms, best {1e3 * best1:.0f} ms; 4 starts "
          f"change the coefficients by at most {100 * change:.2g}%")

    predict_section(v3)
    recommend_section()
    startup_section()
    stream_section(v3, args.stream_rows)

    if not args.skip_discovery:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "v3-50.csv"
            rows50.to_csv(csv, index=False)
            cmd = [sys.executable, "-m", "energylens", "fit", str(csv), "-o", str(Path(tmp) / "f.json")]
            walls = []
            for _ in range(3):
                t = time.perf_counter()
                subprocess.run(cmd, capture_output=True, check=True)
                walls.append(time.perf_counter() - t)
            print(f"energylens fit on 50 ML.ENERGY v3 rows with discovery (its default 2 s search), process start to "
                  f"model file: median {np.median(walls):.1f} s, best {min(walls):.1f} s (target <= 10 s)")
            cmd = [sys.executable, "-m", "energylens", "discover", str(csv), "-o", str(Path(tmp) / "m.json")]
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            print(f"energylens discover on 50 ML.ENERGY v3 rows (default 20 s search budget, 1 thread), process start "
                  f"to model file: {time.perf_counter() - t:.0f} s (target < 30 s)")


def predict_section(v3):
    """1e6 energy predictions by the generated formula (model.predict), predict_frame, and XGBoost on the same rows."""
    import xgboost as xgb

    from energylens.features.physics import compute_features
    from energylens.model.default import default_model

    model = default_model()
    big = v3.sample(1_000_000, replace=True, random_state=0).reset_index(drop=True)
    model.predict(big)
    p_med, p_best = timed(lambda: model.predict(big), 5)
    f = compute_features(big)
    s = model.structure_
    e_med, _ = timed(lambda: s.evaluate(f, model.coef_), 5)
    ft_med, _ = timed(lambda: compute_features(big), 3)
    f_med, _ = timed(lambda: model.predict_frame(big), 3)
    numeric = [c for c in big.columns if big[c].dtype.kind in "fiu" and not c.endswith("_j") and c not in
               ("itl_s", "ttft_s", "avg_power_w", "throughput_tok_s", "avg_batch_size")]
    X = np.ascontiguousarray(big[numeric].to_numpy(float))
    y = np.log(v3["energy_request_j"].to_numpy(float))
    Xtrain = np.ascontiguousarray(v3[numeric].to_numpy(float))
    booster = xgb.XGBRegressor(n_estimators=400, max_depth=4, learning_rate=0.05, tree_method="hist",
                               n_jobs=os.cpu_count()).fit(Xtrain, y).get_booster()
    booster.inplace_predict(X)
    x_med, x_best = timed(lambda: booster.inplace_predict(X), 5)
    print(f"model.predict of 1,000,000 configurations (DataFrame in, validated frame; features {ft_med:.2f} s, the "
          f"generated formula {e_med:.2f} s): median {p_med:.3f} s, best {p_best:.3f} s")
    print(f"XGBoost inplace_predict, same 1,000,000 rows ({len(numeric)} numeric columns, 400 trees, depth 4): median "
          f"{x_med:.3f} s; EnergyLens is {x_med / p_med:.1f}x faster from the DataFrame")
    print(f"predict_frame of 1,000,000 configurations (energy split, TTFT, ITL, power, 95% intervals with exact "
          f"derivatives, training-domain flags): median {f_med:.2f} s")


def recommend_section():
    from energylens.recommendation.search import enumerate_candidates, recommend
    from energylens.recommendation.space import parallel_layouts
    from energylens.catalog import model_catalog

    from energylens.recommendation.space import default_gpu_counts

    name = "meta-llama/Llama-3.1-70B"
    gpus = ["H100-SXM", "H100-PCIe", "H200", "B200", "A100-SXM4-80GB", "GH200", "MI300X", "L40S"]
    spec = model_catalog().get(name)
    layouts_64 = sum(len(parallel_layouts(spec, c)) for c in default_gpu_counts(64, spec))
    batches = list(range(1, 1 + 4 * (1_000_000 // (len(gpus) * layouts_64) + 1), 4))  # about 1,000,000 candidates
    n = len(enumerate_candidates(name, gpus, 64, 1024, 256, batches))
    med, _ = timed(lambda: recommend(name, gpus, max_gpus=64, input_tokens=1024, output_tokens=256, batches=batches,
                                     itl_slo_ms=None, ttft_slo_ms=None), 3)
    print(f"recommend over {n:,} candidates ({len(gpus)} GPU types x up to 64 GPUs x every layout x {len(batches)} "
          f"batches): median {med:.2f} s (target < 1 s: ratio {med:.2f})")
    for small, large in ((64, 4096),):
        layouts = [sum(len(parallel_layouts(spec, c)) for c in default_gpu_counts(m, spec)) for m in (small, large)]
        t = [timed(lambda m=m: enumerate_candidates(name, gpus, m, 1024, 256, [1, 8, 64]), 3)[0] for m in (small, large)]
        print(f"enumerate_candidates --max-gpus {small} -> {large}: layouts x{layouts[1] / layouts[0]:.1f}, time "
              f"x{t[1] / t[0]:.1f} ({1e3 * t[0]:.0f} ms -> {1e3 * t[1]:.0f} ms)")


def startup_section():
    for args, target in ((["--version"], 0.3), (["recommend", "--help"], 0.5)):
        cmd = [sys.executable, "-m", "energylens", *args]
        med, best = timed(lambda: subprocess.run(cmd, capture_output=True, check=True), 7)
        print(f"energylens {' '.join(args)}, process start to exit: median {med:.2f} s, best {best:.2f} s "
              f"(target < {target} s: ratio {med / target:.2f})")
    cmd = [sys.executable, "-m", "energylens", "recommend", "--model", "meta-llama/Llama-3.1-70B", "--gpu", "H100",
           "--gpu", "B200", "--max-gpus", "8", "--input-tokens", "1024", "--output-tokens", "256"]
    med, _ = timed(lambda: subprocess.run(cmd, capture_output=True, check=True), 5)
    print(f"CLI recommend end to end (process start to exit): median {med:.2f} s")


def _run_measured(cmd):
    """(wall seconds, peak RSS MB) of a child process (/usr/bin/time -v where present)."""
    t = time.perf_counter()
    if Path("/usr/bin/time").exists():
        out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=True).stderr
        rss = next(int(line.split(":")[1]) for line in out.splitlines() if "Maximum resident" in line) / 1024
    else:
        import resource

        subprocess.run(cmd, capture_output=True, check=True)
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return time.perf_counter() - t, rss


def stream_section(v3, rows: int):
    cols = [c for c in v3.columns if not c.startswith("source")]
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "big.csv"
        v3[cols].sample(rows, replace=True, random_state=0).to_csv(csv, index=False)
        wall, rss = _run_measured([sys.executable, "-m", "energylens", "predict", "default", str(csv), "-o",
                                   str(Path(tmp) / "out.csv")])
        print(f"energylens predict on a {rows:,}-row CSV ({len(cols)} columns, streamed): {wall:.1f} s, peak RSS "
              f"{rss:.0f} MB (targets: < 500 MB; {rows / 1e6 * 3:.1f} s: ratio {wall / (rows / 1e6 * 3):.1f})")
        stream_stages(csv, Path(tmp) / "stages.csv", rows)
        wall, rss = _run_measured([sys.executable, "-m", "energylens", "explain", "default", str(csv), "--rows", "1"])
        print(f"energylens explain --rows 1 on that file: {wall:.2f} s, peak RSS {rss:.0f} MB")


def stream_stages(csv: Path, out: Path, rows: int):
    """Where predict's time goes: each stage of predict_file run one after the other (no overlap), in process."""
    from energylens.data.stream import TableWriter, iter_chunks, validated
    from energylens.model.default import default_model

    model, spent = default_model(), dict.fromkeys(("read", "validate", "predict", "write"), 0.0)
    writer, clock = TableWriter(out, parquet=False), time.perf_counter()
    for offset, chunk in iter_chunks(csv):  # reading happens while the loop asks for the next chunk
        read = time.perf_counter()
        df = validated(chunk, csv, offset, require_energy=False)
        checked = time.perf_counter()
        pred = model.predict_arrays(df)
        predicted = time.perf_counter()
        writer.write(df, pred)
        written = time.perf_counter()
        for stage, seconds in zip(spent, (read - clock, checked - read, predicted - checked, written - predicted)):
            spent[stage] += seconds
        clock = written
    writer.close()
    print(f"predict_file stages on the {rows:,}-row CSV, serial in process (the CLI overlaps writing with the rest): "
          + ", ".join(f"{k} {v:.2f} s" for k, v in spent.items()) + f"; sum {sum(spent.values()):.2f} s")


if __name__ == "__main__":
    main()
