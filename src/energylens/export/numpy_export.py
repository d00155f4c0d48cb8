"""The fitted closed form as a NumPy callable of the feature symbols (SymPy lambdify of the expression
built from the structure's definitions, with common subexpressions shared).

`symbol_values(model, table)` computes every symbol for a table of configurations, so that
`numpy_function(model)(**symbol_values(model, table))` reproduces `model.predict(table)`.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from .sympy_export import energy_expression


def numpy_function(model, engine: str | None = None):
    """A function of the expression's symbols (keyword arrays) returning energy per request, with the
    coefficients of `engine` (default: the shared ones; sympy_export.definitions says which is which)."""
    expr = energy_expression(model, digits=None, engine=engine)
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    fn = sp.lambdify(symbols, expr, modules="numpy", cse=True)

    def energy(**values):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn(*(values[s.name] for s in symbols))

    energy.symbols = [s.name for s in symbols]
    return energy


def symbol_values(model, table) -> dict[str, np.ndarray]:
    """Values of every feature symbol for each configuration."""
    from dataclasses import fields

    from ..features.physics import compute_features
    from ..model.predictor import prepare

    f = compute_features(prepare(table))
    return {fld.name: getattr(f, fld.name) for fld in fields(f)}
