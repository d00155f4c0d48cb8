"""Selection scenarios (docs/EVALUATION.md): which candidates compete, and under which constraint.

- "deployment" (the headline): one model and workload (task); every measured deployment (GPU type,
  count, TP/PP/EP/DP layout, batch) competes, among those whose measured ITL meets an SLO set at the
  25th, 50th and 75th percentile of the group's ITLs.
- "parallelism": fixed model, task, GPU type and batch size; candidates differ in GPU count and
  TP/PP/EP/DP layout (often two candidates: reported, never the headline).
- "hardware": fixed model, task and batch size; candidates differ in GPU type and count (and layout).

A scenario needs at least two candidates with distinct configurations. The chosen candidate is the
one with the lowest predicted energy per output token (lowest score for rules, lowest latency for
latency proxies), and it is judged by the measured energy per output token.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

KINDS = ("deployment", "parallelism", "hardware")
SLO_QUANTILES = (0.25, 0.5, 0.75)
_CONFIG = ["gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size"]


@dataclass(frozen=True)
class Scenario:
    kind: str
    key: tuple
    rows: np.ndarray  # positional indices of candidates in the table
    slo_s: float | None = None
    candidates: int = 0  # distinct configurations among the rows


def _task(df):
    return df["task"].fillna("") if "task" in df else pd.Series([""] * len(df), index=df.index)


def define_scenarios(df: pd.DataFrame, kind: str) -> list[Scenario]:
    if kind not in KINDS:
        raise ValueError(f"unknown scenario kind {kind!r}; expected one of {KINDS}")
    d = df.reset_index(drop=True).assign(_task=_task(df).to_numpy(), _pos=np.arange(len(df)))
    keys = {"parallelism": ["model", "_task", "gpu", "batch_size"], "hardware": ["model", "_task", "batch_size"],
            "deployment": ["model", "_task"]}[kind]
    out = []
    for key, g in d.groupby(keys, sort=True):
        if kind == "hardware" and g[["gpu", "num_gpus"]].drop_duplicates().shape[0] < 2:
            continue
        n_configs = g[_CONFIG].drop_duplicates().shape[0]
        if n_configs < 2:
            continue
        if kind != "deployment":
            out.append(Scenario(kind, tuple(key), g["_pos"].to_numpy(), None, n_configs))
            continue
        itl = g["itl_s"].to_numpy(float)
        if not np.isfinite(itl).all():
            continue
        for q in SLO_QUANTILES:
            slo = float(np.quantile(itl, q))
            sel = g[itl <= slo]
            n_sel = sel[_CONFIG].drop_duplicates().shape[0]
            if n_sel >= 2:
                out.append(Scenario(kind, tuple(key) + (f"p{int(q * 100)}",), sel["_pos"].to_numpy(), slo, n_sel))
    return out


def split_scenarios(scenarios: list[Scenario], n_rows: int, rng: np.random.Generator, test_share: float = 0.3,
                    workload=None):
    """Pick test scenarios (about `test_share` of the groups); return them and the training-pool mask.

    SLO levels of one (model, task) group are split together; no candidate of a test scenario may be
    used for training. With `workload` (the (model, task) of every row), no row of a test scenario's
    model and task is used for training either, candidate or not.
    """
    groups = sorted({_group(s) for s in scenarios})
    order = rng.permutation(len(groups))
    n_test = max(1, int(round(test_share * len(groups))))
    chosen = {groups[i] for i in order[:n_test]}
    test = [s for s in scenarios if _group(s) in chosen]
    pool = np.ones(n_rows, bool)
    for s in test:
        pool[s.rows] = False
    if workload is not None:
        held = {s.key[:2] for s in test}
        pool &= ~np.array([w in held for w in workload], dtype=bool)
    return test, pool


def workloads(df: pd.DataFrame) -> list[tuple]:
    """(model, task) of every row, as scenario keys begin."""
    return list(zip(df["model"].to_numpy(), _task(df).to_numpy()))


def _group(s: Scenario) -> tuple:
    return s.key[:-1] if s.kind == "deployment" else s.key
