"""Every place that shows predictions says when one extrapolates and how uncertain the ranking is: recommend's
table (note `extrap`) and footer (the best row's 95% interval, the overlap of the next rows' intervals) at 80,
100 and 250 columns, its --verbose reasons, its --json fields, and explain's table, --verbose and --json."""
import json
import re

import pytest
from typer.testing import CliRunner

from conftest import config_rows
from energylens import recommend
from energylens.cli import _recommend_view as view
from energylens.cli._console import FOOTER_LINES, fmt
from energylens.cli.main import app

WIDTHS = (80, 100, 250)
# Pipeline-parallel rows lie outside the shipped model's training rows (pp 1 only): some rows extrapolate.
ARGS = dict(model="meta-llama/Llama-3.1-8B", gpus=["H100", "B200"], max_gpus=4)
CLI = ["recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--gpu", "B200", "--max-gpus", "4"]
ROW = re.compile(r"^(\d+|\(\d+\))\s")


def render(args, columns):
    r = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": str(columns)})
    assert r.exit_code == 0, (r.output, r.exception)
    return r.output


def flat(text: str) -> str:
    return " ".join(text.split())


def table_and_footer(out: str):
    """(rows: each a list of its printed lines, footer lines) of recommend's output."""
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"}) + 1
    rows = []
    while i < len(lines) and (ROW.match(lines[i]) or lines[i].startswith(" ")):
        if ROW.match(lines[i]):
            rows.append([lines[i]])
        else:
            rows[-1].append(lines[i])
        i += 1
    return rows, lines[i:]


@pytest.fixture(scope="module")
def rec():
    return recommend(**ARGS)


@pytest.fixture(scope="module")
def outs():
    return {w: render(CLI, w) for w in WIDTHS} | {"verbose": render(CLI + ["--verbose"], 100)}


def test_the_case_has_rows_inside_and_outside_the_training_domain(rec):
    shown = view.shown_rows(rec)
    flagged = shown["extrapolation"].astype(str) != ""
    assert flagged.any() and (~flagged).any()
    assert rec.attrs["intervals_overlap"] >= 1 and view.interval_rows(rec.table) == min(50, len(rec.table))


@pytest.mark.parametrize("width", WIDTHS)
def test_recommend_marks_extrapolating_rows_and_gives_the_best_interval(rec, outs, width):
    out = outs[width]
    rows, footer = table_and_footer(out)
    shown = view.shown_rows(rec)
    assert len(rows) == len(shown)
    for printed, (_, row) in zip(rows, shown.iterrows()):
        assert printed[0].split()[0] == row["table_rank"]
        marked = any(line.rstrip().endswith(view.EXTRAP) for line in printed)
        assert marked == bool(row["extrapolation"]), (printed, row["extrapolation"])
    assert 1 <= len(footer) <= FOOTER_LINES and max(map(len, out.splitlines())) <= width, footer
    text = flat(" ".join(footer))
    best = rec.table.iloc[0]
    interval = f"95% interval of the best: {fmt(best['energy_request_lo_j'])}-{fmt(best['energy_request_hi_j'])} J/req"
    assert interval in text, text
    assert best["energy_request_lo_j"] < best["energy_request_j"] < best["energy_request_hi_j"]
    k, others = rec.attrs["intervals_overlap"], view.interval_rows(rec.table) - 1
    which = f"all the next {others}" if k == others else f"{k} of the next {others}"
    assert f"overlapping {which}: their order is uncertain" in text
    assert "extrap: outside the model's training data" in text


def test_overlap_wording_follows_the_count(rec):
    res = rec.table.copy()
    others = view.interval_rows(res) - 1
    for k, words in ((0, f"overlapping none of the next {others}"), (3, f"overlapping 3 of the next {others}"),
                     (others, f"overlapping all the next {others}: their order is uncertain")):
        res.attrs["intervals_overlap"] = k
        assert view.overlap_text(res).startswith(words)
    res.attrs["objective"] = "cost"  # energy intervals say nothing of the cost order: the words say so
    assert view.overlap_text(res).endswith("their energy order is uncertain")
    res.attrs.pop("intervals_overlap")
    assert view.overlap_text(res) == ""
    assert view.uncertainty_line(res, view.shown_rows(rec)).startswith("95% interval of the best: ")


def test_verbose_gives_each_reason_with_its_rows(rec, outs):
    text = flat(outs["verbose"])
    shown = view.shown_rows(rec)
    for why, rows in shown[shown["extrapolation"] != ""].groupby("extrapolation", sort=False):
        assert f"extrap {', '.join('#' + r for r in rows['table_rank'])}: {why}." in text, why
    assert "training-domain check cover the best 50 rows" in text
    unchecked = shown[shown["energy_request_lo_j"].isna()]
    if len(unchecked):
        assert "Not checked for extrapolation and without an interval" in text


def test_json_carries_the_intervals_and_the_extrapolation(rec, run_cli):
    code, out = run_cli(*CLI, "--json")
    d = json.loads(out)
    assert code == 0 and d["intervals_overlap"] == rec.attrs["intervals_overlap"] and d["interval_rows"] == 50
    for key in ("energy_request_lo_j", "energy_request_hi_j", "extrapolation"):
        assert key in d["columns"]
    shown = view.shown_rows(rec)
    assert len(d["recommendations"]) == len(shown)
    for r, (_, row) in zip(d["recommendations"], shown.iterrows()):
        assert r["extrapolation"] == row["extrapolation"]
        if r["energy_request_lo_j"] is not None:
            assert r["energy_request_lo_j"] <= r["energy_request_j"] <= r["energy_request_hi_j"]
    assert any(r["extrapolation"] for r in d["recommendations"])
    assert any(n.startswith("extrap #") for n in d["footnotes"])


def test_wide_table_has_the_interval_columns(rec):
    frame, drop = view.table_frame(view.shown_rows(rec), rec.table, wide=True)
    assert drop == [] and list(frame["J/req\nlo95"])[0] == pytest.approx(rec.table.iloc[0]["energy_request_lo_j"])


@pytest.fixture(scope="module")
def explain_file(tmp_path_factory):
    df = config_rows(6, seed=1, model="meta-llama/Llama-3.1-70B-Instruct")
    df["gpu"] = ["H100", "B200"] * 3
    df["num_gpus"] = [1, 2, 4, 8, 4, 8]
    df["tp"] = [1, 2, 4, 8, 2, 4]
    df["pp"] = [1, 1, 1, 1, 2, 2]  # the last two extrapolate (pp 2: the shipped model saw pp 1 only)
    path = tmp_path_factory.mktemp("explain") / "cfg.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("width", WIDTHS)
def test_explain_flags_extrapolating_rows(explain_file, width):
    from energylens.model.default import default_model
    import pandas as pd

    why = default_model().predict_frame(pd.read_csv(explain_file))["extrapolation"].tolist()
    assert why[-1] and not why[0]
    out = render(["explain", "default", explain_file], width)
    rows = [line for line in out.splitlines() if re.match(r"^\d+\s+(H100-SXM|B200) x", line)]
    assert len(rows) == len(why), out
    for line, w in zip(rows, why):
        assert line.rstrip().endswith("extrap") == bool(w), line
    assert "extrap: outside the model's training data (--verbose: why)." in flat(out)
    assert max(map(len, out.splitlines())) <= width


def test_explain_verbose_and_json_give_the_reason_and_interval(explain_file, run_cli):
    out = flat(render(["explain", "default", explain_file, "--verbose"], 100))
    code, text = run_cli("explain", "default", explain_file, "--json")
    rows = json.loads(text)
    assert code == 0 and [bool(r["extrapolation"]) for r in rows] == [False] * 4 + [True] * 2
    flagged = [r for r in rows if r["extrapolation"]]
    assert f"extrap #5, #6: {flagged[0]['extrapolation']}." in out
    for r in rows:
        assert r["pred_energy_request_lo_j"] < r["total_j"] < r["pred_energy_request_hi_j"]
