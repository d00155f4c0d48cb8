"""The fewest replicas that serve a workload within latency SLOs: `fewest_replicas`.

A replica count qualifies when the simulated p-th percentile (50, 90 or 99) of TTFT and of TPOT are at
or below their SLOs and the replicas can keep up with the offered rate: replicas x sustainable rate >=
offered rate, where a replica's sustainable rate is its throughput in a closed loop at `max_num_seqs`
concurrent requests of this workload (a finite trace can meet an SLO while a queue grows that would not
drain in steady state; the floor rules that out).

The search assumes more replicas never hurt the percentiles: it starts at the stability floor, doubles
until the SLOs are met, then bisects between the last count that failed and the first that met. Before
searching, each request's TTFT and TPOT alone on a replica (the best any replica count can do) are
computed in closed form (`alone`: the steps a lone request takes are known, so no simulation is needed;
a test checks it against a closed loop at concurrency 1); if that misses an SLO no count meets it and
`InfeasibleError` says by how much. With one replica per request every request is alone, so the search
ends by then at the latest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import EnergyLensError, InfeasibleError
from ..io import clip
from .simulate import PERCENTILES, Engine, SimulationResult, simulate
from .steptime import StepTime
from .workload import Workload


@dataclass(frozen=True, eq=False)
class Capacity:
    """The answer of `fewest_replicas`: the count, its simulation, and the counts tried on the way."""

    replicas: int
    result: SimulationResult
    percentile: int
    ttft_slo_s: float
    tpot_slo_s: float
    offered_rate: float  # requests/s of the workload
    sustainable_rate: float  # requests/s one replica serves at saturation (closed loop at max_num_seqs)
    trials: tuple  # (replicas, pXX TTFT s, pXX TPOT s, met) in the order simulated

    @property
    def stability_floor(self) -> int:
        return _floor(self.offered_rate, self.sustainable_rate)


def sustainable_rate(workload: Workload, step_time: StepTime, engine: Engine = Engine(),
                     compiled: bool | None = None) -> float:
    """Requests/s one replica finishes with `max_num_seqs` requests of this workload always in flight
    (closed loop; the final drain, at lower concurrency, is counted: a slight underestimate)."""
    return simulate(workload, step_time, engine=engine, concurrency=engine.max_num_seqs, compiled=compiled).throughput


def alone(workload: Workload, step_time: StepTime, engine: Engine = Engine()) -> tuple[np.ndarray, np.ndarray]:
    """(TTFT, TPOT) in seconds of every request served alone on a replica of one row of `step_time`: its prompt in
    chunks of `max_num_batched_tokens` (d = 0, p = chunk, q = its pairs), then one decode step per later token
    (d = 1, c = prompt + tokens generated so far). Exact for any StepTime: fixed . x is summed as an arithmetic
    series, max(memory . x, compute . x) split where the two lines cross. TPOT is NaN for one-token outputs."""
    if step_time.replicas != 1:
        raise EnergyLensError("alone: give a step time with one row of coefficients")
    fixed, mem, cmp_ = step_time.fixed[0], step_time.memory[0], step_time.compute[0]
    table = step_time.by_tokens[0]
    L = workload.prompt_tokens.astype(np.int64)
    out = workload.output_tokens.astype(np.int64)
    budget = engine.max_num_batched_tokens
    ttft = np.zeros(len(L))
    for j in range(int(-(-L.max() // budget))):  # chunk j of every prompt still that long (vectorized over requests)
        h = j * budget
        live = L > h
        k = np.minimum(budget, L[live] - h).astype(float)
        x = np.stack([np.ones_like(k), np.zeros_like(k), np.zeros_like(k), k, k * h + k * (k + 1) / 2], axis=1)
        t = x @ fixed + np.maximum(x @ mem, x @ cmp_)
        if table.size:
            t = t + table[k.astype(np.int64)]
        ttft[live] += t
    # Decode steps: c runs over lo..hi = L + 1 .. L + out - 1 (n = out - 1 steps), d = 1.
    n = (out - 1).astype(float)
    lo, hi = (L + 1).astype(float), (L + out - 1).astype(float)
    c_sum = n * (lo + hi) / 2

    def line(w):  # (intercept at d = 1, slope per context token) of w . x for decode steps
        return w[0] + w[1], w[2]

    f0, f1 = line(fixed)
    m0, m1 = line(mem)
    k0, k1 = line(cmp_)
    total = n * f0 + f1 * c_sum + n * k0 + k1 * c_sum  # fixed part and the compute line
    a, s = m0 - k0, m1 - k1  # memory minus compute: where positive the memory line is the max
    cross = -a / s if s != 0 else 0.0  # where the two lines meet
    if s > 0:
        first, last = np.maximum(lo, np.ceil(cross)), hi
    elif s < 0:
        first, last = lo, np.minimum(hi, np.floor(cross))
    else:
        first, last = (lo, hi) if a > 0 else (hi + 1, hi)
    m = np.maximum(last - first + 1, 0)
    total = total + m * a + s * m * (first + last) / 2
    if table.size > 1:
        total = total + n * table[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, total / n, np.nan)
    return ttft, tpot


def _floor(offered: float, sustainable: float) -> int:
    if not math.isfinite(offered) or offered <= 0:
        return 1  # a single request or a burst: no steady rate to keep up with
    return max(1, math.ceil(offered / sustainable * (1 - 1e-12)))


def _check_slo(value, name: str) -> float:
    if value is None:  # no SLO on this metric
        return math.inf
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not (math.isfinite(x) and x > 0):
        raise EnergyLensError(f"{name}: expected seconds > 0, got {clip(value)}")
    return x


def _levels(result: SimulationResult, q: int) -> tuple[float, float]:
    return result.percentile("ttft_s", q), result.percentile("tpot_s", q)


def _meets(ttft: float, tpot: float, ttft_slo: float, tpot_slo: float) -> bool:
    # TPOT is NaN when every output is one token: nothing to hold to the TPOT SLO.
    return ttft <= ttft_slo and (math.isnan(tpot) or tpot <= tpot_slo)


def fewest_replicas(workload: Workload, step_time: StepTime, *, ttft_slo_s: float | None, tpot_slo_s: float | None,
                    percentile: int = 99, engine: Engine = Engine(), router: str = "round_robin",
                    max_replicas: int | None = None, compiled: bool | None = None, record_steps: bool = False,
                    sustainable: float | None = None) -> Capacity:
    """The fewest identical replicas (one row of `step_time`) meeting both SLOs at the p-th percentile (an SLO of
    None: no bound on that metric). `record_steps` keeps the step log of every simulation tried; `sustainable`:
    one replica's sustainable rate when the caller has it already (else a closed loop measures it)."""
    ttft_slo = _check_slo(ttft_slo_s, "ttft_slo_s")
    tpot_slo = _check_slo(tpot_slo_s, "tpot_slo_s")
    if percentile not in PERCENTILES:
        raise EnergyLensError(f"percentile: expected one of {', '.join(map(str, PERCENTILES))}, got {clip(percentile)}")
    if step_time.replicas != 1:
        raise EnergyLensError("fewest_replicas sizes identical replicas: give a step time with one row of coefficients")
    cap = len(workload) if max_replicas is None else int(max_replicas)
    if cap < 1:
        raise EnergyLensError(f"max_replicas: expected a whole number >= 1, got {clip(max_replicas)}")

    a_ttft, a_tpot = alone(workload, step_time, engine)
    t_alone = float(np.percentile(a_ttft, percentile))
    a_tpot = a_tpot[~np.isnan(a_tpot)]
    p_alone = float(np.percentile(a_tpot, percentile)) if a_tpot.size else math.nan
    if not _meets(t_alone, p_alone, ttft_slo, tpot_slo):
        what = (f"TTFT is {t_alone:.4g} s, above the SLO of {ttft_slo:g} s" if t_alone > ttft_slo
                else f"TPOT is {p_alone:.4g} s, above the SLO of {tpot_slo:g} s")
        raise InfeasibleError(f"even with every request alone on a replica, p{percentile} {what}")

    offered = workload.offered_rate
    sus = sustainable_rate(workload, step_time, engine, compiled) if sustainable is None else float(sustainable)
    trials: list[tuple[int, float, float, bool]] = []
    results: dict[int, SimulationResult] = {}

    def met(n: int) -> bool:
        res = simulate(workload, step_time, replicas=n, router=router, engine=engine, compiled=compiled,
                       record_steps=record_steps)
        ttft, tpot = _levels(res, percentile)
        ok = _meets(ttft, tpot, ttft_slo, tpot_slo)
        trials.append((n, ttft, tpot, ok))
        results[n] = res
        return ok

    lo = _floor(offered, sus)
    if lo > cap:
        raise InfeasibleError(f"the offered {offered:.4g} requests/s needs at least {lo} replicas "
                              f"({sus:.4g} requests/s each at saturation); max_replicas is {cap}")
    failed, n = lo - 1, lo  # below the stability floor counts as failing
    while not met(n):
        failed = n
        if n >= cap:
            raise InfeasibleError(f"{cap} replicas do not meet the p{percentile} SLOs (TTFT {trials[-1][1]:.4g} s, "
                                  f"TPOT {trials[-1][2]:.4g} s)")
        n = min(2 * n, cap)
    while n - failed > 1:
        mid = (failed + n) // 2
        if met(mid):
            n = mid
        else:
            failed = mid
    return Capacity(n, results[n], percentile, ttft_slo, tpot_slo, offered, sus, tuple(trials))
