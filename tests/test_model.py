import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from energylens.evaluation.synthetic import synthetic_configs, synthetic_profiles, true_coefficients
from energylens.model.estimator import EnergyLensRegressor
from energylens.model.structure import physics_structure
from energylens.model.modelfile import load_model, save_model
from energylens.errors import ModelFileError, NotFittedError


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_profiles(n=300, noise=0.03, seed=1)


PHYSICS = physics_structure()
ENERGY_NAMES, TIME_NAMES = PHYSICS.energy_names, PHYSICS.time_names


@pytest.fixture(scope="module")
def fitted(synthetic):
    return EnergyLensRegressor(structure="physics", random_state=0).fit(synthetic)


def test_recovers_predictions_on_synthetic_data(synthetic, fitted):
    """Rows generated from the formula with 3% noise (synthetic): held-out error near the noise."""
    theta, tau = true_coefficients(seed=1)
    test = synthetic_profiles(n=200, noise=0.0, seed=7, theta=theta, tau=tau)
    pred = fitted.predict(test)
    mape = np.mean(np.abs(pred / test["energy_request_j"] - 1))
    assert mape < 0.03
    assert fitted.train_metrics_["energy_mape"] < 0.05


def test_recovers_identified_coefficients(fitted):
    theta, tau = true_coefficients(seed=1)
    coef = dict(zip(ENERGY_NAMES, fitted.coef_))
    # Terms that carry a large share of the energy are recovered within 15%.
    for name in ("theta_prefill", "theta_weights", "theta_kv"):
        true = theta[ENERGY_NAMES.index(name)]
        assert coef[name] == pytest.approx(true, rel=0.15), name
    t = dict(zip(TIME_NAMES, fitted.tau_))
    assert t["tau_memory"] == pytest.approx(tau[TIME_NAMES.index("tau_memory")], rel=0.1)


def test_fit_from_50_rows_is_deterministic(synthetic):
    sub = synthetic.sample(50, random_state=3)
    a = EnergyLensRegressor(random_state=5).fit(sub)
    b = EnergyLensRegressor(random_state=5).fit(sub)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.structure_ == b.structure_
    assert np.all(a.coef_[:a.structure_.n_terms] >= 0) and np.all(a.tau_ >= 0)
    assert a.fitted_count() <= 12  # the method's budget of fitted numbers behind an energy prediction


def test_unidentifiable_coefficient_stays_at_prior(synthetic):
    single = synthetic[(synthetic["pp"] == 1)]
    m = EnergyLensRegressor(structure="physics").fit(single)
    j = ENERGY_NAMES.index("theta_pp")
    assert m.coef_[j] == PHYSICS.energy_terms[j].prior and not m.identified_[j]
    assert any("theta_pp" in n and "prior" in n for n in m.notes_)


def test_prediction_columns_and_split(fitted, synthetic):
    p = fitted.predict_frame(synthetic.head(20))
    np.testing.assert_allclose(p["pred_prefill_energy_j"] + p["pred_decode_energy_j"], p["pred_energy_request_j"])
    assert (p["pred_energy_request_lo_j"] <= p["pred_energy_request_j"]).all()
    assert (p["pred_energy_request_hi_j"] >= p["pred_energy_request_j"]).all()
    assert (p[["pred_ttft_s", "pred_itl_s"]] > 0).all().all()


def test_explain_parts_sum_to_total(fitted, synthetic):
    ex = fitted.explain(synthetic.head(30))
    parts = ex[[c for c in ex.columns if c.endswith("_j") and c != "total_j"]].sum(axis=1)
    np.testing.assert_allclose(parts, ex["total_j"], rtol=1e-10)
    np.testing.assert_allclose(ex[[c for c in ex.columns if c.endswith("_pct") and c != "prefill_share_pct"]].sum(axis=1), 100)


def test_sklearn_compatibility(synthetic):
    """scikit-learn's check_estimator feeds numeric arrays of arbitrary width; a physics model needs the
    schema's named columns, so the parts of the contract that apply are tested directly."""
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    est = EnergyLensRegressor(structure="physics", n_starts=2)
    assert clone(est).get_params() == est.get_params()
    y = synthetic["energy_request_j"].to_numpy()
    X = synthetic.drop(columns=["prefill_energy_j", "decode_energy_j", "energy_request_j", "energy_token_j"])
    scores = cross_val_score(est, X, y, cv=3)
    assert scores.min() > 0.9
    pipe = Pipeline([("identity", FunctionTransformer(lambda d: d)),
                     ("model", EnergyLensRegressor(structure="compact", n_starts=1))])
    pipe.fit(X, y)
    assert pipe.predict(X.head(3)).shape == (3,)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        EnergyLensRegressor().predict(synthetic_configs(3))


def test_model_file_round_trip(tmp_path, fitted, synthetic):
    p = tmp_path / "m.json"
    save_model(fitted, p, {"data": "synthetic"})
    back = load_model(p)
    np.testing.assert_allclose(back.predict(synthetic.head(10)), fitted.predict(synthetic.head(10)))
    d = json.loads(p.read_text())
    assert d["schema_version"] == 2 and d["energy_coefficients"]["theta_weights"]["unit"]
    assert d["provenance"]["data"] == "synthetic" and d["formula"].startswith("E_request = ")
    assert [t["name"] for t in d["structure"]["energy_terms"]] == list(PHYSICS.energy_names)
    assert all(not e["used_by_energy"] for e in d["time_coefficients"].values())
    assert d["fitted_numbers"]["energy"] == sum(e["fitted"] for e in d["energy_coefficients"].values())


@pytest.mark.parametrize("tamper, match", [
    (lambda t: t[: len(t) // 2], "not valid JSON"),
    (lambda t: t.replace('"theta_weights": {\n      "value": ', '"theta_weights": {\n      "value": 9'), "checksum"),
    (lambda t: t.replace('"schema_version": 2', '"schema_version": 99'), "schema_version"),
    (lambda t: "[]", "JSON object"),
])
def test_tampered_model_files_are_refused(tmp_path, fitted, tamper, match):
    p = tmp_path / "m.json"
    save_model(fitted, p)
    p.write_text(tamper(p.read_text()))
    with pytest.raises(ModelFileError, match=match):
        load_model(p)


@settings(max_examples=30, deadline=None)
@given(out1=st.floats(1, 4000), extra=st.floats(0.01, 4000), batch=st.sampled_from([1, 8, 64, 512]),
       inp=st.floats(0, 8000), tp=st.sampled_from([1, 2, 4]))
def test_more_output_tokens_never_lower_decode_energy(out1, extra, batch, inp, tp):
    from energylens.model.default import default_model

    m = default_model()
    base = pd.DataFrame({"model": ["meta-llama/Llama-3.1-70B"] * 2, "gpu": "H100", "num_gpus": tp, "tp": tp, "pp": 1,
                         "batch_size": batch, "input_tokens": inp, "output_tokens": [out1, out1 + extra]})
    p = m.predict_frame(base)
    assert p["pred_decode_energy_j"].iloc[1] >= p["pred_decode_energy_j"].iloc[0]
    assert p["pred_energy_request_j"].iloc[1] >= p["pred_energy_request_j"].iloc[0]


@settings(max_examples=30, deadline=None)
@given(inp=st.floats(0, 8000), extra=st.floats(1, 8000), batch=st.sampled_from([1, 8, 64]))
def test_longer_prompts_never_lower_prefill_energy(inp, extra, batch):
    from energylens.model.default import default_model

    m = default_model()
    base = pd.DataFrame({"model": ["Qwen/Qwen3-8B"] * 2, "gpu": "B200", "num_gpus": 1, "tp": 1, "pp": 1,
                         "batch_size": batch, "input_tokens": [inp, inp + extra], "output_tokens": 128.0})
    p = m.predict_frame(base)
    assert p["pred_prefill_energy_j"].iloc[1] >= p["pred_prefill_energy_j"].iloc[0]


@settings(max_examples=25, deadline=None)
@given(noise=st.floats(0.0, 0.05), seed=st.integers(0, 1000))
def test_fit_is_non_negative_and_finite_on_any_noise(noise, seed):
    df = synthetic_profiles(n=50, noise=noise, seed=seed)
    m = EnergyLensRegressor(n_starts=1, random_state=seed).fit(df)
    p = m.structure_.n_terms
    assert np.all(np.isfinite(m.coef_)) and np.all(m.coef_[:p] >= 0) and np.all(m.tau_ >= 0)
    assert m.fitted_count() <= 12
    assert np.all(m.predict(df) > 0)


def test_engine_specific_coefficients_round_trip(tmp_path):
    """Two engines sharing the structure but not the host overheads: each gets its own calibration."""
    a = synthetic_profiles(n=80, noise=0.02, seed=11).assign(source="engine-a")
    theta, tau = true_coefficients(seed=11)
    theta_b = theta.copy()
    theta_b[ENERGY_NAMES.index("theta_host_sequence")] *= 8  # a slower host path per running sequence
    b = synthetic_profiles(n=80, noise=0.02, seed=12, theta=theta_b, tau=tau).assign(source="engine-b")
    both = pd.concat([a, b], ignore_index=True)
    shared = EnergyLensRegressor(structure="physics", n_starts=2).fit(both)
    per_engine = EnergyLensRegressor(structure="physics", n_starts=2, engine_column="source").fit(both)
    assert set(per_engine.engines_) == {"engine-a", "engine-b"}
    assert per_engine.train_metrics_["energy_mape"] < shared.train_metrics_["energy_mape"]
    p = tmp_path / "m.json"
    save_model(per_engine, p)
    back = load_model(p)
    np.testing.assert_allclose(back.predict(both.head(30)), per_engine.predict(both.head(30)))
    unknown = both.head(3).assign(source="engine-c")  # an engine never seen: the shared coefficients
    np.testing.assert_allclose(per_engine.predict(unknown), EnergyLensRegressor.predict(
        _shared_only(per_engine), unknown))


def _shared_only(model):
    import copy

    m = copy.copy(model)
    m.engines_ = {}
    return m


def test_lean_predict_matches_predict_frame_for_every_engine():
    from energylens.model.default import default_model

    m = default_model()
    cfg = synthetic_configs(12, seed=4)
    for engine in [*m.engines_, "never-seen"]:
        rows = cfg.assign(source=engine)
        np.testing.assert_allclose(m.predict(rows), m.predict_frame(rows)["pred_energy_request_j"], rtol=1e-12)


def test_exports_reproduce_predictions(fitted, synthetic):
    """SymPy rendering, LaTeX and the NumPy callable describe the same function as predict()."""
    from energylens.export.latex import formula_latex
    from energylens.export.numpy_export import numpy_function, symbol_values

    rows = synthetic.head(25)
    fn = numpy_function(fitted)
    np.testing.assert_allclose(fn(**symbol_values(fitted, rows)), fitted.predict(rows), rtol=1e-9)
    tex = formula_latex(fitted)
    assert tex.startswith("E_{request} = ") and "peak_{flops}" in tex
