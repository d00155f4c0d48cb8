"""The fast paths give the reference path's numbers: the compiled evaluator (to 1e-12 relative),
streamed prediction files (identical to in-memory ones), and the vectorized candidate space."""
import numpy as np
import pandas as pd
import pytest

from energylens.model import compiled
from energylens.model.default import default_model
from energylens.model.structure import compact_structure, physics_structure

RTOL = 1e-12


def _agree(structure, df, coefs):
    ev = compiled.CompiledEnergy(structure)  # no self-check: a disagreement must fail here
    got = ev(compiled.columns_of(df), coefs)
    want = compiled.reference_energy(structure, df, coefs)
    assert np.isfinite(want).all()
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)


needs_numba = pytest.mark.skipif(not compiled.numba_available(), reason="numba (the `fast` extra) not installed")


@needs_numba
@pytest.mark.parametrize("make", [lambda: default_model().structure_, compact_structure, physics_structure])
def test_compiled_equals_reference_on_probe_rows(make):
    """Dense, MoE (expert parallel across replicas), SSM, hybrid, vision, fp8/int4, MLA and sliding-window
    rows, shapes from parameter counts, memory-capped batches."""
    structure = make()
    probe = compiled.probe_rows()
    rng = np.random.default_rng(1)
    coefs = np.r_[rng.uniform(0.1, 5, structure.n_terms), rng.uniform(-2, 2, len(structure.corrections))]
    _agree(structure, probe, coefs)


@needs_numba
def test_compiled_equals_reference_on_real_rows(data_dir):
    from energylens.data.importers import import_dataset
    from energylens.data.schema import load_profiles

    model = default_model()
    v3 = import_dataset("mlenergy-v3", data_dir / "mlenergy-v3")
    h100 = load_profiles(data_dir / "gpu-prefill-decode" / "h100.csv")
    for df in (v3, h100):
        _agree(model.structure_, df, model.coef_)


@needs_numba
def test_compiled_equals_reference_on_recommend_candidates():
    from energylens.recommendation.search import enumerate_candidates

    model = default_model()
    for name, vis in (("meta-llama/Llama-3.1-70B-Instruct", 0), ("Qwen/Qwen3-30B-A3B", 0), ("Qwen/Qwen3-VL-30B-A3B-Instruct", 512),
                      ("nvidia/NVIDIA-Nemotron-Nano-12B-v2-VL-BF16", 256)):
        cand = enumerate_candidates(name, ["H100", "B200", "A100"], 16, 1024, 256, [1, 8, 64, 512], visual_tokens=vis)
        _agree(model.structure_, cand[cand["reason"] == ""], model.coef_)


@needs_numba
def test_predict_uses_engine_coefficient_sets(monkeypatch, data_dir):
    """Per-engine coefficients: rows of each known engine, of an unknown one and with none, in one table."""
    from energylens.data.importers import import_dataset

    model = default_model()
    assert len(model.engines_) >= 2
    v3 = import_dataset("mlenergy-v3", data_dir / "mlenergy-v3").head(200).reset_index(drop=True)
    engines = [*model.engines_, "unknown-engine", None]
    v3[model.engine_column] = [engines[i % len(engines)] for i in range(len(v3))]
    monkeypatch.setattr(compiled, "COMPILE_MIN_ROWS", 0)
    fast = compiled.predict_energy(model, v3)
    assert fast is not None
    monkeypatch.setattr(compiled, "COMPILE_MIN_ROWS", 10**12)
    ref = model.predict(v3)
    np.testing.assert_allclose(fast, ref, rtol=RTOL, atol=0)
    # the sets differ, so a row priced with the wrong set would show
    shared = default_model()
    shared.engines_ = {}
    assert np.abs(shared.predict(v3) / ref - 1).max() > 1e-3


@needs_numba
def test_a_physics_change_falls_back_to_the_reference(monkeypatch):
    """The kernel is checked against compute_features before use: a stale kernel is never used."""
    structure = compact_structure()
    reference = compiled.reference_energy
    monkeypatch.setattr(compiled, "reference_energy", lambda *a: reference(*a) * (1 + 1e-9))
    compiled._checked.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="disagrees with compute_features"):
            assert compiled.compiled_energy(structure) is None
    finally:
        compiled._checked.cache_clear()
