"""What the explorer's JSON API does, as plain functions: JSON in, the library's calls, JSON out.

No web framework here (app.py maps routes onto these). A request's fields are the CLI's options without
dashes (or the Python API's keywords), mapped in one place (RECOMMEND_FIELDS, CONFIG_FIELDS). Every bad value
reaches the same check the CLI uses; api_message words its one line with the JSON field instead of the CLI
option (`max_gpus must be a whole number ...`).
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import EnergyLensError

@dataclass(frozen=True)
class Field:
    """One JSON field of a request. `name` is the Python API's keyword (recommend(gpus=...)), `option` the CLI
    option or argument it mirrors; the JSON takes either spelling: the CLI's without dashes (`cli_name`:
    gpu, max_gpus, model_config) or the Python API's (gpus). Messages over HTTP use `cli_name`."""
    name: str
    option: str
    value: str  # what the JSON value is: the API's documentation (the page's help, README)
    hint: str = ""  # over HTTP, replaces "pass OPTION PATH" in the library's messages (an upload, not a path)

    @property
    def cli_name(self) -> str:
        return self.option.lstrip("-").replace("-", "_").lower()

    def spelled(self) -> str:
        return self.cli_name if self.cli_name == self.name else f"{self.cli_name} (or {self.name})"


_UPLOADED_CONFIG = "upload its config.json to POST /api/upload/config and pass the config_id it returns as model_config"
_FITTED_MODEL = "fit one with POST /api/upload/profile and pass the model_id it returns as model_file"
# The one mapping between the JSON API, the Python API and the CLI, for POST /api/recommend.
RECOMMEND_FIELDS = (
    Field("model", "--model", "catalog model name, or the name an uploaded config.json was given"),
    Field("gpus", "--gpu", "GPU names: a list, or text 'H100,B200'"),
    Field("max_gpus", "--max-gpus", "most GPUs one deployment may use"),
    Field("input_tokens", "--input-tokens", "mean prompt tokens per request"),
    Field("output_tokens", "--output-tokens", "mean generated tokens per request"),
    Field("visual_tokens", "--visual-tokens", "image/video tokens among the input tokens"),
    Field("batches", "--batch", "batch sizes: a list, or text '64,256'"),
    Field("itl_slo_ms", "--itl-slo-ms", "ITL SLO in ms, or 'none'"),
    Field("ttft_slo_ms", "--ttft-slo-ms", "TTFT SLO in ms, or 'none'"),
    Field("engine", "--engine", "coefficient group of the model file, or 'shared'"),
    Field("top", "--top", "distinct layouts in 'table' (default 10)"),
    Field("objective", "--objective", "energy, cost or carbon"),
    Field("pricing", "--pricing", "cloud (rental prices, power included) or owned (electricity + hardware price)"),
    Field("gpu_hour_usd", "--gpu-hour-usd", "USD per GPU-hour: text 'H100=2.5,B200=5' or an object {\"H100\": 2.5}"),
    Field("hardware_usd_per_gpu_hour", "--hardware-usd-per-gpu-hour",
          "with pricing owned: amortized hardware USD per GPU-hour, one number or 'H100=1.2,B200=2.5'"),
    Field("electricity_usd_per_kwh", "--electricity-usd-per-kwh",
          "USD/kWh on facility energy, charged on top of GPU-hours (default: none for cloud pricing)"),
    Field("grid_gco2_per_kwh", "--grid-gco2-per-kwh", "grid carbon intensity, gCO2e/kWh"),
    Field("region", "--region", "grid region (see /api/options)"),
    Field("pue", "--pue", "power usage effectiveness"),
    Field("config_id", "--model-config", "the config_id POST /api/upload/config returned", _UPLOADED_CONFIG),
    Field("model_id", "--model-file", "the model_id POST /api/upload/profile returned", _FITTED_MODEL),
)
# POST /api/predict and /api/explain: `energylens predict MODEL_FILE CONFIGS` and `explain MODEL_FILE CONFIGS`.
CONFIG_FIELDS = (
    Field("configs", "CONFIGS", "rows of the profiling schema (objects of its columns; energy not needed)"),
    Field("model_id", "MODEL_FILE", "the model_id POST /api/upload/profile returned (default: the server's model)",
          _FITTED_MODEL),
)
API_FIELDS = {"/api/recommend": RECOMMEND_FIELDS, "/api/predict": CONFIG_FIELDS, "/api/explain": CONFIG_FIELDS}
_BY_OPTION = {f.option: f for f in RECOMMEND_FIELDS}
_OPTION = re.compile(r"(?:\b(?:pass|give) )?(?<![\w-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w-])"
                     r"(?: path/to/[^\s);,]+)?")


def api_message(message: str) -> str:
    """A library message as the JSON API says it: each CLI option it names becomes the JSON field
    (`--max-gpus must be ...` -> `max_gpus must be ...`), and a hint to pass a file names the upload
    that replaces it; the rest of the line is the CLI's, word for word."""
    def field(m: re.Match) -> str:
        f = _BY_OPTION.get(m.group(1))
        if f is None:
            return m.group(0)
        if f.hint and m.group(0) != m.group(1):  # "pass --model-config path/to/config.json"
            return f.hint
        return m.group(0).replace(m.group(1), f.cli_name)

    return _OPTION.sub(field, str(message))


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


def fields(body, spec: tuple[Field, ...], required: tuple[str, ...] = ()) -> dict:
    """`body` keyed by the Python API's names (either spelling accepted, null fields dropped); one line
    naming the field and what was expected otherwise."""
    expected = ", ".join(f.spelled() for f in spec)
    if not isinstance(body, dict):
        raise EnergyLensError(f"expected a JSON object with fields {expected}")
    by_key = {key: f for f in spec for key in (f.cli_name, f.name)}
    given: dict[str, str] = {}  # Python name -> the spelling used
    out = {}
    for key, value in body.items():
        f = by_key.get(key)
        if f is None:
            raise EnergyLensError(f"unknown field {str(key)[:60]!r}; expected one of {expected}")
        if f.name in given:
            raise EnergyLensError(f"give field {f.cli_name!r} or {f.name!r}, not both")
        given[f.name] = key
        if value is not None:
            out[f.name] = value
    for name in required:
        if name not in out:
            f = next(f for f in spec if f.name == name)
            raise EnergyLensError(f"missing field {f.spelled()}: {f.value}")
    return out


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
    from ..recommendation.objectives import OBJECTIVES, default_electricity_usd_per_kwh, pricing_note
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
        "electricity_usd_per_kwh": default_electricity_usd_per_kwh(),
        "electricity_basis": pricing_note(),
        "terms": {g: GROUP_LABELS[g] for g in GROUPS},
        "defaults": {k: defaults.get(k) for k in ("max_gpus", "input_tokens", "output_tokens", "itl_slo_ms",
                                                   "ttft_slo_ms")},
        "model_file": str(default_model_file) if default_model_file else "the shipped coefficients",
        "api": api_help(),
    }


def api_help() -> dict:
    """The JSON fields of each POST route, for the page's API help: field, its other spelling, CLI option, value."""
    return {route: [{"field": f.cli_name, "alias": f.name if f.name != f.cli_name else None, "cli": f.option,
                     "value": f.value} for f in spec] for route, spec in API_FIELDS.items()}


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
    model_config = store.get(config_id, "config", "model_config") if config_id is not None else None
    model_file = store.get(model_id, "model", "model_file") if model_id is not None else default_model_file
    gpus = f.pop("gpus")
    if isinstance(gpus, str):
        gpus = [g for g in re.split(r"\s*,\s*", gpus) if g]
    if not isinstance(gpus, list) or not all(isinstance(g, str) for g in gpus):
        raise EnergyLensError("--gpu: give a list of GPU names, or text 'H100,B200'")
    prices = f.get("gpu_hour_usd")
    if isinstance(prices, str) and "=" not in prices:  # the CLI would read a file of that name: not over HTTP
        raise EnergyLensError(f"--gpu-hour-usd expects NAME=USD pairs ('H100=2.5,B200=5') or an object "
                              f"{{\"H100\": 2.5}}; the server reads no price file, got {prices[:60]!r}")
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
        raise EnergyLensError("configs must be a non-empty list of rows (objects of schema columns)")
    if len(configs) > MAX_ROWS:
        raise EnergyLensError(f"configs: at most {MAX_ROWS:,} rows per request, got {len(configs):,}")
    df = validate(pd.DataFrame(configs), "configs", require_energy=False)
    path = store.get(f["model_id"], "model", "model_file") if "model_id" in f else (default_model_file or "default")
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
