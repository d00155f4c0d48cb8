"""EnergyLensRegressor: the closed form as a scikit-learn estimator.

X is a profiling table (pandas DataFrame in the project schema). y, when given, is energy per request
in joules; without y the targets come from X's measured columns (model/fitting.py `measurements`):
energy per request or its prefill and decode parts, mean power, TTFT, ITL and throughput, all fitted
jointly by the one formula (energy = every GPU's power over the predicted time).
"""
from __future__ import annotations

from dataclasses import replace
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions

from ..errors import DataError
from ..features.physics import compute_features
from .fitted import CoefficientSet, FittedModel, Note, TrainingDomain
from .fitting import EXPONENT_BOUND, fit_formula, measurements
from .predictor import ClosedFormPredictor, _rows, prepare
from .selection import CV_FOLDS, MAX_FITTED, cross_validate, select_structure
from .structure import BUILTIN, Structure

RECALIBRATION_PRIOR_STRENGTH = 1.0  # the base model's values are the priors, at the usual strength
# How firmly a recalibration holds the base model's values: chosen per call by leave-one-out on the
# new rows among these multipliers of the usual prior pull (few rows: the data say how far to move).
RECALIBRATION_STRENGTHS = (1.0, 3.0, 10.0, 30.0)
RECALIBRATION_RANGE = 3.0  # a recalibrated coefficient stays within 3x of the base model's value
MIN_ENGINE_ROWS = 5  # rows an engine needs for its own calibration
STRUCTURES = ("auto", *BUILTIN)
LOSSES = ("linear", "soft_l1", "huber", "cauchy", "arctan")
MAX_SEED = 2**32 - 1  # NumPy's seed range


def recalibrated_coefs(structure: Structure, df) -> tuple[str, ...]:
    """The coefficients a recalibration on `df` refits: those the structure marks as hardware/engine dependent."""
    return tuple(r.name for r in structure.records() if r.recalibrate)


def _note(text: str) -> Note:
    name, _, rest = text.partition(": ")
    kind = "kept at prior" if "kept at prior" in rest else "at bound" if "bound" in rest else "fit"
    return Note(name if rest else "", kind, text)


class EnergyLensRegressor(ClosedFormPredictor, RegressorMixin, BaseEstimator):
    """Closed-form energy model: energy is every GPU's power over the predicted time, the power within
    [idle, TDP] by construction; the structure comes from the term table (docs/MODEL.md) with at most 12
    fitted numbers behind a prediction, the time model's included.

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
        Most fitted numbers a prediction may depend on (auto's budget).
    cv_folds : int
        Folds of the cross-validation that chooses the structure (auto) and whose error is reported
        (`cv_`); 0 skips it for a given structure.
    """

    _parameter_constraints = {
        "structure": [StrOptions(set(STRUCTURES)), Structure],
        "n_starts": [Interval(Integral, 1, 100, closed="both")],
        "random_state": [Interval(Integral, 0, MAX_SEED, closed="both")],
        "loss": [StrOptions(set(LOSSES))],
        "fixed": [tuple, list],
        "priors": [dict, None],
        "prior_strength": [Interval(Real, 0, 1e6, closed="neither")],
        "engine_column": [str, None],
        "candidates": [tuple, list],
        "max_fitted": [Interval(Integral, 1, 200, closed="both")],
        "cv_folds": [Interval(Integral, 0, 50, closed="both")],
    }

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # X is a profiling table (a DataFrame with text columns), not an array
        tags.input_tags.categorical = True
        tags.target_tags.required = False  # the targets can come from X's measured columns
        return tags

    # -- fitting ---------------------------------------------------------------------------
    def _check_params(self):
        try:
            self._validate_params()
        except Exception as exc:  # scikit-learn's InvalidParameterError, as the project's error
            raise DataError(f"EnergyLensRegressor: {exc}") from None
        if any(not isinstance(n, str) for n in self.fixed):
            raise DataError("EnergyLensRegressor: 'fixed' must be a tuple of coefficient names")
        if self.priors and any(isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v)
                               for v in self.priors.values()):
            raise DataError("EnergyLensRegressor: 'priors' must map coefficient names to finite numbers")

    def _resolve_structure(self, f, meas):
        s = self.structure
        if isinstance(s, Structure):  # its old `why` spoke of other rows: say it was given
            if not s.why.startswith("as given"):
                s = replace(s, why="as given" + (f" (it was first {s.why})" if s.why else ""))
            return s, None
        if s == "auto":
            chosen, cv, table = select_structure(f, meas, candidates=self.candidates, seed=self.random_state,
                                                 folds=max(self.cv_folds, 2), max_fitted=self.max_fitted, loss=self.loss)
            return chosen, {**cv, "candidates": table}
        return BUILTIN[s](), None

    def _prior_vector(self, structure: Structure) -> np.ndarray:
        pri = dict(self.priors or {})
        unknown = set(pri) - set(structure.names)
        if unknown:
            raise DataError(f"priors name coefficients the structure does not have: {', '.join(sorted(unknown))[:200]}")
        prior = np.array([pri.get(r.name, r.prior) for r in structure.records()], dtype=float)
        p = structure.n_coefficients
        if (prior[:p] <= 0).any() or not np.isfinite(prior).all():
            raise DataError("priors must be finite and > 0")
        why = structure.out_of_range(prior)  # a prior held fixed is used as given: it must be physical
        if why:
            raise DataError(f"priors: {why}")
        if (np.abs(prior[p:]) > EXPONENT_BOUND).any():
            raise DataError(f"priors: correction exponents must lie within +-{EXPONENT_BOUND:g}")
        return prior

    def fit(self, X, y=None):
        self._check_params()
        df = prepare(X)
        if len(df) == 0:
            raise DataError("no rows to fit")
        f = compute_features(df)
        meas = measurements(df, y)
        if not (np.isfinite(meas.values["energy"]).any() or np.isfinite(meas.values["prefill"]).any()):
            raise DataError("no energy measurements to fit (energy_request_j, energy_token_j or "
                            "prefill_energy_j + decode_energy_j)")
        given, cv = self._resolve_structure(f, meas)
        fixed = set(self.fixed or ())
        unknown = fixed - set(given.names)
        if unknown:
            raise DataError(f"fixed names coefficients the structure does not have: {', '.join(sorted(unknown))[:200]}")
        # Corrections are held to the range of the rows that fitted their exponents: these rows, plus the base
        # model's range when the exponents are kept from it (a recalibration).
        kept = bool(given.corrections) and all(c.name in fixed for c in given.corrections)
        structure = given.with_correction_range(f) if kept else given.without_correction_range().with_correction_range(f)
        prior = self._prior_vector(structure)
        # `auto` promises at most max_fitted numbers: the fit on every row may identify one more than the folds did
        res = fit_formula(structure, f, meas, prior, fixed=fixed, strength=self.prior_strength, n_starts=self.n_starts,
                          seed=self.random_state, loss=self.loss,
                          max_fitted=self.max_fitted if self.structure == "auto" else None)
        if cv is None and self.cv_folds:
            cv = cross_validate(structure, f, meas, folds=self.cv_folds, seed=self.random_state, prior=prior,
                                loss=self.loss, fixed=frozenset(fixed), strength=self.prior_strength)
        shared = CoefficientSet(res.coef, res.identified, res.cov_log, res.residual_std, res.time_residual_std, len(df))
        self.fitted_ = FittedModel(structure=structure, shared=shared, engine_column=self.engine_column,
                                   domain=TrainingDomain.of(df, f), cv=cv or {}, notes=[_note(t) for t in res.notes],
                                   n_train=len(df))
        self.fitted_.engines = self._fit_engines(df, f, y, fixed)
        self.fitted_.train_metrics = self._train_metrics(df, f, meas)
        if self.fitted_count() > self.max_fitted:  # `auto` keeps within the budget; a given structure may not
            self.fitted_.notes.append(Note("", "fit", f"{self.fitted_count()} fitted numbers behind an energy prediction, "
                                                      f"above the method's budget of {self.max_fitted}: the structure "
                                                      "was given as is (structure 'auto' keeps within the budget)"))
        return self

    def _train_metrics(self, df, f, meas) -> dict:
        pred = self._frame(df, f)
        y = meas.energy()
        ok = np.isfinite(y) & (y > 0)
        p = pred["pred_energy_request_j"].to_numpy()
        out = {"rows": int(len(df)), "energy_mape": float(np.mean(np.abs(p[ok] / y[ok] - 1))),
               "energy_log_rmse": float(np.sqrt(np.mean(np.log(p[ok] / y[ok]) ** 2)))}
        for q, col in (("itl", "pred_itl_s"), ("ttft", "pred_ttft_s"), ("power", "pred_power_w")):
            m = meas.has(q)
            if m.any():
                out[f"{q}_mape"] = float(np.mean(np.abs(pred[col].to_numpy()[m] / meas.values[q][m] - 1)))
        return out

    def _fit_engines(self, df, f, y, fixed) -> dict:
        """Per serving engine (values of `engine_column`), the hardware/engine coefficients recalibrated
        from the shared fit; the structural coefficients stay shared."""
        col = self.engine_column
        if not col or col not in df or df[col].nunique(dropna=True) < 2:
            return {}
        out = {}
        keys = df[col].astype(str).to_numpy()
        yv = None if y is None else np.asarray(y, dtype=float)
        st = self.fitted_
        s = st.structure
        for g in sorted(set(keys)):
            sel = keys == g
            if sel.sum() < MIN_ENGINE_ROWS:
                continue
            sub = df[sel]
            refit = recalibrated_coefs(s, sub)
            keep = fixed | {n for n in s.names if n not in refit}
            res = fit_formula(s, _rows(f, sel), measurements(sub, None if yv is None else yv[sel]), st.shared.values,
                              fixed=keep, strength=RECALIBRATION_PRIOR_STRENGTH, n_starts=self.n_starts,
                              seed=self.random_state, loss=self.loss)
            cov = st.shared.cov_log.copy()  # shared coefficients keep the shared fit's uncertainty
            own = np.flatnonzero(res.identified)
            cov[np.ix_(own, own)] = res.cov_log[np.ix_(own, own)]
            out[g] = CoefficientSet(res.coef, res.identified | st.shared.fitted, cov, res.residual_std,
                                    res.time_residual_std, int(sel.sum()))
        return out

    def score(self, X, y=None, sample_weight=None):
        """R^2 of log energy per request (energies span orders of magnitude)."""
        df = prepare(X)
        meas = measurements(df, y)
        y_e = meas.energy()
        pred = self.predict(df)
        ok = np.isfinite(y_e) & (y_e > 0)
        ly, lp = np.log(y_e[ok]), np.log(pred[ok])
        ss_res = np.sum((ly - lp) ** 2)
        ss_tot = np.sum((ly - ly.mean()) ** 2)
        return float(1 - ss_res / ss_tot) if ss_tot > 0 else float(-ss_res)


# -- recalibration (`fit --from`) -----------------------------------------------------------------------
def recalibration(base, df, random_state: int = 0, n_starts: int = 4):
    """An unfitted estimator that refits on `df` only the hardware/engine coefficients of the fitted `base`
    (same structure), with its values as priors, each within RECALIBRATION_RANGE of them; and the names it
    refits."""
    s = base.structure_
    refit = recalibrated_coefs(s, df)
    values = dict(zip(s.names, base.coef_))
    # A new GPU or engine changes an efficiency by a bounded factor: one odd row among a handful must not move a
    # coefficient tenfold.
    coefs = tuple(replace(c, prior=values[c.name], lower=max(c.lower, values[c.name] / RECALIBRATION_RANGE),
                          upper=min(c.upper, values[c.name] * RECALIBRATION_RANGE)) if c.name in refit else c
                  for c in s.coefficients)
    why = (f"the base model's structure, recalibrated on {len(df)} rows ({len(refit)} coefficients free to move, within "
           f"{RECALIBRATION_RANGE:g}x of the base; those the rows do not reach stay at the base values); base: "
           f"{s.why or s.name}")
    structure = replace(s.with_coefficients(coefs), why=why, _parsed=None, _function=None)
    fixed = tuple(n for n in s.names if n not in refit)
    make = lambda strength: EnergyLensRegressor(structure=structure, random_state=random_state, n_starts=n_starts,
                                                priors=values, fixed=fixed, prior_strength=strength)
    return make(_recalibration_strength(make, df)), refit


def _recalibration_strength(make, df) -> float:
    """The prior strength with the lowest leave-one-out error of energy per request on `df` (at least 3 rows
    with energy; the usual strength otherwise)."""
    df = prepare(df)
    y = measurements(df).energy()
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


FRESH_FIT_MIN_ROWS = 10  # a fit from scratch needs rows for its own cross-validation
CHOICES = ("auto", "base", "recalibrate", "fresh")
# How each candidate of a recalibration is named to a person (the CLI's printout and the web's reply).
KEPT_AS = {"base": "the base model as it is", "recalibrate": "its recalibration", "fresh": "a fit from scratch"}


def compare_recalibration(base, df, random_state: int = 0, folds: int = CV_FOLDS) -> dict:
    """Cross-validated errors on the user's rows of: the base model as it is (no fitting: its error on every
    row), its recalibration, and a fit from scratch (at least FRESH_FIT_MIN_ROWS rows). Returns
    {"base": cv, "recalibrate": cv, "fresh": cv or None, "best": name}, cv = {mape, log_mae, folds}."""
    df = prepare(df)
    meas = measurements(df)
    y = meas.energy()
    ok = np.isfinite(y) & (y > 0)
    if not ok.any():
        raise DataError("no energy measurements to compare models on")
    p = base.predict(df)
    base_cv = {"mape": float(np.mean(np.abs(p[ok] / y[ok] - 1))), "log_mae": float(np.mean(np.abs(np.log(p[ok] / y[ok])))),
               "folds": 0}
    rec, _ = recalibration(base, df, random_state=random_state)
    f = compute_features(df)
    rec_cv = cross_validate(rec.structure.with_correction_range(f), f, meas, folds=folds, seed=random_state,
                            prior=rec._prior_vector(rec.structure), fixed=frozenset(rec.fixed),
                            strength=rec.prior_strength) if ok.sum() >= 2 else dict(base_cv)
    fresh_cv = None
    if ok.sum() >= FRESH_FIT_MIN_ROWS:
        fresh = EnergyLensRegressor(random_state=random_state).fit(df)
        fresh_cv = {k: fresh.cv_.get(k) for k in ("mape", "log_mae", "folds")}
    scores = {"base": base_cv["log_mae"], "recalibrate": rec_cv.get("log_mae", np.nan)}
    if fresh_cv is not None and fresh_cv.get("log_mae") is not None:
        scores["fresh"] = fresh_cv["log_mae"]
    finite = {k: v for k, v in scores.items() if v is not None and np.isfinite(v)}
    best = min(finite, key=finite.get) if finite else "base"
    return {"base": base_cv, "recalibrate": rec_cv, "fresh": fresh_cv, "best": best}


def recalibrate(base, df, random_state: int = 0, choice: str = "auto"):
    """`fit --from`: the model kept for `df` among the base model as it is, its recalibration and a fit from
    scratch, by `compare_recalibration` ("auto": the lowest cross-validated error) or as `choice` forces.
    Returns (fitted model, comparison, refit coefficient names)."""
    if choice not in CHOICES:
        raise DataError(f"--choose must be one of {', '.join(CHOICES)}, got {choice!r}")
    comparison = compare_recalibration(base, df, random_state=random_state)
    pick = comparison["best"] if choice == "auto" else choice
    if pick == "fresh" and comparison["fresh"] is None:
        raise DataError(f"a fit from scratch needs at least {FRESH_FIT_MIN_ROWS} rows with energy, got fewer")
    comparison["kept"] = pick
    refit = ()
    if pick == "base":
        model = base
    elif pick == "recalibrate":
        model, refit = recalibration(base, df, random_state=random_state)
        model.fit(df)
        model.fitted_.domain = base.domain_.union(model.fitted_.domain)  # the base's rows still stand behind it
    else:
        model = EnergyLensRegressor(random_state=random_state).fit(df)
    return model, comparison, refit
