"""Cost and carbon from the recommender's predictions, and ranking by energy, cost or carbon.

Pure functions over the frame `recommend` builds (energy_request_j, latency_s, num_gpus, batch_size, gpu):

    gpu_seconds_per_request        = num_gpus * latency_s / batch_size
    cost_usd_per_request           = gpu_seconds_per_request / 3600 * gpu_hour_usd[gpu]
                                     + energy_request_j * pue / 3.6e6 * electricity_usd_per_kwh
    cost_usd_per_million_tokens    = cost_usd_per_request / output_tokens * 1e6
    carbon_gco2e_per_1000_requests = 1000 * energy_request_j * pue / 3.6e6 * grid_gco2_per_kwh

Why GPU-seconds are num_gpus * latency_s / batch_size: the deployment's GPUs are held for the whole run;
at full load it serves batch_size requests at once, each taking latency_s end to end, so it completes
batch_size requests every latency_s (Little's law) and each request holds all num_gpus GPUs for
latency_s / batch_size seconds.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog.costs import (ELECTRICITY_USD_PER_KWH, GPU_HOUR_USD, GRID_GCO2_PER_KWH, PUE, Priced, grid_table,
                             electricity_basis, parse_gpu_hour_usd, read_prices, shipped_prices)
from ..errors import EnergyLensError
from ..io import clip

J_PER_KWH = 3.6e6

# objective -> (column ranked, lowest first; what it measures)
OBJECTIVES: dict[str, tuple[str, str]] = {
    "energy": ("energy_request_j", "predicted GPU energy per request (J)"),
    "cost": ("cost_usd_per_million_tokens", "USD per million output tokens (GPU-hours + electricity)"),
    "carbon": ("carbon_gco2e_per_1000_requests", "operational gCO2e per 1000 requests"),
}
# The columns add_objectives writes, in this order.
OBJECTIVE_COLUMNS = ("gpu_seconds_per_request", "gpu_hour_usd", "cost_usd_per_request", "cost_usd_per_million_tokens",
                     "carbon_gco2e_per_1000_requests")

TIME_PER_REQUEST = ("GPU time per request = num_gpus x latency_s / batch_size: the deployment's GPUs are held for "
                    "the whole run and, at full load, finish batch_size requests every latency_s (Little's law; "
                    "no idle time assumed, so real costs are higher at lower load)")


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

    def statements(self, gpus=None) -> list[str]:
        """The assumptions in words, for the output (prices only of `gpus` when given)."""
        shown = [g for g in (gpus or self.gpu_hour_usd) if g in self.gpu_hour_usd]
        missing = [g for g in (gpus or []) if g not in self.gpu_hour_usd]
        out = [TIME_PER_REQUEST]
        for g in shown:
            p = self.gpu_hour_usd[g]
            out.append(f"{g}: {p.value:g} USD per GPU-hour ({p.cited()})")
        if missing:
            out.append(f"no GPU-hour price for {', '.join(missing)}: their cost columns are empty "
                       "(give --gpu-hour-usd NAME=USD)")
        e, u, c = self.electricity_usd_per_kwh, self.pue, self.grid_gco2_per_kwh
        out += [f"electricity {e.value:g} USD/kWh ({e.cited()}) on facility energy = GPU energy x PUE, "
                f"{electricity_basis(e.value)}",
                f"PUE {u.value:g} ({u.cited()})",
                f"grid {c.value:g} gCO2e/kWh" + (f", region {self.region}" if self.region else "") + f" ({c.cited()}); "
                "carbon = GPU energy x PUE x grid intensity, operational only (no embodied carbon)",
                "USD per million output tokens = cost per request / output tokens x 1,000,000; GPU energy is the "
                "model's prediction for all GPUs of the deployment"]
        return out

    def as_dict(self, gpus=None) -> dict:
        gpus = list(gpus or self.gpu_hour_usd)
        return {
            "gpu_hour_usd": {g: {"usd": p.value, "source": p.source, "date": p.date}
                             for g, p in self.gpu_hour_usd.items() if g in gpus},
            "electricity_usd_per_kwh": {"value": self.electricity_usd_per_kwh.value,
                                        "source": self.electricity_usd_per_kwh.source},
            "pue": {"value": self.pue.value, "source": self.pue.source},
            "grid_gco2_per_kwh": {"value": self.grid_gco2_per_kwh.value, "source": self.grid_gco2_per_kwh.source,
                                  "region": self.region or None},
            "time_per_request": TIME_PER_REQUEST,
            "statements": self.statements(gpus),
        }


def _user_prices(gpu_hour_usd) -> dict[str, Priced]:
    """--gpu-hour-usd as {name as given: Priced}: a dict, 'H100=2.5,B200=5', or a TOML price file."""
    if gpu_hour_usd is None:
        return {}
    if isinstance(gpu_hour_usd, dict):
        return {str(k): Priced(_number(f"--gpu-hour-usd {clip(k)}", v, GPU_HOUR_USD), "given by the caller")
                for k, v in gpu_hour_usd.items()}
    text = os.fspath(gpu_hour_usd) if isinstance(gpu_hour_usd, os.PathLike) else gpu_hour_usd
    if isinstance(text, str) and "=" not in text and (text.endswith(".toml") or Path(text).is_file()):
        return read_prices(text).gpu_hour_usd
    return {k: Priced(v, "given by --gpu-hour-usd") for k, v in parse_gpu_hour_usd(text).items()}


def assumptions(gpu_hour_usd=None, electricity_usd_per_kwh=None, grid_gco2_per_kwh=None, region=None, pue=None,
                hardware=None) -> Assumptions:
    """The figures of a run: the shipped tables, overridden per GPU or per figure by what the caller gives.
    `hardware` (a HardwareCatalog) resolves price names to canonical GPU names."""
    from ..catalog import hardware_catalog

    hw = hardware if hardware is not None else hardware_catalog()
    prices: dict[str, Priced] = {}
    for source, table in (("built-in gpu_prices.toml", shipped_prices().gpu_hour_usd), ("--gpu-hour-usd", _user_prices(gpu_hour_usd))):
        for name, p in table.items():
            canonical = hw.canonical(name)
            if canonical is None:
                raise EnergyLensError(f"{source}: unknown GPU {clip(name)!r} (a name or alias of the hardware catalog, "
                                      "e.g. H100=2.5)")
            prices[canonical] = p  # the caller's price replaces the shipped one
    shipped = shipped_prices().electricity_usd_per_kwh
    elec = (shipped if electricity_usd_per_kwh is None else
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
    return Assumptions(prices, elec, u, g, name)


def require_prices(a: Assumptions, gpus, objective: str, spell=lambda name: "--" + name.replace("_", "-")) -> None:
    """Ranking by cost needs a price for every GPU of the pool: say which are missing, before any work
    (`spell`: how the caller's front end spells an option, e.g. RecommendOptions.spell)."""
    if objective != "cost":
        return
    missing = [g for g in gpus if g not in a.gpu_hour_usd]
    if missing:
        raise EnergyLensError(f"{spell('objective')} cost: no GPU-hour price for {', '.join(missing)}; give "
                              f"{spell('gpu_hour_usd')} "
                              f"{missing[0]}=USD (prices known for: {', '.join(a.gpu_hour_usd) or 'none'})")


def add_objectives(res: pd.DataFrame, a: Assumptions, output_tokens: float) -> pd.DataFrame:
    """`res` with the columns of OBJECTIVE_COLUMNS added (a copy); NaN cost where a GPU has no price."""
    out = res.copy()
    held = out["num_gpus"].to_numpy(float) * out["latency_s"].to_numpy(float) / out["batch_size"].to_numpy(float)
    codes, gpus = pd.factorize(out["gpu"])  # one price look-up per GPU type, not per row
    price = np.array([a.gpu_hour_usd[g].value if g in a.gpu_hour_usd else np.nan for g in gpus], dtype=float)[codes]
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
