"""`fit --from` compares, by cross-validation on the user's rows, the base model as it is, its recalibration and
a fit from scratch, prints the three errors and keeps the best (or the one --choose names)."""
import json

import numpy as np
import pytest

from energylens.evaluation.synthetic import synthetic_profiles
from energylens.model.default import default_model
from energylens.model.estimator import compare_recalibration, recalibrate, recalibration


def test_recalibration_cv_judges_the_recalibration_not_a_free_fit():
    rows = synthetic_profiles(40, seed=0)  # generated rows, far from the shipped coefficients
    model, refit = recalibration(default_model(), rows)
    model.fit(rows)
    # Coefficients held at the base values stay held inside every fold: the CV error cannot be far below what
    # the recalibration achieves on the rows it was fitted on.
    assert model.cv_["mape"] > 0.5 * model.train_metrics_["energy_mape"]
    assert set(refit) and all(r.recalibrate for r in model.structure_.records() if r.name in refit)


def test_the_kept_model_is_never_worse_than_its_base_by_cross_validation():
    rows = synthetic_profiles(40, seed=0)
    cmp = compare_recalibration(default_model(), rows)
    assert set(cmp) >= {"base", "recalibrate", "fresh", "best"}
    scores = {k: cmp[k]["log_mae"] for k in ("base", "recalibrate", "fresh") if cmp[k] is not None}
    assert cmp["best"] == min(scores, key=scores.get)
    model, cmp2, _ = recalibrate(default_model(), rows)
    assert cmp2["kept"] == cmp["best"]
    if cmp["best"] == "base":
        assert model is not None


def test_rows_the_base_model_already_fits_keep_the_base():
    """Rows predicted by the base model itself (generated from it, no noise): nothing beats it."""
    m = default_model()
    rows = synthetic_profiles(30, seed=5, noise=0.0)
    rows = rows.assign(source="mlenergy-v3")
    rows["energy_request_j"] = m.predict(rows)
    rows = rows.drop(columns=["prefill_energy_j", "decode_energy_j", "energy_token_j", "avg_power_w", "ttft_s", "itl_s"])
    cmp = compare_recalibration(m, rows)
    assert cmp["base"]["mape"] == pytest.approx(0.0, abs=1e-9) and cmp["best"] == "base"


def test_fit_from_prints_the_three_errors_and_records_the_choice(tmp_path, run_cli):
    csv = tmp_path / "rows.csv"
    synthetic_profiles(40, seed=0).to_csv(csv, index=False)
    out = tmp_path / "m.json"
    code, text = run_cli("fit", csv, "--from", "default", "-o", out)
    assert code == 0, text
    assert "the base model as it is" in text and "its recalibration" in text and "a fit from scratch" in text
    rec = json.loads(out.read_text())["provenance"]["recalibrated_from"]
    assert rec["kept"] in ("base", "recalibrate", "fresh")
    assert np.isfinite(rec["comparison"]["base"]["mape"]) and np.isfinite(rec["comparison"]["fresh"]["mape"])
    code, text = run_cli("fit", csv, "--from", "default", "--choose", "recalibrate", "-o", tmp_path / "r.json")
    assert code == 0 and "kept its recalibration (--choose)" in text
    code, text = run_cli("fit", csv, "--choose", "fresh", "-o", tmp_path / "x.json")
    assert code == 2 and "--choose needs --from" in text
    code, text = run_cli("fit", csv, "--from", "default", "--choose", "best", "-o", tmp_path / "y.json")
    assert code == 2 and "--choose must be one of" in text


def test_too_few_rows_for_a_fresh_fit(tmp_path, run_cli):
    rows = synthetic_profiles(6, seed=2)
    csv = tmp_path / "few.csv"
    rows.to_csv(csv, index=False)
    code, text = run_cli("fit", csv, "--from", "default", "-o", tmp_path / "m.json")
    assert code == 0, text
    assert "a fit from scratch: needs more rows" in text
    notes = [ln for ln in text.splitlines() if ln.strip().startswith("note:")]
    assert sum("kept at their priors" in ln for ln in notes) <= 1


def test_a_recalibration_keeps_the_base_models_domain():
    """A recalibration refits a few coefficients on the user's rows; the structure and the rest still rest on the
    base model's rows, so what the base covered is not flagged as an extrapolation."""
    base = default_model()
    rows = synthetic_profiles(8, seed=3)
    model, cmp, _ = recalibrate(base, rows, choice="recalibrate")
    dom, was = model.domain_, base.domain_
    assert set(was.gpus) <= set(dom.gpus) and set(rows["gpu"].astype(str)) <= set(dom.gpus)
    for k, (lo, hi) in was.ranges.items():
        assert dom.ranges[k][0] <= lo and dom.ranges[k][1] >= hi, k
