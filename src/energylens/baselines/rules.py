"""Rules of thumb with nothing fitted, and a random pick: what any model must beat.

Each returns a score per configuration (lower is chosen first); scores are not energies, so these
methods enter the selection metrics and never the error metrics. Only the configuration columns and
the catalog's figures are read, never a measurement.
"""
from __future__ import annotations

import numpy as np


class _Rule:
    ranks_by_score = True  # a score to rank by, not a predicted energy

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, df):
        return self


def _col(df, name, default=1.0) -> np.ndarray:
    return df[name].to_numpy(float) if name in df else np.full(len(df), float(default))


class GpuPowerPerSlot(_Rule):
    """Fewest GPUs x TDP per batch slot: the power budget each concurrent request occupies."""

    name = "rule_power_per_slot"
    label = "Rule: fewest GPUs x TDP per batch slot"

    def predict(self, df) -> np.ndarray:
        return _col(df, "num_gpus") * _col(df, "gpu_tdp_w", 700) / _col(df, "batch_size")


class LargestBatch(_Rule):
    """Largest batch (that meets the SLO: the scenario already keeps only those); fewer GPUs break ties."""

    name = "rule_largest_batch"
    label = "Rule: largest feasible batch"

    def predict(self, df) -> np.ndarray:
        return -_col(df, "batch_size") + 1e-6 * _col(df, "num_gpus")


class FewestGpusNewest(_Rule):
    """Fewest GPUs, then the newest GPU (highest peak BF16 throughput, the generation's proxy), then the
    largest batch."""

    name = "rule_fewest_gpus"
    label = "Rule: fewest GPUs, then newest GPU"

    def predict(self, df) -> np.ndarray:
        peak = _col(df, "gpu_peak_tflops", 989)
        return _col(df, "num_gpus") - 1e-4 * peak / peak.max() - 1e-9 * _col(df, "batch_size")


class RandomPick(_Rule):
    """A uniformly random candidate (seeded): the floor every method must clear."""

    name = "random"
    label = "Random pick"

    def predict(self, df) -> np.ndarray:
        return np.random.default_rng(self.random_state).random(len(df))
