"""Run every experiment on the real datasets and collect the results (the `evaluate` command)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..baselines import ENERGY_PREDICTORS, RULES
from ..errors import DataError
from . import experiments as ex

# Selection compares every energy predictor (black boxes tuned by CV inside the training rows), the
# rules of thumb with nothing fitted, a random pick and the latency proxies.
METHODS = ("energylens", "loglinear", "loglinear2", "xgb_tuned", "rf_tuned", "roofline") + RULES + \
    ("latency_measured", "latency_predicted")
MAX_FAILURE_SHARE = 0.05  # a method failing more of its fits than this fails the evaluation run
# Every dataset with energy, each taken alone as an engine never seen (issue: structure chosen on the user's rows).
NEW_ENGINE_DATASETS = ("mlenergy-v3", "mlenergy-v2", "splitwise", "llm-inference-bench", "gpu-prefill-decode")


@dataclass
class Plan:
    """How much to run: the full evaluation or a quick smoke version."""

    seeds: tuple
    kinds: tuple = ("deployment", "parallelism", "hardware")
    datasets: tuple = ("mlenergy-v3", "mlenergy-v2")
    curve_sizes: tuple = (10, 20, 50, 100, 200, 500)
    curve_seeds: tuple = ()
    hardware_seeds: tuple = ()
    n_train: int = 50
    extras: bool = True

    @classmethod
    def full(cls):
        return cls(seeds=tuple(range(20)), curve_seeds=tuple(range(20)), hardware_seeds=tuple(range(20)))

    @classmethod
    def quick(cls):
        return cls(seeds=(0, 1, 2), kinds=("deployment",), datasets=("mlenergy-v3", "mlenergy-v2"),
                   curve_sizes=(20, 50, 200), curve_seeds=(0, 1), hardware_seeds=(0, 1), extras=False)


def find_data(data) -> Path:
    root = Path(data or os.environ.get("ENERGYLENS_DATA") or "../shared/data")
    if not root.is_dir():
        raise DataError("data folder not found (pass --data or set ENERGYLENS_DATA)", path=root)
    return root


def load_datasets(root: Path) -> dict[str, pd.DataFrame]:
    from ..data.importers import import_dataset
    from ..data.schema import load_profiles

    out = {}
    for kind in ("mlenergy-v3", "mlenergy-v2", "splitwise", "llm-inference-bench"):
        if (root / kind).is_dir():
            out[kind] = import_dataset(kind, root / kind)
    if "mlenergy-v3" in out and "mlenergy-v2" in out:
        out["both"] = pd.concat([out["mlenergy-v3"], out["mlenergy-v2"]], ignore_index=True)
    split = root / "gpu-prefill-decode" / "h100.csv"
    if split.exists():
        out["gpu-prefill-decode"] = load_profiles(split)
    if not out:
        raise DataError("no mlenergy-v3, mlenergy-v2, splitwise, llm-inference-bench or gpu-prefill-decode data found",
                        path=root)
    return out


def check_prior_independence(datasets) -> None:
    """Refuse to evaluate on a dataset that an energy prior was fitted on (its provenance names it)."""
    from ..model.terms import COMPACT_TERMS, CORRECTIONS, PHYSICS_TERMS

    for t in (*PHYSICS_TERMS, *COMPACT_TERMS, *CORRECTIONS):
        for d in datasets:
            if d in t.provenance:
                raise DataError(f"the prior of {t.name} was fitted on {d} ({t.provenance}); it cannot be evaluated "
                                "on that dataset")


def run_evaluation(data=None, quick: bool = False, progress=None, plan: Plan | None = None, sets=None) -> dict:
    """All experiments; `progress(step, total, label)` is called as they advance. `sets`: datasets
    already loaded by `load_datasets` (read from `data` otherwise)."""
    plan = plan or (Plan.quick() if quick else Plan.full())
    sets = sets if sets is not None else load_datasets(find_data(data))
    check_prior_independence(sets)
    t0 = time.monotonic()
    ex.reset_failure_log()
    names = [d for d in plan.datasets if d in sets]
    steps = (len(names) * len(plan.kinds) + len([d for d in names if d != "both"]) * (len(plan.curve_sizes) + 2) + 4)
    done = [0]

    def tick(label):
        done[0] += 1
        if progress:
            progress(done[0], steps, label)

    res = {"plan": {"quick": quick, "seeds": len(plan.seeds), "n_train": plan.n_train, "kinds": list(plan.kinds),
                    "datasets": names, "curve_sizes": list(plan.curve_sizes), "curve_seeds": len(plan.curve_seeds),
                    "hardware_seeds": len(plan.hardware_seeds)},
           "data": {k: {"rows": int(len(v)), "models": int(v["model"].nunique()), "gpus": sorted(v["gpu"].unique())}
                    for k, v in sets.items()}}
    sel = []
    for d in names:
        for kind in plan.kinds:
            sel += ex.selection_experiment(sets[d], d, kind, METHODS, plan.n_train, plan.seeds)
            tick(f"selection {d} {kind}")
    res["selection"] = sel
    curve, batch, hw, fam, lat, planned, resid, rnd = [], [], [], [], [], [], [], []
    for d in [d for d in names if d != "both"]:
        df = sets[d]
        for n in plan.curve_sizes:
            curve += ex.selection_experiment(df, d, "deployment", ENERGY_PREDICTORS, n, plan.curve_seeds)
            tick(f"learning curve {d} n={n}")
        hw += ex.unseen_hardware(df, d, ENERGY_PREDICTORS, plan.hardware_seeds)
        tick(f"unseen hardware {d}")
        lat += ex.latency_vs_energy(df, d)
        rnd += ex.random_split_mape(df, d, ENERGY_PREDICTORS, plan.n_train, plan.seeds)
        if plan.extras:  # the slower experiments; a quick run skips them
            batch += ex.unseen_batch(df, d, ENERGY_PREDICTORS, plan.curve_seeds[:3] or (0,))
            fam += ex.leave_family_out(df, d, ENERGY_PREDICTORS)
            planned += ex.planned_vs_random(df, d, plan.n_train, plan.curve_seeds or (0,))
            resid += ex.residuals(df, d)
        tick(f"unseen batch, family, planner {d}")
    res.update(learning_curve=curve, unseen_batch=batch, unseen_hardware=hw, leave_family_out=fam,
               latency_vs_energy=lat, planned_vs_random=planned, residuals=resid, random_split=rnd)
    res["new_engine"] = []
    for d in NEW_ENGINE_DATASETS if plan.extras else ():
        if d in sets:
            res["new_engine"] += ex.new_engine_protocol(sets[d], d, plan.seeds, plan.n_train)
    tick("new-engine protocol")
    res["leave_dataset_out"] = (ex.leave_one_dataset_out(sets, NEW_ENGINE_DATASETS, plan.hardware_seeds[:5] or (0,))
                                if plan.extras else [])
    tick("leave one dataset out")
    if "gpu-prefill-decode" in sets and plan.extras:
        res["prefill_decode_lomo"] = ex.prefill_decode_lomo(sets["gpu-prefill-decode"])
        res["prefill_decode_unseen_gpu"] = ("not evaluated: the project has prefill/decode measurements on one GPU "
                                            "type only (H100); an H200 or other GPU sweep from the profiler is needed")
    tick("prefill/decode leave one model out")
    res["parity"] = _parity(sets, plan)
    tick("parity")
    res["failures"] = failure_summary()
    res["elapsed_s"] = time.monotonic() - t0
    return res


def failure_summary() -> dict:
    """Fits attempted and failed per method, the errors, and the methods over MAX_FAILURE_SHARE."""
    per = {m: {"attempts": n, "failed": sum(f["method"] == m for f in ex.FAILURES)} for m, n in ex.ATTEMPTS.items()}
    for v in per.values():
        v["share"] = v["failed"] / v["attempts"] if v["attempts"] else 0.0
    return {"max_share": MAX_FAILURE_SHARE, "per_method": per, "errors": list(ex.FAILURES[:200]),
            "over_limit": sorted(m for m, v in per.items() if v["share"] > MAX_FAILURE_SHARE)}


def _parity(sets, plan) -> list[dict]:
    """Held-out predictions of EnergyLens at n=50 (seed 0) for the parity plot."""
    out = []
    for d in ("mlenergy-v3", "mlenergy-v2"):
        if d not in sets:
            continue
        df = sets[d]
        rng = np.random.default_rng(0)
        idx = rng.permutation(len(df))
        train, test = df.iloc[idx[:plan.n_train]], df.iloc[idx[plan.n_train:]]
        preds = ex.fit_predict(["energylens", "xgb"], train, test, 0)
        y = ex.energy_target(test)
        for i in range(len(test)):
            out.append({"dataset": d, "measured": float(y[i]), "energylens": float(preds["energylens"][i]),
                        "xgb": float(preds["xgb"][i])})
    return out
