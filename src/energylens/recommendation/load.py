"""Capacity and energy at the traffic a deployment actually serves: `recommend --rate R` and `--trace FILE`.

Saturation ranks deployments with every GPU busy at the listed batch. At a real request rate the GPUs also
wait, and a waiting GPU draws its idle power, so the best deployment at 2 requests/s need not be the best at
saturation. For each candidate replica layout (GPU type, tp, pp, ep: the GPUs of one serving engine) this
module

1. turns the fitted model into the simulation's step time (`traffic.StepTime`) and a power per step, by
   evaluating the model's own formula (model/structure.py, `Structure.evaluate`) on a grid of running
   batches and prompt lengths at the workload's mean lengths (`replica_models`):
   - decode: t_step at batch T = d0 + d1 T + a_c (T x context) + table[T], where a_c is the slope in the
     context tokens (two mean contexts), d1 the slope of the last grid segment (per-token work once MoE
     experts are all touched and pipeline stages all busy), d0 the lowest intercept that keeps the table
     >= 0, and the table what is left (exactly 0 for a dense model without pipeline bubbles; the experts
     a MoE step touches; the stage slots of a pipeline at small batches), indexed by the step's tokens;
   - prefill: t_prefill of one prompt of L tokens fitted as p0 + p1 L + p2 L(L+1)/2 (non-negative least
     squares on a grid of L); p1 per prompt token and p2 per prefill attention pair join the step time, p0
     does not (a mixed step reads the weights once: the decode part's constant holds that);
   - power: the model's dynamic demand (u x t / corr_power, the same terms a_flop w_flop + a_mem w_mem +
     a_comm w_comm + a_launch t_launch) decomposed the same way, so a step of (d, c, p, q) with b requests
     draws p_static + (TDP - p_static) sat(slots u) / slots with u = corr_power(b) x demand / t: the
     model's p_decode and p_prefill, within [static, TDP] (a test checks a pure decode step against the
     model's p_decode);
2. simulates the traffic on it (traffic.simulate: continuous batching with chunked prefill, least-loaded
   router): every request alone first (the best any replica count can do: a layout that misses the SLOs
   alone is out), then a closed loop at max_num_seqs (the sustainable rate of one replica, and the energy
   per request at saturation), then the fewest replicas whose pXX TTFT and TPOT meet the SLOs
   (traffic.fewest_replicas, from the stability floor rate / sustainable rate);
3. prices every recorded step at its power over its time, on every GPU of its replica, and every GPU's
   waiting time (the horizon less its replica's busy time) at idle power: energy per request at the load,
   its idle share, kWh/day = rate x 86,400 x J/request / 3.6e6, $/day (every GPU rented or owned all day,
   plus electricity where charged) and kgCO2e/day (facility energy x grid intensity).

Layouts are taken likeliest first (the model's closed-form energy at saturation, or the bound below where it
says more); one whose lower bound (`_bound`: its GPUs powered through the traffic window, stepping at least
while some request must be in flight, and no request cheaper than at saturation) already exceeds the
`top`-th best found is not simulated (counted as pruned). The layout the saturation ranking chose is always
simulated, to say whether the choice changes with the load.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import EnergyLensError, InfeasibleError
from ..features.physics import compute_features
from ..model.structure import power_law
from ..traffic import Engine, StepTime, Workload, fewest_replicas, poisson, read_trace, simulate
from ..traffic.capacity import alone
from .objectives import J_PER_KWH, OBJECTIVES
from .request import RATE_SWEEP, TRACE_SWEEP_SCALES, RecommendOptions

SECONDS_PER_DAY = 86_400
POISSON_REQUESTS = 5_000  # requests generated for a --rate (seeded; the same requests at every rate)
POISSON_SEED = 0
ROUTER = "least_loaded"  # what a load balancer in front of replicas does
MAX_REPLICAS = 4_096  # replicas the capacity search may try for one layout
SATURATION_REQUESTS = 2_000  # the closed loop at max_num_seqs runs on at least this many (or 4 x max_num_seqs)
_HUGE_MEMORY_GB = 1e9  # time-model rows: no KV-cache cap on the running batch (the simulation has its own)
_GRID_SMALL = 16  # every running batch 1..16 is on the grid (pipeline micro-batches change there)
_GRID_POINTS = 48  # geometric grid points above that, up to the token budget
_PREFILL_POINTS = 12

# What the columns of the load table mean (--json prints them with the rows).
LOAD_COLUMN_NOTES = {
    "rate_rps": "requests per second served (Poisson: the rate asked; a trace: its mean arrival rate x --rate-scale)",
    "replicas": "fewest replicas of the layout whose simulated TTFT and TPOT at the SLO percentile meet the SLOs",
    "gpus_per_replica": "GPUs of one replica (one serving engine)",
    "num_gpus": "replicas x gpus_per_replica: every GPU powered for this traffic",
    "max_num_seqs": "concurrent requests one replica's scheduler admits (vLLM's default for the GPU, or --batch)",
    "energy_request_j": "GPU energy per request at this load: every step at the model's power for it, every GPU's "
                        "waiting time at idle power (J)",
    "energy_token_j": "energy_request_j per output token (J)",
    "saturation_energy_request_j": "energy per request of one replica in a closed loop at max_num_seqs, priced the "
                                   "same way (the load's lower bound: every GPU busy)",
    "idle_energy_pct": "share of energy_request_j drawn by GPUs waiting at idle power (%)",
    "utilization": "busy share of every replica's time, from time 0 to the last step",
    "power_per_gpu_w": "mean power per GPU over the traffic: energy / (GPUs x horizon), within [idle, TDP] (W)",
    "kwh_per_day": "rate_rps x 86,400 x energy_request_j / 3.6e6: GPU energy per day at this rate (kWh)",
    "usd_per_day": "every GPU for 24 h at its GPU-hour price, plus electricity on facility energy where charged (USD)",
    "kgco2e_per_day": "kwh_per_day x PUE x grid intensity / 1000 (kgCO2e)",
    "ttft_ms": "simulated TTFT at the SLO percentile (ms)",
    "tpot_ms": "simulated TPOT (mean time per output token after the first) at the SLO percentile (ms)",
    "sustainable_rps": "requests/s one replica serves at saturation (closed loop at max_num_seqs)",
    "mean_batch": "time-averaged requests per step while a replica is busy",
    "saturation_rank": "the layout's best rank in the saturation ranking (empty: none of its rows met the SLOs there)",
    "saturation_choice": "whether this is the layout the saturation ranking chose (its rank 1)",
}


# ------------------------------------------------------------------------------------------------ the traffic


@dataclass(frozen=True, eq=False)
class Traffic:
    """One load to serve: its requests, the rate the daily figures use, and how it was made."""

    label: str
    rate_rps: float
    workload: Workload


def traffics(opts: RecommendOptions) -> list[Traffic]:
    """The loads a request asks for, lowest rate first: Poisson at each --rate (or the sweep), or the trace at
    --rate-scale (with --rate-sweep, at each multiple of it). A bad trace raises DataError (one line)."""
    if opts.trace is not None:
        base = read_trace(opts.trace)
        scales = [k * opts.rate_scale for k in TRACE_SWEEP_SCALES] if opts.rate_sweep else [opts.rate_scale]
        out = []
        for k in scales:
            w = base.scaled(k)
            out.append(Traffic(f"{w.source} ({len(w):,} requests)", w.offered_rate, w))
        return out
    rates = RATE_SWEEP if opts.rate_sweep else opts.rate
    mean_in = max(float(opts.input_tokens), 1.0)
    return [Traffic(f"Poisson {r:g}/s, lognormal lengths of mean {mean_in:g}/{opts.output_tokens:g} tokens "
                    f"(log-sd 1), {POISSON_REQUESTS:,} requests, seed {POISSON_SEED} (generated)", float(r),
                    poisson(r, input_tokens=mean_in, output_tokens=opts.output_tokens, requests=POISSON_REQUESTS,
                            seed=POISSON_SEED)) for r in sorted(rates)]


# ------------------------------------------------------------------------------------------------ time and power


@dataclass(frozen=True, eq=False)
class ReplicaModels:
    """Every candidate replica layout as the simulation and the pricing need it (one entry per layout)."""

    layouts: pd.DataFrame  # gpu, tp, pp, ep, dp, gpus_per_replica, max_num_seqs, budget, kv_cache_tokens, reason
    steps: list  # StepTime per layout (None where the layout cannot serve: see reason)
    engines: list  # traffic.Engine per layout
    demand: np.ndarray  # (k, 5) dynamic demand coefficients over x = (1, d, c, p, q), seconds
    demand_table: list  # per layout: demand added by tokens in the step (array of budget + 1, or None)
    grid: np.ndarray  # running batches the power corrections and stage slots are tabled at
    corr: np.ndarray  # (k, len(grid)) corr_power at each running batch
    slots: np.ndarray  # (k, len(grid)) pipeline stage slots at each running batch
    p_static: np.ndarray
    p_stepping: np.ndarray  # the lowest power per GPU the model gives a decode step on the grid (W)
    tdp: np.ndarray
    idle: np.ndarray
    gpus: np.ndarray  # GPUs per replica
    closed_form_j: np.ndarray  # the closed form's energy per request at max_num_seqs (the order layouts are tried in)


def _layouts(rows: pd.DataFrame, batches) -> pd.DataFrame:
    """Distinct replica layouts of the candidate rows, with their scheduler limits. A data-parallel copy is a
    replica of its layout (the load decides how many); expert parallelism across data-parallel ranks makes the
    whole pool one engine (as model/features do), whose scheduler takes dp times a rank's limits."""
    f = compute_features(rows)
    spans = (f.ep > 1) & (f.dp > 1)
    base = rows.copy()
    base["dp"] = np.where(spans, f.dp, 1).astype(np.int64)
    base["num_gpus"] = f.G.astype(np.int64)
    base["_ranks"] = np.where(spans, f.dp, 1.0)
    base = base.drop_duplicates(["gpu", "tp", "pp", "ep", "dp"]).reset_index(drop=True)
    limits = [Engine.vllm_default(str(g), float(m)) for g, m in zip(base["gpu"], base["gpu_mem_gb"])]
    seqs = np.array([e.max_num_seqs for e in limits])
    budget = np.array([e.max_num_batched_tokens for e in limits])
    if batches:
        n = len(base)
        base = base.loc[np.repeat(np.arange(n), len(batches))].reset_index(drop=True)
        budget = np.repeat(budget, len(batches))
        seqs = np.tile(np.asarray(list(batches), dtype=np.int64), n)
        budget = np.maximum(budget, seqs)  # vLLM requires a token budget of at least max_num_seqs
    ranks = base["_ranks"].to_numpy()
    base["max_num_seqs"] = (seqs * ranks).astype(np.int64)
    base["budget"] = (budget * ranks).astype(np.int64)
    base["gpus_per_replica"] = base["num_gpus"]
    return base.drop(columns="_ranks")


def _repeat(base: pd.DataFrame, idx: np.ndarray, **cols) -> pd.DataFrame:
    out = base.iloc[idx].reset_index(drop=True)
    for k, v in cols.items():
        out[k] = v
    return out


def _split(y: np.ndarray, grid: np.ndarray, top: int, positive: bool) -> tuple[float, float, np.ndarray | None]:
    """y on the grid (batches 1..top) as d0 + d1 T + table[T]: d1 the slope of the last segment, d0 the lowest
    intercept leaving table >= 0, the table on T = 0..top (None when it is 0 everywhere)."""
    keep = grid <= top
    g, v = grid[keep].astype(float), y[keep]
    d1 = max((v[-1] - v[-2]) / (g[-1] - g[-2]), 0.0) if len(g) > 1 else 0.0
    rest = v - d1 * g
    d0 = float(rest.min())
    if positive and d0 <= 0:  # every step takes time: keep a positive constant (what is left is clipped at 0)
        d0 = max(float(v.min()) * 1e-6, 1e-9)
    d0 = max(d0, 0.0)
    table = np.maximum(rest - d0, 0.0)
    if table.max() <= 1e-9 * max(abs(d0) + d1 * g[-1], 1e-300):
        return d0, d1, None
    full = np.interp(np.arange(top + 1), g, table)
    full[0] = full[1] if top >= 1 else full[0]
    return d0, d1, full


def _prefill_fit(L: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(per token, per attention pair) of y(L) ~ p0 + p1 L + p2 L(L+1)/2, non-negative, in relative error."""
    from scipy.optimize import nnls

    A = np.stack([np.ones_like(L), L, L * (L + 1) / 2], axis=1) / y[:, None]
    coef, _ = nnls(A, np.ones_like(y))
    return float(coef[1]), float(coef[2])


def replica_models(rows: pd.DataFrame, structure, coef, mean_in: float, mean_out: float, batches=None,
                   longest_prompt: int = 1) -> ReplicaModels:
    """The step time and power of every distinct replica layout among candidate `rows` (rows of the candidate
    table: descriptors filled), for a workload of these mean lengths (module docstring, step 1)."""
    lay = _layouts(rows, batches)
    k = len(lay)
    mean_in = max(float(mean_in), 1.0)
    ctx = mean_in + mean_out / 2
    top = int(lay["budget"].max())
    grid = np.unique(np.concatenate([np.arange(1, _GRID_SMALL + 1),
                                     np.round(np.geomspace(1, top, _GRID_POINTS)), lay["budget"].to_numpy(),
                                     lay["max_num_seqs"].to_numpy()])).astype(np.int64)
    n_g = len(grid)
    engines = np.maximum(compute_features(lay).engines, 1.0)
    idx = np.repeat(np.arange(k), n_g)
    t_col = np.tile(grid, k)
    dec = _repeat(lay, idx, batch_size=t_col * engines[idx], input_tokens=mean_in, output_tokens=float(mean_out),
                  gpu_mem_gb=_HUGE_MEMORY_GB)
    # The context slope at max_num_seqs: the same rows with longer prompts (every request's context grows by delta).
    delta = max(mean_in, 256.0)
    seqs = lay["max_num_seqs"].to_numpy()
    longer = _repeat(lay, np.arange(k), batch_size=seqs * engines, input_tokens=mean_in + delta,
                     output_tokens=float(mean_out), gpu_mem_gb=_HUGE_MEMORY_GB)
    L = np.unique(np.round(np.geomspace(1, max(top, longest_prompt, 2), _PREFILL_POINTS))).astype(float)
    pidx = np.repeat(np.arange(k), len(L))
    pf = _repeat(lay, pidx, batch_size=engines[pidx], input_tokens=np.tile(L, k), output_tokens=float(mean_out),
                 gpu_mem_gb=_HUGE_MEMORY_GB)
    # KV-cache capacity: the running batch the memory allows (the features' soft cap, asked for a huge batch).
    cap_rows = _repeat(lay, np.arange(k), batch_size=1e12 * engines, input_tokens=mean_in,
                       output_tokens=float(mean_out))
    table = pd.concat([dec, longer, pf, cap_rows], ignore_index=True)
    f = compute_features(table)
    with np.errstate(all="ignore"):
        val = structure.evaluate(f, coef)
    t_step, u_dec, corr = val["t_step"], val["u_dec"], val["corr_power"]
    n_dec = len(dec)
    sl = slice(0, n_dec)
    t1 = t_step[sl].reshape(k, n_g)
    dyn1 = (u_dec[sl] * t_step[sl] / corr[sl]).reshape(k, n_g)
    corr_grid = corr[sl].reshape(k, n_g)
    slots_grid = f.pp_slots[sl].reshape(k, n_g)
    closed = (val["e_prefill"][sl] + val["e_decode"][sl]).reshape(k, n_g)
    lo = slice(n_dec, n_dec + k)
    t2 = t_step[lo]
    dyn2 = u_dec[lo] * t_step[lo] / corr[lo]
    ps = slice(n_dec + k, n_dec + k + len(pf))
    t_pf = val["t_prefill"][ps].reshape(k, len(L))
    dyn_pf = (val["u_pf"][ps] * val["t_prefill"][ps] / corr[ps]).reshape(k, len(L))
    cs = slice(n_dec + k + len(pf), None)
    cap_batch, kv_fits = f.batch[cs], f.kv_fits[cs]
    p_static = val["p_static"][sl].reshape(k, n_g)[:, 0]
    p_stepping = np.nanmin(val["p_decode"][sl].reshape(k, n_g), axis=1)

    steps, engs, demand, demand_table, reasons, kv_tokens, closed_j = [], [], np.zeros((k, 5)), [], [], [], []
    for e in range(k):
        S, C = int(seqs[e]), int(lay["budget"].iloc[e])
        at_s = int(np.searchsorted(grid, S))
        reason = ""
        if not (np.isfinite(t1[e]).all() and np.isfinite(t_pf[e]).all() and np.isfinite(dyn1[e]).all()):
            reason = "the model's time or power is not finite for this layout"
        elif not kv_fits[e]:
            reason = "memory: the weights leave no KV-cache room for one request"
        if reason:
            steps.append(None), engs.append(None), demand_table.append(None), reasons.append(reason)
            kv_tokens.append(0), closed_j.append(math.inf)
            continue
        a_c = max((t2[e] - t1[e, at_s]) / (S * delta), 0.0)
        n_c = max((dyn2[e] - dyn1[e, at_s]) / (S * delta), 0.0)
        d0, d1, tab = _split(t1[e] - a_c * grid * ctx, grid, C, positive=True)
        n0, n1, ntab = _split(dyn1[e] - n_c * grid * ctx, grid, C, positive=False)
        p1, p2 = _prefill_fit(L, t_pf[e])
        q1, q2 = _prefill_fit(L, np.maximum(dyn_pf[e], 1e-300))
        steps.append(StepTime(np.array([d0, d1, a_c, p1, p2]), by_tokens=tab))
        cap = float(cap_batch[e])
        kv = None if not math.isfinite(cap) or cap >= 1e11 else int(max(cap, 1.0) * ctx)
        engs.append(Engine(S, C, None if kv is None else max(kv, 16)))
        demand[e] = [n0, n1, n_c, q1, q2]
        demand_table.append(ntab)
        reasons.append("")
        kv_tokens.append(kv if kv is not None else 0)
        closed_j.append(float(closed[e, at_s]))
    lay["kv_cache_tokens"] = kv_tokens
    lay["reason"] = reasons
    return ReplicaModels(lay, steps, engs, demand, demand_table, grid, corr_grid, slots_grid, p_static, p_stepping,
                         lay["gpu_tdp_w"].to_numpy(float), lay["gpu_idle_w"].to_numpy(float),
                         lay["gpus_per_replica"].to_numpy(float), np.array(closed_j))


def step_power(m: ReplicaModels, e: int, decoding, context, prefill, pairs, requests, seconds) -> np.ndarray:
    """Power per GPU (W) of steps of layout `e` with these contents and durations (arrays): the model's p_decode /
    p_prefill for what the step carries, within [p_static, TDP]."""
    d, c, p, q, b, seconds = np.broadcast_arrays(*(np.asarray(v) for v in
                                                  (decoding, context, prefill, pairs, requests, seconds)))
    k = m.demand[e]
    dem = k[0] + k[1] * d + k[2] * c + k[3] * p + k[4] * q
    if m.demand_table[e] is not None:
        dem = dem + m.demand_table[e][(d + p).astype(np.int64)]
    # corr_power and stage slots by running batch: tabled once at every whole batch up to the largest here
    b = np.maximum(np.asarray(b, np.int64), 1)
    every = np.arange(int(b.max()) + 1)
    corr = np.interp(np.log(np.maximum(every, 1)), np.log(m.grid), m.corr[e])[b]
    slots = np.interp(np.maximum(every, 1), m.grid, m.slots[e])[b]
    return power_law(m.p_static[e], m.tdp[e], corr * dem / seconds, slots)


@dataclass(frozen=True)
class Priced:
    """Energy of one simulation: busy GPUs at their step power, waiting GPUs at idle power."""

    energy_j: float
    idle_j: float
    busy_s: float  # replica-seconds stepping
    gpu_seconds: float  # every GPU over the horizon


def price(m: ReplicaModels, e: int, result, until_s: float | None = None) -> Priced:
    """Energy of a simulation of layout `e` (its step log), over its horizon, or over [0, until_s] (steps that
    start before it: a closed loop's steady state)."""
    log = result.step_log
    keep = slice(None) if until_s is None else log["start_s"] < until_s
    dt = log["duration_s"][keep]
    P = step_power(m, e, log["decoding"][keep], log["context_tokens"][keep], log["prefill_tokens"][keep],
                   log["prefill_pairs"][keep], log["requests"][keep], dt)
    G = m.gpus[e]
    busy_j = float(G * np.sum(P * dt))
    busy_s = float(np.sum(dt))
    horizon = result.horizon_s if until_s is None else float(until_s)
    waiting = max(result.replicas * horizon - busy_s, 0.0)
    idle_j = float(G * m.idle[e] * waiting)
    return Priced(busy_j + idle_j, idle_j, busy_s, G * result.replicas * horizon)


# ------------------------------------------------------------------------------------------------ serving


@dataclass
class _Cached:
    """What a layout's answer to one set of requests shares across rates: its requests alone, and saturation."""

    reason: str = ""
    latency_s: np.ndarray | None = None  # every request alone on a replica: TTFT + (output - 1) TPOT
    sustainable_rps: float = math.nan
    saturation_j: float = math.nan


def _lengths_key(w: Workload) -> str:
    h = hashlib.sha1(w.prompt_tokens.tobytes())
    h.update(w.output_tokens.tobytes())
    return h.hexdigest()


def _alone(m: ReplicaModels, e: int, w: Workload, slo: tuple, q: int) -> _Cached:
    """Every request alone on a replica: the best any replica count does. A layout missing an SLO so is out."""
    ttft, tpot = alone(w, m.steps[e], m.engines[e])
    t_q = float(np.percentile(ttft, q))
    tp = tpot[~np.isnan(tpot)]
    p_q = float(np.percentile(tp, q)) if tp.size else math.nan
    ttft_slo, tpot_slo = slo
    if ttft_slo is not None and t_q > ttft_slo:
        return _Cached(f"p{q} TTFT alone on a replica {1e3 * t_q:.4g} ms > SLO {1e3 * ttft_slo:g} ms")
    if tpot_slo is not None and p_q > tpot_slo:
        return _Cached(f"p{q} TPOT alone on a replica {1e3 * p_q:.4g} ms > SLO {1e3 * tpot_slo:g} ms")
    return _Cached("", ttft + np.nan_to_num(tpot) * (w.output_tokens - 1))


def _saturation(m: ReplicaModels, e: int, w: Workload, c: _Cached) -> None:
    """One replica in a closed loop at max_num_seqs: its sustainable rate and energy per request (into `c`)."""
    step, eng = m.steps[e], m.engines[e]
    # The closed loop ignores arrival times: every k-th request keeps the length mix at a fraction of the cost.
    stride = max(1, len(w) // max(SATURATION_REQUESTS, 4 * eng.max_num_seqs))
    if stride > 1:
        w = Workload(w.arrival_s[::stride], w.prompt_tokens[::stride], w.output_tokens[::stride], w.source)
    try:
        res = simulate(w, step, engine=eng, concurrency=eng.max_num_seqs, record_steps=True)
    except EnergyLensError as exc:  # a request larger than the KV cache
        c.reason = f"memory: {exc}"
        return
    # The steady state: until the last request is issued (after it, the loop drains at a falling batch).
    until = float(res.workload.arrival_s[-1])
    finish = res.workload.arrival_s + res.latency_s
    done = int(np.sum(finish <= until))
    if until <= 0 or done < max(10, len(w) // 10):  # too few requests to reach a steady state: the whole run
        until, done = res.horizon_s, len(w)
    c.sustainable_rps = done / until
    c.saturation_j = price(m, e, res, until).energy_j / done


def busy_floor(arrival_s: np.ndarray, latency_s: np.ndarray) -> float:
    """Seconds during which some replica must be stepping: the union of [arrival, arrival + latency alone] over
    the requests (a replica holding a request steps, and no request finishes sooner than alone)."""
    end = np.maximum.accumulate(arrival_s + latency_s)
    new = np.ones(len(arrival_s), bool)
    new[1:] = arrival_s[1:] > end[:-1]
    block = np.cumsum(new) - 1
    starts = arrival_s[new]
    ends = np.zeros(len(starts))
    np.maximum.at(ends, block, end)
    return float(np.sum(ends - starts))


def _serve(m: ReplicaModels, e: int, t: Traffic, sat: _Cached, slo: tuple, q: int) -> dict | str:
    """One layout at one load: its row, or why it cannot serve it."""
    ttft_slo, tpot_slo = slo
    try:
        cap = fewest_replicas(t.workload, m.steps[e], ttft_slo_s=ttft_slo, tpot_slo_s=tpot_slo, percentile=q,
                              engine=m.engines[e], router=ROUTER, max_replicas=MAX_REPLICAS,
                              sustainable=sat.sustainable_rps, record_steps=True)
    except InfeasibleError as exc:
        return str(exc)
    res = cap.result
    pr = price(m, e, res)
    n = len(t.workload)
    mean_out = float(np.mean(t.workload.output_tokens))
    j = pr.energy_j / n
    return {"replicas": cap.replicas, "num_gpus": int(cap.replicas * m.gpus[e]),
            "energy_request_j": j, "energy_token_j": j / mean_out,
            "saturation_energy_request_j": sat.saturation_j, "idle_energy_pct": 100 * pr.idle_j / pr.energy_j,
            "utilization": pr.busy_s / (cap.replicas * res.horizon_s), "power_per_gpu_w": pr.energy_j / pr.gpu_seconds,
            "ttft_ms": 1e3 * res.percentile("ttft_s", q), "tpot_ms": 1e3 * res.percentile("tpot_s", q),
            "sustainable_rps": sat.sustainable_rps, "mean_batch": float(np.mean(res.mean_batch)),
            "preemptions": int(res.preemptions.sum()), "_mean_out": mean_out}


def _daily(row: dict, rate: float, gpu: str, costs) -> None:
    """kWh, USD and kgCO2e per day, and the per-request cost and carbon columns, from energy per request."""
    kwh = rate * SECONDS_PER_DAY * row["energy_request_j"] / J_PER_KWH
    pue, grid = costs.pue.value, costs.grid_gco2_per_kwh.value
    elec = costs.electricity_usd_per_kwh.value
    price_h = costs.price(gpu)
    usd = (row["num_gpus"] * 24 * price_h.value + kwh * pue * elec) if price_h is not None else math.nan
    row["kwh_per_day"] = kwh
    row["usd_per_day"] = usd
    row["kgco2e_per_day"] = kwh * pue * grid / 1000
    requests_day = rate * SECONDS_PER_DAY
    row["cost_usd_per_million_tokens"] = usd / (requests_day * row["_mean_out"]) * 1e6
    row["carbon_gco2e_per_1000_requests"] = 1000 * row["energy_request_j"] * pue / J_PER_KWH * grid


def _bound(objective: str, c: _Cached, m: ReplicaModels, e: int, t: Traffic, costs) -> float:
    """A lower bound of the objective at this load without simulating it. Energy: every GPU is powered through
    the traffic window; while some replica steps (at least `busy_floor`) its GPUs draw at least the lowest power
    the model gives a stepping GPU, otherwise at least idle power (both by construction); and (once the closed loop
    has run) no request costs less than at saturation, where it kept its replica busy 1/sustainable_rps seconds
    (the physics of load the tests check, not a theorem)."""
    w = t.workload
    n, window, G = len(w), float(w.arrival_s[-1]), m.gpus[e]
    sus = c.sustainable_rps
    floor = max(1, math.ceil(t.rate_rps / sus)) if sus > 0 else 1
    busy = busy_floor(w.arrival_s, c.latency_s)
    j = G * (m.p_stepping[e] * busy + m.idle[e] * max(floor * window - busy, 0.0)) / n
    if math.isfinite(c.saturation_j):
        j = max(j, c.saturation_j + G * m.idle[e] * max(floor * window - n / sus, 0.0) / n)
    if objective == "energy":
        return j
    pue = costs.pue.value
    if objective == "carbon":
        return 1000 * j * pue / J_PER_KWH * costs.grid_gco2_per_kwh.value
    price_h = costs.price(str(m.layouts["gpu"].iloc[e]))
    if price_h is None:
        return math.inf
    mean_out = float(np.mean(w.output_tokens))
    usd = floor * G * price_h.value / 3600 * window / n + j * pue / J_PER_KWH * costs.electricity_usd_per_kwh.value
    return usd / mean_out * 1e6


# ------------------------------------------------------------------------------------------------ the answer


@dataclass
class LoadResult:
    """The ranking at each load (`table`: one row per layout that serves it, ranked within each rate), the load
    curve (`curve`: the best layout per rate, with the saturation choice beside it) and how it was found."""

    table: pd.DataFrame
    curve: pd.DataFrame
    traffics: list = field(default_factory=list)  # Traffic per rate, lowest first
    notes: dict = field(default_factory=dict)  # percentile, SLOs, router, counts and reasons per rate

    def at(self, rate: float | None = None) -> pd.DataFrame:
        """The ranking at one rate (default: the only one, or the highest)."""
        rates = self.curve["rate_rps"].to_numpy()
        r = rates[-1] if rate is None else rates[int(np.argmin(np.abs(rates - rate)))]
        return self.table[self.table["rate_rps"] == r]

    def to_dict(self, top: int) -> dict:
        from .result import _records

        shown = self.table[self.table["rank"] <= top]
        return {"traffic": [{"rate_rps": t.rate_rps, "source": t.label, "requests": len(t.workload)}
                            for t in self.traffics],
                **self.notes, "columns": LOAD_COLUMN_NOTES, "curve": _records(self.curve),
                "ranking": _records(shown)}


LAYOUT_COLUMNS = ("gpu", "tp", "pp", "ep", "dp", "gpus_per_replica", "max_num_seqs")


def _describe(row) -> str:
    from .result import layout

    return f"{row['gpu']} x{int(row['gpus_per_replica'])} {layout(row['tp'], row['pp'], row['ep'], row['dp'])}"


def at_load(opts: RecommendOptions, structure, coef, rows: pd.DataFrame, costs, saturation: pd.DataFrame | None,
            loads: list[Traffic] | None = None) -> LoadResult:
    """Rank the replica layouts of candidate `rows` by the objective at each load of `opts` (module docstring).
    `saturation`: the saturation ranking (its rank 1 is always simulated, to compare). Raises InfeasibleError
    when no layout serves any of the loads."""
    loads = traffics(opts) if loads is None else loads
    objective = opts.objective
    column = OBJECTIVES[objective][0]
    q = int(opts.slo_percentile)
    slo = (None if opts.ttft_slo_ms is None else opts.ttft_slo_ms / 1e3,
           None if opts.itl_slo_ms is None else opts.itl_slo_ms / 1e3)
    batches = list(opts.batches) if opts.batches else None
    models: dict[str, ReplicaModels] = {}
    cached: dict[tuple, _Cached] = {}
    sat_key = _saturation_key(saturation)
    out_rows, curve, per_rate = [], [], []
    for t in loads:
        w = t.workload
        key = _lengths_key(w)
        if key not in models:
            models[key] = replica_models(rows, structure, coef, float(np.mean(w.prompt_tokens)),
                                         float(np.mean(w.output_tokens)), batches, int(w.prompt_tokens.max()))
        m = models[key]
        lay = m.layouts
        forced = {e for e in range(len(lay)) if sat_key is not None and _key(lay.iloc[e]) == sat_key}
        found: list[float] = []
        reasons: dict[str, int] = {}
        pruned = simulated = 0
        rate_rows = []
        live, first_bound = [], {}
        for e in range(len(lay)):  # every request alone: free, and it rules out layouts too slow for the SLOs
            why = lay["reason"].iloc[e]
            if not why:
                ck = (key, e)
                if ck not in cached:
                    cached[ck] = _alone(m, e, w, slo, q)
                why = cached[ck].reason
            if why:
                reasons[_kind(why)] = reasons.get(_kind(why), 0) + 1
                continue
            live.append(e)
            first_bound[e] = _bound(objective, cached[(key, e)], m, e, t, costs)
        # Likeliest best first: the closed form at saturation, or the bound where it says more.
        for e in sorted(live, key=lambda e: max(first_bound[e], m.closed_form_j[e] if objective == "energy" else 0)):
            c = cached[(key, e)]

            def beaten() -> bool:  # the `top`-th best found already beats this layout's lower bound
                return (len(found) >= opts.top and e not in forced
                        and _bound(objective, c, m, e, t, costs) > sorted(found)[opts.top - 1])

            if beaten():
                pruned += 1
                continue
            if not math.isfinite(c.sustainable_rps) and not c.reason.startswith("memory"):
                _saturation(m, e, w, c)
            if c.reason:
                reasons[_kind(c.reason)] = reasons.get(_kind(c.reason), 0) + 1
                continue
            if beaten():
                pruned += 1
                continue
            simulated += 1
            got = _serve(m, e, t, c, slo, q)
            if isinstance(got, str):
                reasons[_kind(got)] = reasons.get(_kind(got), 0) + 1
                continue
            row = {"rate_rps": t.rate_rps, **{c: lay[c].iloc[e] for c in LAYOUT_COLUMNS}, **got}
            _daily(row, t.rate_rps, str(row["gpu"]), costs)
            row["saturation_choice"] = e in forced
            rate_rows.append(row)
            if math.isfinite(row[column]):
                found.append(row[column])
        frame = pd.DataFrame(rate_rows)
        if len(frame):
            frame = frame.sort_values(column, kind="stable", na_position="last").reset_index(drop=True)
            frame.insert(0, "rank", np.arange(1, len(frame) + 1))
            out_rows.append(frame)
        curve.append(_curve_row(t, frame, column))
        per_rate.append({"rate_rps": t.rate_rps, "layouts": int(len(lay)), "simulated": simulated, "pruned": pruned,
                         "served": int(len(frame)), "not_served": reasons})
    if not out_rows:
        why = "; ".join(f"{n} x {r}" for r, n in sorted(per_rate[-1]["not_served"].items(), key=lambda kv: -kv[1]))
        raise InfeasibleError(f"no layout serves the load at the SLOs: {why}" if why else "no layout serves the load")
    table = pd.concat(out_rows, ignore_index=True)
    table["saturation_rank"] = _saturation_ranks(table, saturation)
    table = table.drop(columns=["_mean_out"])
    curve_frame = pd.DataFrame(curve)
    notes = {"slo_percentile": q, "ttft_slo_ms": opts.ttft_slo_ms, "tpot_slo_ms": opts.itl_slo_ms, "router": ROUTER,
             "objective": objective, "per_rate": per_rate,
             "saturation_choice": _describe_saturation(saturation),
             "definition": "energy at the load = every simulated engine step at the model's power for what it "
                           "carries, on every GPU of its replica, plus every GPU's waiting time at idle power, over "
                           "the simulated horizon (time 0 to the last step), per request served"}
    return LoadResult(table, curve_frame, list(loads), notes)


def _kind(reason: str) -> str:
    """A reason without its numbers, to count alike ones together ('p99 TTFT alone ... > SLO 2000 ms')."""
    return reason if len(reason) < 90 else reason[:87] + "..."


def _key(row) -> tuple:
    return (str(row["gpu"]), int(row["tp"]), int(row["pp"]), int(row["ep"]),
            int(row["dp"]) if int(row["ep"]) > 1 and int(row["dp"]) > 1 else 1)


def _saturation_key(saturation: pd.DataFrame | None):
    if saturation is None or not len(saturation):
        return None
    return _key(saturation.iloc[0])


def _describe_saturation(saturation) -> str:
    if saturation is None or not len(saturation):
        return ""
    from .result import deployment

    return deployment(saturation.iloc[0])


def _saturation_ranks(table: pd.DataFrame, saturation: pd.DataFrame | None) -> np.ndarray:
    if saturation is None or not len(saturation):
        return np.full(len(table), np.nan)
    def keys(df):
        spans = (df["ep"].to_numpy() > 1) & (df["dp"].to_numpy() > 1)
        return pd.DataFrame({"gpu": df["gpu"].astype(str).to_numpy(), "tp": df["tp"].to_numpy(int),
                             "pp": df["pp"].to_numpy(int), "ep": df["ep"].to_numpy(int),
                             "dp": np.where(spans, df["dp"].to_numpy(int), 1)})

    sat = keys(saturation)
    sat["saturation_rank"] = saturation["rank"].to_numpy(float)
    best = sat.groupby(["gpu", "tp", "pp", "ep", "dp"], as_index=False)["saturation_rank"].min()
    return keys(table).merge(best, how="left", on=["gpu", "tp", "pp", "ep", "dp"])["saturation_rank"].to_numpy(float)


CURVE_FIELDS = ("replicas", "num_gpus", "max_num_seqs", "energy_request_j", "energy_token_j", "kwh_per_day",
                "usd_per_day", "kgco2e_per_day", "cost_usd_per_million_tokens", "carbon_gco2e_per_1000_requests",
                "utilization", "idle_energy_pct", "power_per_gpu_w", "ttft_ms", "tpot_ms",
                "saturation_energy_request_j")


def _curve_row(t: Traffic, frame: pd.DataFrame, column: str) -> dict:
    row = {"rate_rps": t.rate_rps, "traffic": t.label}
    if not len(frame):
        row.update({"deployment": "", "choice_changes": None})
        return row
    best = frame.iloc[0]
    row["deployment"] = _describe(best)
    for c in (*LAYOUT_COLUMNS, *CURVE_FIELDS):
        row[c] = best[c]
    sat = frame[frame["saturation_choice"]]
    if len(sat):
        s = sat.iloc[0]
        row["saturation_choice_replicas"] = int(s["replicas"])
        row["saturation_choice_energy_request_j"] = float(s["energy_request_j"])
        row[f"saturation_choice_{column}"] = float(s[column])
        row["choice_changes"] = not bool(best["saturation_choice"])
        row["saving_vs_saturation_choice_pct"] = 100 * (1 - best[column] / s[column]) if s[column] else 0.0
    else:
        row["choice_changes"] = None  # the saturation choice cannot serve this load at the SLOs
    return row
