"""Robust nonlinear least squares on relative (log) error, with bounds, priors and uncertainty.

Coefficients are fitted as theta = exp(phi): every term stays non-negative (no negative energy).
Correction exponents c (prediction times exp(Z @ c)) are fitted as they are, bounded to +-5.
A weak log-normal prior (PRIOR_WEIGHT) keeps directions the data cannot see at their prior value;
coefficients whose terms contribute nothing to any row are fixed at the prior and reported so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PRIOR_WEIGHT = 0.05  # default pull toward the prior, in log units per unit residual
MIN_SHARE = 0.01  # a term must reach 1% of some row's prediction to be identifiable
LOG_BOUNDS = (-14.0, 9.0)
EXPONENT_BOUND = 5.0  # a power law steeper than 5 in a dimensionless group is no physics


@dataclass
class FitResult:
    coef: np.ndarray
    identified: np.ndarray  # bool per coefficient
    cov_log: np.ndarray  # covariance of log-coefficients (zeros for fixed ones)
    residual_std: float  # std of log residuals
    n_residuals: int
    cost: float
    notes: list[str] = field(default_factory=list)


def _shares(A_list, theta):
    share = np.zeros(len(theta))
    for A in A_list:
        pred = A @ theta
        ok = pred > 0
        if ok.any():
            share = np.maximum(share, (A[ok] * theta / pred[ok, None]).max(axis=0))
    return share


def fit_log_linear(blocks, prior: np.ndarray, names, *,
                   fixed: set[str] | frozenset = frozenset(), prior_weight=None, lower=None, upper=None, n_starts: int = 4, seed: int = 0,
                   loss: str = "soft_l1", f_scale: float = 0.1, max_nfev: int = 200) -> FitResult:
    """Fit theta >= 0 (and exponents c) minimizing sum over blocks of rho(log(A @ theta) + Z @ c - log(y)).

    blocks: (A, y) or (A, Z, y) triples, A of shape (n_i, p), Z of shape (n_i, q); rows with y <= 0 or
    NaN are skipped. `prior`, `names`, `prior_weight`, `lower`, `upper` have p + q entries: the terms'
    then the exponents'. The result's coef holds theta then c.
    """
    blocks = [b if len(b) == 3 else (b[0], np.zeros((len(b[1]), 0)), b[1]) for b in blocks]
    prior = np.asarray(prior, dtype=float)
    p = blocks[0][0].shape[1] if blocks else len(prior)
    q = len(prior) - p
    blocks = [(A[np.isfinite(y) & (y > 0)], Z[np.isfinite(y) & (y > 0)], y[np.isfinite(y) & (y > 0)]) for A, Z, y in blocks]
    blocks = [b for b in blocks if len(b[2])]
    n_res = sum(len(y) for *_, y in blocks)
    notes = []
    share = _shares([A for A, _, _ in blocks], prior[:p]) if blocks else np.zeros(p)
    free = np.array([(share[j] >= MIN_SHARE) and (names[j] not in fixed) for j in range(p)])
    Z_rows = np.vstack([Z for _, Z, _ in blocks]) if blocks else np.zeros((0, q))
    varies = np.ptp(Z_rows, axis=0) > 1e-9 if len(Z_rows) else np.zeros(q, bool)
    zfree = np.array([names[p + k] not in fixed and varies[k] for k in range(q)], dtype=bool)
    for j in range(p):
        if not free[j]:
            why = "held fixed" if names[j] in fixed else "no row where this term matters"
            notes.append(f"{names[j]}: kept at prior {prior[j]:.4g} ({why})")
    if n_res == 0 or not (free.any() or zfree.any()):
        return FitResult(prior.copy(), np.r_[free, zfree], np.zeros((p + q, p + q)), float("nan"), n_res, 0.0, notes)
    with np.errstate(divide="ignore"):
        log_prior = np.log(prior[:p])
    idx = np.flatnonzero(free)
    zidx = np.flatnonzero(zfree)
    w = np.full(p + q, PRIOR_WEIGHT) if prior_weight is None else np.asarray(prior_weight, dtype=float)
    w_free = np.r_[w[idx], w[p + zidx]]
    x_prior = np.r_[log_prior[idx], prior[p + zidx]]
    A_all = np.vstack([A for A, _, _ in blocks])
    Z_all = np.vstack([Z for _, Z, _ in blocks])
    logy = np.concatenate([np.log(y) for *_, y in blocks])
    lo_all = np.full(p, LOG_BOUNDS[0])
    if lower is not None:
        lb = np.asarray(lower, dtype=float)[:p]
        lo_all = np.where(lb > 0, np.log(np.maximum(lb, 1e-300)), lo_all)
    hi_all = np.full(p, LOG_BOUNDS[1])
    if upper is not None:
        ub = np.asarray(upper, dtype=float)[:p]
        hi_all = np.where(np.isfinite(ub), np.log(np.maximum(ub, 1e-300)), hi_all)
    lo = np.r_[lo_all[idx], np.full(len(zidx), -EXPONENT_BOUND)]
    hi = np.r_[hi_all[idx], np.full(len(zidx), EXPONENT_BOUND)]
    k = len(idx)

    def coef_of(x):
        th = prior.copy()
        th[idx] = np.exp(x[:k])
        th[p + zidx] = x[k:]
        return th

    def resid(x):
        th = coef_of(x)
        pred = np.maximum(A_all @ th[:p], 1e-300)
        return np.concatenate([np.log(pred) + Z_all @ th[p:] - logy, w_free * (x - x_prior)])

    def jac(x):
        th = coef_of(x)
        pred = np.maximum(A_all @ th[:p], 1e-300)
        J = np.hstack([A_all[:, idx] * th[idx] / pred[:, None], Z_all[:, zidx]])
        return np.vstack([J, np.diag(w_free)])

    from scipy.optimize import least_squares  # imported here: prediction never needs SciPy

    rng = np.random.default_rng(seed)
    start0 = np.clip(x_prior, lo + 1e-3, hi - 1e-3)
    starts = [start0] + [np.clip(start0 + np.r_[rng.normal(0, 1.0, k), np.zeros(len(zidx))], lo + 1e-3, hi - 1e-3)
                         for _ in range(max(n_starts - 1, 0))]
    best = None
    for x0 in starts:
        sol = least_squares(resid, x0, jac=jac, bounds=(lo, hi), loss=loss, f_scale=f_scale, method="trf",
                            x_scale=1.0, max_nfev=max_nfev)
        if best is None or sol.cost < best.cost - 1e-12:
            best = sol
    x = best.x
    coef = coef_of(x)
    r = resid(x)[:n_res]
    dof = max(n_res - len(x), 1)
    s2 = float(np.sum(r ** 2) / dof)
    J = jac(x)
    cov = np.zeros((p + q, p + q))
    pos = np.r_[idx, p + zidx]
    try:
        cov[np.ix_(pos, pos)] = s2 * np.linalg.pinv(J.T @ J)
    except np.linalg.LinAlgError:
        notes.append("covariance could not be computed")
    for j, v, l, h in zip(idx, x[:k], lo[:k], hi[:k]):
        if v <= LOG_BOUNDS[0] + 1e-6:
            notes.append(f"{names[j]}: at its lower bound (term negligible in this data)")
        elif v <= l + 1e-6:
            notes.append(f"{names[j]}: at its physical lower bound {np.exp(l):.3g}")
        elif h < LOG_BOUNDS[1] and v >= h - 1e-6:
            notes.append(f"{names[j]}: at its physical upper bound {np.exp(h):.3g}")
    return FitResult(coef, np.r_[free, zfree], cov, float(np.sqrt(s2)), n_res, float(best.cost), notes)


def log_prediction_std(A: np.ndarray, Z: np.ndarray, coef: np.ndarray, cov_log: np.ndarray,
                       residual_std: float) -> np.ndarray:
    """Std of log(prediction): coefficient uncertainty (delta method) plus residual scatter."""
    p = A.shape[1]
    theta = coef[:p]
    pred = np.maximum(A @ theta, 1e-300)
    g = np.hstack([A * theta / pred[:, None], Z])
    var = np.sum((g @ cov_log) * g, axis=1)
    rs = 0.0 if not np.isfinite(residual_std) else residual_std
    return np.sqrt(np.maximum(var, 0) + rs ** 2)
