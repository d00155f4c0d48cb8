"""A model structure: its coefficients, its time definitions and its corrections, as data.

The work, power and energy definitions are the package's (model/terms.py: they make every prediction
physically possible) and are the same for every structure; a structure chooses how the times are built
(the physics form, the compact one, or one grown by discovery with further additive time terms) and which
power-law corrections it carries. It is written into the model file and read back through the
whitelisted expression grammar; `Structure.definitions()` is the whole formula, in evaluation order.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache

import numpy as np

from ..errors import ModelFileError
from ..features.physics import Features
from .expression import Expression, ExpressionError, parse
from .formula import compile_formula, evaluate, formula_source
from .terms import (COMPACT_COEFFICIENTS, COMPACT_TIME, CORRECTIONS, GROUPS, PHYSICS_COEFFICIENTS, POWER_LAW,
                    PHYSICS_TIME, TARGETS, TIME_FLOORS, Coefficient, Correction, Definition, definitions)

FEATURES = tuple(f.name for f in fields(Features) if f.name != "kv_fits")
MAX_TERMS = 40  # a readable structure is far smaller; bounds what a file can ask for
CORRECTION_NAMES = {"power": "corr_power", "time": "corr_time"}
# Outputs derived from the energy definitions, the same for every structure.
_DERIVED = (
    Definition("gpu_seconds", "G*(1 + waiting)*(t_prefill + out_tokens*t_step)/batch", "s",
               "GPU-seconds per request, every GPU of the deployment (idle replicas included)"),
    Definition("power_all", "num_gpus*(e_prefill + e_decode)/gpu_seconds", "W",
               "mean power of all the deployment's GPUs together"),
)


@lru_cache(maxsize=4096)
def _parse(text: str, known: frozenset, where: str) -> Expression:
    """Parse once per text: structure selection builds many structures from the same definitions."""
    return parse(text, known, where)


def power_law(p_static, tdp, u, pp_slots) -> np.ndarray:
    """Power per GPU (W) of work whose dynamic demand is `u` (a share of TDP - static power), by the formula's own
    POWER_LAW text: within [p_static, TDP] whatever u >= 0. Arrays broadcast."""
    expr = _parse(POWER_LAW.format(u="u"), frozenset(("p_static", "tdp", "u", "pp_slots")), "power law")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.asarray(expr.evaluate({"p_static": p_static, "tdp": tdp, "u": u, "pp_slots": pp_slots}), float)


def formula_version() -> str:
    """A fingerprint of the package's shared definitions (work, power, energy): a model file records it and
    is refused by a version whose shared formula differs (its coefficients would mean something else)."""
    shared = [d for d in definitions(()) + _DERIVED]
    text = "\n".join(f"{d.name}={d.expression}" for d in shared)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Structure:
    name: str
    coefficients: tuple[Coefficient, ...]
    time: tuple[Definition, ...]  # t_step and t_prefill (and any definitions they read)
    corrections: tuple[Correction, ...] = ()
    why: str = ""  # how it was chosen (shown by `show` and stored in the model file)
    # (low, high) of each correction's group over the training rows: a power law fitted over a range is held at
    # its edge beyond it rather than extrapolated (a 50-row fit's prompt exponent of -2.75 would otherwise
    # divide the energy of a 16,000-token prompt by 5e4). () before a fit.
    correction_range: tuple[tuple[float, float], ...] = ()
    _parsed: tuple = field(default=None, compare=False, repr=False)
    _function: object = field(default=None, compare=False, repr=False)

    def __reduce__(self):
        """Pickled as its data; the parsed trees and the compiled formula are rebuilt (scikit-learn clones and
        joblib workers pickle fitted estimators)."""
        return (Structure, (self.name, self.coefficients, self.time, self.corrections, self.why, self.correction_range))

    def __post_init__(self):
        known = set(FEATURES) | set(self.names)
        parsed = []
        for d in self.definitions():
            tree = _parse(d.expression, frozenset(known), f"definition '{d.name}'")
            parsed.append((d.name, d.expression, tree.tree))
            known.add(d.name)
        object.__setattr__(self, "_parsed", tuple(parsed))

    # -- names -----------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Coefficient names in the order of the coefficient vector: coefficients, then correction exponents."""
        return tuple(c.name for c in self.coefficients) + tuple(c.name for c in self.corrections)

    @property
    def n_coefficients(self) -> int:
        return len(self.coefficients)

    def out_of_range(self, values) -> str | None:
        """Why `values` (coefficients, then correction exponents) are no model of this structure, or None: each
        coefficient within its [lower, upper] (the physical range: s_static <= 1 keeps static power <= TDP)."""
        for c, v in zip(self.coefficients, values):
            if not (np.isfinite(v) and c.lower <= v <= c.upper):
                return f"coefficient {c.name[:40]} = {float(v):.4g} outside its range [{c.lower:g}, {c.upper:g}]"
        return None

    def records(self) -> tuple:
        """Coefficient and Correction records in the order of `names`."""
        return (*self.coefficients, *self.corrections)

    def priors(self) -> np.ndarray:
        return np.array([r.prior for r in self.records()], dtype=float)

    # -- the formula -----------------------------------------------------------------------
    def definitions(self) -> tuple[Definition, ...]:
        """The whole formula in evaluation order: corrections, work, times, power, energy, derived outputs."""
        corr = []
        for target in TARGETS:
            parts = [f"{c.name}*{self._group(k)}" for k, c in enumerate(self.corrections) if c.target == target]
            corr.append(Definition(CORRECTION_NAMES[target], f"exp({' + '.join(parts)})" if parts else "1", "",
                                   f"{target} corrections (1: none)"))
        # No time beats the hardware, whatever the coefficients, corrections or a structure file's own time
        # expressions (for the built-in times with tau_mem, tau_compute >= 1 the floor never binds).
        time = tuple(replace(d, expression=f"max({d.expression}, {TIME_FLOORS[d.name]})")
                     if d.name in TIME_FLOORS else d for d in self.time)
        return (*corr, *definitions(time), *_DERIVED)

    def _group(self, k: int) -> str:
        """Correction k's group, held within its training range and centred on the range's middle (so that a
        correction is 1 in the middle of the training rows and the coefficients keep their meaning)."""
        h = f"({self.corrections[k].expression})"
        if self.correction_range:
            lo, hi = self.correction_range[k]
            mid = (lo + hi) / 2
            h = f"(min(max({h}, {lo!r}), {hi!r}) {'-' if mid >= 0 else '+'} {abs(mid)!r})"
        return h

    @property
    def parsed(self) -> tuple:
        """(name, text, checked tree) of every definition, in order."""
        return self._parsed

    def function(self):
        if self._function is None:
            object.__setattr__(self, "_function", compile_formula(self._parsed, self._inputs()))
        return self._function

    def _inputs(self) -> tuple[str, ...]:
        return tuple(FEATURES) + self.names

    def source(self) -> str:
        """The generated Python source of the formula (reads every feature and coefficient by name)."""
        return formula_source(self._parsed, self._inputs())

    def evaluate(self, f: Features, coef, *, gradient_of: tuple[str, ...] = ()) -> dict:
        """Every definition for each row of `f` with coefficient vector `coef` (in the order of `names`)."""
        feats = {name: getattr(f, name) for name in FEATURES}
        return evaluate(self.function(), feats, dict(zip(self.names, map(float, coef))), gradient_of=gradient_of)

    def correction_groups(self, f: Features) -> np.ndarray:
        """(n x corrections) every correction's group on the rows of `f`, unclipped."""
        vals = {name: getattr(f, name) for name in FEATURES}
        out = np.zeros((f.n, len(self.corrections)))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for k, c in enumerate(self.corrections):
                e = _parse(c.expression, frozenset(FEATURES), f"correction '{c.name}'")
                out[:, k] = np.broadcast_to(np.asarray(e.evaluate(vals), float), (f.n,))
        return out

    def with_correction_range(self, f: Features) -> "Structure":
        """This structure holding its corrections to the range their groups take on `f` (the training rows,
        finite values) and on the range it already has (a recalibration keeps the base model's)."""
        if not self.corrections:
            return self
        Z = self.correction_groups(f)
        Z = np.where(np.isfinite(Z), Z, np.nan)
        lo, hi = np.nanmin(Z, axis=0), np.nanmax(Z, axis=0)
        lo, hi = np.nan_to_num(lo, nan=0.0), np.nan_to_num(hi, nan=0.0)
        if self.correction_range:
            old = np.array(self.correction_range, dtype=float)
            lo, hi = np.minimum(lo, old[:, 0]), np.maximum(hi, old[:, 1])
        return replace(self, correction_range=tuple((float(a), float(b)) for a, b in zip(lo, hi)), _parsed=None, _function=None)

    def without_correction_range(self) -> "Structure":
        return replace(self, correction_range=(), _parsed=None, _function=None) if self.correction_range else self

    def with_corrections(self, corrections, name: str | None = None, why: str = "") -> "Structure":
        return replace(self, corrections=tuple(corrections), name=name or self.name, why=why, correction_range=(),
                       _parsed=None, _function=None)

    def with_coefficients(self, coefficients) -> "Structure":
        return replace(self, coefficients=tuple(coefficients), _parsed=None, _function=None)

    # -- text ------------------------------------------------------------------------------
    def formula_lines(self) -> list[str]:
        """The formula, one definition per line (model files, `show`, docs/MODEL.md)."""
        return [f"{d.name} = {d.expression}" for d in self.definitions()]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "why": self.why,
            "formula_version": formula_version(),
            "coefficients": [{"name": c.name, "kind": c.kind, "prior": c.prior, "lower": c.lower, "upper": c.upper,
                              "prior_weight": c.prior_weight, "unit": c.unit, "doc": c.doc,
                              "provenance": c.provenance, "seen_with": list(c.seen_with),
                              "recalibrate": c.recalibrate, "groups": list(c.groups)}
                             for c in self.coefficients],
            "time": [{"name": d.name, "expression": d.expression, "unit": d.unit, "doc": d.doc} for d in self.time],
            "corrections": [{"name": c.name, "expression": c.expression, "doc": c.doc, "target": c.target,
                             "prior": c.prior, "prior_weight": c.prior_weight, "provenance": c.provenance,
                             "recalibrate": c.recalibrate} for c in self.corrections],
            "correction_range": [list(r) for r in self.correction_range],
        }

    @classmethod
    def from_dict(cls, d, where: str = "model file") -> "Structure":
        """Rebuild a structure from a model file's data; every expression goes through the grammar."""
        if not isinstance(d, dict):
            raise ModelFileError(f"{where}: 'structure' must be an object")
        if d.get("formula_version") != formula_version():
            raise ModelFileError(f"{where}: the file's formula ({str(d.get('formula_version'))[:20]}) is not this "
                                 f"version's ({formula_version()}): refit the model with this version")
        try:
            coefs = tuple(Coefficient(**_record(r, Coefficient, where)) for r in _list(d, "coefficients", where))
            time = tuple(Definition(**_record(r, Definition, where)) for r in _list(d, "time", where))
            corr = tuple(Correction(**_record(r, Correction, where)) for r in _list(d, "corrections", where))
            name, why = d.get("name", "custom"), d.get("why", "")
            if not isinstance(name, str) or not isinstance(why, str):
                raise ModelFileError(f"{where}: structure 'name' and 'why' must be text")
            if not coefs:
                raise ModelFileError(f"{where}: a structure needs at least one coefficient")
            names = [c.name for c in coefs] + [c.name for c in corr]
            if len(set(names)) != len(names):
                raise ModelFileError(f"{where}: coefficient names must be unique")
            reserved = set(FEATURES) | {x.name for x in definitions(())} | set(CORRECTION_NAMES.values())
            clash = [n for n in names + [t.name for t in time] if n in reserved]
            if clash:
                raise ModelFileError(f"{where}: '{clash[0][:40]}' is a reserved name (a feature or a definition)")
            for c in coefs:
                if c.kind not in ("time", "power") or not 0 < c.lower <= c.prior <= c.upper:
                    raise ModelFileError(f"{where}: coefficient '{c.name[:40]}' needs kind time or power and "
                                         "0 < lower <= prior <= upper")
                known = _PHYSICAL_RANGE.get(c.name)
                if known and not known[0] <= c.lower <= c.upper <= known[1]:  # the shared power law reads these
                    raise ModelFileError(f"{where}: coefficient '{c.name[:40]}' must keep within its physical range "
                                         f"[{known[0]:g}, {known[1]:g}] (lower {c.lower:g}, upper {c.upper:g})")
                if any(g not in GROUPS for g in c.groups):
                    raise ModelFileError(f"{where}: coefficient '{c.name[:40]}' has an unknown group "
                                         f"(expected among {', '.join(GROUPS)})")
            for c in corr:
                if c.target not in TARGETS:
                    raise ModelFileError(f"{where}: correction '{c.name[:40]}' needs target power or time")
            if {t.name for t in time} & {"t_step", "t_prefill"} != {"t_step", "t_prefill"}:
                raise ModelFileError(f"{where}: the structure's time must define t_step and t_prefill")
            ranges = _ranges(d.get("correction_range", []), len(corr), where)
            return cls(name, coefs, time, corr, why, ranges)
        except ExpressionError as exc:
            raise ExpressionError(f"{where}: {exc}") from None
        except TypeError as exc:
            raise ModelFileError(f"{where}: malformed structure ({exc})") from None


# The physical range of every library coefficient: a structure file may narrow it, never widen it.
_PHYSICAL_RANGE = {c.name: (c.lower, c.upper) for c in (*PHYSICS_COEFFICIENTS, *COMPACT_COEFFICIENTS)}

_TYPES = {"name": str, "kind": str, "group": str, "expression": str, "doc": str, "unit": str, "provenance": str,
          "recalibrate": bool, "target": str, "prior": (int, float), "lower": (int, float), "upper": (int, float),
          "prior_weight": (int, float), "groups": list, "seen_with": list}


def _list(d, key, where):
    v = d.get(key, [])
    if not isinstance(v, list) or len(v) > MAX_TERMS:
        raise ModelFileError(f"{where}: structure '{key}' must be a list of at most {MAX_TERMS} records")
    return v


def _record(r, cls, where) -> dict:
    if not isinstance(r, dict):
        raise ModelFileError(f"{where}: every record of the structure must be an object")
    allowed = {f.name for f in fields(cls)}
    out = {}
    for k, v in r.items():
        if k not in allowed:
            raise ModelFileError(f"{where}: unknown field '{str(k)[:40]}' in a {cls.__name__} record")
        want = _TYPES.get(k, object)
        if not isinstance(v, want) or (isinstance(v, bool) and want is not bool):
            raise ModelFileError(f"{where}: field '{k}' of '{str(r.get('name'))[:40]}' has the wrong type")
        if isinstance(v, float) and not math.isfinite(v):
            raise ModelFileError(f"{where}: field '{k}' of '{str(r.get('name'))[:40]}' must be finite")
        out[k] = v
    for key in ("groups", "seen_with"):
        if key in out:
            if not all(isinstance(g, str) for g in out[key]) or len(out[key]) > MAX_TERMS:
                raise ModelFileError(f"{where}: '{key}' must be a list of names")
            out[key] = tuple(out[key])
    return out


def _ranges(value, n: int, where: str) -> tuple[tuple[float, float], ...]:
    """A structure's correction_range from a file: [] or one finite [low, high] (low <= high) per correction."""
    if value == []:
        return ()
    if not isinstance(value, list) or len(value) != n:
        raise ModelFileError(f"{where}: 'correction_range' must be a list of one [low, high] per correction ({n})")
    out = []
    for r in value:
        if (not isinstance(r, list) or len(r) != 2 or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in r)
                or not all(math.isfinite(x) and abs(x) <= 1e6 for x in r) or r[0] > r[1]):
            raise ModelFileError(f"{where}: 'correction_range' entries must be [low, high] with finite low <= high "
                                 f"(|value| <= 1e6), got {str(r)[:60]}")
        out.append((float(r[0]), float(r[1])))
    return tuple(out)


def physics_structure() -> Structure:
    return Structure("physics", PHYSICS_COEFFICIENTS, PHYSICS_TIME, (), "every coefficient of the physics form")


def compact_structure() -> Structure:
    return Structure("compact", COMPACT_COEFFICIENTS, COMPACT_TIME, (), "the physics form with merged time coefficients")


BUILTIN = {"physics": physics_structure, "compact": compact_structure}
CORRECTION_LIBRARY = {c.name: c for c in CORRECTIONS}
