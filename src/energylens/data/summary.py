"""Counts and ranges of a profiling table, as plain DataFrames the CLI renders."""
from __future__ import annotations

import pandas as pd

from .schema import ENERGY_COLUMNS


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
