"""`energylens profile` (measure energy on NVIDIA GPUs) and `energylens plan` (choose what to measure)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._console import console, table


def _ints(text: str, option: str) -> list[int]:
    from ..errors import EnergyLensError

    try:
        vals = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise EnergyLensError(f"{option} expects comma-separated whole numbers, got '{text}'")
    if not vals or any(v < 1 for v in vals):
        raise EnergyLensError(f"{option} expects whole numbers >= 1, got '{text}'")
    return vals


def profile(
    model: str = typer.Option(..., "--model", help="Catalog model name or a config.json (random weights, no download)."),
    engine: str = typer.Option("vllm", "--engine", help="vllm or transformers."),
    tp: str = typer.Option("1", "--tp", help="Tensor-parallel degrees, comma-separated."),
    pp: str = typer.Option("1", "--pp", help="Pipeline-parallel degrees, comma-separated."),
    batch: str = typer.Option("1,8,64", "--batch", help="Batch sizes, comma-separated."),
    input_tokens: str = typer.Option("128,1024", "--input-tokens", help="Prompt lengths, comma-separated."),
    output_tokens: str = typer.Option("64,256", "--output-tokens", help="Generated lengths, comma-separated."),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Measured repeats per configuration (after a warm-up)."),
    plan_file: Optional[Path] = typer.Option(None, "--plan", help="Sweep file from `energylens plan` (replaces the grid options)."),
    output: Path = typer.Option(..., "-o", "--output", help="CSV to append measurements to (resumes if it exists)."),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="GPU indices to measure, comma-separated (default: all)."),
    allow_cpu: bool = typer.Option(False, "--allow-cpu", help="Without an NVIDIA GPU, run on the CPU; energy columns are left empty."),
    idle_seconds: float = typer.Option(2.0, "--idle-seconds", min=0, help="Seconds of idle power measured before the sweep."),
):
    """Measure energy of prefill and decode in separate windows over a sweep of configurations."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..errors import NoGpuError
    from ..profile.devices import open_gpus
    from ..profile.engines import make_engine
    from ..profile.sweep import SweepSpec, configurations_from_plan, run_sweep

    try:
        devices = open_gpus([int(g) for g in gpus.split(",")] if gpus else None)
    except NoGpuError:
        if not allow_cpu:
            raise
        devices = []
        console.print("no NVIDIA GPU found: running on the CPU, energy columns will be empty (never estimated)")
    if plan_file is not None:
        configs = configurations_from_plan(plan_file, model)
    else:
        configs = SweepSpec(model, _ints(tp, "--tp"), _ints(pp, "--pp"), _ints(batch, "--batch"),
                            _ints(input_tokens, "--input-tokens"), _ints(output_tokens, "--output-tokens")).configurations()
    eng = make_engine(engine, device="auto" if devices else "cpu")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("profiling", total=len(configs))

        def progress(i, n, cfg):
            bar.update(task, total=n, completed=i,
                       description="profiling" if cfg is None else f"b={cfg['batch_size']} in={cfg['input_tokens']} out={cfg['output_tokens']}")

        counts = run_sweep(configs, eng, devices, output, repeats=repeats, idle_seconds=idle_seconds if devices else 0,
                           progress=progress)
    console.print(f"{counts['measured']} measured, {counts['skipped']} already in {output}, {counts['failed']} failed"
                  + (f" (see {output.with_name(output.stem + '.failed.csv')})" if counts["failed"] else ""))


def plan(
    model: str = typer.Option(..., "--model", help="Catalog model name or config.json."),
    gpu: list[str] = typer.Option(..., "--gpu", help="GPU type (repeatable)."),
    max_gpus: int = typer.Option(8, "--max-gpus", min=1, help="Most GPUs per configuration."),
    budget: int = typer.Option(50, "--budget", min=1, help="How many configurations to measure."),
    batch: Optional[str] = typer.Option(None, "--batch", help="Batch sizes to consider (default 1..1024)."),
    input_tokens: str = typer.Option("128,512,2048", "--input-tokens", help="Prompt lengths to consider."),
    output_tokens: str = typer.Option("64,256", "--output-tokens", help="Generated lengths to consider."),
    model_file: Optional[Path] = typer.Option(None, "--model-file", help="Model whose coefficients set the sensitivities (default: shipped)."),
    output: Path = typer.Option(..., "-o", "--output", help="Sweep file to write (CSV) for `energylens profile --plan`."),
):
    """Choose the most informative configurations to profile (greedy D-optimal design)."""
    from ..io import write_table
    from ..model.modelfile import load_model
    from ..profile.plan import plan_sweep

    base = load_model(model_file, estimator=False) if model_file else None
    sweep = plan_sweep(model, gpu, max_gpus, budget, _ints(input_tokens, "--input-tokens"),
                       _ints(output_tokens, "--output-tokens"), _ints(batch, "--batch") if batch else None, base)
    write_table(sweep, output)
    console.print(table(sweep.head(15), title=f"{len(sweep)} of {sweep.attrs['candidates']} candidates chosen"))
    console.print(f"wrote {output}; measure them with: energylens profile --model {model} --plan {output} -o runs.csv")
