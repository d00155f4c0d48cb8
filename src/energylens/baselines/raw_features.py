"""The raw features black-box baselines see: configuration plus catalog descriptors, as numbers."""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from ..model.predictor import energy_targets
from ..vocabulary import BYTES_PER_PARAM

RAW_COLUMNS = ("num_gpus", "tp", "pp", "ep", "dp", "batch_size", "input_tokens", "output_tokens",
               "params_total_b", "params_active_b", "layers", "hidden_size", "heads", "kv_heads", "head_dim",
               "experts", "active_experts", "gpu_peak_tflops", "gpu_mem_bw_tbs", "gpu_mem_gb", "gpu_tdp_w",
               "gpu_idle_w", "gpu_link_gbs")


def raw_matrix(df: pd.DataFrame) -> np.ndarray:
    cols = []
    for c in RAW_COLUMNS:
        cols.append(pd.to_numeric(df[c], errors="coerce").fillna(0).to_numpy(float) if c in df else np.zeros(len(df)))
    prec = df["precision"].map(BYTES_PER_PARAM).fillna(2.0).to_numpy(float) if "precision" in df else np.full(len(df), 2.0)
    modality = df["modality"].map({"text": 0, "image": 1, "video": 2}).fillna(0).to_numpy(float) if "modality" in df else np.zeros(len(df))
    # The serving engine (row source) as a stable integer code: black boxes see what EnergyLens sees.
    source = df["source"].astype(str).map(lambda v: zlib.crc32(v.encode()) % 997).to_numpy(float) if "source" in df \
        else np.zeros(len(df))
    return np.column_stack(cols + [prec, modality, source])


def energy_target(df: pd.DataFrame) -> np.ndarray:
    """Measured energy per request (energy_request_j, else energy_token_j x output_tokens, else the split)."""
    total, pf, dec = energy_targets(df)
    return np.where(np.isfinite(total), total, pf + dec)
