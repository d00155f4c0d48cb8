"""The fitted closed form as a SymPy expression over the feature symbols, built from the term table
(each term's checked expression tree; nothing is parsed by SymPy)."""
from __future__ import annotations

import sympy as sp


def energy_expression(model=None, digits: int = 3, structure=None) -> sp.Expr:
    """E_request as a SymPy expression; with a fitted model, its coefficients substituted.

    Without a model, the coefficients stay symbols (of `structure`, the physics table by default).
    """
    from ..model.structure import physics_structure

    s = model.structure_ if model is not None else (structure or physics_structure())
    coef = (lambda j, name: sp.Float(float(model.coef_[j]), digits)) if model is not None else (lambda j, name: sp.Symbol(name))
    work = 0
    for j, t in enumerate(s.energy_terms):
        parts = [s.expression(t.name, ph).to_sympy() for ph in ("prefill", "decode") if s.expression(t.name, ph)]
        work += coef(j, t.name) * sp.Add(*parts)
    correction = 0
    for k, c in enumerate(s.corrections):
        correction += coef(s.n_terms + k, c.name) * s.expression(c.name, "h").to_sympy()
    return work * sp.exp(correction) if s.corrections else work
