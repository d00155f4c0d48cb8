"""The experiments of the evaluation report. Each returns plain records (lists of dicts).

All selection experiments pick test scenarios first and draw training rows only from what is left;
results are averaged over seeds; every record says how many scenarios and rows it covers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..baselines import RANKERS, make
from ..baselines.raw_features import energy_target, raw_matrix
from ..model.fitted import CoefficientSet, FittedModel
from ..model.predictor import ClosedFormPredictor
from ..model.structure import physics_structure
from ..profile.plan import greedy_d_optimal, sensitivity_blocks
from .metrics import mape, mdape, selection_metrics
from .scenarios import define_scenarios, split_scenarios, workloads

LATENCY_METHODS = ("latency_measured", "latency_predicted")
# Every fit of every method, and those that failed: a failure is counted and reported, never hidden.
ATTEMPTS: dict[str, int] = {}
FAILURES: list[dict] = []


def reset_failure_log() -> None:
    ATTEMPTS.clear()
    FAILURES.clear()


def energy_per_token(df: pd.DataFrame) -> np.ndarray:
    return energy_target(df) / df["output_tokens"].to_numpy(float)


def fit_predict(methods, train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    """Predicted energy per request on `test` for each method (latency methods: predicted ITL).

    The ensemble reuses the random forest and XGBoost fits (geometric mean of their predictions).
    """
    out = {}
    for name in _order(methods):
        if name == "ensemble" and "rf" in out and "xgb" in out:
            out[name] = np.sqrt(out["rf"] * out["xgb"])
            continue
        ATTEMPTS[name] = ATTEMPTS.get(name, 0) + 1
        try:
            out[name] = make(name, random_state=seed).fit(train).predict(test)
        except Exception as exc:  # counted and reported (results.json "failures"), never hidden
            out[name] = np.full(len(test), np.nan)
            FAILURES.append({"method": name, "seed": seed, "train_rows": len(train),
                             "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
    return out


def _order(methods):
    methods = list(methods)
    if "ensemble" in methods:  # fitted after its members
        methods.remove("ensemble")
        methods.append("ensemble")
    return methods


def selection_experiment(df: pd.DataFrame, dataset: str, kind: str, methods, n_train: int, seeds,
                         progress=None) -> list[dict]:
    """Top-1, Top-1 within 2%, regret (% and J per request), pairwise order and MAPE per method with an
    n_train measurement budget. Test scenarios are drawn first; training rows come only from
    configurations outside them (no test scenario has a training candidate)."""
    scenarios = define_scenarios(df, kind)
    if not scenarios:
        return []
    e_tok = energy_per_token(df)
    out_tok = df["output_tokens"].to_numpy(float)
    work = workloads(df)
    records = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        test, pool = split_scenarios(scenarios, len(df), rng, workload=work)
        pool_idx = np.flatnonzero(pool)
        n = min(n_train, len(pool_idx))
        train = df.iloc[rng.choice(pool_idx, n, replace=False)]
        test_rows = np.unique(np.concatenate([s.rows for s in test]))
        preds = fit_predict(methods, train, df.iloc[test_rows], seed)
        pos = {r: i for i, r in enumerate(test_rows)}
        for name in methods:
            p = preds[name]
            ranks_only = name in RANKERS
            score_all = p if ranks_only else p / out_tok[test_rows]
            sel = []
            for s in test:
                sc = score_all[[pos[r] for r in s.rows]]
                if not np.isfinite(sc).all():
                    sel.append(None)
                    continue
                m = selection_metrics(e_tok[s.rows], sc)
                chosen, best = s.rows[int(np.argmin(sc))], s.rows[int(np.argmin(e_tok[s.rows]))]
                m["regret_j"] = float((e_tok[chosen] - e_tok[best]) * np.mean(out_tok[s.rows]))
                sel.append(m)
            done = [m for m in sel if m is not None]
            rec = {"dataset": dataset, "kind": kind, "method": name, "seed": seed, "n_train": n,
                   "scenarios": len(test), "failed_scenarios": len(sel) - len(done), "test_rows": len(test_rows),
                   "candidates": float(np.mean([s.candidates for s in test])),
                   "candidates_per_scenario": [int(s.candidates) for s in test],
                   "random_top1": float(np.mean([1.0 / s.candidates for s in test]))}
            for k in ("top1", "top1_2pct", "regret", "pairwise", "regret_j"):
                vals = np.array([m[k] for m in done], float)
                rec[k] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
            rec["regrets"] = [m["regret"] for m in done]
            rec["regret_le_5pct"] = float(np.mean([m["regret"] <= 0.05 for m in done])) if done else float("nan")
            if not ranks_only:
                y = energy_target(df.iloc[test_rows])
                rec["mape"], rec["mdape"] = mape(p, y), mdape(p, y)
            records.append(rec)
        if progress:
            progress()
    return records


def learning_curve(df: pd.DataFrame, dataset: str, methods, sizes, seeds, kind: str = "parallelism",
                   progress=None) -> list[dict]:
    recs = []
    for n in sizes:
        recs += selection_experiment(df, dataset, kind, methods, n, seeds)
        if progress:
            progress()
    return recs


def unseen_batch(df: pd.DataFrame, dataset: str, methods, seeds, train_max: int = 64, test_min: int = 128) -> list[dict]:
    """Train on batch <= train_max, predict batch >= test_min (extrapolation in batch size)."""
    train, test = df[df["batch_size"] <= train_max], df[df["batch_size"] >= test_min]
    if len(train) < 10 or len(test) == 0:
        return []
    y = energy_target(test)
    recs = []
    for seed in seeds:
        preds = fit_predict(methods, train, test, seed)
        for name in methods:
            recs.append({"dataset": dataset, "method": name, "seed": seed, "train_rows": len(train),
                         "test_rows": len(test), "mape": mape(preds[name], y), "mdape": mdape(preds[name], y)})
    return recs


def gpu_pairs(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(source, target) pairs of distinct GPU types, in the order unseen_hardware visits them."""
    gpus = sorted(df["gpu"].unique())
    return [(src, dst) for src in gpus for dst in gpus if src != dst]


def unseen_hardware(df: pd.DataFrame, dataset: str, methods, seeds, calibration=(0, 5), pairs=None) -> list[dict]:
    """Train on one GPU type, test on another, with 0 or k calibration rows of the target GPU (every
    pair of gpu_pairs, or those in `pairs`).

    EnergyLens uses its few rows to recalibrate the hardware/engine coefficients of the source fit
    (`fit --from`); the baselines add them to their training set.
    """
    recs = []
    for src, dst in gpu_pairs(df) if pairs is None else pairs:
        train_src, target = df[df["gpu"] == src], df[df["gpu"] == dst]
        for k, seed, test, y, preds in calibration_transfer(train_src, target, methods, seeds, calibration):
            for name in methods:
                recs.append({"dataset": dataset, "source_gpu": src, "target_gpu": dst, "calibration": k,
                             "method": name, "seed": seed, "train_rows": len(train_src) + k,
                             "test_rows": len(test), "mape": mape(preds[name], y), "mdape": mdape(preds[name], y)})
    return recs


def calibration_transfer(train: pd.DataFrame, target: pd.DataFrame, methods, seeds, calibration):
    """Predictions on `target` from a fit on `train`, with 0 or k calibration rows of the target drawn per
    seed: EnergyLens recalibrates its fit on `train` with them (`fit --from`; that fit does not depend on
    the draw, so it is made once), the other methods add them to their training rows.
    Yields (k, seed, test rows, measured energy, predictions by method)."""
    base = make("energylens", random_state=0).fit(train).model_ if "energylens" in methods else None
    others = [m for m in methods if m != "energylens"]
    for k in calibration:
        for seed in (seeds if k else seeds[:1]):
            rng = np.random.default_rng(seed)
            cal_idx = rng.choice(len(target), k, replace=False) if k else np.array([], int)
            rest = np.setdiff1d(np.arange(len(target)), cal_idx)
            cal, test = target.iloc[cal_idx], target.iloc[rest]
            preds = fit_predict(others, pd.concat([train, cal], ignore_index=True) if k else train, test, seed)
            if base is not None:
                preds["energylens"] = (make("energylens", random_state=seed, base=base).fit(cal).predict(test) if k
                                       else base.predict(test))
            yield k, seed, test, energy_target(test), preds


def model_family(model: str) -> str:
    return model.split("/")[0] if "/" in model else model.split("-")[0]


def leave_family_out(df: pd.DataFrame, dataset: str, methods, seed: int = 0) -> list[dict]:
    """Fit on every other model family (organisation), predict the left-out one."""
    fam = df["model"].map(model_family)
    recs = []
    for f in sorted(fam.unique()):
        train, test = df[fam != f], df[fam == f]
        if len(test) < 3 or len(train) < 10:
            continue
        y = energy_target(test)
        preds = fit_predict(methods, train, test, seed)
        sc = define_scenarios(test, "parallelism")
        e_tok = energy_per_token(test)
        for name in methods:
            score = preds[name] / test["output_tokens"].to_numpy(float)
            top1 = [selection_metrics(e_tok[s.rows], score[s.rows])["top1"] for s in sc]
            recs.append({"dataset": dataset, "family": f, "method": name, "test_rows": len(test),
                         "models": int(test["model"].nunique()), "mape": mape(preds[name], y),
                         "top1": float(np.mean(top1)) if top1 else float("nan"), "scenarios": len(sc)})
    return recs


def latency_vs_energy(df: pd.DataFrame, dataset: str) -> list[dict]:
    """How often the measured latency-optimal and energy-optimal choices differ."""
    e_tok = energy_per_token(df)
    itl = df["itl_s"].to_numpy(float)
    recs = []
    for kind in ("parallelism", "hardware"):
        sc = define_scenarios(df, kind)
        if not sc:
            continue
        differ = [int(np.argmin(itl[s.rows]) != np.argmin(e_tok[s.rows])) for s in sc]
        regret = [e_tok[s.rows][np.argmin(itl[s.rows])] / e_tok[s.rows].min() - 1 for s in sc]
        recs.append({"dataset": dataset, "kind": kind, "scenarios": len(sc), "differ_share": float(np.mean(differ)),
                     "mean_energy_penalty": float(np.mean(regret)), "max_energy_penalty": float(np.max(regret))})
    return recs


def prefill_decode_lomo(df: pd.DataFrame, seed: int = 0) -> list[dict]:
    """Leave one model out on data with measured prefill and decode energy (EnergyLens vs RF, XGBoost).

    The black boxes get the same rows and descriptors and one regressor per target.
    """
    from ..model.estimator import EnergyLensRegressor

    targets = {"energy_request": "energy_request_j", "prefill": "prefill_energy_j", "decode": "decode_energy_j",
               "ttft": "ttft_s", "itl": "itl_s"}
    recs = []
    for held in sorted(df["model"].unique()):
        train, test = df[df["model"] != held], df[df["model"] == held]
        p = EnergyLensRegressor(random_state=seed).fit(train).predict_frame(test)
        ours = {"energy_request": p["pred_energy_request_j"], "prefill": p["pred_prefill_energy_j"],
                "decode": p["pred_decode_energy_j"], "ttft": p["pred_ttft_s"], "itl": p["pred_itl_s"]}
        for t, col in targets.items():
            recs.append({"held_out": held, "target": t, "method": "energylens", "mape": mape(ours[t], test[col])})
        Xtr, Xte = raw_matrix(train), raw_matrix(test)
        for name in ("rf", "xgb"):
            for t, col in targets.items():
                reg = make(name, random_state=seed)._make()
                reg.fit(Xtr, np.log(train[col].to_numpy(float)))
                recs.append({"held_out": held, "target": t, "method": name,
                             "mape": mape(np.exp(reg.predict(Xte)), test[col])})
    return recs


def planned_vs_random(df: pd.DataFrame, dataset: str, budget: int, seeds) -> list[dict]:
    """Fit on `budget` rows chosen by the D-optimal planner vs chosen at random; MAPE on the rest.

    The planner sees only configurations (never measurements): sensitivities at the physics priors.
    """
    prior = ClosedFormPredictor()
    s = physics_structure()
    k = len(s.names)
    prior.fitted_ = FittedModel(s, CoefficientSet(s.priors(), np.ones(k, bool), np.zeros((k, k)), float("nan")))
    has_split = "prefill_energy_j" in df and df["prefill_energy_j"].notna().all()
    blocks = sensitivity_blocks(df, prior, with_split=has_split, with_time=True)
    chosen, _ = greedy_d_optimal(blocks, budget)
    recs = []

    def score(train_idx, how, seed):
        rest = np.setdiff1d(np.arange(len(df)), train_idx)
        p = make("energylens", random_state=seed).fit(df.iloc[train_idx]).predict(df.iloc[rest])
        recs.append({"dataset": dataset, "selection": how, "seed": seed, "n_train": len(train_idx),
                     "mape": mape(p, energy_target(df.iloc[rest])), "test_rows": len(rest)})

    score(np.array(chosen), "planned (D-optimal)", 0)
    for seed in seeds:
        score(np.random.default_rng(seed).choice(len(df), budget, replace=False), "random", seed)
    return recs


def residuals(df: pd.DataFrame, dataset: str) -> list[dict]:
    """In-sample residuals of a fit on every row, per model, GPU and task: where the shared formula misses."""
    from ..model.estimator import EnergyLensRegressor

    m = EnergyLensRegressor(random_state=0).fit(df)
    p = m.predict_frame(df)
    y = energy_target(df)
    ratio = p["pred_energy_request_j"].to_numpy() / y
    itl_ratio = p["pred_itl_s"].to_numpy() / df["itl_s"].to_numpy(float) if "itl_s" in df else np.full(len(df), np.nan)
    recs = []
    for by in ("model", "gpu", "task"):
        if by not in df:
            continue
        keys = df[by].fillna("").to_numpy()
        for k in pd.unique(keys):
            sel = keys == k
            r, ir = ratio[sel], itl_ratio[sel]
            recs.append({"dataset": dataset, "by": by, "group": str(k), "rows": int(sel.sum()),
                         "median_pred_over_measured": float(np.median(r)), "mape": float(np.mean(np.abs(r - 1))),
                         "itl_median_pred_over_measured": float(np.nanmedian(ir)) if np.isfinite(ir).any() else float("nan")})
    return recs


def random_split_mape(df: pd.DataFrame, dataset: str, methods, n_train: int, seeds) -> list[dict]:
    """Energy MAPE with n_train rows drawn at random and every other row as the test set."""
    recs = []
    y_all = energy_target(df)
    for seed in seeds:
        idx = np.random.default_rng(seed).permutation(len(df))
        tr, te = idx[:n_train], idx[n_train:]
        preds = fit_predict(methods, df.iloc[tr], df.iloc[te], seed)
        for name in methods:
            recs.append({"dataset": dataset, "method": name, "seed": seed, "n_train": n_train, "test_rows": len(te),
                         "mape": mape(preds[name], y_all[te]), "mdape": mdape(preds[name], y_all[te])})
    return recs


NEAR_IDLE = 1.25  # mean power per GPU below 1.25 x idle while serving: the measurement missed the work
_CONFIG_COLUMNS = ("model", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size", "input_tokens", "output_tokens",
                   "task", "precision", "source")


def configuration_ids(df: pd.DataFrame) -> np.ndarray:
    """One id per distinct configuration: repeated measurements of one configuration share it (Splitwise
    repeats each configuration 5 or 15 times; a random row split would test on training configurations)."""
    cols = [c for c in _CONFIG_COLUMNS if c in df]
    return pd.factorize(pd.MultiIndex.from_frame(df[cols].astype(str)))[0]


def grouped_order(ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows in a random order of their configurations (the rows of one configuration together)."""
    rank = np.empty(ids.max() + 1, int)
    rank[rng.permutation(len(rank))] = np.arange(len(rank))
    return np.lexsort((np.arange(len(ids)), rank[ids]))


def unseen_rows(ids: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Rows whose configuration has no row among `train`."""
    return np.flatnonzero(~np.isin(ids, ids[train]))


def near_idle_rows(df: pd.DataFrame) -> np.ndarray:
    """Rows whose measured mean power per GPU is within 25% of the GPU's idle power: a GPU doing
    prefill and decode work draws far more, so these rows' energy is suspect (reported, never dropped)."""
    if "avg_power_w" not in df:
        return np.zeros(len(df), bool)
    per_gpu = df["avg_power_w"].to_numpy(float) / df["num_gpus"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        return per_gpu < NEAR_IDLE * df["gpu_idle_w"].to_numpy(float)


def new_engine_protocol(df: pd.DataFrame, dataset: str, seeds, n_train: int = 50, n_black_box: int = 100,
                        in_sample: bool = True) -> list[dict]:
    """One dataset as a serving engine never seen: the structure is chosen automatically from n_train
    random rows of it alone (nothing else tuned on it), every row of another configuration tested
    (configurations drawn at random; repeats of a training configuration are never test rows). Against a second-order
    log-linear regression from the same rows and XGBoost from n_black_box rows of the same draw (fewer
    when the dataset is small: at least 10 rows stay for the test). One extra record per dataset (unless
    not `in_sample`, so that seeds can run apart): the fit on every row, judged in sample."""
    from ..model.estimator import EnergyLensRegressor

    y = energy_target(df)
    n_bb = min(n_black_box, len(df) - 10)
    idle_like = near_idle_rows(df)
    config = configuration_ids(df)
    recs = []
    for seed in seeds:
        order = grouped_order(config, np.random.default_rng(seed))
        tr, te = order[:n_train], unseen_rows(config, order[:n_train])
        lens = make("energylens", random_state=seed).fit(df.iloc[tr])
        model = lens.model_
        runs = {"energylens": (lens.predict(df.iloc[te]), te),
                "loglinear": (make("loglinear").fit(df.iloc[tr]).predict(df.iloc[te]), te),
                "loglinear2": (make("loglinear2").fit(df.iloc[tr]).predict(df.iloc[te]), te),
                "xgb": (make("xgb", random_state=seed).fit(df.iloc[tr]).predict(df.iloc[te]), te)}
        te_bb = unseen_rows(config, order[:n_bb])
        runs[f"xgb@{n_bb}"] = (make("xgb", random_state=seed).fit(df.iloc[order[:n_bb]]).predict(df.iloc[te_bb]), te_bb)
        for name, (pred, rows) in runs.items():
            ok = ~idle_like[rows]
            rec = {"dataset": dataset, "method": name, "seed": seed, "n_train": n_bb if "@" in name else n_train,
                   "test_rows": len(rows), "mape": mape(pred, y[rows]), "mdape": mdape(pred, y[rows]),
                   "near_idle_test_rows": int((~ok).sum()), "mape_without_near_idle": mape(pred[ok], y[rows][ok])}
            if name == "energylens":
                s = model.structure_
                rec.update(fitted=model.fitted_count(), structure=s.name,
                           corrections=", ".join(c.name for c in s.corrections) or "none")
            recs.append(rec)
    if not in_sample:
        return recs
    full = EnergyLensRegressor(random_state=0, engine_column="source").fit(df)
    p_full = full.predict(df)
    recs.append({"dataset": dataset, "method": "energylens (in sample, all rows)", "seed": 0, "n_train": len(df),
                 "test_rows": len(df), "mape": mape(p_full, y), "mdape": mdape(p_full, y),
                 "near_idle_test_rows": int(idle_like.sum()), "mape_without_near_idle": mape(p_full[~idle_like], y[~idle_like]),
                 "fitted": full.fitted_count(), "structure": full.structure_.name,
                 "corrections": ", ".join(c.name for c in full.structure_.corrections) or "none"})
    return recs


def leave_one_dataset_out(sets: dict, names, seeds, calibration=(0, 5), methods=("energylens", "loglinear", "xgb"),
                          held_out=None) -> list[dict]:
    """Train on every other dataset (each row's source its own engine), predict the held-out one: with
    none of its rows, and with `calibration` rows of it (EnergyLens recalibrates the fit on the others
    with them, `fit --from`; the black boxes add them to their training rows). Each of `names` is held
    out in turn, or only those in `held_out`."""
    recs = []
    names = [d for d in names if d in sets]
    for held in [d for d in names if held_out is None or d in held_out]:
        train = pd.concat([sets[d] for d in names if d != held], ignore_index=True)
        target = sets[held]
        for k, seed, test, y, preds in calibration_transfer(train, target, methods, seeds, calibration):
            for name in methods:
                recs.append({"held_out": held, "calibration": k, "method": name, "seed": seed,
                             "train_rows": len(train) + k, "test_rows": len(test), "mape": mape(preds[name], y),
                             "mdape": mdape(preds[name], y)})
    return recs
