"""Choosing a structure on the user's own rows by K-fold cross-validation (never by training error).

`auto` starts from each base structure of the term table (the compact form and the full physics form)
and adds power-law corrections one at a time while the cross-validated error drops by more than
MIN_GAIN and the fitted count stays within the budget. Discovered structures (`energylens discover`)
enter the same comparison as further candidates. Every candidate is fitted by the same joint fit of
time and energy (model/fitting.py); the criterion is the held-out error of energy per request.
"""
from __future__ import annotations

import numpy as np

from .fitting import Measurements, fit_formula
from .structure import CORRECTION_LIBRARY, Structure, compact_structure, physics_structure

MAX_FITTED = 12  # fitted numbers an energy prediction may depend on, the time model's included (the method's budget)
CV_FOLDS = 5
MIN_GAIN = 0.02  # a correction must cut the CV error by 2% (relative) to be kept
MIN_ROWS_PER_FITTED = 4  # fewer rows than 4 per fitted number: do not grow the structure


def _take(f, rows):
    from .predictor import _rows

    mask = np.zeros(f.n, bool)
    mask[rows] = True
    return _rows(f, mask)


def energy_prediction(structure: Structure, f, coef) -> tuple[np.ndarray, np.ndarray]:
    """(energy per request, its prefill part) for the rows of `f`."""
    out = structure.evaluate(f, coef)
    return out["e_prefill"] + out["e_decode"], out["e_prefill"]


def cross_validate(structure: Structure, f, meas: Measurements, *, folds: int = CV_FOLDS, seed: int = 0, prior=None,
                   loss="soft_l1", fixed=frozenset(), strength: float = 1.0) -> dict:
    """K-fold CV of the energy per request: MAPE and mean |log error| over held-out rows (rows measuring the
    prefill/decode split are also judged on each part). Each fold is fitted as the model is (same
    coefficients held fixed, same prior strength), so a recalibration is judged as a recalibration."""
    y = meas.energy()
    ok = np.flatnonzero(np.isfinite(y) & (y > 0))
    k = min(folds, len(ok))
    if k < 2:
        return {"folds": 0, "mape": float("nan"), "log_mae": float("nan"), "fitted": 0}
    fold = np.empty(len(ok), int)
    fold[np.random.default_rng(seed).permutation(len(ok))] = np.arange(len(ok)) % k
    prior = structure.priors() if prior is None else prior
    pred, pred_pf = np.full(len(ok), np.nan), np.full(len(ok), np.nan)
    fitted = []
    for i in range(k):
        tr, te = ok[fold != i], ok[fold == i]
        f_tr = _take(f, tr)
        held = structure.with_correction_range(f_tr)  # the training rows' range (a recalibration keeps its base's)
        res = fit_formula(held, f_tr, meas.take(tr), prior, fixed=fixed, strength=strength, n_starts=1,
                          seed=seed, loss=loss, max_nfev=100)
        pred[fold == i], pred_pf[fold == i] = energy_prediction(held, _take(f, te), res.coef)
        fitted.append(int(res.identified.sum()))
    ratio = pred / y[ok]
    pf_y, dec_y = meas.values["prefill"][ok], meas.values["decode"][ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_err = np.abs(np.log(ratio))
        pf_err = np.abs(np.log(pred_pf / pf_y))
        dec_err = np.abs(np.log((pred - pred_pf) / dec_y))
    split = np.isfinite(pf_err) & np.isfinite(dec_err)
    score = np.where(split, (log_err + pf_err + dec_err) / 3, log_err)
    return {"folds": k, "mape": float(np.nanmean(np.abs(ratio - 1))), "log_mae": float(np.nanmean(score)),
            "fitted": int(max(fitted)) if fitted else 0}


def select_structure(f, meas: Measurements, *, candidates=None, seed: int = 0, folds: int = CV_FOLDS,
                     max_fitted: int = MAX_FITTED, loss="soft_l1"):
    """The structure with the lowest CV error among the bases grown with corrections (and `candidates`).

    Returns (structure, cv of the chosen one, table of every structure compared).
    """
    y = meas.energy()
    n = int(np.sum(np.isfinite(y) & (y > 0)))
    table = []
    scored: list[tuple[Structure, dict]] = []

    def consider(s: Structure, cv: dict):
        table.append({"structure": s.name, "corrections": [c.name for c in s.corrections], "cv_mape": cv["mape"],
                      "cv_log_mae": cv["log_mae"], "fitted": cv["fitted"],
                      "within_budget": bool(np.isfinite(cv["log_mae"]) and cv["fitted"] <= max_fitted)})
        if table[-1]["within_budget"]:
            scored.append((s, cv))

    for base in (compact_structure(), physics_structure()):
        cv = cross_validate(base, f, meas, folds=folds, seed=seed, loss=loss)
        consider(base, cv)
        chosen: list = []
        while cv["fitted"] + 1 <= max_fitted and n >= MIN_ROWS_PER_FITTED * (cv["fitted"] + 1):
            trials = []
            for c in CORRECTION_LIBRARY.values():
                if c in chosen:
                    continue
                s = base.with_corrections(chosen + [c], name=f"{base.name}+corrections")
                trials.append((cross_validate(s, f, meas, folds=folds, seed=seed, loss=loss), s))
            trials = [t for t in trials if np.isfinite(t[0]["log_mae"]) and t[0]["fitted"] <= max_fitted]
            if not trials:
                break
            cv_new, s_new = min(trials, key=lambda t: t[0]["log_mae"])
            if cv_new["log_mae"] >= cv["log_mae"] * (1 - MIN_GAIN):
                break
            chosen = list(s_new.corrections)
            cv = cv_new
            consider(s_new, cv)
    for s in candidates or ():
        consider(s, cross_validate(s, f, meas, folds=folds, seed=seed, loss=loss))
    if scored:
        # The lowest CV error wins; within MIN_GAIN of it, the fewest fitted numbers (then the lower error).
        low = min(cv["log_mae"] for _, cv in scored)
        near = [(s, cv) for s, cv in scored if cv["log_mae"] <= low * (1 + MIN_GAIN)]
        chosen_s, cv = min(near, key=lambda sc: (sc[1]["fitted"], sc[1]["log_mae"]))
    else:  # nothing within the budget cross-validates (too few rows): the compact form
        chosen_s = compact_structure()
        cv = cross_validate(chosen_s, f, meas, folds=folds, seed=seed, loss=loss)
    corr = ", ".join(c.name for c in chosen_s.corrections) or "none"
    over = sum(not r["within_budget"] for r in table)
    why = (f"chosen by {cv['folds']}-fold cross-validation on {n} rows among {len(table)} structures"
           + (f" ({over} over the budget of {max_fitted} fitted numbers)" if over else "")
           + f": {chosen_s.name.split('+')[0]} form with corrections {corr}; CV mean |log error| {cv['log_mae']:.3f} "
             f"(the criterion), CV MAPE {100 * cv['mape']:.1f}%")
    return chosen_s.with_corrections(chosen_s.corrections, name=chosen_s.name, why=why), cv, table
