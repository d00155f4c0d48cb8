"""Counts and ranges of a profiling table, as plain DataFrames the CLI renders; and the tables a
summary reads (a schema file, a folder of schema files, or a public dataset folder)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError
from .importers import IMPORTERS, SeveralDatasetsError, detect_kind, drop_summary, import_dataset
from .schema import ENERGY_COLUMNS, load_many, load_profiles

SCHEMA_SUFFIXES = (".csv", ".parquet")


def schema_files(folder) -> list[Path]:
    """The CSV and Parquet files directly in `folder`, in name order."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in SCHEMA_SUFFIXES)


def load_for_summary(path, kind: str | None = None) -> tuple[pd.DataFrame, str]:
    """The rows to summarize and where they came from: a schema file; a public dataset folder (its kind
    given or detected from its layout); or a folder of files already in the schema (e.g.
    gpu-prefill-decode/), read together."""
    path = Path(path)
    if not path.is_dir():
        return load_profiles(path), "schema file"
    if kind is None:
        try:
            kind = detect_kind(path)
        except DataError as exc:
            files = schema_files(path)
            if not files:
                if isinstance(exc, SeveralDatasetsError):
                    raise
                raise DataError(f"neither a known dataset layout nor CSV/Parquet files in the profiling schema; "
                                f"pass --kind ({', '.join(IMPORTERS)})", path=path) from None
            return load_many(files), f"{len(files)} schema file{'s' if len(files) > 1 else ''}: " + \
                ", ".join(f.name for f in files)
    df = import_dataset(kind, path)
    return df, f"imported as {kind}; {drop_summary(df)}"


def summarize(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per-model, per-GPU, per-parallelism and per-batch counts, and ranges of numeric columns."""
    out = {}
    # arch and task are optional columns (absent when a table is validated without filling descriptors,
    # or has no task column): summarize them only where present.
    aggs = {"rows": ("gpu", "size")}
    if "arch" in df.columns:
        aggs["arch"] = ("arch", "first")
    aggs["gpus"] = ("gpu", lambda s: ", ".join(sorted(set(map(str, s)))))
    if "task" in df.columns:
        aggs["tasks"] = ("task", lambda s: ", ".join(sorted(set(map(str, s)))))
    out["models"] = df.groupby(["model"], dropna=False).agg(**aggs).reset_index()
    out["gpus"] = df.groupby("gpu").agg(rows=("model", "size"), models=("model", "nunique")).reset_index()
    par = df.assign(parallelism=lambda d: "tp" + d["tp"].astype(str) + " pp" + d["pp"].astype(str)
                    + " ep" + d["ep"].astype(str) + " dp" + d["dp"].astype(str))
    out["parallelism"] = (par.groupby(["num_gpus", "parallelism"]).size().rename("rows").reset_index())
    out["batch"] = df.groupby("batch_size").size().rename("rows").reset_index()
    cols = [c for c in ("input_tokens", "output_tokens", *ENERGY_COLUMNS, "ttft_s", "itl_s", "avg_power_w",
                        "throughput_tok_s") if c in df.columns and df[c].notna().any()]
    rng = pd.DataFrame({"column": cols,
                        "present": [int(df[c].notna().sum()) for c in cols],
                        "min": [df[c].min() for c in cols],
                        "median": [df[c].median() for c in cols],
                        "max": [df[c].max() for c in cols]})
    out["ranges"] = rng
    return out
