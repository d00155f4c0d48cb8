"""Aggregate experiment records into the report's tables (plain DataFrames)."""
from __future__ import annotations

import pandas as pd

BLACK_BOXES = ("rf", "xgb", "ensemble")
METHOD_ORDER = ("energylens", "loglinear", "rf", "xgb", "ensemble", "roofline", "latency_measured", "latency_predicted")


def _order(df, col="method"):
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    return df.sort_values(col, key=lambda s: s.map(lambda m: rank.get(m, 99)), kind="mergesort")


def selection_table(records) -> pd.DataFrame:
    df = pd.DataFrame(records)
    if df.empty:
        return df
    g = df.groupby(["dataset", "kind", "method"])
    out = g.agg(top1=("top1", "mean"), top1_sd=("top1", "std"), top1_2pct=("top1_2pct", "mean"),
                pairwise=("pairwise", "mean"), regret=("regret", "mean"), mape=("mape", "mean"),
                mdape=("mdape", "mean"), scenarios=("scenarios", "mean"), seeds=("seed", "nunique"),
                n_train=("n_train", "mean")).reset_index()
    return _order(out).sort_values(["dataset", "kind"], kind="mergesort").reset_index(drop=True)


def headline(records) -> pd.DataFrame:
    """Top-1 and MAPE per method averaged over every dataset x scenario kind (n = 50)."""
    t = selection_table(records)
    if t.empty:
        return t
    out = t.groupby("method").agg(top1=("top1", "mean"), top1_2pct=("top1_2pct", "mean"), regret=("regret", "mean"),
                                  mape=("mape", "mean"), cells=("top1", "size")).reset_index()
    return _order(out).reset_index(drop=True)


def learning_table(records) -> pd.DataFrame:
    df = pd.DataFrame(records)
    if df.empty:
        return df
    out = df.groupby(["dataset", "method", "n_train"]).agg(mape=("mape", "mean"), top1=("top1", "mean"),
                                                            seeds=("seed", "nunique")).reset_index()
    return _order(out).sort_values(["dataset", "n_train"], kind="mergesort").reset_index(drop=True)


def samples_to_match(curve: pd.DataFrame, reference: str = "energylens", at: int = 50) -> pd.DataFrame:
    """Smallest n at which each method's MAPE is no worse than the reference's at n = `at`."""
    rows = []
    if curve.empty:
        return pd.DataFrame()
    for d, g in curve.groupby("dataset"):
        ref = g[(g["method"] == reference) & (g["n_train"] == at)]
        if ref.empty:
            continue
        target = float(ref["mape"].iloc[0])
        for m, gm in g.groupby("method"):
            ok = gm[gm["mape"] <= target].sort_values("n_train")
            rows.append({"dataset": d, "method": m, "energylens_mape_at_50": target,
                         "n_to_match": int(ok["n_train"].iloc[0]) if len(ok) else None,
                         "mape_at_max_n": float(gm.sort_values("n_train")["mape"].iloc[-1]),
                         "max_n": int(gm["n_train"].max())})
    return _order(pd.DataFrame(rows)).sort_values("dataset", kind="mergesort").reset_index(drop=True) if rows else pd.DataFrame()


def simple_mean(records, keys, values=("mape",)) -> pd.DataFrame:
    df = pd.DataFrame(records)
    if df.empty:
        return df
    agg = {v: (v, "mean") for v in values if v in df}
    if "seed" in df:
        agg["seeds"] = ("seed", "nunique")
    for extra in ("test_rows", "scenarios"):
        if extra in df and extra not in keys:
            agg[extra] = (extra, "mean")
    out = df.groupby(list(keys)).agg(**agg).reset_index()
    return _order(out) if "method" in out else out


def targets(res: dict) -> pd.DataFrame:
    """The issue's targets, checked against this run (reported whether met or not)."""
    rows = []
    head = headline(res.get("selection", []))
    if not head.empty:
        el = head[head["method"] == "energylens"]
        others = head[~head["method"].isin(["energylens"])]
        top1 = float(el["top1"].iloc[0]) if len(el) else float("nan")
        best_other = others.loc[others["top1"].idxmax()] if len(others) else None
        rows.append({"target": "Top-1 >= 92% (paper: 88.2%), n = 50, mean over datasets x scenario kinds",
                     "measured": f"{100 * top1:.1f}%", "met": bool(top1 >= 0.92)})
        if best_other is not None:
            rows.append({"target": "Top-1 above every baseline",
                         "measured": f"EnergyLens {100 * top1:.1f}% vs best baseline {best_other['method']} {100 * best_other['top1']:.1f}%",
                         "met": bool(top1 > best_other["top1"])})
    curve = learning_table(res.get("learning_curve", []))
    if not curve.empty:
        for d, g in curve.groupby("dataset"):
            el = g[(g["method"] == "energylens") & (g["n_train"] == 50)]
            bb = g[g["method"].isin(BLACK_BOXES)]
            if el.empty or bb.empty:
                continue
            top_n = bb["n_train"].max()
            best_bb = bb[bb["n_train"] == top_n].sort_values("mape").iloc[0]
            rows.append({"target": f"{d}: EnergyLens MAPE at n=50 <= best black box at n={top_n}",
                         "measured": f"{100 * el['mape'].iloc[0]:.1f}% vs {best_bb['method']} {100 * best_bb['mape']:.1f}%",
                         "met": bool(el["mape"].iloc[0] <= best_bb["mape"])})
    hw = pd.DataFrame(res.get("unseen_hardware", []))
    if not hw.empty:
        e5 = hw[(hw["method"] == "energylens") & (hw["calibration"] == 5)]
        if len(e5):
            m = e5.groupby(["dataset", "source_gpu", "target_gpu"])["mape"].mean()
            rows.append({"target": "unseen-hardware MAPE <= 15% with 5 calibration samples (worst direction)",
                         "measured": ", ".join(f"{s}->{t}: {100 * v:.1f}%" for (d, s, t), v in m.items()),
                         "met": bool((m <= 0.15).all())})
    return pd.DataFrame(rows)
