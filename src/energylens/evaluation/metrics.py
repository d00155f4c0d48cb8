"""Accuracy and selection metrics."""
from __future__ import annotations

import numpy as np


def mape(pred, true) -> float:
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    ok = np.isfinite(pred) & np.isfinite(true) & (true > 0)
    return float(np.mean(np.abs(pred[ok] / true[ok] - 1))) if ok.any() else float("nan")


def mdape(pred, true) -> float:
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    ok = np.isfinite(pred) & np.isfinite(true) & (true > 0)
    return float(np.median(np.abs(pred[ok] / true[ok] - 1))) if ok.any() else float("nan")


def selection_metrics(true_energy, score) -> dict:
    """Metrics of choosing argmin(score) among candidates whose true energies are `true_energy`.

    top1: the chosen candidate is the energy-optimal one; top1_2pct: its energy is within 2% of the
    optimum; regret: its energy over the optimum, minus one; pairwise: share of candidate pairs
    ordered the same way by the score as by the true energy.
    """
    e = np.asarray(true_energy, float)
    s = np.asarray(score, float)
    best = e.min()
    chosen = int(np.argmin(s))
    i, j = np.triu_indices(len(e), k=1)
    de, ds = np.sign(e[i] - e[j]), np.sign(s[i] - s[j])
    keep = de != 0
    return {
        "top1": float(e[chosen] <= best * (1 + 1e-9)),
        "top1_2pct": float(e[chosen] <= best * 1.02),
        "regret": float(e[chosen] / best - 1),
        "pairwise": float(np.mean(de[keep] == ds[keep])) if keep.any() else float("nan"),
    }
