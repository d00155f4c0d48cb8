"""A recalibration is cross-validated as a recalibration, and `fit --from` says when a fresh fit is far better."""
import json

import numpy as np

from energylens.evaluation.synthetic import synthetic_profiles
from energylens.model.default import default_model
from energylens.model.estimator import recalibration, recalibration_check


def test_recalibration_cv_judges_the_recalibration_not_a_free_fit():
    rows = synthetic_profiles(40, seed=0)  # generated rows, far from the shipped coefficients
    model, refit = recalibration(default_model(), rows)
    model.fit(rows)
    in_sample = model.train_metrics_["energy_mape"]
    # Coefficients held at the base values stay held inside every fold: the CV error cannot be far below
    # what the recalibration achieves on the rows it was fitted on.
    assert model.cv_["mape"] > 0.5 * in_sample
    check = recalibration_check(model, rows)
    assert check["fresh_is_better"] and check["fresh_cv_mape"] < check["recalibrated_cv_mape"]


def test_too_few_rows_for_a_fresh_fit_gives_no_check():
    rows = synthetic_profiles(8, seed=1)
    model, _ = recalibration(default_model(), rows)
    model.fit(rows)
    assert recalibration_check(model, rows) is None


def test_fit_from_warns_and_records_the_check(tmp_path, run_cli):
    csv = tmp_path / "rows.csv"
    synthetic_profiles(40, seed=0).to_csv(csv, index=False)
    out = tmp_path / "m.json"
    code, text = run_cli("fit", csv, "--from", "default", "-o", out)
    assert code == 0
    assert "warning: these rows are far from the base model" in text and "drop --from" in text
    check = json.loads(out.read_text())["provenance"]["recalibrated_from"]["check"]
    assert check["fresh_is_better"] is True and np.isfinite(check["fresh_cv_mape"])


def test_fit_from_gathers_kept_coefficients_on_one_line_per_reason(tmp_path, run_cli):
    rows = synthetic_profiles(6, seed=2)
    csv = tmp_path / "few.csv"
    rows.to_csv(csv, index=False)
    code, text = run_cli("fit", csv, "--from", "default", "-o", tmp_path / "m.json")
    assert code == 0
    notes = [ln for ln in text.splitlines() if ln.strip().startswith("note:")]
    assert sum("kept at the base model's values" in ln for ln in notes) == 1
    assert not any("(held fixed)" in ln for ln in notes)
    assert "energy and" in text and "time coefficients free to move" in text
