"""Figures of the evaluation report (PNG bytes)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..evaluation.summary import METHOD_ORDER
from .plots import _finish, _plt, pareto_front


def parity_plot(parity: list[dict]):
    plt = _plt()
    df = pd.DataFrame(parity)
    if df.empty:
        return None
    sets = list(df["dataset"].unique())
    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 4.4), squeeze=False)
    for ax, d in zip(axes[0], sets):
        g = df[df["dataset"] == d]
        for col, mk in (("xgb", "x"), ("energylens", "o")):
            ax.scatter(g["measured"], g[col], s=9, alpha=0.55, marker=mk, label=col)
        lo, hi = g[["measured", "energylens", "xgb"]].min().min(), g[["measured", "energylens", "xgb"]].max().max()
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("measured energy per request (J)")
        ax.set_ylabel("predicted (J)")
        ax.set_title(f"{d}: held out, 50 training rows", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, None)


def learning_plot(curve: pd.DataFrame):
    plt = _plt()
    if curve.empty:
        return None
    sets = list(curve["dataset"].unique())
    fig, axes = plt.subplots(2, len(sets), figsize=(5.2 * len(sets), 7.2), squeeze=False)
    for j, d in enumerate(sets):
        g = curve[curve["dataset"] == d]
        for m, gm in g.groupby("method"):
            gm = gm.sort_values("n_train")
            style = "o-" if m == "energylens" else ".--"
            axes[0][j].plot(gm["n_train"], 100 * gm["mape"], style, label=m)
            axes[1][j].plot(gm["n_train"], 100 * gm["top1"], style, label=m)
        for i, lab in enumerate(("energy MAPE (%)", "Top-1, deployment choice (%)")):
            axes[i][j].set_xscale("log")
            axes[i][j].set_xlabel("training measurements")
            axes[i][j].set_ylabel(lab)
            axes[i][j].set_title(d)
        axes[0][j].legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, None)


def regret_plot(selection: list[dict], kind: str = "deployment"):
    """Per-scenario regret of every method (deployment scenarios, every seed): a symmetric-log axis keeps
    the scenarios with zero regret (the right choice) on the plot."""
    plt = _plt()
    df = pd.DataFrame(selection)
    if df.empty:
        return None
    df = df[df["kind"] == kind] if (df["kind"] == kind).any() else df
    methods = [m for m in METHOD_ORDER if m in set(df["method"])]
    data = [100 * np.concatenate([np.asarray(r, float) for r in df[df["method"] == m]["regrets"]] or [np.zeros(0)])
            for m in methods]
    fig, ax = plt.subplots(figsize=(max(7.5, 0.75 * len(methods) + 2), 4.6))
    ax.boxplot(data, showfliers=True, flierprops={"markersize": 3})
    ax.set_xticks(range(1, len(methods) + 1))
    ax.set_xticklabels(methods, rotation=35, ha="right", fontsize=8)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("regret per scenario (% above optimal)")
    ax.set_title(f"Regret per {kind} scenario, n = 50")
    fig.tight_layout()
    return _finish(fig, None)


def measured_pareto_plot(df: pd.DataFrame, max_groups: int = 4):
    """Measured energy per token against ITL for the (model, task) groups with the most configurations."""
    plt = _plt()
    if df is None or df.empty:
        return None
    e_tok = df["energy_token_j"] if "energy_token_j" in df else df["energy_request_j"] / df["output_tokens"]
    d = df.assign(e_tok=e_tok)
    groups = d.groupby(["model", "task"]).size().sort_values(ascending=False).head(max_groups).index
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.8), squeeze=False)
    for ax, (m, t) in zip(axes[0], groups):
        g = d[(d["model"] == m) & (d["task"] == t)]
        for gpu, gg in g.groupby("gpu"):
            ax.scatter(1e3 * gg["itl_s"], gg["e_tok"], s=14, alpha=0.7, label=gpu)
        lat, en = g["itl_s"].to_numpy(), g["e_tok"].to_numpy()
        front = pareto_front(lat, en)
        ax.plot(1e3 * lat[front], en[front], "-", color="0.3", lw=1, zorder=0, label="Pareto front")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ITL (ms)")
        ax.set_ylabel("energy per token (J)")
        ax.set_title(f"{m.split('/')[-1][:24]} / {t}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, None)
