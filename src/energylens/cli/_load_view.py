"""What `energylens recommend --rate / --trace` shows: the ranking at one load, or the load curve over several,
and the lines that say what the load was, what the SLOs hold and whether the saturation choice changes.
Plain functions over the Recommendation's `load` (no printing), testable without a terminal."""
from __future__ import annotations

import math

import pandas as pd

from ._console import fmt
from ._recommend_view import layout

# The ranking column of each objective at a load, and the table header it gets.
METRIC_HEADERS = {"energy_request_j": "J/req", "cost_usd_per_million_tokens": "$/Mtok",
                  "carbon_gco2e_per_1000_requests": "gCO2e\n/1k req"}
DAILY = (("kwh_per_day", "kWh\n/day"), ("usd_per_day", "$/day"), ("kgco2e_per_day", "kgCO2e\n/day"))


def _column(load) -> str:
    from ..recommendation.objectives import OBJECTIVES

    return OBJECTIVES[load.notes.get("objective", "energy")][0]


def _common(out: pd.DataFrame, rows: pd.DataFrame, column: str, q: int) -> None:
    out[METRIC_HEADERS[column]] = rows[column].astype(float)
    if column != "energy_request_j":
        out["J/req"] = rows["energy_request_j"].astype(float)
    for c, h in DAILY:
        out[h] = rows[c].astype(float)
    out["util\n%"] = (100 * rows["utilization"].astype(float)).round(1)
    out["idle\n%"] = rows["idle_energy_pct"].astype(float).round(1)
    out[f"TTFT\np{q} ms"] = rows["ttft_ms"].astype(float)
    out[f"TPOT\np{q} ms"] = rows["tpot_ms"].astype(float)


def ranking_frame(load, rate: float | None = None, top: int = 10) -> tuple[pd.DataFrame, list[str]]:
    """The ranking at one load (the `top` best layouts) and the columns a narrow terminal drops first."""
    rows = load.at(rate)
    rows = rows[rows["rank"] <= top]
    column, q = _column(load), load.notes.get("slo_percentile", 99)
    out = pd.DataFrame(index=rows.index)
    out["#"] = rows["rank"].astype(int)
    out["GPUs"] = [f"{g} x{int(n)}" for g, n in zip(rows["gpu"], rows["gpus_per_replica"])]
    out["layout"] = [layout(*r) for r in rows[["tp", "pp", "ep", "dp"]].itertuples(index=False)]
    out["seqs"] = rows["max_num_seqs"].astype(int)
    out["repl"] = rows["replicas"].astype(int)
    _common(out, rows, column, q)
    out["sat\n#"] = [("" if math.isnan(r) else str(int(r))) for r in rows["saturation_rank"]]
    drop = ["sat\n#", "kgCO2e\n/day", f"TTFT\np{q} ms", f"TPOT\np{q} ms", "$/day", "seqs", "idle\n%", "J/req"]
    return out.reset_index(drop=True), [c for c in drop if c in out.columns]


def curve_frame(load) -> tuple[pd.DataFrame, list[str]]:
    """One row per rate: the best layout there, its figures, and the saturation choice's figure beside it."""
    c = load.curve
    column, q = _column(load), load.notes.get("slo_percentile", 99)
    served = c[c["deployment"] != ""]
    out = pd.DataFrame(index=served.index)
    out["req/s"] = served["rate_rps"].astype(float)
    out["best at this load"] = served["deployment"]
    out["repl"] = served["replicas"].astype(int)
    _common(out, served, column, q)
    sat = f"saturation_choice_{column}"
    out[f"sat. choice\n{METRIC_HEADERS[column].replace(chr(10), ' ')}"] = (
        served[sat].astype(float) if sat in served else float("nan"))
    out["changes"] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else ("yes" if v else "no")
                      for v in served["choice_changes"]]
    drop = ["kgCO2e\n/day", f"TTFT\np{q} ms", f"TPOT\np{q} ms", "idle\n%", "$/day", "J/req"]
    return out.reset_index(drop=True), [c for c in drop if c in out.columns]


def header_line(rec, model: str) -> str:
    load = rec.load
    n = len(load.traffics)
    slo = _slo(load)
    if n == 1:
        t = load.traffics[0]
        return (f"{model} at {fmt(t.rate_rps)} requests/s ({t.label}): fewest replicas meeting {slo}, ranked by "
                f"{_objective_words(load)} at this load")
    return f"{model}: the best deployment at each load ({n} rates), fewest replicas meeting {slo}"


def _slo(load) -> str:
    q = load.notes.get("slo_percentile", 99)
    parts = [f"p{q} TTFT <= {fmt(load.notes['ttft_slo_ms'])} ms" if load.notes.get("ttft_slo_ms") is not None else "",
             f"p{q} TPOT <= {fmt(load.notes['tpot_slo_ms'])} ms" if load.notes.get("tpot_slo_ms") is not None else ""]
    parts = [p for p in parts if p]
    return " and ".join(parts) if parts else "no latency SLO"


def _objective_words(load) -> str:
    from ..recommendation.objectives import OBJECTIVES

    return {"energy": "energy per request", "cost": "cost per million output tokens",
            "carbon": "carbon per 1000 requests"}.get(load.notes.get("objective"), OBJECTIVES["energy"][1])


def comparison_line(load, rate: float | None = None) -> str:
    """Whether the load changes the choice the saturation ranking made, with the figures."""
    c = load.curve
    rows = c if rate is None else c[c["rate_rps"] == rate]
    choice = load.notes.get("saturation_choice") or "the saturation ranking's choice"
    column = _column(load)
    header = METRIC_HEADERS[column].replace("\n", "")
    if len(rows) > 1:  # a curve: which rates change the choice, in one sentence
        changes = rows[rows["choice_changes"].eq(True)]
        same = rows[rows["choice_changes"].eq(False)]
        cannot = rows[rows["deployment"].ne("") & ~rows["choice_changes"].isin([True, False])]
        rates = lambda df: ", ".join(fmt(r) for r in df["rate_rps"])  # noqa: E731
        parts = []
        if len(changes):
            most = changes["saving_vs_saturation_choice_pct"].max()
            parts.append(f"the choice changes at {rates(changes)} requests/s (up to {fmt(most)}% less {header})")
        if len(same):
            parts.append(f"the saturation choice stays the best at {rates(same)} requests/s")
        if len(cannot):
            parts.append(f"it cannot meet the SLOs at {rates(cannot)} requests/s")
        return f"Against saturation ({choice}): " + "; ".join(parts) + "."
    parts = []
    for _, r in rows.iterrows():
        at = f"at {fmt(r['rate_rps'])} requests/s"
        if r.get("deployment", "") == "":
            parts.append(f"{at} no layout serves the load")
        elif r.get("choice_changes") is None or (isinstance(r.get("choice_changes"), float)
                                                  and math.isnan(r["choice_changes"])):
            parts.append(f"{at} the saturation choice ({choice}) cannot meet the SLOs; best: {r['deployment']}")
        elif r["choice_changes"]:
            parts.append(f"{at} the choice changes: {r['deployment']} ({_replicas(r['replicas'])}) uses "
                         f"{fmt(r[column])} {header}, {fmt(r['saving_vs_saturation_choice_pct'])}% less than the "
                         f"saturation choice ({choice}: {_replicas(r['saturation_choice_replicas'])}, "
                         f"{fmt(r[f'saturation_choice_{column}'])} {header})")
        else:
            parts.append(f"{at} the saturation choice ({choice}) stays the best, with {_replicas(r['replicas'])}")
    return "Against saturation: " + "; ".join(parts) + "."


def footer_lines(rec, dropped: list[str]) -> list[str]:
    from ._console import dropped_note

    load = rec.load
    lines = []
    if dropped:
        lines.append(dropped_note(dropped))
    lines.append(comparison_line(load))
    if len(load.traffics) > 1:
        lines.append("Loads: " + "; ".join(dict.fromkeys(_generic(t.label) for t in load.traffics)) + ".")
    per = load.notes["per_rate"]
    counts = []
    uniform = len(per) > 1 and all((p["served"], p["layouts"], p["pruned"], bool(p["not_served"])) ==
                                   (per[0]["served"], per[0]["layouts"], 0, False) for p in per)
    if uniform:
        per = []
        first = load.notes["per_rate"][0]
        counts.append(f"{first['served']} of {first['layouts']} layouts serve every rate")
    for p in per:
        words = f"at {fmt(p['rate_rps'])} requests/s, {p['served']} of {p['layouts']} layouts serve the load"
        if p["pruned"]:  # skipped, not failed: they might serve it, but could not enter the table
            words += (f", {p['pruned']} were not simulated (a lower bound on their energy per request already exceeds "
                      f"the rows shown, so they could not rank among them)")
        if p["not_served"]:
            top_reason, n = max(p["not_served"].items(), key=lambda kv: kv[1])
            words += f"; {sum(p['not_served'].values())} cannot (e.g. {top_reason})"
        counts.append(words)
    said = "; ".join(counts)
    lines.append(said[:1].upper() + said[1:] + ".")
    lines.append("Energy at the load: every simulated engine step at the model's power for what it carries, every "
                 "waiting GPU at idle power; kWh/day = rate x 86,400 x J/req / 3.6e6; $/day rents or owns every GPU "
                 "all day; util = busy share of the replicas' time; idle % = share of energy drawn waiting.")
    return lines


def _generic(label: str) -> str:
    """A load's description without its rate ('Poisson 2/s, ...' -> 'Poisson arrivals at each rate, ...')."""
    import re

    return re.sub(r"^Poisson [0-9.e+-]+/s", "Poisson arrivals at each rate", label)


def _replicas(n) -> str:
    return f"{int(n)} replica{'s' if int(n) != 1 else ''}"
