"""The closed form as SymPy expressions over the feature symbols, built from the structure's checked
definition trees (nothing is parsed by SymPy): one expression per definition, in evaluation order, and
energy per request with every definition substituted."""
from __future__ import annotations

import sympy as sp


def _structure_and_values(model, structure, engine=None):
    from ..model.structure import physics_structure

    if model is not None:
        return model.structure_, dict(zip(model.structure_.names, map(float, model.engine_values(engine))))
    return (structure or physics_structure()), None


def definitions(model=None, digits: int | None = None, structure=None, engine: str | None = None
                ) -> list[tuple[str, sp.Expr]]:
    """(name, expression) of every definition, in order; each expression reads features, coefficients and
    earlier definitions by name. With a fitted model its coefficients are substituted (to `digits`
    significant digits when given, else exactly as floats): those of `engine` (default: the shared ones, as
    `predict` uses for a table without the engine column; `model.default_engine()` is what `recommend` prices
    with)."""
    from ..model.expression import _sympy

    s, values = _structure_and_values(model, structure, engine)
    subs = {} if values is None else {sp.Symbol(n): (sp.Float(v, digits) if digits else sp.Float(v, 17))
                                      for n, v in values.items()}
    return [(name, _sympy(tree, sp).xreplace(subs)) for name, _, tree in s.parsed]


def expressions(model=None, digits: int | None = None, structure=None, engine: str | None = None
                ) -> dict[str, sp.Expr]:
    """Every definition as an expression of the features alone (earlier definitions substituted)."""
    done: dict[sp.Symbol, sp.Expr] = {}
    out = {}
    for name, expr in definitions(model, digits, structure, engine):
        full = expr.xreplace(done)
        done[sp.Symbol(name)] = full
        out[name] = full
    return out


def energy_expression(model=None, digits: int | None = 3, structure=None, engine: str | None = None) -> sp.Expr:
    """E_request = e_prefill + e_decode as one SymPy expression of the features (coefficients substituted
    when a model is given, else symbols)."""
    e = expressions(model, digits, structure, engine)
    return e["e_prefill"] + e["e_decode"]
