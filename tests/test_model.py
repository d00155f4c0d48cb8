import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from energylens.errors import DataError, ModelFileError, NotFittedError
from energylens.evaluation.synthetic import synthetic_configs, synthetic_profiles, true_coefficients
from energylens.model.estimator import EnergyLensRegressor
from energylens.model.modelfile import load_model, save_model
from energylens.model.structure import physics_structure

PHYSICS = physics_structure()
NAMES = PHYSICS.names


@pytest.fixture(scope="module")
def synthetic():
    """Rows generated from the physics formula with coefficients near its priors (labelled source='synthetic')."""
    return synthetic_profiles(n=300, noise=0.03, seed=1)


@pytest.fixture(scope="module")
def fitted(synthetic):
    return EnergyLensRegressor(structure="physics", random_state=0).fit(synthetic)


def test_recovers_predictions_on_synthetic_data(fitted):
    """Rows generated from the formula with 3% noise: held-out error near the noise."""
    test = synthetic_profiles(n=200, noise=0.0, seed=7, coef=true_coefficients(seed=1))
    pred = fitted.predict(test)
    assert np.mean(np.abs(pred / test["energy_request_j"] - 1)) < 0.03
    assert fitted.train_metrics_["energy_mape"] < 0.05


def test_recovers_identified_coefficients(fitted):
    true = dict(zip(NAMES, true_coefficients(seed=1)))
    coef = dict(zip(NAMES, fitted.coef_))
    # The coefficients that carry most of the time and the power are recovered closely.
    for name in ("tau_mem", "tau_compute", "s_static", "a_mem"):
        assert coef[name] == pytest.approx(true[name], rel=0.15), name


def test_fit_from_50_rows_is_deterministic(synthetic):
    sub = synthetic.sample(50, random_state=3)
    a = EnergyLensRegressor(random_state=5).fit(sub)
    b = EnergyLensRegressor(random_state=5).fit(sub)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.structure_ == b.structure_
    assert np.all(a.coef_[:a.structure_.n_coefficients] > 0)
    assert a.fitted_count() <= 12  # the method's budget of fitted numbers, the time model's included


def test_unidentifiable_coefficient_stays_at_prior(synthetic):
    """Single-GPU rows never run a collective: the collective coefficients stay at their physics priors."""
    single = synthetic[synthetic["num_gpus"] == 1]
    m = EnergyLensRegressor(structure="physics").fit(single)
    for name in ("tau_comm", "a_comm"):
        j = NAMES.index(name)
        assert m.coef_[j] == PHYSICS.coefficients[j].prior and not m.identified_[j]
        assert any(n.coefficient == name and n.kind == "kept at prior" for n in m.notes_)


def test_prediction_columns_split_and_power(fitted, synthetic):
    p = fitted.predict_frame(synthetic.head(40))
    np.testing.assert_allclose(p["pred_prefill_energy_j"] + p["pred_decode_energy_j"], p["pred_energy_request_j"])
    assert (p["pred_energy_request_lo_j"] <= p["pred_energy_request_j"]).all()
    assert (p["pred_energy_request_hi_j"] >= p["pred_energy_request_j"]).all()
    assert (p[["pred_ttft_s", "pred_itl_s", "pred_gpu_seconds"]] > 0).all().all()
    # Energy is the power over the time: the mean power per GPU is energy / GPU-seconds, within [idle, TDP].
    per_gpu = p["pred_energy_request_j"] / p["pred_gpu_seconds"]
    np.testing.assert_allclose(per_gpu, p["pred_power_per_gpu_w"], rtol=1e-12)
    rows = synthetic.head(40)
    assert (per_gpu >= rows["gpu_idle_w"] * (1 - 1e-12)).all() and (per_gpu <= rows["gpu_tdp_w"] * (1 + 1e-12)).all()


def test_explain_parts_sum_to_total(fitted, synthetic):
    ex = fitted.explain(synthetic.head(30))
    parts = ex[[c for c in ex.columns if c.endswith("_j") and c != "total_j"]].sum(axis=1)
    np.testing.assert_allclose(parts, ex["total_j"], rtol=1e-9)
    np.testing.assert_allclose(ex[[c for c in ex.columns if c.endswith("_pct") and c != "prefill_share_pct"]].sum(axis=1),
                               100, rtol=1e-9)


def test_sklearn_compatibility(synthetic):
    """The parts of scikit-learn's contract that apply to a model of the profiling schema's named columns."""
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


@pytest.mark.parametrize("params, match", [
    ({"fixed": "tau_mem"}, "fixed"),  # a string is not a tuple of names (it would hold nothing)
    ({"n_starts": 0}, "n_starts"),
    ({"random_state": -1}, "random_state"),
    ({"random_state": 2**32}, "random_state"),
    ({"loss": "l2"}, "loss"),
    ({"prior_strength": 0}, "prior_strength"),
    ({"fixed": ("not_a_coefficient",)}, "fixed names coefficients"),
    ({"priors": {"tau_mem": float("nan")}}, "priors"),
])
def test_parameters_are_validated_at_fit(synthetic, params, match):
    with pytest.raises(DataError, match=match):
        EnergyLensRegressor(structure="compact", **params).fit(synthetic.head(20))


def test_not_fitted():
    with pytest.raises(NotFittedError):
        EnergyLensRegressor().predict(synthetic_configs(3))


def test_model_file_round_trip(tmp_path, fitted, synthetic):
    p = tmp_path / "m.json"
    save_model(fitted, p, {"data": "synthetic"})
    back = load_model(p)
    np.testing.assert_allclose(back.predict(synthetic.head(10)), fitted.predict(synthetic.head(10)), rtol=1e-12)
    d = json.loads(p.read_text())
    assert d["schema_version"] == 3 and d["coefficients"]["tau_mem"]["kind"] == "time"
    assert d["provenance"]["data"] == "synthetic" and d["formula"].splitlines()[0].startswith("corr_power = ")
    assert [c["name"] for c in d["structure"]["coefficients"]] == list(NAMES)
    assert d["fitted_numbers"]["energy"] == sum(d["shared"]["fitted"].values())
    assert back.domain_.gpus == fitted.domain_.gpus and back.domain_.ranges == fitted.domain_.ranges


@pytest.mark.parametrize("tamper, match", [
    (lambda t: t[: len(t) // 2], "not valid JSON"),
    (lambda t: t.replace('"tau_mem": 1', '"tau_mem": 91', 1), "checksum"),
    (lambda t: t.replace('"schema_version": 3', '"schema_version": 99'), "schema_version"),
    (lambda t: "[]", "JSON object"),
])
def test_tampered_model_files_are_refused(tmp_path, fitted, tamper, match):
    p = tmp_path / "m.json"
    save_model(fitted, p)
    text = p.read_text()
    changed = tamper(text)
    assert changed != text
    p.write_text(changed)
    with pytest.raises(ModelFileError, match=match):
        load_model(p)


def test_a_file_of_another_formula_is_refused(tmp_path, fitted):
    from energylens.model.modelfile import _checksum

    p = tmp_path / "m.json"
    d = save_model(fitted, p)
    d = {k: v for k, v in d.items() if k != "sha256"}
    d["structure"]["formula_version"] = "0123456789abcdef"
    d["sha256"] = _checksum(d)
    p.write_text(json.dumps(d))
    with pytest.raises(ModelFileError, match="formula"):
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
    assert p["pred_prefill_energy_j"].iloc[1] >= p["pred_prefill_energy_j"].iloc[0] * (1 - 1e-12)


@settings(max_examples=20, deadline=None)
@given(noise=st.floats(0.0, 0.05), seed=st.integers(0, 1000))
def test_fit_is_positive_and_finite_on_any_noise(noise, seed):
    df = synthetic_profiles(n=50, noise=noise, seed=seed)
    m = EnergyLensRegressor(n_starts=1, random_state=seed, cv_folds=2).fit(df)
    p = m.structure_.n_coefficients
    assert np.all(np.isfinite(m.coef_)) and np.all(m.coef_[:p] > 0)
    assert m.fitted_count() <= 12
    assert np.all(m.predict(df) > 0)


def test_engine_specific_coefficients_round_trip(tmp_path):
    """Two engines sharing the structure but not the host overheads: each gets its own calibration."""
    true = true_coefficients(seed=11)
    a = synthetic_profiles(n=80, noise=0.02, seed=11, coef=true).assign(source="engine-a")
    slow = true.copy()
    slow[NAMES.index("tau_seq")] *= 8  # a slower host path per running sequence
    b = synthetic_profiles(n=80, noise=0.02, seed=12, coef=slow).assign(source="engine-b")
    both = pd.concat([a, b], ignore_index=True)
    shared = EnergyLensRegressor(structure="physics", n_starts=2).fit(both)
    per_engine = EnergyLensRegressor(structure="physics", n_starts=2, engine_column="source").fit(both)
    assert set(per_engine.engines_) == {"engine-a", "engine-b"}
    assert per_engine.train_metrics_["energy_mape"] < shared.train_metrics_["energy_mape"]
    p = tmp_path / "m.json"
    save_model(per_engine, p)
    back = load_model(p)
    np.testing.assert_allclose(back.predict(both.head(30)), per_engine.predict(both.head(30)), rtol=1e-12)
    unknown = both.head(3).assign(source="engine-c")  # an engine never seen: the shared coefficients
    shared_values = per_engine.structure_.evaluate(
        __import__("energylens.features.physics", fromlist=["x"]).compute_features(unknown), per_engine.coef_)
    np.testing.assert_allclose(per_engine.predict(unknown), shared_values["e_prefill"] + shared_values["e_decode"])


def test_lean_predict_matches_predict_frame_for_every_engine():
    from energylens.model.default import default_model

    m = default_model()
    cfg = synthetic_configs(12, seed=4)
    for engine in [*m.engines_, "never-seen"]:
        rows = cfg.assign(source=engine)
        np.testing.assert_allclose(m.predict(rows), m.predict_frame(rows)["pred_energy_request_j"], rtol=1e-12)


def test_extrapolation_is_flagged():
    """Rows beyond what the model was trained on say why; rows inside say nothing."""
    from energylens.model.default import default_model

    m = default_model()
    base = {"model": "meta-llama/Llama-3.1-8B", "num_gpus": 1, "tp": 1, "pp": 1, "batch_size": 64,
            "input_tokens": 1000, "output_tokens": 256}
    rows = pd.DataFrame([base | {"gpu": "H100"}, base | {"gpu": "V100"}, base | {"gpu": "H100", "input_tokens": 500000},
                         base | {"gpu": "H100", "num_gpus": 4, "pp": 4, "batch_size": 64}])
    flags = m.predict_frame(rows)["extrapolation"].tolist()
    assert flags[0] == ""
    assert "GPU V100" in flags[1] and "not among the trained" in flags[1]
    assert "prompt tokens 500000 outside the trained" in flags[2]
    assert "pp 4 outside the trained" in flags[3]
