"""Structure discovery: symbolic regression (pyoperon) of what the fitted formula misses, over raw system quantities.

1. The base structure (compact or physics, whichever cross-validates better and leaves room in the budget of
   fitted numbers) is fitted jointly on the rows (time, power and energy).
2. Multi-objective symbolic regression (NSGA-II on R^2 and length; +, -, *, constants) explains the log
   residual of energy per request with the logs of raw system quantities (`discovery.features`).
3. Each formula of the Pareto front is expanded into monomials of those logs (products of power laws). Each
   monomial becomes candidate corrections of the base structure (on the power demand, and on the times) and,
   where its sign says the formula misses time, an additive time term in the quantities it names. Operon's own
   constants are discarded: every candidate has exactly the fitted numbers it declares, refitted by the same
   joint fit as every structure.
4. `energylens.model.selection.select_structure` compares the candidates with the built-in ones by K-fold
   cross-validation.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..errors import EnergyLensError
from ..features.physics import compute_features
from ..model.expression import parse
from ..model.fitting import fit_formula, measurements
from ..model.selection import MAX_FITTED, cross_validate, energy_prediction
from ..model.structure import BUILTIN, FEATURES, Structure
from ..model.terms import Coefficient, Correction
from .features import SYSTEM_QUANTITIES, quantity_matrix

MAX_DEGREE = 2  # monomials of higher degree are not readable corrections
MAX_TERM_FACTORS = 2  # an additive time term multiplies at most two quantities
TERM_PRIOR_SHARE = 0.01  # a discovered time term starts at 1% of the median step: just identifiable, never driving
PROVENANCE = "monomial found by symbolic regression (pyoperon) of the fitted formula's residual; refitted"


@dataclass
class Discovery:
    base: Structure
    candidates: list[Structure]
    front: pd.DataFrame  # one row per front formula: complexity, r2 of the residual, monomials
    rows: int
    elapsed_s: float


def available() -> bool:
    """Whether pyoperon (the `discovery` extra) is importable."""
    try:
        import pyoperon.sklearn  # noqa: F401
    except ImportError:
        return False
    return True


def discover(df: pd.DataFrame, *, seed: int = 0, time_budget: float = 20.0, population_size: int = 300,
             max_length: int = 15, generations: int = 1000, n_threads: int = 1, progress=None,
             max_fitted: int = MAX_FITTED) -> Discovery:
    """Search corrections and time terms of the base structure on the rows of `df` (a validated profiling table)."""
    try:
        from pyoperon.sklearn import SymbolicRegressor
    except ImportError as exc:
        raise EnergyLensError(f"symbolic regression needs pyoperon (pip install 'energylens[discovery]'): {exc}")
    start = time.monotonic()
    f = compute_features(df)
    meas = measurements(df)
    y = meas.energy()
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 10:
        raise EnergyLensError(f"discovery needs at least 10 rows with energy, got {int(ok.sum())}")
    base, coef = _best_base(f, meas, seed, max_fitted)
    pred, _ = energy_prediction(base, f, coef)
    residual = np.log(y) - np.log(np.maximum(pred, 1e-300))
    Z, names = quantity_matrix(f)
    keep = ok & np.isfinite(residual) & np.isfinite(Z).all(axis=1)
    varying = np.ptp(Z[keep], axis=0) > 1e-9
    cols = [i for i in range(len(names)) if varying[i]]
    if not cols:
        raise EnergyLensError("discovery: no system quantity varies across these rows")
    reg = SymbolicRegressor(
        allowed_symbols="add,sub,mul,constant,variable", objectives=["r2", "length"],
        population_size=population_size, generations=generations, max_length=max_length,
        max_time=max(int(time_budget), 1), random_state=seed, n_threads=n_threads, optimizer_iterations=5)
    Xs = np.asarray(Z[keep][:, cols], dtype=np.float64)
    _run_with_progress(lambda: reg.fit(Xs, residual[keep].astype(np.float64)), time_budget, progress)
    budget = max_fitted - int(np.sum(_fitted(base, f, meas, seed)))
    step = float(np.median(base.evaluate(f, coef)["t_step"][keep]))
    used = [names[c] for c in cols]
    front_rows, candidates, seen = [], [], set()
    for sol in reg.pareto_front_:
        monos = [(m, c) for m, c in _monomials(sol["model"], len(cols)) if 0 < sum(m) <= MAX_DEGREE]
        label = " + ".join(_mono_name(m, used) for m, _ in monos) or "(no monomial of degree 1-2: a constant)"
        fitted_r = np.asarray(reg.evaluate_model(sol["tree"], np.asfortranarray(Xs.copy())))
        r = residual[keep]
        r2 = 1 - float(np.sum((r - fitted_r) ** 2)) / max(float(np.sum((r - r.mean()) ** 2)), 1e-300)
        front_rows.append({"complexity": int(sol["complexity"]), "r2_residual": r2, "monomials": label,
                           "n_monomials": len(monos)})
        key = frozenset(m for m, _ in monos)
        if not monos or key in seen or len(monos) > budget:
            continue
        seen.add(key)
        for target in ("power", "time"):
            corr = [_correction(m, used, target) for m, _ in monos]
            candidates.append(base.with_corrections(corr, name=f"{base.name}+discovered"))
        grows = [m for m, c in monos if sum(m) == 1 and c > 0]  # more energy where these quantities are large
        if grows:
            factors = [used[next(i for i, e in enumerate(m) if e)] for m in grows][:MAX_TERM_FACTORS]
            candidates.append(_with_time_term(base, factors, step, f))
    front = pd.DataFrame(front_rows).drop_duplicates("monomials").sort_values("complexity").reset_index(drop=True)
    return Discovery(base, candidates, front, int(keep.sum()), time.monotonic() - start)


def _fitted(structure, f, meas, seed):
    res = fit_formula(structure, f, meas, structure.priors(), n_starts=1, seed=seed)
    return res.identified


def _best_base(f, meas, seed, max_fitted):
    """The built-in structure with the lowest CV error among those that leave room for one more fitted number,
    and its coefficients fitted on every row."""
    best = None
    for make in BUILTIN.values():
        s = make()
        cv = cross_validate(s, f, meas, seed=seed)
        if cv["fitted"] >= max_fitted:
            continue
        if best is None or cv["log_mae"] < best[1]["log_mae"]:
            best = (s, cv)
    if best is None:
        raise EnergyLensError(f"discovery: every base structure already uses the budget of {max_fitted} fitted numbers")
    s = best[0]
    return s, fit_formula(s, f, meas, s.priors(), seed=seed).coef


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


def _monomials(text: str, n_vars: int) -> list[tuple[tuple[int, ...], float]]:
    """(exponents, coefficient) of each monomial of an operon formula over X1..Xn, through the checked grammar."""
    import sympy as sp

    symbols = [f"X{i + 1}" for i in range(n_vars)]
    expr = parse(text.replace("^", "**"), symbols, "discovered formula").to_sympy()
    poly = sp.Poly(sp.expand(expr), *[sp.Symbol(s) for s in symbols])
    return [(m, float(c)) for m, c in zip(poly.monoms(), poly.coeffs()) if abs(float(c)) > 1e-12]


def _mono_name(m, names) -> str:
    return "*".join(f"{n}^{e}" if e > 1 else n for n, e in zip(names, m) if e)


def _correction(m, names, target: str) -> Correction:
    factors = [(n, e) for n, e in zip(names, m) if e]
    name = "d_" + "_x_".join(n + (f"_pow{e}" if e > 1 else "") for n, e in factors) + ("_time" if target == "time" else "")
    expr = "*".join(f"log({SYSTEM_QUANTITIES[n]})" + (f"**{e}" if e > 1 else "") for n, e in factors)
    doc = " x ".join(f"log {n}" + (f" (power {e})" if e > 1 else "") for n, e in factors)
    return Correction(name, expr, f"discovered: {doc}", target=target, provenance=PROVENANCE)


def _with_time_term(base: Structure, factors: list[str], step: float, f) -> Structure:
    """`base` with an additive decode-step time theta x (product of the quantities), scaled so that theta = 1 makes
    the term the median step of the training rows; theta starts at TERM_PRIOR_SHARE (just identifiable)."""
    name = "theta_d_" + "_x_".join(factors)
    product = "*".join(f"({SYSTEM_QUANTITIES[q]})" for q in factors)
    values = {n: getattr(f, n) for n in FEATURES}
    median = float(np.median(np.broadcast_to(np.asarray(parse(product, FEATURES, name).evaluate(values), float), (f.n,))))
    expr = f"{step / max(median, 1e-300)!r}*{product}"
    coef = Coefficient(name, kind="time", prior=TERM_PRIOR_SHARE, lower=1e-6, upper=100.0, groups=("overhead",),
                       doc=f"discovered: decode-step time in {' x '.join(factors)} (1 = the training rows' median step "
                           "at their median product)",
                       provenance=PROVENANCE + f"; prior {TERM_PRIOR_SHARE:.0%} of the training rows' median step")
    time_defs = tuple(replace(d, expression=f"{d.expression} + {name}*{expr}") if d.name == "t_step" else d
                      for d in base.time)
    return replace(base, name=f"{base.name}+discovered", coefficients=(*base.coefficients, coef), time=time_defs,
                   _parsed=None, _function=None)
