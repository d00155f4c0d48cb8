"""The formula of a structure as code: one function generated from its checked definitions.

`compile_formula` turns a structure's definitions (text of the whitelisted grammar, model/expression.py)
into one Python function that evaluates them in order. The function is built from the checked syntax
trees (numbers, known names, + - * / **, exp log sqrt min max), never from unchecked text, and runs on
NumPy arrays. Called with `Dual` numbers for the coefficients it also returns every definition's exact
derivatives with respect to them (forward-mode differentiation: the same operators, overloaded), which the
fit, the uncertainty of a prediction and the profiling planner use. The SymPy, LaTeX and NumPy exports
(`energylens.export`) read the same trees, so every form of the model is generated from one source.
"""
from __future__ import annotations

import ast
from functools import lru_cache

import numpy as np


class Dual:
    """A value (scalar or array of n) and its gradient with respect to p coefficients ((p,) or (n, p))."""

    __slots__ = ("v", "g")
    __array_priority__ = 100  # numpy arrays defer to Dual's operators

    def __init__(self, v, g):
        self.v, self.g = v, g

    # -- arithmetic ----------------------------------------------------------------------------
    def __add__(self, o):
        return Dual(self.v + o.v, self.g + o.g) if isinstance(o, Dual) else Dual(self.v + o, self.g)

    __radd__ = __add__

    def __sub__(self, o):
        return Dual(self.v - o.v, self.g - o.g) if isinstance(o, Dual) else Dual(self.v - o, self.g)

    def __rsub__(self, o):
        return Dual(o - self.v, -self.g)

    def __neg__(self):
        return Dual(-self.v, -self.g)

    def __pos__(self):
        return self

    def __mul__(self, o):
        if isinstance(o, Dual):
            return Dual(self.v * o.v, _c(o.v) * self.g + _c(self.v) * o.g)
        return Dual(self.v * o, _c(o) * self.g)

    __rmul__ = __mul__

    def __truediv__(self, o):
        if isinstance(o, Dual):
            q = self.v / o.v
            return Dual(q, (self.g - _c(q) * o.g) / _c(o.v))
        return Dual(self.v / o, self.g / _c(o))

    def __rtruediv__(self, o):
        q = o / self.v
        return Dual(q, -_c(q / self.v) * self.g)

    def __pow__(self, k):
        if isinstance(k, Dual):
            raise TypeError("exponents are numbers in this grammar")
        return Dual(self.v ** k, _c(k * self.v ** (k - 1)) * self.g)


def _c(v):
    """A value broadcast against a gradient: arrays gain a trailing axis."""
    return v[..., None] if isinstance(v, np.ndarray) and v.ndim else v


def _exp(x):
    if isinstance(x, Dual):
        e = np.exp(x.v)
        return Dual(e, _c(e) * x.g)
    return np.exp(x)


def _log(x):
    if isinstance(x, Dual):
        return Dual(np.log(x.v), x.g / _c(x.v))
    return np.log(x)


def _sqrt(x):
    if isinstance(x, Dual):
        r = np.sqrt(x.v)
        return Dual(r, x.g / _c(2 * r))
    return np.sqrt(x)


def _pick(first, a, b):
    """Elementwise a where `first` else b, for plain values or Duals."""
    if not isinstance(a, Dual) and not isinstance(b, Dual):
        return np.where(first, a, b)
    a = a if isinstance(a, Dual) else Dual(a, 0.0)
    b = b if isinstance(b, Dual) else Dual(b, 0.0)
    return Dual(np.where(first, a.v, b.v), np.where(_c(np.asarray(first)), a.g, b.g))


def _value(x):
    return x.v if isinstance(x, Dual) else x


def _min(*args):
    out = args[0]
    for a in args[1:]:
        out = _pick(_value(out) <= _value(a), out, a)
    return out


def _max(*args):
    out = args[0]
    for a in args[1:]:
        out = _pick(_value(out) >= _value(a), out, a)
    return out


FUNCTIONS = {"exp": _exp, "log": _log, "sqrt": _sqrt, "min": _min, "max": _max}


def _source(definitions: tuple[tuple[str, str, ast.expr], ...], inputs: tuple[str, ...]) -> str:
    """Python source of `def formula(values)`: each input read once, each definition assigned in order."""
    lines = ["def formula(values):"]
    lines += [f"    {name} = values[{name!r}]" for name in inputs]
    lines += [f"    {name} = {ast.unparse(tree)}" for name, _, tree in definitions]
    lines.append("    return {" + ", ".join(f"{name!r}: {name}" for name, _, _ in definitions) + "}")
    return "\n".join(lines)


@lru_cache(maxsize=256)
def _compiled(source: str):
    namespace = dict(FUNCTIONS)
    exec(compile(source, "<energylens formula>", "exec"), namespace)  # noqa: S102 - generated from checked trees
    return namespace["formula"]


def compile_formula(definitions, inputs):
    """The function evaluating `definitions` ((name, text, checked tree) in order) from a mapping holding
    every name of `inputs`; returns a dict of every definition's value."""
    return _compiled(_source(tuple(definitions), tuple(inputs)))


def formula_source(definitions, inputs) -> str:
    """The generated source (shown by `energylens show --numpy` and the NumPy export)."""
    return _source(tuple(definitions), tuple(inputs))


def evaluate(function, features: dict, coefficients: dict, *, gradient_of: tuple[str, ...] = ()):
    """Every definition's value for each row; with `gradient_of`, also the derivatives of each with respect
    to those coefficients, as {name: (value, gradient (n, p))}."""
    values = dict(features)
    n = len(next(iter(features.values())))
    if not gradient_of:
        values.update(coefficients)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = function(values)
        return {k: np.broadcast_to(np.asarray(v, float), (n,)) for k, v in out.items()}  # a constant is a column too
    p = len(gradient_of)
    for name, v in coefficients.items():
        values[name] = v
    for j, name in enumerate(gradient_of):
        g = np.zeros(p)
        g[j] = 1.0
        values[name] = Dual(float(coefficients[name]), g)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = function(values)
    result = {}
    for name, x in out.items():
        if isinstance(x, Dual):
            v = np.broadcast_to(np.asarray(x.v, float), (n,))
            g = np.broadcast_to(np.asarray(x.g, float), (n, p)) if np.ndim(x.g) else np.zeros((n, p))
            result[name] = (v, g)
        else:
            result[name] = (np.broadcast_to(np.asarray(x, float), (n,)), np.zeros((n, p)))
    return result
