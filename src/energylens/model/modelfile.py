"""JSON model files (no pickle): schema version, formula, coefficients with units and intervals,
training provenance, and a checksum so that a tampered or truncated file is refused."""
from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone

import numpy as np

from .. import __version__
from ..errors import ModelFileError
from ..io import atomic_write_json, read_json
from .closed_form import ENERGY_TERMS, TIME_TERMS, __doc__ as FORMULA_DOC
from .predictor import ClosedFormPredictor

SCHEMA_VERSION = 1
FORMAT = "energylens-model"


def _checksum(payload: dict) -> str:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _formula_text() -> str:
    doc = FORMULA_DOC or ""
    start = doc.find("E = ")
    return doc[start:].strip() if start >= 0 else doc.strip()


def model_to_dict(model: ClosedFormPredictor, provenance: dict | None = None) -> dict:
    coefs = model.coefficients()
    entry = lambda r: {"value": float(r.value), "lo95": float(r.lo95), "hi95": float(r.hi95), "unit": r.unit,
                       "fitted": bool(r.fitted), "meaning": r.meaning}
    n_e = len(ENERGY_TERMS)
    payload = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "energylens_version": __version__,
        "formula": _formula_text(),
        "energy_coefficients": {r.name: entry(r) for r in coefs.iloc[:n_e].itertuples()},
        "time_coefficients": {r.name: entry(r) for r in coefs.iloc[n_e:].itertuples()},
        "uncertainty": {
            "energy_cov_log": np.asarray(model.cov_log_).tolist(),
            "time_cov_log": np.asarray(model.time_cov_log_).tolist(),
            "energy_residual_std_log": _num(model.residual_std_),
            "time_residual_std_log": _num(model.time_residual_std_),
        },
        "estimator_params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.get_params().items()}
        if hasattr(model, "get_params") else {},
        "engine_column": getattr(model, "engine_column", None),
        "engines": {g: {"energy": dict(zip([t.name for t in ENERGY_TERMS], map(float, e["coef"]))),
                        "time": dict(zip([t.name for t in TIME_TERMS], map(float, e["tau"]))),
                        "energy_cov_log": np.asarray(e["cov_log"]).tolist(),
                        "time_cov_log": np.asarray(e["time_cov_log"]).tolist(),
                        "energy_residual_std_log": _num(e["residual_std"]),
                        "time_residual_std_log": _num(e["time_residual_std"]), "rows": int(e["rows"])}
                    for g, e in (getattr(model, "engines_", None) or {}).items()},
        "provenance": {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "train_metrics": model.train_metrics_,
            "notes": list(model.notes_),
            **(provenance or {}),
        },
    }
    payload["sha256"] = _checksum(payload)
    return payload


def _num(x):
    return None if x is None or not math.isfinite(x) else float(x)


def save_model(model: ClosedFormPredictor, path, provenance: dict | None = None) -> dict:
    payload = model_to_dict(model, provenance)
    atomic_write_json(path, payload)
    return payload


def _bad(path, msg):
    raise ModelFileError(f"{path}: {msg}")


def model_from_dict(d: dict, path="<model>", estimator: bool = True):
    """Rebuild a fitted model; estimator=False gives a light predictor that needs no scikit-learn."""
    if not isinstance(d, dict):
        _bad(path, "expected a JSON object (an EnergyLens model file)")
    if d.get("format") != FORMAT:
        _bad(path, f"not an EnergyLens model file (format is {d.get('format')!r}, expected {FORMAT!r})")
    if d.get("schema_version") != SCHEMA_VERSION:
        _bad(path, f"schema_version {d.get('schema_version')!r} is not supported (expected {SCHEMA_VERSION})")
    if "sha256" not in d:
        _bad(path, "missing checksum 'sha256'")
    body = {k: v for k, v in d.items() if k != "sha256"}
    if _checksum(body) != d["sha256"]:
        _bad(path, "checksum mismatch: the file was edited or corrupted after it was written (refit it)")
    try:
        theta = np.array([float(d["energy_coefficients"][t.name]["value"]) for t in ENERGY_TERMS])
        tau = np.array([float(d["time_coefficients"][t.name]["value"]) for t in TIME_TERMS])
        fitted_e = np.array([bool(d["energy_coefficients"][t.name].get("fitted", True)) for t in ENERGY_TERMS])
        fitted_t = np.array([bool(d["time_coefficients"][t.name].get("fitted", True)) for t in TIME_TERMS])
        unc = d["uncertainty"]
        cov = np.array(unc["energy_cov_log"], dtype=float)
        tcov = np.array(unc["time_cov_log"], dtype=float)
    except (KeyError, TypeError, ValueError) as exc:
        _bad(path, f"missing or malformed coefficient entry ({exc})")
    if not (np.isfinite(theta).all() and np.isfinite(tau).all()) or (theta < 0).any() or (tau < 0).any():
        _bad(path, "coefficients must be finite and >= 0")
    if cov.shape != (len(theta), len(theta)) or tcov.shape != (len(tau), len(tau)):
        _bad(path, "covariance matrices have the wrong shape")
    params = d.get("estimator_params", {})
    if estimator:
        from .estimator import EnergyLensRegressor

        names = EnergyLensRegressor().get_params()
        m = EnergyLensRegressor(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items() if k in names})
    else:
        m = ClosedFormPredictor()
    m.coef_, m.tau_ = theta, tau
    m.identified_, m.time_identified_ = fitted_e, fitted_t
    m.cov_log_, m.time_cov_log_ = cov, tcov
    rs = unc.get("energy_residual_std_log")
    m.residual_std_ = float(rs) if rs is not None else float("nan")
    ts = unc.get("time_residual_std_log")
    m.time_residual_std_ = float(ts) if ts is not None else float("nan")
    m.engine_column = d.get("engine_column")
    m.engines_ = {}
    try:
        for g, e in (d.get("engines") or {}).items():
            coef = np.array([float(e["energy"][t.name]) for t in ENERGY_TERMS])
            tau = np.array([float(e["time"][t.name]) for t in TIME_TERMS])
            if not (np.isfinite(coef).all() and np.isfinite(tau).all()) or (coef < 0).any() or (tau < 0).any():
                _bad(path, f"engine '{g}': coefficients must be finite and >= 0")
            rs = e.get("energy_residual_std_log")
            trs = e.get("time_residual_std_log")
            m.engines_[g] = {"coef": coef, "tau": tau, "cov_log": np.array(e["energy_cov_log"], dtype=float),
                             "time_cov_log": np.array(e["time_cov_log"], dtype=float),
                             "residual_std": float(rs) if rs is not None else float("nan"),
                             "time_residual_std": float(trs) if trs is not None else float("nan"), "rows": int(e["rows"])}
    except (KeyError, TypeError, ValueError) as exc:
        _bad(path, f"malformed engine coefficients ({exc})")
    prov = d.get("provenance", {})
    m.notes_ = list(prov.get("notes", []))
    m.train_metrics_ = dict(prov.get("train_metrics", {}))
    m.n_train_ = int(m.train_metrics_.get("rows", 0))
    m.provenance_ = prov
    return m


def load_model(path, estimator: bool = True):
    return model_from_dict(read_model_dict(path), path, estimator)


def read_model_dict(path) -> dict:
    """The raw contents of a model file (checked by model_from_dict when a model is built from it)."""
    return read_json(path, ModelFileError, "model file")
