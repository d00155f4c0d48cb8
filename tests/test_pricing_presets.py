"""Prices for every GPU people rent, the two pricing presets (cloud: rental, power included; owned: electricity
plus a hardware price) and grid regions by country name or ISO code."""
import json
import tomllib
from importlib import resources

import pandas as pd
import pytest

from energylens import recommend
from energylens.catalog import hardware_catalog
from energylens.catalog.costs import grid_table, parse_grid, parse_prices, shipped_prices
from energylens.errors import CatalogError, EnergyLensError
from energylens.recommendation import objectives as O

# The catalog GPUs that clouds rent (the list): each must have a sourced, dated price.
RENTED = ("A100-SXM4-40GB", "A100-SXM4-80GB", "H100-PCIe", "H100-NVL", "H100-SXM", "H200", "B200", "GH200", "L40S",
          "A40", "V100-SXM2", "MI300X")


def test_every_rented_gpu_has_a_sourced_dated_price_and_every_other_gpu_says_why_not():
    hw = hardware_catalog()
    prices = {hw.canonical(g): p for g, p in shipped_prices().gpu_hour_usd.items()}
    for gpu in RENTED:
        p = prices[gpu]
        assert 0.1 < p.value < 20, gpu
        assert p.source and p.url.startswith("https://") and p.date[:4].isdigit(), gpu
    unpriced = {hw.canonical(g) for g in shipped_prices().unpriced}
    assert set(hw.names()) == set(prices) | unpriced  # every catalog GPU: a price, or a reason for none
    assert not set(prices) & unpriced


def test_cost_ranking_works_for_the_gpus_it_refused_before():
    res = recommend("meta-llama/Llama-3.1-8B", ["A100", "L40S"], max_gpus=2, batches=[64, 256], objective="cost")
    assert res["cost_usd_per_million_tokens"].notna().all()
    assert set(res.attrs["assumptions"]["gpu_hour_usd"]) == {"A100-SXM4-80GB", "L40S"}


def test_cloud_adds_no_electricity_and_owned_adds_electricity_and_hardware():
    """By hand: 1 GPU, batch 4, 8 s per request, 36 kJ, 100 output tokens, PUE 1.5.
    cloud at 2 USD/h: 1 x 8 / 4 = 2 GPU-s -> 2 / 3600 x 2 = 0.0011111 USD; no electricity.
    owned at 0.5 USD/h of hardware, 0.2 USD/kWh: 2 / 3600 x 0.5 = 0.00027778 + 36,000 x 1.5 / 3.6e6 x 0.2 = 0.003."""
    frame = pd.DataFrame({"gpu": ["H100-SXM"], "num_gpus": [1], "batch_size": [4], "latency_s": [8.0],
                          "energy_request_j": [36_000.0]})
    cloud = O.assumptions({"H100": 2.0}, pue=1.5)
    row = O.add_objectives(frame, cloud, output_tokens=100).iloc[0]
    assert cloud.pricing == "cloud" and cloud.electricity_usd_per_kwh.value == 0
    assert row["cost_usd_per_request"] == pytest.approx(2 / 3600 * 2)
    owned = O.assumptions(pricing="owned", hardware_usd_per_gpu_hour=0.5, electricity_usd_per_kwh=0.2, pue=1.5)
    row = O.add_objectives(frame, owned, output_tokens=100).iloc[0]
    assert row["cost_usd_per_request"] == pytest.approx(2 / 3600 * 0.5 + 0.003)
    assert row["cost_usd_per_million_tokens"] == pytest.approx((2 / 3600 * 0.5 + 0.003) / 100 * 1e6)
    # owned without a hardware price: electricity alone, and the assumptions say hardware is not counted
    bare = O.assumptions(pricing="owned", electricity_usd_per_kwh=0.2, pue=1.5)
    assert O.add_objectives(frame, bare, 100).iloc[0]["cost_usd_per_request"] == pytest.approx(0.003)
    assert "hardware not counted" in bare.summary(["H100-SXM"])
    # owned with prices per GPU: a GPU without one has empty cost columns and a footnote saying how to fill them
    named = O.assumptions(pricing="owned", hardware_usd_per_gpu_hour="H100=0.5")
    assert named.price("B200") is None and "--hardware-usd-per-gpu-hour B200=USD" in named.missing("B200")


def test_default_pricing_is_cloud_everywhere():
    import inspect

    from energylens.cli.recommend_cmd import recommend as command

    assert O.DEFAULT_PRICING == "cloud" == inspect.signature(command).parameters["pricing"].default.default
    assert O.default_electricity_usd_per_kwh() == 0
    assert O.default_electricity_usd_per_kwh("owned") == shipped_prices().electricity_usd_per_kwh.value


@pytest.mark.parametrize("kw, words", [
    (dict(pricing="rent"), ["--pricing", "cloud, owned", "'rent'"]),
    (dict(pricing="owned", gpu_hour_usd="H100=2"), ["--gpu-hour-usd", "--hardware-usd-per-gpu-hour"]),
    (dict(hardware_usd_per_gpu_hour=1.0), ["--hardware-usd-per-gpu-hour", "--pricing owned"]),
    (dict(pricing="owned", hardware_usd_per_gpu_hour="x"), ["--hardware-usd-per-gpu-hour", "NAME=USD", "'x'"]),
    (dict(pricing="owned", hardware_usd_per_gpu_hour=-1), ["--hardware-usd-per-gpu-hour", "from 0 to 1000"]),
    (dict(pricing="owned", hardware_usd_per_gpu_hour="Z9=1"), ["unknown GPU", "Z9"]),
])
def test_bad_pricing_options_fail_in_one_line(kw, words):
    with pytest.raises(EnergyLensError) as e:
        O.assumptions(**kw)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


@pytest.mark.parametrize("given, country", [
    ("us", "united states"), ("US", "united states"), ("usa", "united states"), ("United States", "united states"),
    ("de", "germany"), ("DEU", "germany"), ("fr", "france"), ("in", "india"), ("cn", "china"), ("uk", "united kingdom"),
    ("gb", "united kingdom"), ("jp", "japan"), ("world", "world"),
])
def test_regions_by_name_and_iso_code(given, country):
    a = O.assumptions(region=given)
    assert a.region == country
    assert a.grid_gco2_per_kwh.value == grid_table().get(country)[1].value


def test_grid_table_is_sourced_and_its_codes_are_unique():
    grid = grid_table()
    raw = tomllib.loads(resources.files("energylens.catalog").joinpath("data/grid_intensity.toml").read_text())
    assert "Our World in Data" in raw["region"]["germany"]["source"] and raw["region"]["germany"]["date"] == "2023"
    two_letter = [c for r in raw["region"].values() for c in r.get("codes", []) if len(c) == 2]
    assert len(two_letter) == len(set(two_letter)) >= 50
    for p in grid.regions.values():
        assert p.source and p.date and 0 < p.value < 1200
    with pytest.raises(EnergyLensError) as e:
        grid.get("mars")
    msg = str(e.value)
    assert "\n" not in msg and "'mars'" in msg and " us," in msg and "--grid-gco2-per-kwh" in msg
    with pytest.raises(CatalogError, match="code 'x' names two regions"):
        parse_grid({"region": {"a": {"gco2_per_kwh": 1, "source": "s", "codes": ["X"]},
                               "b": {"gco2_per_kwh": 2, "source": "s", "codes": ["x"]}}, "defaults": {"region": "a"}},
                   "g.toml")


def test_unpriced_entries_need_a_reason_and_cannot_also_be_priced():
    with pytest.raises(CatalogError, match="unpriced.MI250.*reason.*missing"):
        parse_prices({"unpriced": {"MI250": {"reason": " "}}}, "p.toml")
    with pytest.raises(CatalogError, match="both priced and unpriced"):
        parse_prices({"gpu": {"MI250": {"usd_per_hour": 1, "source": "s"}}, "unpriced": {"MI250": {"reason": "r"}}},
                     "p.toml")


def test_cli_pricing_owned_json_and_footnote_for_a_gpu_without_price(run_cli):
    code, out = run_cli("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--gpu", "B200",
                        "--max-gpus", "1", "--batch", "64", "--pricing", "owned", "--hardware-usd-per-gpu-hour",
                        "H100=1.1", "--region", "de", "--json")
    assert code == 0, out
    a = json.loads(out)["assumptions"]
    assert a["pricing"] == "owned" and a["gpu_hour_usd"]["H100-SXM"]["usd"] == 1.1
    assert "B200" in a["no_price"] and a["grid_gco2_per_kwh"]["region"] == "germany"
    code, out = run_cli("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--gpu", "MI250",
                        "--max-gpus", "1", "--batch", "64")
    flat = " ".join(out.split())
    assert code == 0 and "$/Mtok empty for MI250: no GPU-hour price for MI250 (" in flat, out
    assert "$/Mtok," not in flat and "$/Mtok;" not in flat.split("best: ")[1].split(".")[0]
