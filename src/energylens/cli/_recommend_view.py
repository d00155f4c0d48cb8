"""What `energylens recommend` shows of the ranked deployments: which rows, which columns, and the lines
around the table that define them. Plain functions over the Recommendation (no printing), so that the
table's rules are testable without a terminal.

Column priorities at narrow widths (`table_frame`'s drop order, first dropped first): J/tok, then the main term, then
the metrics the ranking does not optimize (J/req included when cost or carbon ranks), then TTFT. Always
kept: #, GPUs, layout, batch, the ranking metric, ITL and the note.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

# Result columns a ranking can use, with their table header (unit in it) and their words.
METRICS = {
    "energy_request_j": ("J/req", "predicted energy per request"),
    "cost_usd_per_million_tokens": ("$/Mtok", "predicted cost per million output tokens"),
    "carbon_gco2e_per_1000_requests": ("gCO2e\n/1k req", "predicted carbon per 1000 requests"),
}
# Long headers take two lines ("TTFT" over "ms"): the columns stay as narrow as their numbers.
OBJECTIVE_COLUMN = {"energy": "energy_request_j", "cost": "cost_usd_per_million_tokens",
                    "carbon": "carbon_gco2e_per_1000_requests"}
TOKEN_ENERGY = "J/tok"
MAIN_TERM = "main\nterm"
NOTE = "note"
# Until the recommender states its own definition (res.attrs["latency_definition"]): the README's.
FALLBACK_LATENCY_DEFINITION = "TTFT: predicted prefill time of one full batch; ITL: predicted time of one decode step"
FALLBACK_LATENCY_OPTIMAL = ("lowest predicted end-to-end latency per request (TTFT + output tokens x ITL) at the "
                            "best row's batch")


def inline(header: str) -> str:
    """A two-line header on one line: 'TTFT\\nms' -> 'TTFT ms', 'gCO2e\\n/1k req' -> 'gCO2e/1k req'."""
    return header.replace("\n/", "/").replace("\n", " ")


def objective_column(res: pd.DataFrame) -> str:
    """The result column the ranking follows: res.attrs['objective'] (energy, cost or carbon, or a column name)."""
    objective = str(res.attrs.get("objective") or "energy")
    column = OBJECTIVE_COLUMN.get(objective, objective)
    return column if column in res.columns else "energy_request_j"


def layout(tp, pp, ep, dp) -> str:
    """'tp4·dp2': the parallel degrees above 1 ('single' for one GPU without parallelism)."""
    parts = [f"{name}{int(v)}" for name, v in (("tp", tp), ("pp", pp), ("ep", ep), ("dp", dp)) if int(v) > 1]
    return "·".join(parts) or "single"


def deployment(row) -> str:
    """One deployment in words: 'B200 x4 tp4·dp2, batch 1024'."""
    return f"{row['gpu']} x{int(row['num_gpus'])} {layout(row['tp'], row['pp'], row['ep'], row['dp'])}, " \
           f"batch {int(row['batch_size'])}"


def time_unit(ms: pd.Series) -> tuple[str, float]:
    """('ms', 1) or ('s', 1e-3) for a column of milliseconds: seconds once the largest reaches 10 s."""
    top = ms.abs().max()
    return ("s", 1e-3) if pd.notna(top) and top >= 10_000 else ("ms", 1.0)


def shown_rows(rec, top: int | None = None) -> pd.DataFrame:
    """The rows of the table (Recommendation.shown: the `top` best distinct layouts, then the latency-optimal
    and TP-default rows when not among them), with a column 'table_rank' holding each row's '#': its rank,
    or '(k)' for a data-parallel copy of layout k."""
    shown = rec.shown(top).copy()
    ranks = shown["rank"].astype(int).astype(str)
    shown["table_rank"] = ranks.where(~shown["replica_of_smaller"], "(" + ranks + ")")
    return shown


# The note column's short labels (one line, even together), each explained in the footer by its long name.
NOTES = (("latency_optimal", "lat-opt", "latency-optimal"), ("tp_default", "TP-def", "TP default"))


def _note(row) -> str:
    return ", ".join(short for flag, short, _ in NOTES if row[flag])


def main_term(row, groups, labels) -> str:
    """'decode 71%': the term group with the largest share of the row's energy."""
    shares = {g: row[f"{g}_pct"] for g in groups if pd.notna(row[f"{g}_pct"])}
    if not shares:
        return ""
    g = max(shares, key=shares.get)
    return f"{labels[g]} {shares[g]:.0f}%"


def table_frame(shown: pd.DataFrame, res: pd.DataFrame, wide: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The table to print (headers carry units) and its columns in the order they are dropped when the
    terminal is narrow (empty for --wide: every column, the full term breakdown)."""
    from ..model.terms import GROUP_LABELS, GROUPS

    groups = [g for g in GROUPS if f"{g}_pct" in res and (res[f"{g}_pct"].fillna(0) != 0).any()]
    objective = objective_column(res)
    metrics = [c for c in METRICS if c in res.columns]
    ttft_unit, ttft_scale = time_unit(shown["ttft_ms"])
    itl_unit, itl_scale = time_unit(shown["itl_ms"])
    out = pd.DataFrame(index=shown.index)
    out["#"] = shown["table_rank"]
    if wide:
        out["GPU"] = shown["gpu"]
        for c, h in (("num_gpus", "n"), ("tp", "TP"), ("pp", "PP"), ("ep", "EP"), ("dp", "DP")):
            out[h] = shown[c].astype(int)
    else:
        out["GPUs"] = [f"{g} x{int(n)}" for g, n in zip(shown["gpu"], shown["num_gpus"])]
        out["layout"] = [layout(*r) for r in shown[["tp", "pp", "ep", "dp"]].itertuples(index=False)]
    out["batch"] = shown["batch_size"].astype(int)
    for c in [objective, *[m for m in metrics if m != objective]]:
        out[METRICS[c][0]] = shown[c].astype(float)
        if c == "energy_request_j":
            out[TOKEN_ENERGY] = shown["energy_token_j"].astype(float)
    out[f"TTFT\n{ttft_unit}"] = shown["ttft_ms"].astype(float) * ttft_scale
    out[f"ITL\n{itl_unit}"] = shown["itl_ms"].astype(float) * itl_scale
    if wide:
        for g in groups:
            out[f"{GROUP_LABELS[g]} %"] = shown[f"{g}_pct"].astype(float).round(1)
    else:
        out[MAIN_TERM] = [main_term(r, groups, GROUP_LABELS) for _, r in shown.iterrows()]
    out[NOTE] = [_note(r) for _, r in shown.iterrows()]
    if wide:
        return out.reset_index(drop=True), []
    others = [METRICS[m][0] for m in metrics if m != objective and m != "energy_request_j"]
    if objective != "energy_request_j":
        others.append(METRICS["energy_request_j"][0])
    drop = [TOKEN_ENERGY, MAIN_TERM, *others, f"TTFT\n{ttft_unit}"]
    return out.reset_index(drop=True), [c for c in drop if c in out.columns]


def _slo_text(res: pd.DataFrame, itl_slo_ms, ttft_slo_ms) -> str:
    slo = res.attrs.get("slo")
    if isinstance(slo, dict):
        known = {"ttft_ms": "TTFT <= {:g} ms", "itl_ms": "ITL <= {:g} ms"}
        parts = [known[k].format(v) if k in known else f"{k} {v}" for k, v in slo.items() if k != "source"
                 and v is not None and not (isinstance(v, float) and np.isnan(v))]
        source = f"; source: {slo['source']}" if slo.get("source") else ""
        return "SLOs: " + ("; ".join(parts) if parts else "none") + source
    if slo:
        return f"SLOs: {slo}"
    parts = [f"{name} <= {v:g} ms" for name, v in (("TTFT", ttft_slo_ms), ("ITL", itl_slo_ms)) if v is not None]
    return "SLOs: " + ("; ".join(parts) if parts else "none (every feasible deployment is ranked)")


def header_line(res: pd.DataFrame, model: str) -> str:
    metric = METRICS[objective_column(res)][1]
    return (f"Deployments of {model} on {', '.join(res.attrs.get('gpus') or sorted(set(res['gpu'])))}, ranked by "
            f"{metric} (coefficients of engine group '{res.attrs.get('engine', 'shared')}')")


def footer_lines(res: pd.DataFrame, shown: pd.DataFrame, top: int, output_tokens: float, dropped: list[str],
                 itl_slo_ms=None, ttft_slo_ms=None) -> list[str]:
    """The lines under the table: what the ranks, notes and latencies mean, the SLOs, the counts, the best
    deployment and its savings, and the columns left out at this width."""
    from ._console import dropped_note, fmt, plural

    lines = []
    copies = int(res["replica_of_smaller"].sum())
    n_distinct = int((~res["replica_of_smaller"]).sum())
    after = shown[~shown["table_rank"].str.startswith("(")]["table_rank"].astype(int)
    rank_note = "#: rank among distinct layouts"
    if copies:
        rank_note += (f"; {plural(copies, 'data-parallel copy', 'data-parallel copies')} of listed layouts (same "
                      f"per-request figures) {'is' if copies == 1 else 'are'} not ranked")
        if shown["table_rank"].str.startswith("(").any():
            rank_note += ("; (k): a data-parallel copy of layout k (same batch per replica; the batch column counts "
                          "all replicas)")
    if len(after) and after.max() > min(top, n_distinct):
        rank_note += f"; ranks {min(top, n_distinct) + 1} and up are shown only for the noted rows (--top)"
    lines.append(rank_note + ".")
    short = {flag: label for flag, label, _ in NOTES}
    lines.append(f"Latency: {res.attrs.get('latency_definition') or FALLBACK_LATENCY_DEFINITION}. "
                 f"Notes: {short['latency_optimal']}, latency-optimal: "
                 f"{res.attrs.get('latency_optimal_metric') or FALLBACK_LATENCY_OPTIMAL}; "
                 f"{short['tp_default']}, TP default: all GPUs of the largest count in one "
                 f"tensor-parallel group. {_slo_text(res, itl_slo_ms, ttft_slo_ms)}.")
    best = res.sort_values("rank", kind="mergesort").iloc[0]
    saving = [savings_text(res, best, row, name) for name, row in _references(res, best)]
    lines.append(f"best: {deployment(best)}: {fmt(best['energy_request_j'])} J/request, "
                 f"{fmt(best['energy_token_j'])} J/token"
                 + "".join(f", {fmt(best[c])} {inline(m[0])}" for c, m in METRICS.items()
                           if c != "energy_request_j" and c in res.columns)
                 + (f"; {'; '.join(saving)}" if saving else "") + ".")
    lines.append(f"{res.attrs.get('candidates')} candidates, {res.attrs.get('feasible')} feasible, "
                 f"{res.attrs.get('meeting_slo')} meeting the SLOs, {output_tokens:g} output tokens per request.")
    statements = (res.attrs.get("assumptions") or {}).get("statements") or []
    if statements and res.attrs.get("objective", "energy") != "energy":
        lines.append("Assumptions: " + "; ".join(statements) + ".")
    elif statements and any(c in res.columns for c in METRICS if c != "energy_request_j"):
        lines.append("Cost and carbon columns assume the shipped GPU-hour prices, electricity price, PUE and grid "
                     "intensity (--objective cost or carbon lists them with their sources; --json carries them).")
    if dropped:
        lines.append(dropped_note(map(inline, dropped), "--wide, --json or a wider terminal show them"))
    return lines


def _references(res: pd.DataFrame, best):
    """(name, row) of the latency-optimal and TP-default rows other than the best one."""
    out = []
    for flag, name in (("latency_optimal", "latency-optimal choice"), ("tp_default", "TP default")):
        rows = res[res[flag]]
        if len(rows) and rows.index[0] != best.name:
            out.append((name, rows.iloc[0]))
    return out


# How a difference in each ranking metric reads: (lower, higher).
CHANGE_WORDS = {"energy_request_j": ("less energy", "more energy"),
                "cost_usd_per_million_tokens": ("lower cost", "higher cost"),
                "carbon_gco2e_per_1000_requests": ("less carbon", "more carbon")}


def _change(best, row, column: str) -> str:
    """'4.5% less energy': the best row against `row` in one metric."""
    pct = 100 * (1 - best[column] / row[column])
    lower, higher = CHANGE_WORDS.get(column, (f"lower {column}", f"higher {column}"))
    return f"{abs(pct):.1f}% {lower if pct >= 0 else higher}"


def savings_text(res: pd.DataFrame, best, row, name: str) -> str:
    """The best row against a reference row, in the ranking metric first, energy beside it when the
    ranking is by cost or carbon: '12.0% lower cost than the TP default (H100-SXM x4 tp4, batch 256;
    4.5% less energy)'."""
    objective = objective_column(res)
    energy = "" if objective == "energy_request_j" else f"; {_change(best, row, 'energy_request_j')}"
    return f"{_change(best, row, objective)} than the {name} ({deployment(row)}{energy})"
