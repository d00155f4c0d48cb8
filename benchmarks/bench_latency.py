"""Latency model checks (not tests): measured TTFT and ITL against the time model and the serving model.

usage: python benchmarks/bench_latency.py [--data ../shared/data]
Prints one line per check; benchmarks/run_all.py puts them in docs/BENCHMARKS.md.

What the data can check. Splitwise and the project's H100 file measure the prefill time of one batch of
prompts that arrive together (static batching) and the decode step time: they check the time model's two
parts, each fitted on one dataset and tested on the other (other GPUs, models, engines). ML.ENERGY v3 runs
vLLM with continuous batching and reports the median ITL and the output throughput; by Little's law, running
batch / throughput is a request's end-to-end time per output token: it checks the serving model (decode steps
plus the prefill chunks interleaved with them, and the time to the first token) against the decode step alone.
v3's prompt lengths are per-task assumptions (catalog/data/tasks.toml), not measurements. No public set here measures TTFT
under continuous batching, so the serving TTFT itself is not checked against a measurement.
The overhead coefficients' nominal scales were set with ML.ENERGY v3 and the H100 file in view (model/terms.py
records it in each coefficient's seen_with): only the Splitwise results are free of that.
"""
from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")


def mape(pred, meas) -> float:
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    ok = np.isfinite(pred) & np.isfinite(meas) & (meas > 0)
    return float(100 * np.mean(np.abs(pred[ok] / meas[ok] - 1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("ENERGYLENS_DATA", "../shared/data"))
    args = ap.parse_args()
    from energylens.evaluation.runner import load_datasets
    from energylens.model.estimator import EnergyLensRegressor

    sets = load_datasets(Path(args.data))

    def fit(df):
        return EnergyLensRegressor(structure="physics", cv_folds=0, random_state=0).fit(df)

    for train, test in (("gpu-prefill-decode", "splitwise"), ("splitwise", "gpu-prefill-decode")):
        if train not in sets or test not in sets:
            continue
        p = fit(sets[train]).predict_frame(sets[test])
        d = sets[test]
        print(f"static batch, time model fitted on {train} ({len(sets[train])} rows), tested on {test} ({len(d)} rows): "
              f"batch-prefill time (measured TTFT) MAPE {mape(p['pred_ttft_s'], d['ttft_s']):.1f}%, decode step (ITL) "
              f"MAPE {mape(p['pred_itl_s'], d['itl_s']):.1f}%")
        own = fit(d).predict_frame(d)
        print(f"static batch, {test} in sample: batch-prefill time MAPE {mape(own['pred_ttft_s'], d['ttft_s']):.1f}%, "
              f"decode step MAPE {mape(own['pred_itl_s'], d['itl_s']):.1f}%")

    if "mlenergy-v3" in sets:
        v3 = sets["mlenergy-v3"]
        # The decode step is fitted on v3's median ITL alone (throughput withheld); the check is whether the
        # prefill chunks interleaved by the serving model account for the gap between the median ITL and the
        # mean time per output token, running batch / throughput, which grows with prompt / output length.
        model = fit(v3.drop(columns=["throughput_tok_s"]))
        at = v3.copy()
        at["batch_size"] = np.maximum(1.0, np.round(at["avg_batch_size"].to_numpy(float)))  # measured concurrency
        p = model.predict_frame(at)
        # Little's law in a closed loop: running batch / output throughput = a request's end-to-end time / L_out.
        per_token = at["avg_batch_size"].to_numpy(float) / at["throughput_tok_s"].to_numpy(float)
        served = p["pred_serving_latency_s"].to_numpy() / at["output_tokens"].to_numpy(float)
        print(f"continuous batching, ML.ENERGY v3 ({len(v3)} rows, vLLM), decode step fitted on the median ITL alone: "
              f"end-to-end time per output token (running batch / throughput, Little's law) MAPE "
              f"{mape(served, per_token):.1f}% with the serving model, {mape(p['pred_itl_s'], per_token):.1f}% with the "
              f"decode step alone")
        meas = per_token / v3["itl_s"].to_numpy(float)
        pred = served / p["pred_itl_s"].to_numpy()
        for task, idx in v3.groupby("task").groups.items():
            i = v3.index.get_indexer(idx)
            print(f"continuous batching, ML.ENERGY v3 task {task} (prompt {np.median(v3['input_tokens'].to_numpy()[i]):.0f} tokens "
                  f"as assumed per task in catalog/data/tasks.toml, not measured; median output "
                  f"{np.median(v3['output_tokens'].to_numpy()[i]):.0f} tokens, {len(i)} rows): end-to-end time per token / "
                  f"median ITL measured {np.median(meas[i]):.2f}, serving model {np.median(pred[i]):.2f} (decode step alone: 1.00)")


if __name__ == "__main__":
    main()
