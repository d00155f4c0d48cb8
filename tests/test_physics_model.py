"""Energy as power over time: bounds by construction, one definition behind every form of the formula,
pipeline schedules and waiting replicas."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from energylens.catalog import hardware_catalog, model_catalog
from energylens.data.schema import validate
from energylens.errors import DataError
from energylens.evaluation.synthetic import synthetic_profiles
from energylens.features.physics import compute_features
from energylens.model.default import default_model
from energylens.model.estimator import EnergyLensRegressor
from energylens.model.structure import BUILTIN, CORRECTION_LIBRARY, FEATURES
from energylens.recommendation.search import enumerate_candidates

GPUS = hardware_catalog().names()
MODELS = model_catalog().names()


@pytest.fixture(scope="module")
def corrected_models():
    """Models with power and time corrections fitted on generated rows (source='synthetic')."""
    rows = synthetic_profiles(n=120, noise=0.05, seed=4)
    out = [default_model()]
    for make in BUILTIN.values():
        s = make().with_corrections([CORRECTION_LIBRARY[n] for n in ("c_batch", "c_idle", "c_batch_time", "c_prompt_time")])
        out.append(EnergyLensRegressor(structure=s, n_starts=1, cv_folds=0).fit(rows))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=st.sampled_from(MODELS), gpu=st.sampled_from(GPUS), max_gpus=st.sampled_from([1, 2, 4, 8, 16]),
       lin=st.floats(0, 20000), lout=st.floats(1, 8000), which=st.integers(0, 2))
def test_power_per_gpu_within_idle_and_tdp_for_anything_recommend_enumerates(corrected_models, model, gpu, max_gpus,
                                                                            lin, lout, which):
    """Every candidate recommend can enumerate (feasible on memory or not), under the shipped model and under
    models whose corrections push power and time: idle <= energy / GPU-seconds <= TDP, the step no shorter than
    the ideal hardware time, the energy at least static power x wall time."""
    cand = enumerate_candidates(model, [gpu], max_gpus, lin, lout, [1, 3, 64, 1024])
    cand = cand[~cand["reason"].astype(str).str.startswith(("layout", "divis", "topology"))]
    if cand.empty:
        return
    m = corrected_models[which]
    p = m.predict_frame(cand)
    per_gpu = p["pred_energy_request_j"] / p["pred_gpu_seconds"]
    idle, tdp = cand["gpu_idle_w"].to_numpy(), cand["gpu_tdp_w"].to_numpy()
    assert np.isfinite(per_gpu).all()
    assert (per_gpu >= idle * (1 - 1e-9)).all() and (per_gpu <= tdp * (1 + 1e-9)).all()
    f = compute_features(validate(cand, require_energy=False))
    ideal = np.maximum(f.weight_bytes_step / (f.G * f.bw), f.flops_dec_step / (f.G * f.peak_flops))
    assert (p["pred_itl_s"].to_numpy() >= ideal * (1 - 1e-9)).all()
    static = m.structure_.evaluate(f, m.coef_)["p_static"]
    assert (p["pred_energy_request_j"].to_numpy() >= static * p["pred_gpu_seconds"].to_numpy()
            / (1 + f.waiting) * (1 - 1e-9)).all()


def _catalog_rows():
    """One configuration per catalog GPU (Llama-3.1-8B, tp 1 and 2) and a pipeline and an expert-parallel one."""
    rows = []
    for g in GPUS:
        for tp in (1, 2):
            rows.append({"model": "meta-llama/Llama-3.1-8B", "gpu": g, "num_gpus": tp, "tp": tp, "pp": 1,
                         "batch_size": 32, "input_tokens": 900.0, "output_tokens": 300.0})
        rows.append({"model": "Qwen/Qwen3-30B-A3B", "gpu": g, "num_gpus": 4, "tp": 1, "pp": 2, "ep": 2, "dp": 2,
                     "batch_size": 16, "input_tokens": 3000.0, "output_tokens": 100.0})
    return validate(pd.DataFrame(rows), require_energy=False)


def test_numpy_sympy_and_latex_exports_agree_with_predict(corrected_models):
    """Every export is generated from the same definitions: the NumPy function (SymPy lambdify of every
    definition substituted) equals predict to 1e-9 on every catalog GPU, for every built-in structure with
    power and time corrections held to their ranges; the LaTeX lines are SymPy's rendering of those very
    expressions."""
    import sympy as sp

    from energylens.export.latex import definition_latex
    from energylens.export.numpy_export import numpy_function, symbol_values
    from energylens.export.sympy_export import definitions

    rows = _catalog_rows()
    for m in corrected_models:
        assert any(c.target == "time" for c in m.structure_.corrections) or m is corrected_models[0]
        want = m.predict(rows)
        got = numpy_function(m)(**symbol_values(m, rows))
        np.testing.assert_allclose(got, want, rtol=1e-9)
        tex = dict(definition_latex(m, digits=None))
        for name, expr in definitions(m):
            assert tex[name] == sp.latex(expr, symbol_names={s: tex_name(s.name) for s in expr.free_symbols})


def tex_name(name):
    from energylens.export.latex import _name

    return _name(name)


def test_generated_code_equals_the_checked_trees():
    """The compiled formula evaluates each definition exactly as the whitelisted grammar's own evaluator."""
    from energylens.model.structure import _parse

    m = default_model()
    s = m.structure_
    f = compute_features(_catalog_rows())
    values = {n: getattr(f, n) for n in FEATURES} | dict(zip(s.names, m.coef_))
    out = s.evaluate(f, m.coef_)
    known = set(FEATURES) | set(s.names)
    for d in s.definitions():
        tree = _parse(d.expression, frozenset(known), d.name)
        np.testing.assert_allclose(np.broadcast_to(tree.evaluate(values), (f.n,)), out[d.name], rtol=1e-14)
        values[d.name] = out[d.name]
        known.add(d.name)


def test_gradients_equal_finite_differences():
    m = default_model()
    s = m.structure_
    f = compute_features(_catalog_rows())
    c = m.coef_.astype(float)
    g = s.evaluate(f, c, gradient_of=s.names)
    for j in range(len(c)):
        h = 1e-6 * max(abs(c[j]), 1e-3)
        up, down = c.copy(), c.copy()
        up[j] += h
        down[j] -= h
        e_up, e_down = s.evaluate(f, up), s.evaluate(f, down)
        fd = ((e_up["e_decode"] + e_up["e_prefill"]) - (e_down["e_decode"] + e_down["e_prefill"])) / (2 * h)
        an = g["e_decode"][1][:, j] + g["e_prefill"][1][:, j]
        scale = np.abs(g["e_decode"][0] + g["e_prefill"][0]) / max(abs(c[j]), 1e-3)
        np.testing.assert_allclose(an, fd, rtol=1e-4, atol=float(1e-6 * scale.max()), err_msg=s.names[j])


def _pp_rows(schedule=None, engine=None, batch=32):
    row = {"model": "meta-llama/Llama-3.1-70B", "gpu": "H100", "num_gpus": 4, "tp": 1, "pp": 4, "batch_size": batch,
           "input_tokens": 1000.0, "output_tokens": 200.0}
    if schedule:
        row["pp_schedule"] = schedule
    if engine:
        row["engine"] = engine
    return validate(pd.DataFrame([row]), require_energy=False)


def test_pipeline_schedules():
    """A sequential layer split (HF device_map) runs one stage at a time: longer steps (the KV reads and the
    compute of every stage one after the other; micro-batched stages re-read their weights once per micro-batch,
    so memory-bound weight reads take as long either way) and a lower mean power per GPU (three of four stages
    wait); the engine's default applies when the row does not say."""
    m = default_model()
    micro, seq = m.predict_frame(_pp_rows("microbatch")), m.predict_frame(_pp_rows("sequential"))
    assert seq["pred_itl_s"].iloc[0] > micro["pred_itl_s"].iloc[0]
    assert seq["pred_power_per_gpu_w"].iloc[0] < micro["pred_power_per_gpu_w"].iloc[0]
    by_engine = m.predict_frame(_pp_rows(engine="transformers"))
    assert by_engine["pred_itl_s"].iloc[0] == pytest.approx(seq["pred_itl_s"].iloc[0])
    assert m.predict_frame(_pp_rows(engine="vllm"))["pred_itl_s"].iloc[0] == pytest.approx(micro["pred_itl_s"].iloc[0])
    # At batch 1 there is one micro-batch: both schedules are the same physics.
    one = [m.predict_frame(_pp_rows(s, batch=1))["pred_energy_request_j"].iloc[0] for s in ("microbatch", "sequential")]
    assert one[0] == pytest.approx(one[1], rel=1e-12)
    with pytest.raises(DataError, match="pp_schedule"):
        _pp_rows("interleaved")


def test_replicas_without_a_request_draw_idle_power():
    """dp 8 at batch 1: seven replicas wait; the request's energy counts them at idle power, so the mean power per
    GPU sits just above idle, and falls as more replicas wait."""
    m = default_model()
    rows = validate(pd.DataFrame([{"model": "Qwen/Qwen3-30B-A3B", "gpu": "H100", "num_gpus": n, "tp": 1, "pp": 1, "dp": n,
                                   "batch_size": 1, "input_tokens": 500.0, "output_tokens": 200.0} for n in (1, 8)]),
                    require_energy=False)
    p = m.predict_frame(rows)
    assert p["pred_energy_request_j"].iloc[1] > p["pred_energy_request_j"].iloc[0]
    assert rows["gpu_idle_w"].iloc[0] <= p["pred_power_per_gpu_w"].iloc[1] < p["pred_power_per_gpu_w"].iloc[0]
    extra = p["pred_energy_request_j"].iloc[1] - p["pred_energy_request_j"].iloc[0]
    # the seven waiting GPUs at idle power over the request's time on the busy one
    assert extra == pytest.approx(7 * rows["gpu_idle_w"].iloc[0] * p["pred_gpu_seconds"].iloc[0], rel=1e-9)


def test_exports_reproduce_each_engine_of_the_shipped_model():
    """An engine's export equals `predict` on rows of that engine, and show --latex's default engine is
    recommend's (the one with most training rows)."""
    from energylens.export.numpy_export import numpy_function, symbol_values

    m = default_model()
    assert m.engines_ and m.default_engine() == max(m.engines_, key=lambda g: m.engines_[g].rows)
    rows = _catalog_rows()
    for engine in (*m.engines_, "shared"):
        tagged = rows.assign(**{m.fitted_.engine_column: engine}) if engine != "shared" else rows
        np.testing.assert_allclose(numpy_function(m, engine)(**symbol_values(m, rows)), m.predict(tagged), rtol=1e-9)


def test_auto_keeps_its_budget_of_fitted_numbers_on_every_row():
    """The fit on every row may identify more coefficients than the CV folds did; `auto` then holds the least
    certain at their priors, so a prediction never depends on more fitted numbers than the budget."""
    from energylens.evaluation.synthetic import synthetic_profiles
    from energylens.model.estimator import EnergyLensRegressor

    rows = synthetic_profiles(60, seed=4)
    free = EnergyLensRegressor(structure="compact", random_state=0, cv_folds=0).fit(rows)
    budget = free.fitted_count() - 2
    model = EnergyLensRegressor(max_fitted=budget, random_state=0).fit(rows)
    assert model.fitted_count() <= budget < free.fitted_count()
    assert any("beyond the budget" in n.text for n in model.fitted_.notes)
