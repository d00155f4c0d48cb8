"""Time and energy fitted jointly: robust nonlinear least squares on the log error of every measured column.

Each row gives as many equations as it has measurements: energy per request (or its prefill and decode
parts), mean power of all GPUs, batch-prefill time (TTFT as profilers measure it), decode step (ITL) and
the engine's time per round of output tokens (running batch / output throughput). All are predicted by the
one formula (model/terms.py), so the time coefficients are pinned by times and energies together and the
power coefficients by energies and powers: this is what lets ~50 runs identify a physical model.

Coefficients are fitted in log space within their bounds (every one is positive); correction exponents as
they are, within +-EXPONENT_BOUND. A weak log-normal prior keeps directions the data cannot see near their
prior; a coefficient that moves no prediction by 1% on any training row is not fitted at all: it stays at
its prior (a physics estimate) and is reported so. Nor is one whose fitted 95% interval spans more than
MAX_INTERVAL_RATIO (the rows cannot fix its order of magnitude): the fit is redone with it held at its prior,
so no prediction rests on a value the data did not set.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MIN_SHARE = 0.01  # a coefficient must move some row's prediction by 1% (per e-fold) to be identifiable
EXPONENT_BOUND = 5.0  # a power law steeper than 5 in a dimensionless group is no physics
LOG_BOUNDS = (-14.0, 9.0)  # no coefficient is fitted outside e^-14 .. e^9 whatever its own bounds
# A 95% interval wider than this (hi/lo; for an exponent, the factor per e-fold of its group) means the data do
# not fix the coefficient's order of magnitude: model/identification.py explains the choice.
MAX_INTERVAL_RATIO = 100.0
Z95 = 1.96  # normal quantile of every 95% interval (coefficients, predictions)
MAX_REFITS = 3  # rounds of holding unidentified coefficients at their prior and refitting
WIDE_REASON = (f"fitted, its 95% interval spanned more than {MAX_INTERVAL_RATIO:g}x: the rows do not fix its order "
               "of magnitude")
# Measured quantities and how the formula predicts each (definitions of model/terms.py).
QUANTITIES = ("energy", "prefill", "decode", "power", "ttft", "itl", "round")
ENERGY_QUANTITIES = ("energy", "prefill", "decode")
QUANTITY_WEIGHTS = {"energy": 1.0, "prefill": 1.0, "decode": 1.0, "power": 1.0, "ttft": 1.0, "itl": 1.0, "round": 1.0}
QUANTITY_COLUMNS = {"energy": "energy_request_j", "prefill": "prefill_energy_j", "decode": "decode_energy_j",
                    "power": "avg_power_w", "ttft": "ttft_s", "itl": "itl_s",
                    "round": "avg_batch_size / throughput_tok_s"}


@dataclass
class Measurements:
    """What a table measures, one array per quantity (NaN where a row does not measure it)."""

    values: dict[str, np.ndarray]

    @property
    def n(self) -> int:
        return len(next(iter(self.values.values())))

    def take(self, rows) -> "Measurements":
        return Measurements({k: v[rows] for k, v in self.values.items()})

    def energy(self) -> np.ndarray:
        """Energy per request: the total, or the sum of the parts where a row measures the split."""
        v = self.values
        return np.where(np.isfinite(v["energy"]), v["energy"], v["prefill"] + v["decode"])

    def has(self, quantity: str) -> np.ndarray:
        y = self.values[quantity]
        return np.isfinite(y) & (y > 0)


def measurements(df: pd.DataFrame, y=None) -> Measurements:
    """The measured quantities of a profiling table. `y`, when given, replaces the energy per request.
    Rows with prefill and decode energy are fitted on the two parts, not on their sum."""
    n = len(df)
    col = lambda c: df[c].to_numpy(float) if c in df else np.full(n, np.nan)
    pf, dec = col("prefill_energy_j"), col("decode_energy_j")
    split = np.isfinite(pf) & np.isfinite(dec)
    if y is not None:
        total = np.asarray(y, dtype=float).copy()
    else:
        total = col("energy_request_j")
        per_tok = col("energy_token_j") * col("output_tokens")
        total = np.where(np.isfinite(total), total, per_tok)
    thr = col("throughput_tok_s")
    running = col("avg_batch_size")
    running = np.where(np.isfinite(running), running, col("batch_size"))
    return Measurements({"energy": np.where(split, np.nan, total), "prefill": np.where(split, pf, np.nan),
                         "decode": np.where(split, dec, np.nan), "power": col("avg_power_w"), "ttft": col("ttft_s"),
                         "itl": col("itl_s"), "round": running / thr})


def predicted(out: dict, out_tokens) -> dict:
    """Each quantity from the formula's definitions: values, or (value, gradient) pairs when the formula was
    evaluated with gradients."""
    if not isinstance(out["t_step"], tuple):
        return {"energy": out["e_prefill"] + out["e_decode"], "prefill": out["e_prefill"], "decode": out["e_decode"],
                "power": out["power_all"], "ttft": out["t_prefill"], "itl": out["t_step"],
                "round": out["t_step"] + out["t_prefill"] / out_tokens}
    (pf, gpf), (dec, gdec), (step, gstep), (tpf, gtpf) = (out["e_prefill"], out["e_decode"], out["t_step"],
                                                          out["t_prefill"])
    return {"energy": (pf + dec, gpf + gdec), "prefill": out["e_prefill"], "decode": out["e_decode"],
            "power": out["power_all"], "ttft": out["t_prefill"], "itl": out["t_step"],
            "round": (step + tpf / out_tokens, gstep + gtpf / out_tokens[:, None])}


@dataclass
class FitResult:
    coef: np.ndarray
    identified: np.ndarray  # bool per coefficient: fitted (False: held at its prior or given value)
    cov_log: np.ndarray  # covariance of the fitted parameters (log coefficients, exponents as they are)
    residual_std: float  # std of the log residuals of energy
    time_residual_std: float  # std of the log residuals of times
    n_residuals: int
    cost: float
    notes: list[str] = field(default_factory=list)


def _bounds(structure):
    lo, hi, log = [], [], []
    for c in structure.coefficients:
        lo.append(max(np.log(c.lower), LOG_BOUNDS[0]))
        hi.append(min(np.log(c.upper), LOG_BOUNDS[1]))
        log.append(True)
    for _ in structure.corrections:
        lo.append(-EXPONENT_BOUND)
        hi.append(EXPONENT_BOUND)
        log.append(False)
    return np.array(lo), np.array(hi), np.array(log)


def fit_formula(structure, f, meas: Measurements, prior, *, fixed=frozenset(), strength: float = 1.0,
                n_starts: int = 4, seed: int = 0, loss: str = "soft_l1", f_scale: float = 0.1,
                max_nfev: int = 200, quantities=QUANTITIES, quantity_weights=None,
                max_fitted: int | None = None) -> FitResult:
    """Fit the coefficients of `structure` to every measured quantity of the rows of `f` (features).

    A fitted coefficient whose 95% interval spans more than MAX_INTERVAL_RATIO is then held at its prior and
    the rest refitted (up to MAX_REFITS rounds): it is reported as not fitted, never used at a value the
    data left free. With `max_fitted`, a fit that still depends on more fitted numbers holds the least certain
    ones (widest intervals) at their priors and is redone, so the budget holds."""
    names = list(structure.names)
    held: dict[str, str] = {}  # coefficient -> why it is held at its prior after a fit
    start = None

    def refit(n_starts_now):
        return _fit_once(structure, f, meas, prior, fixed=frozenset(fixed) | set(held), strength=strength,
                         n_starts=n_starts_now, seed=seed, loss=loss, f_scale=f_scale, max_nfev=max_nfev,
                         quantities=quantities, quantity_weights=quantity_weights, held_reasons=held, start=start)

    for _ in range(MAX_REFITS + 1):
        # a refit starts from the last solution (one start: the others' spread was explored already)
        res = refit(n_starts if start is None else 1)
        wide = [names[j] for j in unidentified(res)]
        if not wide:
            break
        held.update({n: WIDE_REASON for n in wide})
        start = res.coef
    else:  # every round found another: hold the last ones too and report the fit as it stands
        res = refit(1)
    if max_fitted is not None and res.identified.sum() > max_fitted:
        sd = np.sqrt(np.maximum(np.diag(res.cov_log), 0.0))
        fitted = np.flatnonzero(res.identified)
        extra = fitted[np.argsort(-sd[fitted], kind="stable")][:int(res.identified.sum()) - max_fitted]
        held.update({names[j]: f"the least certain beyond the budget of {max_fitted} fitted numbers" for j in extra})
        start = res.coef
        res = refit(1)
    return res


def interval_ratio(sd: np.ndarray) -> np.ndarray:
    """hi/lo of a 95% interval from the std of a log coefficient (or the factor per e-fold for an exponent)."""
    return np.exp(np.minimum(2 * Z95 * np.asarray(sd, float), 700.0))


def unidentified(res: "FitResult") -> np.ndarray:
    """Indices of fitted coefficients whose 95% interval spans more than MAX_INTERVAL_RATIO."""
    sd = np.sqrt(np.maximum(np.diag(res.cov_log), 0.0))
    wide = res.identified & ~(interval_ratio(sd) <= MAX_INTERVAL_RATIO)
    return np.flatnonzero(wide)


def _fit_once(structure, f, meas: Measurements, prior, *, fixed, strength, n_starts, seed, loss, f_scale, max_nfev,
              quantities, quantity_weights, held_reasons=None, start=None) -> FitResult:
    from scipy.optimize import least_squares  # imported here: prediction never needs SciPy

    names = structure.names
    prior = np.asarray(prior, dtype=float)
    lo, hi, is_log = _bounds(structure)
    weights = np.array([strength * r.prior_weight for r in structure.records()])
    masks = {q: meas.has(q) for q in quantities}
    masks = {q: m for q, m in masks.items() if m.any()}
    n_res = int(sum(m.sum() for m in masks.values()))
    notes: list[str] = []
    x_prior = np.where(is_log, np.log(np.maximum(prior, 1e-300)), prior)
    if n_res == 0:
        return FitResult(prior.copy(), np.zeros(len(names), bool), np.zeros((len(names),) * 2), np.nan, np.nan, 0, 0.0,
                         notes)
    logy = {q: np.log(meas.values[q][m]) for q, m in masks.items()}
    out_tokens = f.out_tokens

    def model(coef):
        out = structure.evaluate(f, coef, gradient_of=names)
        return predicted(out, out_tokens)

    # Which coefficients any row can see: sensitivity of the log predictions at the prior.
    pred0 = model(prior)
    sens = np.zeros(len(names))
    for q, m in masks.items():
        v, g = pred0[q]
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(g[m] / v[m, None]) * np.where(is_log, np.abs(prior), 1.0)
        sens = np.maximum(sens, np.nanmax(np.where(np.isfinite(rel), rel, 0.0), axis=0))
    free = np.array([sens[j] >= MIN_SHARE and names[j] not in fixed for j in range(len(names))])
    for j, n in enumerate(names):
        if n in (held_reasons or {}):
            notes.append(f"{n}: kept at prior {prior[j]:.4g} ({held_reasons[n]})")
        elif not free[j] and n not in fixed:
            notes.append(f"{n}: kept at prior {prior[j]:.4g} (no row where it moves a prediction by 1%)")
    if not free.any():
        return FitResult(prior.copy(), free, np.zeros((len(names),) * 2), np.nan, np.nan, n_res, 0.0, notes)
    idx = np.flatnonzero(free)

    def coef_of(x):
        c = prior.copy()
        c[idx] = np.where(is_log[idx], np.exp(x), x)
        return c

    cache = {}

    def both(x):
        key = x.tobytes()
        if key not in cache:
            cache.clear()
            c = coef_of(x)
            pred = model(c)
            res, jac = [], []
            scale = np.where(is_log[idx], c[idx], 1.0)  # d c / d x
            for q, m in masks.items():
                v, g = pred[q]
                v = np.maximum(v[m], 1e-300)
                wq = (quantity_weights or QUANTITY_WEIGHTS)[q]
                res.append(wq * (np.log(v) - logy[q]))
                jac.append(wq * g[m][:, idx] * scale / v[:, None])
            w = weights[idx]
            res.append(w * (x - x_prior[idx]))
            jac.append(np.diag(w))
            r = np.concatenate(res)
            J = np.vstack(jac)
            bad = ~np.isfinite(r)
            r[bad] = 1e3
            J[~np.isfinite(J)] = 0.0
            cache[key] = (r, J)
        return cache[key]

    lo_f, hi_f = lo[idx], hi[idx]
    rng = np.random.default_rng(seed)
    x_start = x_prior if start is None else np.where(is_log, np.log(np.maximum(start, 1e-300)), start)
    start0 = np.clip(x_start[idx], lo_f + 1e-6, hi_f - 1e-6)
    starts = [start0] + [np.clip(start0 + np.where(is_log[idx], rng.normal(0, 0.7, len(idx)), 0.0), lo_f + 1e-6,
                                 hi_f - 1e-6) for _ in range(max(n_starts - 1, 0))]
    best = None
    for x0 in starts:
        sol = least_squares(lambda x: both(x)[0], x0, jac=lambda x: both(x)[1], bounds=(lo_f, hi_f), loss=loss,
                            f_scale=f_scale, method="trf", x_scale=1.0, max_nfev=max_nfev)
        if best is None or sol.cost < best.cost - 1e-12:
            best = sol
    x = best.x
    coef = coef_of(x)
    r, J = both(x)
    data_r = r[:n_res]
    dof = max(n_res - len(x), 1)
    s2 = float(np.sum(data_r ** 2) / dof)
    cov = np.zeros((len(names), len(names)))
    try:
        cov[np.ix_(idx, idx)] = s2 * np.linalg.pinv(J.T @ J)
    except np.linalg.LinAlgError:
        notes.append("covariance could not be computed")
    energy_r, time_r, start = [], [], 0
    for q, m in masks.items():
        k = int(m.sum())
        (energy_r if q in ENERGY_QUANTITIES else time_r if q in ("ttft", "itl", "round") else []).append(data_r[start:start + k])
        start += k
    rstd = lambda parts: float(np.std(np.concatenate(parts))) if parts else float("nan")
    for j, v in zip(idx, x):
        if v <= lo[j] + 1e-6:
            notes.append(f"{names[j]}: at its lower bound {np.exp(lo[j]) if is_log[j] else lo[j]:.3g}")
        elif v >= hi[j] - 1e-6:
            notes.append(f"{names[j]}: at its upper bound {np.exp(hi[j]) if is_log[j] else hi[j]:.3g}")
    return FitResult(coef, free, cov, rstd(energy_r), rstd(time_r), n_res, float(best.cost), notes)


def log_prediction_std(grad: np.ndarray, value: np.ndarray, coef: np.ndarray, cov_log: np.ndarray, is_log,
                       residual_std: float) -> np.ndarray:
    """Std of log(prediction): coefficient uncertainty (delta method, gradient per row with respect to the
    coefficients) plus the residual scatter."""
    scale = np.where(is_log, coef, 1.0)
    g = grad * scale / np.maximum(value, 1e-300)[:, None]
    var = np.sum((g @ cov_log) * g, axis=1)
    rs = 0.0 if not np.isfinite(residual_std) else residual_std
    return np.sqrt(np.maximum(var, 0) + rs ** 2)
