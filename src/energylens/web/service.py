"""What the explorer's JSON API does, as plain functions: JSON in, the library's calls, JSON out.

No web framework here (app.py maps routes onto these). POST /api/recommend takes recommend's options as
declared in recommendation/request.py (the JSON spelling: the CLI's option without dashes, or the Python
name), validated by the same RecommendOptions.parse as the CLI's and Python's, so that every message names
the JSON field. The API never opens a path a client names: a model is a catalog name, a config.json or a
fitted model the id its upload returned (Store), and a price is a number, never a file.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import hardware_catalog, model_catalog, model_from_hf_config
from ..catalog.costs import grid_table, shipped_prices
from ..data.schema import load_profiles, validate
from ..errors import EnergyLensError
from ..io import clip
from ..model.default import default_model
from ..model.modelfile import load_model, save_model
from ..model.terms import GROUP_LABELS, GROUPS
from ..recommendation.objectives import OBJECTIVES, default_electricity_usd_per_kwh, pricing_note
from ..recommendation.request import JSON, JsonField, RecommendOptions, RequestError, json_fields
from ..recommendation.result import _records
from ..recommendation.search import run
from ..report.plots import pareto_front

MAX_DEPTH = 8  # nesting of a request's JSON: {"configs": [{...}]} is 3, {"gpu_hour_usd": {...}} 2

# POST /api/predict and /api/explain: `energylens predict MODEL_FILE CONFIGS` and `explain MODEL_FILE CONFIGS`.
CONFIG_FIELDS = (
    JsonField("configs", "configs", (), "CONFIGS", "rows of the profiling schema (objects of its columns; energy "
                                                   "not needed)"),
    JsonField("model_file", "model_file", ("model_id",), "MODEL_FILE",
              "the model_id POST /api/upload/profile returned (default: the server's model)"),
)


def recommend_fields() -> tuple[JsonField, ...]:
    return tuple(json_fields())


def api_fields() -> dict:
    return {"/api/recommend": recommend_fields(), "/api/predict": CONFIG_FIELDS, "/api/explain": CONFIG_FIELDS}


def parse_json(body: bytes):
    """A request body as JSON: one line naming what is wrong otherwise (not JSON, NaN or Infinity, numbers
    beyond 4,300 digits, nesting deeper than MAX_DEPTH)."""
    def no_constant(name):
        raise ValueError(f"{name} is not a JSON number")

    try:
        value = json.loads(body, parse_constant=no_constant)
    except RecursionError:
        raise EnergyLensError(f"the request body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else clip(str(exc).split(";")[0], 80)
        raise EnergyLensError(f"the request body is not valid JSON ({why})") from None
    stack = [(value, 1)]
    while stack:  # iterative: a deep body must not recurse here either
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > MAX_DEPTH:
                raise EnergyLensError(f"the request body is nested deeper than {MAX_DEPTH} levels")
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return value


def _spelled(f: JsonField) -> str:
    others = [a for a in f.aliases if a != f.field]
    return f.field if not others else f"{f.field} (or {others[0]})"


def fields(body, spec: tuple[JsonField, ...], required: tuple[str, ...] = ()) -> dict:
    """`body` keyed by the Python names (any accepted spelling, null fields dropped); one line naming the
    field and what was expected otherwise."""
    expected = ", ".join(_spelled(f) for f in spec)
    if not isinstance(body, dict):
        raise RequestError(f"expected a JSON object with fields {expected}")
    by_key = {key: f for f in spec for key in (f.field, *f.aliases)}
    given: dict[str, str] = {}  # Python name -> the spelling used
    out = {}
    for key, value in body.items():
        f = by_key.get(key)
        if f is None:
            raise RequestError(f"unknown field {clip(key)!r}; expected one of {expected}")
        if f.name in given:
            a, b = sorted((given[f.name], key), key=lambda k: k != f.field)  # the JSON spelling first
            raise RequestError(f"give field {a!r} or {b!r}, not both", f.name)
        given[f.name] = key
        if value is not None:
            out[f.name] = value
    for name in required:
        if name not in out:
            f = next(f for f in spec if f.name == name)
            raise RequestError(f"missing field {_spelled(f)}: {f.value}", name)
    return out


FIT_MODES = ("fit", "recalibrate")  # `energylens fit CSV` and `energylens fit CSV --from default`
MAX_ROWS = 5000  # rows of a request's configurations, and deployments sent back for the plot
MAX_COLUMNS = 200  # fields of one configuration row (the schema has about 60)
MAX_STORED = 32  # uploads and fitted models kept per server; the oldest go first

# Columns sent for the table and the plot (the frame has more; these are what the page shows).
ROW_COLUMNS = ("rank", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size", "energy_request_j", "energy_token_j",
               "energy_request_lo_j", "energy_request_hi_j", "extrapolation", "power_per_gpu_w",
               "ttft_ms", "itl_ms", "latency_s", "gpu_seconds_per_request", "cost_usd_per_million_tokens",
               "carbon_gco2e_per_1000_requests", "latency_optimal", "tp_default", "replica_of_smaller")




class Store:
    """Uploaded config.json files and fitted model files, kept in one temporary folder while the server
    runs, at most MAX_STORED of them (the oldest removed first). Thread-safe: handlers run in a pool."""

    def __init__(self, limit: int = MAX_STORED):
        self._dir: Path | None = None  # made at the first upload: a server that never starts leaves nothing
        self._items: OrderedDict[str, Path] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def new_path(self, kind: str, suffix: str) -> tuple[str, Path]:
        ident = f"{kind}-{uuid.uuid4().hex[:12]}"
        with self._lock:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="energylens-serve-"))
            path = self._items[ident] = self._dir / f"{ident}{suffix}"
            while len(self._items) > self.limit:
                _, old = self._items.popitem(last=False)
                old.unlink(missing_ok=True)
        return ident, path

    def get(self, ident, kind: str, field: str) -> Path:
        """The server's file of an upload id; the same one line for an unknown id, a path, anything else
        (nothing a client sends is ever opened or tested as a path)."""
        with self._lock:
            path = self._items.get(ident) if isinstance(ident, str) and ident.startswith(f"{kind}-") else None
        if path is None or not path.exists():
            raise RequestError(f"{field} {clip(ident) if isinstance(ident, str) else '(not text)'!r} is not an "
                               "upload of this server (upload it again)", field)
        return path

    def resolve(self, kind: str, field: str, ident) -> Path:
        """RecommendOptions.parse's `uploads`: an upload id of `kind` ('config' or 'model') to its file."""
        return self.get(ident, kind, field)

    def close(self) -> None:
        with self._lock:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)


def options(default_model_file=None) -> dict:
    """What the form offers: catalog models and GPUs, objectives, regions, default prices and SLOs."""
    defaults = {name: default for name, _, default in RecommendOptions.options()}
    grid = grid_table()
    return {
        "models": model_catalog().names(), "gpus": hardware_catalog().names(),
        "objectives": {k: {"column": c, "label": label} for k, (c, label) in OBJECTIVES.items()},
        "regions": {name: grid.regions[key].value for key, name in grid.names.items()},
        "default_region": grid.default_region,
        "gpu_hour_usd": {g: p.value for g, p in shipped_prices().gpu_hour_usd.items()},
        "electricity_usd_per_kwh": default_electricity_usd_per_kwh(),
        "electricity_basis": pricing_note(),
        "terms": {g: GROUP_LABELS[g] for g in GROUPS},
        "defaults": {k: defaults.get(k) for k in ("max_gpus", "input_tokens", "output_tokens", "itl_slo_ms",
                                                   "ttft_slo_ms", "top")},
        "model_file": "a model file given at start" if default_model_file else "the shipped coefficients",
        "api": api_help(),
    }


def api_help() -> dict:
    """The JSON fields of each POST route, for the page's API help: field, its other spelling, CLI option, value."""
    return {route: [{"field": f.field, "alias": next((a for a in f.aliases if a != f.field), None), "cli": f.cli,
                     "value": f.value} for f in spec] for route, spec in api_fields().items()}


def recommend_payload(body, store: Store, default_model_file=None) -> dict:
    """POST /api/recommend: the ranked deployments (every one meeting the SLOs, for the plot; the top
    distinct layouts and the flagged rows, for the table), the Pareto front and the assumptions."""
    values = fields(body, recommend_fields(), required=("model", "gpus"))
    opts = RecommendOptions.parse(values, JSON, uploads=store.resolve)
    if opts.model_file is None and default_model_file is not None:
        opts = opts.replace(model_file=Path(default_model_file))  # the server's own model, chosen at start
    rec = run(opts)
    objective = rec.objective
    metric = OBJECTIVES[objective][0]
    keep = [c for c in ROW_COLUMNS if c in rec.table.columns] + [f"{g}_pct" for g in GROUPS]
    rows = rec.table.head(MAX_ROWS)[keep].copy()
    values = rows[metric].to_numpy(float)
    ok = np.isfinite(values)
    on_front = np.zeros(len(rows), bool)
    on_front[np.flatnonzero(ok)[pareto_front(rows["latency_s"].to_numpy(float)[ok], values[ok])]] = True
    rows["on_front"] = on_front
    shown = rec.shown()
    table = shown[keep].copy()
    table["on_front"] = rows["on_front"].reindex(table.index, fill_value=False).to_numpy(bool)
    attrs = {k: rec.attrs.get(k) for k in ("candidates", "feasible", "meeting_slo", "engine", "objective",
                                           "assumptions", "structure", "latency_definition", "slo",
                                           "intervals_overlap")}
    out = {"objective": objective, "metric": metric, "metric_label": OBJECTIVES[objective][1], "top": opts.top,
           "counts": rec.counts, "terms": {g: GROUP_LABELS[g] for g in GROUPS}, "table": _records(table),
           "rows": _records(rows), "attrs": json.loads(json.dumps(attrs, default=str))}
    if rec.load is not None:  # rate given: the ranking at each load and the load curve (recommendation/load.py)
        out["load"] = json.loads(json.dumps(rec.load.to_dict(opts.top), default=str))
    return out


def _configs(body, store: Store, default_model_file=None):
    """(model, validated configurations) of a predict/explain request."""
    f = fields(body, CONFIG_FIELDS, required=("configs",))
    path = store.get(f["model_file"], "model", "model_file") if "model_file" in f else \
        (default_model_file or "default")
    configs = f["configs"]
    if not isinstance(configs, list) or not configs or not all(isinstance(r, dict) for r in configs):
        raise RequestError("configs must be a non-empty list of rows (objects of schema columns)", "configs")
    if len(configs) > MAX_ROWS:
        raise RequestError(f"configs: at most {MAX_ROWS:,} rows per request, got {len(configs):,}", "configs")
    for i, row in enumerate(configs, start=1):
        if len(row) > MAX_COLUMNS:
            raise RequestError(f"configs, row {i}: at most {MAX_COLUMNS} fields, got {len(row):,}", "configs")
        for key, value in row.items():
            if isinstance(value, (dict, list)):
                raise RequestError(f"configs, row {i}, column {clip(key)!r}: expected a number or text, got "
                                   f"{'an object' if isinstance(value, dict) else 'a list'}", "configs")
    df = validate(pd.DataFrame(configs), "configs", require_energy=False)
    return load_model(path, estimator=False), df


def predict_payload(body, store: Store, default_model_file=None) -> dict:
    """POST /api/predict: the columns `energylens predict` adds, per configuration."""
    model, df = _configs(body, store, default_model_file)
    return {"predictions": _records(model.predict_frame(df))}


def explain_payload(body, store: Store, default_model_file=None) -> dict:
    """POST /api/explain: energy per request per term group in J and %, per configuration."""
    model, df = _configs(body, store, default_model_file)
    ex = model.explain(df)
    return {"terms": {g: GROUP_LABELS[g] for g in GROUPS}, "explanations": _records(ex)}


def _as_upload(exc: EnergyLensError, path: Path, name: str) -> EnergyLensError:
    """The error with the server's temporary path replaced by the name of the uploaded file."""
    return type(exc)(str(exc).replace(str(path), name))


def _upload_name(filename, default: str) -> str:
    name = Path(str(filename or default)).name
    return re.sub(r"[^\w.\- ]", "_", name)[:80] or default


def upload_config(data: bytes, filename: str | None, store: Store) -> dict:
    """POST /api/upload/config: a Hugging Face config.json, read as `--model-config` reads it."""
    name = _upload_name(filename, "config.json")
    ident, path = store.new_path("config", ".json")
    path.write_bytes(data)
    try:
        spec = model_from_hf_config(path, name=Path(name).stem if name != "config.json" else None)
    except EnergyLensError as exc:
        path.unlink(missing_ok=True)
        raise _as_upload(exc, path, name) from None
    return {"config_id": ident, "name": spec.name, "arch": spec.arch, "params_total_b": spec.params_total_b,
            "params_active_b": spec.params_active_b, "layers": spec.layers}


def fit_upload(data: bytes, filename: str | None, mode: str, store: Store) -> dict:
    """POST /api/upload/profile: fit a model on a profiling CSV (`fit CSV`), or `fit CSV --from default` through
    the CLI's own code (estimator.recalibrate): the shipped model as it is, recalibrated and fitted from scratch
    compared by cross-validation, the best kept, all three errors returned. The model is kept for later requests
    (model_id), with its parity against the measurements (in sample) and the shipped model's, for comparison."""
    from ..model.estimator import KEPT_AS, EnergyLensRegressor, recalibrate

    if mode not in FIT_MODES:
        raise EnergyLensError(f"mode must be one of {', '.join(FIT_MODES)} (fit, or fit --from default), got {str(mode)[:40]!r}")
    name = _upload_name(filename, "profile.csv")
    if not name.lower().endswith((".csv", ".parquet")):
        raise EnergyLensError(f"{name}: expected a .csv or .parquet profiling file")
    with tempfile.TemporaryDirectory(prefix="energylens-upload-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            df = load_profiles(path)
        except EnergyLensError as exc:
            raise _as_upload(exc, path, name) from None
    command = f"energylens fit {name}{' --from default' if mode == 'recalibrate' else ''}"
    provenance = {"data": [name], "rows": len(df), "command": command}
    comparison = None
    if mode == "recalibrate":
        base = default_model(estimator=True)  # what `--from default` loads
        try:
            model, comparison, refit = recalibrate(base, df)  # the CLI's defaults: seed 0, --choose auto
        except EnergyLensError as exc:
            raise type(exc)(f"{name}: {exc}") from None
        provenance["recalibrated_from"] = {"file": "default", "refit": list(refit), "kept": comparison["kept"],
                                           "comparison": {k: comparison[k] for k in ("base", "recalibrate", "fresh")},
                                           "base_provenance": getattr(base, "provenance_", {})}
    else:
        model = EnergyLensRegressor().fit(df)
    ident, out = store.new_path("model", ".json")
    save_model(model, out, provenance)
    measured = df["energy_request_j"].to_numpy(float)
    shipped = default_model().predict_frame(df)["pred_energy_request_j"].to_numpy(float)
    label = FIT_LABELS[comparison["kept"] if comparison else "fresh"]
    series = [("shipped", shipped)]
    if label != "shipped":  # the shipped model kept as it is: one series, not the same points twice
        series.insert(0, (label, model.predict_frame(df)["pred_energy_request_j"].to_numpy(float)))
    parity = [{"model": m, "measured_j": float(a), "predicted_j": float(b), "gpu": str(g), "name": str(n)}
              for m, pred in series
              for a, b, g, n in zip(measured, pred, df["gpu"], df["model"]) if math.isfinite(b)]

    def mape(pred):
        ok = np.isfinite(pred) & (measured > 0)
        return float(np.mean(np.abs(pred[ok] / measured[ok] - 1))) if ok.any() else None

    s = model.structure_
    out = {"model_id": ident, "mode": mode, "rows": len(df), "structure": f"{s.name}: {s.why}",
           "fitted_numbers": int(model.fitted_count()), "mape": {m: mape(pred) for m, pred in series},
           "parity": parity, "command": command}
    if comparison is not None:
        out["comparison"] = {"kept": comparison["kept"], "choice": "auto",
                             "candidates": [{"name": k, "label": KEPT_AS[k], "kept": k == comparison["kept"],
                                             **_cv(comparison[k])} for k in ("base", "recalibrate", "fresh")]}
    return out


# The parity series of the model kept, by what `fit` (or `fit --from default`) kept.
FIT_LABELS = {"base": "shipped", "recalibrate": "recalibrated", "fresh": "fitted"}


def _cv(cv: dict | None) -> dict:
    """A candidate's cross-validated error as JSON: mape and folds (0: the base model on every row, nothing fitted;
    mape null: too few rows for it)."""
    cv = cv or {}
    mape = cv.get("mape")
    return {"mape": float(mape) if mape is not None and math.isfinite(mape) else None, "folds": None if cv.get("folds") is None else int(cv["folds"])}
