"""Whether the training data identified a fitted coefficient: the one rule behind `show`, the model
file's coefficient table, docs/MODEL.md's shipped-model block, `fit`'s printout and `explain`'s flags.

A coefficient is reported with its 95% interval only when the data pinned it down. Otherwise it is
  - "held fixed": held at a value given on purpose (a recalibration keeps the base model's value);
  - "not fitted": held at its prior: no training row where its term reaches 1% of a prediction, or, fitted,
    its 95% interval spanned more than MAX_INTERVAL_RATIO, so the fit was redone with it at its prior
    (model/fitting.py): no prediction rests on a value the data left free;
  - "NOT IDENTIFIED": fitted, but its value is the fit's bound rather than the data's (pinned at a
    bound; a physical bound such as "no faster than the hardware" is kept), or its interval is still too
    wide after the refits (rare).

MAX_INTERVAL_RATIO = 100 (model/fitting.py): a coefficient's 95% interval is symmetric in log units, so
hi/lo > 100 means the value is uncertain by more than 10x either way: the data cannot even fix its order of
magnitude, and a share of energy resting on it could be a tenth or ten times what is printed.
Exponents of corrections (fitted additively, prediction x exp(c * h)) are judged the same way through
the factor their interval makes over one e-fold of h: exp(hi - lo) > MAX_INTERVAL_RATIO.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .fitting import EXPONENT_BOUND, LOG_BOUNDS, MAX_INTERVAL_RATIO

_AT_BOUND = 1e-6  # log units: what the fit reports as "at its bound" (model/fitting.py uses the same)

IDENTIFIED, NOT_FITTED, NOT_IDENTIFIED, HELD = "identified", "not fitted", "NOT IDENTIFIED", "held fixed"
# Shares resting on a coefficient of these kinds are flagged by `explain`: no data set its value. A coefficient
# held fixed on purpose (a recalibration keeps the base model's value) is not flagged: its value came from data.
UNSUPPORTED = (NOT_FITTED, NOT_IDENTIFIED)


@dataclass(frozen=True)
class Verdict:
    status: str  # IDENTIFIED, HELD, NOT_FITTED or NOT_IDENTIFIED
    reason: str  # "" when identified

    @property
    def identified(self) -> bool:
        return self.status == IDENTIFIED

    def text(self) -> str:
        """What a table prints instead of an interval."""
        return f"{self.status}: {self.reason}" if self.reason else self.status


def judge(value: float, lo95: float, hi95: float, fitted: bool, *, exponent: bool,
          lower: float, upper: float, held: bool = False) -> Verdict:
    """The verdict on one coefficient: `lower`/`upper` are the bounds the fit worked within (for an
    exponent, -EXPONENT_BOUND and +EXPONENT_BOUND; for a term, its own bounds or the fit's log bounds);
    `held`: the estimator was told to hold it at a given value."""
    if held and not fitted:
        return Verdict(HELD, "at the value given (a recalibration keeps the base model's)")
    if not fitted:
        return Verdict(NOT_FITTED, "held at its prior value")
    if exponent:
        if value <= lower + _AT_BOUND or value >= upper - _AT_BOUND:
            return Verdict(NOT_IDENTIFIED, f"pinned at its bound {lower if value <= lower + _AT_BOUND else upper:g}")
        spread = math.exp(min(hi95 - lo95, 700.0)) if math.isfinite(hi95 - lo95) else math.inf
        if not spread <= MAX_INTERVAL_RATIO:
            return Verdict(NOT_IDENTIFIED, f"95% interval changes the correction {_times(spread)} per e-fold of its group")
        return Verdict(IDENTIFIED, "")
    if value > 0 and lower > 0 and math.log(value) <= math.log(lower) + _AT_BOUND:
        return Verdict(NOT_IDENTIFIED, f"pinned at its lower bound {lower:.3g}")
    if value > 0 and math.isfinite(upper) and upper > 0 and math.log(value) >= math.log(upper) - _AT_BOUND:
        return Verdict(NOT_IDENTIFIED, f"pinned at its upper bound {upper:.3g}")
    ratio = hi95 / lo95 if lo95 > 0 and math.isfinite(hi95) else math.inf
    if not ratio <= MAX_INTERVAL_RATIO:
        return Verdict(NOT_IDENTIFIED, f"95% interval spans {_times(ratio)}")
    return Verdict(IDENTIFIED, "")


def _times(x: float) -> str:
    return "more than 1e300x" if not math.isfinite(x) else f"{x:,.0f}x" if x < 1e6 else f"{x:.1e}x"


def fit_bounds(structure) -> list[tuple[float, float]]:
    """(lower, upper) each coefficient was fitted within, as model/fitting.py applies them: coefficients then
    correction exponents (-EXPONENT_BOUND, +EXPONENT_BOUND)."""
    floor, ceiling = math.exp(LOG_BOUNDS[0]), math.exp(LOG_BOUNDS[1])
    out = [(max(c.lower, floor), min(c.upper, ceiling)) for c in structure.coefficients]
    return out + [(-EXPONENT_BOUND, EXPONENT_BOUND)] * len(structure.corrections)


def rule_text() -> str:
    """The rule in one line, for the tables that apply it."""
    return (f"NOT IDENTIFIED: fitted, but pinned at a bound or with a 95% interval spanning more than "
            f"{MAX_INTERVAL_RATIO:g}x (the data do not fix its order of magnitude), so no interval is given")
