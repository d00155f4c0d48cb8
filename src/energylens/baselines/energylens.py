"""The EnergyLens closed form behind the baseline interface."""
from __future__ import annotations

import numpy as np


class EnergyLensMethod:
    name = "energylens"
    label = "EnergyLens (closed form)"

    def __init__(self, random_state: int = 0, base=None, n_starts: int = 4):
        self.random_state = random_state
        self.base = base  # a fitted model to recalibrate from (few-sample transfer)
        self.n_starts = n_starts

    def fit(self, df):
        from ..model.estimator import EnergyLensRegressor, recalibrate

        if self.base is not None:  # as `fit --from` does: the best of base, recalibration and fresh fit by CV
            self.model_, self.comparison_, _ = recalibrate(self.base, df, self.random_state)
            return self
        # Rows from several serving engines (the `source` of each row) get engine-specific hardware/engine
        # coefficients around one shared fit.
        self.model_ = EnergyLensRegressor(random_state=self.random_state, n_starts=self.n_starts,
                                          engine_column="source").fit(df)
        return self

    def predict(self, df) -> np.ndarray:
        return self.model_.predict(df)

    def predict_frame(self, df):
        return self.model_.predict_frame(df)
