"""Choosing one formula from a Pareto front: a plain function over the front's table."""
from __future__ import annotations

import pandas as pd


def select_formula(front: pd.DataFrame, criterion: str = "knee", tolerance: float = 0.01) -> pd.Series:
    """Pick a row of the front.

    criterion:
      "knee"  - the simplest formula whose relative error is within `tolerance` of the best one's
                (the point where extra complexity stops paying);
      "best"  - the lowest error whatever its complexity;
      "simplest" - the lowest complexity.
    """
    if front.empty:
        raise ValueError("empty Pareto front")
    if criterion == "best":
        return front.loc[front["mape"].idxmin()]
    if criterion == "simplest":
        return front.loc[front["complexity"].idxmin()]
    if criterion != "knee":
        raise ValueError(f"unknown criterion {criterion!r}; expected knee, best or simplest")
    best = front["mape"].min()
    ok = front[front["mape"] <= best + tolerance]
    return ok.loc[ok["complexity"].idxmin()]
