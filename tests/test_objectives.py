"""Cost and carbon objectives: a hand-computed configuration, the shipped tables, the option parser, the CLI."""
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energylens import recommend
from energylens.catalog import hardware_catalog
from energylens.catalog.costs import (GPU_HOUR_USD, PRICE_FILE_EXAMPLE, PRICE_FILE_FORMAT, electricity_basis,
                                      grid_table, parse_gpu_hour_usd, parse_grid, parse_prices, parse_user_prices,
                                      shipped_prices)
from energylens.cli.main import main
from energylens.errors import CatalogError, EnergyLensError
from energylens.recommendation import objectives as O


def test_one_configuration_by_hand():
    """2 x H100 at batch 8, 10 s per request end to end, 360 kJ per request, 250 output tokens;
    2.5 USD per GPU-hour, 0.10 USD/kWh, PUE 1.5, 400 gCO2e/kWh. By hand:
    GPU-seconds per request = 2 x 10 / 8 = 2.5 s -> 2.5 / 3600 x 2.5 USD = 0.00173611 USD;
    facility energy = 360,000 J x 1.5 = 540,000 J = 0.15 kWh -> 0.015 USD of electricity;
    cost = 0.01673611 USD per request = 0.01673611 / 250 x 1e6 = 66.94444 USD per million output tokens;
    carbon = 0.15 kWh x 400 g = 60 g per request = 60,000 g per 1000 requests."""
    a = O.assumptions({"H100": 2.5}, electricity_usd_per_kwh=0.10, grid_gco2_per_kwh=400, pue=1.5)
    frame = pd.DataFrame({"gpu": ["H100-SXM"], "num_gpus": [2], "batch_size": [8], "latency_s": [10.0],
                          "energy_request_j": [360_000.0]})
    row = O.add_objectives(frame, a, output_tokens=250).iloc[0]
    assert row["gpu_seconds_per_request"] == pytest.approx(2.5)
    assert row["cost_usd_per_request"] == pytest.approx(0.0016 + 0.00013611 + 0.015, rel=1e-4)
    assert row["cost_usd_per_million_tokens"] == pytest.approx(66.94444, rel=1e-6)
    assert row["carbon_gco2e_per_1000_requests"] == pytest.approx(60_000.0)


def test_recommend_rows_follow_the_formula_and_rank_by_objective():
    kw = dict(max_gpus=4, input_tokens=512, output_tokens=256, batches=[8, 64, 256],
              gpu_hour_usd="H100=2.5,B200=5", electricity_usd_per_kwh=0.12, pue=1.2, region="france")
    by_cost = recommend("meta-llama/Llama-3.1-8B", ["H100", "B200"], objective="cost", **kw)
    by_carbon = recommend("meta-llama/Llama-3.1-8B", ["H100", "B200"], objective="carbon", **kw)
    by_energy = recommend("meta-llama/Llama-3.1-8B", ["H100", "B200"], **kw)
    assert np.all(np.diff(by_cost["cost_usd_per_million_tokens"]) >= 0)
    # rank: place among distinct layouts (a data-parallel copy carries its layout's): 1, 2, 3, ... without gaps
    distinct = by_cost[~by_cost["replica_of_smaller"]]
    assert list(distinct["rank"]) == list(range(1, len(distinct) + 1)) and (np.diff(by_cost["rank"]) >= 0).all()
    # Carbon is energy times constants: the same order as energy.
    assert list(by_carbon["energy_request_j"]) == list(by_energy["energy_request_j"])
    # Every row, recomputed from its own columns with the figures given (France: 56.039 g, Ember 2023 via OWID).
    for r in by_cost.itertuples():
        price = {"H100-SXM": 2.5, "B200": 5.0}[r.gpu]
        held = r.gpu_seconds_per_request  # the time the energy integrates: energy / it is the power per GPU
        kwh = r.energy_request_j * 1.2 / 3.6e6
        assert r.energy_request_j / held == pytest.approx(r.power_per_gpu_w)
        assert r.cost_usd_per_million_tokens == pytest.approx((held / 3600 * price + kwh * 0.12) / 256 * 1e6)
        assert r.carbon_gco2e_per_1000_requests == pytest.approx(1000 * kwh * 56.039)
    a = by_cost.attrs["assumptions"]
    assert by_cost.attrs["objective"] == "cost" and a["pue"]["value"] == 1.2
    assert a["grid_gco2_per_kwh"] == {"value": 56.039, "source": "Our World in Data (Ember), carbon_intensity_elec 2023",
                                      "date": "2023", "url": None, "via": None, "region": "france"}
    assert "the time the energy integrates" in a["time_per_request"]


def test_shipped_tables_are_sourced_and_name_known_gpus():
    hw = hardware_catalog()
    prices = shipped_prices()
    assert prices.gpu_hour_usd and prices.electricity_usd_per_kwh.source
    for name, p in prices.gpu_hour_usd.items():
        assert hw.canonical(name) is not None, name
        assert p.source and p.date and 0 < p.value < 100
    grid = grid_table()
    assert grid.pue.value == 1.58 and "Uptime" in grid.pue.source
    assert grid.get("World")[1].value == 481
    for p in grid.regions.values():
        assert p.source and p.date


@pytest.mark.parametrize("doc, words", [
    ({"gpu": {"H100": {"usd_per_hour": -1, "source": "x"}}}, ["gpu.H100", "usd_per_hour", "-1"]),
    ({"gpu": {"H100": {"usd_per_hour": 2.0}}}, ["gpu.H100", "source", "missing"]),
    ({"gpu": {"H100": {"usd_per_hour": 2.0, "source": "x", "prize": 1}}}, ["prize", "not a known field"]),
    ({"gpus": {}}, ["gpus", "not a known field"]),
    ({"electricity": {"usd_per_kwh": float("nan"), "source": "x"}}, ["electricity", "usd_per_kwh"]),
])
def test_bad_price_tables_fail_in_one_line(doc, words):
    with pytest.raises(CatalogError) as e:
        parse_prices(doc, "my.toml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("my.toml") and all(w in msg for w in words)


def test_bad_grid_tables_fail_in_one_line():
    with pytest.raises(CatalogError, match="region.x.*gco2_per_kwh"):
        parse_grid({"region": {"x": {"gco2_per_kwh": 5000, "source": "s"}}}, "g.toml")
    with pytest.raises(CatalogError, match="defaults.*'mars'"):
        parse_grid({"region": {"x": {"gco2_per_kwh": 5, "source": "s"}}, "defaults": {"region": "mars"}}, "g.toml")


names = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=12)
prices = st.floats(min_value=GPU_HOUR_USD[0], max_value=GPU_HOUR_USD[1], allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(names, prices, min_size=1, max_size=5))
def test_gpu_hour_usd_round_trip(table):
    text = ",".join(f"{k}={v!r}" for k, v in table.items())
    assert parse_gpu_hour_usd(text) == table


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_gpu_hour_usd_any_text_parses_or_fails_in_one_line(text):
    try:
        out = parse_gpu_hour_usd(text)
    except EnergyLensError as e:
        assert "\n" not in str(e) and "--gpu-hour-usd" in str(e)
    else:
        assert out and all(GPU_HOUR_USD[0] <= v <= GPU_HOUR_USD[1] for v in out.values())


def test_missing_price_for_cost_objective_is_one_line_before_any_work():
    with pytest.raises(EnergyLensError, match="no GPU-hour price for MI250 .*not found|no GPU-hour price for MI250"):
        recommend("meta-llama/Llama-3.1-8B", ["H100", "MI250"], objective="cost")
    # Ranking by energy still works; the unpriced GPU has empty cost columns and the assumptions say why.
    res = recommend("meta-llama/Llama-3.1-8B", ["H100", "MI250"], max_gpus=2, batches=[64])
    assert res.loc[res["gpu"] == "MI250", "cost_usd_per_million_tokens"].isna().all()
    assert res.loc[res["gpu"] == "H100-SXM", "cost_usd_per_million_tokens"].notna().all()
    why = shipped_prices().unpriced["MI250"]
    assert any("no GPU-hour price for MI250" in s and why in s for s in res.attrs["assumptions"]["statements"])
    assert why in res.attrs["assumptions"]["no_price"]["MI250"]


@pytest.mark.parametrize("args, words", [
    (["--objective", "cheap"], ["--objective", "energy, cost, carbon"]),
    (["--gpu-hour-usd", "H100"], ["--gpu-hour-usd", "NAME=USD"]),
    (["--gpu-hour-usd", "Z9=1"], ["unknown GPU", "Z9"]),
    (["--pue", "0.5"], ["--pue", "from 1 to 5"]),
    (["--region", "france", "--grid-gco2-per-kwh", "50"], ["not both"]),
    (["--electricity-usd-per-kwh", "inf"], ["--electricity-usd-per-kwh"]),
])
def test_cli_bad_cost_options(args, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(["recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", "1", *args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and all(w in err for w in words), err


def test_cli_json_carries_the_columns_and_the_assumptions(capsys, tmp_path):
    prices = tmp_path / "p.toml"
    prices.write_text('[gpu.H100]\nusd_per_hour = 3.0\nsource = "our contract"\ndate = "2025-01"\n')
    main(["recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", "2", "--batch", "64",
          "--objective", "carbon", "--gpu-hour-usd", str(prices), "--region", "norway", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["objective"] == "carbon"
    assert out["assumptions"]["gpu_hour_usd"]["H100-SXM"] == {"usd": 3.0, "source": "our contract", "date": "2025-01",
                                                             "url": None, "via": None}
    assert out["footnotes"] and any("Assumptions" in line for line in out["footnotes"])
    for r in out["recommendations"]:
        for c in ("energy_request_j", "cost_usd_per_million_tokens", "carbon_gco2e_per_1000_requests"):
            assert isinstance(r[c], float) and r[c] > 0


def _recommend_cost(capsys, *args):
    """(exit code, stdout, stderr) of a small `recommend --objective cost --json`."""
    code = 0
    try:
        main(["recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--gpu", "B200", "--max-gpus", "1",
              "--batch", "64", "--objective", "cost", "--json", *map(str, args)])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def test_simple_price_file_is_accepted_and_equals_the_option(capsys, tmp_path):
    """`H100 = 2.5` lines (the format --help and the README show) price like `--gpu-hour-usd H100=2.5,B200=5`,
    and so do [gpu.NAME] tables without a source; the shipped table keeps its sources."""
    simple = tmp_path / "prices.toml"
    simple.write_text(PRICE_FILE_EXAMPLE)
    tables = tmp_path / "tables.toml"
    tables.write_text("[gpu.H100]\nusd_per_hour = 2.5\n[gpu.B200]\nusd_per_hour = 5\n")
    runs = [_recommend_cost(capsys, "--gpu-hour-usd", x) for x in (simple, tables, "H100=2.5,B200=5.0")]
    assert all(code == 0 for code, _, _ in runs), runs
    costs = [[r["cost_usd_per_million_tokens"] for r in json.loads(out)["recommendations"]] for _, out, _ in runs]
    assert costs[0] == costs[1] == costs[2] and len(costs[0]) == 2
    prices = json.loads(runs[0][1])["assumptions"]["gpu_hour_usd"]
    assert {g: p["usd"] for g, p in prices.items()} == {"H100-SXM": 2.5, "B200": 5.0}
    assert prices["B200"]["source"] == f"given in {simple}"
    assert parse_user_prices({"gpu": {"H100": {"usd_per_hour": 3, "source": "our contract", "date": "2025"}}},
                             "p.toml")["H100"].source == "our contract"
    with pytest.raises(CatalogError, match="source.*missing"):  # the shipped table must say where a price comes from
        parse_prices({"gpu": {"H100": {"usd_per_hour": 2.0}}}, "gpu_prices.toml")


@pytest.mark.parametrize("text, words", [
    ('H100 = "2.5"', ["price of 'H100'", "a number from 0 to 1000 USD per GPU-hour", "a string"]),
    ("H100 = 2.5\nh100 = 3", ["'h100' is priced twice"]),
    ("[H100]\nprice = 2.5", ["[H100] has no usd_per_hour", "H100 = 2.5"]),
    ("[gpu.H100]\nusd_per_hour = 2.5\nprize = 1", ["gpu.H100", "'prize' is not a known field"]),
    ("electricity = 0.1", ["--electricity-usd-per-kwh"]),
    ("[electricity]\nusd_per_kwh = 0.1\nsource = 'x'", ["--electricity-usd-per-kwh"]),
    ("usd_per_hour = 2", ["[gpu.NAME]", "H100 = 2.5"]),
    ("gpu = 3", ["'gpu' must hold one price per GPU"]),
    ("", ["no prices", "H100 = 2.5"]),
    ("H100 = ", ["not valid TOML"]),
    ("Z9 = 1", ["unknown GPU 'Z9'"]),
])
def test_bad_price_files_say_what_is_expected(capsys, tmp_path, text, words):
    path = tmp_path / "prices.toml"
    path.write_text(text)
    code, _, err = _recommend_cost(capsys, "--gpu-hour-usd", path)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert all(w in err for w in words), err
    assert "table 'H100' is not a known field" not in err


@pytest.mark.parametrize("make", [
    lambda d: d / "missing.toml",
    lambda d: d,  # a folder
    lambda d: (d / "bin.toml").write_bytes(b"\xff\xfe") and d / "bin.toml",
    lambda d: (d / "x.toml").write_text("[[[") and d / "x.toml",
])
def test_price_file_errors_are_lowercase_error_lines(capsys, tmp_path, make):
    """A file option's error is the CLI's one line `error: ...` and exit 2, as every other one (never Click's
    capitalised `Error:` box)."""
    code, out, err = _recommend_cost(capsys, "--gpu-hour-usd", make(tmp_path))
    assert code == 2 and not out and len(err.splitlines()) == 1 and err.startswith("error: ") and "Error" not in err


def test_help_and_readme_describe_the_price_file(capsys):
    main(["recommend", "--help"])  # --help returns (exit code 0)
    help_text = " ".join(capsys.readouterr().out.replace("│", " ").split())  # Rich boxes and wraps the help
    assert "H100 = 2.5" in help_text and "usd_per_hour" in help_text and "rental" in help_text
    assert "H100 = 2.5" in PRICE_FILE_FORMAT and "usd_per_hour" in PRICE_FILE_FORMAT
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "docs" / "CLI.md").read_text()
    lines, example = [x.strip() for x in readme.splitlines()], PRICE_FILE_EXAMPLE.strip().splitlines()
    # The command reference shows the example this test parses (as an indented block).
    assert any(lines[i:i + len(example)] == example for i in range(len(lines)))
    assert parse_user_prices(__import__("tomllib").loads(PRICE_FILE_EXAMPLE), "x") and "H100 = 2.5" in PRICE_FILE_EXAMPLE


def test_assumptions_say_which_case_the_electricity_charge_assumes():
    """The shipped GPU-hour prices are cloud rental rates (power included): the default (--pricing cloud) adds no
    electricity and says so; an electricity price given with cloud prices is charged on top and the words warn
    that power may be counted twice; --pricing owned charges the shipped electricity price."""
    assert all("on-demand" in p.source and p.url.startswith("https://") for p in shipped_prices().gpu_hour_usd.values())
    default = recommend("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=1, batches=[64]).attrs["assumptions"]
    line = next(s for s in default["statements"] if s.startswith("electricity"))
    assert line.startswith("electricity: none added") and "include power" in line
    assert default["pricing"] == "cloud" and default["electricity_usd_per_kwh"]["value"] == 0
    lease = recommend("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=1, batches=[64], electricity_usd_per_kwh=0.1)
    line = next(s for s in lease.attrs["assumptions"]["statements"] if s.startswith("electricity"))
    assert line.startswith("electricity 0.1 USD/kWh") and "counted twice" in line
    assert line.endswith(electricity_basis(0.1, cloud=True))
    owned = recommend("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=1, batches=[64], pricing="owned")
    a = owned.attrs["assumptions"]
    assert a["electricity_usd_per_kwh"]["value"] == shipped_prices().electricity_usd_per_kwh.value
    line = next(s for s in a["statements"] if s.startswith("electricity"))
    assert "owned hardware" in line and "counted twice" not in line


toml_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=8),
                           lambda inner: st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(names, prices, min_size=1, max_size=5))
def test_price_file_lines_round_trip(table):
    text = "".join(f"{k} = {v!r}\n" for k, v in table.items())
    import tomllib

    try:
        parsed = parse_user_prices(tomllib.loads(text), "p.toml")
    except CatalogError as e:  # names equal once normalized (h100, H100) are one GPU priced twice; a GPU named
        # like the electricity price is refused (electricity is an option, not a line of the file); 'gpu' is the
        # file's table of prices ([gpu] H100 = 2.5), never a GPU's name
        assert ("priced twice" in str(e) or "electricity price is not read" in str(e)
                or ("gpu" in table and "'gpu' must hold one price per GPU" in str(e))) and "\n" not in str(e)
    else:
        assert {k: p.value for k, p in parsed.items()} == table


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10), toml_values, max_size=4))
def test_any_price_document_parses_or_fails_in_one_line(doc):
    try:
        out = parse_user_prices(doc, "p.toml")
    except CatalogError as e:
        assert "\n" not in str(e) and str(e).startswith("p.toml")
    else:
        assert out and all(GPU_HOUR_USD[0] <= p.value <= GPU_HOUR_USD[1] for p in out.values())
