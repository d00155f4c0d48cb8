"""Capacity search: the fewest replicas meeting p50/p90/p99 SLOs at the offered traffic."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energylens.errors import EnergyLensError, InfeasibleError
from energylens.traffic import Engine, StepTime, Workload, fewest_replicas, poisson, simulate, sustainable_rate

ONE_AT_A_TIME = Engine(max_num_seqs=1, max_num_batched_tokens=10)


def burst(n=4):
    # n requests at once, 1 prompt token and 2 output tokens each: 2 steps of 1 s per request, one at a time.
    return Workload(np.zeros(n), np.ones(n, int), np.full(n, 2))


def test_capacity_by_hand_p99_and_p50():
    # TTFTs by replica count (round robin): 1 -> 1,3,5,7; 2 -> 1,1,3,3; 3 -> 1,1,1,3; 4 -> 1,1,1,1.
    cap = fewest_replicas(burst(), StepTime.constant(1.0), ttft_slo_s=1.5, tpot_slo_s=1.0, engine=ONE_AT_A_TIME)
    assert cap.replicas == 4
    assert [(n, ok) for n, _, _, ok in cap.trials] == [(1, False), (2, False), (4, True), (3, False)]
    assert cap.result.ttft_s.tolist() == [1.0, 1.0, 1.0, 1.0]
    p50 = fewest_replicas(burst(), StepTime.constant(1.0), ttft_slo_s=1.5, tpot_slo_s=1.0, percentile=50,
                          engine=ONE_AT_A_TIME)
    assert p50.replicas == 3 and p50.trials[-1] == (3, 1.0, 1.0, True)


def test_the_tpot_slo_binds_when_batching_slows_decoding():
    # Each decoding request adds 1 s to a step: alone a request decodes at 1 s + 1 s per token.
    w = Workload(np.zeros(3), np.ones(3, int), np.full(3, 3))
    step = StepTime.affine(1.0, per_decoding_s=1.0)
    loose = fewest_replicas(w, step, ttft_slo_s=100, tpot_slo_s=100, engine=Engine(8, 64))
    tight = fewest_replicas(w, step, ttft_slo_s=100, tpot_slo_s=2.0, engine=Engine(8, 64))
    assert loose.replicas == 1 and tight.replicas == 3
    assert np.nanmax(tight.result.tpot_s) == 2.0


def test_infeasible_slos_say_what_even_one_request_alone_takes():
    with pytest.raises(InfeasibleError) as e:
        fewest_replicas(burst(), StepTime.constant(1.0), ttft_slo_s=0.5, tpot_slo_s=1.0, engine=ONE_AT_A_TIME)
    assert str(e.value) == "even with every request alone on a replica, p99 TTFT is 1 s, above the SLO of 0.5 s"
    with pytest.raises(InfeasibleError, match="p90 TPOT is 1 s, above the SLO of 0.9 s"):
        fewest_replicas(burst(), StepTime.constant(1.0), ttft_slo_s=5, tpot_slo_s=0.9, percentile=90,
                        engine=ONE_AT_A_TIME)
    with pytest.raises(InfeasibleError, match="^2 replicas do not meet the p99 SLOs"):
        fewest_replicas(burst(), StepTime.constant(1.0), ttft_slo_s=1.5, tpot_slo_s=1.0, engine=ONE_AT_A_TIME,
                        max_replicas=2)


@pytest.mark.parametrize("kwargs, message", [
    ({"percentile": 95}, "percentile: expected one of 50, 90, 99, got 95"),
    ({"ttft_slo_s": 0}, "ttft_slo_s: expected seconds > 0, got 0"),
    ({"tpot_slo_s": math.nan}, "tpot_slo_s: expected seconds > 0, got nan"),
])
def test_bad_capacity_parameters_are_one_line(kwargs, message):
    args = {"ttft_slo_s": 1.0, "tpot_slo_s": 1.0} | kwargs
    with pytest.raises(EnergyLensError) as e:
        fewest_replicas(burst(), StepTime.constant(0.1), **args)
    assert str(e.value) == message


def test_the_stability_floor_holds_when_a_short_trace_would_pass_its_slos():
    # 1 request/s of 3-second requests, one at a time per replica: a replica sustains 1/3 request/s, so 3 are
    # needed even though loose SLOs would let one replica queue its way through this short trace.
    w = Workload(np.arange(9.0), np.ones(9, int), np.full(9, 3))
    cap = fewest_replicas(w, StepTime.constant(1.0), ttft_slo_s=1000, tpot_slo_s=1000, engine=ONE_AT_A_TIME)
    assert cap.sustainable_rate == pytest.approx(1 / 3) and cap.offered_rate == 1.0
    assert cap.replicas == cap.stability_floor == 3
    assert cap.result.ttft_s.tolist() == [1.0] * 9


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), rate=st.sampled_from([1.0, 4.0, 16.0]), slack=st.sampled_from([1.2, 2.0, 5.0]),
       q=st.sampled_from([50, 90, 99]), router=st.sampled_from(["round_robin", "least_loaded"]))
def test_capacity_found_meets_the_slos_and_keeps_up(seed, rate, slack, q, router):
    w = poisson(rate, input_tokens=400, output_tokens=40, requests=60, seed=seed)
    step = StepTime.affine(0.01, per_decoding_s=2e-3, per_context_token_s=1e-6, per_prefill_token_s=5e-5)
    engine = Engine(8, 512)
    alone = simulate(w, step, engine=engine, concurrency=1)
    ttft_slo = slack * alone.percentile("ttft_s", q)
    tpot_slo = slack * alone.percentile("tpot_s", q)
    cap = fewest_replicas(w, step, ttft_slo_s=ttft_slo, tpot_slo_s=tpot_slo, percentile=q, engine=engine, router=router)
    n = cap.replicas
    res = simulate(w, step, replicas=n, router=router, engine=engine)
    assert res.percentile("ttft_s", q) <= ttft_slo and res.percentile("tpot_s", q) <= tpot_slo
    # replicas x sustainable rate >= offered rate (the sustainable rate measured here, independently)
    sus = simulate(w, step, engine=engine, concurrency=engine.max_num_seqs).throughput
    assert sus == sustainable_rate(w, step, engine)
    assert n * sus >= w.offered_rate
    # one fewer replica either misses an SLO or cannot keep up
    if n > 1:
        fewer = simulate(w, step, replicas=n - 1, router=router, engine=engine)
        misses = fewer.percentile("ttft_s", q) > ttft_slo or fewer.percentile("tpot_s", q) > tpot_slo
        assert misses or (n - 1) * sus < w.offered_rate
