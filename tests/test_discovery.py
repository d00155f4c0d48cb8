import pandas as pd
import pytest

from energylens.discovery import discover, discovery_features, select_formula
from energylens.discovery.search import to_sympy
from energylens.evaluation.synthetic import synthetic_profiles


def test_features_are_dimensionless_shares():
    X, ratio, roof = discovery_features(synthetic_profiles(n=60, seed=1))
    shares = X[["w_share", "kv_share", "pf_share"]].sum(axis=1)
    assert (shares <= 1 + 1e-9).all() and (ratio > 0).all() and (roof > 0).all()


def test_short_search_returns_a_front_that_parses():
    pytest.importorskip("pyoperon")
    df = synthetic_profiles(n=120, seed=2)
    front = discover(df, seed=0, time_budget=3, population_size=60, generations=15, max_length=15)
    assert len(front) >= 1 and {"complexity", "mape", "expression"} <= set(front.columns)
    assert front["complexity"].is_monotonic_increasing
    expr = to_sympy(select_formula(front)["expression"])
    assert expr.free_symbols <= {*map(__import__("sympy").Symbol, discovery_features(df)[0].columns)}
    again = discover(df, seed=0, time_budget=3, population_size=60, generations=15, max_length=15)
    assert list(again["expression"]) == list(front["expression"])  # reproducible for a seed


def test_select_formula_rules():
    front = pd.DataFrame({"complexity": [3, 7, 15], "mape": [0.30, 0.105, 0.10], "expression": ["a", "b", "c"]})
    assert select_formula(front, "best")["expression"] == "c"
    assert select_formula(front, "simplest")["expression"] == "a"
    assert select_formula(front, "knee", tolerance=0.01)["expression"] == "b"
    with pytest.raises(ValueError):
        select_formula(front, "nope")
