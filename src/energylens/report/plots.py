"""Matplotlib figures (imported lazily; Agg backend, no display needed)."""
from __future__ import annotations

import io
import math
import textwrap

import numpy as np
import pandas as pd

from ..extras import require
from ..io import atomic_write_bytes


def _plt():
    require("drawing a figure", "plot")
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


# Deployments `pareto_plot` marks, as (flag column or "rank 1", label, marker): the recommendation and the two
# choices it is compared with.
PARETO_MARKS = (("recommended", "recommended (rank 1)", "*"), ("latency_optimal", "latency-optimal", "D"),
                ("tp_default", "TP default (all GPUs, one TP group)", "s"))


def _with_unit(x: float, units) -> str:
    """'10 ms' for 0.01 with units ((1e-3, 'ms'), (1, 's')): the largest unit not above x, number in %g."""
    scale, unit = units[0]
    for s, u in units:
        if x >= s * (1 - 1e-9):
            scale, unit = s, u
    return f"{x / scale:g} {unit}"


SECONDS = ((1e-6, "µs"), (1e-3, "ms"), (1.0, "s"))
JOULES = ((1e-3, "mJ"), (1.0, "J"), (1e3, "kJ"), (1e6, "MJ"))


def _log_axis(axis, values, units):
    """Log scale with ticks at 1-2-5 (short ranges) or decades, labelled '10 ms', '1 s' (never 10^-2)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    decades = np.log10(v.max() / v.min()) if len(v) else 0
    subs = (1.0, 2.0, 5.0) if decades < 1.5 else (1.0,) if decades < 6 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
    axis.set_major_formatter(FuncFormatter(lambda x, _: _with_unit(x, units)))
    axis.set_minor_formatter(NullFormatter())


def pareto_figure(res: pd.DataFrame, title: str | None = None):
    """The figure of `pareto_plot` (for tests and reports that place it themselves)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    lat, en = res["latency_s"].to_numpy(), res["energy_request_j"].to_numpy()
    for g, sub in res.groupby("gpu"):
        ax.scatter(sub["latency_s"], sub["energy_request_j"], s=10, alpha=0.45, label=g)
    front = pareto_front(lat, en)
    ax.plot(lat[front], en[front], "-", color="0.3", lw=1.2, zorder=0, label="Pareto front")
    ax.set_xscale("log")
    ax.set_yscale("log")
    best = res.index[np.argmin(res["rank"].to_numpy())] if "rank" in res else res.index[0]
    for flag, label, marker in PARETO_MARKS:
        rows = res.loc[[best]] if flag == "recommended" else res[res[flag]] if flag in res else res.iloc[:0]
        if len(rows):
            ax.scatter(rows["latency_s"], rows["energy_request_j"], s=140 if marker == "*" else 70, marker=marker,
                       facecolors="none" if marker != "*" else "gold", edgecolors="black", linewidths=1.3,
                       zorder=5, label=label)
    _log_axis(ax.xaxis, lat, SECONDS)
    _log_axis(ax.yaxis, en, JOULES)
    ax.set_xlabel("end-to-end latency per request (log scale)")
    ax.set_ylabel("energy per request (log scale)")
    _grid_legend_title(fig, ax, title or "Energy vs latency of feasible deployments", legend_fontsize=8)
    return fig


def _grid_legend_title(fig, ax, title: str, legend_fontsize: float) -> None:
    """The finish of every log-log figure here: major grid, the legend outside on the right, a title that fits."""
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=legend_fontsize, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fit_title(fig, ax, title)


def fit_title(fig, ax, title: str, fontsize: float = 10, smallest: float = 7) -> None:
    """Set the axes title so that it stays inside the figure (a long model ID must not lose its start):
    wrapped between words onto more lines first, then a smaller font; the layout is redone each time."""
    def clipped() -> bool:
        fig.tight_layout()
        fig.canvas.draw()
        box = ax.title.get_window_extent(fig.canvas.get_renderer())
        return box.x0 < fig.bbox.x0 or box.x1 > fig.bbox.x1

    # "model: what the figure shows" breaks after the colon first, then between words (never inside an ID)
    attempts = [title, *([title.replace(": ", ":\n", 1)] if ": " in title else []),
                *(textwrap.fill(title, width=math.ceil(len(title) / n), break_long_words=False,
                                break_on_hyphens=False) for n in (2, 3))]
    for attempt in attempts:
        ax.set_title(attempt, fontsize=fontsize)
        if not clipped():
            return
    while clipped() and fontsize > smallest:
        fontsize -= 0.5
        ax.title.set_fontsize(fontsize)


def pareto_plot(res: pd.DataFrame, path=None, title: str | None = None):
    """Energy per request against end-to-end latency, with the Pareto front and the recommended, latency-optimal
    and TP-default deployments marked; PNG bytes, or the path written."""
    return _finish(pareto_figure(res, title), path)


def _finish(fig, path):
    """PNG bytes of the figure, or the path it was written to (atomically) when a path is given."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _plt().close(fig)
    if path is None:
        return buf.getvalue()
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_curve_figure(load, title: str | None = None, lines: int = 6):
    """Energy per request against the request rate: the best layout at each rate (the thick line, marked with its
    replica count) and, thin, the layouts that are best somewhere, the saturation choice and the next best at the
    highest rate (at most `lines`), each at the fewest replicas meeting the SLOs at every rate."""
    plt = _plt()
    table, curve = load.table, load.curve
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    key = ["gpu", "tp", "pp", "ep", "dp", "gpus_per_replica", "max_num_seqs"]
    label = table[key].astype(str).agg("/".join, axis=1)
    served = curve[curve["deployment"] != ""]
    best_labels = served[key].astype(str).agg("/".join, axis=1) if len(served) else pd.Series(dtype=str)
    wanted = list(dict.fromkeys([*best_labels, *label[table["saturation_choice"].astype(bool)],
                                 *label[table["rate_rps"] == table["rate_rps"].max()].head(lines)]))[:lines]
    from ..recommendation.result import layout

    for lab in wanted:
        rows = table[label == lab].sort_values("rate_rps")
        r0 = rows.iloc[0]
        name = f"{r0['gpu']} x{int(r0['gpus_per_replica'])} {layout(r0['tp'], r0['pp'], r0['ep'], r0['dp'])}"
        if bool(r0["saturation_choice"]):
            name += " (saturation choice)"
        ax.plot(rows["rate_rps"], rows["energy_request_j"], "-o", lw=1, ms=3, alpha=0.8, label=name)
    if len(served):
        ax.plot(served["rate_rps"], served["energy_request_j"], "-", color="black", lw=2.5, alpha=0.35, zorder=0,
                label="best at each rate")
        for _, r in served.iterrows():
            ax.annotate(f"{int(r['replicas'])}x", (r["rate_rps"], r["energy_request_j"]), textcoords="offset points",
                        xytext=(3, 4), fontsize=7)
    rates = table["rate_rps"].to_numpy(float)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.yaxis, table["energy_request_j"].to_numpy(float), JOULES)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.xaxis.set_major_locator(FixedLocator(sorted(set(rates))))  # a tick at every rate simulated
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}/s"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(rates.min() / 1.3, rates.max() * 1.3)
    ax.set_xlabel("requests per second (log scale); labels: replicas of the best layout")
    ax.set_ylabel("energy per request at the load (log scale)")
    _grid_legend_title(fig, ax, title or "Energy per request against the load", legend_fontsize=7)
    return fig


def load_curve_plot(load, path=None, title: str | None = None):
    """`load_curve_figure` as PNG bytes, or the path written (atomically)."""
    return _finish(load_curve_figure(load, title), path)
