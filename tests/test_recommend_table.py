"""`energylens recommend` and `catalog` read by a person: tables that fit 100 and 80 columns without a cut
cell or an exponent, units in headers, ranks that do not jump unexplained, catalog IDs whole with their
sources, one parser for number lists, the shipped model by name, and a Pareto plot that marks its points."""
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from energylens import recommend
from energylens.cli import _recommend_view as view
from energylens.cli._console import fmt
from energylens.cli._options import int_list
from energylens.cli.main import app
from energylens.errors import EnergyLensError

SEVENTY_B = ["recommend", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100", "--gpu", "B200",
             "--max-gpus", "8"]
EXPONENT = re.compile(r"\d[eE][+-]?\d")


def render(args, columns):
    r = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": str(columns)})
    assert r.exit_code == 0, (r.output, r.exception)
    return r.output


def table_rows(out: str) -> list[str]:
    """The body lines of the first table: between its header rule and the first line that is not a row."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"}) + 1
    rows = []
    for line in lines[start:]:
        if not re.match(r"^(\d+|\(\d+\)|\s)\s", line):
            break
        rows.append(line)
    return rows


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def seventy_b():
    return {w: render(SEVENTY_B, w) for w in (100, 80)}


@pytest.mark.parametrize("width", [100, 80])
def test_fits_the_width_with_nothing_cut_and_no_exponent(seventy_b, width):
    out = seventy_b[width]
    assert "…" not in out and not EXPONENT.search(out), out
    assert max(map(len, out.splitlines())) <= width
    body = [r for r in table_rows(out) if r[:1] != " "]  # first line of each row
    assert len(body) >= 10
    for row in body:
        assert re.search(r"(H100-SXM|B200) x\d", row), row  # GPU and count together
        assert re.search(r"\b(tp|pp|ep|dp)\d|single", row), row  # compact layout


def head(out: str) -> str:
    """The lines above the table's rule: the title, the note on the best row's training domain, the column heads."""
    lines = out.splitlines()
    return flat(" ".join(lines[:next(i for i, line in enumerate(lines) if line.startswith("─"))]))


def test_headers_carry_units_and_the_100_column_table_has_every_needed_column(seventy_b):
    out = seventy_b[100]
    header = head(out)
    for unit in ("J/req", "J/tok", "TTFT", "ITL", "ms", "batch", "layout", "GPUs", "main", "term"):
        assert unit in header, (unit, header)
    assert re.search(r"(compute|memory|overhead|TP|PP|EP|idle GPUs) \d+%", out)  # the main share per row
    # at 80 columns the lowest priorities go first (the energy figures stay), and the footer says which
    header80 = head(seventy_b[80])
    assert "J/tok" in header80 and "J/req" in header80 and "main" not in header80
    assert "Not shown at this width: main term" in flat(seventy_b[80])


def test_drop_order_is_documented_and_follows_the_objective():
    res = recommend("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=2, batches=[64, 256])
    shown = view.shown_rows(res, 5)
    frame, drop = view.table_frame(shown, res)
    assert drop[0] == view.MAIN_TERM and drop[-1] == view.TOKEN_ENERGY  # J/tok is the last to go
    assert view.METRICS[view.objective_column(res)][0] not in drop  # the ranking metric is never dropped
    assert {"#", "GPUs", "layout", "batch", "note"}.isdisjoint(drop)
    by_cost = recommend("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=2, batches=[64, 256], objective="cost")
    _, drop = view.table_frame(view.shown_rows(by_cost, 5), by_cost)
    assert drop[-2:] == [view.TOKEN_ENERGY, "J/req"] and "$/Mtok" not in drop


def test_ranks_are_contiguous_or_explained(seventy_b):
    out = seventy_b[100]
    labels = [r.split()[0] for r in table_rows(out) if r[:1] != " "]
    plain = [int(x) for x in labels if x.isdigit()]
    top = [x for x in plain if x <= 10]
    assert top == list(range(1, len(top) + 1)), labels
    text = flat(out)
    if any(x.startswith("(") for x in labels):  # a data-parallel copy: the footer says what (k) means
        assert "(k): DP copy of layout k" in text
    verbose = flat(render(SEVENTY_B + ["--verbose"], 100))
    if any(x.startswith("(") for x in labels):
        assert "(k): a data-parallel copy of layout k (same batch per replica" in verbose
    if any(x > 10 for x in plain):
        assert "shown only for the noted rows" in verbose


def test_copy_labels_point_at_the_copied_layout():
    res = recommend("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=4, batches=[64, 256])
    shown = view.shown_rows(res, 50)
    distinct = res[~res["replica_of_smaller"]]
    for _, row in shown.iterrows():
        label = row["table_rank"]
        if label.startswith("("):
            twin = distinct.iloc[int(label[1:-1]) - 1]
            assert (twin["gpu"], twin["tp"], twin["pp"], twin["ep"]) == (row["gpu"], row["tp"], row["pp"], row["ep"])
            assert twin["batch_size"] / twin["dp"] == row["batch_size"] / row["dp"]
            assert twin["energy_request_j"] == pytest.approx(row["energy_request_j"])
        else:
            assert distinct.index.get_loc(row.name) + 1 == int(label)


def test_latency_definitions_and_latency_optimal_metric_are_printed_with_verbose():
    res = recommend("meta-llama/Llama-3.1-70B-Instruct", ["H100", "B200"], max_gpus=8)
    text = flat(render(SEVENTY_B + ["--verbose"], 100))
    assert flat(res.attrs.get("latency_definition") or view.FALLBACK_LATENCY_DEFINITION) in text
    assert "latency-optimal: " + flat(res.attrs.get("latency_optimal_metric") or view.FALLBACK_LATENCY_OPTIMAL) in text
    assert "SLOs: " in text


def test_cost_and_carbon_columns_when_present_and_ranked_by_the_objective():
    out = render(["recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--gpu", "B200",
                  "--max-gpus", "4", "--objective", "carbon"], 100)
    res = recommend("meta-llama/Llama-3.1-8B", ["H100", "B200"], max_gpus=4, objective="carbon")
    if "carbon_gco2e_per_1000_requests" not in res:
        pytest.skip("this recommender has no carbon column")
    assert "ranked by predicted carbon per 1000 requests" in flat(out)
    assert "gCO2e" in out and "/1k req" in out and "$/Mtok" in out
    assert "…" not in out and not EXPONENT.search(out) and max(map(len, out.splitlines())) <= 100
    first = table_rows(out)[0].split()
    assert f"{first[1]} {first[2]}" == f"{res.iloc[0]['gpu']} x{res.iloc[0]['num_gpus']}"


def test_wide_shows_every_term_and_degree():
    out = render(["recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", "2",
                  "--wide", "--top", "3"], 100)
    header = flat(" ".join(out.splitlines()[:5]))
    for col in ("TP", "PP", "EP", "DP", "compute %", "memory %"):
        assert col in header
    assert "…" not in out and not EXPONENT.search(out)


def test_batch_list_equals_repeated_flags(run_cli):
    base = ["recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", "2", "--json"]
    code1, one = run_cli(*base, "--batch", "64,256")
    code2, two = run_cli(*base, "--batch", "64", "--batch", "256")
    assert code1 == code2 == 0
    a, b = json.loads(one)["recommendations"], json.loads(two)["recommendations"]
    assert a == b and {r["batch_size"] for r in a} <= {64, 256}


@pytest.mark.parametrize("bad", ["64,x", "0", "64,-1", "1.5", ",", "2000000"])
def test_bad_batch_items_are_one_line_errors(run_cli, bad):
    code, out = run_cli("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--batch", bad)
    assert code == 2 and len(out.strip().splitlines()) == 1 and out.startswith("error: --batch"), out


def test_model_file_default_is_the_shipped_model(run_cli):
    base = ["recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", "2", "--json"]
    code1, named = run_cli(*base, "--model-file", "default")
    code2, implicit = run_cli(*base)
    assert code1 == code2 == 0
    assert json.loads(named)["recommendations"] == json.loads(implicit)["recommendations"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=6))
def test_int_list_comma_text_equals_repeated_flags(values):
    joined = int_list(",".join(map(str, values)), "--batch", 1, 10**6)
    assert joined == int_list([str(v) for v in values], "--batch", 1, 10**6) == list(dict.fromkeys(values))


@given(st.text(max_size=12).filter(lambda t: not re.fullmatch(r"[\s,]*(\+?\d+[\s,]*)*", t)))
def test_int_list_refuses_anything_else_naming_the_option(text):
    with pytest.raises(EnergyLensError, match="--batch"):
        int_list(text, "--batch", 1, 10**6)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e18, max_value=1e18))
def test_fmt_never_writes_an_exponent(x):
    text = fmt(x)
    assert not EXPONENT.search(text) and "e" not in text.lower()
    if x != 0 and 1e-3 <= abs(x) < 1e15:  # four significant digits kept
        assert float(text.replace(",", "")) == pytest.approx(x, rel=1e-3, abs=1e-12)


def test_layout_names_only_the_degrees_above_one():
    assert view.layout(4, 1, 1, 2) == "tp4·dp2"
    assert view.layout(1, 1, 1, 1) == "single"
    assert view.layout(2, 2, 8, 4) == "tp2·pp2·ep8·dp4"


@pytest.mark.parametrize("width", [100, 80])
def test_catalog_shows_whole_model_ids_and_sources(width):
    from energylens.catalog import hardware_catalog, model_catalog

    out = render(["catalog"], width)
    assert "…" not in out and not EXPONENT.search(out)
    lines = out.splitlines()
    for spec in model_catalog().specs.values():
        row = next((line for line in lines if line.startswith(spec.name + " ")), None)
        assert row is not None, spec.name  # the whole ID, on one line
        assert row.rstrip().endswith("HF config") or spec.source in flat(out), spec.name
    assert "HF config: https://huggingface.co/<model>/blob/main/config.json" in out
    for spec in hardware_catalog().specs.values():
        assert flat(f"{spec.name}: {spec.source}") in flat(out)


def test_catalog_model_config_source_is_config_path(tmp_path, run_cli):
    cfg = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    code, out = run_cli("catalog", "--model-config", p, "--json")
    assert code == 0 and json.loads(out)["source"] == f"config {p}"
    code, out = run_cli("catalog", "models", "--json")
    assert code == 0 and all(m["source"] for m in json.loads(out)["models"])


def test_pareto_plot_marks_the_three_deployments_with_readable_ticks():
    pytest.importorskip("matplotlib")
    from energylens.report.plots import PARETO_MARKS, pareto_figure

    res = recommend("meta-llama/Llama-3.1-70B-Instruct", ["H100", "B200"], max_gpus=8)
    fig = pareto_figure(res)
    ax = fig.axes[0]
    marks = {c.get_label(): c.get_offsets() for c in ax.collections}
    expected = {"recommended (rank 1)": res.iloc[[0]], "latency-optimal": res[res["latency_optimal"]],
                "TP default (all GPUs, one TP group)": res[res["tp_default"]]}
    assert set(expected) == {label for _, label, _ in PARETO_MARKS}
    for label, rows in expected.items():
        assert label in marks, label
        np.testing.assert_allclose(marks[label], rows[["latency_s", "energy_request_j"]].to_numpy())
    fig.canvas.draw()
    for axis, units in ((ax.xaxis, ("µs", "ms", "s")), (ax.yaxis, ("mJ", "J", "kJ", "MJ"))):
        labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
        assert labels and all(t.split(" ")[-1] in units for t in labels), labels
        assert not any("^" in t or "$" in t for t in labels)
        # no two labels overlap on screen
        boxes = sorted((t.get_window_extent() for t in axis.get_ticklabels() if t.get_text()),
                       key=lambda b: b.x0 if axis is ax.xaxis else b.y0)
        for a, b in zip(boxes, boxes[1:]):
            assert (a.x1 <= b.x0) if axis is ax.xaxis else (a.y1 <= b.y0), labels
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_readme_example_outputs_are_fresh():
    """The recommend and catalog examples (README.md, docs/CLI.md) are real runs at 100 columns
    (scripts/readme_examples.py)."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("readme_examples", root / "scripts" / "readme_examples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    texts = [path.read_text(encoding="utf-8") for path in mod.FILES]
    assert [m.group("name") for text in texts for m in mod.BLOCK.finditer(text)] == list(mod.EXAMPLES)
    for text in texts:
        assert mod.render(text) == text, "README examples are stale: run python scripts/readme_examples.py"
