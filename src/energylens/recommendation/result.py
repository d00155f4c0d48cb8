"""What `recommend()` returns: the ranked deployments and what the CLI, `--json`, the web and Python show of them.

One meaning of rank and top everywhere. `rank` is a deployment's place among distinct layouts: a
data-parallel copy of a smaller deployment (same GPU, tp, pp, ep and batch per replica: the same
per-request figures) is flagged `replica_of_smaller` and carries the rank of the layout it copies, so
ranks run 1, 2, 3, ... without gaps. `shown(top)` is the rows of rank 1..top that are not copies, then the
latency-optimal and TP-default rows when they are not among them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .request import RecommendOptions

def layout(tp, pp, ep, dp) -> str:
    """'tp4·dp2': the parallel degrees above 1 ('single' for one GPU without parallelism)."""
    parts = [f"{name}{int(v)}" for name, v in (("tp", tp), ("pp", pp), ("ep", ep), ("dp", dp)) if int(v) > 1]
    return "·".join(parts) or "single"


def deployment(row) -> str:
    """One deployment in words: 'B200 x4 tp4·dp2, batch 1024'."""
    return f"{row['gpu']} x{int(row['num_gpus'])} {layout(row['tp'], row['pp'], row['ep'], row['dp'])}, " \
           f"batch {int(row['batch_size'])}"



def best_in_domain(table: pd.DataFrame):
    """(best extrapolates, the best row inside the model's training domain or None) of a ranked table. Only rows
    checked for extrapolation (those with an interval: the best SHOWN_INTERVALS and the shown ones) count; a
    data-parallel copy of a smaller layout is not a row of its own."""
    if table.empty or "extrapolation" not in table:
        return False, None
    ranked = table.sort_values("rank", kind="mergesort")
    if not str(ranked["extrapolation"].iloc[0]).strip():
        return False, None
    inside = ranked[(ranked["extrapolation"].astype(str).str.strip() == "") & ranked["energy_request_lo_j"].notna()
                    & ~ranked["replica_of_smaller"]]
    return True, (inside.iloc[0] if len(inside) else None)


def best_in_domain_record(table: pd.DataFrame) -> dict | None:
    """best_in_domain as JSON: null when the best row is inside the training domain, else the best row that is
    (its rank, deployment and energy, and how much more energy per request than the best it takes; `rank` null
    when no checked row is inside)."""
    extrapolates, row = best_in_domain(table)
    if not extrapolates:
        return None
    if row is None:
        return {"rank": None}
    best = table.sort_values("rank", kind="mergesort").iloc[0]
    out = {k: row[k].item() if hasattr(row[k], "item") else row[k]
           for k in ("rank", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size", "energy_request_j")}
    out["gpu"] = str(out["gpu"])
    out["energy_more_pct"] = float(100 * (row["energy_request_j"] / best["energy_request_j"] - 1))
    return out


# What each column of a recommendation means (--json and the web carry these beside the rows).
RECOMMEND_COLUMN_NOTES = {
    "energy_request_j": "predicted GPU energy per request, all GPUs of the deployment, prefill included (J)",
    "energy_token_j": "energy_request_j per output token (J)",
    "prefill_energy_j": "the prefill phase of energy_request_j: every term's prefill part (J)",
    "decode_energy_j": "the decode phase of energy_request_j (J)",
    "prefill_phase_pct": "prefill_energy_j as a share of energy_request_j (%)",
    "gpu_seconds_per_request": "GPU-seconds the deployment spends per request, every GPU (idle replicas included): the "
                               "time the energy integrates",
    "power_per_gpu_w": "energy_request_j / gpu_seconds_per_request: mean power per GPU, between idle and TDP by "
                       "construction (W)",
    "energy_request_lo_j": "lower end of the 95% interval of energy_request_j (coefficient uncertainty and residual "
                           "scatter; the best 50 rows only)",
    "energy_request_hi_j": "upper end of that interval",
    "extrapolation": "why the prediction extrapolates beyond the model's training rows (GPU, precision, pipeline or "
                     "expert parallelism, lengths or batch outside the trained range); empty when inside",
    "<group>_pct": "share of energy_request_j by where it goes (%): compute, memory, TP and EP collectives, pipeline "
                   "bubbles, overhead (launch, host), idle GPUs of replicas without a request; static power over each "
                   "part of the time plus the dynamic energy of that work (docs/MODEL.md)",
    "ttft_ms": "time to first token of a request served under continuous batching with chunked prefill (ms)",
    "itl_ms": "mean inter-token latency (TPOT) of such a request: a decode step plus interleaved prompt chunks (ms)",
    "latency_s": "its end-to-end latency: TTFT + (output tokens - 1) x ITL (s)",
    "batch_prefill_ms": "prefill time of the whole batch's prompts arriving together, as profilers measure TTFT (ms)",
    "decode_step_ms": "time of one decode step of the running batch (ms)",
}

# The keys of Recommendation.counts (also res.attrs keys).
COUNTS = ("candidates", "feasible", "meeting_slo")


def distinct_ranks(table: pd.DataFrame) -> np.ndarray:
    """Rank among distinct layouts of every row of a ranked table; a copy gets the rank of the layout it
    copies (the first row of its GPU, tp, pp, ep and batch per replica, which is never a copy)."""
    copy = table["replica_of_smaller"].to_numpy(bool)
    ranks = np.cumsum(~copy)
    if not copy.any():
        return ranks
    key = pd.DataFrame({"gpu": table["gpu"].to_numpy(), "tp": table["tp"].to_numpy(), "pp": table["pp"].to_numpy(),
                        "ep": table["ep"].to_numpy(), "b": (table["batch_size"] / table["dp"]).to_numpy()})
    first = pd.Series(ranks).groupby([key[c] for c in key.columns], sort=False, observed=True).transform("first")
    return np.where(copy, first.to_numpy(), ranks)


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts (NaN and inf become null)."""
    return json.loads(df.replace([np.inf, -np.inf], np.nan).to_json(orient="records"))


@dataclass
class Recommendation:
    """The ranked deployments of one request (`table`: every deployment meeting the SLOs, best first, with the
    `rank`, `latency_optimal`, `tp_default` and `replica_of_smaller` columns; `table.attrs` holds the counts and
    assumptions as before) and the options that produced them.

    For code written against the DataFrame `recommend()` used to return, a Recommendation answers as its
    table does (`res["energy_request_j"]`, `res.iloc[0]`, `res.attrs`, `len(res)`)."""

    table: pd.DataFrame
    options: RecommendOptions
    load: Any = None  # with --rate or --trace: the ranking at each load and the load curve (load.LoadResult)

    # ------------------------------------------------------------ what the ranking says

    @property
    def best(self) -> pd.Series:
        return self.table.iloc[0]

    @property
    def latency_optimal(self) -> pd.Series:
        return self.table[self.table["latency_optimal"]].iloc[0]

    @property
    def tp_default(self) -> pd.Series | None:
        rows = self.table[self.table["tp_default"]]
        return rows.iloc[0] if len(rows) else None

    @property
    def counts(self) -> dict:
        """Candidates enumerated, feasible ones (memory, structure) and those meeting the SLOs; distinct
        layouts among the latter and their data-parallel copies."""
        copies = int(self.table["replica_of_smaller"].sum())
        return {**{k: int(self.table.attrs.get(k) or 0) for k in COUNTS}, "distinct": len(self.table) - copies,
                "copies": copies}

    @property
    def objective(self) -> str:
        return self.table.attrs.get("objective", "energy")

    @property
    def assumptions(self) -> dict:
        return self.table.attrs.get("assumptions") or {}

    @property
    def attrs(self) -> dict:
        return self.table.attrs

    def shown(self, top: int | None = None) -> pd.DataFrame:
        """The rows a table shows: rank 1..top (default: the request's top) among distinct layouts, then the
        latency-optimal and TP-default rows when they are not among them (in rank order)."""
        top = self.options.top if top is None else int(top)
        t = self.table
        listed = (~t["replica_of_smaller"]) & (t["rank"] <= top)
        flagged = t["latency_optimal"] | t["tp_default"]
        shown = t[listed | flagged]
        after = (~listed)[shown.index].to_numpy()  # the table is ranked: table order is rank order
        return shown.iloc[np.argsort(after, kind="stable")]

    def to_dict(self, top: int | None = None, columns: dict | None = None) -> dict:
        """The recommendation as JSON-ready data: the request, the counts, the assumptions, how uncertain the
        ranking is and the shown rows (`recommendations`, each with its 95% interval of energy per request and
        `extrapolation`: '' inside the model's training domain, else why); what `recommend --json` prints.

        `interval_rows`: the rows, best first, that have an interval and a training-domain check (below them the
        interval is null and `extrapolation` ''); `intervals_overlap`: how many of those after the best have an
        interval overlapping the best's (their order is uncertain)."""
        o, a = self.options, self.table.attrs
        slo = a.get("slo") or {}
        return {
            "model": str(self.table["model"].iloc[0]) if o.model is None else o.model,
            "gpus": a.get("gpus", list(o.gpus)), "max_gpus": o.max_gpus, "input_tokens": o.input_tokens,
            "output_tokens": o.output_tokens, "itl_slo_ms": slo.get("itl_ms"), "ttft_slo_ms": slo.get("ttft_ms"),
            "slo_source": slo.get("source"), "latency_definition": a.get("latency_definition"),
            **{k: a.get(k) for k in COUNTS}, "engine": a.get("engine"), "objective": a.get("objective"),
            "top": o.top if top is None else int(top), "assumptions": a.get("assumptions"),
            "interval_rows": int(self.table["energy_request_lo_j"].notna().sum())
            if "energy_request_lo_j" in self.table else 0,
            "intervals_overlap": None if a.get("intervals_overlap") is None else int(a["intervals_overlap"]),
            "columns": columns if columns is not None else RECOMMEND_COLUMN_NOTES,
            "best_extrapolates": best_in_domain(self.table)[0],
            "best_in_domain": best_in_domain_record(self.table),
            "recommendations": _records(self.shown(top)),
            **({"load": self.load.to_dict(o.top if top is None else int(top))} if self.load is not None else {}),
        }

    # ------------------------------------------------------------ the DataFrame it used to be

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, key):
        return self.table[key]

    def __contains__(self, column) -> bool:
        return column in self.table

    def __iter__(self):
        return iter(self.table)

    def __getattr__(self, name):
        if name.startswith("__") or name in ("table", "options", "load"):
            raise AttributeError(name)
        return getattr(self.table, name)

