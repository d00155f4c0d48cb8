"""Tables as Markdown (no extra dependency) and HTML."""
from __future__ import annotations

import math

import pandas as pd

PERCENT = ("median_pred_over_measured_pct", "top1", "top1_2pct", "pairwise", "regret", "mape", "mdape", "differ_share", "mean_energy_penalty",
           "max_energy_penalty", "top1_sd", "energylens_mape_at_50", "mape_at_max_n", "random_top1", "regret_le_5pct",
           "margin", "margin_sd", "energylens_top1", "best_other_top1", "share")


def _is_percent(col: str) -> bool:
    return col in PERCENT or col.endswith("_mape") or "_mape_" in col or col.startswith("median_mape")


def _cell(col, v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (bool,)):
        return "yes" if v else "no"
    if isinstance(v, float):
        if _is_percent(col):
            return f"{100 * v:.1f}%"
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return "_no data_\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_cell(c, r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def html_table(df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return "<p><em>no data</em></p>"
    fmt = df.copy()
    for c in fmt.columns:
        fmt[c] = [_cell(c, v) for v in fmt[c]]
    return fmt.to_html(index=False, border=0, classes="t", escape=True)
