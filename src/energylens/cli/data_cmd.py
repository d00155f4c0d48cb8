"""`energylens data ...`: import public datasets, validate files, summarize them."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from ..data.importers import BENCHMARK_IMPORTERS, IMPORTERS, BenchOptions, drop_summary, import_dataset
from ..data.schema import load_profiles
from ..errors import EnergyLensError
from ..io import write_table
from ._console import console, plain, plural, print_table

app = typer.Typer(help="Import, validate and summarize profiling data.", no_args_is_help=True, rich_markup_mode=None)


def _kinds_help() -> str:
    return (f"Dataset folder kinds: {', '.join(IMPORTERS)}; benchmark result files (need --power): "
            f"{', '.join(BENCHMARK_IMPORTERS)}.")


@app.command("import")
def import_(
    kind: str = typer.Argument(..., help="What PATH holds. " + _kinds_help()),
    path: Path = typer.Argument(..., help="The dataset folder (e.g. ../shared/data/mlenergy-v3), or the result file "
                                          "of vllm-bench (vllm bench serve --save-result) or guidellm (its .json report)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output CSV or Parquet file."),
    power: Optional[Path] = typer.Option(None, "--power", help="vllm-bench, guidellm: the GPU power log of the same time "
                                         "(nvidia-smi --query-gpu=timestamp,index,power.draw --format=csv CSV, a DCGM "
                                         "exporter dump, or a Zeus power-timeline JSON), joined by time window."),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="GPUs of the power log that served the benchmark, as the "
                                       "log names them (indices or UUIDs; default: all in the log)."),
    gpu: Optional[str] = typer.Option(None, "--gpu", help="GPU model (e.g. H100) where the power log does not name it."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name to record (default: the one the file names)."),
    tp: Optional[int] = typer.Option(None, "--tp", min=1, help="Tensor-parallel degree of the server (default: the "
                                     "file's metadata, else 1)."),
    pp: Optional[int] = typer.Option(None, "--pp", min=1, help="Pipeline-parallel degree (default: metadata, else 1)."),
    ep: Optional[int] = typer.Option(None, "--ep", min=1, help="Expert-parallel degree (default: metadata, else 1)."),
    dp: Optional[int] = typer.Option(None, "--dp", min=1, help="Data-parallel replicas (default: metadata, else 1)."),
    max_num_seqs: Optional[int] = typer.Option(None, "--max-num-seqs", min=1, help="The server's cap on running "
                                               "requests, recorded as batch_size (default: the run's concurrency cap)."),
    tz: Optional[str] = typer.Option(None, "--tz", help="Zone of times written without one (vLLM's date, nvidia-smi "
                                     "timestamps): UTC or an offset like +02:00 (default: this machine's zone)."),
    power_offset: float = typer.Option(0.0, "--power-offset", help="Seconds added to the power log's times, for a "
                                       "known skew between the two clocks."),
    min_overlap: float = typer.Option(0.9, "--min-overlap", help="Share of each result's window the power log must "
                                      "cover (0 to 1; gaps beyond it are refused, smaller ones filled and reported)."),
):
    """Convert a public dataset, or benchmark results plus a power log, into the profiling schema (raw values kept
    in source_* columns). A benchmark whose window the power log does not cover is refused with one line (exit 2),
    and nothing is written."""
    from ._paths import check_output
    check_output(output, inputs=[path, power])

    bench_only = {"--power": power, "--gpus": gpus, "--gpu": gpu, "--model": model, "--tp": tp, "--pp": pp,
                  "--ep": ep, "--dp": dp, "--max-num-seqs": max_num_seqs, "--tz": tz,
                  "--power-offset": power_offset or None}
    options = None
    if kind in BENCHMARK_IMPORTERS:
        if not (math.isfinite(min_overlap) and 0 < min_overlap <= 1):
            raise EnergyLensError(f"--min-overlap expects a share between 0 and 1, got {min_overlap:g}")
        if not math.isfinite(power_offset):
            raise EnergyLensError("--power-offset expects a finite number of seconds")
        chosen = None if gpus is None else list(dict.fromkeys(g.strip() for g in gpus.split(",")))
        if chosen is not None and (not all(chosen) or not all(g.isprintable() for g in chosen)):
            raise EnergyLensError(f"--gpus expects the power log's GPU names, comma-separated (e.g. 0,1), got '{gpus[:60]}'")
        options = BenchOptions(power=power, tz=tz, power_offset_s=power_offset, gpus=chosen, gpu=gpu,
                               model=model, tp=tp, pp=pp, ep=ep, dp=dp, max_num_seqs=max_num_seqs,
                               min_overlap=min_overlap)
    else:
        given = [name for name, value in bench_only.items() if value is not None]
        if given:
            raise EnergyLensError(f"{given[0]} applies to benchmark results ({', '.join(BENCHMARK_IMPORTERS)}), "
                                  f"not to {kind}")
    df = import_dataset(kind, path, options)
    write_table(df, output)
    message = f"wrote {plural(len(df), 'row')} from {kind} to {output}; {drop_summary(df)}"
    if options is not None and "source_power_overlap" in df.columns:
        low = float(df["source_power_overlap"].min())
        filled = float(df["source_power_filled_j"].sum())
        message += (f"; power log overlap {low:.1%} at worst" + (f" ({filled:.4g} J filled in gaps)" if filled else ""))
    console.print(message, markup=False, highlight=False)


@app.command("validate")
def validate_(
    file: Path = typer.Argument(..., help="A CSV or Parquet file of profiling records."),
    configs_only: bool = typer.Option(False, "--configs", help="Configurations to predict: no energy column needed."),
):
    """Check a file against the profiling schema; exit 2 with one line on the first violation."""
    df = load_profiles(file, require_energy=not configs_only)
    console.print(plain(f"{file}: {plural(len(df), 'row')} valid ({plural(df['model'].nunique(), 'model')}, "
                        f"{plural(df['gpu'].nunique(), 'GPU')})"), highlight=False)


@app.command("summary")
def summary(
    path: Path = typer.Argument(..., help="A schema file; a public dataset folder (its kind is detected); or a folder "
                                          "of CSV/Parquet files in the schema (e.g. gpu-prefill-decode/)."),
    kind: str = typer.Option(None, "--kind", help="Dataset kind when PATH is a public dataset folder (detected when omitted)."),
):
    """Counts per model, GPU, parallelism and batch size, and ranges of the measurements."""
    from ..data.summary import load_for_summary, summarize

    df, origin = load_for_summary(path, kind)
    parts = summarize(df)
    console.print(plain(f"{path}: {plural(len(df), 'row')}, {plural(df['model'].nunique(), 'model')}, "
                        f"{plural(df['gpu'].nunique(), 'GPU')} ({origin})"), highlight=False)
    # model IDs print whole: on a narrow terminal the per-model lists go first, then wrap between items
    print_table(parts["models"], title="Per model", drop_order=("tasks", "arch", "gpus"),
                how="a wider terminal shows them")
    for name, title in (("gpus", "Per GPU"), ("parallelism", "Per parallelism"), ("batch", "Per batch size"),
                        ("ranges", "Ranges")):
        print_table(parts[name], title=title)
