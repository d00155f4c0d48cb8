"""Discovery: symbolic regression of the physics form's residual; its front becomes candidate
structures compared by cross-validation; `discover -o` writes a model that every command accepts."""
import json

import numpy as np
import pandas as pd
import pytest

from energylens.evaluation.synthetic import synthetic_profiles
from energylens.model.structure import CORRECTION_LIBRARY, Structure, compact_structure

pytest.importorskip("pyoperon")


@pytest.fixture(scope="module")
def with_hidden_power_law():
    """Synthetic rows (compact form) whose power demand also scales as batch^-0.6: a correction to find."""
    s = compact_structure().with_corrections([CORRECTION_LIBRARY["c_batch"]])
    coef = np.r_[[c.prior for c in s.coefficients], -0.6]
    return synthetic_profiles(n=120, noise=0.02, seed=3, structure=s, coef=coef)


def test_front_becomes_readable_candidates(with_hidden_power_law):
    from energylens.discovery import discover

    found = discover(with_hidden_power_law, seed=0, time_budget=3, population_size=60, generations=20, max_length=11)
    assert len(found.front) >= 1 and {"complexity", "r2_residual", "monomials"} <= set(found.front.columns)
    assert found.candidates, "the front produced no candidate structure"
    for s in found.candidates:
        assert isinstance(s, Structure)
        new = [*s.corrections, *(c for c in s.coefficients if c.name.startswith("theta_d_"))]
        assert new and all(c.provenance.startswith("monomial found by symbolic regression") for c in new)
    # The planted power law in the running batch is among the discovered monomials.
    assert any("batch" in c.name for s in found.candidates for c in s.corrections)
    again = discover(with_hidden_power_law, seed=0, time_budget=3, population_size=60, generations=20, max_length=11)
    assert list(again.front["monomials"]) == list(found.front["monomials"])  # reproducible for a seed


def test_discover_writes_a_model_every_command_accepts(tmp_path, run_cli, with_hidden_power_law):
    data, cfg = tmp_path / "runs.csv", tmp_path / "cfg.csv"
    with_hidden_power_law.to_csv(data, index=False)
    with_hidden_power_law.drop(columns=["energy_request_j", "energy_token_j", "prefill_energy_j", "decode_energy_j",
                                        "itl_s", "ttft_s"]).head(7).to_csv(cfg, index=False)
    model = tmp_path / "disc.json"
    code, out = run_cli("discover", data, "-o", model, "--time-budget", 2, "--population", 40, "--front", tmp_path / "f.csv")
    assert code == 0, out
    d = json.loads(model.read_text())
    assert d["structure"]["coefficients"] and d["cross_validation"]["folds"] == 5
    assert d["fitted_numbers"]["energy"] <= 12 and "cross-validation" in d["structure"]["why"]
    assert len(pd.read_csv(tmp_path / "f.csv")) >= 2
    code, out = run_cli("predict", model, cfg, "-o", tmp_path / "p.csv")
    assert code == 0, out
    pred = pd.read_csv(tmp_path / "p.csv")
    assert len(pred) == 7 and (pred["pred_energy_request_j"] > 0).all()
    for args in (("explain", model, cfg), ("show", model), ("fit", data, "--from", model, "-o", tmp_path / "re.json"),
                 ("fit", data, "--structure", model, "-o", tmp_path / "same.json"),
                 ("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", 2,
                  "--input-tokens", 512, "--output-tokens", 128, "--model-file", model)):
        code, out = run_cli(*args)
        assert code == 0, (args[0], out)
    same = json.loads((tmp_path / "same.json").read_text())
    assert same["structure"]["corrections"] == d["structure"]["corrections"]
