"""Robust nonlinear least squares on relative (log) error, with bounds, priors and uncertainty.

Coefficients are fitted as theta = exp(phi): every term stays non-negative (no negative energy).
A weak log-normal prior (PRIOR_WEIGHT) keeps directions the data cannot see at their prior value;
coefficients whose terms contribute nothing to any row are fixed at the prior and reported so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PRIOR_WEIGHT = 0.05  # default pull toward the prior, in log units per unit residual
MIN_SHARE = 0.01  # a term must reach 1% of some row's prediction to be identifiable
LOG_BOUNDS = (-14.0, 9.0)


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


def fit_log_linear(blocks: list[tuple[np.ndarray, np.ndarray]], prior: np.ndarray, names, *,
                   fixed: set[str] | frozenset = frozenset(), prior_weight=None, lower=None, upper=None, n_starts: int = 4, seed: int = 0,
                   loss: str = "soft_l1", f_scale: float = 0.1) -> FitResult:
    """Fit theta >= 0 minimizing sum over blocks of rho(log(A @ theta) - log(y)).

    blocks: (A, y) pairs, A of shape (n_i, p); rows with y <= 0 or NaN are skipped.
    """
    prior = np.asarray(prior, dtype=float)
    p = len(prior)
    blocks = [(A[np.isfinite(y) & (y > 0)], y[np.isfinite(y) & (y > 0)]) for A, y in blocks]
    blocks = [(A, y) for A, y in blocks if len(y)]
    n_res = sum(len(y) for _, y in blocks)
    notes = []
    share = _shares([A for A, _ in blocks], prior) if blocks else np.zeros(p)
    free = np.array([(share[j] >= MIN_SHARE) and (names[j] not in fixed) for j in range(p)])
    for j in range(p):
        if not free[j]:
            why = "held fixed" if names[j] in fixed else "no row where this term matters"
            notes.append(f"{names[j]}: kept at prior {prior[j]:.4g} ({why})")
    if n_res == 0 or not free.any():
        return FitResult(prior.copy(), free, np.zeros((p, p)), float("nan"), n_res, 0.0, notes)
    log_prior = np.log(prior)
    idx = np.flatnonzero(free)
    w = np.full(p, PRIOR_WEIGHT) if prior_weight is None else np.asarray(prior_weight, dtype=float)
    w_free = w[idx]
    A_all = np.vstack([A for A, _ in blocks])
    logy = np.concatenate([np.log(y) for _, y in blocks])
    lo_all = np.full(p, LOG_BOUNDS[0])
    if lower is not None:
        lb = np.asarray(lower, dtype=float)
        lo_all = np.where(lb > 0, np.log(np.maximum(lb, 1e-300)), lo_all)
    hi_all = np.full(p, LOG_BOUNDS[1])
    if upper is not None:
        ub = np.asarray(upper, dtype=float)
        hi_all = np.where(np.isfinite(ub), np.log(np.maximum(ub, 1e-300)), hi_all)
    lo, hi = lo_all[idx], hi_all[idx]

    def theta_of(phi):
        th = prior.copy()
        th[idx] = np.exp(phi)
        return th

    def resid(phi):
        th = theta_of(phi)
        pred = np.maximum(A_all @ th, 1e-300)
        return np.concatenate([np.log(pred) - logy, w_free * (phi - log_prior[idx])])

    def jac(phi):
        th = theta_of(phi)
        pred = np.maximum(A_all @ th, 1e-300)
        J = A_all[:, idx] * th[idx] / pred[:, None]
        return np.vstack([J, np.diag(w_free)])

    from scipy.optimize import least_squares  # imported here: prediction never needs SciPy

    rng = np.random.default_rng(seed)
    starts = [np.clip(log_prior[idx], lo + 1e-3, hi - 1e-3)]
    starts += [np.clip(log_prior[idx] + rng.normal(0, 1.0, len(idx)), lo + 1e-3, hi - 1e-3) for _ in range(max(n_starts - 1, 0))]
    best = None
    for x0 in starts:
        sol = least_squares(resid, x0, jac=jac, bounds=(lo, hi), loss=loss, f_scale=f_scale, method="trf",
                            x_scale=1.0, max_nfev=200)
        if best is None or sol.cost < best.cost - 1e-12:
            best = sol
    phi = best.x
    theta = theta_of(phi)
    r = resid(phi)[:n_res]
    dof = max(n_res - len(idx), 1)
    s2 = float(np.sum(r ** 2) / dof)
    J = jac(phi)
    cov = np.zeros((p, p))
    try:
        cov_free = s2 * np.linalg.pinv(J.T @ J)
        cov[np.ix_(idx, idx)] = cov_free
    except np.linalg.LinAlgError:
        notes.append("covariance could not be computed")
    for j, x, l, h in zip(idx, phi, np.broadcast_to(lo, phi.shape), np.broadcast_to(hi, phi.shape)):
        if x <= LOG_BOUNDS[0] + 1e-6:
            notes.append(f"{names[j]}: at its lower bound (term negligible in this data)")
        elif x <= l + 1e-6:
            notes.append(f"{names[j]}: at its physical lower bound {np.exp(l):.3g}")
        elif h < LOG_BOUNDS[1] and x >= h - 1e-6:
            notes.append(f"{names[j]}: at its physical upper bound {np.exp(h):.3g}")
    return FitResult(theta, free, cov, float(np.sqrt(s2)), n_res, float(best.cost), notes)


def log_prediction_std(A: np.ndarray, theta: np.ndarray, cov_log: np.ndarray, residual_std: float) -> np.ndarray:
    """Std of log(prediction): coefficient uncertainty (delta method) plus residual scatter."""
    pred = np.maximum(A @ theta, 1e-300)
    g = A * theta / pred[:, None]
    var = np.sum((g @ cov_log) * g, axis=1)
    rs = 0.0 if not np.isfinite(residual_std) else residual_std
    return np.sqrt(np.maximum(var, 0) + rs ** 2)
