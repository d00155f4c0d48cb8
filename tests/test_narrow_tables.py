"""Tables that keep what matters at 80, 100 and 250 columns: recommend keeps J/req and J/tok to the end,
explain keeps each row's identity in a label, discover keeps its criterion, and at most six lines sit under
a table unless --verbose asks for the definitions (which --json always carries)."""
import json
import re

import pytest
from typer.testing import CliRunner

from conftest import config_rows
from energylens.cli._console import FOOTER_LINES
from energylens.cli.main import app

WIDTHS = (80, 100, 250)
RECOMMEND = ["recommend", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100", "--gpu", "B200",
             "--max-gpus", "8"]
ROW = re.compile(r"^(\d+|\(\d+\))\s")


def render(args, columns):
    r = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": str(columns)})
    assert r.exit_code == 0, (r.output, r.exception)
    return r.output


def split(out: str, row=ROW):
    """(header lines, row lines, footer lines) of a command's output with one table."""
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"})
    end = rule + 1
    while end < len(lines) and (row.match(lines[end]) or lines[end].startswith(" ")):
        end += 1
    return lines[:rule], lines[rule + 1:end], lines[end:]


@pytest.fixture(scope="module")
def recommend_out():
    return {w: render(RECOMMEND, w) for w in WIDTHS} | {"verbose": render(RECOMMEND + ["--verbose"], 100)}


@pytest.mark.parametrize("width", WIDTHS)
def test_recommend_keeps_the_energy_columns_and_a_short_footer(recommend_out, width):
    out = recommend_out[width]
    header, rows, footer = split(out)
    head = " ".join(" ".join(header).split())
    assert "J/req" in head and "J/tok" in head and "note" in head and "GPUs" in head, head
    assert len(rows) >= 10 and max(map(len, out.splitlines())) <= width
    assert 1 <= len(footer) <= FOOTER_LINES, footer
    text = " ".join(" ".join(footer).split())
    assert text.startswith("best: ") and "J/request" in text and "J/token" in text
    assert text.endswith("--verbose: definitions and sources.")
    if width == 250:  # room for everything: the counts, the note labels and the prices are there too
        assert "candidates" in text and "lat-opt: " in text and "Prices: cloud rental, power included" in text


def test_recommend_verbose_prints_the_definitions_that_json_carries(recommend_out, run_cli):
    verbose = " ".join(recommend_out["verbose"].split())
    for words in ("Latency: TTFT", "Notes: lat-opt, latency-optimal", "SLOs: TTFT <= 2000 ms", "Assumptions:",
                  "https://www.runpod.io/pricing", "Model structure:"):
        assert words in verbose, words
    code, out = run_cli(*RECOMMEND, "--json")
    notes = json.loads(out)["footnotes"]
    assert code == 0 and any(n.startswith("Latency: TTFT") for n in notes)
    assert all(" ".join(n.split()) in verbose for n in notes if not n.startswith("Not shown"))


@pytest.mark.parametrize("width", WIDTHS)
def test_explain_keeps_each_rows_identity_in_a_label(tmp_path, width):
    df = config_rows(8, seed=1, model="meta-llama/Llama-3.1-70B-Instruct")
    df["gpu"] = ["H100", "B200"] * 4
    df["num_gpus"] = [1, 2, 4, 8, 1, 2, 4, 8]
    df["tp"] = [1, 2, 4, 8, 1, 2, 2, 4]
    df["pp"] = [1, 1, 1, 1, 1, 1, 2, 2]
    cfg = tmp_path / "cfg.csv"
    df.to_csv(cfg, index=False)
    out = render(["explain", "default", cfg], width)
    label = re.compile(r"^\s*(\d+)\s+((?:H100-SXM|B200) x(\d+)(?: (\S+))?, batch (\d+), (\d+)→(\d+) tok)\s+[\d,.]+")
    rows = [m for m in map(label.match, out.splitlines()) if m]
    assert len(rows) == len(df), out
    for m, (_, r) in zip(rows, df.iterrows()):  # the label is the row's own configuration
        assert int(m.group(3)) == r["num_gpus"] and int(m.group(5)) == r["batch_size"]
        assert (int(m.group(6)), int(m.group(7))) == (r["input_tokens"], r["output_tokens"])
        assert (m.group(4) or "single") == {(1, 1): "single", (2, 1): "tp2", (4, 1): "tp4", (8, 1): "tp8",
                                            (2, 2): "tp2·pp2", (4, 2): "tp4·pp2"}[(r["tp"], r["pp"])]
    lines = out.splitlines()
    assert "J/req" in " ".join(lines[:3]) and "Llama-3.1-70B-Instruct" in " ".join(lines[:3])
    footer = lines[lines.index(next(ln for ln in lines if label.match(ln) and int(label.match(ln).group(1)) == 8)) + 1:]
    assert 1 <= len(footer) <= FOOTER_LINES and max(map(len, lines)) <= width, footer


@pytest.mark.parametrize("width", WIDTHS)
def test_discover_keeps_its_criterion_and_tie_break(width, monkeypatch, capsys):
    from energylens.cli._console import print_table
    from energylens.cli.discover_cmd import COMPARISON_DROP_ORDER, comparison_view

    compared = [{"structure": "physics+corrections", "corrections": ["c_idle", "c_batch_pow"], "fitted": 12,
                 "within_budget": True, "cv_log_mae": 0.237, "cv_mape": 0.244},
                {"structure": "physics", "corrections": [], "fitted": 10, "within_budget": True,
                 "cv_log_mae": 0.2412, "cv_mape": 0.251},
                {"structure": "compact", "corrections": ["c_idle", "m1: batch^0.5 * input_tokens"], "fitted": 7,
                 "within_budget": False, "cv_log_mae": 0.29, "cv_mape": 0.31}]
    monkeypatch.setenv("COLUMNS", str(width))
    view = comparison_view(compared)
    assert list(view["cv_log_mae"]) == sorted(view["cv_log_mae"])  # rows in the criterion's order
    print_table(view, title="All 3 structures compared", drop_order=COMPARISON_DROP_ORDER)
    out = capsys.readouterr().out
    head = " ".join(out.splitlines()[:3])
    assert "cv_log_mae" in head and "fitted" in head and "structure" in head
    assert "cv_log_mae" not in COMPARISON_DROP_ORDER and "fitted" not in COMPARISON_DROP_ORDER
    assert max(map(len, out.splitlines())) <= width
