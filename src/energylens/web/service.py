"""What the explorer's JSON API does, as plain functions: JSON in, the library's calls, JSON out.

No web framework here (app.py maps routes onto these). Every bad value reaches the same check the CLI
uses, so the one-line message names the CLI's option (e.g. `--max-gpus must be a whole number ...`).
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

from ..errors import EnergyLensError

# JSON field -> the CLI option it mirrors (for messages), for POST /api/recommend.
RECOMMEND_FIELDS = {
    "model": "--model", "gpus": "--gpu", "max_gpus": "--max-gpus", "input_tokens": "--input-tokens",
    "output_tokens": "--output-tokens", "visual_tokens": "--visual-tokens", "batches": "--batch",
    "itl_slo_ms": "--itl-slo-ms", "ttft_slo_ms": "--ttft-slo-ms", "engine": "--engine", "top": "--top",
    "objective": "--objective", "gpu_hour_usd": "--gpu-hour-usd", "electricity_usd_per_kwh": "--electricity-usd-per-kwh",
    "grid_gco2_per_kwh": "--grid-gco2-per-kwh", "region": "--region", "pue": "--pue",
    "config_id": "--model-config (an uploaded config.json)", "model_id": "--model-file (a model fitted here)",
}
CONFIG_FIELDS = {"configs": "CONFIGS (rows of the profiling schema)", "model_id": "MODEL_FILE (a model fitted here)"}
FIT_MODES = ("fit", "recalibrate")  # `energylens fit CSV` and `energylens fit CSV --from default`
MAX_ROWS = 5000  # rows of a request's configurations, and deployments sent back for the plot
MAX_STORED = 32  # uploads and fitted models kept per server; the oldest go first

# Columns sent for the table and the plot (the frame has more; these are what the page shows).
ROW_COLUMNS = ("rank", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size", "energy_request_j", "energy_token_j",
               "ttft_ms", "itl_ms", "latency_s", "gpu_seconds_per_request", "cost_usd_per_million_tokens",
               "carbon_gco2e_per_1000_requests", "latency_optimal", "tp_default", "replica_of_smaller")


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts (NaN and inf become null)."""
    return json.loads(df.replace([np.inf, -np.inf], np.nan).to_json(orient="records"))


def fields(body, allowed: dict[str, str], required: tuple[str, ...] = ()) -> dict:
    """`body` as a dict of known fields; one line naming the field (and its CLI option) otherwise."""
    if not isinstance(body, dict):
        raise EnergyLensError(f"expected a JSON object with fields {', '.join(allowed)}")
    for key in body:
        if key not in allowed:
            raise EnergyLensError(f"unknown field {str(key)[:60]!r}; expected one of {', '.join(allowed)}")
    for key in required:
        if body.get(key) is None:
            raise EnergyLensError(f"Missing option '{allowed[key]}' (field '{key}')")
    return {k: v for k, v in body.items() if v is not None}


class Store:
    """Uploaded config.json files and fitted model files, kept in one temporary folder while the server
    runs, at most MAX_STORED of them (the oldest removed first). Thread-safe: handlers run in a pool."""

    def __init__(self, limit: int = MAX_STORED):
        self._dir = Path(tempfile.mkdtemp(prefix="energylens-serve-"))
        self._items: OrderedDict[str, Path] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def new_path(self, kind: str, suffix: str) -> tuple[str, Path]:
        ident = f"{kind}-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self._items[ident] = self._dir / f"{ident}{suffix}"
            while len(self._items) > self.limit:
                _, old = self._items.popitem(last=False)
                old.unlink(missing_ok=True)
        return ident, self._dir / f"{ident}{suffix}"

    def get(self, ident, kind: str, field: str) -> Path:
        with self._lock:
            path = self._items.get(ident) if isinstance(ident, str) and ident.startswith(f"{kind}-") else None
        if path is None or not path.exists():
            raise EnergyLensError(f"{field} {str(ident)[:60]!r} is not an upload of this server (upload it again)")
        return path

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def options(default_model_file=None) -> dict:
    """What the form offers: catalog models and GPUs, objectives, regions, default prices and SLOs."""
    import inspect

    from ..catalog import hardware_catalog, model_catalog
    from ..catalog.costs import grid_table, shipped_prices
    from ..model.terms import GROUP_LABELS, GROUPS
    from ..recommendation.objectives import OBJECTIVES
    from ..recommendation.search import recommend

    defaults = {k: p.default for k, p in inspect.signature(recommend).parameters.items()
                if p.default is not inspect.Parameter.empty}
    grid = grid_table()
    return {
        "models": model_catalog().names(), "gpus": hardware_catalog().names(),
        "objectives": {k: {"column": c, "label": label} for k, (c, label) in OBJECTIVES.items()},
        "regions": {name: grid.regions[key].value for key, name in grid.names.items()},
        "default_region": grid.default_region,
        "gpu_hour_usd": {g: p.value for g, p in shipped_prices().gpu_hour_usd.items()},
        "terms": {g: GROUP_LABELS[g] for g in GROUPS},
        "defaults": {k: defaults.get(k) for k in ("max_gpus", "input_tokens", "output_tokens", "itl_slo_ms",
                                                   "ttft_slo_ms")},
        "model_file": str(default_model_file) if default_model_file else "the shipped coefficients",
    }


def recommend_payload(body, store: Store, default_model_file=None) -> dict:
    """POST /api/recommend: the ranked deployments (every one meeting the SLOs, for the plot; the top
    distinct layouts and the flagged rows, for the table), the Pareto front and the assumptions."""
    from ..model.terms import GROUP_LABELS, GROUPS
    from ..recommendation.objectives import OBJECTIVES
    from ..recommendation.search import recommend
    from ..report.plots import pareto_front

    f = fields(body, RECOMMEND_FIELDS, required=("model", "gpus"))
    top = f.pop("top", 10)
    config_id, model_id = f.pop("config_id", None), f.pop("model_id", None)
    model_config = store.get(config_id, "config", "config_id") if config_id is not None else None
    model_file = store.get(model_id, "model", "model_id") if model_id is not None else default_model_file
    gpus = f.pop("gpus")
    if isinstance(gpus, str):
        gpus = [g for g in re.split(r"\s*,\s*", gpus) if g]
    if not isinstance(gpus, list) or not all(isinstance(g, str) for g in gpus):
        raise EnergyLensError("--gpu: give a list of GPU names (field 'gpus')")
    batches = f.pop("batches", None)
    if isinstance(batches, str):  # '64,256' as the CLI takes it; each value is checked by recommend
        batches = [b for b in re.split(r"\s*,\s*", batches.strip()) if b] or None
    for slo in ("itl_slo_ms", "ttft_slo_ms"):  # the form sends '' for no SLO
        if isinstance(f.get(slo), str) and not f[slo].strip():
            f[slo] = None
    res = recommend(f.pop("model"), gpus, batches=batches, model_file=model_file, model_config=model_config,
                    return_all=True, **f)
    objective = res.attrs["objective"]
    metric = OBJECTIVES[objective][0]
    res = res.head(MAX_ROWS)
    keep = [c for c in ROW_COLUMNS if c in res.columns] + [f"{g}_pct" for g in GROUPS]
    rows = res[keep].copy()
    values = rows[metric].to_numpy(float)
    ok = np.isfinite(values)
    on_front = np.zeros(len(rows), bool)
    on_front[np.flatnonzero(ok)[pareto_front(rows["latency_s"].to_numpy(float)[ok], values[ok])]] = True
    rows["on_front"] = on_front
    distinct = rows[~rows["replica_of_smaller"]]
    top = int(top) if isinstance(top, (int, float)) and not isinstance(top, bool) and 1 <= top <= 1000 else 10
    table = rows[rows.index.isin(distinct.head(top).index) | rows["latency_optimal"] | rows["tp_default"]]
    attrs = {k: res.attrs.get(k) for k in ("candidates", "feasible", "meeting_slo", "engine", "objective",
                                           "assumptions", "structure", "latency_definition", "slo")}
    return {"objective": objective, "metric": metric, "metric_label": OBJECTIVES[objective][1],
            "terms": {g: GROUP_LABELS[g] for g in GROUPS}, "table": _records(table), "rows": _records(rows),
            "attrs": json.loads(json.dumps(attrs, default=str))}


def _configs(body, store: Store, default_model_file=None):
    """(model, validated configurations) of a predict/explain request."""
    from ..data.schema import validate
    from ..model.modelfile import load_model

    f = fields(body, CONFIG_FIELDS, required=("configs",))
    configs = f["configs"]
    if not isinstance(configs, list) or not configs or not all(isinstance(r, dict) for r in configs):
        raise EnergyLensError("CONFIGS: field 'configs' must be a non-empty list of rows (objects of schema columns)")
    if len(configs) > MAX_ROWS:
        raise EnergyLensError(f"CONFIGS: at most {MAX_ROWS:,} rows per request, got {len(configs):,}")
    df = validate(pd.DataFrame(configs), "configs", require_energy=False)
    path = store.get(f["model_id"], "model", "model_id") if "model_id" in f else (default_model_file or "default")
    return load_model(path, estimator=False), df


def predict_payload(body, store: Store, default_model_file=None) -> dict:
    """POST /api/predict: the columns `energylens predict` adds, per configuration."""
    model, df = _configs(body, store, default_model_file)
    return {"predictions": _records(model.predict_frame(df))}


def explain_payload(body, store: Store, default_model_file=None) -> dict:
    """POST /api/explain: energy per request per term group in J and %, per configuration."""
    from ..model.terms import GROUP_LABELS, GROUPS

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
    from ..catalog import model_from_hf_config

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
    """POST /api/upload/profile: fit a model on a profiling CSV (`fit CSV`) or recalibrate the shipped one
    on it (`fit CSV --from default`); the model is kept for later requests (model_id), with its parity
    against the measurements (in sample: the rows it was fitted on) and the shipped model's, for comparison."""
    from ..data.schema import load_profiles
    from ..model.default import default_model
    from ..model.estimator import EnergyLensRegressor, recalibration
    from ..model.modelfile import save_model

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
    if mode == "recalibrate":
        model, _ = recalibration(default_model(estimator=True), df)
    else:
        model = EnergyLensRegressor()
    model.fit(df)
    ident, out = store.new_path("model", ".json")
    save_model(model, out, {"data": [name], "rows": len(df),
                            "command": f"energylens fit {name}{' --from default' if mode == 'recalibrate' else ''}"})
    measured = df["energy_request_j"].to_numpy(float)
    fitted = model.predict_frame(df)["pred_energy_request_j"].to_numpy(float)
    shipped = default_model().predict_frame(df)["pred_energy_request_j"].to_numpy(float)
    label = "recalibrated" if mode == "recalibrate" else "fitted"
    parity = [{"model": m, "measured_j": float(a), "predicted_j": float(b), "gpu": str(g), "name": str(n)}
              for m, pred in ((label, fitted), ("shipped", shipped))
              for a, b, g, n in zip(measured, pred, df["gpu"], df["model"]) if math.isfinite(b)]

    def mape(pred):
        ok = np.isfinite(pred) & (measured > 0)
        return float(np.mean(np.abs(pred[ok] / measured[ok] - 1))) if ok.any() else None

    s = model.structure_
    return {"model_id": ident, "mode": mode, "rows": len(df), "structure": f"{s.name}: {s.why}",
            "fitted_numbers": int(model.fitted_count()), "mape": {label: mape(fitted), "shipped": mape(shipped)},
            "parity": parity}
