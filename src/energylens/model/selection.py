"""Choosing a structure on the user's own rows by K-fold cross-validation (never by training error).

`auto` starts from each base structure of the term table (the compact form and the full physics
form) and adds power-law corrections in dimensionless groups one at a time while the
cross-validated error drops by more than MIN_GAIN and the fitted count stays within the budget.
Discovered structures (`energylens discover`) enter the same comparison as further candidates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fitting import fit_log_linear
from .structure import CORRECTION_LIBRARY, Structure, compact_structure, physics_structure

MAX_FITTED = 12  # fitted numbers an energy prediction may depend on (the method's budget)
CV_FOLDS = 5
MIN_GAIN = 0.02  # a correction must cut the CV error by 2% (relative) to be kept
MIN_ROWS_PER_FITTED = 4  # fewer rows than 4 per fitted number: do not grow the structure


@dataclass
class EnergyRows:
    """What the energy fit reads for one structure: design matrices and the three targets."""

    pf: np.ndarray
    dec: np.ndarray
    Z: np.ndarray
    total: np.ndarray
    pf_y: np.ndarray
    dec_y: np.ndarray

    def take(self, rows) -> "EnergyRows":
        return EnergyRows(self.pf[rows], self.dec[rows], self.Z[rows], self.total[rows], self.pf_y[rows], self.dec_y[rows])

    @property
    def measured(self) -> np.ndarray:
        return np.where(np.isfinite(self.total), self.total, self.pf_y + self.dec_y)


def energy_rows(structure: Structure, f, targets) -> EnergyRows:
    pf, dec, Z = structure.energy_design(f)
    return EnergyRows(pf, dec, Z, *targets)


def correction_matrix(f) -> np.ndarray:
    """(n x library) every correction of the library evaluated once, in CORRECTION_LIBRARY's order."""
    _, _, Z = compact_structure().with_corrections(CORRECTION_LIBRARY.values()).energy_design(f)
    return Z


def fit_energy(structure: Structure, rows: EnergyRows, prior, *, fixed=frozenset(), strength=1.0, n_starts=4, seed=0,
               loss="soft_l1", max_nfev=200):
    terms, corr = structure.energy_terms, structure.corrections
    weights = [strength * t.prior_weight for t in terms] + [strength * c.prior_weight for c in corr]
    # The total of every row (split rows too: energy per request is what predictions are judged on),
    # plus the prefill and decode parts where measured.
    blocks = [(rows.pf + rows.dec, rows.Z, rows.measured), (rows.pf, rows.Z, rows.pf_y), (rows.dec, rows.Z, rows.dec_y)]
    return fit_log_linear(blocks, prior, structure.energy_names, fixed=fixed, prior_weight=weights,
                          lower=[t.lower for t in terms] + [0.0] * len(corr),
                          upper=[t.upper for t in terms] + [np.inf] * len(corr),
                          n_starts=n_starts, seed=seed, loss=loss, max_nfev=max_nfev)


def predict_rows(structure: Structure, rows: EnergyRows, coef) -> np.ndarray:
    p = structure.n_terms
    return (rows.pf + rows.dec) @ coef[:p] * np.exp(rows.Z @ coef[p:])


def default_prior(structure: Structure) -> np.ndarray:
    return np.array([t.prior for t in structure.energy_terms] + [c.prior for c in structure.corrections], float)


def cross_validate(structure: Structure, rows: EnergyRows, *, folds: int = CV_FOLDS, seed: int = 0, prior=None,
                   loss="soft_l1", fixed=frozenset(), strength: float = 1.0) -> dict:
    """K-fold CV of the energy per request: MAPE and mean |log error| over held-out rows. Each fold is
    fitted as the model is (same coefficients held fixed, same prior strength), so a recalibration is
    judged as a recalibration."""
    y = rows.measured
    ok = np.flatnonzero(np.isfinite(y) & (y > 0))
    k = min(folds, len(ok))
    if k < 2:
        return {"folds": 0, "mape": float("nan"), "log_mae": float("nan"), "fitted": 0}
    fold = np.empty(len(ok), int)
    fold[np.random.default_rng(seed).permutation(len(ok))] = np.arange(len(ok)) % k
    prior = default_prior(structure) if prior is None else prior
    pred, pred_pf = np.full(len(ok), np.nan), np.full(len(ok), np.nan)
    fitted = []
    for i in range(k):
        tr, te = ok[fold != i], ok[fold == i]
        res = fit_energy(structure, rows.take(tr), prior, fixed=fixed, strength=strength, n_starts=1, seed=seed,
                         loss=loss, max_nfev=100)
        held = rows.take(te)
        pred[fold == i] = predict_rows(structure, held, res.coef)
        pred_pf[fold == i] = held.pf @ res.coef[:structure.n_terms] * np.exp(held.Z @ res.coef[structure.n_terms:])
        fitted.append(int(res.identified.sum()))
    ratio = pred / y[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_err = np.abs(np.log(ratio))
        # Rows that measure the split are also judged on it: a structure must get both phases right.
        pf_err = np.abs(np.log(pred_pf / rows.pf_y[ok]))
        dec_err = np.abs(np.log((pred - pred_pf) / rows.dec_y[ok]))
    split = np.isfinite(pf_err) & np.isfinite(dec_err)
    score = np.where(split, (log_err + pf_err + dec_err) / 3, log_err)
    return {"folds": k, "mape": float(np.nanmean(np.abs(ratio - 1))), "log_mae": float(np.nanmean(score)),
            "fitted": int(max(fitted)) if fitted else 0}


def select_structure(f, targets, *, candidates=None, seed: int = 0, folds: int = CV_FOLDS, max_fitted: int = MAX_FITTED,
                     loss="soft_l1"):
    """The structure with the lowest CV error among the bases grown with corrections (and `candidates`).

    Returns (structure, cv of the chosen one, table of every structure compared).
    """
    n = int(np.sum(np.isfinite(np.where(np.isfinite(targets[0]), targets[0], targets[1] + targets[2]))))
    table = []
    scored: list[tuple[Structure, dict]] = []

    def consider(s: Structure, cv: dict):
        table.append({"structure": s.name, "corrections": [c.name for c in s.corrections], "cv_mape": cv["mape"],
                      "cv_log_mae": cv["log_mae"], "fitted": cv["fitted"],
                      "within_budget": bool(np.isfinite(cv["log_mae"]) and cv["fitted"] <= max_fitted)})
        if table[-1]["within_budget"]:
            scored.append((s, cv))

    library = correction_matrix(f)  # the terms' and corrections' columns are computed once, not per trial
    column = {name: j for j, name in enumerate(CORRECTION_LIBRARY)}
    for base in (compact_structure(), physics_structure()):
        rows = energy_rows(base, f, targets)
        cv = cross_validate(base, rows, folds=folds, seed=seed, loss=loss)
        consider(base, cv)
        chosen: list = []
        while cv["fitted"] + 1 <= max_fitted and n >= MIN_ROWS_PER_FITTED * (cv["fitted"] + 1):
            trials = []
            for c in CORRECTION_LIBRARY.values():
                if c in chosen:
                    continue
                s = base.with_corrections(chosen + [c], name=f"{base.name}+corrections")
                Z = library[:, [column[x.name] for x in s.corrections]]
                r = EnergyRows(rows.pf, rows.dec, Z, rows.total, rows.pf_y, rows.dec_y)
                trials.append((cross_validate(s, r, folds=folds, seed=seed, loss=loss), s))
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
        consider(s, cross_validate(s, energy_rows(s, f, targets), folds=folds, seed=seed, loss=loss))
    if scored:
        # The lowest CV error wins; within MIN_GAIN of it, the fewest fitted numbers (then the lower error).
        low = min(cv["log_mae"] for _, cv in scored)
        near = [(s, cv) for s, cv in scored if cv["log_mae"] <= low * (1 + MIN_GAIN)]
        chosen_s, cv = min(near, key=lambda sc: (sc[1]["fitted"], sc[1]["log_mae"]))
    else:  # nothing within the budget cross-validates (too few rows): the compact form
        chosen_s = compact_structure()
        cv = cross_validate(chosen_s, energy_rows(chosen_s, f, targets), folds=folds, seed=seed, loss=loss)
    corr = ", ".join(c.name for c in chosen_s.corrections) or "none"
    over = sum(not r["within_budget"] for r in table)
    why = (f"chosen by {cv['folds']}-fold cross-validation on {n} rows among {len(table)} structures"
           + (f" ({over} over the budget of {max_fitted} fitted numbers)" if over else "")
           + f": {chosen_s.name.split('+')[0]} terms with corrections {corr}; CV mean |log error| {cv['log_mae']:.3f} "
             f"(the criterion), CV MAPE {100 * cv['mape']:.1f}%, {cv['fitted']} fitted numbers")
    return chosen_s.with_corrections(chosen_s.corrections, name=chosen_s.name, why=why), cv, table
