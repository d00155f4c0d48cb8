"""Black-box surrogates on the raw features: random forest, XGBoost, their average, log-linear.

All regress log energy per request (energies span orders of magnitude) and predict exp of it.
"""
from __future__ import annotations

import numpy as np

from .raw_features import energy_target, raw_matrix


class _LogTarget:
    label = ""

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def _make(self):
        raise NotImplementedError

    def fit(self, df):
        y = energy_target(df)
        ok = np.isfinite(y) & (y > 0)
        self.model_ = self._make()
        self.model_.fit(raw_matrix(df)[ok], np.log(y[ok]))
        return self

    def predict(self, df) -> np.ndarray:
        return np.exp(self.model_.predict(raw_matrix(df)))


class RandomForestSurrogate(_LogTarget):
    name = "rf"
    label = "Random forest"

    def _make(self):
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(n_estimators=200, min_samples_leaf=1, random_state=self.random_state, n_jobs=1)


class XGBoostSurrogate(_LogTarget):
    name = "xgb"
    label = "XGBoost"

    def _make(self):
        from xgboost import XGBRegressor

        return XGBRegressor(n_estimators=300, max_depth=4, learning_rate=0.08, subsample=0.9,
                            random_state=self.random_state, n_jobs=1, verbosity=0)


class LogLinearSurrogate(_LogTarget):
    """Ridge regression of log energy on log(1 + feature)."""

    name = "loglinear"
    label = "Log-linear regression"

    def _make(self):
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        return make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), Ridge(alpha=1.0))


class SecondOrderLogLinearSurrogate(_LogTarget):
    """Second-order log-linear regression: log energy on log(1 + feature), their squares and pairwise
    products, ridge-penalized with the penalty chosen by cross-validation inside the training rows.

    Constant features are dropped, and predictions are kept within the training targets' log range
    widened by 1 (a factor e): a quadratic in logs extrapolates explosively, and any careful user of
    this baseline would clip it.
    """

    name = "loglinear2"
    label = "Second-order log-linear regression"

    def fit(self, df):
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import PolynomialFeatures, StandardScaler

        y = energy_target(df)
        ok = np.isfinite(y) & (y > 0)
        X = np.log1p(np.maximum(raw_matrix(df)[ok], 0))
        self.keep_ = X.std(axis=0) > 1e-12
        self.model_ = make_pipeline(StandardScaler(), PolynomialFeatures(2, include_bias=False), StandardScaler(),
                                    RidgeCV(alphas=np.logspace(-3, 3, 13)))
        ly = np.log(y[ok])
        self.model_.fit(X[:, self.keep_], ly)
        self.range_ = (ly.min() - 1.0, ly.max() + 1.0)
        return self

    def predict(self, df) -> np.ndarray:
        X = np.log1p(np.maximum(raw_matrix(df), 0))[:, self.keep_]
        return np.exp(np.clip(self.model_.predict(X), *self.range_))


class TunedSurrogate:
    """A black box whose target and hyper-parameters are chosen by 3-fold cross-validation inside the
    training rows (never on test rows): log energy per request, or log energy per output token times
    the output tokens; a small grid of tree depth / leaf size."""

    name = ""
    label = ""
    TARGETS = ("request", "token")
    FOLDS = 3

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def _grid(self):
        raise NotImplementedError

    def _make(self, **params):
        raise NotImplementedError

    def fit(self, df):
        from sklearn.model_selection import KFold

        y = energy_target(df)
        ok = np.isfinite(y) & (y > 0)
        X, y = raw_matrix(df)[ok], y[ok]
        out = df["output_tokens"].to_numpy(float)[ok]
        best = None
        folds = KFold(min(self.FOLDS, len(y)), shuffle=True, random_state=self.random_state) if len(y) >= 6 else None
        for target in self.TARGETS:
            ly = np.log(y) - (np.log(out) if target == "token" else 0.0)
            for params in self._grid():
                if folds is None:
                    score = 0.0
                else:
                    err = []
                    for tr, te in folds.split(X):
                        m = self._make(**params).fit(X[tr], ly[tr])
                        pred = m.predict(X[te]) + (np.log(out[te]) if target == "token" else 0.0)
                        err.append(np.mean(np.abs(np.exp(pred) / y[te] - 1)))
                    score = float(np.mean(err))
                if best is None or score < best[0]:
                    best = (score, target, params)
        _, self.target_, self.params_ = best
        ly = np.log(y) - (np.log(out) if self.target_ == "token" else 0.0)
        self.model_ = self._make(**self.params_).fit(X, ly)
        return self

    def predict(self, df) -> np.ndarray:
        pred = self.model_.predict(raw_matrix(df))
        if self.target_ == "token":
            pred = pred + np.log(df["output_tokens"].to_numpy(float))
        return np.exp(pred)


class TunedXGBoost(TunedSurrogate):
    name = "xgb_tuned"
    label = "XGBoost (target and depth by CV)"

    def _grid(self):
        return [{"max_depth": d, "n_estimators": n} for d in (2, 4) for n in (100, 300)]

    def _make(self, max_depth, n_estimators):
        from xgboost import XGBRegressor

        return XGBRegressor(n_estimators=n_estimators, max_depth=max_depth, learning_rate=0.08, subsample=0.9,
                            random_state=self.random_state, n_jobs=1, verbosity=0)


class TunedRandomForest(TunedSurrogate):
    name = "rf_tuned"
    label = "Random forest (target and leaf size by CV)"

    def _grid(self):
        return [{"min_samples_leaf": k} for k in (1, 3)]

    def _make(self, min_samples_leaf):
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(n_estimators=100, min_samples_leaf=min_samples_leaf,
                                     random_state=self.random_state, n_jobs=1)


class EnsembleSurrogate:
    """Average of the random forest and XGBoost in log space."""

    name = "ensemble"
    label = "Ensemble (RF + XGBoost)"

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, df):
        self.members_ = [RandomForestSurrogate(self.random_state).fit(df), XGBoostSurrogate(self.random_state).fit(df)]
        return self

    def predict(self, df) -> np.ndarray:
        return np.exp(np.mean([np.log(m.predict(df)) for m in self.members_], axis=0))
