"""Power-law corrections are held to the range of the rows that fitted them (and centred there), not extrapolated."""
import numpy as np
import pandas as pd
import pytest

from energylens.errors import ModelFileError
from energylens.features.physics import compute_features
from energylens.model.estimator import EnergyLensRegressor
from energylens.model.structure import CORRECTION_LIBRARY, Structure, physics_structure
from energylens.recommendation.search import enumerate_candidates

PROMPT = CORRECTION_LIBRARY["c_prompt_time"]


def _rows(prompts):
    cand = enumerate_candidates("meta-llama/Llama-3.1-8B", ["H100"], 1, 1024, 256, [8])
    base = cand[cand["reason"] == ""].iloc[[0]]
    return pd.concat([base.assign(input_tokens=float(p)) for p in prompts], ignore_index=True)


def _with(corrections) -> Structure:
    return physics_structure().with_corrections(corrections)


def test_each_correction_is_held_to_its_range_and_centred():
    s = _with([PROMPT])
    held = s.with_correction_range(compute_features(_rows([250, 300])))
    lo, hi = held.correction_range[0]
    assert lo == pytest.approx(np.log(250 / 1024)) and hi == pytest.approx(np.log(300 / 1024))
    corr_time = next(d for d in held.definitions() if d.name == "corr_time").expression
    assert "min(max(" in corr_time and repr(lo) in corr_time and repr(abs((lo + hi) / 2)) in corr_time
    wide = compute_features(_rows([16, 280, 16000]))
    coef = held.priors()
    coef[-1] = 1.0  # corr_time = exp(group - middle)
    got = held.evaluate(wide, coef)["corr_time"]
    mid = (lo + hi) / 2
    assert np.log(got).tolist() == pytest.approx([lo - mid, np.log(280 / 1024) - mid, hi - mid])


def test_range_round_trips_and_bad_ranges_are_refused():
    s = _with([PROMPT]).with_correction_range(compute_features(_rows([250, 300])))
    back = Structure.from_dict(s.to_dict())
    assert back.correction_range == s.correction_range and back == s
    for bad in ([[1.0, 0.0]], [[0.0, float("inf")]], [[0.0]], [[0.0, 1.0], [0.0, 1.0]], "x", [[True, 1.0]]):
        d = s.to_dict() | {"correction_range": bad}
        with pytest.raises(ModelFileError, match="correction_range"):
            Structure.from_dict(d)


def test_a_narrow_fit_does_not_extrapolate_its_exponent():
    from energylens.evaluation.synthetic import synthetic_profiles

    rows = synthetic_profiles(60, seed=3)
    rows = rows.assign(input_tokens=np.where(np.arange(len(rows)) % 2, 250.0, 300.0))  # generated rows, narrow prompts
    model = EnergyLensRegressor(structure=_with([PROMPT, CORRECTION_LIBRARY["c_prompt"]]), random_state=0,
                                cv_folds=0).fit(rows)
    for lo, hi in model.structure_.correction_range:
        assert hi - lo == pytest.approx(np.log(300 / 250))
    probe = rows.iloc[[0, 0, 0]].assign(input_tokens=[300.0, 4000.0, 16000.0])
    pred = model.predict(probe)
    assert pred[1] > pred[0] and pred[2] > pred[1]  # longer prompts cost more, whatever the fitted exponents


def test_time_corrections_never_beat_the_hardware():
    """A time correction fitted to shrink times is floored at the ideal memory or compute time."""
    s = _with([CORRECTION_LIBRARY["c_batch_time"]]).with_correction_range(compute_features(_rows([500, 600])))
    f = compute_features(_rows([500]))
    coef = s.priors()
    coef[-1] = -5.0  # the steepest exponent allowed, at the range's edge
    out = s.evaluate(f, coef)
    floor = f.pp_slots * np.maximum(out["w_mem_dec"], out["w_flop_dec"])
    assert (out["t_step"] >= floor * (1 - 1e-12)).all()
