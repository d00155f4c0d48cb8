"""Prices and carbon intensities behind the cost and carbon objectives, each figure with its source and date.

Two shipped tables (catalog/data/gpu_prices.toml, grid_intensity.toml) validated at load like the other
catalogs: every figure typed, finite and inside a generous range, unknown fields refused, one-line errors
naming the file, entry and field. A user's price file (--gpu-hour-usd FILE) is simpler: see PRICE_FILE_FORMAT.
"""
from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from ..errors import CatalogError, EnergyLensError
from ..io import clip, read_toml
from ._names import closest, normalize
from ._validate import Fields, check_name, load, oneline, short

# Accepted ranges (inclusive): generous limits that catch typos and inf/nan, not judgements of price.
GPU_HOUR_USD = (0.0, 1000.0, "USD per GPU-hour")  # 0: hardware already paid for
ELECTRICITY_USD_PER_KWH = (0.0, 10.0, "USD/kWh")
GRID_GCO2_PER_KWH = (0.0, 2000.0, "gCO2e/kWh")  # lignite is about 1,100 over its life cycle
PUE = (1.0, 5.0, "")


@dataclass(frozen=True)
class Priced:
    """One sourced figure."""
    value: float
    source: str
    date: str = ""

    def cited(self) -> str:
        return f"{self.source}{f' ({self.date})' if self.date and self.date not in self.source else ''}"


@dataclass(frozen=True)
class PriceTable:
    gpu_hour_usd: dict[str, Priced]  # as written in the file (a hardware name or alias)
    electricity_usd_per_kwh: Priced | None = None


@dataclass(frozen=True)
class GridTable:
    regions: dict[str, Priced]  # normalized region name -> gCO2e/kWh
    names: dict[str, str] = field(default_factory=dict)  # normalized -> as written
    pue: Priced | None = None
    default_region: str = "world"

    def get(self, region: str) -> tuple[str, Priced]:
        key = normalize(region) if isinstance(region, str) else ""
        if key not in self.regions:
            hint = closest(str(region), list(self.names.values()))
            raise EnergyLensError(f"--region {clip(region)!r} unknown; known regions: {', '.join(self.names.values())}"
                                  + (f" (closest: {', '.join(hint)})" if hint else "")
                                  + "; or give --grid-gco2-per-kwh")
        return self.names[key], self.regions[key]


# A user's price file, in words: --help, README and every error about such a file say this.
PRICE_FILE_FORMAT = ("a TOML file of USD per GPU-hour, one line per GPU: H100 = 2.5 (names or aliases of the "
                     "hardware catalog); or [gpu.H100] tables with usd_per_hour and optional source and date")
PRICE_FILE_EXAMPLE = "# prices.toml: USD per GPU-hour\nH100 = 2.5\nB200 = 5.0\n"


def electricity_basis(usd_per_kwh: float, zero: str = "give --electricity-usd-per-kwh 0") -> str:
    """Which case an electricity price assumes, in words (recommend's assumptions and the explorer, whose
    `zero` names its own field). The shipped GPU-hour prices are cloud rental rates, which include power."""
    if usd_per_kwh > 0:
        return ("charged on top of the GPU-hour prices, as for owned hardware (or a lease that bills power apart); "
                "a cloud rental's GPU-hour price already includes power, as the shipped prices (cloud rental) do: "
                f"for a cloud {zero}, or power is counted twice")
    return "no charge for power beyond the GPU-hour prices, as for a cloud rental whose GPU-hour price includes it"


def _sourced(entry, where: str, key: str, name: str, bounds: tuple[float, float, str], sourced: bool = True) -> Priced:
    """The figure `name` of one table, with its source (required when `sourced`) and date."""
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: {short(key)} must be a table with {name}, source and date, got {short(entry)}")
    f = Fields(entry, f"{where}: {oneline(key, 80)}")
    f.only((name, "source", "date", "note"))
    lo, hi, unit = bounds
    value = f.number(name, lo, hi, unit)
    source = f.text("source", limit=500)
    if sourced and not source.strip():
        f.fail("source", "is missing; every figure needs its source")
    return Priced(value, source.strip() or f"given in {where}", f.text("date", limit=40))


def parse_prices(doc, origin: str) -> PriceTable:
    """A validated PriceTable of a parsed gpu_prices TOML document (the shipped table: every figure sourced)."""
    where = oneline(origin)
    if not isinstance(doc, dict):
        raise CatalogError(f"{where}: expected [gpu.NAME] and [electricity] tables")
    Fields(doc, where, word="table").only(("gpu", "electricity"))
    gpus = doc.get("gpu", {})
    if not isinstance(gpus, dict):
        raise CatalogError(f"{where}: 'gpu' must hold one table per GPU ([gpu.H100] usd_per_hour = ...)")
    prices = {}
    for name, entry in gpus.items():
        check_name(name, where, "GPU", normalize)
        prices[name] = _sourced(entry, where, f"gpu.{name}", "usd_per_hour", GPU_HOUR_USD)
    elec = doc.get("electricity")
    return PriceTable(prices, None if elec is None else _sourced(elec, where, "electricity", "usd_per_kwh", ELECTRICITY_USD_PER_KWH))


def parse_user_prices(doc, origin: str) -> dict[str, Priced]:
    """GPU-hour prices of a user's price file (PRICE_FILE_FORMAT): `H100 = 2.5` lines and/or [gpu.NAME] tables
    (`[gpu] H100 = 2.5` too); a source is optional (the file is named instead). Electricity is an option
    (--electricity-usd-per-kwh), not part of the file: a figure there would otherwise be silently ignored."""
    where = oneline(origin)
    if not isinstance(doc, dict) or not doc:
        raise CatalogError(f"{where}: no prices; expected {PRICE_FILE_FORMAT}")
    gpus = doc.get("gpu", {})
    if not isinstance(gpus, dict):
        raise CatalogError(f"{where}: 'gpu' must hold one price per GPU ([gpu] H100 = 2.5, or [gpu.H100] "
                           f"usd_per_hour = 2.5), got {short(gpus)}")
    entries = [(k, v, k) for k, v in doc.items() if k != "gpu"] + [(k, v, f"gpu.{k}") for k, v in gpus.items()]
    prices: dict[str, Priced] = {}
    for name, entry, key in entries:
        if normalize(name) in ("electricity", "electricity_usd_per_kwh", "usd_per_kwh"):
            raise CatalogError(f"{where}: {short(key)}: the electricity price is not read from a price file; "
                               "give --electricity-usd-per-kwh")
        if name == "usd_per_hour":
            raise CatalogError(f"{where}: usd_per_hour belongs in a [gpu.NAME] table; expected {PRICE_FILE_FORMAT}")
        check_name(name, where, "GPU", normalize)
        if isinstance(entry, dict):
            if "usd_per_hour" not in entry:
                raise CatalogError(f"{where}: table [{oneline(key, 60)}] has no usd_per_hour; expected "
                                   f"{PRICE_FILE_FORMAT}")
            price = _sourced(entry, where, key, "usd_per_hour", GPU_HOUR_USD, sourced=False)
        else:
            value = Fields({name: entry}, where, word="price of").number(name, *GPU_HOUR_USD)
            price = Priced(value, f"given in {where}")
        if normalize(name) in {normalize(n) for n in prices}:
            raise CatalogError(f"{where}: GPU {short(name)} is priced twice")
        prices[name] = price
    return prices


def parse_grid(doc, origin: str) -> GridTable:
    """A validated GridTable of a parsed grid_intensity TOML document."""
    where = oneline(origin)
    if not isinstance(doc, dict) or not isinstance(doc.get("region"), dict) or not doc["region"]:
        raise CatalogError(f"{where}: expected [region.NAME] tables with gco2_per_kwh and source")
    Fields(doc, where, word="table").only(("region", "pue", "defaults"))
    regions, names = {}, {}
    for name, entry in doc["region"].items():
        check_name(name, where, "region", normalize)
        if normalize(name) in regions:
            raise CatalogError(f"{where}: region {short(name)} is defined twice")
        regions[normalize(name)] = _sourced(entry, where, f"region.{name}", "gco2_per_kwh", GRID_GCO2_PER_KWH)
        names[normalize(name)] = name
    pue = _sourced(doc["pue"], where, "pue", "value", PUE) if "pue" in doc else None
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise CatalogError(f"{where}: 'defaults' must be a table")
    d = Fields(defaults, f"{where}: defaults")
    d.only(("region",))
    default = d.text("region", "world")
    if normalize(default) not in regions:
        d.fail("region", f"names {short(default)}, which is not a [region.*] of the file")
    return GridTable(regions, names, pue, names[normalize(default)])


def _shipped(name: str):
    return tomllib.loads(resources.files("energylens.catalog").joinpath(f"data/{name}").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def shipped_prices() -> PriceTable:
    return parse_prices(_shipped("gpu_prices.toml"), "built-in gpu_prices.toml")


@lru_cache(maxsize=1)
def grid_table() -> GridTable:
    return parse_grid(_shipped("grid_intensity.toml"), "built-in grid_intensity.toml")


def read_prices(path: str | os.PathLike) -> PriceTable:
    """GPU-hour prices of a user's price file (PRICE_FILE_FORMAT)."""
    return PriceTable(parse_user_prices(load(read_toml, path, "price file", "TOML"), str(path)))


_PAIR = re.compile(r"^\s*([^=,]+?)\s*=\s*([^=,]+?)\s*$")


def parse_gpu_hour_usd(text: str, option: str = "--gpu-hour-usd") -> dict[str, float]:
    """'H100=2.5,B200=5' as {'H100': 2.5, 'B200': 5.0}; one-line errors naming the option and the pair."""
    if not isinstance(text, str) or not text.strip():
        raise EnergyLensError(f"{option} expects NAME=USD pairs separated by commas (e.g. H100=2.5,B200=5) "
                              "or a TOML price file")
    out: dict[str, float] = {}
    lo, hi, unit = GPU_HOUR_USD
    for part in text.split(","):
        m = _PAIR.match(part)
        if not m:
            raise EnergyLensError(f"{option}: {clip(part.strip() or '(empty)')!r} is not NAME=USD "
                                  "(e.g. H100=2.5,B200=5)")
        name, raw = m.group(1), m.group(2)
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not lo <= value <= hi:
            raise EnergyLensError(f"{option}: price of {clip(name)} must be a number from {lo:g} to {hi:g} {unit}, "
                                  f"got {clip(raw)!r}")
        if name in out:
            raise EnergyLensError(f"{option}: {clip(name)} is priced twice")
        out[name] = value
    return out
