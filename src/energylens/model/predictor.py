"""Prediction with a fitted closed form: numpy only, so loading a model and predicting stays fast."""
from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd

from ..data.schema import validate
from ..errors import DataError, NotFittedError
from ..features.physics import Features, compute_features
from .fitting import log_prediction_std
from .serving import serving_latency
from .terms import GROUPS

_DESCRIPTORS = ("params_total_b", "params_active_b", "arch", "gpu_peak_tflops", "gpu_mem_bw_tbs", "gpu_tdp_w",
                "gpu_idle_w", "gpu_link_gbs", "gpu_mem_gb")


def described(X: pd.DataFrame) -> bool:
    """Whether every row carries the descriptors a prediction reads (prepare returns such a table as it is)."""
    return all(c in X.columns for c in _DESCRIPTORS) and not X[list(_DESCRIPTORS)].isna().any().any()


def prepare(X) -> pd.DataFrame:
    """A validated table with descriptors filled, validating only when descriptors are missing."""
    if not isinstance(X, pd.DataFrame):
        raise DataError("EnergyLens estimators take a pandas DataFrame in the profiling schema")
    if described(X):
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


def _rows(f: Features, mask: np.ndarray) -> Features:
    """The features of the rows `mask` selects (every feature is computed row by row)."""
    return Features(**{k.name: getattr(f, k.name)[mask] for k in fields(Features)})


class ClosedFormPredictor:
    """Predictions, breakdowns and coefficient tables of a fitted closed form (coef_, tau_, ...)."""

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise NotFittedError("this model is not fitted yet: call fit() or load a model file")

    # -- prediction ------------------------------------------------------------------------
    def _coefficient_sets(self, df):
        """(row mask, theta, tau, cov_log, residual_std) per engine; one set when engines are not modelled."""
        shared = (self.coef_, self.tau_, self.cov_log_, self.residual_std_)
        engines = getattr(self, "engines_", None) or {}
        col = getattr(self, "engine_column", None)
        if not engines or not col or col not in df:
            return [(np.ones(len(df), bool), *shared)]
        keys = df[col].astype(str).to_numpy()
        sets, known = [], np.zeros(len(df), bool)
        for g, e in engines.items():
            sel = keys == g
            if sel.any():
                sets.append((sel, e["coef"], e["tau"], e["cov_log"], e["residual_std"]))
                known |= sel
        if (~known).any():
            sets.append((~known, *shared))
        return sets

    def _frame(self, df, f=None, breakdown: bool = False) -> pd.DataFrame:
        return pd.DataFrame(self.predict_arrays(df, f, breakdown=breakdown), index=df.index)

    def predict_arrays(self, df, f=None, *, intervals: bool = True, breakdown: bool = False) -> dict[str, np.ndarray]:
        """predict_frame's columns as arrays, for a validated table `df` (and its features `f` when the caller
        has them): no DataFrame is built. `intervals=False` leaves out the 95% interval."""
        self._check_fitted()
        f = f if f is not None else compute_features(df)
        sets = self._coefficient_sets(df)
        if len(sets) == 1:
            return self._arrays(df, f, *sets[0][1:], intervals=intervals, breakdown=breakdown)
        out = {}
        for mask, *rest in sets:  # rows of each engine with that engine's coefficients
            part = self._arrays(df[mask], _rows(f, mask), *rest, intervals=intervals, breakdown=breakdown)
            for name, values in part.items():
                out.setdefault(name, np.empty(len(df), values.dtype))[mask] = values
        return out

    def _arrays(self, df, f, coef, tau, cov_log, residual_std, *, intervals: bool = True,
                breakdown: bool = False) -> dict[str, np.ndarray]:
        s = self.structure_
        pf, dec, Z = s.energy_design(f)
        theta = coef[:s.n_terms]
        scale = np.exp(Z @ coef[s.n_terms:])
        e_pf, e_dec = pf @ theta * scale, dec @ theta * scale
        total = e_pf + e_dec
        itl_X, ttft_X = s.time_design(f)
        ttft, itl = ttft_X @ tau, itl_X @ tau
        out = {"pred_energy_request_j": total, "pred_energy_token_j": total / f.out_tokens,
               "pred_prefill_energy_j": e_pf, "pred_decode_energy_j": e_dec, "pred_ttft_s": ttft, "pred_itl_s": itl}
        if intervals:
            sd = log_prediction_std(pf + dec, Z, coef, cov_log, residual_std)
            out["pred_energy_request_lo_j"] = total * np.exp(-1.96 * sd)
            out["pred_energy_request_hi_j"] = total * np.exp(1.96 * sd)
        served = serving_latency(df, f, ttft, itl)
        out["pred_serving_ttft_s"] = served["ttft_s"]
        out["pred_serving_itl_s"] = served["tpot_s"]
        out["pred_serving_latency_s"] = served["latency_s"]
        if breakdown:  # energy per breakdown group, from the same matrices
            parts = ((pf + dec) * theta * scale[:, None]) @ s.group_matrix()
            for i, g in enumerate(GROUPS):
                out[f"{g}_j"] = parts[:, i]
            for i, g in enumerate(GROUPS):
                out[f"{g}_pct"] = 100 * parts[:, i] / total
            out["prefill_share_pct"] = 100 * e_pf / total
            out["total_j"] = total
        return out

    def predict_frame(self, X, breakdown: bool = False) -> pd.DataFrame:
        """All predictions for each configuration (energy, split, times, 95% interval); with
        `breakdown`, also the columns of `explain`."""
        self._check_fitted()
        return self._frame(prepare(X), breakdown=breakdown)

    def predict(self, X) -> np.ndarray:
        """Energy per request (J); the lean path (no intervals, no times) for large batches of configurations."""
        self._check_fitted()
        df = prepare(X)
        from .compiled import predict_energy  # one fused loop over large tables (numba, `fast` extra)

        fast = predict_energy(self, df)
        if fast is not None:
            return fast
        out = np.empty(len(df))
        s = self.structure_
        for mask, coef, *_ in self._coefficient_sets(df):
            pf, dec, Z = s.energy_design(compute_features(df[mask] if not mask.all() else df))
            out[mask] = (pf + dec) @ coef[:s.n_terms] * np.exp(Z @ coef[s.n_terms:])
        return out

    def explain(self, X) -> pd.DataFrame:
        """Energy per request broken down per term group (J and %), one row per configuration, with the
        prefill phase's share (prefill_share_pct: every term's prefill part, predict_frame's
        pred_prefill_energy_j; the "prefill" group holds only the prefill-compute terms); and
        `shares_not_identified`: the shares (group names, "prefill_share" for the phase) that rest on a
        term the data did not identify."""
        self._check_fitted()
        df = prepare(X)
        f = compute_features(df)
        frame = self._frame(df, f, breakdown=True)
        cols = [f"{g}_j" for g in GROUPS] + [f"{g}_pct" for g in GROUPS] + ["prefill_share_pct", "total_j"]
        out = frame[cols].copy()
        out["shares_not_identified"] = self._shares_not_identified(f)
        return out

    def _shares_not_identified(self, f) -> list[list[str]]:
        """Per row, the shares resting on a term no data set (model/identification.py: not fitted or not
        identified): a group share when such a term of the group contributes to the row, the prefill-phase
        share when such a term has a prefill part there."""
        from .identification import UNSUPPORTED

        s = self.structure_
        coefs = self.coefficients()
        weak = coefs.loc[coefs["kind"] == "energy", "status"].isin(UNSUPPORTED).to_numpy(bool)[:s.n_terms]
        if not weak.any():
            return [[] for _ in range(f.n)]
        pf, dec, _ = s.energy_design(f)
        theta = self.coef_[:s.n_terms]
        groups = ((pf + dec)[:, weak] * theta[weak] > 0) @ s.group_matrix()[weak] > 0
        phase = (pf[:, weak] * theta[weak] > 0).any(axis=1)
        return [[g for g, hit in zip(GROUPS, row) if hit] + (["prefill_share"] if p else []) for row, p in zip(groups, phase)]

    def coefficients(self) -> pd.DataFrame:
        """Coefficient table with 95% intervals, whether the data identified each one (model/identification.py:
        `identified`, and `identification` saying why not; lo95 and hi95 are NaN then), and whether the
        energy prediction uses it (time coefficients only feed TTFT and ITL)."""
        from .identification import fit_bounds, judge

        self._check_fitted()
        s = self.structure_
        held = set(getattr(self, "fixed", None) or ())  # estimator parameter: names held at a given value
        rows = []
        energy_records = [(t.name, t.unit, t.doc, t.provenance) for t in s.energy_terms] + \
                         [(c.name, "exponent", c.doc, c.provenance) for c in s.corrections]
        time_records = [(t.name, t.unit, t.doc, t.provenance) for t in s.time_terms]
        energy_bounds, time_bounds = fit_bounds(s)
        for records, coef, cov, ident, bounds, kind in (
                (energy_records, self.coef_, self.cov_log_, self.identified_, energy_bounds, "energy"),
                (time_records, self.tau_, self.time_cov_log_, self.time_identified_, time_bounds, "time")):
            sd = np.sqrt(np.maximum(np.diag(cov), 0))
            for j, ((name, unit, doc, prov), c, sdev, i, (low, high)) in enumerate(zip(records, coef, sd, ident, bounds)):
                exponent = kind == "energy" and j >= s.n_terms
                lo, hi = (c - 1.96 * sdev, c + 1.96 * sdev) if exponent else (c * np.exp(-1.96 * sdev), c * np.exp(1.96 * sdev))
                verdict = judge(float(c), float(lo), float(hi), bool(i), exponent=exponent, lower=low, upper=high,
                                held=name in held)
                if not verdict.identified:
                    lo = hi = np.nan
                rows.append({"name": name, "kind": kind, "value": c, "lo95": lo, "hi95": hi, "unit": unit,
                             "fitted": bool(i), "identified": verdict.identified, "status": verdict.status,
                             "identification": verdict.text(), "used_by_energy": kind == "energy", "meaning": doc,
                             "prior_provenance": prov})
        return pd.DataFrame(rows)

    def fitted_count(self) -> int:
        """Fitted numbers an energy prediction depends on (identified energy coefficients and exponents)."""
        self._check_fitted()
        return int(np.sum(self.identified_))
