"""Power-law corrections are held to the range of the rows that fitted them, not extrapolated."""
import numpy as np
import pandas as pd
import pytest

from energylens.errors import ModelFileError
from energylens.features.physics import compute_features
from energylens.model.estimator import EnergyLensRegressor
from energylens.model.structure import Structure
from energylens.model.terms import CORRECTIONS, PHYSICS_TERMS
from energylens.recommendation.search import enumerate_candidates

PROMPT = next(c for c in CORRECTIONS if c.name == "c_prompt")


def _rows(prompts):
    cand = enumerate_candidates("meta-llama/Llama-3.1-8B", ["H100"], 1, 1024, 256, [8])
    base = cand[cand["reason"] == ""].iloc[[0]]
    return pd.concat([base.assign(input_tokens=float(p)) for p in prompts], ignore_index=True)


def test_design_holds_each_correction_to_its_range():
    s = Structure("t", PHYSICS_TERMS, (PROMPT,))
    f = compute_features(_rows([250, 300]))
    held = s.with_correction_range(f)
    lo, hi = held.correction_range[0]
    assert lo == pytest.approx(np.log(250 / 1024)) and hi == pytest.approx(np.log(300 / 1024))
    wide = compute_features(_rows([16, 280, 16000]))
    z = held.energy_design(wide)[2][:, 0]
    assert z.tolist() == pytest.approx([lo, np.log(280 / 1024), hi])
    assert s.energy_design(wide)[2][2, 0] == pytest.approx(np.log(16000 / 1024))  # unfitted: no range
    assert "held within" in held.formula_lines()[-1]


def test_range_round_trips_and_bad_ranges_are_refused():
    s = Structure("t", PHYSICS_TERMS, (PROMPT,)).with_correction_range(compute_features(_rows([250, 300])))
    back = Structure.from_dict(s.to_dict())
    assert back.correction_range == s.correction_range
    for bad in ([[1.0, 0.0]], [[0.0, float("inf")]], [[0.0]], [[0.0, 1.0], [0.0, 1.0]], "x", [[True, 1.0]]):
        d = s.to_dict() | {"correction_range": bad}
        with pytest.raises(ModelFileError, match="correction_range"):
            Structure.from_dict(d)
    old = s.to_dict()
    del old["correction_range"]  # files written before ranges existed: no range, as before
    assert Structure.from_dict(old).correction_range == ()


def test_a_narrow_fit_does_not_extrapolate_its_exponent(tmp_path):
    from energylens.evaluation.synthetic import synthetic_profiles

    rows = synthetic_profiles(60, seed=3)
    rows = rows.assign(input_tokens=np.where(np.arange(len(rows)) % 2, 250.0, 300.0))  # generated rows, narrow prompts
    s = Structure("physics+c_prompt", PHYSICS_TERMS, (PROMPT,))
    model = EnergyLensRegressor(structure=s, random_state=0).fit(rows)
    lo, hi = model.structure_.correction_range[0]
    assert hi - lo == pytest.approx(np.log(300 / 250))
    probe = rows.iloc[[0, 0, 0]].assign(input_tokens=[300.0, 4000.0, 16000.0])
    pred = model.predict(probe)
    assert pred[1] > pred[0] and pred[2] > pred[1]  # longer prompts cost more, whatever the fitted exponent


def test_compiled_evaluator_applies_the_same_range():
    pytest.importorskip("numba")
    from energylens.model.compiled import CompiledEnergy, columns_of, probe_rows, reference_energy

    probe = probe_rows()
    f = compute_features(probe)
    corr = tuple(c for c in CORRECTIONS if c.name in ("c_prompt", "c_batch", "c_idle"))
    s = Structure("t", PHYSICS_TERMS, corr)
    z = s.energy_design(f)[2]
    mid = np.median(z, axis=0)
    held = Structure("t", PHYSICS_TERMS, corr, correction_range=tuple((m - 0.1, m + 0.1) for m in mid))
    rng = np.random.default_rng(0)
    coefs = np.r_[rng.uniform(0.2, 3.0, held.n_terms), rng.uniform(-1, 1, len(corr))]
    got = CompiledEnergy(held)(columns_of(probe), coefs)
    want = reference_energy(held, probe, coefs)
    assert np.allclose(got, want, rtol=1e-12, atol=0)
    assert not np.allclose(want, reference_energy(s, probe, coefs))  # the range is active on the probes
