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
    """One sourced figure: its publisher (`source`), the page it is published on (`url`), the date it was
    read, and whose transcription it was read through (`via`), when not the publisher's own page."""
    value: float
    source: str
    date: str = ""
    url: str = ""
    via: str = ""

    def cited(self) -> str:
        """'RunPod Secure Cloud, H100 SXM 80 GB, on-demand, 2026-09-25': the source and its date, in short."""
        return f"{self.source}{f', {self.date}' if self.date and self.date not in self.source else ''}"

    def cited_in_full(self) -> str:
        """The short citation, then the page and the transcription it was read through."""
        return ", ".join(x for x in (self.cited(), self.url, f"via {self.via}" if self.via else "") if x)

    def as_dict(self, name: str = "value") -> dict:
        return {name: self.value, "source": self.source, "date": self.date, "url": self.url or None,
                "via": self.via or None}


@dataclass(frozen=True)
class PriceTable:
    gpu_hour_usd: dict[str, Priced]  # as written in the file (a hardware name or alias)
    electricity_usd_per_kwh: Priced | None = None
    unpriced: dict[str, str] = field(default_factory=dict)  # GPU as written -> why the table has no price


@dataclass(frozen=True)
class GridTable:
    regions: dict[str, Priced]  # normalized region name -> gCO2e/kWh
    names: dict[str, str] = field(default_factory=dict)  # normalized -> as written
    pue: Priced | None = None
    default_region: str = "world"
    codes: dict[str, str] = field(default_factory=dict)  # normalized ISO code or other name -> normalized region

    def get(self, region: str) -> tuple[str, Priced]:
        """(region name, intensity) of a region given by name or ISO 3166-1 code (`de`, `deu`, `germany`)."""
        key = normalize(region) if isinstance(region, str) else ""
        key = self.codes.get(key, key)
        if key not in self.regions:
            hint = closest(str(region), list(self.names.values()))
            iso = sorted({c.upper() for c, r in self.codes.items() if len(c) == 2})
            raise EnergyLensError(f"--region {clip(region)!r} unknown"
                                  + (f" (closest: {', '.join(hint)})" if hint else "")
                                  + f"; give a country name or ISO code ({', '.join(iso).lower()}), "
                                  f"{self.default_region}, or --grid-gco2-per-kwh")
        return self.names[key], self.regions[key]


# A user's price file, in words: --help, README and every error about such a file say this.
PRICE_FILE_FORMAT = ("a TOML file of USD per GPU-hour, one line per GPU: H100 = 2.5 (names or aliases of the "
                     "hardware catalog); or [gpu.H100] tables with usd_per_hour and optional source and date")
PRICE_FILE_EXAMPLE = "# prices.toml: USD per GPU-hour\nH100 = 2.5\nB200 = 5.0\n"


def electricity_basis(usd_per_kwh: float, zero: str = "give --electricity-usd-per-kwh 0", cloud: bool = False) -> str:
    """Which case an electricity price assumes, in words. With `cloud` rental prices (which include power) a
    price above 0 counts power twice unless the lease bills it apart: the words say so and how to avoid it
    (`zero`, worded for the CLI or the explorer)."""
    if usd_per_kwh > 0:
        text = "charged on top of the GPU-hour prices, as for owned hardware (or a lease that bills power apart)"
        if cloud:
            text += (f"; cloud rental prices already include power, so unless your lease bills it apart {zero} "
                     "or power is counted twice")
        return text
    return "no charge for power beyond the GPU-hour prices, as for a cloud rental whose GPU-hour price includes it"


def _sourced(entry, where: str, key: str, name: str, bounds: tuple[float, float, str], sourced: bool = True,
             extra: tuple[str, ...] = ()) -> Priced:
    """The figure `name` of one table, with its source (required when `sourced`), date, url and via
    (`extra`: other fields the caller reads itself)."""
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: {short(key)} must be a table with {name}, source and date, got {short(entry)}")
    f = Fields(entry, f"{where}: {oneline(key, 80)}")
    f.only((name, "source", "date", "note", "url", "via", *extra))
    lo, hi, unit = bounds
    value = f.number(name, lo, hi, unit)
    source = f.text("source", limit=500)
    if sourced and not source.strip():
        f.fail("source", "is missing; every figure needs its source")
    return Priced(value, source.strip() or f"given in {where}", f.text("date", limit=40), f.text("url", limit=500),
                  f.text("via", limit=500))


def parse_prices(doc, origin: str) -> PriceTable:
    """A validated PriceTable of a parsed gpu_prices TOML document (the shipped table: every figure sourced)."""
    where = oneline(origin)
    if not isinstance(doc, dict):
        raise CatalogError(f"{where}: expected [gpu.NAME] and [electricity] tables")
    Fields(doc, where, word="table").only(("gpu", "electricity", "unpriced"))
    gpus = doc.get("gpu", {})
    if not isinstance(gpus, dict):
        raise CatalogError(f"{where}: 'gpu' must hold one table per GPU ([gpu.H100] usd_per_hour = ...)")
    prices = {}
    for name, entry in gpus.items():
        check_name(name, where, "GPU", normalize)
        prices[name] = _sourced(entry, where, f"gpu.{name}", "usd_per_hour", GPU_HOUR_USD)
    unpriced = doc.get("unpriced", {})
    if not isinstance(unpriced, dict):
        raise CatalogError(f"{where}: 'unpriced' must hold one table per GPU ([unpriced.MI250] reason = ...)")
    why = {}
    for name, entry in unpriced.items():
        check_name(name, where, "GPU", normalize)
        if not isinstance(entry, dict):
            raise CatalogError(f"{where}: unpriced.{short(name)} must be a table with a reason")
        f = Fields(entry, f"{where}: unpriced.{oneline(name, 80)}")
        f.only(("reason",))
        why[name] = f.text("reason", limit=500).strip() or f.fail("reason", "is missing; say why there is no price")
        if normalize(name) in {normalize(n) for n in prices}:
            raise CatalogError(f"{where}: GPU {short(name)} is both priced and unpriced")
    elec = doc.get("electricity")
    return PriceTable(prices, None if elec is None else _sourced(elec, where, "electricity", "usd_per_kwh",
                                                                 ELECTRICITY_USD_PER_KWH), why)


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
    regions, names, codes = {}, {}, {}
    for name, entry in doc["region"].items():
        check_name(name, where, "region", normalize)
        key = normalize(name)
        if key in regions or key in codes:
            raise CatalogError(f"{where}: region {short(name)} is defined twice")
        regions[key] = _sourced(entry, where, f"region.{name}", "gco2_per_kwh", GRID_GCO2_PER_KWH, extra=("codes",))
        names[key] = name.replace("_", " ")  # as people write it: 'united states' (spaces do not matter in a lookup)
        for code in Fields(entry, f"{where}: region.{oneline(name, 80)}").names("codes", normalize) or ():
            if normalize(code) in codes or (normalize(code) in regions and normalize(code) != key):
                raise CatalogError(f"{where}: region code {short(code)} names two regions")
            codes[normalize(code)] = key
    pue = _sourced(doc["pue"], where, "pue", "value", PUE) if "pue" in doc else None
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise CatalogError(f"{where}: 'defaults' must be a table")
    d = Fields(defaults, f"{where}: defaults")
    d.only(("region",))
    default = d.text("region", "world")
    if normalize(default) not in regions:
        d.fail("region", f"names {short(default)}, which is not a [region.*] of the file")
    return GridTable(regions, names, pue, names[normalize(default)], codes)


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
