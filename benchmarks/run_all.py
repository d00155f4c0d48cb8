"""Run the speed and accuracy benchmarks and write docs/BENCHMARKS.md from their results.

usage: python benchmarks/run_all.py [--data ../shared/data] [--quick]
The accuracy part is `energylens evaluate` (all experiments, 20 seeds); its full report goes to
report/ beside docs/BENCHMARKS.md's summary. Every number in BENCHMARKS.md comes from this run.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("ENERGYLENS_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "report"))
    ap.add_argument("--jobs", type=int, default=1, help="processes for the evaluation's seeds (same results as 1)")
    args = ap.parse_args()

    import pandas as pd

    from energylens import __version__
    from energylens.evaluation import summary as S
    from energylens.evaluation.runner import load_datasets, priors_seen_with, run_evaluation
    from energylens.io import atomic_write_text
    from energylens.report.build import write_report
    from energylens.report.tables import markdown_table

    speed = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_speed.py"), "--data", args.data],
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()
    latency = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_latency.py"), "--data", args.data],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()
    physics = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_physics.py")],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()
    genz = os.environ.get("GENZ_PYTHON")  # an interpreter with genz-llm (benchmarks/genz_steps.py); steps skip GenZ without
    load = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_load.py"), "--data", args.data, "--speed",
                           "--v3", "--steps", *(["--genz-python", genz] if genz else [])],
                          capture_output=True, text=True, check=True).stdout.strip()
    traffic = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_traffic.py"), "--data", args.data,
                              "--compare"],  # --compare runs the speed cases first, then the comparison
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()
    t0 = time.monotonic()
    sets = load_datasets(Path(args.data))
    res = run_evaluation(quick=args.quick, sets=sets, jobs=args.jobs)
    cmd = (f"energylens evaluate --data {args.data} --out {args.out}" + (" --quick" if args.quick else "")
           + (f" --jobs {args.jobs}" if args.jobs > 1 else ""))
    write_report(res, args.out, sets, cmd)
    elapsed = time.monotonic() - t0
    curve = S.learning_table(res["learning_curve"])
    md = [
        "# Benchmarks", "",
        f"Latest run: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, energylens {__version__}, "
        f"{platform.machine()} with {os.cpu_count()} cores, Python {platform.python_version()}. "
        f"Regenerate everything below with `python benchmarks/run_all.py --data ../shared/data` "
        f"(speed: `python benchmarks/bench_speed.py`; accuracy: `{cmd}`, {elapsed:.0f} s). "
        "All accuracy numbers are on real public measurements (ML.ENERGY v3 and v2, Splitwise, "
        "LLM-Inference-Bench) or the project's own H100 measurements (gpu-prefill-decode); none on generated data.", "",
        "## Physical bounds (`python benchmarks/bench_physics.py`)", "", *[f"- {line}" for line in physics], "",
        "## Energy at a load (`python benchmarks/bench_load.py --speed --v3 --steps`"
        + (f" with GenZ from `{genz}`" if genz else ", GenZ not run: set GENZ_PYTHON") + "; what each figure means: "
        "docs/TRAFFIC.md)", "", "```text", load, "```", "",
        "## Traffic simulation (`python benchmarks/bench_traffic.py --compare`: speed, then agreement with the "
        "closed-form serving model at saturation; what each case means: docs/TRAFFIC.md)", "",
        *_bullets_and_tables(traffic), "",
        "## Speed", "", *[f"- {line}" for line in speed], "",
        "## Latency model (`python benchmarks/bench_latency.py`)", "",
        "TTFT and ITL in `recommend` are those of a request served under continuous batching with chunked prefill "
        "(model/serving.py), built on the time model's batch-prefill time and decode step. What the data can check "
        "(no public set here measures TTFT under continuous batching):", "",
        *[f"- {line}" for line in latency], "",
        "## Targets", "", markdown_table(S.targets(res)),
        "## Claims in the README and docs/MODEL.md, as this run measured them", "",
        markdown_table(S.claims(res)),
        "## New engine: structure chosen on 50 rows of one dataset alone", "",
        f"Each dataset taken alone as a serving engine never seen: EnergyLens chooses its structure by 5-fold "
        f"cross-validation on the rows of randomly drawn configurations, 50 rows (nothing tuned on that dataset); every "
        f"row of another configuration is tested (Splitwise measures each configuration 5 or 15 times: repeats of a "
        f"training configuration are never test rows); "
        f"{res['plan']['seeds']} seeds, median MAPE with the 10th-90th percentile spread. Baselines: second-order "
        f"log-linear regression (ridge, penalty by CV inside the training rows), first-order log-linear and XGBoost from the same 50 rows, "
        f"XGBoost from 100 rows of the same draw (`xgb@N`; N smaller where the dataset is). The last line per dataset "
        f"fits every row and is judged in sample.", "",
        markdown_table(S.new_engine_table(res.get("new_engine", []))),
        "## Deployment choice with 50 measurements: every method", "",
        f"A scenario is one model and workload (task); every measured deployment (GPU type, count, TP/PP/EP/DP, "
        f"batch) meeting an ITL SLO (25th/50th/75th percentile of the group) competes. X {res['plan']['seeds']} seeds; ML.ENERGY v3 and "
        f"v2 cells pooled, each weighted by its scenario count (docs/EVALUATION.md). Rules and random have "
        f"nothing fitted; XGBoost and random forest choose their target and depth by CV inside the training rows.", "",
        markdown_table(S.headline(res["selection"])),
        "## Every cell, with the seed-to-seed spread", "",
        markdown_table(S.selection_table(res["selection"]).drop(columns=["n_train", "mdape", "pairwise"])),
        "## EnergyLens against the best other method per cell (cells with >= 3 candidates)", "",
        markdown_table(S.beats_every_baseline(res["selection"])),
        "## Priors not independent of a test set", "",
        *([f"- {d}: the priors of {', '.join(priors_seen_with(d))} were set with it in view (not fitted on it; "
           "model/terms.py records the provenance): results on it are not independent of them."
           for d in sets if priors_seen_with(d)] or ["- none"]), "",
        "## Failed fits", "", _failures(res), "",
        "## Energy MAPE at 50 random training rows (every other row tested)", "",
        markdown_table(S.simple_mean(res.get("random_split", []), ["dataset", "method"], ("mape", "mdape"))),
        "## Leave one dataset out", "",
        "Trained on every other dataset (each source its own engine), tested on the held-out one with none of its "
        "rows and with 5 of them (EnergyLens: `fit --from` recalibration; black boxes: the 5 rows added), 5 seeds.", "",
        markdown_table(S.simple_mean(res.get("leave_dataset_out", []), ["held_out", "calibration", "method"],
                                     ("mape", "mdape"))),
        "## Learning curves: samples each method needs to match EnergyLens at n = 50", "",
        markdown_table(S.samples_to_match(curve)),
        "## Unseen batch sizes (train batch <= 64, test >= 128)", "",
        markdown_table(S.simple_mean(res["unseen_batch"], ["dataset", "method"], ("mape", "mdape"))),
        "## Unseen hardware (train on one GPU type, test on another)", "",
        markdown_table(S.simple_mean(res["unseen_hardware"], ["dataset", "source_gpu", "target_gpu", "calibration", "method"],
                                     ("mape",)).query("method in ['energylens', 'loglinear', 'loglinear2', 'xgb', 'xgb_tuned', 'ensemble']")),
        "## Leave one model family out", "",
        markdown_table(S.simple_mean(res["leave_family_out"], ["dataset", "method"], ("mape", "top1"))),
        "## Latency-optimal vs energy-optimal (measured)", "", markdown_table(pd.DataFrame(res["latency_vs_energy"])),
        "## Profiling planner: 50 planned vs 50 random measurements", "",
        markdown_table(S.simple_mean(res.get("planned_vs_random", []), ["dataset", "selection"], ("mape",))),
    ]
    if res.get("prefill_decode_lomo"):
        lomo = pd.DataFrame(res["prefill_decode_lomo"])
        piv = lomo.pivot_table(index=["held_out", "method"], columns="target", values="mape").reset_index()
        piv = piv.rename(columns={t: f"{t}_mape" for t in ("energy_request", "prefill", "decode", "ttft", "itl")})
        md += ["## Prefill and decode, unseen models (gpu-prefill-decode, H100, leave one model out)", "",
               markdown_table(piv), res.get("prefill_decode_unseen_gpu", ""), ""]
    if res.get("residuals"):
        r = pd.DataFrame(res["residuals"])
        md += ["## Residuals of one shared formula (in sample, per GPU, task and worst models)", "",
               markdown_table(r[r["by"] == "gpu"].drop(columns="by")),
               markdown_table(r[r["by"] == "task"].drop(columns="by")),
               markdown_table(r[r["by"] == "model"].drop(columns="by").sort_values("mape", ascending=False).head(12))]
    md += ["", f"Full report with figures: `{args.out}/report.html` (not committed; regenerate with the command above)."]
    atomic_write_text(ROOT / "docs" / "BENCHMARKS.md", "\n".join(md) + "\n")
    print(f"wrote docs/BENCHMARKS.md ({elapsed:.0f} s evaluation)")
    if res["failures"]["over_limit"]:
        print(f"methods over the failure limit: {', '.join(res['failures']['over_limit'])}", file=sys.stderr)
        sys.exit(3)


def _bullets_and_tables(lines: list[str]) -> list[str]:
    """A benchmark's stdout as markdown: its table rows as printed, every other line a bullet, a blank line between."""
    out: list[str] = []
    for line in lines:
        table = line.startswith("|")
        if out and table != out[-1].startswith("|"):
            out.append("")
        out.append(line if table else f"- {line}")
    return out


def _failures(res) -> str:
    f = res.get("failures", {})
    per = f.get("per_method", {})
    failed = {m: v for m, v in per.items() if v["failed"]}
    if not failed:
        return f"No fit failed ({sum(v['attempts'] for v in per.values())} fits of {len(per)} methods)."
    return "; ".join(f"{m}: {v['failed']} of {v['attempts']} fits" for m, v in failed.items()) + \
        f" (limit {100 * f['max_share']:.0f}% per method; errors in results.json)."


if __name__ == "__main__":
    main()
