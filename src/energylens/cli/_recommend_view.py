"""What `energylens recommend` shows of the ranked deployments: which rows, which columns, and the lines
around the table that define them. Plain functions over the Recommendation (no printing), so that the
table's rules are testable without a terminal.

Column priorities at narrow widths (`table_frame`'s drop order, first dropped first): the main term, the cost and
carbon columns the ranking does not follow, TTFT, ITL, then J/tok and J/req (unless the ranking follows it): the
energy figures are the last to go. Always kept: #, GPUs, layout, batch, the ranking metric and the note.

Lines under the table (`footer_lines`): by default at most FOOTER_LINES printed lines at the terminal's width
(the best deployment first; how uncertain the ranking is; what a narrow terminal left out; the note labels;
the counts; the prices), with `--verbose` every definition and source (`--json` always carries them).

Uncertainty: a row whose prediction leaves the model's training domain (its `extrapolation` names why) is
marked `extrap` in the note column, the reasons printed with --verbose; the footer gives the best row's 95%
interval of energy per request and how many of the next rows' intervals overlap it (res.attrs
['intervals_overlap']): where they overlap, the ranking between them is not settled by the model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..model.terms import GROUP_LABELS, GROUPS
from ..recommendation.result import best_in_domain, deployment, layout  # noqa: F401 - the wording, one place (re-exported)
from ._console import FOOTER_LINES, dropped_note, fmt, plural, printed_lines

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


# The note column's short labels (one a line), each explained in the footer by its long name.
NOTES = (("latency_optimal", "lat-opt", "latency-optimal"), ("tp_default", "TP-def", "TP default"))


# A row whose prediction extrapolates (res['extrapolation'] non-empty): its short flag and what it means.
EXTRAP = "extrap"
EXTRAP_MEANING = "outside the model's training data"


def extrapolates(row) -> bool:
    """Whether a row's prediction leaves the model's training domain (its `extrapolation` names why)."""
    why = row.get("extrapolation") if hasattr(row, "get") else None
    return isinstance(why, str) and bool(why.strip())


def _note(row) -> str:
    """The row's note labels, one per line: a label never widens the column beyond the longest one."""
    return "\n".join([short for flag, short, _ in NOTES if row[flag]] + ([EXTRAP] if extrapolates(row) else []))


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
        if "energy_request_lo_j" in shown:  # the 95% interval of J/req (the best rows only: empty below them)
            out["J/req\nlo95"] = shown["energy_request_lo_j"].astype(float)
            out["J/req\nhi95"] = shown["energy_request_hi_j"].astype(float)
        for g in groups:
            out[f"{GROUP_LABELS[g]} %"] = shown[f"{g}_pct"].astype(float).round(1)
    else:
        out[MAIN_TERM] = [main_term(r, groups, GROUP_LABELS) for _, r in shown.iterrows()]
    out[NOTE] = [_note(r) for _, r in shown.iterrows()]
    if wide:
        return out.reset_index(drop=True), []
    others = [METRICS[m][0] for m in reversed(metrics) if m not in (objective, "energy_request_j")]
    energy = [TOKEN_ENERGY] + ([METRICS["energy_request_j"][0]] if objective != "energy_request_j" else [])
    drop = [MAIN_TERM, *others, f"TTFT\n{ttft_unit}", f"ITL\n{itl_unit}", *energy]
    return out.reset_index(drop=True), [c for c in drop if c in out.columns]


def _slo_text(res: pd.DataFrame, itl_slo_ms, ttft_slo_ms, sourced: bool = True) -> str:
    slo = res.attrs.get("slo")
    if isinstance(slo, dict):
        known = {"ttft_ms": "TTFT <= {:g} ms", "itl_ms": "ITL <= {:g} ms"}
        parts = [known[k].format(v) if k in known else f"{k} {v}" for k, v in slo.items() if k != "source"
                 and v is not None and not (isinstance(v, float) and np.isnan(v))]
        source = f"; source: {slo['source']}" if slo.get("source") and sourced else ""
        return "SLOs: " + ("; ".join(parts) if parts else "none") + source
    if slo:
        return f"SLOs: {slo}"
    parts = [f"{name} <= {v:g} ms" for name, v in (("TTFT", ttft_slo_ms), ("ITL", itl_slo_ms)) if v is not None]
    return "SLOs: " + ("; ".join(parts) if parts else "none (every feasible deployment is ranked)")


def header_line(res: pd.DataFrame, model: str, input_tokens: float | None = None,
                output_tokens: float | None = None) -> str:
    metric = METRICS[objective_column(res)][1]
    workload = (f" for {input_tokens:g} prompt and {output_tokens:g} output tokens per request"
                if input_tokens is not None and output_tokens is not None else "")
    return (f"Deployments of {model} on {', '.join(res.attrs.get('gpus') or sorted(set(res['gpu'])))}{workload}, "
            f"ranked by {metric} (coefficients of engine group '{res.attrs.get('engine', 'shared')}')")


VERBOSE_HINT = "--verbose: definitions and sources"


def rank_note(res: pd.DataFrame, shown: pd.DataFrame, top: int) -> str:
    """What '#' and '(k)' mean, and why ranks may jump."""
    copies = int(res["replica_of_smaller"].sum())
    n_distinct = int((~res["replica_of_smaller"]).sum())
    after = shown[~shown["table_rank"].str.startswith("(")]["table_rank"].astype(int)
    note = "#: rank among distinct layouts"
    if copies:
        note += (f"; {plural(copies, 'data-parallel copy', 'data-parallel copies')} of listed layouts (same "
                 f"per-request figures) {'is' if copies == 1 else 'are'} not ranked")
        if shown["table_rank"].str.startswith("(").any():
            note += ("; (k): a data-parallel copy of layout k (same batch per replica; the batch column counts "
                     "all replicas)")
    if len(after) and after.max() > min(top, n_distinct):
        note += f"; ranks {min(top, n_distinct) + 1} and up are shown only for the noted rows (--top)"
    return note + "."


def definitions(res: pd.DataFrame, itl_slo_ms=None, ttft_slo_ms=None) -> str:
    """What TTFT, ITL and the notes mean, and the SLOs in force with their source."""
    short = {flag: label for flag, label, _ in NOTES}
    return (f"Latency: {res.attrs.get('latency_definition') or FALLBACK_LATENCY_DEFINITION}. "
            f"Notes: {short['latency_optimal']}, latency-optimal: "
            f"{res.attrs.get('latency_optimal_metric') or FALLBACK_LATENCY_OPTIMAL}; "
            f"{short['tp_default']}, TP default: all GPUs of the largest count in one "
            f"tensor-parallel group; {EXTRAP}: the prediction is {EXTRAP_MEANING} (why: below). "
            f"{_slo_text(res, itl_slo_ms, ttft_slo_ms)}.")


def best_line(res: pd.DataFrame, verbose: bool = False) -> str:
    """The best deployment, its figures (a figure it lacks is left out, never left blank) and what it saves
    against the latency-optimal and TP-default rows (named by their note label; in full when `verbose`)."""
    best = res.sort_values("rank", kind="mergesort").iloc[0]
    figures = [f"{fmt(best['energy_request_j'])} J/request", f"{fmt(best['energy_token_j'])} J/token"]
    figures += [f"{fmt(best[c])} {inline(m[0])}" for c, m in METRICS.items()
                if c != "energy_request_j" and c in res.columns and pd.notna(best[c])
                and (verbose or c == objective_column(res) or c == "cost_usd_per_million_tokens")]
    saving = [savings_text(res, best, row, name if verbose else label, verbose, repeat=verbose or i == 0)
              for i, (name, label, row) in enumerate(_references(res, best))]
    joint = "; " if verbose else ", "
    return (f"best: {deployment(best)}: {', '.join(figures)}" + (f"; {joint.join(saving)}" if saving else "") + ".")


def domain_line(res: pd.DataFrame) -> str:
    """Under the header, when the best row extrapolates: '#1 extrapolates (outside the model's training data);
    the best inside it: #3 B200 x2 tp2, batch 256, 1.2% more energy per request.' Else ''."""
    extrapolates, row = best_in_domain(res)
    if not extrapolates:
        return ""
    if row is None:
        return f"#1 extrapolates ({EXTRAP_MEANING}), as do all the rows checked."
    more = 100 * (row["energy_request_j"] / res.sort_values("rank", kind="mergesort").iloc[0]["energy_request_j"] - 1)
    return (f"#1 extrapolates ({EXTRAP_MEANING}); the best inside it: #{int(row['rank'])} {deployment(row)}, "
            f"{more:.1f}% more energy per request.")


def counts_line(res: pd.DataFrame, itl_slo_ms=None, ttft_slo_ms=None) -> str:
    slos = _slo_text(res, itl_slo_ms, ttft_slo_ms, sourced=False)[len("SLOs: "):].replace("; ", ", ")
    meet = f"meet {slos}" if not slos.startswith("none") else "are ranked (no SLOs)"
    return (f"Of {res.attrs.get('candidates')} candidates, {res.attrs.get('feasible')} fit in memory and "
            f"{res.attrs.get('meeting_slo')} {meet}.")


def legend_line(shown: pd.DataFrame) -> str:
    """The note labels and '(k)' of the shown rows, in a few words."""
    parts = []
    if shown["latency_optimal"].any():
        parts.append("lat-opt: lowest latency at that batch")
    if shown["tp_default"].any():
        parts.append("TP-def: all GPUs, one TP group")
    if shown["table_rank"].str.startswith("(").any():
        parts.append("(k): DP copy of layout k")
    return "; ".join(parts) + "." if parts else ""


def interval_rows(res: pd.DataFrame) -> int:
    """How many rows, best first, carry a 95% interval and a training-domain check (search.SHOWN_INTERVALS)."""
    return int(res["energy_request_lo_j"].notna().sum()) if "energy_request_lo_j" in res else 0


def overlap_text(res: pd.DataFrame) -> str:
    """'overlapping 3 of the next 49: their order is uncertain' (res.attrs['intervals_overlap'] of the rows
    after the best that have an interval); '' when no other row has one."""
    others = interval_rows(res) - 1
    if others <= 0 or res.attrs.get("intervals_overlap") is None:
        return ""
    k = int(res.attrs["intervals_overlap"])
    if k == 0:
        return f"overlapping none of the next {others}"
    which = f"all the next {others}" if k == others else f"{k} of the next {others}"
    # the intervals are of energy: ranked by cost (GPU time x price), what they leave uncertain is the energy order
    order = "energy order" if objective_column(res) == "cost_usd_per_million_tokens" else "order"
    return f"overlapping {which}: their {order} is uncertain"


def uncertainty_line(res: pd.DataFrame, shown: pd.DataFrame) -> str:
    """The best row's 95% interval of energy per request, how many of the next rows' intervals overlap it,
    and what the note `extrap` means when a shown row has it: '95% interval of the best: 11.67-52.02 J/req,
    overlapping all the next 49: their order is uncertain; extrap: outside the model's training data.'"""
    from ._console import fmt

    parts = []
    if interval_rows(res):
        best = res.iloc[0]
        overlap = overlap_text(res)
        parts.append(f"95% interval of the best: {fmt(best['energy_request_lo_j'])}-{fmt(best['energy_request_hi_j'])} "
                     f"J/req" + (f", {overlap}" if overlap else ""))
    if any(extrapolates(r) for _, r in shown.iterrows()):
        parts.append(f"{EXTRAP}: {EXTRAP_MEANING}")
    return "; ".join(parts) + "." if parts else ""


def extrapolation_lines(res: pd.DataFrame, shown: pd.DataFrame) -> list[str]:
    """For --verbose: what the interval is, then each reason a shown row extrapolates with the rows it holds for
    ('extrap #3, #4: pp 2 outside the trained 1-1; ...'), and the shown rows that were not checked."""
    from ._console import fmt

    lines = []
    n = interval_rows(res)
    if n:
        best, overlap = res.iloc[0], overlap_text(res)
        lines.append(f"95% intervals of energy per request (the coefficients' uncertainty and the training rows' "
                     f"residual scatter) and the training-domain check cover the best {n} rows; the best's: "
                     f"{fmt(best['energy_request_lo_j'])}-{fmt(best['energy_request_hi_j'])} J/req"
                     + (f", {overlap}." if overlap else "."))
    reasons: dict[str, list[str]] = {}
    for _, r in shown.iterrows():
        if extrapolates(r):
            reasons.setdefault(r["extrapolation"].strip(), []).append(f"#{r['table_rank']}")
    lines += [f"{EXTRAP} {', '.join(rows)}: {why}." for why, rows in reasons.items()]
    if "energy_request_lo_j" in shown:
        unchecked = shown.loc[shown["energy_request_lo_j"].isna(), "table_rank"]
        if len(unchecked):
            lines.append(f"Not checked for extrapolation and without an interval (below the best {n} rows): "
                         f"{', '.join('#' + r for r in unchecked)}.")
    return lines


def price_notes(res: pd.DataFrame, shown: pd.DataFrame) -> list[str]:
    """A footnote for each shown GPU without a price: why its cost columns are empty and how to fill them."""
    if "cost_usd_per_million_tokens" not in res.columns:
        return []
    no_price = (res.attrs.get("assumptions") or {}).get("no_price") or {}
    empty = shown.loc[shown["cost_usd_per_million_tokens"].isna(), "gpu"].astype(str).unique()
    header = inline(METRICS["cost_usd_per_million_tokens"][0])
    return [f"{header} empty for {g}: {no_price.get(g, f'no GPU-hour price for {g}; give --gpu-hour-usd {g}=USD')}."
            for g in empty]


def footer_lines(res: pd.DataFrame, shown: pd.DataFrame, top: int, output_tokens: float, dropped: list[str],
                 itl_slo_ms=None, ttft_slo_ms=None, verbose: bool = False, width: int | None = None) -> list[str]:
    """The lines under the table. By default the essentials, at most FOOTER_LINES lines once wrapped at `width`
    (None: no limit), kept in this order: the best deployment, its 95% interval with the overlap of the next
    rows' and what `extrap` means, why a row has no price, what this width left out, the note labels (what the
    table's marks mean), the counts and SLOs, the prices (before the labels when ranked by cost or carbon);
    the last line points to --verbose. `verbose`:
    every definition, assumption and source (what `--json` carries as `footnotes`)."""
    assumptions = res.attrs.get("assumptions") or {}
    statements = assumptions.get("statements") or []
    has_cost = any(c in res.columns for c in METRICS if c != "energy_request_j")
    if verbose:
        lines = [rank_note(res, shown, top), definitions(res, itl_slo_ms, ttft_slo_ms), best_line(res, True),
                 *extrapolation_lines(res, shown),
                 counts_line(res, itl_slo_ms, ttft_slo_ms)[:-1] + f", {output_tokens:g} output tokens per request."]
        if statements and has_cost:
            lines += ["Assumptions:", *(f"- {s}." for s in statements)]
        lines += price_notes(res, shown)
        if res.attrs.get("structure"):
            lines.append(f"Model structure: {res.attrs['structure']}")
        if dropped:
            lines.append(dropped_note(map(inline, dropped), "--wide, --json or a wider terminal show them"))
        return lines
    # (priority, line) in the order printed; the highest numbers go first when the lines do not fit
    by_price = objective_column(res) != "energy_request_j"  # ranked by cost or carbon: their basis comes first
    candidates = [(0, best_line(res)), (1, uncertainty_line(res, shown)),
                  (5 if by_price else 4, counts_line(res, itl_slo_ms, ttft_slo_ms)),
                  (4 if by_price else 3, legend_line(shown)),
                  (3 if by_price else 5, assumptions.get("summary", "") if has_cost else ""),
                  *[(1, note) for note in price_notes(res, shown)],
                  (2, dropped_note(map(inline, dropped), "--wide or a wider terminal shows them") if dropped else "")]
    candidates = [(p, line) for p, line in candidates if line]

    def finished(kept):  # the kept lines, the last one pointing to --verbose
        lines = [line for p, line in candidates if p in kept]
        return lines[:-1] + [f"{lines[-1].rstrip('.')}; {VERBOSE_HINT}."]

    kept = {p for p, _ in candidates}
    for p in sorted(kept, reverse=True):
        if width is None or p <= 2 or sum(printed_lines(line, width) for line in finished(kept)) <= FOOTER_LINES:
            break
        kept.discard(p)
    return finished(kept)


def _references(res: pd.DataFrame, best):
    """(name, note label, row) of the latency-optimal and TP-default rows other than the best one."""
    out = []
    for flag, name in (("latency_optimal", "latency-optimal choice"), ("tp_default", "TP default")):
        rows = res[res[flag]]
        if len(rows) and rows.index[0] != best.name:
            label = next(short for f, short, _ in NOTES if f == flag)
            out.append((name, label, rows.iloc[0]))
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


def savings_text(res: pd.DataFrame, best, row, name: str, verbose: bool = True, repeat: bool = True) -> str:
    """The best row against a reference row, in the ranking metric first, energy beside it when the
    ranking is by cost or carbon: '12.0% lower cost than the TP default (H100-SXM x4 tp4, batch 256;
    4.5% less energy)'; without `verbose`, '... than TP-def' (the row is in the table with that note), and
    without `repeat` the metric's noun left out ('12.5% less than TP-def', after a first saving)."""
    objective = objective_column(res)
    change = _change(best, row, objective)
    if not repeat:
        change = change.replace(" energy", "").replace(" cost", "").replace(" carbon", "")
    energy = "" if objective == "energy_request_j" else f"; {_change(best, row, 'energy_request_j')}"
    if not verbose:
        return f"{change} than {name}" + (f" ({energy[2:]})" if energy else "")
    return f"{change} than the {name} ({deployment(row)}{energy})"
