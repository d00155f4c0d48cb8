"""`energylens data ...`: import public datasets, validate files, summarize them."""
from __future__ import annotations

from pathlib import Path

import typer

from ._console import console, plain, plural, print_table

app = typer.Typer(help="Import, validate and summarize profiling data.", no_args_is_help=True)


@app.command("import")
def import_(
    kind: str = typer.Argument(..., help="mlenergy-v3, mlenergy-v2, llm-inference-bench or splitwise."),
    path: Path = typer.Argument(..., help="The dataset folder (e.g. ../shared/data/mlenergy-v3)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output CSV or Parquet file."),
):
    """Convert a public dataset into the profiling schema (raw values kept in source_* columns)."""
    from ._paths import check_output
    check_output(output, inputs=[path])
    from ..data.importers import drop_summary, import_dataset
    from ..io import write_table

    df = import_dataset(kind, path)
    write_table(df, output)
    console.print(f"wrote {plural(len(df), 'row')} from {kind} to {output}; {drop_summary(df)}", markup=False, highlight=False)


@app.command("validate")
def validate_(
    file: Path = typer.Argument(..., help="A CSV or Parquet file of profiling records."),
    configs_only: bool = typer.Option(False, "--configs", help="Configurations to predict: no energy column needed."),
):
    """Check a file against the profiling schema; exit 2 with one line on the first violation."""
    from ..data.schema import load_profiles

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
