"""fit / predict / explain / show from the command line, and recalibration with --from."""
import json

import pandas as pd
import pytest

from energylens.evaluation.synthetic import synthetic_profiles

MEASURED = ["energy_request_j", "energy_token_j", "prefill_energy_j", "decode_energy_j", "itl_s", "ttft_s", "avg_power_w"]


@pytest.fixture
def files(tmp_path):
    df = synthetic_profiles(n=80, seed=2)
    train, cfg = tmp_path / "train.csv", tmp_path / "cfg.csv"
    df.to_csv(train, index=False)
    df.drop(columns=MEASURED).head(12).to_csv(cfg, index=False)
    return tmp_path, train, cfg


def test_fit_predict_explain_show(files, run_cli):
    tmp, train, cfg = files
    model, pred = tmp / "m.json", tmp / "p.csv"
    code, out = run_cli("fit", train, "-o", model, "--samples", 50, "--seed", 3)
    assert code == 0 and "fitted 50 rows" in out, out
    prov = json.loads(model.read_text())["provenance"]
    assert prov["rows"] == 50 and prov["seed"] == 3 and "energylens fit" in prov["command"]
    code, out = run_cli("predict", model, cfg, "-o", pred)
    assert code == 0, out
    p = pd.read_csv(pred)
    assert len(p) == 12 and {"pred_energy_request_j", "pred_energy_token_j", "pred_prefill_energy_j",
                             "pred_decode_energy_j", "pred_ttft_s", "pred_itl_s"} <= set(p.columns)
    code, out = run_cli("explain", model, train, "--rows", 3)
    assert code == 0 and "memory%" in out and "meas. pf%" in out and "pf%" in out
    code, out = run_cli("explain", model, cfg, "--json")
    rows = json.loads(out)
    from energylens.model.terms import GROUPS

    assert len(rows) == 10 and abs(sum(rows[0][f"{g}_pct"] for g in GROUPS) - 100) < 1e-6
    code, out = run_cli("show", model, "--latex")
    assert code == 0 and "tau_mem" in out and r"E_{\mathrm{request}}" in out and "fitted numbers" in out


def test_fit_more_samples_than_rows(files, run_cli):
    tmp, train, _ = files
    code, out = run_cli("fit", train, "-o", tmp / "m.json", "--samples", 5000)
    assert code == 2 and "exceeds" in out and not (tmp / "m.json").exists()


def test_predict_with_truncated_model(files, run_cli):
    tmp, train, cfg = files
    model = tmp / "m.json"
    run_cli("fit", train, "-o", model)
    model.write_text(model.read_text()[:300])
    code, out = run_cli("predict", model, cfg, "-o", tmp / "never.csv")
    lines = out.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {model}: not valid JSON")
    assert not (tmp / "never.csv").exists()
    # A real process, where a traceback could show: one line on stderr, nothing on stdout.
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "energylens", "predict", str(model), str(cfg), "-o", str(tmp / "never.csv")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr and not (tmp / "never.csv").exists()


def test_recalibration_keeps_structure_coefficients(files, run_cli, tmp_path):
    tmp, train, _ = files
    base = tmp / "base.json"
    run_cli("fit", train, "-o", base, "--structure", "physics")
    # A "new cluster": the same formula with 30% more static power and slower memory.
    new = synthetic_profiles(n=5, seed=9)
    new["energy_request_j"] *= 1.3
    new = new.drop(columns=["prefill_energy_j", "decode_energy_j"])
    new_csv = tmp / "new.csv"
    new.to_csv(new_csv, index=False)
    tuned = tmp / "tuned.json"
    code, out = run_cli("fit", new_csv, "--from", base, "--choose", "recalibrate", "-o", tuned)
    assert code == 0, out
    b, t = json.loads(base.read_text()), json.loads(tuned.read_text())
    for name in ("tau_comm", "a_comm"):  # structural: never recalibrated
        assert t["shared"]["values"][name] == pytest.approx(b["shared"]["values"][name])
    refit = [n for n in ("tau_mem", "s_static", "a_mem", "tau_host") if t["shared"]["values"][n] != b["shared"]["values"][n]]
    assert refit, "recalibration moved no hardware/engine coefficient"
    rec = t["provenance"]["recalibrated_from"]
    assert rec["file"] == str(base) and "s_static" in rec["refit"] and rec["base_provenance"]["rows"] == 80
