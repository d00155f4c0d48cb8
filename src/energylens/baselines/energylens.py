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
        from ..model.closed_form import ENERGY_NAMES, TIME_NAMES
        from ..model.estimator import RECALIBRATION_PRIOR_STRENGTH, EnergyLensRegressor, recalibrated_coefs

        if self.base is not None:
            priors = dict(zip(ENERGY_NAMES, self.base.coef_)) | dict(zip(TIME_NAMES, self.base.tau_))
            refit = recalibrated_coefs(df)
            fixed = tuple(n for n in ENERGY_NAMES + TIME_NAMES if n not in refit)
            self.model_ = EnergyLensRegressor(random_state=self.random_state, priors=priors, fixed=fixed,
                                              prior_strength=RECALIBRATION_PRIOR_STRENGTH,
                                              n_starts=self.n_starts)
        else:
            # Rows from several serving engines (the `source` of each row) get engine-specific
            # hardware/engine coefficients around one shared fit.
            self.model_ = EnergyLensRegressor(random_state=self.random_state, n_starts=self.n_starts,
                                              engine_column="source")
        self.model_.fit(df)
        return self

    def predict(self, df) -> np.ndarray:
        return self.model_.predict(df)

    def predict_frame(self, df):
        return self.model_.predict_frame(df)
