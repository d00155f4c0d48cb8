"""The raw features black-box baselines see: configuration plus catalog descriptors, as numbers."""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from ..data.schema import DESCRIPTORS
from ..model.predictor import energy_targets
from ..vocabulary import ARCHS, BYTES_PER_PARAM, MODALITIES, PP_SCHEDULES

# What a black box sees: the configuration and every numeric catalog descriptor EnergyLens's features read (the
# schema's DESCRIPTORS: one list, so a descriptor added there reaches the baselines too), as numbers.
CONFIGURATION_COLUMNS = ("num_gpus", "tp", "pp", "ep", "dp", "batch_size", "input_tokens", "output_tokens",
                         "visual_tokens")
RAW_COLUMNS = (*CONFIGURATION_COLUMNS, *(c for c in DESCRIPTORS if c != "arch"))


def _codes(df: pd.DataFrame, column: str, values: tuple) -> np.ndarray:
    """A categorical column as the index of its value in `values` (0 when absent)."""
    if column not in df:
        return np.zeros(len(df))
    return df[column].map({v: i for i, v in enumerate(values)}).fillna(0).to_numpy(float)


def raw_matrix(df: pd.DataFrame) -> np.ndarray:
    cols = []
    for c in RAW_COLUMNS:
        cols.append(pd.to_numeric(df[c], errors="coerce").fillna(0).to_numpy(float) if c in df else np.zeros(len(df)))
    prec = df["precision"].map(BYTES_PER_PARAM).fillna(2.0).to_numpy(float) if "precision" in df else np.full(len(df), 2.0)
    # The serving engine (row source) as a stable integer code: black boxes see what EnergyLens sees.
    source = df["source"].astype(str).map(lambda v: zlib.crc32(v.encode()) % 997).to_numpy(float) if "source" in df \
        else np.zeros(len(df))
    return np.column_stack(cols + [prec, _codes(df, "modality", MODALITIES), _codes(df, "arch", ARCHS),
                             _codes(df, "pp_schedule", PP_SCHEDULES), source])


def energy_target(df: pd.DataFrame) -> np.ndarray:
    """Measured energy per request (energy_request_j, else energy_token_j x output_tokens, else the split)."""
    total, pf, dec = energy_targets(df)
    return np.where(np.isfinite(total), total, pf + dec)
