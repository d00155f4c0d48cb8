"""The serving simulation: hand-computed cases, invariants (Hypothesis), and compiled == Python fallback."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energylens.errors import EnergyLensError
from energylens.traffic import Engine, StepTime, Workload, poisson, simulate
from energylens.traffic.simulate import numba_available


def sim(arrival, prompt, output, step=StepTime.constant(1.0), **kw):
    return simulate(Workload(arrival, prompt, output), step, **kw)


# ------------------------------------------------------------------------------------------------ by hand


def test_three_requests_share_a_token_budget_by_hand():
    # Budget 8, prompts of 10, steps of 1 s. Step 1: A takes 8. Step 2: A its last 2 (first token at 2), B 6.
    # Step 3: A decodes, B its last 4 (first token at 3), C 3. Step 4: A decodes (done at 4), B decodes, C 6.
    # Step 5: B decodes (done at 5), C its last 1 (first token at 5). Steps 6, 7: C decodes (done at 7).
    r = sim([0.0, 0.0, 0.0], [10, 10, 10], [3, 3, 3], engine=Engine(max_num_seqs=4, max_num_batched_tokens=8))
    assert r.ttft_s.tolist() == [2.0, 3.0, 5.0]
    assert r.tpot_s.tolist() == [1.0, 1.0, 1.0]
    assert r.queue_s.tolist() == [0.0, 1.0, 2.0]
    assert r.latency_s.tolist() == [4.0, 5.0, 7.0]
    assert (r.horizon_s, r.busy_s.tolist(), r.idle_s.tolist(), r.steps.tolist()) == (7.0, [7.0], [0.0], [7])
    assert r.prefill_tokens.tolist() == [30] and r.decode_tokens.tolist() == [6]  # 3 x 10 prompt, 3 x 2 decodes
    assert r.mean_batch.tolist() == [(1 + 2 + 3 + 3 + 2 + 1 + 1) / 7]


def test_a_prefill_in_the_step_slows_the_decode_beside_it():
    # Step = 1 s + 0.1 s per prompt token. A (2-token prompt) alone: 1.2 s, first token at 1.2. B arrives at 0.5
    # and waits for the next step: A's decode + B's 5 prompt tokens, 1.5 s. Then both decode in a 1 s step.
    r = sim([0.0, 0.5], [2, 5], [3, 2], StepTime.affine(1.0, per_prefill_token_s=0.1), engine=Engine(4, 100))
    np.testing.assert_allclose(r.ttft_s, [1.2, 2.2])
    np.testing.assert_allclose(r.tpot_s, [(3.7 - 1.2) / 2, 1.0])
    np.testing.assert_allclose(r.queue_s, [0.0, 0.7])
    assert r.horizon_s == pytest.approx(3.7)


def test_idle_time_between_requests_and_two_replicas_by_hand():
    args = ([0.0, 0.5, 10.0], [4, 4, 4], [2, 2, 2])
    one = sim(*args, engine=Engine(4, 100))
    assert one.ttft_s.tolist() == [1.0, 1.5, 1.0] and one.tpot_s.tolist() == [1.0, 1.0, 1.0]
    assert (one.horizon_s, one.busy_s.tolist(), one.idle_s.tolist()) == (12.0, [5.0], [7.0])
    assert one.load == 3 / 10  # busy 3 s of the 10 s to the last arrival (the drain after it left out)
    two = sim(*args, replicas=2, engine=Engine(4, 100))
    assert two.replica.tolist() == [0, 1, 0]
    assert two.ttft_s.tolist() == [1.0, 1.0, 1.0]
    assert (two.horizon_s, two.busy_s.tolist(), two.idle_s.tolist()) == (12.0, [4.0, 2.0], [8.0, 10.0])
    np.testing.assert_allclose(two.utilization, [4 / 12, 2 / 12])


def test_least_loaded_routes_to_the_replica_with_fewer_requests_in_flight():
    # A (10 outputs) holds replica 0 until t = 10; B finishes on replica 1 at t = 2. C arrives at t = 5.5:
    # round robin sends it to replica 0 (joins A's step at 6: first token at 7); least loaded to the idle replica 1.
    args = ([0.0, 1.0, 5.5], [1, 1, 1], [10, 1, 1])
    rr = sim(*args, replicas=2, router="round_robin", engine=Engine(4, 100))
    ll = sim(*args, replicas=2, router="least_loaded", engine=Engine(4, 100))
    assert rr.replica.tolist() == [0, 1, 0] and ll.replica.tolist() == [0, 1, 1]
    assert rr.ttft_s.tolist() == [1.0, 1.0, 1.5] and ll.ttft_s.tolist() == [1.0, 1.0, 1.0]
    assert math.isnan(rr.tpot_s[1]) and rr.tpot_s[0] == 1.0  # one-token outputs have no TPOT


def test_max_num_seqs_holds_requests_in_the_queue():
    r = sim([0.0, 0.0], [1, 1], [2, 2], engine=Engine(max_num_seqs=1, max_num_batched_tokens=10))
    assert r.queue_s.tolist() == [0.0, 2.0] and r.ttft_s.tolist() == [1.0, 3.0]


def test_kv_cache_exhaustion_preempts_the_last_admitted_request_by_hand():
    # 6 tokens of KV cache in 1-token blocks. Step 1: A (3) and B (2) prefill, 5 blocks used. Step 2: A decodes
    # (block 6); B needs a 7th: B, the last admitted, is preempted. Step 3: A decodes; B (2 prompt + 1 generated
    # = 3 tokens to recompute) does not fit beside it. A finishes at 3; step 4 recomputes B, step 5 decodes it.
    r = sim([0.0, 0.0], [3, 2], [3, 3], engine=Engine(4, 100, kv_cache_tokens=6, block_size=1), record_steps=True)
    assert r.preemptions.tolist() == [0, 1]
    assert r.ttft_s.tolist() == [1.0, 1.0] and r.latency_s.tolist() == [3.0, 5.0]
    assert r.tpot_s.tolist() == [1.0, 2.0]
    assert r.step_log["prefill_tokens"].tolist() == [5, 0, 0, 3, 0]
    assert r.step_log["decoding"].tolist() == [0, 1, 1, 0, 1]
    assert r.step_log["context_tokens"].tolist() == [0, 4, 5, 0, 4]  # prompt + generated of each decoding request


def test_closed_loop_issues_a_request_when_one_finishes():
    r = sim([7.0, 8.0, 9.0], [1, 1, 1], [2, 1, 3], concurrency=1, engine=Engine(4, 10))
    assert r.workload.arrival_s.tolist() == [0.0, 2.0, 3.0]  # the loop's times, not the workload's
    assert r.ttft_s.tolist() == [1.0, 1.0, 1.0] and r.latency_s.tolist() == [2.0, 1.0, 3.0]
    assert r.horizon_s == 6.0 and r.utilization.tolist() == [1.0]


def test_step_inputs_by_hand():
    # One request, prompt 5, budget 3: chunks of 3 (pairs 3*4/2 = 6) and 2 after 3 (2*3 + 2*3/2 = 9); then two
    # decodes at context 6 and 7.
    r = sim([0.0], [5], [3], engine=Engine(1, 3), record_steps=True)
    log = r.step_log
    assert log["prefill_tokens"].tolist() == [3, 2, 0, 0] and log["prefill_pairs"].tolist() == [6, 9, 0, 0]
    assert log["decoding"].tolist() == [0, 0, 1, 1] and log["context_tokens"].tolist() == [0, 0, 6, 7]
    assert log["start_s"].tolist() == [0.0, 1.0, 2.0, 3.0] and log["replica"].tolist() == [0, 0, 0, 0]


def test_roofline_and_table_step_time():
    st_ = StepTime.roofline(fixed=[0.5, 0, 0, 0, 0], memory=[1.0, 0, 0.01, 0, 0], compute=[0, 0, 0, 0.1, 0],
                            by_tokens=np.arange(11) * 0.001)
    t = st_(decoding=[1, 0], context_tokens=[100, 0], prefill_tokens=[0, 10])
    np.testing.assert_allclose(t, [0.5 + 2.0 + 0.001, 0.5 + 1.0 + 0.010])
    r = sim([0.0], [10], [2], st_, engine=Engine(1, 10))
    np.testing.assert_allclose(r.ttft_s, [1.51])  # compute side: 10 x 0.1 = 1 s = memory side; + table[10]
    with pytest.raises(EnergyLensError, match="by_tokens covers 11 token counts; a step can carry 0 to 20"):
        sim([0.0], [10], [2], st_, engine=Engine(1, 20))


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("call, message", [
    (lambda w, s: simulate(w, s, replicas=0), "replicas: expected a whole number from 1 to 100,000, got 0"),
    (lambda w, s: simulate(w, s, router="random"), "router: unknown 'random'; expected one of round_robin, least_loaded"),
    (lambda w, s: simulate(w, s, engine=Engine(512, 256)),
     "max_num_batched_tokens (256) must be >= max_num_seqs (512), as vLLM requires"),
    (lambda w, s: simulate(w, s, engine=Engine(4, 16, kv_cache_tokens=16)),
     "request 0 needs 109 tokens of KV cache, more than a replica's 16"),
    (lambda w, s: simulate(w, StepTime.affine(0.0, 1.0)),
     "step time: the constant part (fixed + max(memory, compute) at x = (1, 0, 0, 0, 0)) must be > 0 s for every "
     "replica: every engine step takes time"),
    (lambda w, s: simulate(w, StepTime.affine([1.0, 1.0]), replicas=3), "step time has coefficients for 2 replicas, not 3"),
    (lambda w, s: StepTime.affine(1.0, -0.1), "step time fixed: coefficients must be finite and >= 0"),
    (lambda w, s: simulate(w, s, concurrency=0), "concurrency: expected a whole number from 1 to 1,000,000,000, got 0"),
])
def test_bad_simulation_parameters_are_one_line(call, message):
    w = Workload([0.0], [100], [10])
    with pytest.raises(EnergyLensError) as e:
        call(w, StepTime.constant(0.01))
    assert str(e.value) == message


def test_engine_defaults_follow_vllm_and_the_serving_model():
    from energylens.model import serving

    assert Engine.vllm_default("H100", 80) == Engine(1024, 8192)
    assert Engine.vllm_default("A100-SXM4-80GB", 80) == Engine(256, 2048)
    assert Engine.vllm_default("L4", 24) == Engine(256, 2048)
    # One source for the token budgets: the closed-form serving model uses the same vLLM defaults.
    for name, mem in (("H100", 80), ("A100-SXM4-80GB", 80), ("L4", 24), ("B200", 180)):
        assert Engine.vllm_default(name, mem).max_num_batched_tokens == serving.default_token_budget([name], [mem])[0]
    assert Engine().max_num_batched_tokens == serving.SMALL_GPU_BUDGET


# ------------------------------------------------------------------------------------------------ invariants


@st.composite
def cases(draw, max_requests=30):
    n = draw(st.integers(1, max_requests))
    gaps = draw(st.lists(st.sampled_from([0.0, 0.001, 0.01, 0.05, 0.2, 1.0, 5.0]), min_size=n, max_size=n))
    prompt = draw(st.lists(st.integers(1, 3000), min_size=n, max_size=n))
    output = draw(st.lists(st.integers(1, 200), min_size=n, max_size=n))
    seqs = draw(st.integers(1, 16))
    budget = draw(st.integers(seqs, 4096))
    w = Workload(np.cumsum(gaps), prompt, output)
    kv = None
    if draw(st.booleans()):
        block = draw(st.sampled_from([1, 16]))
        need = int(np.max(w.prompt_tokens + w.output_tokens - 1))
        kv = (-(-need // block) + draw(st.integers(0, 3000) | st.just(0))) * block
        engine = Engine(seqs, budget, kv_cache_tokens=kv, block_size=block)
    else:
        engine = Engine(seqs, budget)
    coef = st.sampled_from([0.0, 1e-6, 1e-4, 1e-3, 0.01])
    fixed = [draw(st.sampled_from([0.001, 0.01, 0.05]))] + [draw(coef) for _ in range(4)]
    mem = [draw(coef) for _ in range(5)]
    cmp_ = [0.0] + [draw(coef) for _ in range(4)]
    step = StepTime.roofline(fixed=fixed, memory=mem, compute=cmp_)
    replicas = draw(st.integers(1, 4))
    router = draw(st.sampled_from(["round_robin", "least_loaded"]))
    concurrency = draw(st.none() | st.integers(1, 8))
    return w, step, dict(replicas=replicas, router=router, engine=engine, concurrency=concurrency)


def own_prefill_lower_bound(step, prompt, budget):
    """Superadditivity of a step time with non-negative coefficients: the steps that carry a prompt of L tokens
    take at least one step of the whole prompt plus the constant part of each further step."""
    chunks = -(-prompt // budget)
    whole = step(0, 0, prompt, prompt * (prompt + 1) / 2)
    const = step.fixed[0, 0] + min(step.memory[0, 0], step.compute[0, 0])
    return whole + (chunks - 1) * const


@settings(max_examples=150, deadline=None)
@given(case=cases())
def test_invariants_of_every_simulation(case):
    w, step, kw = case
    r = simulate(w, step, record_steps=True, **kw)
    # every request is served, in a sensible order of events
    assert np.isfinite(r.ttft_s).all() and np.isfinite(r.latency_s).all()
    assert (r.queue_s >= 0).all() and (r.ttft_s >= r.queue_s).all() and (r.latency_s >= r.ttft_s).all()
    # TTFT at least the request's own prefill; TPOT at least a bare step
    bound = own_prefill_lower_bound(step, w.prompt_tokens, kw["engine"].max_num_batched_tokens)
    assert (r.ttft_s >= bound * (1 - 1e-9)).all()
    base = step(0, 0, 0)[()]
    tpot = r.tpot_s[~np.isnan(r.tpot_s)]
    assert (tpot >= base * (1 - 1e-9)).all()
    assert np.array_equal(np.isnan(r.tpot_s), r.workload.output_tokens == 1)
    # busy + idle = horizon per replica, with busy the sum of non-overlapping steps inside the horizon
    log = r.step_log
    for k in range(r.replicas):
        mine = log["replica"] == k
        start, dur = log["start_s"][mine], log["duration_s"][mine]
        assert dur.sum() == pytest.approx(r.busy_s[k], rel=1e-12, abs=1e-12)
        assert (start[1:] >= (start + dur)[:-1] - 1e-12).all()
        assert r.busy_s[k] + r.idle_s[k] == pytest.approx(r.horizon_s, rel=1e-12)
        assert r.idle_s[k] >= -1e-9 * r.horizon_s
    assert (log["start_s"] + log["duration_s"]).max() == pytest.approx(r.horizon_s)
    # tokens: every prompt token is prefilled once and every later output token decoded once, plus recomputation
    prompts, outputs = w.prompt_tokens.sum(), (w.output_tokens - 1).sum()
    total = r.prefill_tokens.sum() + r.decode_tokens.sum()
    if r.preemptions.sum() == 0:
        assert total == prompts + outputs
        for k in range(r.replicas):  # and on the replica the request was routed to
            mine = r.replica == k
            assert r.prefill_tokens[k] + r.decode_tokens[k] == w.prompt_tokens[mine].sum() + (w.output_tokens[mine] - 1).sum()
    else:
        assert total > prompts + outputs
    if kw["router"] == "round_robin":
        assert r.replica.tolist() == [i % r.replicas for i in range(len(w))]
    assert (r.mean_batch <= kw["engine"].max_num_seqs + 1e-9).all()


@pytest.mark.skipif(not numba_available(), reason="numba not installed (pip install 'energylens[fast]')")
@settings(max_examples=60, deadline=None)
@given(case=cases(max_requests=20))
def test_python_fallback_equals_the_compiled_loop(case):
    w, step, kw = case
    a = simulate(w, step, compiled=True, record_steps=True, **kw)
    b = simulate(w, step, compiled=False, record_steps=True, **kw)
    for name in ("replica", "queue_s", "ttft_s", "tpot_s", "latency_s", "preemptions", "busy_s", "steps",
                 "prefill_tokens", "decode_tokens", "mean_batch"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert a.horizon_s == b.horizon_s
    for key in a.step_log:
        assert np.array_equal(a.step_log[key], b.step_log[key]), key


@pytest.mark.skipif(not numba_available(), reason="numba not installed (pip install 'energylens[fast]')")
def test_python_fallback_equals_the_compiled_loop_on_a_longer_run():
    w = poisson(8.0, input_tokens=800, output_tokens=120, requests=300, seed=5)
    step = StepTime.roofline(fixed=[0.002, 1e-5, 0, 0, 0], memory=[0.006, 0, 5e-8, 0, 0],
                             compute=[0, 3e-5, 0, 3e-5, 1e-9])
    kw = dict(replicas=2, router="least_loaded", engine=Engine(64, 512, kv_cache_tokens=40_000))
    a, b = simulate(w, step, compiled=True, **kw), simulate(w, step, compiled=False, **kw)
    assert np.array_equal(a.ttft_s, b.ttft_s) and np.array_equal(a.tpot_s, b.tpot_s, equal_nan=True)
    assert np.array_equal(a.busy_s, b.busy_s) and a.horizon_s == b.horizon_s


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), rate=st.sampled_from([0.2, 0.5, 1.0, 2.0, 5.0]), factor=st.sampled_from([2.0, 4.0]),
       replicas=st.integers(1, 3))
def test_utilization_rises_with_the_rate(seed, rate, factor, replicas):
    # The busy share of the traffic window: the busy share of the whole horizon also counts the drain after the
    # last arrival, which a faster replay makes a larger part of a shorter horizon (it can fall near saturation).
    step = StepTime.affine(0.02, per_decoding_s=1e-4, per_prefill_token_s=2e-5)
    lo = poisson(rate, input_tokens=500, output_tokens=50, requests=200, seed=seed)
    hi = poisson(rate * factor, input_tokens=500, output_tokens=50, requests=200, seed=seed)
    u_lo = simulate(lo, step, replicas=replicas, engine=Engine(32, 2048)).load
    u_hi = simulate(hi, step, replicas=replicas, engine=Engine(32, 2048)).load
    assert u_hi >= u_lo - 1e-12  # both reach 1 at saturation, up to rounding


def test_summary_has_the_percentiles():
    w = poisson(2.0, input_tokens=300, output_tokens=30, requests=100, seed=0)
    s = simulate(w, StepTime.affine(0.01, per_prefill_token_s=1e-5)).summary()
    for m in ("ttft", "tpot", "queue", "latency"):
        assert s[f"{m}_p50_s"] <= s[f"{m}_p90_s"] <= s[f"{m}_p99_s"]
    assert 0 < s["utilization"] <= 1 and s["requests"] == 100


def test_the_real_conversation_trace_is_served_in_full(data_dir):
    path = data_dir / "azure-llm-trace-2023" / "AzureLLMInferenceTrace_conv.csv"
    if not path.exists():
        pytest.skip("azure-llm-trace-2023 not in the data folder")
    from energylens.traffic import read_trace

    w = read_trace(path).head(3000)
    step = StepTime.roofline(fixed=[1e-3, 1e-5, 0, 0, 0], memory=[6e-3, 0, 5e-8, 0, 0], compute=[0, 3e-5, 0, 3e-5, 1e-9])
    r = simulate(w, step, replicas=2, router="least_loaded", engine=Engine.vllm_default("H100", 80))
    assert np.isfinite(r.ttft_s).all() and r.decode_tokens.sum() == (w.output_tokens - 1).sum()
    assert r.prefill_tokens.sum() == w.prompt_tokens.sum()
    assert r.busy_s.sum() <= 2 * r.horizon_s and r.horizon_s >= w.arrival_s[-1]
