"""`energylens profile` (measure energy on NVIDIA GPUs) and `energylens plan` (choose what to measure)."""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Optional

import typer

from ._console import console, constant_first, print_table

from ._options import int_list as _ints  # one parser of number lists for every command


SWEEP_FAILED = 3  # exit code: every configuration this run tried failed (documented in `profile --help`)


def profile(
    model: str = typer.Option(..., "--model", help="Catalog model name or a config.json (random weights, no download)."),
    engine: str = typer.Option("vllm", "--engine", metavar="BACKEND", help="Inference backend that runs the sweep: vllm or transformers. Rows record it as source 'energylens-profile:BACKEND', the engine group that `fit --engine-column source` fits and `recommend --engine` prices with."),
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
    idle_seconds: float = typer.Option(2.0, "--idle-seconds", min=0, help="Seconds of idle power measured before the sweep (at most 3600)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run again the configurations of this sweep recorded as failed in <output>.failed.csv (without it they are skipped); those that succeed leave that file."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="ray or ray=ADDRESS (e.g. ray=head:6379): one Ray task per configuration, asking for tp x pp GPUs on one node; plain ray starts a local Ray. Needs pip install 'energylens[cluster]'."),
    retries: int = typer.Option(2, "--retries", min=0, max=100, help="With --cluster: times a configuration whose worker or node was lost runs again before it is recorded as failed."),
):
    """Measure energy of prefill and decode in separate windows over a sweep of configurations.

    Resumable: configurations already in the output are skipped. Failed ones (out of memory, ...) are recorded in <output>.failed.csv with the reason and skipped on resume unless --retry-failed.

    Exit codes: 3 "sweep failed" when every configuration this run tried failed; 0 otherwise, partial failures included (the summary counts them and names the failed file); 2 for bad input.
    """
    from ._paths import check_output
    check_output(output, inputs=[plan_file, Path(model)])  # an existing output is resumed, not an input
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..errors import EnergyLensError, NoGpuError
    from ..profile.devices import open_gpus
    from ..profile.engines import make_engine
    from ..profile.sweep import LIMITS, SweepSpec, configurations_from_plan, failed_path, run_sweep

    if not math.isfinite(idle_seconds) or not 0 <= idle_seconds <= 3600:
        raise EnergyLensError(f"--idle-seconds expects a finite number of seconds between 0 and 3600, got {idle_seconds:g}")
    gpu_indices = _ints(gpus, "--gpus", minimum=0) if gpus is not None else None
    if cluster is not None:
        from ..profile.cluster import parse_cluster

        address = parse_cluster(cluster)
        if gpus is not None:
            raise EnergyLensError("--gpus chooses local GPUs; with --cluster, Ray assigns each configuration its GPUs")
    # Parse the sweep before touching any device: a typo is reported at once.
    if plan_file is not None:
        configs = configurations_from_plan(plan_file, model)
    else:
        configs = SweepSpec(model, _ints(tp, "--tp", maximum=LIMITS["tp"]), _ints(pp, "--pp", maximum=LIMITS["pp"]),
                            _ints(batch, "--batch", maximum=LIMITS["batch_size"]),
                            _ints(input_tokens, "--input-tokens", maximum=LIMITS["input_tokens"]),
                            _ints(output_tokens, "--output-tokens", maximum=LIMITS["output_tokens"])).configurations()
    if cluster is not None:  # the workers open their GPUs and build the engine; nothing is opened here
        from ..profile.cluster import import_ray, run_ray_sweep
        from ..profile.engines import ENGINES

        if engine not in ENGINES:
            make_engine(engine)  # its one-line error names the engines
        import_ray()  # without Ray: the one-line error naming the extra, before any work
    else:
        try:
            devices = open_gpus(gpu_indices)
        except NoGpuError:
            if not allow_cpu:
                raise
            devices = []
            console.print("no NVIDIA GPU found: running on the CPU, energy columns will be empty (never estimated)")
        eng = make_engine(engine, device="auto" if devices else "cpu")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("profiling", total=len(configs))

        def progress(i, n, cfg):
            bar.update(task, total=n, completed=i,
                       description="profiling" if cfg is None else f"b={cfg['batch_size']} in={cfg['input_tokens']} out={cfg['output_tokens']}")

        if cluster is not None:
            counts = run_ray_sweep(configs, functools.partial(make_engine, engine), output, address=address,
                                   repeats=repeats, idle_seconds=idle_seconds, retries=retries,
                                   retry_failed=retry_failed, allow_cpu=allow_cpu, progress=progress)
        else:
            counts = run_sweep(configs, eng, devices, output, repeats=repeats,
                               idle_seconds=idle_seconds if devices else 0, progress=progress, retry_failed=retry_failed)
    failed_file = failed_path(output)
    summary = f"{counts['measured']} measured, {counts['skipped']} already in {output}, {counts['failed']} failed"
    if counts["previously_failed"]:
        summary += (f", {counts['previously_failed']} skipped as failed before (recorded in {failed_file}; "
                    "--retry-failed runs them again)")
    if counts["failed"] and not counts["measured"]:
        typer.echo(f"error: sweep failed: {summary}; every configuration tried failed, reasons in {failed_file}"
                   + _last_reason(failed_file), err=True)
        raise typer.Exit(SWEEP_FAILED)
    if counts["failed"]:
        summary += f"; {counts['failed']} of {counts['failed'] + counts['measured']} tried failed, reasons in {failed_file}"
    console.print(summary, markup=False, highlight=False)


def _last_reason(path) -> str:
    """' (last: <reason>)' from a failed file, or '' when it cannot be read."""
    try:
        import pandas as pd

        reason = str(pd.read_csv(path)["reason"].dropna().iloc[-1])
    except Exception:  # the summary must not fail on a damaged sidecar file
        return ""
    return f" (last: {' '.join(reason.split())[:200]})"


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
    from ._paths import check_output
    check_output(output, inputs=[model_file, Path(model)])
    from ..io import write_table
    from ..model.modelfile import load_model
    from ..profile.plan import plan_sweep

    base = load_model(model_file, estimator=False) if model_file else None
    sweep = plan_sweep(model, gpu, max_gpus, budget, _ints(input_tokens, "--input-tokens"),
                       _ints(output_tokens, "--output-tokens"), _ints(batch, "--batch") if batch else None, base)
    write_table(sweep, output)
    shown = min(PLAN_ROWS_SHOWN, len(sweep))
    view = sweep.head(shown).rename(columns=PLAN_HEADERS)
    view.insert(0, "#", range(1, shown + 1))
    print_table(view, title=f"{len(sweep)} of {sweep.attrs['candidates']} candidates chosen, most informative first",
                drop_order=constant_first(view, PLAN_DROP_ORDER), how=f"all columns are in {output.name}",
                caption=f"the first {shown} of {len(sweep)} shown; all are in {output.name}" if shown < len(sweep) else None)
    console.print(f"wrote {output}; measure them with:", markup=False, highlight=False)
    typer.echo(f"energylens profile --model {model} --plan {output} -o runs.csv")  # copy-paste text: never wrapped


PLAN_ROWS_SHOWN = 15
# The plan's columns as headed on screen (the file keeps the schema names), and those left out first on a
# narrow terminal (after the ones equal on every row).
PLAN_HEADERS = {"gpu": "GPU", "num_gpus": "GPUs", "batch_size": "batch", "input_tokens": "in\ntokens",
                "output_tokens": "out\ntokens", "information_gain": "information\ngain"}
PLAN_DROP_ORDER = ("pp", "ep", "dp", "GPUs", "model", "GPU", "tp", "information\ngain")
