"""Latency proxies: choose the configuration with the lowest latency, as operators often do."""
from __future__ import annotations

import numpy as np


class LatencyMeasured:
    """Ranks by the measured inter-token latency (an oracle for latency, blind to energy)."""

    name = "latency_measured"
    label = "Latency proxy (measured ITL)"
    ranks_by_latency = True

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, df):
        return self

    def predict(self, df) -> np.ndarray:
        return df["itl_s"].to_numpy(float)


class LatencyPredicted:
    """Ranks by the ITL the EnergyLens time model predicts after fitting on the training rows."""

    name = "latency_predicted"
    label = "Latency proxy (predicted ITL)"
    ranks_by_latency = True

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, df):
        from ..model.estimator import EnergyLensRegressor

        self.model_ = EnergyLensRegressor(random_state=self.random_state, n_starts=1).fit(df)
        return self

    def predict(self, df) -> np.ndarray:
        return self.model_.predict_frame(df)["pred_itl_s"].to_numpy()
