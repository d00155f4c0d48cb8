"""EnergyLensRegressor: the closed form as a scikit-learn estimator.

X is a profiling table (pandas DataFrame in the project schema). y, when given, is energy per request
in joules; without y the targets come from X's measured columns: prefill_energy_j and decode_energy_j
where a row has both (each fitted against its own term group), else energy_request_j, else
energy_token_j x output_tokens. itl_s and ttft_s, where present, fit the companion time model.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from ..errors import DataError
from ..features.physics import compute_features
from .fitting import fit_log_linear
from .predictor import ClosedFormPredictor, energy_targets, prepare
from .selection import CV_FOLDS, MAX_FITTED, cross_validate, energy_rows, fit_energy, select_structure
from .structure import BUILTIN, Structure

RECALIBRATION_PRIOR_STRENGTH = 1.0  # the base model's values are the priors, at the usual strength
# How firmly a recalibration holds the base model's values: chosen per call by leave-one-out on the
# new rows among these multipliers of the usual prior pull (few rows: the data say how far to move).
RECALIBRATION_STRENGTHS = (1.0, 3.0, 10.0, 30.0)
RECALIBRATION_RANGE = 3.0  # a recalibrated term coefficient stays within 3x of the base model's value
MIN_ENGINE_ROWS = 5  # rows an engine needs for its own calibration
STRUCTURES = ("auto", *BUILTIN)


def recalibrated_coefs(structure: Structure, df) -> tuple[str, ...]:
    """The coefficients a recalibration on `df` refits: those the term table marks as hardware/engine
    dependent, except theta_prefill when `df` does not measure prefill energy separately (without the
    split, total energy cannot tell prefill from decode work and would drive it to zero)."""
    split = "prefill_energy_j" in df and "decode_energy_j" in df and \
        (df["prefill_energy_j"].notna() & df["decode_energy_j"].notna()).any()
    records = (*structure.energy_terms, *structure.corrections, *structure.time_terms)
    return tuple(r.name for r in records if r.recalibrate and (split or r.name != "theta_prefill"))


def _round_time(df) -> np.ndarray:
    """Measured seconds per round of output tokens: mean running batch / output-token throughput."""
    if "throughput_tok_s" not in df:
        return np.full(len(df), np.nan)
    thr = df["throughput_tok_s"].to_numpy(float)
    b = df["avg_batch_size"].to_numpy(float) if "avg_batch_size" in df else np.full(len(df), np.nan)
    b = np.where(np.isfinite(b), b, df["batch_size"].to_numpy(float))
    return b / thr


def recalibration(base, df, random_state: int = 0, n_starts: int = 4):
    """An unfitted estimator that refits on `df` only the hardware/engine coefficients of the fitted
    `base` (same structure), with its values as priors; and the names it refits."""
    refit = recalibrated_coefs(base.structure_, df)
    values = dict(zip(base.structure_.energy_names, base.coef_))
    # A new GPU or engine changes a term's efficiency by a bounded factor: one odd row among a handful must
    # not move a coefficient tenfold (measured: one outlier among 5 rows took theta_launch from 4.4 to 25).
    terms = tuple(replace(t, lower=max(t.lower, values[t.name] / RECALIBRATION_RANGE),
                          upper=min(t.upper, values[t.name] * RECALIBRATION_RANGE)) if t.name in refit else t
                  for t in base.structure_.energy_terms)
    energy_refit = [n for n in refit if n in base.structure_.energy_names]
    why = (f"the base model's structure, recalibrated on {len(df)} rows ({len(energy_refit)} energy and "
           f"{len(refit) - len(energy_refit)} time coefficients free to move, within {RECALIBRATION_RANGE:g}x of the "
           f"base; those the rows do not reach stay at the base values); base: {base.structure_.why or base.structure_.name}")
    structure = replace(base.structure_, energy_terms=terms, why=why, _parsed=None)
    priors = values | dict(zip(structure.time_names, base.tau_))
    fixed = tuple(n for n in structure.energy_names + structure.time_names if n not in refit)
    make = lambda strength: EnergyLensRegressor(structure=structure, random_state=random_state, n_starts=n_starts,
                                                priors=priors, fixed=fixed, prior_strength=strength)
    return make(_recalibration_strength(make, df)), refit


FRESH_FIT_MIN_ROWS = 20  # a fit from scratch chooses among structures by 5-fold CV: it needs rows for that
FRESH_FIT_MARGIN = 0.8  # report the fresh fit when its CV error is below 80% of the recalibration's


def recalibration_check(recalibrated, df, random_state: int = 0) -> dict | None:
    """Cross-validated errors of a fitted recalibration and of a fit from scratch on the same rows, and
    whether the latter is clearly better (the base model may be too far from these rows for its bounded
    recalibration to follow). None when there are too few rows to fit from scratch."""
    if len(df) < FRESH_FIT_MIN_ROWS or not getattr(recalibrated, "cv_", None):
        return None
    fresh = EnergyLensRegressor(random_state=random_state).fit(df)
    rec, new = recalibrated.cv_, fresh.cv_
    if not (np.isfinite(rec.get("log_mae", np.nan)) and np.isfinite(new.get("log_mae", np.nan))):
        return None
    return {"recalibrated_cv_mape": rec["mape"], "fresh_cv_mape": new["mape"], "fresh_structure": fresh.structure_.name,
            "fresh_fitted": fresh.fitted_count(), "fresh_is_better": new["log_mae"] < FRESH_FIT_MARGIN * rec["log_mae"]}


def _recalibration_strength(make, df) -> float:
    """The prior strength with the lowest leave-one-out error of energy per request on `df` (at least 3
    rows with energy; the usual strength otherwise)."""
    df = prepare(df)
    targets = energy_targets(df)
    y = np.where(np.isfinite(targets[0]), targets[0], targets[1] + targets[2])
    rows = np.flatnonzero(np.isfinite(y) & (y > 0))
    if len(rows) < 3:
        return RECALIBRATION_PRIOR_STRENGTH
    best = None
    for strength in RECALIBRATION_STRENGTHS:
        err = []
        for i in rows[:20]:  # leave-one-out on at most 20 rows keeps the choice fast
            train = df.iloc[np.arange(len(df)) != i]
            m = make(strength).set_params(n_starts=1, cv_folds=0).fit(train)
            err.append(abs(np.log(m.predict(df.iloc[[i]])[0] / y[i])))
        score = float(np.mean(err))
        if best is None or score < best[0] - 1e-12:
            best = (score, strength)
    return best[1]


class EnergyLensRegressor(ClosedFormPredictor, RegressorMixin, BaseEstimator):
    """Closed-form energy model whose structure comes from the term table (docs/MODEL.md), with at
    most 12 fitted numbers behind an energy prediction, and a companion time model for TTFT and ITL
    that energy does not use.

    Parameters
    ----------
    structure : "auto", "physics", "compact" or a Structure
        "auto" chooses by K-fold cross-validation on the training rows among the compact and physics
        forms grown with power-law corrections (and `candidates`); the others fit that structure as is.
    n_starts : int
        Starts of the nonlinear least squares (the first at the priors).
    random_state : int
        Seed of the extra starts and of the CV folds; the fit is deterministic for a seed.
    loss : str
        scipy least_squares loss on log residuals ("soft_l1" is robust to outliers, "linear" is plain).
    fixed : tuple of str
        Coefficient names held at their prior.
    priors : dict or None
        Prior values by coefficient name; defaults are the term table's.
    prior_strength : float
        Multiplier of every coefficient's pull toward its prior.
    engine_column : str or None
        A column naming the serving engine or cluster of each row (e.g. "source"). When the data hold
        several, the hardware/engine coefficients are recalibrated per engine (at least 5 rows each)
        around the shared fit; rows of an unknown engine use the shared coefficients.
    candidates : tuple of Structure
        Further structures for "auto" to compare (discovered ones).
    max_fitted : int
        Most fitted numbers an energy prediction may depend on (auto's budget).
    cv_folds : int
        Folds of the cross-validation that chooses the structure (auto) and whose error is reported
        (`cv_`); 0 skips it for a given structure.
    """

    def __init__(self, structure="auto", n_starts=4, random_state=0, loss="soft_l1", fixed=(), priors=None,
                 prior_strength=1.0, engine_column=None, candidates=(), max_fitted=MAX_FITTED, cv_folds=CV_FOLDS):
        self.structure = structure
        self.n_starts = n_starts
        self.random_state = random_state
        self.loss = loss
        self.fixed = fixed
        self.priors = priors
        self.prior_strength = prior_strength
        self.engine_column = engine_column
        self.candidates = candidates
        self.max_fitted = max_fitted
        self.cv_folds = cv_folds

    # -- fitting ---------------------------------------------------------------------------
    def _resolve_structure(self, f, targets):
        s = self.structure
        if isinstance(s, Structure):
            return s, None
        if s == "auto":
            chosen, cv, table = select_structure(f, targets, candidates=self.candidates, seed=self.random_state,
                                                 folds=max(self.cv_folds, 2), max_fitted=self.max_fitted, loss=self.loss)
            return chosen, {**cv, "candidates": table}
        if s in BUILTIN:
            return BUILTIN[s](), None
        raise DataError(f"unknown structure {s!r}; expected one of {', '.join(STRUCTURES)} or a model file")

    def _prior_vectors(self, structure: Structure):
        pri = dict(self.priors or {})
        theta0 = np.array([pri.get(t.name, t.prior) for t in structure.energy_terms]
                          + [pri.get(c.name, c.prior) for c in structure.corrections], dtype=float)
        tau0 = np.array([pri.get(t.name, t.prior) for t in structure.time_terms], dtype=float)
        p = structure.n_terms
        if (theta0[:p] <= 0).any() or (tau0 <= 0).any() or not np.isfinite(theta0).all():
            raise DataError("priors must be finite and > 0")
        return theta0, tau0

    def _fit_core(self, structure, df, f, theta0, tau0, fixed, strength, y=None):
        """One fit of the time model and one of the energy coefficients, from the given priors."""
        itl_X, ttft_X = structure.time_design(f)
        itl = df["itl_s"].to_numpy(float) if "itl_s" in df else np.full(len(df), np.nan)
        ttft = df["ttft_s"].to_numpy(float) if "ttft_s" in df else np.full(len(df), np.nan)
        # Engine time per round of output tokens (continuous batching: decode step plus the prefill
        # work interleaved per output token): running batch / output throughput.
        round_X = itl_X + ttft_X / f.out_tokens[:, None]
        tt = structure.time_terms
        tfit = fit_log_linear([(itl_X, itl), (ttft_X, ttft), (round_X, _round_time(df))], tau0, structure.time_names,
                              fixed=fixed, prior_weight=[strength * t.prior_weight for t in tt],
                              lower=[t.lower for t in tt], n_starts=self.n_starts, seed=self.random_state, loss=self.loss)
        targets = energy_targets(df, y)
        if not (np.isfinite(targets[0]).any() or np.isfinite(targets[1]).any()):
            raise DataError("no energy measurements to fit (energy_request_j, energy_token_j or "
                            "prefill_energy_j + decode_energy_j)")
        efit = fit_energy(structure, energy_rows(structure, f, targets), theta0, fixed=fixed, strength=strength,
                          n_starts=self.n_starts, seed=self.random_state, loss=self.loss)
        return tfit, efit

    def fit(self, X, y=None):
        df = prepare(X)
        if len(df) == 0:
            raise DataError("no rows to fit")
        f = compute_features(df)
        targets = energy_targets(df, y)
        given, cv = self._resolve_structure(f, targets)
        structure = given.without_correction_range()  # fitted on the rows as they are
        theta0, tau0 = self._prior_vectors(structure)
        fixed = set(self.fixed or ())
        tfit, efit = self._fit_core(structure, df, f, theta0, tau0, fixed, self.prior_strength, y)
        if cv is None and self.cv_folds:
            cv = cross_validate(structure, energy_rows(structure, f, targets), folds=self.cv_folds,
                                seed=self.random_state, prior=theta0, loss=self.loss, fixed=frozenset(fixed),
                                strength=self.prior_strength)
        # Corrections are held to the range of the rows that fitted their exponents: these rows, plus the
        # base model's range when the exponents are kept from it (a recalibration).
        kept = bool(given.corrections) and all(c.name in fixed for c in given.corrections)
        self.structure_ = (given if kept else structure).with_correction_range(f)
        self.cv_ = cv or {}
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
        self.engines_ = self._fit_engines(df, y, fixed)
        pred = self._frame(df, f)
        total, pf_y, dec_y = targets
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

    def _fit_engines(self, df, y, fixed) -> dict:
        """Per serving engine (values of `engine_column`), the hardware/engine coefficients recalibrated
        from the shared fit; the structural coefficients stay shared."""
        col = self.engine_column
        if not col or col not in df or df[col].nunique(dropna=True) < 2:
            return {}
        out = {}
        keys = df[col].astype(str).to_numpy()
        yv = None if y is None else np.asarray(y, dtype=float)
        s = self.structure_
        for g in sorted(set(keys)):
            sel = keys == g
            if sel.sum() < MIN_ENGINE_ROWS:
                continue
            sub = df[sel]
            refit = recalibrated_coefs(s, sub)
            keep = fixed | {n for n in s.energy_names + s.time_names if n not in refit}
            tfit, efit = self._fit_core(s, sub, compute_features(sub), self.coef_, self.tau_, keep,
                                        RECALIBRATION_PRIOR_STRENGTH, None if yv is None else yv[sel])
            out[g] = {"coef": efit.coef, "tau": tfit.coef, "cov_log": efit.cov_log, "time_cov_log": tfit.cov_log,
                      "residual_std": efit.residual_std, "time_residual_std": tfit.residual_std, "rows": int(sel.sum())}
        return out

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

