"""Baselines behind one interface with the EnergyLens model, registered by name.

Every entry builds an object with `fit(df)` and `predict(df)` (energy per request, J) over
validated profiling tables; `latency_*` entries rank by latency, `rule_*` and `random` by a score
with nothing fitted (RANKERS: no error metrics for them).
"""
from __future__ import annotations

from collections.abc import Callable

from .energylens import EnergyLensMethod
from .latency import LatencyMeasured, LatencyPredicted
from .roofline import RooflineModel
from .rules import FewestGpusNewest, GpuPowerPerSlot, LargestBatch, RandomPick
from .surrogates import (EnsembleSurrogate, LogLinearSurrogate, RandomForestSurrogate, SecondOrderLogLinearSurrogate,
                         TunedRandomForest, TunedXGBoost, XGBoostSurrogate)

REGISTRY: dict[str, Callable] = {
    "energylens": EnergyLensMethod,
    "roofline": RooflineModel,
    "rf": RandomForestSurrogate,
    "xgb": XGBoostSurrogate,
    "ensemble": EnsembleSurrogate,
    "loglinear": LogLinearSurrogate,
    "loglinear2": SecondOrderLogLinearSurrogate,
    "xgb_tuned": TunedXGBoost,
    "rf_tuned": TunedRandomForest,
    "latency_measured": LatencyMeasured,
    "latency_predicted": LatencyPredicted,
    "rule_power_per_slot": GpuPowerPerSlot,
    "rule_largest_batch": LargestBatch,
    "rule_fewest_gpus": FewestGpusNewest,
    "random": RandomPick,
}
# Every experiment that scores energy errors runs the CV-tuned baselines beside the untuned ones.
ENERGY_PREDICTORS = ("energylens", "roofline", "rf", "xgb", "ensemble", "loglinear", "loglinear2", "xgb_tuned", "rf_tuned")
# Methods that rank without predicting energy (no error metrics): rules of thumb, random, latency proxies.
RULES = ("rule_power_per_slot", "rule_largest_batch", "rule_fewest_gpus", "random")
RANKERS = RULES + ("latency_measured", "latency_predicted")


def make(name: str, **kwargs):
    if name not in REGISTRY:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name](**kwargs)
