"""The closed-form 'alone' levels the capacity search starts from, and the step log's request count."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from energylens.traffic import Engine, StepTime, Workload, fewest_replicas, poisson, simulate
from energylens.traffic.capacity import alone

STEPS = {
    "affine": StepTime.affine(0.01, 1e-4, 1e-6, 2e-5, 1e-9),
    "roofline crossing": StepTime.roofline(fixed=[1e-3, 0, 0, 0, 0], memory=[0.01, 0, 2e-6, 0, 0],
                                           compute=[0, 1e-4, 0, 2e-5, 1e-9]),
    "with a table": StepTime(fixed=[1e-3, 1e-5, 1e-7, 1e-5, 0], by_tokens=np.linspace(0, 0.01, 600)),
}


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(STEPS)), st.integers(1, 5000), st.integers(1, 300), st.integers(16, 512),
       st.integers(0, 10))
def test_alone_equals_a_closed_loop_at_one(name, prompt, output, budget, seed):
    step = STEPS[name]
    rng = np.random.default_rng(seed)
    n = 5
    w = Workload(np.zeros(n), rng.integers(1, prompt + 1, n), rng.integers(1, output + 1, n))
    engine = Engine(1, max(budget, 1))
    if step.by_tokens.shape[1] and step.by_tokens.shape[1] <= engine.max_num_batched_tokens:
        engine = Engine(1, step.by_tokens.shape[1] - 1)
    ttft, tpot = alone(w, step, engine)
    r = simulate(w, step, engine=engine, concurrency=1, compiled=False)
    assert np.allclose(ttft, r.ttft_s, rtol=1e-9, atol=0)
    assert np.array_equal(np.isnan(tpot), np.isnan(r.tpot_s))
    assert np.allclose(tpot[~np.isnan(tpot)], r.tpot_s[~np.isnan(tpot)], rtol=1e-9, atol=0)


def test_step_log_counts_the_requests_each_step_carries():
    # Two prompts of 3 tokens arrive together with a budget of 4: the first step carries both (3 + 1 tokens).
    w = Workload(np.zeros(2), np.array([3, 3]), np.array([2, 2]))
    r = simulate(w, StepTime.constant(1.0), engine=Engine(4, 4), record_steps=True)
    log = r.step_log
    assert log["requests"][0] == 2 and log["prefill_tokens"][0] == 4
    assert (log["requests"] >= log["decoding"]).all()
    assert (log["requests"] <= log["decoding"] + log["prefill_tokens"]).all()


def test_an_slo_of_none_bounds_nothing_and_steps_can_be_kept():
    w = poisson(5, input_tokens=100, output_tokens=20, requests=200, seed=1)
    step = StepTime.affine(0.01, per_decoding_s=1e-4)
    cap = fewest_replicas(w, step, ttft_slo_s=None, tpot_slo_s=None, engine=Engine(64, 512), record_steps=True,
                          sustainable=1e9)
    assert cap.replicas == 1 and cap.result.step_log is not None
    assert cap.sustainable_rate == 1e9 and len(cap.trials) == 1
