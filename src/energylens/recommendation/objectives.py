"""Cost and carbon from the recommender's predictions, and ranking by energy, cost or carbon.

Pure functions over the frame `recommend` builds (energy_request_j, gpu_seconds_per_request, gpu):

    gpu_seconds_per_request        = the energy model's GPU time per request (given by recommend)
    cost_usd_per_request           = gpu_seconds_per_request / 3600 * gpu_hour_usd[gpu]
                                     + energy_request_j * pue / 3.6e6 * electricity_usd_per_kwh
    cost_usd_per_million_tokens    = cost_usd_per_request / output_tokens * 1e6
    carbon_gco2e_per_1000_requests = 1000 * energy_request_j * pue / 3.6e6 * grid_gco2_per_kwh

GPU-seconds are the time the energy integrates (model/terms.py, gpu_seconds): every GPU of the deployment,
idle replicas included, over the engine time a request takes at full load (its share of the batch prefill
and of the decode steps of its running batch). Cost and energy then price the same time, and energy over it is
the mean power per GPU. A frame without that column (a hand-built one) falls back to num_gpus * latency_s /
batch_size (Little's law at full load).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import hardware_catalog
from ..catalog.costs import (
    ELECTRICITY_USD_PER_KWH,
    GPU_HOUR_USD,
    GRID_GCO2_PER_KWH,
    PUE,
    Priced,
    electricity_basis,
    grid_table,
    parse_gpu_hour_usd,
    read_prices,
    shipped_prices,
)
from ..errors import EnergyLensError
from ..io import clip

J_PER_KWH = 3.6e6

# objective -> (column ranked, lowest first; what it measures)
OBJECTIVES: dict[str, tuple[str, str]] = {
    "energy": ("energy_request_j", "predicted GPU energy per request (J)"),
    "cost": ("cost_usd_per_million_tokens", "USD per million output tokens (GPU-hours, plus electricity when owned)"),
    "carbon": ("carbon_gco2e_per_1000_requests", "operational gCO2e per 1000 requests"),
}
# The columns add_objectives writes, in this order.
OBJECTIVE_COLUMNS = ("gpu_seconds_per_request", "gpu_hour_usd", "cost_usd_per_request", "cost_usd_per_million_tokens",
                     "carbon_gco2e_per_1000_requests")

TIME_PER_REQUEST = ("GPU time per request = gpu_seconds_per_request, the time the energy integrates: every GPU of the "
                    "deployment (idle replicas included) over the engine time a request takes at full load (its share "
                    "of the batch prefill and of the decode steps); at lower load the GPUs also wait, so real costs "
                    "are higher")


# --pricing: what a GPU-hour costs and whether electricity is added (the names, in order, and their meaning).
PRICING: dict[str, str] = {
    "cloud": ("on-demand rental prices per GPU-hour (the shipped table or --gpu-hour-usd), which include the "
              "power the GPUs draw: no electricity is added"),
    "owned": ("electricity on facility energy (GPU energy x PUE) plus an amortized hardware price per GPU-hour "
              "(--hardware-usd-per-gpu-hour: purchase price over service hours; not counted when not given)"),
}
DEFAULT_PRICING = "cloud"


def pricing_note() -> str:
    """What the default pricing charges, in words, for a form beside an electricity field."""
    return (f"Prices are cloud rental rates by default, which include the power the GPUs draw: no electricity is "
            f"added. An electricity price entered is {electricity_basis(1.0)}.")


def default_electricity_usd_per_kwh(pricing=None) -> float:
    """The electricity price a preset charges when none is given (cloud: none; owned: the shipped one)."""
    if check_pricing(pricing) == "cloud":
        return 0.0
    return shipped_prices().electricity_usd_per_kwh.value


def check_pricing(pricing) -> str:
    if pricing is None:
        return DEFAULT_PRICING
    if not isinstance(pricing, str) or pricing.strip().lower() not in PRICING:
        raise EnergyLensError(f"--pricing must be one of {', '.join(PRICING)}, got {clip(pricing)!r}")
    return pricing.strip().lower()


def check_objective(objective) -> str:
    if not isinstance(objective, str) or objective.strip().lower() not in OBJECTIVES:
        raise EnergyLensError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {clip(objective)!r}")
    return objective.strip().lower()


def _number(option: str, value, bounds: tuple[float, float, str]) -> float:
    lo, hi, unit = bounds
    try:
        x = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not math.isfinite(x) or not lo <= x <= hi:
        raise EnergyLensError(f"{option} must be a number from {lo:g} to {hi:g}{' ' + unit if unit else ''}, "
                              f"got {clip(value)!r}")
    return x


@dataclass(frozen=True)
class Assumptions:
    """Every figure behind the cost and carbon columns, each with where it came from."""
    gpu_hour_usd: dict[str, Priced]  # canonical GPU name -> price of one GPU for one hour
    electricity_usd_per_kwh: Priced
    pue: Priced
    grid_gco2_per_kwh: Priced
    region: str  # the grid region, or '' when the intensity was given as a number
    pricing: str = DEFAULT_PRICING
    gpu_hour_default: Priced | None = None  # the price of a GPU not in gpu_hour_usd (owned: one figure for all)
    unpriced: dict[str, str] = field(default_factory=dict)  # canonical GPU name -> why the shipped table has none

    def price(self, gpu: str) -> Priced | None:
        """The GPU-hour price of `gpu`, or None when there is none (its cost columns are then empty)."""
        return self.gpu_hour_usd.get(gpu, self.gpu_hour_default)

    def missing(self, gpu: str, effect: str = "") -> str:
        """Why `gpu` has no price and how to give one, in words (for a footnote or an error); `effect` says
        what that leaves out ('its cost columns are empty')."""
        effect = f": {effect}" if effect else ""
        if self.pricing == "owned":
            return (f"no hardware price for {gpu}{effect}; give --hardware-usd-per-gpu-hour {gpu}=USD (or one "
                    "figure for every GPU)")
        why = self.unpriced.get(gpu) or "not in the shipped price table"
        return f"no GPU-hour price for {gpu} ({why}){effect}; give --gpu-hour-usd {gpu}=USD"

    def _electricity(self) -> str:
        e = self.electricity_usd_per_kwh
        if e.value == 0:
            return f"electricity: none added ({e.source})"
        basis = electricity_basis(e.value, cloud=self.pricing == "cloud")
        return f"electricity {e.value:g} USD/kWh ({e.cited()}) on facility energy = GPU energy x PUE, {basis}"

    def _grid(self) -> str:
        c = self.grid_gco2_per_kwh
        return f"grid {fmt_figure(c.value)} gCO2e/kWh" + (f", region {self.region}" if self.region else "") + \
            f" ({c.cited()})"

    def summary(self, gpus=None) -> str:
        """The assumptions in one short sentence, for the default output (`statements` has them all)."""
        shown = [g for g in (gpus or self.gpu_hour_usd) if self.price(g) is not None]
        prices = ", ".join(f"{g} {self.price(g).value:g}" for g in shown)
        e = self.electricity_usd_per_kwh.value
        power = "power included" if e == 0 else f"plus electricity {e:g} USD/kWh x PUE"
        if self.pricing == "cloud":
            head = f"cloud rental, {power} (USD/GPU-hour: {prices or 'none known'})"
        elif self.gpu_hour_default is not None and self.gpu_hour_default.value == 0:
            head = f"owned, electricity {e:g} USD/kWh x PUE, hardware not counted"
        else:
            head = f"owned, electricity {e:g} USD/kWh x PUE, hardware USD/GPU-hour: {prices or 'none known'}"
        c = self.grid_gco2_per_kwh
        return (f"Prices: {head}; carbon: {fmt_figure(c.value)} gCO2e/kWh" + (f" ({self.region})" if self.region
                                                                             else "") + f" x PUE {self.pue.value:g}.")

    def statements(self, gpus=None) -> list[str]:
        """The assumptions in words, for the output (prices only of `gpus` when given)."""
        gpus = list(gpus or self.gpu_hour_usd)
        out = [TIME_PER_REQUEST, f"pricing {self.pricing}: {PRICING[self.pricing]}"]
        for g in gpus:
            p = self.price(g)
            if p is not None:
                word = "USD per GPU-hour" if self.pricing == "cloud" else "USD per GPU-hour of hardware"
                out.append(f"{g}: {p.value:g} {word}: {p.cited_in_full()}")
        missing = [g for g in gpus if self.price(g) is None]
        out += [self.missing(g, "its cost columns are empty") for g in missing]
        u = self.pue
        out += [self._electricity(),
                f"PUE {u.value:g} ({u.cited()})",
                self._grid() + "; carbon = GPU energy x PUE x grid intensity, operational only (no embodied carbon)",
                "USD per million output tokens = cost per request / output tokens x 1,000,000; GPU energy is the "
                "model's prediction for all GPUs of the deployment"]
        return out

    def as_dict(self, gpus=None) -> dict:
        gpus = list(gpus or self.gpu_hour_usd)
        return {
            "pricing": self.pricing,
            "pricing_definition": PRICING[self.pricing],
            "gpu_hour_usd": {g: self.price(g).as_dict("usd") for g in gpus if self.price(g) is not None},
            "no_price": {g: self.missing(g) for g in gpus if self.price(g) is None},
            "electricity_usd_per_kwh": self.electricity_usd_per_kwh.as_dict(),
            "pue": self.pue.as_dict(),
            "grid_gco2_per_kwh": {**self.grid_gco2_per_kwh.as_dict(), "region": self.region or None},
            "time_per_request": TIME_PER_REQUEST,
            "summary": self.summary(gpus),
            "statements": self.statements(gpus),
        }


def fmt_figure(x: float) -> str:
    """A sourced figure as published, to 4 significant digits (369.473 -> 369.5)."""
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _user_prices(gpu_hour_usd, option: str = "--gpu-hour-usd") -> dict[str, Priced]:
    """--gpu-hour-usd as {name as given: Priced}: a dict, 'H100=2.5,B200=5', or a TOML price file."""
    if gpu_hour_usd is None:
        return {}
    if isinstance(gpu_hour_usd, dict):
        return {str(k): Priced(_number(f"{option} {clip(k)}", v, GPU_HOUR_USD), "given by the caller")
                for k, v in gpu_hour_usd.items()}
    text = os.fspath(gpu_hour_usd) if isinstance(gpu_hour_usd, os.PathLike) else gpu_hour_usd
    if isinstance(text, str) and "=" not in text and (text.endswith(".toml") or Path(text).is_file()):
        return read_prices(text).gpu_hour_usd
    return {k: Priced(v, f"given by {option}") for k, v in parse_gpu_hour_usd(text, option).items()}


def _one_figure(value, option: str) -> Priced | None:
    """A single number for every GPU ('1.2' or 1.2), or None when `value` names GPUs (NAME=USD pairs)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Priced(_number(option, value, GPU_HOUR_USD), f"given by {option}")
    if isinstance(value, str) and "=" not in value and not value.strip().endswith(".toml"):
        try:
            float(value)
        except ValueError:
            return None
        return Priced(_number(option, value, GPU_HOUR_USD), f"given by {option}")
    return None


def _canonical(table: dict[str, Priced], hw, source: str) -> dict[str, Priced]:
    out = {}
    for name, p in table.items():
        canonical = hw.canonical(name)
        if canonical is None:
            raise EnergyLensError(f"{source}: unknown GPU {clip(name)!r} (a name or alias of the hardware catalog, "
                                  "e.g. H100=2.5)")
        out[canonical] = p
    return out


def assumptions(gpu_hour_usd=None, electricity_usd_per_kwh=None, grid_gco2_per_kwh=None, region=None, pue=None,
                hardware=None, pricing=None, hardware_usd_per_gpu_hour=None) -> Assumptions:
    """The figures of a run: the `pricing` preset's (cloud: shipped rental prices, no electricity; owned:
    electricity plus the hardware price given, if any), overridden per GPU or per figure by what the caller
    gives. `hardware` (a HardwareCatalog) resolves price names to canonical GPU names."""
    pricing = check_pricing(pricing)
    hw = hardware if hardware is not None else hardware_catalog()
    shipped = shipped_prices()
    default = None
    if pricing == "cloud":
        if hardware_usd_per_gpu_hour is not None:
            raise EnergyLensError("--hardware-usd-per-gpu-hour prices owned hardware: give it with --pricing owned "
                                  "(cloud rental prices are --gpu-hour-usd)")
        prices = {**_canonical(shipped.gpu_hour_usd, hw, "built-in gpu_prices.toml"),
                  **_canonical(_user_prices(gpu_hour_usd), hw, "--gpu-hour-usd")}  # the caller's replace the shipped
        unpriced = {hw.canonical(g) or g: why for g, why in shipped.unpriced.items()}
        elec = (Priced(0.0, "cloud rental prices include power") if electricity_usd_per_kwh is None else
                Priced(_number("--electricity-usd-per-kwh", electricity_usd_per_kwh, ELECTRICITY_USD_PER_KWH),
                       "given by --electricity-usd-per-kwh"))
    else:
        if gpu_hour_usd is not None:
            raise EnergyLensError("--gpu-hour-usd sets cloud rental prices (--pricing cloud); with --pricing owned "
                                  "give --hardware-usd-per-gpu-hour")
        option = "--hardware-usd-per-gpu-hour"
        default = _one_figure(hardware_usd_per_gpu_hour, option)
        if default is None and hardware_usd_per_gpu_hour is not None:
            try:
                given = _user_prices(hardware_usd_per_gpu_hour, option)
            except EnergyLensError as exc:
                if "NAME=USD" not in str(exc) or "=" in str(hardware_usd_per_gpu_hour):
                    raise
                raise EnergyLensError(f"{option} expects one USD figure for every GPU (1.2) or NAME=USD pairs "
                                      f"(H100=1.2,B200=2.5), got {clip(hardware_usd_per_gpu_hour)!r}") from None
            prices = _canonical(given, hw, option)
        else:
            prices = {}
        if hardware_usd_per_gpu_hour is None:
            default = Priced(0.0, "hardware not counted: no --hardware-usd-per-gpu-hour given")
        unpriced = {}
        elec = (shipped.electricity_usd_per_kwh if electricity_usd_per_kwh is None else
                Priced(_number("--electricity-usd-per-kwh", electricity_usd_per_kwh, ELECTRICITY_USD_PER_KWH),
                       "given by --electricity-usd-per-kwh"))
    grid = grid_table()
    u = grid.pue if pue is None else Priced(_number("--pue", pue, PUE), "given by --pue")
    if grid_gco2_per_kwh is not None and region is not None:
        raise EnergyLensError("give --region or --grid-gco2-per-kwh, not both")
    if grid_gco2_per_kwh is not None:
        name, g = "", Priced(_number("--grid-gco2-per-kwh", grid_gco2_per_kwh, GRID_GCO2_PER_KWH),
                             "given by --grid-gco2-per-kwh")
    else:
        name, g = grid.get(grid.default_region if region is None else region)
    return Assumptions(prices, elec, u, g, name, pricing, default, unpriced)


def require_prices(a: Assumptions, gpus, objective: str, spell=lambda name: "--" + name.replace("_", "-")) -> None:
    """Ranking by cost needs a price for every GPU of the pool: say which are missing, before any work
    (`spell`: how the caller's front end spells an option, e.g. RecommendOptions.spell)."""
    if objective != "cost":
        return
    missing = [g for g in gpus if a.price(g) is None]
    if missing:
        raise EnergyLensError(f"{spell('objective')} cost: {'; '.join(a.missing(g) for g in missing)}")


def add_objectives(res: pd.DataFrame, a: Assumptions, output_tokens: float) -> pd.DataFrame:
    """`res` with the columns of OBJECTIVE_COLUMNS added (a copy); NaN cost where a GPU has no price."""
    out = res.copy()
    if "gpu_seconds_per_request" in out:  # the energy model's own time: energy / GPU-seconds is the mean power
        held = out["gpu_seconds_per_request"].to_numpy(float)
    else:
        held = out["num_gpus"].to_numpy(float) * out["latency_s"].to_numpy(float) / out["batch_size"].to_numpy(float)
    codes, gpus = pd.factorize(out["gpu"])  # one price look-up per GPU type, not per row
    price = np.array([a.price(g).value if a.price(g) is not None else np.nan for g in gpus], dtype=float)[codes]
    facility_kwh = out["energy_request_j"].to_numpy(float) * a.pue.value / J_PER_KWH
    cost = held / 3600.0 * price + facility_kwh * a.electricity_usd_per_kwh.value
    out["gpu_seconds_per_request"] = held
    out["gpu_hour_usd"] = price
    out["cost_usd_per_request"] = cost
    out["cost_usd_per_million_tokens"] = cost / float(output_tokens) * 1e6
    out["carbon_gco2e_per_1000_requests"] = 1000.0 * facility_kwh * a.grid_gco2_per_kwh.value
    return out


def rank_by(res: pd.DataFrame, objective: str) -> pd.DataFrame:
    """`res` sorted by the objective's column (lowest first; ties by latency), index 0..n-1."""
    column = OBJECTIVES[check_objective(objective)][0]
    return res.sort_values([column, "latency_s"], kind="mergesort", na_position="last").reset_index(drop=True)
