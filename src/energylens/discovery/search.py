"""Multi-objective symbolic regression (error vs length) with pyoperon; returns the Pareto front."""
from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd

from ..errors import EnergyLensError
from .features import discovery_features


def discover(df: pd.DataFrame, *, seed: int = 0, time_budget: float = 60.0, population_size: int = 500,
             max_length: int = 30, generations: int = 1000, n_threads: int = 1, progress=None) -> pd.DataFrame:
    """Search formulas for measured energy over the roofline energy; return the Pareto front.

    Columns: complexity, length, r2_ratio, mape (of energy per token, on the data), expression
    (infix over the feature names of `discovery_features`), variables. Deterministic for a seed
    and a generation budget; `time_budget` (seconds) bounds the search.
    `progress(fraction)` is called from the main thread while the search runs.
    """
    try:
        from pyoperon.sklearn import SymbolicRegressor
    except ImportError as exc:
        raise EnergyLensError(f"symbolic regression needs pyoperon (pip install 'energylens[discovery]'): {exc}")
    X, ratio, e_roof = discovery_features(df)
    ok = np.isfinite(ratio) & (ratio > 0) & np.isfinite(X.to_numpy()).all(axis=1)
    if ok.sum() < 10:
        raise EnergyLensError(f"discovery needs at least 10 rows with energy, got {int(ok.sum())}")
    X, ratio, e_roof = X[ok], ratio[ok], e_roof[ok]
    e_meas = ratio * e_roof
    reg = SymbolicRegressor(
        allowed_symbols="add,sub,mul,div,constant,variable",
        objectives=["r2", "length"],
        population_size=population_size,
        generations=generations,
        max_length=max_length,
        max_time=max(int(time_budget), 1),
        random_state=seed,
        n_threads=n_threads,
        optimizer_iterations=5,
    )
    result = {}

    def run():
        try:
            reg.fit(X.astype(np.float64), np.asarray(ratio, dtype=np.float64))
        except Exception as exc:  # surfaced in the main thread
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    worker.start()
    while worker.is_alive():
        worker.join(timeout=0.2)
        if progress is not None:
            progress(min((time.monotonic() - start) / max(time_budget, 1e-9), 1.0))
    if "error" in result:
        raise EnergyLensError(f"symbolic regression failed: {result['error']}")
    rows = []
    Xw = np.array(X.to_numpy(dtype=np.float64), order="F", copy=True)  # operon needs a writeable array
    names = list(X.columns)
    for sol in reg.pareto_front_:
        pred_ratio = reg.evaluate_model(sol["tree"], Xw)
        pred = np.asarray(pred_ratio) * e_roof
        with np.errstate(divide="ignore", invalid="ignore"):
            mape = float(np.nanmean(np.abs(pred / e_meas - 1)))
        ss = float(np.sum((ratio - pred_ratio) ** 2))
        r2 = 1 - ss / float(np.sum((ratio - ratio.mean()) ** 2))
        rows.append({"complexity": int(sol["complexity"]), "length": int(sol["length"]), "r2_ratio": r2,
                     "mape": mape, "expression": _rename(sol["model"], names),
                     "variables": ", ".join(sorted(_rename(v, names) for v in sol["variables"]))})
    front = pd.DataFrame(rows).drop_duplicates("expression").sort_values(["complexity", "mape"]).reset_index(drop=True)
    front.attrs["rows"] = int(len(X))
    front.attrs["seed"] = seed
    front.attrs["elapsed_s"] = time.monotonic() - start
    return front


def _rename(expression: str, names: list[str]) -> str:
    """operon names inputs X1..Xn; put the feature names back."""
    import re

    return re.sub(r"\bX(\d+)\b", lambda m: names[int(m.group(1)) - 1], expression)


def to_sympy(expression: str):
    """Parse an operon infix expression into SymPy (feature names become symbols)."""
    import sympy as sp

    from .features import FEATURE_DOCS

    symbols = {name: sp.Symbol(name) for name in FEATURE_DOCS}
    return sp.sympify(expression.replace("^", "**"), locals=symbols)
