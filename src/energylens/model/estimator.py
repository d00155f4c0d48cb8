"""EnergyLensRegressor: the closed form as a scikit-learn estimator.

X is a profiling table (pandas DataFrame in the project schema). y, when given, is energy per request
in joules; without y the targets come from X's measured columns: prefill_energy_j and decode_energy_j
where a row has both (each fitted against its own term group), else energy_request_j, else
energy_token_j x output_tokens. itl_s and ttft_s, where present, fit the companion time model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ..data.schema import validate
from ..errors import DataError
from ..features.physics import compute_features
from .closed_form import (ENERGY_NAMES, ENERGY_TERMS, GROUPS, TIME_NAMES, TIME_TERMS, energy_matrices,
                          group_matrix, predict_times, time_matrices)
from .fitting import fit_log_linear, log_prediction_std

_DESCRIPTORS = ("params_total_b", "params_active_b", "arch", "gpu_peak_tflops", "gpu_mem_bw_tbs", "gpu_tdp_w",
                "gpu_idle_w", "gpu_link_gbs", "gpu_mem_gb")

# Coefficients that depend on the hardware and the serving engine rather than on the model's
# structure: the ones a recalibration (`fit --from`) refits. Documented in docs/MODEL.md.
HARDWARE_ENGINE_COEFS = ("theta_prefill", "theta_weights", "theta_overhead", "theta_static",
                         "tau_memory", "tau_flops", "tau_overhead", "tau_prefill")


def prepare(X) -> pd.DataFrame:
    """A validated table with descriptors filled, validating only when descriptors are missing."""
    if not isinstance(X, pd.DataFrame):
        raise DataError("EnergyLens estimators take a pandas DataFrame in the profiling schema")
    if all(c in X.columns for c in _DESCRIPTORS) and not X[list(_DESCRIPTORS)].isna().any().any():
        return X
    return validate(X, require_energy=False)


def energy_targets(df: pd.DataFrame, y=None):
    """(total, prefill, decode) per-request energy targets; NaN where a row does not measure it."""
    n = len(df)
    nan = np.full(n, np.nan)
    pf = df["prefill_energy_j"].to_numpy(float) if "prefill_energy_j" in df else nan.copy()
    dec = df["decode_energy_j"].to_numpy(float) if "decode_energy_j" in df else nan.copy()
    split = np.isfinite(pf) & np.isfinite(dec)
    if y is not None:
        total = np.asarray(y, dtype=float).copy()
    else:
        total = df["energy_request_j"].to_numpy(float).copy() if "energy_request_j" in df else nan.copy()
        if "energy_token_j" in df:
            per_tok = df["energy_token_j"].to_numpy(float) * df["output_tokens"].to_numpy(float)
            total = np.where(np.isfinite(total), total, per_tok)
    total = np.where(split, np.nan, total)  # split rows are fitted on their two parts
    pf = np.where(split, pf, np.nan)
    dec = np.where(split, dec, np.nan)
    return total, pf, dec


class EnergyLensRegressor(RegressorMixin, BaseEstimator):
    """Closed-form energy model with 11 non-negative coefficients and a 5-coefficient time model.

    Parameters
    ----------
    n_starts : int
        Starts of the nonlinear least squares (the first at the priors).
    random_state : int
        Seed of the extra starts; the fit is deterministic for a seed.
    loss : str
        scipy least_squares loss on log residuals ("soft_l1" is robust to outliers, "linear" is plain).
    fixed : tuple of str
        Coefficient names held at their prior.
    priors : dict or None
        Prior values (energy and time coefficients by name); defaults are the physics priors.
    """

    def __init__(self, n_starts=4, random_state=0, loss="soft_l1", fixed=(), priors=None):
        self.n_starts = n_starts
        self.random_state = random_state
        self.loss = loss
        self.fixed = fixed
        self.priors = priors

    # -- fitting ---------------------------------------------------------------------------
    def _prior_vectors(self):
        pri = dict(self.priors or {})
        theta0 = np.array([pri.get(t.name, t.prior) for t in ENERGY_TERMS], dtype=float)
        tau0 = np.array([pri.get(t.name, t.prior) for t in TIME_TERMS], dtype=float)
        if (theta0 <= 0).any() or (tau0 <= 0).any():
            raise DataError("priors must be > 0")
        return theta0, tau0

    def fit(self, X, y=None):
        df = prepare(X)
        if len(df) == 0:
            raise DataError("no rows to fit")
        f = compute_features(df)
        theta0, tau0 = self._prior_vectors()
        fixed = set(self.fixed or ())
        itl_X, ttft_X = time_matrices(f)
        itl = df["itl_s"].to_numpy(float) if "itl_s" in df else np.full(len(df), np.nan)
        ttft = df["ttft_s"].to_numpy(float) if "ttft_s" in df else np.full(len(df), np.nan)
        tfit = fit_log_linear([(itl_X, itl), (ttft_X, ttft)], tau0, TIME_NAMES, fixed=fixed,
                              prior_weight=[t.prior_weight for t in TIME_TERMS], lower=[t.lower for t in TIME_TERMS],
                              n_starts=self.n_starts, seed=self.random_state, loss=self.loss)
        total, pf_y, dec_y = energy_targets(df, y)
        if not (np.isfinite(total).any() or np.isfinite(pf_y).any()):
            raise DataError("no energy measurements to fit (energy_request_j, energy_token_j or "
                            "prefill_energy_j + decode_energy_j)")
        pf, dec = energy_matrices(f, tfit.coef)
        efit = fit_log_linear([(pf + dec, total), (pf, pf_y), (dec, dec_y)], theta0, ENERGY_NAMES, fixed=fixed,
                              prior_weight=[t.prior_weight for t in ENERGY_TERMS], lower=[t.lower for t in ENERGY_TERMS],
                              n_starts=self.n_starts, seed=self.random_state, loss=self.loss)
        self.coef_ = efit.coef
        self.tau_ = tfit.coef
        self.identified_ = efit.identified
        self.time_identified_ = tfit.identified
        self.cov_log_ = efit.cov_log
        self.time_cov_log_ = tfit.cov_log
        self.residual_std_ = efit.residual_std
        self.time_residual_std_ = tfit.residual_std
        self.notes_ = efit.notes + tfit.notes
        self.n_train_ = len(df)
        pred = self._frame(df, f)
        meas = np.where(np.isfinite(total), total, pf_y + dec_y)
        ok = np.isfinite(meas)
        self.train_metrics_ = {
            "rows": int(len(df)),
            "energy_mape": float(np.mean(np.abs(pred["pred_energy_request_j"].to_numpy()[ok] / meas[ok] - 1))),
            "energy_log_rmse": float(np.sqrt(np.mean(np.log(pred["pred_energy_request_j"].to_numpy()[ok] / meas[ok]) ** 2))),
        }
        for col, name in (("itl_s", "itl_mape"), ("ttft_s", "ttft_mape")):
            if col in df and df[col].notna().any():
                m = df[col].notna().to_numpy()
                self.train_metrics_[name] = float(np.mean(np.abs(pred[f"pred_{col}"].to_numpy()[m] / df[col].to_numpy(float)[m] - 1)))
        return self

    # -- prediction ------------------------------------------------------------------------
    def _frame(self, df, f=None) -> pd.DataFrame:
        f = f if f is not None else compute_features(df)
        pf, dec = energy_matrices(f, self.tau_)
        e_pf, e_dec = pf @ self.coef_, dec @ self.coef_
        total = e_pf + e_dec
        itl, ttft = predict_times(f, self.tau_)
        sd = log_prediction_std(pf + dec, self.coef_, self.cov_log_, self.residual_std_)
        return pd.DataFrame({
            "pred_energy_request_j": total,
            "pred_energy_token_j": total / f.out_tokens,
            "pred_prefill_energy_j": e_pf,
            "pred_decode_energy_j": e_dec,
            "pred_ttft_s": ttft,
            "pred_itl_s": itl,
            "pred_energy_request_lo_j": total * np.exp(-1.96 * sd),
            "pred_energy_request_hi_j": total * np.exp(1.96 * sd),
        }, index=df.index)

    def predict_frame(self, X) -> pd.DataFrame:
        """All predictions for each configuration (energy, split, times, 95% interval)."""
        check_is_fitted(self, "coef_")
        return self._frame(prepare(X))

    def predict(self, X) -> np.ndarray:
        """Energy per request (J)."""
        return self.predict_frame(X)["pred_energy_request_j"].to_numpy()

    def predict_energy_token(self, X) -> np.ndarray:
        return self.predict_frame(X)["pred_energy_token_j"].to_numpy()

    def score(self, X, y=None, sample_weight=None):
        """R^2 of log energy per request (energies span orders of magnitude)."""
        df = prepare(X)
        total, pf_y, dec_y = energy_targets(df, y)
        meas = np.where(np.isfinite(total), total, pf_y + dec_y)
        pred = self.predict(df)
        ok = np.isfinite(meas) & (meas > 0)
        ly, lp = np.log(meas[ok]), np.log(pred[ok])
        ss_res = np.sum((ly - lp) ** 2)
        ss_tot = np.sum((ly - ly.mean()) ** 2)
        return float(1 - ss_res / ss_tot) if ss_tot > 0 else float(-ss_res)

    def explain(self, X) -> pd.DataFrame:
        """Energy per request broken down per group (J and %), one row per configuration."""
        check_is_fitted(self, "coef_")
        df = prepare(X)
        f = compute_features(df)
        pf, dec = energy_matrices(f, self.tau_)
        parts = ((pf + dec) * self.coef_) @ group_matrix()
        total = parts.sum(axis=1)
        out = pd.DataFrame(parts, columns=[f"{g}_j" for g in GROUPS], index=df.index)
        for i, g in enumerate(GROUPS):
            out[f"{g}_pct"] = 100 * parts[:, i] / total
        out["prefill_share_pct"] = 100 * (pf @ self.coef_) / total
        out["total_j"] = total
        return out

    def coefficients(self) -> pd.DataFrame:
        """Coefficient table with 95% intervals and whether the data identified each one."""
        check_is_fitted(self, "coef_")
        rows = []
        for terms, coef, cov, ident in ((ENERGY_TERMS, self.coef_, self.cov_log_, self.identified_),
                                        (TIME_TERMS, self.tau_, self.time_cov_log_, self.time_identified_)):
            sd = np.sqrt(np.maximum(np.diag(cov), 0))
            for t, c, s, i in zip(terms, coef, sd, ident):
                rows.append({"name": t.name, "value": c, "lo95": c * np.exp(-1.96 * s), "hi95": c * np.exp(1.96 * s),
                             "unit": t.unit, "fitted": bool(i), "meaning": t.doc})
        return pd.DataFrame(rows)
