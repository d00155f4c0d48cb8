"""What a person sees in the terminal at 100 and 80 columns: numbers and IDs never split, columns left out
named under the table, percents for errors, copy-paste text unwrapped, plurals right (issue 14 follow-up)."""
import json
import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import TEST_COLUMNS, config_rows
from energylens.cli import _console
from energylens.cli._console import constant_first, fmt, metrics_text, percent, plural, print_table

LONG_IDS = ["Qwen/Qwen3-VL-235B-A22B-Instruct-FP8", "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8"]


def lines_fit(out: str, width: int) -> bool:
    return max(map(len, out.splitlines())) <= width and "…" not in out


def test_tests_get_a_wide_terminal_unless_they_set_one(monkeypatch):
    assert _console.console.width == int(TEST_COLUMNS)
    monkeypatch.setenv("COLUMNS", "80")
    assert _console.console.width == 80


ids = st.text(alphabet="abcXYZ0123456789-/.", min_size=1, max_size=45)
numbers = st.one_of(st.integers(-10**7, 10**7), st.floats(-1e7, 1e7, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(width=st.integers(40, 130), rows=st.lists(st.tuples(ids, numbers, numbers, numbers), min_size=1, max_size=6))
def test_print_table_never_splits_a_number_or_an_id(width, rows):
    df = pd.DataFrame(rows, columns=["model", "energy J", "batch", "share %"])
    with pytest.MonkeyPatch.context() as mp, _console.console.capture() as captured:
        mp.setenv("COLUMNS", str(width))
        dropped = print_table(df, title="a title long enough to wrap between its words on a narrow terminal",
                              drop_order=["share %", "batch"])
    out = captured.get()
    kept = [c for c in df.columns if c not in dropped]
    for c in kept:
        for v in df[c]:
            assert fmt(v) in out, (c, fmt(v), out)  # whole, on one line
    if dropped:
        assert f"Not shown at this width: {', '.join(dropped)} (" in " ".join(out.split())
    essential = max(len(m) for m in df["model"]) + max(len(fmt(v)) for v in df["energy J"]) + 1
    if essential + 10 < width:  # the kept columns fit: every line within the terminal
        assert lines_fit(out, width), out


def test_constant_columns_go_first():
    df = pd.DataFrame({"a": [1, 1], "b": [1, 2], "c": ["x", "x"]})
    assert constant_first(df, ["b", "c", "a", "missing"]) == ["c", "a", "b"]


@pytest.mark.parametrize("width", [100, 80])
def test_explain_keeps_numbers_whole_and_names_what_it_left_out(run_cli, tmp_path, monkeypatch, width):
    df = config_rows(5, seed=2, model=LONG_IDS[0])
    df["batch_size"] = [8, 16, 32, 64, 128]
    cfg = tmp_path / "c.csv"
    df.to_csv(cfg, index=False)
    code, js = run_cli("explain", "default", cfg, "--rows", 5, "--json")
    records = json.loads(js)
    monkeypatch.setenv("COLUMNS", str(width))
    code, out = run_cli("explain", "default", cfg, "--rows", 5)
    assert code == 0 and lines_fit(out, width), out
    for r in records:  # J/req always shown, whole; the batch whole where shown
        assert re.search(rf"(?<![\d.]){re.escape(fmt(r['total_j']))}(?![\d.])", out), (fmt(r["total_j"]), out)
    flat = " ".join(out.split())
    monkeypatch.setenv("COLUMNS", "250")
    _, full = run_cli("explain", "default", cfg, "--rows", 5)
    def columns(text):  # the header line: the one above the rule, columns two spaces apart or more
        lines = text.splitlines()
        rule = next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"})
        return set(re.split(r"\s{2,}", lines[rule - 1].strip()))

    missing = sorted(columns(full) - columns(out))
    assert bool(missing) == ("Not shown at this width: " in flat), (missing, out)
    if missing:
        assert all(c in flat.split("Not shown at this width: ")[1] for c in missing)
        assert "(--json or a wider terminal show them)" in flat
    for b in df["batch_size"]:  # each row's label carries its batch, whole
        assert re.search(rf"x\d+[^,\n]*, batch {b}, ", out), (b, out)
    assert "Qwen3-VL-235B-A22B-Instruct-FP8" in out or "model" in flat.split("Not shown at this width:")[1]


def test_plan_says_how_many_rows_it_shows_and_keeps_ids_whole(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out_csv = tmp_path / "sweep.csv"
    code, out = run_cli("plan", "--budget", 20, "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", 2,
                        "-o", out_csv)
    command = f"energylens profile --model meta-llama/Llama-3.1-8B --plan {out_csv} -o runs.csv"
    assert code == 0 and command in out.splitlines(), out  # to copy: one line, however long
    table = out.split("wrote ")[0]
    assert lines_fit(table, 80), out
    flat = " ".join(table.split())
    assert "the first 15 of 20 shown; all are in sweep.csv" in flat
    assert re.search(r"^ *1  (meta-llama/Llama-3\.1-8B  )?H100", table, re.M), table
    if "Not shown at this width" in flat:
        assert "(all columns are in sweep.csv)" in flat


def test_data_summary_prints_model_ids_whole_at_80_columns(run_cli, tmp_path, monkeypatch):
    df = config_rows(6, seed=1)
    df["model"] = LONG_IDS * 3
    df["energy_request_j"] = 10.0
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    monkeypatch.setenv("COLUMNS", "80")
    code, out = run_cli("data", "summary", p)
    assert code == 0 and lines_fit(out, 80), out
    for m in LONG_IDS:
        assert any(m in line for line in out.splitlines()), (m, out)
    assert "6 rows, 2 models, 1 GPU (" in " ".join(out.split())
    code, out = run_cli("data", "validate", p)
    assert "(2 models, 1 GPU)" in " ".join(out.split())


def test_evaluate_headline_prints_percents_and_whole_method_names(capsys, monkeypatch):
    from energylens.cli.evaluate_cmd import HEADLINE_DROP_ORDER, headline_view

    t = pd.DataFrame({"method": ["energylens", "rule_largest_batch", "latency_predicted"],
                      "top1": [0.884, 0.851, 0.005], "top1_2pct": [0.907, 0.889, 0.009], "regret": [0.032, 0.01, 3.074],
                      "regret_le_5pct": [0.935, 0.935, 0.009], "mape": [0.281, float("nan"), float("nan")],
                      "candidates": [7.875] * 3, "scenarios_per_seed": [71.67] * 3, "cells": [2] * 3})
    monkeypatch.setenv("COLUMNS", "60")
    print_table(headline_view(t), drop_order=HEADLINE_DROP_ORDER, how="every column is in report.md")
    out = capsys.readouterr().out
    assert lines_fit(out, 60), out
    for m in t["method"]:
        assert re.search(rf"^{m}\s", out, re.M), (m, out)
    assert "88.4%" in out and "307.4%" in out and "0.884" not in out


def test_error_metrics_read_as_percents():
    assert percent(0.0655) == "6.6%" and percent(1.02) == "102.0%"
    assert percent(None) == "" and percent(float("nan")) == ""
    text = metrics_text({"rows": 904, "energy_mape": 0.2406, "itl_mape": 0.134, "energy_log_rmse": 0.3525})
    assert text == "rows 904, energy MAPE 24.1%, ITL MAPE 13.4%, energy log RMSE 0.3525"


def test_show_prints_percents_and_unwrapped_latex(run_cli, monkeypatch):
    from energylens.export.latex import formula_latex
    from energylens.model.modelfile import load_model

    monkeypatch.setenv("COLUMNS", "60")
    code, out = run_cli("show", "default", "--latex")
    assert code == 0, out
    model = load_model("default")
    latex = formula_latex(model, engine=model.default_engine())  # recommend's coefficients, said in a comment
    assert latex in out.splitlines()  # one line, as copied
    assert f"% coefficients of engine '{model.default_engine()}'" in out
    for line in load_model("default").structure_.formula_lines():
        assert line in out.splitlines()
    from energylens.model.modelfile import read_model_dict

    train = read_model_dict("default")["provenance"]["train_metrics"]
    flat = " ".join(out.split())
    assert f"train metrics (in sample): {metrics_text(train)}" in flat
    assert f"energy MAPE {percent(train['energy_mape'])}" in flat and "energy_mape" not in out


def test_plurals():
    assert plural(1, "GPU") == "1 GPU" and plural(2, "GPU") == "2 GPUs" and plural(0, "model") == "0 models"
    assert plural(1, "copy", "copies") == "1 copy" and plural(3, "copy", "copies") == "3 copies"


def test_recommend_notes_fit_one_line_and_savings_follow_the_objective(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code, out = run_cli("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--gpu", "B200",
                        "--max-gpus", 4, "--objective", "cost")
    assert code == 0 and lines_fit(out, 100), out
    rows = out.splitlines()
    assert any(line.rstrip().endswith("lat-opt") for line in rows) and "latency-\n" not in out
    best = " ".join(out.split()).split("best: ")[1]
    assert re.search(r"\d+\.\d% (lower|higher) cost than lat-opt \(\d+\.\d% (less|more) energy\)", best), best
    code, out = run_cli("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--gpu", "B200",
                        "--max-gpus", 4, "--objective", "cost", "--verbose")
    flat = " ".join(out.split())
    assert "Notes: lat-opt, latency-optimal: " in flat and "TP-def, TP default: " in flat
    best = flat.split("best: ")[1]
    assert re.search(r"\d+\.\d% (lower|higher) cost than the latency-optimal choice \([^)]*; \d+\.\d% (less|more) "
                     r"energy\)", best), best


def test_recommend_states_the_cost_assumptions(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    base = ("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", "2")
    code, out = run_cli(*base, "--objective", "cost")
    flat = " ".join(out.split())
    assert code == 0 and "Prices: cloud rental, power included (USD/GPU-hour: H100-SXM 3.49)" in flat, out
    code, out = run_cli(*base, "--objective", "cost", "--verbose")
    assert code == 0 and "Assumptions:" in out and "PUE" in out and "USD per GPU-hour" in out
    assert "https://www.runpod.io/pricing" in out
