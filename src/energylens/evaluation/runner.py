"""Run every experiment on the real datasets and collect the results (the `evaluate` command)."""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..baselines import ENERGY_PREDICTORS, RULES
from ..data.importers import import_dataset
from ..data.schema import load_profiles
from ..errors import DataError
from ..model import terms
from ..profile.cluster import connect
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
    predictors: tuple = ENERGY_PREDICTORS  # the methods of the experiments that score energy errors

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
    """Refuse to evaluate on a dataset that a prior was fitted on (its provenance says 'fitted on' it)."""
    for t in (*terms.PHYSICS_COEFFICIENTS, *terms.COMPACT_COEFFICIENTS, *terms.CORRECTIONS):  # read at the call
        for d in datasets:
            if f"fitted on {d}" in t.provenance:
                raise DataError(f"the prior of {t.name} was fitted on {d} ({t.provenance}); it cannot be evaluated "
                                "on that dataset")


def priors_seen_with(dataset: str) -> list[str]:
    """Coefficients whose prior was set with `dataset` in view (not fitted on it): results on it are not
    independent of them, and the report says so."""
    return sorted({c.name for c in (*terms.PHYSICS_COEFFICIENTS, *terms.COMPACT_COEFFICIENTS)
                   if dataset in c.seen_with})


@dataclass(frozen=True)
class Job:
    """One experiment call (often one seed of it) whose records go to `res[stage]`."""

    stage: str
    label: str
    fn: Callable
    args: tuple
    kwargs: dict = field(default_factory=dict)


def evaluation_jobs(plan: Plan, sets: dict, names: list[str]) -> list[Job]:
    """Every experiment call of the evaluation, in the order a serial run makes them.

    Calls whose seeds (GPU pairs, held-out datasets) are independent are split into one job per seed
    (pair, dataset): the same records in the same order, once concatenated; the others are one job each."""
    jobs: list[Job] = []

    def per_seed(stage, label, fn, args, seeds, **kwargs):
        jobs.extend(Job(stage, label, fn, (*args, (seed,)), kwargs) for seed in seeds)

    for d in names:
        for kind in plan.kinds:
            per_seed("selection", f"selection {d} {kind}", ex.selection_experiment,
                     (sets[d], d, kind, METHODS, plan.n_train), plan.seeds)
    for d in [d for d in names if d != "both"]:
        df = sets[d]
        for n in plan.curve_sizes:
            per_seed("learning_curve", f"learning curve {d} n={n}", ex.selection_experiment,
                     (df, d, "deployment", plan.predictors, n), plan.curve_seeds)
        jobs.extend(Job("unseen_hardware", f"unseen hardware {d} {src} -> {dst}", ex.unseen_hardware,
                        (df, d, plan.predictors, plan.hardware_seeds), {"pairs": [(src, dst)]})
                    for src, dst in ex.gpu_pairs(df))
        jobs.append(Job("latency_vs_energy", f"latency vs energy {d}", ex.latency_vs_energy, (df, d)))
        per_seed("random_split", f"random split {d}", ex.random_split_mape, (df, d, plan.predictors, plan.n_train),
                 plan.seeds)
        if plan.extras:  # the slower experiments; a quick run skips them
            per_seed("unseen_batch", f"unseen batch {d}", ex.unseen_batch, (df, d, plan.predictors),
                     plan.curve_seeds[:3] or (0,))
            jobs.append(Job("leave_family_out", f"leave family out {d}", ex.leave_family_out, (df, d, plan.predictors)))
            jobs.append(Job("planned_vs_random", f"planner {d}", ex.planned_vs_random,
                            (df, d, plan.n_train, plan.curve_seeds or (0,))))
            jobs.append(Job("residuals", f"residuals {d}", ex.residuals, (df, d)))
    for d in NEW_ENGINE_DATASETS if plan.extras else ():
        if d in sets:
            per_seed("new_engine", f"new-engine protocol {d}", ex.new_engine_protocol, (sets[d], d), plan.seeds,
                     n_train=plan.n_train, in_sample=False)
            jobs.append(Job("new_engine", f"new-engine protocol {d}", ex.new_engine_protocol, (sets[d], d, ()),
                            {"n_train": plan.n_train}))
    if plan.extras:
        jobs.extend(Job("leave_dataset_out", f"leave {held} out", ex.leave_one_dataset_out,
                        (sets, NEW_ENGINE_DATASETS, plan.hardware_seeds[:5] or (0,)), {"held_out": (held,)})
                    for held in NEW_ENGINE_DATASETS if held in sets)
        if "gpu-prefill-decode" in sets:
            jobs.append(Job("prefill_decode_lomo", "prefill/decode leave one model out", ex.prefill_decode_lomo,
                            (sets["gpu-prefill-decode"],)))
    jobs.append(Job("parity", "parity", _parity, (sets, plan)))
    return jobs


def run_job(job: Job, quiet: bool = False) -> tuple[list, dict, list]:
    """Run one job with its own failure log: (records, fits attempted per method, failed fits).

    The log of the calling process is left as it was, so the same function serves a serial run and a
    worker process; `quiet` silences warnings (a worker has no CLI to do it)."""
    saved = dict(ex.ATTEMPTS), list(ex.FAILURES)
    ex.reset_failure_log()
    try:
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore")
            records = job.fn(*job.args, **job.kwargs)
        return records, dict(ex.ATTEMPTS), list(ex.FAILURES)
    finally:
        ex.reset_failure_log()
        ex.ATTEMPTS.update(saved[0])
        ex.FAILURES.extend(saved[1])


def run_jobs(jobs: list[Job], n_jobs: int = 1, cluster: str | None = None):
    """Each job's result, in the order of `jobs`, as soon as it and those before it are done: here
    (n_jobs 1), over n_jobs local processes (joblib) or over Ray (cluster: an address, or "" for a
    local Ray)."""
    if cluster is not None:
        yield from _run_on_ray(jobs, cluster or None)
    elif n_jobs == 1:
        for job in jobs:
            yield run_job(job)
    else:
        from joblib import Parallel, delayed

        yield from Parallel(n_jobs=n_jobs, return_as="generator")(delayed(run_job)(job, quiet=True) for job in jobs)


def _run_on_ray(jobs, address):
    ray = connect(address)
    task = ray.remote(num_cpus=1)(run_job)
    refs = [task.remote(job, quiet=True) for job in jobs]
    done = 0
    try:
        for ref in refs:
            yield ray.get(ref)
            done += 1
    finally:  # stopped early (an error, Ctrl-C): the rest is not needed
        for ref in refs[done:]:
            ray.cancel(ref, force=True)


def run_evaluation(data=None, quick: bool = False, progress=None, plan: Plan | None = None, sets=None,
                   jobs: int = 1, cluster: str | None = None) -> dict:
    """All experiments; `progress(step, total, label)` is called as they advance. `sets`: datasets
    already loaded by `load_datasets` (read from `data` otherwise). `jobs` > 1 runs the experiments'
    seeds over that many local processes, `cluster` over Ray (an address, or "" for a local Ray); the
    results are those of a serial run."""
    if jobs < 1:
        raise DataError(f"--jobs expects a whole number >= 1, got {jobs}")
    plan = plan or (Plan.quick() if quick else Plan.full())
    sets = sets if sets is not None else load_datasets(find_data(data))
    check_prior_independence(sets)
    t0 = time.monotonic()
    ex.reset_failure_log()
    names = [d for d in plan.datasets if d in sets]
    res = {"plan": {"quick": quick, "seeds": len(plan.seeds), "n_train": plan.n_train, "kinds": list(plan.kinds),
                    "datasets": names, "curve_sizes": list(plan.curve_sizes), "curve_seeds": len(plan.curve_seeds),
                    "hardware_seeds": len(plan.hardware_seeds)},
           "data": {k: {"rows": int(len(v)), "models": int(v["model"].nunique()), "gpus": sorted(v["gpu"].unique())}
                    for k, v in sets.items()}}
    todo = evaluation_jobs(plan, sets, names)
    stages = {k: [] for k in ("selection", "learning_curve", "unseen_batch", "unseen_hardware", "leave_family_out",
                              "latency_vs_energy", "planned_vs_random", "residuals", "random_split", "new_engine",
                              "leave_dataset_out")}
    for i, (job, (records, attempts, failures)) in enumerate(zip(todo, run_jobs(todo, jobs, cluster)), start=1):
        stages.setdefault(job.stage, []).extend(records)
        for name, n in attempts.items():  # merged in job order: the log a serial run keeps
            ex.ATTEMPTS[name] = ex.ATTEMPTS.get(name, 0) + n
        ex.FAILURES.extend(failures)
        if progress:
            progress(i, len(todo), job.label)
    parity = stages.pop("parity")
    res.update(stages)
    if "prefill_decode_lomo" in res:
        res["prefill_decode_unseen_gpu"] = ("not evaluated: the project has prefill/decode measurements on one GPU "
                                            "type only (H100); an H200 or other GPU sweep from the profiler is needed")
    res["parity"] = parity
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
