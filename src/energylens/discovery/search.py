"""Structure discovery: symbolic regression (pyoperon) of what the physics form misses.

1. The base structure (compact or physics, whichever cross-validates better) is fitted on the rows.
2. Multi-objective symbolic regression (NSGA-II on R^2 and length; +, -, *, constants) explains the
   log residual with the logs of the dimensionless groups (`discovery.features`).
3. Each formula of the Pareto front is expanded into monomials of those logs (products of power laws);
   each monomial becomes a correction of the base structure whose exponent is refitted, with the
   terms' coefficients, by the same robust least squares as every fit. Operon's own constants are
   discarded, so a candidate has exactly the fitted numbers it declares.
4. `energylens.model.selection.select_structure` compares the candidates with the built-in ones by
   K-fold cross-validation.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import EnergyLensError
from ..features.physics import compute_features
from ..model.expression import parse
from ..model.predictor import energy_targets
from ..model.selection import MAX_FITTED, cross_validate, energy_rows, fit_energy, predict_rows
from ..model.structure import CORRECTION_LIBRARY, BUILTIN, Structure
from ..model.terms import Correction
from .features import group_matrix

MAX_DEGREE = 3  # monomials of higher degree are not readable corrections


@dataclass
class Discovery:
    base: Structure
    candidates: list[Structure]
    front: pd.DataFrame  # one row per front formula: complexity, r2 of the residual, monomials
    rows: int
    elapsed_s: float


def discover(df: pd.DataFrame, *, seed: int = 0, time_budget: float = 20.0, population_size: int = 300,
             max_length: int = 15, generations: int = 1000, n_threads: int = 1, progress=None,
             max_fitted: int = MAX_FITTED) -> Discovery:
    """Search corrections of the physics form on the rows of `df` (a validated profiling table)."""
    try:
        from pyoperon.sklearn import SymbolicRegressor
    except ImportError as exc:
        raise EnergyLensError(f"symbolic regression needs pyoperon (pip install 'energylens[discovery]'): {exc}")
    start = time.monotonic()
    f = compute_features(df)
    targets = energy_targets(df)
    y = np.where(np.isfinite(targets[0]), targets[0], targets[1] + targets[2])
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 10:
        raise EnergyLensError(f"discovery needs at least 10 rows with energy, got {int(ok.sum())}")
    base, base_fit = _best_base(f, targets, seed, max_fitted)
    rows = energy_rows(base, f, targets)
    residual = np.log(y) - np.log(np.maximum(predict_rows(base, rows, base_fit.coef), 1e-300))
    Z, names = group_matrix(f)
    keep = ok & np.isfinite(residual) & np.isfinite(Z).all(axis=1)
    varying = np.ptp(Z[keep], axis=0) > 1e-9
    cols = [i for i in range(len(names)) if varying[i]]
    if not cols:
        raise EnergyLensError("discovery: no dimensionless group varies across these rows")
    reg = SymbolicRegressor(
        allowed_symbols="add,sub,mul,constant,variable", objectives=["r2", "length"],
        population_size=population_size, generations=generations, max_length=max_length,
        max_time=max(int(time_budget), 1), random_state=seed, n_threads=n_threads, optimizer_iterations=5)
    Xs = np.asarray(Z[keep][:, cols], dtype=np.float64)
    _run_with_progress(lambda: reg.fit(Xs, residual[keep].astype(np.float64)), time_budget, progress)
    used = set(base_fit.identified.nonzero()[0])
    budget = max_fitted - len(used)
    front_rows, candidates, seen = [], [], set()
    for sol in reg.pareto_front_:
        monos = _monomials(sol["model"], len(cols))
        monos = [tuple(m) for m in monos if 0 < sum(m) <= MAX_DEGREE]
        label = " + ".join(_mono_name(m, [names[c] for c in cols]) for m in monos) or \
            "(no monomial of degree 1-3: a constant)"
        fitted_r = np.asarray(reg.evaluate_model(sol["tree"], np.asfortranarray(Xs.copy())))
        r = residual[keep]
        r2 = 1 - float(np.sum((r - fitted_r) ** 2)) / max(float(np.sum((r - r.mean()) ** 2)), 1e-300)
        front_rows.append({"complexity": int(sol["complexity"]), "r2_residual": r2, "monomials": label,
                           "n_monomials": len(monos)})
        key = frozenset(monos)
        if not monos or key in seen or len(monos) > budget:
            continue
        seen.add(key)
        corr = [_correction(m, [CORRECTION_LIBRARY[names[c]] for c in cols]) for m in monos]
        candidates.append(base.with_corrections(corr, name=f"{base.name}+discovered"))
    front = pd.DataFrame(front_rows).drop_duplicates("monomials").sort_values("complexity").reset_index(drop=True)
    return Discovery(base, candidates, front, int(keep.sum()), time.monotonic() - start)


def _best_base(f, targets, seed, max_fitted):
    """The built-in structure with the lowest CV error among those that leave room for a correction."""
    best = None
    for make in BUILTIN.values():
        s = make()
        rows = energy_rows(s, f, targets)
        cv = cross_validate(s, rows, seed=seed)
        if cv["fitted"] >= max_fitted:
            continue
        if best is None or cv["log_mae"] < best[1]["log_mae"]:
            best = (s, cv, rows)
    s, _, rows = best
    prior = np.array([t.prior for t in s.energy_terms], float)
    return s, fit_energy(s, rows, prior, seed=seed)


def _run_with_progress(work, budget, progress):
    result = {}

    def run():
        try:
            work()
        except Exception as exc:  # surfaced in the main thread
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    t0 = time.monotonic()
    worker.start()
    while worker.is_alive():
        worker.join(timeout=0.2)
        if progress is not None:
            progress(min((time.monotonic() - t0) / max(budget, 1e-9), 1.0))
    if "error" in result:
        raise EnergyLensError(f"symbolic regression failed: {result['error']}")


def _monomials(text: str, n_vars: int) -> list[tuple[int, ...]]:
    """Monomials (exponent tuples) of an operon formula over X1..Xn, through the checked grammar."""
    import sympy as sp

    symbols = [f"X{i + 1}" for i in range(n_vars)]
    expr = parse(text.replace("^", "**"), symbols, "discovered formula").to_sympy()
    poly = sp.Poly(sp.expand(expr), *[sp.Symbol(s) for s in symbols])
    return [m for m, c in zip(poly.monoms(), poly.coeffs()) if abs(float(c)) > 1e-12]


def _mono_name(m, names) -> str:
    return "*".join(f"{n}^{e}" if e > 1 else n for n, e in zip(names, m) if e)


def _correction(m, library: list[Correction]) -> Correction:
    factors = [(c, e) for c, e in zip(library, m) if e]
    name = "_x_".join(c.name + (f"_pow{e}" if e > 1 else "") for c, e in factors)
    expr = "*".join(f"({c.expression})" + (f"**{e}" if e > 1 else "") for c, e in factors)
    doc = " x ".join(c.doc + (f" (power {e})" if e > 1 else "") for c, e in factors)
    return Correction(name, expr, f"discovered: {doc}", provenance="monomial found by symbolic regression (pyoperon); exponent fitted")
