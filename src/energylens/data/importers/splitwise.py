"""Splitwise perf_model.csv: prompt and token times in ms; power normalized, measured on A100 rows only.

Power columns are fractions of the GPU's TDP (400 W on the A100 80 GB); rows without power (all
H100 rows, some A100 rows) carry no energy and are skipped.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...catalog.hardware import hardware_catalog
from ...errors import DataError
from ._common import drop_rows, with_drops

_MODELS = {"llama2-70b": "meta-llama/Llama-2-70b-hf", "bloom-176b": "bigscience/bloom"}


def read(path: Path) -> pd.DataFrame:
    csv = path if path.is_file() else path / "perf_model.csv"
    if not csv.exists():
        raise DataError("expected perf_model.csv (splitwise-sim layout)", path=path)
    raw = pd.read_csv(csv)
    for c in ("model", "hardware", "prompt_size", "batch_size", "token_size", "average_power",
              "prompt_time", "token_time", "e2e_time", "tensor_parallel"):
        if c not in raw.columns:
            raise DataError("missing column", path=csv, column=c)
    n_read, dropped = len(raw), {}
    raw = drop_rows(raw, ~(pd.to_numeric(raw["average_power"], errors="coerce") > 0),
                    "without power (average_power 0 or empty: no energy)", dropped)
    if raw.empty:
        return with_drops(pd.DataFrame(), n_read, dropped)
    hw = hardware_catalog()
    tdp = raw["hardware"].map(lambda h: hw.get(h.replace("-pcap", "")).tdp_w)
    tp = raw["tensor_parallel"].astype(int)
    power_w = raw["average_power"].astype(float) * tdp * tp
    e2e_s = raw["e2e_time"].astype(float) / 1000.0
    batch = raw["batch_size"].astype(int)
    tokens = raw["token_size"].astype(float)
    e_req = power_w * e2e_s / batch
    return with_drops(pd.DataFrame({
        "model": raw["model"].map(lambda m: _MODELS.get(m, m)), "gpu": raw["hardware"],
        "num_gpus": tp, "tp": tp, "pp": 1, "ep": 1, "dp": 1, "batch_size": batch,
        "input_tokens": raw["prompt_size"].astype(float), "output_tokens": tokens,
        "task": "fixed-length", "modality": "text", "precision": "fp16",
        "energy_request_j": e_req, "energy_token_j": e_req / tokens,
        "ttft_s": raw["prompt_time"].astype(float) / 1000.0, "itl_s": raw["token_time"].astype(float) / 1000.0,
        "avg_power_w": power_w, "throughput_tok_s": batch * tokens / e2e_s,
        "source": "splitwise", "source_average_power_norm": raw["average_power"],
        "source_prompt_time_ms": raw["prompt_time"], "source_token_time_ms": raw["token_time"],
        "source_e2e_time_ms": raw["e2e_time"],
    }), n_read, dropped)
