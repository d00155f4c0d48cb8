"""Rank feasible deployments by predicted energy per request, under latency SLOs."""
from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import hardware_catalog, model_catalog, model_from_hf_config
from ..catalog.costs import shipped_prices
from ..catalog.hardware import HARDWARE_COLUMNS, GpuSpec
from ..catalog.models import ModelSpec
from ..errors import EnergyLensError, InfeasibleError
from ..features.physics import Features, compute_features
from ..io import clip, visible
from ..model.predictor import _rows, described, prepare
from ..model.serving import DEFINITION as SERVING_DEFINITION
from ..model.terms import GROUPS
from . import objectives
from .request import (  # noqa: F401
    CLI,
    DEFAULT_ITL_SLO_MS,
    DEFAULT_TTFT_SLO_MS,
    MAX_BATCH,
    MAX_GPUS,
    MAX_TOKENS,
    PYTHON,
    RecommendOptions,
    RequestError,
    check_candidates,
    python_signature,
)
from .result import Recommendation, distinct_ranks
from .space import DEFAULT_BATCHES, NODE_GPUS, candidate_table

# The configuration columns of recommend's table, in order.
SHOWN = ("model", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size")
# The limits and default SLOs are declared with the options (request.py), imported above.
SLO_SOURCE = "MLPerf Inference server scenario (Llama-2-70B: TTFT 2 s, TPOT 200 ms)"


def check_workload(max_gpus, input_tokens, output_tokens, visual_tokens=0.0, batches=None, front: str = CLI):
    """Validated (max_gpus, input_tokens, output_tokens, visual_tokens, batches) as recommend's options
    (request.py) check them; batches de-duplicated in their order (None stays None). Every bad value raises a
    RequestError naming its option as `front` spells it."""
    v = RecommendOptions.check({"max_gpus": max_gpus, "input_tokens": input_tokens, "output_tokens": output_tokens,
                                "visual_tokens": visual_tokens, "batches": batches}, front)
    batches = list(v["batches"]) if v["batches"] else None
    return v["max_gpus"], v["input_tokens"], v["output_tokens"], v["visual_tokens"], batches


def _resolve_gpus(gpus, hardware_catalog_file=None, hw=None, hint: str | None = None) -> list:
    """GpuSpecs of the requested GPU names, each canonical GPU once, in the order first asked for
    (`hw`: the hardware catalog when already loaded)."""
    if isinstance(gpus, str):
        gpus = [gpus]
    if not gpus:
        raise EnergyLensError("--gpu: give at least one GPU type")
    hw = hw or hardware_catalog(hardware_catalog_file)
    specs = {}
    for g in gpus:
        spec = hw.get(g, hint=hint)
        specs.setdefault(spec.name, spec)
    return list(specs.values())


def _resolve_model(model, model_config=None, model_catalog_file=None, allow_path: bool = True,
                   hint: str | None = None):
    """The ModelSpec of a request: from its config.json, a catalog name, or (`allow_path`: never over the web,
    which opens no file a client names) a config.json path given as the model."""
    if model_config is not None:
        return model_from_hf_config(model_config, name=model if isinstance(model, str) else None)
    if allow_path and isinstance(model, str) and model.endswith(".json") and Path(model).exists():
        return model_from_hf_config(model)
    return model_catalog(model_catalog_file).get(model, hint=hint)


def enumerate_candidates(model, gpus, max_gpus: int, input_tokens: float, output_tokens: float, batches=None,
                         model_config=None, hardware_catalog_file=None, model_catalog_file=None,
                         visual_tokens: float = 0.0) -> pd.DataFrame:
    """All candidate deployments with a `reason` column ('' when structurally and memory feasible)."""
    max_gpus, input_tokens, output_tokens, visual_tokens, batches = check_workload(
        max_gpus, input_tokens, output_tokens, visual_tokens, batches)
    df, f, no_room, over = _candidates(model, _resolve_gpus(gpus, hardware_catalog_file), max_gpus, input_tokens,
                                       output_tokens, batches, model_config, model_catalog_file, visual_tokens)
    _memory_reasons(df, f, no_room, over)
    return df


def _candidates(model, gpu_specs, max_gpus, input_tokens, output_tokens, batches, model_config, model_catalog_file,
                visual_tokens, allow_path: bool = True, hint: str | None = None, spell=None):
    """(table, features, no_room, over): every candidate with its structural `reason` and features, and the
    structurally valid rows that fail on memory: weights leave no KV-cache room (no_room), or the requested
    concurrency does not fit the KV cache (over; the features cap it softly, here it is a hard limit).
    The workload is validated already (check_workload or RecommendOptions)."""
    spec = _resolve_model(model, model_config, model_catalog_file, allow_path, hint)
    batches = batches or list(DEFAULT_BATCHES)
    check_candidates(spec, len(gpu_specs), max_gpus, len(batches), *([spell] if spell else []))  # before any is built
    df = candidate_table(spec, gpu_specs, max_gpus, batches, input_tokens, output_tokens, visual_tokens=visual_tokens)
    f = compute_features(df)
    no_room, over = _memory_masks(df, f)
    return df, f, no_room, over


def _memory_masks(df: pd.DataFrame, f) -> tuple[np.ndarray, np.ndarray]:
    """(no_room, over) of the structurally valid rows: the weights leave no KV-cache room, or the requested
    concurrency does not fit the KV cache (the features cap it softly; here it is a hard limit)."""
    valid = (df["reason"] == "").to_numpy()
    no_room = ~f.kv_fits & valid
    over = (df["batch_size"].to_numpy() / df["dp"].to_numpy() > 1.02 * f.batch) & valid & ~no_room
    return no_room, over




def _memory_reasons(df: pd.DataFrame, f, no_room: np.ndarray, over: np.ndarray) -> None:
    """The `reason` text of the rows that fail on memory (only those rows' strings are built)."""
    df["reason"] = df["reason"].astype(object)  # the candidate table keeps it categorical; new texts follow
    weights_gb = f.weight_bytes / 1e9
    per_replica_gpus = (df["num_gpus"] / df["dp"]).to_numpy()
    mem_gb = df["gpu_mem_gb"].to_numpy() * per_replica_gpus
    df.loc[no_room, "reason"] = [f"memory: weights {w:.0f} GB leave no KV-cache room in the {m:.0f} GB of "
                                 f"{g:.0f} GPU{'s' if g != 1 else ''}"
                                 for w, m, g in zip(weights_gb[no_room], mem_gb[no_room], per_replica_gpus[no_room])]
    per_replica = (df["batch_size"] / df["dp"]).to_numpy()
    df.loc[over, "reason"] = [f"memory: KV cache holds about {b:.0f} of {r:.0f} concurrent requests per replica"
                              for b, r in zip(f.batch[over], per_replica[over])]


def recommend(model, gpus, **options) -> Recommendation:
    """Feasible deployments ranked by predicted energy per request (lowest first), or by cost or carbon
    (`objective`; prices, grid intensity and PUE as in recommendation/objectives.py, every row carries
    cost_usd_per_million_tokens and carbon_gco2e_per_1000_requests, `.assumptions` says why).

    The keyword options are recommend's (request.py declares them, with their bounds and defaults; a bad
    value raises a RequestError naming the keyword). Returns a Recommendation: `.table` holds every deployment
    meeting the SLOs (configuration, predicted energy per request and per output token, TTFT, ITL, end-to-end
    latency, the per-term breakdown in percent, flags for the latency-optimal and the all-GPUs-in-one-TP-group
    default), `.shown(top)` the rows a table shows. Raises InfeasibleError (with the reasons) when nothing fits.
    TTFT and ITL are those of a request served under continuous batching with chunked prefill
    (model/serving.py); the SLOs default to MLPerf's server scenario (TTFT 2 s, ITL 200 ms), None lifts one.
    """
    options.pop("return_all", None)  # earlier versions' switch: a Recommendation always holds every row
    return run(RecommendOptions.parse({"model": model, "gpus": gpus, **options}, PYTHON))


recommend.__signature__ = python_signature()


def run(opts: RecommendOptions) -> Recommendation:
    """The recommendation for validated options (RecommendOptions.parse); messages spell options as the
    front end that parsed them does."""
    spell = opts.spell
    model, gpus, max_gpus, batches = opts.model, list(opts.gpus), opts.max_gpus, opts.batches
    input_tokens, output_tokens, visual_tokens = opts.input_tokens, opts.output_tokens, opts.visual_tokens
    itl_slo_ms, ttft_slo_ms, engine, objective = opts.itl_slo_ms, opts.ttft_slo_ms, opts.engine, opts.objective
    model_file, model_config, model_catalog_file = opts.model_file, opts.model_config, opts.model_catalog_file
    batches = list(batches) if batches else None
    hw = hardware_catalog(opts.hardware_catalog_file)
    if isinstance(opts.gpu_hour_usd, dict):  # every priced name must be a GPU (checked here to name the option)
        for name in opts.gpu_hour_usd:
            if hw.canonical(name) is None:
                raise RequestError(f"{spell('gpu_hour_usd')}: unknown GPU {clip(name)!r} (a name or alias of the "
                                   "hardware catalog, e.g. H100=2.5)", "gpu_hour_usd")
    costs = objectives.assumptions(opts.gpu_hour_usd, opts.electricity_usd_per_kwh, opts.grid_gco2_per_kwh,
                                   opts.region, opts.pue, hw, opts.pricing, opts.hardware_usd_per_gpu_hour)
    gpu_specs = _resolve_gpus(gpus, hw=hw, hint=opts.unknown_hint("gpus"))
    objectives.require_prices(costs, [g.name for g in gpu_specs], objective, spell)
    # Model files load here, not at import: every command imports this module at start-up.
    from ..model.default import default_model
    from ..model.modelfile import load_model

    est = load_model(model_file, estimator=False) if model_file else default_model()
    cand, f, no_room, over = _candidates(model, gpu_specs, max_gpus, input_tokens, output_tokens, batches, model_config,
                                         model_catalog_file, visual_tokens, allow_path=opts.front != "json",
                                         hint=opts.unknown_hint("model"), spell=spell)
    feasible = (cand["reason"] == "").to_numpy() & ~no_room & ~over
    if not feasible.any():
        raise InfeasibleError(_why(cand, None, None, None, f, no_room, over, spell))
    engine = _pick_engine(est, engine, spell)
    if described(cand):  # the memory check's features price the feasible rows; only the columns read are taken
        ok = cand.loc[feasible, [*SHOWN, "gpu_mem_gb"]].reset_index(drop=True)
        f_ok = _rows(f, feasible)
    else:  # descriptors missing: validated and featured as predict_frame would
        ok, f_ok = prepare(cand[feasible].reset_index(drop=True)), None
    if engine is not None:
        ok[est.fitted_.engine_column] = engine
    pred = est.predict_arrays(ok, f_ok, intervals=False, breakdown=False, extrapolation=False)
    res = ok[list(SHOWN)].copy()
    res["energy_request_j"] = pred["pred_energy_request_j"]
    res["energy_token_j"] = pred["pred_energy_token_j"]
    res["prefill_energy_j"] = pred["pred_prefill_energy_j"]
    res["decode_energy_j"] = pred["pred_decode_energy_j"]
    # The time the energy integrates: every GPU of the deployment (idle replicas included) per request; energy
    # over it is the mean power per GPU, within [idle, TDP] by construction.
    res["gpu_seconds_per_request"] = pred["pred_gpu_seconds"]
    res["power_per_gpu_w"] = pred["pred_power_per_gpu_w"]
    res["_row"] = np.arange(len(res))  # position in `ok`: the rows shown get intervals after ranking
    res["ttft_ms"] = 1e3 * pred["pred_serving_ttft_s"]
    res["itl_ms"] = 1e3 * pred["pred_serving_itl_s"]
    res["latency_s"] = pred["pred_serving_latency_s"]
    res["batch_prefill_ms"] = 1e3 * pred["pred_ttft_s"]  # the whole batch's prompts at once
    res["decode_step_ms"] = 1e3 * pred["pred_itl_s"]
    # The share of the prefill *phase*; where the energy goes (<group>_pct) is filled for the rows shown (_details).
    res["prefill_phase_pct"] = 100 * res["prefill_energy_j"] / res["energy_request_j"]
    slo_ok = np.ones(len(res), bool)
    lifted = ""
    if itl_slo_ms is not None:
        slo_ok &= res["itl_ms"].to_numpy() <= itl_slo_ms
    if ttft_slo_ms is not None:
        slo_ok &= res["ttft_ms"].to_numpy() <= ttft_slo_ms
    if not slo_ok.any():
        if not opts.has_load:
            raise InfeasibleError(_why(cand, res, itl_slo_ms, ttft_slo_ms, f, no_room, over, spell))
        # With a load the SLOs hold percentiles at that load (load.py); the saturation ranking it is compared
        # with is then the one without them, and says so.
        lifted = _why(cand, res, itl_slo_ms, ttft_slo_ms, f, no_room, over, spell)
        slo_ok[:] = True
    if not slo_ok.all():
        res = res[slo_ok]
    res = objectives.rank_by(objectives.add_objectives(res, costs, output_tokens), objective)
    res.insert(0, "rank", np.arange(1, len(res) + 1))
    # The latency-optimal choice at the same load: lowest end-to-end latency among the deployments that
    # serve the best configuration's concurrency (batch size), as a latency-minded operator would pick.
    same_load = res[res["batch_size"] == res.iloc[0]["batch_size"]]
    lat = int(same_load["latency_s"].idxmin())
    res["latency_optimal"] = False
    res.loc[lat, "latency_optimal"] = True
    best = res.iloc[0]
    res["savings_vs_latency_optimal_pct"] = 100 * (1 - res["energy_request_j"] / res.loc[lat, "energy_request_j"])
    default = _default_row(res, best)
    res["tp_default"] = False
    if default is not None:
        res.loc[default, "tp_default"] = True
        res["savings_vs_tp_default_pct"] = 100 * (1 - res["energy_request_j"] / res.loc[default, "energy_request_j"])
    else:
        res["savings_vs_tp_default_pct"] = np.nan
    # Data-parallel copies of a smaller deployment have its per-request figures: flag them.
    per_replica = res["batch_size"] / res["dp"]
    key = pd.DataFrame({"gpu": res["gpu"], "tp": res["tp"], "pp": res["pp"], "ep": res["ep"], "b": per_replica})
    res["replica_of_smaller"] = (res["dp"] > 1) & key.duplicated(keep="first")
    res.attrs["candidates"] = len(cand)
    res.attrs["objective"] = objective
    res.attrs["assumptions"] = costs.as_dict(_distinct(res["gpu"]))
    res.attrs["gpus"] = _distinct(cand["gpu"])
    s = getattr(est, "structure_", None)
    res.attrs["structure"] = visible(f"{s.name}: {s.why}") if s is not None else ""  # texts of a file
    res.attrs["feasible"] = int(len(ok))
    res.attrs["meeting_slo"] = int(slo_ok.sum())
    res.attrs["model_provenance"] = getattr(est, "provenance_", {})
    res.attrs["engine"] = visible(engine or "shared")
    res.attrs["latency_definition"] = SERVING_DEFINITION
    res.attrs["latency_optimal_metric"] = "lowest predicted end-to-end latency per request (TTFT + (output tokens - 1) x ITL) at the best row's batch"
    res.attrs["slo"] = {"ttft_ms": ttft_slo_ms, "itl_ms": itl_slo_ms,
                        "source": SLO_SOURCE if (ttft_slo_ms, itl_slo_ms) == (DEFAULT_TTFT_SLO_MS, DEFAULT_ITL_SLO_MS)
                        else "given"}
    res["rank"] = distinct_ranks(res)  # among distinct layouts: a data-parallel copy has its layout's rank
    if lifted:
        res.attrs["saturation_slos_lifted"] = lifted
    if f_ok is None:
        f_ok = compute_features(ok)
    shown = Recommendation(res, opts).shown(opts.top).index.to_numpy()
    _details(res, est, ok, f_ok, engine, np.union1d(np.arange(min(SHOWN_INTERVALS, len(res))), shown))
    res = res.drop(columns="_row")
    rec = Recommendation(res, opts)
    if opts.has_load:  # replicas, energy and daily figures at the traffic asked for (load.py)
        from .load import at_load

        coef = (est.fitted_.engines[engine] if engine is not None else est.fitted_.shared).values
        rec.load = at_load(opts, est.structure_, coef, cand[feasible].reset_index(drop=True), costs, res)
    return rec


SHOWN_INTERVALS = 50  # rows, best first, that get the 95% interval and the training-domain check


def _details(res: pd.DataFrame, est, ok: pd.DataFrame, f_ok, engine, rows: np.ndarray) -> None:
    """For the rows at positions `rows` of the ranked table (the best SHOWN_INTERVALS and every row a table shows):
    where the energy goes (<group>_pct), the 95% interval of energy per request and the training-domain flags
    (`extrapolation`: '' inside, else why). Other rows get NaN and '': these cost a derivative pass, and a search
    over a million candidates shows a few dozen. `attrs['intervals_overlap']`: how many of the best
    SHOWN_INTERVALS rows after the first have an interval overlapping the best's. `res['_row']` is each row's
    position in `ok` (and `f_ok`)."""
    at = res["_row"].to_numpy()[rows]
    sub = ok.iloc[at].reset_index(drop=True)
    if engine is not None:
        sub[est.fitted_.engine_column] = engine
    f_sub = Features(**{k.name: getattr(f_ok, k.name)[at] for k in fields(Features)})
    pred = est.predict_arrays(sub, f_sub, intervals=True, breakdown=True)
    n = len(res)
    for g in GROUPS:
        col = np.full(n, np.nan)
        col[rows] = pred[f"{g}_pct"]
        res[f"{g}_pct"] = col
    lo, hi = np.full(n, np.nan), np.full(n, np.nan)
    flags = np.full(n, "", dtype=object)
    lo[rows], hi[rows], flags[rows] = pred["pred_energy_request_lo_j"], pred["pred_energy_request_hi_j"], pred["extrapolation"]
    res["energy_request_lo_j"], res["energy_request_hi_j"], res["extrapolation"] = lo, hi, flags
    top = min(SHOWN_INTERVALS, n)
    res.attrs["intervals_overlap"] = int(np.sum(lo[1:top] <= hi[0])) if top else 0


def _distinct(col: pd.Series) -> list:
    """The distinct values of a column in order of first appearance (hashed in C, not iterated in Python)."""
    return [str(v) for v in pd.unique(col)]


def _pick_engine(est, engine: str | None, spell=lambda name: "--engine") -> str | None:
    """The engine whose coefficients price the candidates: the one asked for, else the model's engine
    with the most training rows ('shared' = the coefficients shared by all engines)."""
    engines = getattr(est, "engines_", None) or {}
    if engine == "shared" or not engines:
        if engine not in (None, "shared"):
            raise RequestError(f"{spell('engine')} {clip(engine)!r}: this model has no engine-specific coefficients",
                               "engine")
        return None
    if engine is None:
        return est.default_engine()
    if engine not in engines:
        raise RequestError(f"{spell('engine')} {clip(engine)!r} unknown; this model knows: "
                           f"{', '.join(clip(g) for g in engines)} (or 'shared')", "engine")
    return engine


def _default_row(res: pd.DataFrame, best) -> int | None:
    """The common default: all of the largest GPU count in one TP group, at the best batch and GPU type."""
    same = res[(res["gpu"] == best["gpu"]) & (res["pp"] == 1) & (res["dp"] == 1) & (res["ep"] == 1)
               & (res["tp"] == res["num_gpus"])]
    if same.empty:
        return None
    n_max = same["num_gpus"].max()
    same = same[same["num_gpus"] == n_max]
    at_batch = same[same["batch_size"] == best["batch_size"]]
    pick = at_batch if not at_batch.empty else same
    return int(pick["energy_request_j"].idxmin())


def _why(cand: pd.DataFrame, res, itl_slo_ms, ttft_slo_ms, f=None, no_room=None, over=None,
         spell=lambda name: "--" + name.replace("_", "-")) -> str:
    """Why nothing is recommended, in one line: the binding constraint with its numbers (weights per GPU
    against memory, what the KV cache holds, the SLO no deployment meets), how many candidates fail on what,
    and the smallest change that makes a deployment feasible. With the memory check's (f, no_room, over)
    the memory reasons are written first."""
    parts = []
    if f is not None:
        structural = (cand["reason"] == "").to_numpy() | no_room | over
        _memory_reasons(cand, f, no_room, over)
        if res is None and structural.any():
            parts.append(_memory_binding(cand, f, structural, no_room))
    reasons = cand["reason"].replace("", np.nan).dropna()
    if len(reasons):
        kinds = reasons.str.split(":").str[0].value_counts()
        for kind, n in kinds.items():
            example = reasons[reasons.str.startswith(kind)].iloc[0]
            parts.append(f"{n} of {len(cand)} candidates fail on {kind} (e.g. {example.split(': ', 1)[1]})")
    if res is not None and len(res):
        parts += _slo_binding(res, itl_slo_ms, ttft_slo_ms, spell)
    elif f is not None:
        change = _memory_change(cand, structural, no_room, over, f, spell)
        if change:
            parts.append(change)
    return "no feasible deployment: " + "; ".join(p for p in parts if p) if parts else "no feasible deployment"


def _memory_binding(cand: pd.DataFrame, f, structural: np.ndarray, no_room: np.ndarray) -> str:
    """The memory constraint with its numbers, at the layout that spreads the weights over the most GPUs:
    '671 GB of weights > 8 x 80 GB of H100-SXM', or what the KV cache holds per replica."""
    model = str(cand["model"].iloc[0]).split("/")[-1]
    if no_room[structural].all():  # the weights leave no room for one request's KV cache anywhere
        engine = getattr(f, "G", None)  # GPUs that hold one copy of the weights
        engine = cand["num_gpus"].to_numpy() / cand["dp"].to_numpy() if engine is None else engine
        spread = np.where(structural, engine * cand["gpu_mem_gb"].to_numpy(), -1.0)
        i = int(np.argmax(spread))
        weights_gb, gpus, mem = f.weight_bytes[i] / 1e9, int(round(engine[i])), float(cand["gpu_mem_gb"].iloc[i])
        gpu, tokens = cand["gpu"].iloc[i], cand["input_tokens"].iloc[i] + cand["output_tokens"].iloc[i]
        if weights_gb > gpus * mem:
            return f"{model}'s {weights_gb:.0f} GB of weights > {gpus} x {mem:.0f} GB of {gpu}"
        return (f"{model}'s {weights_gb:.0f} GB of weights ({weights_gb / gpus:.0f} GB per GPU over {gpus} {gpu} of "
                f"{mem:.0f} GB) leave no room for the KV cache of one {tokens:,.0f}-token request")
    return ""  # the weights fit; the concurrency asked for does not (_memory_change says how much fits)


# Largest deployment a suggestion looks at: far beyond one node, still quick to enumerate.
SUGGEST_MAX_GPUS = 4096


def _memory_change(cand: pd.DataFrame, structural: np.ndarray, no_room: np.ndarray, over: np.ndarray, f,
                   spell=lambda name: "--" + name.replace("_", "-")) -> str:
    """The smallest change that lets a deployment fit: more GPUs of the pool's types (the next powers of two
    of --max-gpus), another GPU of the catalog at this --max-gpus, or a smaller --batch. '' when none does.
    Suggestions are searched with the same candidate table and memory check as recommend."""
    if not structural.any():
        return ""
    room = structural & ~no_room
    try:  # a suggestion must never hide the reason above
        spec, pool, batches, workload = _workload(cand)
        max_gpus = int(cand["num_gpus"].max())
        if room.any():  # the weights fit; the concurrency asked for does not: the most that fits, by bisection
            low, high = 1, min(batches)  # `low` fits (room for one request), `high` does not
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if _fits(spec, pool, max_gpus, [mid], *workload).any() else (low, mid)
            return (f"at most {low} concurrent request{'s' if low != 1 else ''} fit the KV cache of {max_gpus} "
                    f"{'/'.join(g.name for g in pool)} (the smallest {spell('batches')} is {min(batches)}): try {spell('batches')} {low}")
        # The smallest GPU count that fits, found in the candidate table of the next doubling of --max-gpus
        # that holds one (the counts a layout can use, e.g. 24 = tp8 x pp3 for 126 layers, not only powers of two).
        more = next((fit for fit in (_smallest_fit(spec, pool, n, batches, *workload)
                                     for n in (max_gpus * 2 ** k for k in range(1, 13))
                                     if n <= min(SUGGEST_MAX_GPUS, MAX_GPUS)) if fit), None)

        hw = hardware_catalog()
        rented = {hw.canonical(g) for g in shipped_prices().gpu_hour_usd}
        others = [g for name, g in hw.specs.items() if name not in {p.name for p in pool}]
        fits = _fits(spec, others, max_gpus, batches, *workload) if others else np.zeros(0, bool)
        alternatives = sorted((g for g, ok in zip(others, fits) if ok), key=lambda g: (g.name not in rented, g.mem_gb))
    except Exception:  # noqa: BLE001 (the reason is still told; only the suggestion is lost)
        return ""
    options = [f"{spell('max_gpus')} {more}"] if more else []
    if alternatives:
        named = [f"{g.name} ({g.mem_gb:g} GB)" for g in alternatives[:3]]
        options.append(f"{spell('gpus')} " + (", ".join(named[:-1]) + " or " + named[-1] if len(named) > 1 else named[0]))
    if not options:
        return (f"no catalog GPU fits it at {spell('max_gpus')} {max_gpus}, nor {', '.join(g.name for g in pool)} up to "
                f"{SUGGEST_MAX_GPUS} GPUs: {_largest_limit(spec, pool, batches, workload, spell)}")
    return "try " + ", or ".join(options)


def _workload(cand: pd.DataFrame):
    """(model spec, GPU specs, batches, (input, output, visual tokens)) of a candidate table, to search it again."""
    row = cand.iloc[0]
    fields = {k: row[k] for k in ("params_total_b", "params_active_b", "layers", "hidden_size", "heads", "kv_heads",
                                  "head_dim", "experts", "active_experts", "vision_params_b", "ssm_state_mb",
                                  "kv_cache_dim", "sliding_window", "sliding_layers")}
    attention = row["attention_layers"]
    spec = ModelSpec(name=str(row["model"]), arch=str(row["arch"]), precision=str(row["precision"]),
                     attention_layers=None if pd.isna(attention) else int(attention), **fields)
    first = cand.drop_duplicates("gpu")
    pool = [GpuSpec(name=str(r["gpu"]), **{field: float(r[col]) for col, field in HARDWARE_COLUMNS.items()})
            for _, r in first.iterrows()]
    batches = [int(b) for b in pd.unique(cand["batch_size"])]
    return spec, pool, batches, (float(row["input_tokens"]), float(row["output_tokens"]), float(row["visual_tokens"]))


def _fit_mask(spec, gpus, max_gpus: int, batches, input_tokens: float, output_tokens: float, visual_tokens: float):
    """(candidate table, features, rows that pass recommend's structural and memory checks)."""
    df = candidate_table(spec, gpus, max_gpus, batches, input_tokens, output_tokens, visual_tokens=visual_tokens)
    f = compute_features(df)
    no_room, over = _memory_masks(df, f)
    return df, f, (df["reason"] == "").to_numpy() & ~no_room & ~over


def _smallest_fit(spec, gpus, max_gpus: int, batches, *workload) -> int | None:
    """The fewest GPUs of any deployment of at most `max_gpus` of `gpus` that passes the memory check (None: none)."""
    df, _, ok = _fit_mask(spec, gpus, max_gpus, batches, *workload)
    return int(df["num_gpus"].to_numpy()[ok].min()) if ok.any() else None


def _largest_limit(spec, pool, batches, workload, spell) -> str:
    """What still fails at SUGGEST_MAX_GPUS GPUs of the pool: the weights (the layer and head counts cap how far
    tensor and pipeline parallelism split them) or one request's KV cache (then shorter requests help)."""
    df, f, _ = _fit_mask(spec, pool, SUGGEST_MAX_GPUS, batches, *workload)
    valid = (df["reason"] == "").to_numpy()
    group = np.where(valid, (df["tp"] * df["pp"]).to_numpy(), 0)
    i = int(np.argmax(group))
    weights_gb, mem = f.weight_bytes[i] / 1e9, float(df["gpu_mem_gb"].iloc[i])
    if weights_gb >= group[i] * mem:
        return (f"the {weights_gb:.0f} GB of weights split at most {group[i]} ways (tp{df['tp'].iloc[i]}·pp"
                f"{df['pp'].iloc[i]}: {spec.layers} layers, {spec.heads} heads, tensor parallelism within a node of "
                f"{NODE_GPUS}) and {group[i]} x {mem:.0f} GB cannot hold them: give a GPU with more memory")
    return f"one request's KV cache does not fit: shorten {spell('input_tokens')} / {spell('output_tokens')}"


def _fits(spec, gpus, max_gpus: int, batches, input_tokens: float, output_tokens: float, visual_tokens: float):
    """For each GPU of `gpus`: whether any deployment of at most `max_gpus` of it passes recommend's memory check."""
    df, _, ok = _fit_mask(spec, gpus, max_gpus, batches, input_tokens, output_tokens, visual_tokens)
    return np.array([ok[(df["gpu"] == g.name).to_numpy()].any() for g in gpus])


def _slo_binding(res: pd.DataFrame, itl_slo_ms, ttft_slo_ms,
                 spell=lambda name: "--" + name.replace("_", "-")) -> list[str]:
    """Which SLO binds, with the best predicted figure, and the smallest relaxation that admits a deployment."""
    itl, ttft = res["itl_ms"].to_numpy(), res["ttft_ms"].to_numpy()
    itl_opt, ttft_opt = spell("itl_slo_ms"), spell("ttft_slo_ms")
    itl_ok = itl <= itl_slo_ms if itl_slo_ms is not None else np.ones(len(res), bool)
    ttft_ok = ttft <= ttft_slo_ms if ttft_slo_ms is not None else np.ones(len(res), bool)
    parts, tries = [], []
    if not itl_ok.any():
        parts.append(f"best predicted ITL {itl.min():.1f} ms exceeds the ITL SLO {itl_slo_ms:g} ms")
    if not ttft_ok.any():
        parts.append(f"best predicted TTFT {ttft.min():.0f} ms exceeds the TTFT SLO {ttft_slo_ms:g} ms")
    if itl_ok.any() and ttft_ok.any():  # each is met by some deployment, never both by one
        parts.append(f"no deployment meets both the TTFT SLO {ttft_slo_ms:g} ms and the ITL SLO {itl_slo_ms:g} ms "
                     f"(lowest TTFT {ttft.min():.0f} ms, lowest ITL {itl.min():.1f} ms)")
        tries = [f"{itl_opt} {_above(itl[ttft_ok].min())}", f"{ttft_opt} {_above(ttft[itl_ok].min())}"]
    else:  # relax the SLOs no deployment meets, each to the best figure among those meeting the other
        if not itl_ok.any():
            tries.append(f"{itl_opt} {_above(itl[ttft_ok].min() if ttft_ok.any() else itl.min())}")
        if not ttft_ok.any():
            tries.append(f"{ttft_opt} {_above(ttft[itl_ok].min() if itl_ok.any() else ttft.min())}")
        if not itl_ok.any() and not ttft_ok.any():  # one deployment must meet both relaxed SLOs
            best = np.argmin(np.maximum(itl / itl_slo_ms, ttft / ttft_slo_ms))
            tries = [f"{itl_opt} {_above(itl[best])} {ttft_opt} {_above(ttft[best])}"]
    joint = " (together)" if len(tries) == 1 and itl_opt in tries[0] and ttft_opt in tries[0] else ""
    parts.append(f"try {' or '.join(tries)}{joint}, or more or faster GPUs; {ttft_opt} none / {itl_opt} none lift them")
    return parts


def _above(ms: float) -> str:
    """A round SLO just above a predicted latency: 15.17 -> '16', 0.42 -> '0.5', 1234.5 -> '1300'."""
    if ms <= 0:
        return "1"
    step = 10 ** (math.floor(math.log10(ms)) - 1)  # two significant digits
    value = math.ceil(ms / step * (1 + 1e-9)) * step
    return f"{value:.10g}"
