"""Matplotlib figures (imported lazily; Agg backend, no display needed)."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pareto_front(latency: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats in both latency and energy (sorted by latency)."""
    order = np.lexsort((energy, latency))
    front, best = [], np.inf
    for i in order:
        if energy[i] < best:
            front.append(i)
            best = energy[i]
    return np.array(front, dtype=int)


def pareto_plot(res: pd.DataFrame, path=None, title: str | None = None):
    """Energy per request against end-to-end latency, with the Pareto front highlighted."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    lat, en = res["latency_s"].to_numpy(), res["energy_request_j"].to_numpy()
    for g, sub in res.groupby("gpu"):
        ax.scatter(sub["latency_s"], sub["energy_request_j"], s=10, alpha=0.5, label=g)
    front = pareto_front(lat, en)
    ax.plot(lat[front], en[front], "-", color="0.3", lw=1.2, zorder=0, label="Pareto front")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("end-to-end latency per request (s)")
    ax.set_ylabel("energy per request (J)")
    ax.set_title(title or "Energy vs latency of feasible deployments")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


def _finish(fig, path):
    """PNG bytes of the figure, or the path it was written to (atomically) when a path is given."""
    from ..io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _plt().close(fig)
    if path is None:
        return buf.getvalue()
    atomic_write_bytes(path, buf.getvalue())
    return path
