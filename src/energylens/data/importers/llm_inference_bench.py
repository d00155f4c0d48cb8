"""Argonne LLM-Inference-Bench: power/All_results.csv (single GPU, avg_power in milliwatts).

Energy per request = avg power x batch latency / batch size. The throughput/ and parallelism/
tables carry no power and so no energy; they are not imported (the schema needs an energy column).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import DataError
from ._common import drop_rows, with_drops

_COLUMNS = ["Hardware", "Num of Hardware", "Framework", "Model", "Input Output Length", "Batch Size",
            "Latency", "Throughput", "avg_power"]


def read(path: Path) -> pd.DataFrame:
    csv = path if path.is_file() else path / "power" / "All_results.csv"
    if not csv.exists():
        raise DataError("expected power/All_results.csv (LLM-Inference-Bench layout)", path=path)
    raw = pd.read_csv(csv)
    missing = [c for c in _COLUMNS if c not in raw.columns]
    if missing:
        raise DataError("missing column", path=csv, column=missing[0])
    n_read, dropped = len(raw), {}
    raw = drop_rows(raw, raw[["avg_power", "Latency"]].isna().any(axis=1), "without avg_power or Latency (no energy)",
                    dropped)
    if raw.empty:
        return with_drops(pd.DataFrame(), n_read, dropped)
    power_w = raw["avg_power"].astype(float) / 1000.0  # milliwatts -> watts
    n = raw["Num of Hardware"].astype(int)
    latency = raw["Latency"].astype(float)
    batch = raw["Batch Size"].astype(int)
    length = raw["Input Output Length"].astype(float)  # input = output length in this table
    e_req = power_w * n * latency / batch
    return with_drops(pd.DataFrame({
        "model": raw["Model"], "gpu": raw["Hardware"], "num_gpus": n, "tp": n, "pp": 1, "ep": 1, "dp": 1,
        "batch_size": batch, "input_tokens": length, "output_tokens": length,
        "task": "fixed-length", "modality": "text",
        "energy_request_j": e_req, "energy_token_j": e_req / length,
        # The table's Throughput counts prompt and generated tokens ((in + out) x batch / latency); the schema's
        # throughput_tok_s is output tokens per second.
        "avg_power_w": power_w * n, "throughput_tok_s": batch * length / latency,
        "itl_s": latency / length,
        "source": "llm-inference-bench:" + raw["Framework"].astype(str),
        "source_framework": raw["Framework"], "source_avg_power_mw": raw["avg_power"],
        "source_latency_s": raw["Latency"], "source_throughput_tok_s": raw["Throughput"],
        "engine": raw["Framework"].astype(str).str.strip().str.lower(),
    }).reset_index(drop=True), n_read, dropped)
