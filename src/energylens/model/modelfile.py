"""JSON model files (no pickle): schema version, formula, coefficients with units and intervals,
training provenance, and a checksum (unkeyed SHA-256) so that an accidentally edited or truncated file
is refused: it detects accidents, not tampering, so every field is also validated when loaded."""
from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ModelFileError
from ..io import atomic_write_json, read_json
from .fitting import EXPONENT_BOUND
from .fitted import CoefficientSet, FittedModel, Note, TrainingDomain
from .predictor import ClosedFormPredictor
from .structure import Structure

SCHEMA_VERSION = 3
FORMAT = "energylens-model"
MAX_COEFFICIENTS = 200
MAX_TERM_COEFFICIENT = 1e6  # a coefficient at a million times its scale is no fit, it is a broken file
MAX_LOG_SPREAD = 20.0  # a residual or coefficient spread of e^20 in log units is a broken file, not an uncertainty
# Types of the estimator parameters a file may set (anything else is refused, not passed on).
PARAM_TYPES = {"n_starts": int, "random_state": int, "loss": str, "fixed": list, "priors": (dict, type(None)),
               "prior_strength": (int, float), "engine_column": (str, type(None)), "max_fitted": int, "cv_folds": int}
LOSSES = ("linear", "soft_l1", "huber", "cauchy", "arctan")


def _checksum(payload: dict) -> str:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _coefficient_set(cs, names) -> dict:
    return {"values": dict(zip(names, map(float, cs.values))), "fitted": dict(zip(names, map(bool, cs.fitted))),
            "cov_log": _cov(cs.cov_log), "energy_residual_std_log": _num(cs.residual_std),
            "time_residual_std_log": _num(cs.time_residual_std), "rows": int(cs.rows)}


def model_to_dict(model: ClosedFormPredictor, provenance: dict | None = None) -> dict:
    st = model.fitted_
    coefs = model.coefficients()
    s = st.structure
    # lo95 and hi95 are null where the data did not identify the coefficient ('identification' says why:
    # model/identification.py); they are written for information and never read back (the covariance is).
    entry = lambda r: {"value": float(r.value), "lo95": _num(r.lo95), "hi95": _num(r.hi95), "kind": r.kind,
                       "unit": r.unit, "fitted": bool(r.fitted), "identified": bool(r.identified),
                       "identification": r.identification, "meaning": r.meaning, "prior_provenance": r.prior_provenance}
    payload = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "energylens_version": __version__,
        "formula": "\n".join(s.formula_lines()),
        "structure": s.to_dict(),
        "fitted_numbers": _fitted_numbers(model),
        "cross_validation": _clean(st.cv or {}),
        "coefficients": {r.name: entry(r) for r in coefs.itertuples()},
        "shared": _coefficient_set(st.shared, s.names),
        "estimator_params": {k: v for k, v in _params(model).items()},
        "engine_column": st.engine_column,
        "engines": {g: _coefficient_set(e, s.names) for g, e in st.engines.items()},
        "training_domain": st.domain.to_dict(),
        "provenance": {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "train_metrics": _clean(st.train_metrics),
            "notes": [{"coefficient": n.coefficient, "kind": n.kind, "text": n.text} for n in st.notes],
            **({k: v for k, v in st.provenance.items() if k not in ("created", "train_metrics", "notes")}),
            **(provenance or {}),
        },
    }
    payload["sha256"] = _checksum(payload)
    return payload


def _fitted_numbers(model) -> dict:
    """How many fitted numbers a prediction depends on, and how many the file holds with its engines."""
    st = model.fitted_
    s = st.structure
    refit = [n for n, ok, r in zip(s.names, st.shared.fitted, s.records()) if ok and r.recalibrate]
    return {"energy": model.fitted_count(),
            "engine_specific": {g: len(refit) for g in st.engines},
            "distinct_values": model.fitted_count() + len(st.engines) * len(refit),
            "rule": "a prediction depends on 'energy' numbers: every coefficient with fitted=true, the time model's "
                    "included (energy is every GPU's power over the predicted time); a row of a known engine uses that "
                    "engine's own values of its recalibrated coefficients instead of the shared ones "
                    "('distinct_values' counts every value the file holds)"}


def _cov(m) -> list:
    """A covariance as written: entries beyond MAX_LOG_SPREAD^2 (an unidentified direction) are capped, so
    that every file this writes loads again."""
    lim = MAX_LOG_SPREAD ** 2
    return np.clip(np.nan_to_num(np.asarray(m, dtype=float), nan=0.0, posinf=lim, neginf=-lim), -lim, lim).tolist()


def _params(model) -> dict:
    """Estimator parameters that are plain data (the structure itself is stored in 'structure')."""
    if not hasattr(model, "get_params"):
        return {}
    out = {}
    for k, v in model.get_params().items():
        if k in ("structure", "candidates"):
            continue
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def _clean(obj):
    """JSON-safe copy: NaN and infinities become null."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return _num(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _num(x):
    return None if x is None or not math.isfinite(x) else float(x)


def save_model(model: ClosedFormPredictor, path, provenance: dict | None = None) -> dict:
    payload = model_to_dict(model, provenance)
    atomic_write_json(path, payload)
    return payload


def _bad(path, msg):
    raise ModelFileError(f"{path}: {msg}")


def _values(table, names, path, what, kind=(int, float)) -> np.ndarray:
    if not isinstance(table, dict) or len(table) > MAX_COEFFICIENTS:
        _bad(path, f"'{what}' must be an object with one entry per coefficient")
    out = []
    for n in names:
        v = table.get(n)
        if kind is bool:
            if not isinstance(v, bool):
                _bad(path, f"'{what}' of coefficient '{n}' must be true or false")
        elif isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v):
            _bad(path, f"'{what}' lacks a finite value for coefficient '{n}'")
        out.append(v)
    return np.array(out, dtype=bool if kind is bool else float)


def _read_set(d, structure, path, what):
    if not isinstance(d, dict):
        _bad(path, f"'{what}' must be an object")
    names = structure.names
    values = _values(d.get("values"), names, path, f"{what}.values")
    fitted = _values(d.get("fitted"), names, path, f"{what}.fitted", bool)
    p = structure.n_coefficients
    if (values[:p] <= 0).any() or (values[:p] > MAX_TERM_COEFFICIENT).any():
        _bad(path, f"{what}: coefficients must be > 0 and <= {MAX_TERM_COEFFICIENT:g}")
    why = structure.out_of_range(values)
    if why:
        _bad(path, f"{what}: {why}")
    if (np.abs(values[p:]) > EXPONENT_BOUND).any():
        _bad(path, f"{what}: correction exponents must lie within +-{EXPONENT_BOUND:g}")
    rows = d.get("rows", 0)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        _bad(path, f"{what}: 'rows' must be a count")
    return CoefficientSet(values, fitted, _matrix(d.get("cov_log"), len(names), path, f"{what}.cov_log"),
                          _std(d.get("energy_residual_std_log"), path, f"{what}.energy_residual_std_log"),
                          _std(d.get("time_residual_std_log"), path, f"{what}.time_residual_std_log"), rows)


def _matrix(v, size, path, what) -> np.ndarray:
    try:
        m = np.array(v, dtype=float)
    except (TypeError, ValueError):
        _bad(path, f"'{what}' must be a matrix of numbers")
    if m.shape != (size, size) or not np.isfinite(m).all() or (np.abs(m) > MAX_LOG_SPREAD ** 2).any():
        _bad(path, f"'{what}' must be a finite {size} x {size} matrix (entries within +-{MAX_LOG_SPREAD ** 2:g})")
    return m


def _std(v, path, what) -> float:
    if v is None:
        return float("nan")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= MAX_LOG_SPREAD:
        _bad(path, f"'{what}' must be a number from 0 to {MAX_LOG_SPREAD:g} (log units) or null")
    return float(v)


def _check_params(params: dict, path) -> None:
    for k, v in params.items():
        want = PARAM_TYPES.get(k)
        if want is None:
            continue  # parameters of other versions are ignored, never passed on
        if isinstance(v, bool) or not isinstance(v, want):
            _bad(path, f"estimator_params '{k}' has the wrong type")
        if isinstance(v, (int, float)) and not (math.isfinite(v) and 0 <= v <= 1e9):
            _bad(path, f"estimator_params '{k}' is out of range")
    if not 1 <= params.get("n_starts", 1) <= 100 or not 0 <= params.get("cv_folds", 5) <= 50:
        _bad(path, "estimator_params 'n_starts' must be 1-100 and 'cv_folds' 0-50")
    if params.get("loss", "soft_l1") not in LOSSES:
        _bad(path, f"estimator_params 'loss' must be one of {', '.join(LOSSES)}")
    if not all(isinstance(x, str) for x in params.get("fixed", [])):
        _bad(path, "estimator_params 'fixed' must be a list of coefficient names")
    priors = params.get("priors") or {}
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in priors.values()):
        _bad(path, "estimator_params 'priors' must map names to finite numbers")


def model_from_dict(d: dict, path="<model>", estimator: bool = True):
    """Rebuild a fitted model; estimator=False gives a light predictor that needs no scikit-learn."""
    if not isinstance(d, dict):
        _bad(path, "expected a JSON object (an EnergyLens model file)")
    if d.get("format") != FORMAT:
        _bad(path, f"not an EnergyLens model file (format is {str(d.get('format'))[:60]!r}, expected {FORMAT!r})")
    if d.get("schema_version") != SCHEMA_VERSION:
        _bad(path, f"schema_version {str(d.get('schema_version'))[:20]} is not supported (expected {SCHEMA_VERSION}; "
                   "refit the model with this version)")
    if "sha256" not in d:
        _bad(path, "missing checksum 'sha256'")
    body = {k: v for k, v in d.items() if k != "sha256"}
    if _checksum(body) != d["sha256"]:
        _bad(path, "checksum mismatch: the file was edited or corrupted after it was written (refit it)")
    structure = Structure.from_dict(d.get("structure"), where=str(path))
    shared = _read_set(d.get("shared"), structure, path, "shared")
    params = d.get("estimator_params", {})
    if not isinstance(params, dict):
        _bad(path, "'estimator_params' must be an object")
    _check_params(params, path)
    if estimator:
        from .estimator import EnergyLensRegressor

        names = set(EnergyLensRegressor().get_params()) - {"structure", "candidates"}
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items() if k in names}
        try:
            m = EnergyLensRegressor(structure=structure, **kwargs)
        except TypeError as exc:
            _bad(path, f"malformed estimator_params ({exc})")
    else:
        m = ClosedFormPredictor()
    col = d.get("engine_column")
    if col is not None and not isinstance(col, str):
        _bad(path, "'engine_column' must be text or null")
    engines = d.get("engines") or {}
    if not isinstance(engines, dict) or len(engines) > MAX_COEFFICIENTS:
        _bad(path, "'engines' must be an object")
    engine_sets = {str(g): _read_set(e, structure, path, f"engines.{str(g)[:40]}") for g, e in engines.items()}
    prov = d.get("provenance", {})
    if not isinstance(prov, dict):
        _bad(path, "'provenance' must be an object")
    notes, metrics = prov.get("notes", []), prov.get("train_metrics", {})
    if not isinstance(notes, list) or not isinstance(metrics, dict):
        _bad(path, "provenance 'notes' must be a list and 'train_metrics' an object")
    typed = [Note(str(n.get("coefficient", "")), str(n.get("kind", "")), str(n.get("text", ""))) if isinstance(n, dict)
             else Note("", "fit", str(n)) for n in notes]
    rows = metrics.get("rows", 0)
    cv = d.get("cross_validation") or {}
    ok_cv = isinstance(cv, dict) and isinstance(cv.get("folds"), int) and not isinstance(cv.get("folds"), bool) and \
        all(cv.get(k) is None or (isinstance(cv.get(k), (int, float)) and not isinstance(cv.get(k), bool))
            for k in ("mape", "log_mae", "fitted"))
    m.fitted_ = FittedModel(structure=structure, shared=shared, engines=engine_sets, engine_column=col,
                            domain=TrainingDomain.from_dict(d.get("training_domain")), cv=cv if ok_cv else {},
                            notes=typed, train_metrics=dict(metrics), provenance=prov,
                            n_train=rows if isinstance(rows, int) and not isinstance(rows, bool) else 0)
    return m


DEFAULT_MODEL_FILE = "default.json"  # shipped in the package: model/defaults/


def default_model_dict() -> dict:
    """The shipped model file's contents."""
    from importlib import resources

    return json.loads(resources.files("energylens.model").joinpath("defaults", DEFAULT_MODEL_FILE).read_text())


def default_model(estimator: bool = False):
    """The shipped model (`estimator=False`: a light predictor that needs no scikit-learn)."""
    return model_from_dict(default_model_dict(), path="built-in default model", estimator=estimator)


def load_model(path, estimator: bool = True):
    if str(path) == "default" and not Path(str(path)).exists():
        return default_model(estimator=estimator)
    return model_from_dict(read_model_dict(path), path, estimator)


def read_model_dict(path) -> dict:
    """The raw contents of a model file (checked by model_from_dict when a model is built from it)."""
    if str(path) == "default" and not Path(str(path)).exists():
        return default_model_dict()
    return read_json(path, ModelFileError, "model file")
