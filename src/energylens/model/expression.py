"""Term expressions: a whitelisted grammar, parsed without eval.

An expression is text over numbers, known feature symbols, `+ - * / **`, parentheses and the
functions `exp log sqrt min max`. Model files store the structure of a model as such text, so
text read from a file goes through `parse` only: Python's `ast` parser builds a syntax tree (it
executes nothing) and every node outside the whitelist is refused. Evaluation walks the checked
tree with NumPy; SymPy objects are built from the same tree (no `sympify`, no `parse_expr`).
"""
from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ModelFileError

MAX_LENGTH = 2000  # characters: a readable term is far shorter
MAX_DEPTH = 40  # nesting of parentheses
MAX_NODES_DEEP = 300  # operator chains (a + b + c ... nests to the left): far below Python's recursion limit
MAX_CONSTANT = 1e30  # no physical constant of a term is larger
MAX_EXPONENT = 8.0  # powers take a number as exponent, at most 8 in size: x**9**9**9 would never finish
FUNCTIONS = ("exp", "log", "sqrt", "min", "max")
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_UNARY = {ast.USub: "-", ast.UAdd: "+"}


class ExpressionError(ModelFileError):
    """An expression outside the grammar, or over unknown symbols."""


@dataclass(frozen=True)
class Expression:
    """A checked expression tree. `text` is the source; `symbols` the feature names it reads."""

    text: str
    tree: ast.expr
    symbols: frozenset[str]

    def evaluate(self, values: Mapping[str, np.ndarray] | object) -> np.ndarray:
        """Value for every configuration; `values` maps symbol names (or has them as attributes)."""
        get = values.__getitem__ if isinstance(values, Mapping) else (lambda name: getattr(values, name))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.asarray(_evaluate(self.tree, get), dtype=float)

    def to_sympy(self):
        import sympy as sp

        return _sympy(self.tree, sp)

    def __str__(self) -> str:
        return self.text


def parse(text: str, known: Iterable[str], where: str = "expression") -> Expression:
    """Check `text` against the grammar and the known symbols; raise ExpressionError naming `where`."""
    if not isinstance(text, str):
        raise ExpressionError(f"{where}: expected an expression as text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"{where}: expression longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ExpressionError(f"{where}: empty expression")
    depth = 0
    for ch in text:  # bound the nesting before the parser recurses into it
        depth += ch == "("
        depth -= ch == ")"
        if depth > MAX_DEPTH:
            raise ExpressionError(f"{where}: expression nested deeper than {MAX_DEPTH} levels")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"{where}: not a valid expression ({type(exc).__name__})") from None
    known = frozenset(known)
    used: set[str] = set()
    _check(tree, known, used, where, 0)
    return Expression(text.strip(), tree, frozenset(used))


def _check(node, known, used, where, depth):
    if depth > MAX_NODES_DEEP:
        raise ExpressionError(f"{where}: expression has more than {MAX_NODES_DEEP} chained operations")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        if isinstance(node.op, ast.Pow) and not _small_number(node.right):
            raise ExpressionError(f"{where}: the exponent of ** must be a number between -{MAX_EXPONENT:g} and "
                                  f"{MAX_EXPONENT:g}")
        _check(node.left, known, used, where, depth + 1)
        _check(node.right, known, used, where, depth + 1)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, known, used, where, depth + 1)
    elif isinstance(node, ast.Constant):
        # size first: math.isfinite of an int of 1,500 digits overflows (an int compares exactly with a float)
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)) or abs(node.value) > MAX_CONSTANT \
                or not math.isfinite(node.value):
            raise ExpressionError(f"{where}: constants must be finite numbers of size at most {MAX_CONSTANT:g}, "
                                  f"got {_constant_text(node.value)}")
    elif isinstance(node, ast.Name):
        if node.id not in known:
            raise ExpressionError(f"{where}: unknown symbol '{node.id[:60]}'")
        used.add(node.id)
    elif isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS or node.keywords:
            raise ExpressionError(f"{where}: only the functions {', '.join(FUNCTIONS)} are allowed")
        arity_ok = len(node.args) == 1 if name in ("exp", "log", "sqrt") else len(node.args) >= 2
        if not arity_ok or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError(f"{where}: wrong number of arguments to {name}")
        for a in node.args:
            _check(a, known, used, where, depth + 1)
    else:
        raise ExpressionError(f"{where}: '{type(node).__name__}' is not allowed (numbers, symbols, + - * / **, "
                              f"{', '.join(FUNCTIONS)})")


def _constant_text(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**40:
        return f"an integer of {len(str(abs(value))) if abs(value) < 10**4000 else 'over 4,000'} digits"
    try:
        return str(value)[:40]
    except ValueError:  # str() of an int beyond Python's digit limit
        return f"a {type(value).__name__}"


def _small_number(node) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool) and \
        isinstance(node.value, (int, float)) and abs(node.value) <= MAX_EXPONENT


def _evaluate(node, get):
    if isinstance(node, ast.BinOp):
        a, b = _evaluate(node.left, get), _evaluate(node.right, get)
        op = type(node.op)
        if op is ast.Add:
            return a + b
        if op is ast.Sub:
            return a - b
        if op is ast.Mult:
            return a * b
        if op is ast.Div:
            return np.divide(a, b)
        return np.power(np.asarray(a, dtype=float), b)
    if isinstance(node, ast.UnaryOp):
        v = _evaluate(node.operand, get)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return get(node.id)
    args = [_evaluate(a, get) for a in node.args]
    name = node.func.id
    if name == "exp":
        return np.exp(args[0])
    if name == "log":
        return np.log(args[0])
    if name == "sqrt":
        return np.sqrt(args[0])
    out = args[0]
    for a in args[1:]:
        out = np.minimum(out, a) if name == "min" else np.maximum(out, a)
    return out


def _sympy(node, sp):
    if isinstance(node, ast.BinOp):
        a, b = _sympy(node.left, sp), _sympy(node.right, sp)
        op = type(node.op)
        return {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                ast.Div: lambda: a / b, ast.Pow: lambda: a ** b}[op]()
    if isinstance(node, ast.UnaryOp):
        v = _sympy(node.operand, sp)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Constant):
        return sp.Integer(node.value) if isinstance(node.value, int) else sp.Float(node.value)
    if isinstance(node, ast.Name):
        return sp.Symbol(node.id)
    args = [_sympy(a, sp) for a in node.args]
    return {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "min": sp.Min, "max": sp.Max}[node.func.id](*args)
