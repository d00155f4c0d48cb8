"""A model structure: which terms and corrections a model has, as data.

Built-in structures come from the term table (`terms.py`); discovered ones from `discover`; any of
them is written into the model file and read back through the whitelisted expression grammar.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache

import numpy as np

from ..errors import ModelFileError
from ..features.physics import Features
from .expression import Expression, ExpressionError, parse
from .terms import COMPACT_TERMS, CORRECTIONS, GROUPS, PHYSICS_TERMS, TIME_TERMS, Correction, EnergyTerm, TimeTerm

SYMBOLS = tuple(f.name for f in fields(Features) if f.name not in ("kv_fits",))


@lru_cache(maxsize=4096)
def _parse(text: str, where: str) -> Expression:
    """Parse once per text: structure selection builds many structures from the same terms."""
    return parse(text, SYMBOLS, where)
MAX_TERMS = 40  # a readable structure is far smaller; bounds what a file can ask for


@dataclass(frozen=True)
class Structure:
    name: str
    energy_terms: tuple[EnergyTerm, ...]
    corrections: tuple[Correction, ...] = ()
    time_terms: tuple[TimeTerm, ...] = TIME_TERMS
    why: str = ""  # how it was chosen (shown by `show` and stored in the model file)
    # (low, high) of each correction's group over the training rows, () before a fit: a power law fitted
    # over a range is held at its edge beyond it rather than extrapolated (a 50-row fit's prompt exponent
    # of -2.75 would otherwise divide the energy of a 16,000-token prompt by 5e4).
    correction_range: tuple[tuple[float, float], ...] = ()
    _parsed: dict = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        parsed = {}
        for t in self.energy_terms:
            for phase in ("prefill", "decode"):
                text = getattr(t, phase)
                if text is not None:
                    parsed[(t.name, phase)] = _parse(text, f"term '{t.name}' ({phase})")
        for c in self.corrections:
            parsed[(c.name, "h")] = _parse(c.expression, f"correction '{c.name}'")
        for t in self.time_terms:
            for phase in ("itl", "ttft"):
                text = getattr(t, phase)
                if text is not None:
                    parsed[(t.name, phase)] = _parse(text, f"time term '{t.name}' ({phase})")
        object.__setattr__(self, "_parsed", parsed)

    # -- names -----------------------------------------------------------------------------
    @property
    def energy_names(self) -> tuple[str, ...]:
        """Coefficient names in the order of the energy vector: terms, then correction exponents."""
        return tuple(t.name for t in self.energy_terms) + tuple(c.name for c in self.corrections)

    @property
    def time_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.time_terms)

    @property
    def n_terms(self) -> int:
        return len(self.energy_terms)

    def expression(self, name: str, phase: str) -> Expression | None:
        return self._parsed.get((name, phase))

    # -- design matrices -------------------------------------------------------------------
    def energy_design(self, f: Features) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(prefill matrix, decode matrix) of term energies at coefficient 1, and the correction matrix."""
        n, p = f.n, self.n_terms
        pf, dec = np.zeros((n, p)), np.zeros((n, p))
        for j, t in enumerate(self.energy_terms):
            for phase, out in (("prefill", pf), ("decode", dec)):
                e = self.expression(t.name, phase)
                if e is not None:
                    out[:, j] = _finite(e.evaluate(f))
        Z = np.zeros((n, len(self.corrections)))
        for k, c in enumerate(self.corrections):
            Z[:, k] = _finite(self.expression(c.name, "h").evaluate(f))
        if self.correction_range:
            lo, hi = np.array(self.correction_range, dtype=float).T
            Z = np.clip(Z, lo, hi)
        return pf, dec, Z

    def with_correction_range(self, f: Features) -> "Structure":
        """This structure holding its corrections to the range their groups take on `f` (the training
        rows) and on the range it already has (a recalibration keeps the base model's)."""
        if not self.corrections:
            return self
        bare = replace(self, correction_range=(), _parsed=None)
        Z = bare.energy_design(f)[2]
        lo, hi = Z.min(axis=0), Z.max(axis=0)
        if self.correction_range:
            old = np.array(self.correction_range, dtype=float)
            lo, hi = np.minimum(lo, old[:, 0]), np.maximum(hi, old[:, 1])
        return replace(self, correction_range=tuple((float(a), float(b)) for a, b in zip(lo, hi)), _parsed=None)

    def without_correction_range(self) -> "Structure":
        return replace(self, correction_range=(), _parsed=None) if self.correction_range else self

    def time_design(self, f: Features) -> tuple[np.ndarray, np.ndarray]:
        """Design matrices of the ITL and of one batch's prefill time (TTFT) in the time coefficients."""
        n = f.n
        itl, ttft = np.zeros((n, len(self.time_terms))), np.zeros((n, len(self.time_terms)))
        for j, t in enumerate(self.time_terms):
            for phase, out in (("itl", itl), ("ttft", ttft)):
                e = self.expression(t.name, phase)
                if e is not None:
                    out[:, j] = _finite(e.evaluate(f))
        return itl, ttft

    def group_matrix(self) -> np.ndarray:
        """(terms x GROUPS) 0/1 matrix mapping each energy term to its breakdown group."""
        m = np.zeros((self.n_terms, len(GROUPS)))
        for i, t in enumerate(self.energy_terms):
            m[i, GROUPS.index(t.group)] = 1.0
        return m

    def with_corrections(self, corrections, name: str | None = None, why: str = "") -> "Structure":
        return replace(self, corrections=tuple(corrections), name=name or self.name, why=why, _parsed=None)

    # -- text ------------------------------------------------------------------------------
    def formula_lines(self) -> list[str]:
        """The formula, one line per term (model files, `show`, docs/MODEL.md)."""
        lines = ["E_request = E_prefill + E_decode" + (" (times the corrections below)" if self.corrections else "")]
        for t in self.energy_terms:
            parts = [f"prefill: {t.prefill}" if t.prefill else None, f"decode: {t.decode}" if t.decode else None]
            lines.append(f"  + {t.name} * [{'; '.join(p for p in parts if p)}]    ({t.group})")
        for k, c in enumerate(self.corrections):
            held = (f", its group held within [{self.correction_range[k][0]:.4g}, {self.correction_range[k][1]:.4g}] "
                    "(the training range)") if self.correction_range else ""
            lines.append(f"  * exp({c.name} * {c.expression})    ({c.doc}{held})")
        return lines

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "why": self.why,
            "energy_terms": [{"name": t.name, "group": t.group, "prefill": t.prefill, "decode": t.decode,
                              "prior": t.prior, "lower": t.lower, "upper": _num(t.upper), "prior_weight": t.prior_weight,
                              "unit": t.unit, "doc": t.doc, "provenance": t.provenance, "recalibrate": t.recalibrate}
                             for t in self.energy_terms],
            "corrections": [{"name": c.name, "expression": c.expression, "doc": c.doc, "prior": c.prior,
                             "prior_weight": c.prior_weight, "provenance": c.provenance, "recalibrate": c.recalibrate}
                            for c in self.corrections],
            "time_terms": [{"name": t.name, "itl": t.itl, "ttft": t.ttft, "prior": t.prior, "lower": t.lower,
                            "prior_weight": t.prior_weight, "unit": t.unit, "doc": t.doc, "provenance": t.provenance,
                            "recalibrate": t.recalibrate} for t in self.time_terms],
            "correction_range": [list(r) for r in self.correction_range],
        }

    @classmethod
    def from_dict(cls, d, where: str = "model file") -> "Structure":
        """Rebuild a structure from a model file's data; every expression goes through the grammar."""
        if not isinstance(d, dict):
            raise ModelFileError(f"{where}: 'structure' must be an object")
        try:
            energy = tuple(EnergyTerm(**_record(r, EnergyTerm, where)) for r in _list(d, "energy_terms", where))
            corr = tuple(Correction(**_record(r, Correction, where)) for r in _list(d, "corrections", where))
            time = tuple(TimeTerm(**_record(r, TimeTerm, where)) for r in _list(d, "time_terms", where))
            name, why = d.get("name", "custom"), d.get("why", "")
            if not isinstance(name, str) or not isinstance(why, str):
                raise ModelFileError(f"{where}: structure 'name' and 'why' must be text")
            if not energy:
                raise ModelFileError(f"{where}: a structure needs at least one energy term")
            for t in energy:
                if t.group not in GROUPS:
                    raise ModelFileError(f"{where}: term '{t.name}' has unknown group '{t.group}' (expected one of {', '.join(GROUPS)})")
                if t.prefill is None and t.decode is None:
                    raise ModelFileError(f"{where}: term '{t.name}' has neither a prefill nor a decode expression")
            names = [t.name for t in energy] + [c.name for c in corr]
            if len(set(names)) != len(names) or len({t.name for t in time}) != len(time):
                raise ModelFileError(f"{where}: coefficient names must be unique")
            ranges = _ranges(d.get("correction_range", []), len(corr), where)
            return cls(name, energy, corr, time, why, ranges)
        except ExpressionError as exc:
            raise ExpressionError(f"{where}: {exc}") from None
        except TypeError as exc:
            raise ModelFileError(f"{where}: malformed structure ({exc})") from None


_TYPES = {"name": str, "group": str, "prefill": (str, type(None)), "decode": (str, type(None)), "itl": (str, type(None)),
          "ttft": (str, type(None)), "expression": str, "doc": str, "unit": str, "provenance": str, "recalibrate": bool,
          "prior": (int, float), "lower": (int, float), "upper": (int, float, type(None)), "prior_weight": (int, float)}


def _list(d, key, where):
    v = d.get(key, [])
    if not isinstance(v, list) or len(v) > MAX_TERMS:
        raise ModelFileError(f"{where}: structure '{key}' must be a list of at most {MAX_TERMS} records")
    return v


def _record(r, cls, where) -> dict:
    if not isinstance(r, dict):
        raise ModelFileError(f"{where}: every term must be an object")
    allowed = {f.name for f in fields(cls)}
    out = {}
    for k, v in r.items():
        if k not in allowed:
            raise ModelFileError(f"{where}: unknown field '{str(k)[:40]}' in a {cls.__name__} record")
        want = _TYPES.get(k, object)
        if not isinstance(v, want) or (isinstance(v, bool) and want is not bool):
            raise ModelFileError(f"{where}: field '{k}' of term '{str(r.get('name'))[:40]}' has the wrong type")
        if isinstance(v, float) and not math.isfinite(v):
            raise ModelFileError(f"{where}: field '{k}' of term '{str(r.get('name'))[:40]}' must be finite")
        out[k] = v
    if "upper" in out and out["upper"] is None:
        out["upper"] = float("inf")
    if out.get("prior", 1.0) < 0 or ("prior" in out and cls is not Correction and out["prior"] <= 0):
        raise ModelFileError(f"{where}: prior of '{out.get('name')}' must be > 0")
    return out


def _num(x):
    return None if not math.isfinite(x) else float(x)


def _finite(a) -> np.ndarray:
    a = np.broadcast_to(np.asarray(a, dtype=float), np.shape(a) or (1,))
    return np.where(np.isfinite(a), a, 0.0)


def physics_structure() -> Structure:
    return Structure("physics", PHYSICS_TERMS, (), TIME_TERMS, "every term of the physics table")


def compact_structure() -> Structure:
    return Structure("compact", COMPACT_TERMS, (), TIME_TERMS, "five merged physics terms")


BUILTIN = {"physics": physics_structure, "compact": compact_structure}
CORRECTION_LIBRARY = {c.name: c for c in CORRECTIONS}


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
