"""Rank feasible deployments by predicted energy per request, under latency SLOs."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..catalog import hardware_catalog, model_catalog, model_from_hf_config
from ..errors import EnergyLensError, InfeasibleError
from ..io import clip, visible
from ..features.physics import compute_features
from ..model.serving import DEFINITION as SERVING_DEFINITION
from ..model.predictor import _rows, described, prepare
from ..model.terms import GROUPS
from . import objectives
from .request import (CLI, DEFAULT_ITL_SLO_MS, DEFAULT_TTFT_SLO_MS, MAX_BATCH, MAX_GPUS, MAX_TOKENS, PYTHON,  # noqa: F401
                      RecommendOptions, RequestError, check_candidates, python_signature)
from .result import Recommendation, distinct_ranks
from .space import DEFAULT_BATCHES, candidate_table

# The configuration columns of recommend's table, in order.
SHOWN = ("model", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size")
# The limits and default SLOs are declared with the options (request.py), imported above.
SLO_SOURCE = "MLPerf Inference server scenario (Llama-2-70B: TTFT 2 s, TPOT 200 ms)"
# What the columns of a recommendation mean (printed with `recommend --json`).
RECOMMEND_COLUMN_NOTES = {
    "energy_request_j": "predicted GPU energy per request, all GPUs of the deployment, prefill included (J)",
    "energy_token_j": "energy_request_j per output token (J)",
    "prefill_energy_j": "the prefill phase of energy_request_j: every term's prefill part (J)",
    "decode_energy_j": "the decode phase of energy_request_j (J)",
    "prefill_phase_pct": "prefill_energy_j as a share of energy_request_j (%)",
    "<group>_pct": "share of energy_request_j in one term group of docs/MODEL.md (%): prefill_pct holds the prompt-compute "
                   "terms only (the weights read during prefill are in decode_pct's group), so it differs from prefill_phase_pct",
    "ttft_ms": "time to first token of a request served under continuous batching with chunked prefill (ms)",
    "itl_ms": "mean inter-token latency (TPOT) of such a request: a decode step plus interleaved prompt chunks (ms)",
    "latency_s": "its end-to-end latency: TTFT + (output tokens - 1) x ITL (s)",
    "batch_prefill_ms": "prefill time of the whole batch's prompts arriving together, as profilers measure TTFT (ms)",
    "decode_step_ms": "time of one decode step of the running batch (ms)",
}


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
    from pathlib import Path

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
    valid = (df["reason"] == "").to_numpy()
    no_room = ~f.kv_fits & valid
    over = (df["batch_size"].to_numpy() / df["dp"].to_numpy() > 1.02 * f.batch) & valid & ~no_room
    return df, f, no_room, over


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
    from ..model.default import default_model
    from ..model.modelfile import load_model

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
                                   opts.region, opts.pue, hw)
    gpu_specs = _resolve_gpus(gpus, hw=hw, hint=opts.unknown_hint("gpus"))
    objectives.require_prices(costs, [g.name for g in gpu_specs], objective, spell)
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
        ok[est.engine_column] = engine
    pred = est.predict_arrays(ok, f_ok, intervals=False, breakdown=True)
    res = ok[list(SHOWN)].copy()
    res["energy_request_j"] = pred["pred_energy_request_j"]
    res["energy_token_j"] = pred["pred_energy_token_j"]
    res["prefill_energy_j"] = pred["pred_prefill_energy_j"]
    res["decode_energy_j"] = pred["pred_decode_energy_j"]
    res["ttft_ms"] = 1e3 * pred["pred_serving_ttft_s"]
    res["itl_ms"] = 1e3 * pred["pred_serving_itl_s"]
    res["latency_s"] = pred["pred_serving_latency_s"]
    res["batch_prefill_ms"] = 1e3 * pred["pred_ttft_s"]  # the whole batch's prompts at once
    res["decode_step_ms"] = 1e3 * pred["pred_itl_s"]
    for g in GROUPS:
        res[f"{g}_pct"] = pred[f"{g}_pct"]
    # The share of the prefill *phase* (every term's prefill part), beside the share of the prefill *term group*.
    res["prefill_phase_pct"] = 100 * res["prefill_energy_j"] / res["energy_request_j"]
    slo_ok = np.ones(len(res), bool)
    if itl_slo_ms is not None:
        slo_ok &= res["itl_ms"].to_numpy() <= itl_slo_ms
    if ttft_slo_ms is not None:
        slo_ok &= res["ttft_ms"].to_numpy() <= ttft_slo_ms
    if not slo_ok.any():
        raise InfeasibleError(_why(cand, res, itl_slo_ms, ttft_slo_ms, f, no_room, over, spell))
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
    return Recommendation(res, opts)


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
        return max(engines, key=lambda g: engines[g]["rows"])
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
    """Why nothing is recommended; with the memory check's (f, no_room, over), its reasons are written first."""
    if f is not None:
        _memory_reasons(cand, f, no_room, over)
    reasons = cand["reason"].replace("", np.nan).dropna()
    parts = []
    if len(reasons):
        kinds = reasons.str.split(":").str[0].value_counts()
        for kind, n in kinds.items():
            example = reasons[reasons.str.startswith(kind)].iloc[0]
            parts.append(f"{n} of {len(cand)} candidates fail on {kind} (e.g. {example.split(': ', 1)[1]})")
    if res is not None and len(res):
        itl_ok = res["itl_ms"] <= itl_slo_ms if itl_slo_ms is not None else True
        ttft_ok = res["ttft_ms"] <= ttft_slo_ms if ttft_slo_ms is not None else True
        if itl_slo_ms is not None and not np.any(itl_ok):
            parts.append(f"best predicted ITL {res['itl_ms'].min():.1f} ms exceeds the ITL SLO {itl_slo_ms:g} ms")
        if ttft_slo_ms is not None and not np.any(ttft_ok):
            parts.append(f"best predicted TTFT {res['ttft_ms'].min():.0f} ms exceeds the TTFT SLO {ttft_slo_ms:g} ms")
        if itl_slo_ms is not None and ttft_slo_ms is not None and np.any(itl_ok) and np.any(ttft_ok):
            parts.append(f"no deployment meets both the TTFT SLO {ttft_slo_ms:g} ms and the ITL SLO {itl_slo_ms:g} ms "
                         f"(lowest TTFT {res['ttft_ms'].min():.0f} ms, lowest ITL {res['itl_ms'].min():.1f} ms)")
        parts.append(f"{spell('ttft_slo_ms')} none / {spell('itl_slo_ms')} none lift them")
    return "no feasible deployment: " + "; ".join(parts) if parts else "no feasible deployment"
