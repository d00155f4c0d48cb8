"""Baselines behind one interface with the EnergyLens model, registered by name.

Every entry builds an object with `fit(df)` and `predict(df)` (energy per request, J) over
validated profiling tables; `latency_*` entries rank by latency instead of energy.
"""
from __future__ import annotations

from collections.abc import Callable

from .energylens import EnergyLensMethod
from .latency import LatencyMeasured, LatencyPredicted
from .roofline import RooflineModel
from .surrogates import (EnsembleSurrogate, LogLinearSurrogate, RandomForestSurrogate, SecondOrderLogLinearSurrogate,
                         XGBoostSurrogate)

REGISTRY: dict[str, Callable] = {
    "energylens": EnergyLensMethod,
    "roofline": RooflineModel,
    "rf": RandomForestSurrogate,
    "xgb": XGBoostSurrogate,
    "ensemble": EnsembleSurrogate,
    "loglinear": LogLinearSurrogate,
    "loglinear2": SecondOrderLogLinearSurrogate,
    "latency_measured": LatencyMeasured,
    "latency_predicted": LatencyPredicted,
}
ENERGY_PREDICTORS = ("energylens", "roofline", "rf", "xgb", "ensemble", "loglinear")


def make(name: str, **kwargs):
    if name not in REGISTRY:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name](**kwargs)
