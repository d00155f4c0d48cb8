"""Cost and carbon objectives: a hand-computed configuration, the shipped tables, the option parser, the CLI."""
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energylens import recommend
from energylens.catalog import hardware_catalog
from energylens.catalog.costs import (GPU_HOUR_USD, grid_table, parse_gpu_hour_usd, parse_grid, parse_prices,
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
    assert list(by_cost["rank"]) == list(range(1, len(by_cost) + 1))
    # Carbon is energy times constants: the same order as energy.
    assert list(by_carbon["energy_request_j"]) == list(by_energy["energy_request_j"])
    # Every row, recomputed from its own columns with the figures given (France: 56 g, Ember 2023).
    for r in by_cost.itertuples():
        price = {"H100-SXM": 2.5, "B200": 5.0}[r.gpu]
        held = r.num_gpus * r.latency_s / r.batch_size
        kwh = r.energy_request_j * 1.2 / 3.6e6
        assert r.gpu_seconds_per_request == pytest.approx(held)
        assert r.cost_usd_per_million_tokens == pytest.approx((held / 3600 * price + kwh * 0.12) / 256 * 1e6)
        assert r.carbon_gco2e_per_1000_requests == pytest.approx(1000 * kwh * 56)
    a = by_cost.attrs["assumptions"]
    assert by_cost.attrs["objective"] == "cost" and a["pue"]["value"] == 1.2
    assert a["grid_gco2_per_kwh"] == {"value": 56.0, "source": "Ember 2023 via Our World in Data", "region": "france"}
    assert "num_gpus x latency_s / batch_size" in a["time_per_request"]


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
    with pytest.raises(EnergyLensError, match="no GPU-hour price for MI300X"):
        recommend("meta-llama/Llama-3.1-8B", ["H100", "MI300X"], objective="cost")
    # Ranking by energy still works; the unpriced GPU has empty cost columns and the assumptions say so.
    res = recommend("meta-llama/Llama-3.1-8B", ["H100", "MI300X"], max_gpus=2, batches=[64])
    assert res.loc[res["gpu"] == "MI300X", "cost_usd_per_million_tokens"].isna().all()
    assert res.loc[res["gpu"] == "H100-SXM", "cost_usd_per_million_tokens"].notna().all()
    assert any("no GPU-hour price for MI300X" in s for s in res.attrs["assumptions"]["statements"])


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
    assert out["assumptions"]["gpu_hour_usd"]["H100-SXM"] == {"usd": 3.0, "source": "our contract", "date": "2025-01"}
    for r in out["recommendations"]:
        for c in ("energy_request_j", "cost_usd_per_million_tokens", "carbon_gco2e_per_1000_requests"):
            assert isinstance(r[c], float) and r[c] > 0
