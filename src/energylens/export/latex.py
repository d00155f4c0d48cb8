"""LaTeX rendering of the closed form: every definition as one line of an aligned system, from the same
SymPy expressions as the SymPy and NumPy exports (so the three agree by construction)."""
from __future__ import annotations

import sympy as sp

from .sympy_export import definitions


def _name(name: str) -> str:
    head, _, rest = name.partition("_")
    if not rest:
        return head
    rest = rest.replace("_", r"\_")
    return f"{head}_{{\\mathrm{{{rest}}}}}"


def definition_latex(model=None, digits: int | None = 4, structure=None, engine: str | None = None
                     ) -> list[tuple[str, str]]:
    """(name, LaTeX of its right-hand side) of every definition, in evaluation order (coefficients of `engine`:
    sympy_export.definitions)."""
    symbols = {}
    defs = definitions(model, digits, structure, engine)
    for name, expr in defs:
        for s in expr.free_symbols:
            symbols.setdefault(s, _name(s.name))
    return [(name, sp.latex(expr, symbol_names=symbols)) for name, expr in defs]


def formula_latex(model=None, digits: int | None = 4, structure=None, engine: str | None = None) -> str:
    lines = [f"{_name(name)} &= {tex}" for name, tex in definition_latex(model, digits, structure, engine)]
    lines.append(r"E_{\mathrm{request}} &= e_{\mathrm{prefill}} + e_{\mathrm{decode}}")
    return "\\begin{aligned} " + " \\\\ ".join(lines) + " \\end{aligned}"  # one line: copied, never wrapped
