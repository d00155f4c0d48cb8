"""LaTeX rendering of the closed form."""
from __future__ import annotations

import sympy as sp

from .sympy_export import energy_expression


def formula_latex(model=None) -> str:
    return "E_{request} = " + sp.latex(energy_expression(model))
