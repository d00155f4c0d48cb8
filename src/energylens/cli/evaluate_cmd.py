"""`energylens evaluate`: every experiment on the real data, written as a report."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from ._console import console, fmt, percent, print_table, progress_bar


def evaluate(
    data: Optional[Path] = typer.Option(None, "--data", help="Folder with mlenergy-v3/, mlenergy-v2/, gpu-prefill-decode/ (default: $ENERGYLENS_DATA or ../shared/data)."),
    out: Path = typer.Option(Path("report"), "--out", help="Folder for report.md, report.html, results.json and figures."),
    quick: bool = typer.Option(False, "--quick", help="Three seeds, fewer experiments (a smoke run: about a minute on 2 cores)."),
    jobs: int = typer.Option(1, "--jobs", min=1, max=1024, help="Local processes the experiments' seeds are spread over (joblib); results are those of a serial run."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="ray or ray=ADDRESS: spread the seeds over a Ray cluster instead (pip install 'energylens[cluster]')."),
):
    """Compare EnergyLens with the baselines on the real data and write the report.

    Exit code 3 when a method failed more than 5% of its fits (the report lists every failure)."""
    from ..extras import require
    from ._paths import check_output
    check_output(out, option="--out", folder=True, inputs=[data])
    require("energylens evaluate (baselines and figures)", "baselines", "plot")
    address = None
    if cluster is not None:
        from ..profile.cluster import import_ray, parse_cluster

        address = parse_cluster(cluster) or ""  # "": start a local Ray
        import_ray()  # without Ray: the one-line error naming the extra, before any work

    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from ..evaluation.runner import find_data, load_datasets, run_evaluation
    from ..report.build import write_report

    warnings.filterwarnings("ignore")
    root = find_data(data)
    with progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("evaluating", total=None)

        def progress(step, total, label):
            bar.update(task, completed=step, total=total, description=label)

        sets = load_datasets(root)
        res = run_evaluation(quick=quick, progress=progress, sets=sets, jobs=jobs, cluster=address)
    command = "energylens evaluate --data " + str(root) + " --out " + str(out) + (" --quick" if quick else "")
    paths = write_report(res, out, sets, command)
    from ..evaluation.summary import headline, targets

    print_table(headline_view(headline(res["selection"])), drop_order=HEADLINE_DROP_ORDER,
                title="n = 50, deployment scenarios (cells weighted by scenario count)",
                how=f"every column is in {paths['markdown']}")
    goals = targets(res)
    if "met" in goals:
        goals["met"] = goals["met"].map({True: "yes", False: "no"})
    print_table(goals, title="Targets")
    console.print(f"wrote {paths['markdown']}, {paths['html']} and {paths['json']} ({res['elapsed_s']:.0f} s)")
    over = res["failures"]["over_limit"]
    if over:  # the report shows every failure; a run where a method failed too often is not a result
        per = res["failures"]["per_method"]
        first = next(f["error"] for f in res["failures"]["errors"] if f["method"] == over[0])
        typer.echo("error: fits failed for " + ", ".join(f"{m} ({per[m]['failed']} of {per[m]['attempts']})" for m in over)
                   + f", more than {100 * res['failures']['max_share']:.0f}% of their fits; first: {first[:160]} "
                   "(all in results.json 'failures')", err=True)
        raise typer.Exit(3)


# The headline table as printed: fractions as percents (`percent`), headers in words; the counts that
# describe the scenarios go first on a narrow terminal.
HEADLINE_HEADERS = {"method": "method", "top1": "top-1", "top1_2pct": "top-1\nwithin 2%", "regret": "mean\nregret",
                    "regret_le_5pct": "regret\n<= 5%", "mape": "MAPE", "candidates": "candidates\nper scen.",
                    "scenarios_per_seed": "scenarios\nper seed", "cells": "cells"}
FRACTIONS = ("top1", "top1_2pct", "regret", "regret_le_5pct", "mape")
HEADLINE_DROP_ORDER = ("cells", "scenarios\nper seed", "candidates\nper scen.", "top-1\nwithin 2%", "MAPE")


def headline_view(t):
    """`evaluation.summary.headline`'s table for the terminal."""
    view = t.copy()
    for c in FRACTIONS:
        if c in view:
            view[c] = [percent(v) for v in view[c]]
    if "candidates" in view:
        view["candidates"] = [fmt(v, 3) for v in view["candidates"]]
    if "scenarios_per_seed" in view:
        view["scenarios_per_seed"] = [fmt(v, 3) for v in view["scenarios_per_seed"]]
    return view.rename(columns=HEADLINE_HEADERS)
