"""`recommend`'s options, declared once: what each is, its type, bounds, unit, default and help.

`RecommendOptions` is a frozen dataclass; each field carries an `Opt` (its metadata) saying how the three
front ends spell it and what it accepts. From it come:

* the Typer options of `energylens recommend` (`typer_parameters`), their help text and defaults;
* the JSON fields of POST /api/recommend (`json_fields`: spelling, aliases, documentation);
* the keyword arguments of `energylens.recommend(...)` (`python_signature`).

`RecommendOptions.parse(values, front)` validates everything once, whichever front end the values come
from: a bad value raises a RequestError naming the field as that front end spells it (`--max-gpus` on the
command line, `max_gpus` in JSON and in Python), with the same words otherwise. Limits come from one place
(data/schema.py's physical bounds, and the caps below); nothing here reads a file.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..catalog._names import closest, normalize
from ..catalog.costs import (
    ELECTRICITY_USD_PER_KWH,
    GPU_HOUR_USD,
    GRID_GCO2_PER_KWH,
    PUE,
    grid_table,
    parse_gpu_hour_usd,
)
from ..data.schema import MAX_BATCH as _MAX_BATCH
from ..data.schema import MAX_GPUS as _MAX_GPUS
from ..data.schema import MAX_TOKENS as _MAX_TOKENS
from ..errors import EnergyLensError
from ..io import clip
from .objectives import OBJECTIVES, PRICING
from .space import DEFAULT_BATCHES, default_gpu_counts, parallel_layouts

# Front ends: how a field is spelled in messages.
CLI, JSON, PYTHON = "cli", "json", "python"

MAX_TOKENS = int(_MAX_TOKENS)  # tokens per request, prompt or output
MAX_GPUS = int(_MAX_GPUS)  # GPUs in one deployment
MAX_BATCH = int(_MAX_BATCH)  # concurrent requests (one limit with the profiling schema's batch_size)
MAX_TOP = 1_000_000  # rows of a table
MAX_GPU_TYPES = 64  # GPU names in one request: the catalog holds a few dozen
MAX_BATCH_SIZES = 10_000  # batch sizes in one request (the candidate cap bounds the work they make)
MAX_NAME = 200  # characters of a model, GPU, engine or region name
MAX_PRICES = 256  # GPU-hour prices in one request
# Candidate deployments one request may enumerate (GPU types x layouts up to max_gpus x batch sizes): about
# 1 kB each while ranked (1.65 GB peak and 4 s for 1.5 M, measured on 2 cores), so this bounds a request near
# 2 GB; the defaults (all catalog GPUs, 8 GPUs, 11 batch sizes) make a few thousand.
MAX_CANDIDATES = 2_000_000
# Default latency SLOs: MLPerf Inference's server scenario for Llama-2-70B (loadgen/mlperf.conf:
# ttft_latency = 2000 ms, tpot_latency = 200 ms, both p99 there; here they bound the predicted means).
DEFAULT_TTFT_SLO_MS = 2000.0
DEFAULT_ITL_SLO_MS = 200.0
# Load (--rate, --trace): the highest request rate accepted, the percentiles an SLO may hold, and what --rate-sweep
# means: the issue's load curve for Poisson arrivals; a trace replayed at these multiples of --rate-scale.
MAX_RATE = 1_000_000.0  # requests/s
MAX_RATES = 64  # rates in one load curve (each simulates every candidate)
SLO_PERCENTILES = (50, 90, 99)
RATE_SWEEP = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
TRACE_SWEEP_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)

# A number as text: decimal digits, an optional fraction and exponent. No hexadecimal, octal or binary, no
# underscores (int() and float() would take '0x20' or '1_000'), no words.
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?")
_INTEGER = re.compile(r"[+-]?\d{1,30}")
_NO_SLO = ("none", "off", "")


class RequestError(EnergyLensError):
    """A bad option value; `field` is the option's Python name (the web sends it with the message)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Opt:
    """How one option is declared. `kind`: int, number, slo, int_list, number_list, flag, names, text, choice, prices,
    path (an int with `choices` takes only those).
    `cli`: the command-line flag (None: not on the command line). `json`: False where the web API must not
    take it (it names a local file); `upload`: the JSON form is the id an upload returned (config, model).
    `aliases`: other JSON spellings accepted (the Python name is always one)."""
    kind: str
    help: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself excluded
    choices: tuple[str, ...] | Callable[[], Iterable[str]] = ()
    cli: str | None = None
    json: bool = True
    upload: str = ""
    metavar: str = ""
    max_items: int | None = None
    web_help: str = ""  # what the JSON value is, where the help's first sentence says something else (a path)
    cli_default: Any = None  # the default as --help shows it, where the value's own reads badly
    short: str = ""  # a one-letter flag beside `cli` (-o)
    required: bool = False  # no default: the command line must give it
    argument: bool = False  # positional on the command line (a file the command reads)


def option(default, opt: Opt):
    return dataclasses.field(default=default, metadata={"opt": opt})


def _required(opt: Opt):
    return dataclasses.field(metadata={"opt": opt})


def _spelled(name: str, opt: Opt, front: str) -> str:
    if front == CLI and opt.cli:
        return opt.cli
    if front == JSON and opt.cli:
        return opt.cli.lstrip("-").replace("-", "_")
    return name


def _shown(value) -> str:
    """A bad value as a message shows it: short, one line, control characters visible."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):  # a number given as text (the command line's) reads as the number
        return value.strip() if _DECIMAL.fullmatch(value.strip()) and len(value) < 40 else repr(clip(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if abs(value) < 10**30 else f"an integer of {len(str(abs(value))) if abs(value) < 10**4000 else 'over 4000'} digits"
    try:
        return clip(repr(value), 60)
    except Exception:  # noqa: BLE001 - a hostile object's repr
        return f"<{type(value).__name__}>"


# ---------------------------------------------------------------- the value parsers, one per kind


def _fmt(x: float) -> str:
    """A bound as messages write it: 10,000,000 or 0.5."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _as_float(value) -> float | None:
    """A finite-or-not float from a number or decimal text; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) < 10**308 else math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _DECIMAL.fullmatch(text):
            return float(text)
        if text.lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
            return float(text)
        return None
    try:  # numpy scalars and other real numbers

        if isinstance(value, numbers.Real):
            return float(value)
    except (TypeError, ValueError, OverflowError):
        pass
    return None


def _whole(value, spelled: str, low: int, high: int, name: str) -> int:
    """A whole number in [low, high]: an int, an integral float, or such a number as decimal text."""
    x = None
    if isinstance(value, int) and not isinstance(value, bool):
        x = value if low <= value <= high else None
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        x = int(value.strip())
    else:
        f = _as_float(value)
        if f is not None and math.isfinite(f) and f.is_integer():
            x = int(f)
    if x is None or not low <= x <= high:
        raise RequestError(f"{spelled} must be a whole number between {low:,} and {high:,}, got {_shown(value)}",
                           name)
    return x


def _number(value, spelled: str, opt: Opt, name: str, what: str = "a number") -> float:
    """A finite number within the option's bounds, from a number or decimal text."""
    x = _as_float(value)
    low = opt.low if opt.low is not None else -math.inf
    if x is None or not math.isfinite(x) or x < low or (x == low and opt.low_open) or \
            (opt.high is not None and x > opt.high):
        got = f"{x:g}" if x is not None and not isinstance(value, str) else _shown(value)
        if opt.low_open and opt.high is None:
            bound = f"> {_fmt(low)}"
        elif opt.low_open:
            bound = f"> {_fmt(low)} and at most {_fmt(opt.high)}"
        else:
            bound = f"from {_fmt(low)} to {_fmt(opt.high)}" if opt.high is not None else f">= {_fmt(low)}"
        unit = f" {opt.unit}" if opt.unit else ""
        raise RequestError(f"{spelled} must be {what} {bound}{unit}, got {got}", name)
    return x


def _items(value, spelled: str, name: str, opt: Opt, what: str) -> list:
    """The items of a list option: a list/tuple, or comma-separated text (the CLI's repeated flags are a
    list of such texts). At most opt.max_items items, counted before any is parsed."""
    if isinstance(value, (str, bytes)):
        texts = [value]
    elif isinstance(value, (list, tuple)):
        texts = value
    else:
        raise RequestError(f"{spelled} expects {what}, got {_shown(value)}", name)
    limit = opt.max_items or 0
    items: list = []
    for t in texts:
        if isinstance(t, str):
            items.extend(p.strip() for p in t.split(",") if p.strip())
        else:
            items.append(t)
        if limit and len(items) > limit:
            raise RequestError(f"{spelled}: at most {limit:,} values, got more", name)
    return items


def parse_int_list(value, spelled: str, low: int, high: int, name: str | None = None,
                   max_items: int | None = None) -> list[int] | None:
    """Whole numbers in [low, high], each once, in the order given (None for an empty list)."""
    opt = Opt("int_list", "", max_items=max_items)
    what = f"comma-separated whole numbers between {low:,} and {high:,} (e.g. 64,256)"
    out = []
    items = _items(value, spelled, name, opt, what)
    if not items and (isinstance(value, str) or (isinstance(value, (list, tuple)) and value)):
        raise RequestError(f"{spelled} expects {what}, got {_shown(value if isinstance(value, str) else ','.join(map(str, value)))}", name)
    for item in items:
        if isinstance(item, str) and not _INTEGER.fullmatch(item) and not _DECIMAL.fullmatch(item):
            raise RequestError(f"{spelled} expects {what}, got {_shown(item)}", name)
        out.append(_whole(item, spelled, low, high, name))
    return list(dict.fromkeys(out)) or None


def _number_list(value, spelled: str, opt: Opt, name: str) -> tuple[float, ...] | None:
    """Numbers within the option's bounds, each once, in increasing order (None for an empty list)."""
    what = f"comma-separated numbers {'>' if opt.low_open else '>='} {_fmt(opt.low)} (e.g. 0.5,1,2)"
    if not isinstance(value, (str, bytes, list, tuple)) and _as_float(value) is not None:
        value = [value]  # one number (Python, JSON)
    items = _items(value, spelled, name, opt, what)
    if not items and (isinstance(value, str) or (isinstance(value, (list, tuple)) and value)):
        raise RequestError(f"{spelled} expects {what}, got {_shown(value)}", name)
    out = []
    for item in items:
        if isinstance(item, str) and not _DECIMAL.fullmatch(item) and item.lower() not in ("nan", "inf", "-inf"):
            raise RequestError(f"{spelled} expects {what}, got {_shown(item)}", name)
        out.append(_number(item, spelled, opt, name))
    return tuple(sorted(set(out))) or None


_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off", "")


def _flag(value, spelled: str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise RequestError(f"{spelled} expects true or false, got {_shown(value)}", name)


def _names(value, spelled: str, opt: Opt, name: str) -> tuple[str, ...]:
    items = _items(value, spelled, name, opt, "names: a list, or comma-separated text")
    for v in items:
        if not isinstance(v, str) or not v.strip() or len(v) > MAX_NAME:
            raise RequestError(f"{spelled} expects names of 1 to {MAX_NAME} characters, got {_shown(v)}", name)
    return tuple(dict.fromkeys(v.strip() for v in items))


def _text(value, spelled: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise RequestError(f"{spelled} expects a name of 1 to {MAX_NAME} characters, got {_shown(value)}", name)
    return value.strip()


def _choice(value, spelled: str, opt: Opt, name: str, front: str) -> str:
    if name == "region":
        return _region(value, spelled, front)
    allowed = list(opt.choices() if callable(opt.choices) else opt.choices)
    by_key = {_key(a): a for a in allowed}
    if isinstance(value, str) and _key(value) in by_key:
        return by_key[_key(value)]
    raise RequestError(f"{spelled} must be one of {', '.join(allowed)}, got {_shown(value)}", name)


def _region(value, spelled: str, front: str) -> str:
    """A grid region by country name or ISO code (the grid table's own lookup), as the table names it."""
    grid = grid_table()
    if isinstance(value, str) and len(value) <= MAX_NAME:
        key = normalize(value)
        key = grid.codes.get(key, key)
        if key in grid.names:
            return grid.names[key]
    hint = closest(str(value), list(grid.names.values())) if isinstance(value, str) else []
    iso = sorted({c for c in grid.codes if len(c) == 2})
    other = _spelled("grid_gco2_per_kwh", _OPTS["grid_gco2_per_kwh"], front)
    raise RequestError(f"{spelled} {_shown(value)} unknown" + (f" (closest: {', '.join(hint)})" if hint else "")
                       + f"; give a country name or ISO code ({', '.join(iso)}), {grid.default_region}, or {other}",
                       "region")


def _key(text: str) -> str:
    return re.sub(r"[\s_-]+", "", text.strip().lower())


def _prices(value, spelled: str, opt: Opt, name: str, front: str):
    """GPU-hour prices: {name: USD} from an object or 'H100=2.5,B200=5'; elsewhere than the web, a price file."""
    lo, hi, unit = GPU_HOUR_USD
    if isinstance(value, Mapping):
        if len(value) > MAX_PRICES:
            raise RequestError(f"{spelled}: at most {MAX_PRICES} prices, got {len(value):,}", name)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k.strip() or len(k) > MAX_NAME:
                raise RequestError(f"{spelled}: {_shown(k)} is not a GPU name", name)
            x = _as_float(v) if not isinstance(v, str) else None
            if x is None or not math.isfinite(x) or not lo <= x <= hi:
                raise RequestError(f"{spelled}: price of {clip(k)} must be a number from {lo:g} to {hi:g} {unit}, "
                                   f"got {_shown(v)}", name)
            out[k.strip()] = x
        return out
    if isinstance(value, os.PathLike) and front != JSON:
        return Path(value)
    if isinstance(value, str):
        if "=" in value:
            if len(value) > MAX_PRICES * (MAX_NAME + 32):
                raise RequestError(f"{spelled}: at most {MAX_PRICES} prices", name)
            try:
                return parse_gpu_hour_usd(value, option=spelled)
            except RequestError:
                raise
            except EnergyLensError as exc:
                raise RequestError(str(exc), name) from None
        if front == JSON:
            raise RequestError(f"{spelled} expects NAME=USD pairs ('H100=2.5,B200=5') or an object "
                               f"{{\"H100\": 2.5}}; the server reads no price file, got {_shown(value)}", name)
        if value.strip():
            return Path(value)
    raise RequestError(f"{spelled} expects NAME=USD pairs separated by commas (e.g. H100=2.5,B200=5)"
                       f"{'' if front == JSON else ' or a TOML price file'}, got {_shown(value)}", name)


def _path(value, spelled: str, name: str):
    if isinstance(value, os.PathLike) or (isinstance(value, str) and value and "\x00" not in value):
        return value if isinstance(value, Path) else Path(os.fspath(value))
    raise RequestError(f"{spelled} expects a file path, got {_shown(value)}", name)


# ---------------------------------------------------------------- the declaration


def _regions():
    return list(grid_table().names.values())


def _objectives():
    return list(OBJECTIVES)


def _pricings():
    return list(PRICING)


@dataclass(frozen=True)
class RecommendOptions:
    """What `energylens recommend`, POST /api/recommend and `energylens.recommend()` take."""

    model: Optional[str] = option(None, Opt(
        "text", "Catalog model name, or a Hugging Face config.json path (with --model-config: the name to show; "
        "default: the config's own).", cli="--model",
        web_help="catalog model name (see /api/options), or the name to give an uploaded config.json"))
    gpus: tuple = option((), Opt(
        "names", "GPU type available (repeat for a mixed pool; repeats and aliases of one GPU count once).",
        cli="--gpu", max_items=MAX_GPU_TYPES, metavar="NAME", web_help="GPU names (see /api/options)"))
    max_gpus: int = option(8, Opt("int", f"Most GPUs one deployment may use (1 to {MAX_GPUS:,}).", low=1,
                                  high=MAX_GPUS, cli="--max-gpus", unit="GPUs"))
    input_tokens: float = option(1024.0, Opt("number", f"Mean prompt tokens per request (0 to {MAX_TOKENS:,}).",
                                             low=0, high=MAX_TOKENS, cli="--input-tokens", unit="tokens"))
    output_tokens: float = option(256.0, Opt("number", f"Mean generated tokens per request (1 to {MAX_TOKENS:,}).",
                                             low=1, high=MAX_TOKENS, cli="--output-tokens", unit="tokens"))
    visual_tokens: float = option(0.0, Opt("number", "Image/video tokens among the input tokens (runs the vision "
                                                     "encoder).", low=0, high=MAX_TOKENS, cli="--visual-tokens",
                                            unit="tokens"))
    batches: Optional[tuple] = option(None, Opt(
        "int_list", "Batch sizes (max concurrent requests) to consider, comma-separated or repeated (--batch 64,256 "
        f"= --batch 64 --batch 256); default 1..1024; each 1 to {MAX_BATCH:,}.", low=1, high=MAX_BATCH,
        cli="--batch", metavar="N[,N...]", max_items=MAX_BATCH_SIZES))
    itl_slo_ms: Optional[float] = option(DEFAULT_ITL_SLO_MS, Opt(
        "slo", "SLO on the mean inter-token latency (TPOT, ms) of a request served under continuous batching; "
        "'none' lifts it. Default: MLPerf's server scenario.", low=0, low_open=True, cli="--itl-slo-ms", unit="ms",
        cli_default="200"))
    ttft_slo_ms: Optional[float] = option(DEFAULT_TTFT_SLO_MS, Opt(
        "slo", "SLO on the time to first token (ms) of a request served under continuous batching; 'none' lifts "
        "it. Default: MLPerf's server scenario.", low=0, low_open=True, cli="--ttft-slo-ms", unit="ms",
        cli_default="2000"))
    rate: Optional[tuple] = option(None, Opt(
        "number_list", "Requests per second to serve (Poisson arrivals; --input-tokens and --output-tokens become the "
        "means of lognormal lengths): recommend the fewest replicas meeting the SLOs at that load and rank by energy "
        "at it; several rates (0.5,1,2,5) give a load curve.", low=0, low_open=True, high=MAX_RATE, unit="requests/s",
        cli="--rate", metavar="R[,R...]", max_items=MAX_RATES))
    rate_sweep: bool = option(False, Opt(
        "flag", "A load curve at " + ",".join(f"{r:g}" for r in RATE_SWEEP) + " requests/s (with --trace: the trace "
        "replayed at " + ",".join(f"{k:g}" for k in TRACE_SWEEP_SCALES) + " times --rate-scale).", cli="--rate-sweep",
        web_help="a load curve over the standard rates"))
    trace: Optional[Path] = option(None, Opt(
        "path", "Request trace to serve: Azure TIMESTAMP,ContextTokens,GeneratedTokens or a CSV arrival_s,prompt_tokens,"
        "output_tokens (docs/TRAFFIC.md); ranks by energy at its load.", cli="--trace", json=False))
    rate_scale: float = option(1.0, Opt(
        "number", "Replay --trace this many times faster (2: twice the rate).", low=0, low_open=True, high=MAX_RATE,
        cli="--rate-scale"))
    slo_percentile: int = option(99, Opt(
        "int", "With a load (--rate, --trace): the percentile of TTFT and ITL the SLOs bound (50, 90 or 99).", low=50,
        high=99, choices=tuple(str(p) for p in SLO_PERCENTILES), cli="--slo-percentile"))
    model_file: Optional[Path] = option(None, Opt(
        "path", "Model file written by `energylens fit`, or 'default': the shipped coefficients (used when "
        "omitted).", cli="--model-file", upload="model"))
    model_config: Optional[Path] = option(None, Opt(
        "path", "Hugging Face config.json for a model not in the catalog.", cli="--model-config", upload="config"))
    hardware_catalog_file: Optional[Path] = option(None, Opt("path", "Extra hardware TOML.", cli="--hardware-catalog",
                                                             json=False))
    model_catalog_file: Optional[Path] = option(None, Opt("path", "Extra model TOML.", cli="--model-catalog",
                                                          json=False))
    engine: Optional[str] = option(None, Opt(
        "text", "Coefficients that price the candidates: one of the model file's engine groups (the values of its "
        "training rows' `fit --engine-column`, e.g. mlenergy-v3) or 'shared'; default: the group with most training "
        "rows. Not a backend to run (that is `profile --engine`).", cli="--engine", metavar="GROUP",
        web_help="coefficient group of the model file, or 'shared'"))
    top: int = option(10, Opt("int", "How many distinct layouts to show (the latency-optimal and TP-default rows "
                                     "follow when not among them).", low=1, high=MAX_TOP, cli="--top"))
    objective: str = option("energy", Opt(
        "choice", "Rank by energy (J/request), cost (USD per million output tokens) or carbon (gCO2e per 1000 "
        "requests).", choices=_objectives, cli="--objective", web_help="what the ranking minimizes"))
    gpu_hour_usd: Any = option(None, Opt(
        "prices", "USD per GPU-hour: H100=2.5,B200=5, or a TOML file of lines H100 = 2.5 (tables gpu.H100 with "
        "usd_per_hour, optional source and date, work too); they replace the shipped cloud rental prices "
        "(catalog/data/gpu_prices.toml).", cli="--gpu-hour-usd", max_items=MAX_PRICES,
        web_help="USD per GPU-hour (no price file over HTTP)"))
    pricing: str = option("cloud", Opt(
        "choice", "cloud: on-demand rental prices per GPU-hour, which include power (no electricity added); owned: "
        "electricity x PUE plus an amortized hardware price per GPU-hour (--hardware-usd-per-gpu-hour).",
        choices=_pricings, cli="--pricing", web_help="cloud (rental, power included) or owned (electricity plus "
        "hardware)"))
    hardware_usd_per_gpu_hour: Any = option(None, Opt(
        "figure_or_prices", "With --pricing owned: the hardware's purchase price spread over its hours of service, "
        "USD per GPU-hour: one figure for every GPU (1.2) or H100=1.2,B200=2.5 (default: not counted).",
        cli="--hardware-usd-per-gpu-hour", max_items=MAX_PRICES, web_help="USD per GPU-hour of owned hardware: a "
        "number, NAME=USD pairs or an object"))
    electricity_usd_per_kwh: Optional[float] = option(None, Opt(
        "number", "USD/kWh on facility energy (GPU energy x PUE), charged on top of the GPU-hour prices (default: "
        "none for --pricing cloud, US industrial average for owned).", low=ELECTRICITY_USD_PER_KWH[0],
        high=ELECTRICITY_USD_PER_KWH[1], unit=ELECTRICITY_USD_PER_KWH[2], cli="--electricity-usd-per-kwh"))
    grid_gco2_per_kwh: Optional[float] = option(None, Opt(
        "number", "Grid carbon intensity (gCO2e/kWh); or --region.", low=GRID_GCO2_PER_KWH[0],
        high=GRID_GCO2_PER_KWH[1], unit=GRID_GCO2_PER_KWH[2], cli="--grid-gco2-per-kwh"))
    region: Optional[str] = option(None, Opt(
        "choice", "Grid of a country, by name or ISO code (us, de, fr, in, cn, ...; catalog/data/grid_intensity.toml; "
        "default: world average).", choices=_regions,
        cli="--region"))
    pue: Optional[float] = option(None, Opt(
        "number", "Power usage effectiveness, facility / IT energy (default: 1.58, Uptime Institute 2023).",
        low=PUE[0], high=PUE[1], cli="--pue"))
    front: str = dataclasses.field(default=PYTHON, repr=False, compare=False)

    # ------------------------------------------------------------ declaration queries

    @classmethod
    def options(cls) -> list[tuple[str, Opt, Any]]:
        """(name, Opt, default) of every option, in declaration order."""
        out = []
        for f in dataclasses.fields(cls):
            if "opt" in f.metadata:
                out.append((f.name, f.metadata["opt"], f.default))
        return out

    def spell(self, name: str) -> str:
        """The field `name` as this request's front end spells it (--max-gpus, max_gpus)."""
        return _spelled(name, _OPTS[name], self.front)

    # ------------------------------------------------------------ validation

    @classmethod
    def parse(cls, values: Mapping[str, Any], front: str = PYTHON,
              uploads: Callable[[str, str, Any], Path] | None = None) -> "RecommendOptions":
        """Validated options from raw values keyed by Python name (missing ones take their default). On the
        web (front JSON) a field with `upload` takes the id an upload returned, turned into the server's
        file by `uploads(kind, spelled, id)`; a field that names a local file is refused."""
        unknown = [k for k in values if k not in _OPTS]
        if unknown:
            raise RequestError(f"unknown option {clip(unknown[0])!r}; expected one of {', '.join(_OPTS)}")
        out = {}
        for name, opt, default in cls.options():
            value = values.get(name, default)
            spelled = _spelled(name, opt, front)
            if front == JSON and name in values and values[name] is not None and not opt.json:
                raise RequestError(f"{spelled} names a file on the server; the web API reads no such file", name)
            out[name] = default if value is None and opt.kind != "slo" else \
                _parse_one(name, opt, value, spelled, front, uploads)
        req = cls(**out, front=front)
        req._check_together()
        return req

    def _check_together(self) -> None:
        """Rules across fields."""
        self._check_visual()
        if self.region is not None and self.grid_gco2_per_kwh is not None:
            raise RequestError(f"give {self.spell('region')} or {self.spell('grid_gco2_per_kwh')}, not both", "region")
        if self.model is None and self.model_config is None:
            raise RequestError(f"{self.spell('model')}: give a catalog model name (energylens catalog models) or "
                               f"{self.spell('model_config')} config.json", "model")
        if not self.gpus:
            raise RequestError(f"{self.spell('gpus')}: give at least one GPU type", "gpus")
        if self.rate and self.trace is not None:
            raise RequestError(f"give {self.spell('rate')} (Poisson arrivals) or {self.spell('trace')}, not both; "
                               f"{self.spell('rate_scale')} replays a trace faster", "rate")
        if self.rate and self.rate_sweep:
            raise RequestError(f"give {self.spell('rate')} or {self.spell('rate_sweep')}, not both", "rate_sweep")
        if self.rate_scale != 1.0 and self.trace is None:
            raise RequestError(f"{self.spell('rate_scale')} replays {self.spell('trace')} faster; give a trace (or "
                               f"{self.spell('rate')} for Poisson arrivals)", "rate_scale")

    @property
    def has_load(self) -> bool:
        """Whether a load was asked for (--rate, --rate-sweep or --trace): recommend then sizes replicas for it."""
        return bool(self.rate) or self.rate_sweep or self.trace is not None

    @classmethod
    def check(cls, values: Mapping[str, Any], front: str = PYTHON) -> dict:
        """Some options validated alone (each as parse would), e.g. a workload for another command."""
        out = {name: None if v is None else _parse_one(name, _OPTS[name], v, _spelled(name, _OPTS[name], front),
                                                        front, None)
               for name, v in values.items()}
        if out.get("visual_tokens") is not None and out.get("input_tokens") is not None:
            cls(**{"model": "-", "gpus": ("-",), **out, "front": front})._check_visual()
        return out

    def _check_visual(self) -> None:
        if self.visual_tokens > self.input_tokens:
            raise RequestError(f"{self.spell('visual_tokens')} must be between 0 and {self.spell('input_tokens')} "
                               f"({self.input_tokens:g}); they are part of the prompt, got {self.visual_tokens:g}",
                               "visual_tokens")

    def unknown_hint(self, name: str) -> str | None:
        """How to give what a catalog lacks, in this front end's terms (None: the catalog's own hint)."""
        if self.front != JSON:
            return None
        return {"model": "or upload its config.json to POST /api/upload/config and pass the config_id it returns "
                         "as model_config",
                "gpus": "the server's hardware catalog; see GET /api/options"}.get(name)

    def replace(self, **changes) -> "RecommendOptions":
        return dataclasses.replace(self, **changes)

    def values(self) -> dict:
        """The options as keyword arguments (Python names)."""
        return {name: getattr(self, name) for name in _OPTS}


def _default_batches():
    return DEFAULT_BATCHES


def candidate_count(model_spec, gpu_types: int, max_gpus: int, batch_sizes: int) -> int:
    """How many candidates `space.candidate_table` enumerates for these, counted without building them."""
    return gpu_types * batch_sizes * sum(len(parallel_layouts(model_spec, n)) for n in default_gpu_counts(max_gpus, model_spec))


def check_candidates(model_spec, gpu_types: int, max_gpus: int, batch_sizes: int,
                     spell: Callable[[str], str] = lambda name: _spelled(name, _OPTS[name], CLI)) -> None:
    """Refuse a request whose candidates would exceed MAX_CANDIDATES (before any is built), naming what to lower."""
    n = candidate_count(model_spec, gpu_types, max_gpus, batch_sizes)
    if n > MAX_CANDIDATES:
        raise RequestError(f"{gpu_types} GPU type(s) x the layouts up to {spell('max_gpus')} {max_gpus:,} x {batch_sizes} "
                           f"batch size(s) make {n:,} candidate deployments, over the limit of {MAX_CANDIDATES:,}: give "
                           f"fewer GPU types or batch sizes ({spell('batches')}) or a smaller {spell('max_gpus')}",
                           "max_gpus")


def _parse_one(name: str, opt: Opt, value, spelled: str, front: str, uploads):
    kind = opt.kind
    if kind == "int" and opt.choices:
        allowed = tuple(int(c) for c in opt.choices)
        x = _as_float(value) if not (isinstance(value, str) and not _DECIMAL.fullmatch(value.strip())) else None
        if x is None or not math.isfinite(x) or x not in allowed:
            raise RequestError(f"{spelled} must be one of {', '.join(map(str, allowed))}, got {_shown(value)}", name)
        return int(x)
    if kind == "int":
        return _whole(value, spelled, int(opt.low), int(opt.high), name)
    if kind == "number_list":
        return _number_list(value, spelled, opt, name)
    if kind == "flag":
        return _flag(value, spelled, name)
    if kind == "number":
        return _number(value, spelled, opt, name)
    if kind == "slo":
        if value is None or (isinstance(value, str) and value.strip().lower() in _NO_SLO):
            return None
        return _number(value, spelled, opt, name, what="a finite number")
    if kind == "int_list":
        got = parse_int_list(value, spelled, int(opt.low), int(opt.high), name, opt.max_items)
        return tuple(got) if got else None
    if kind == "names":
        return _names(value, spelled, opt, name)
    if kind == "text":
        return _text(value, spelled, name)
    if kind == "choice":
        return _choice(value, spelled, opt, name, front)
    if kind == "prices":
        return _prices(value, spelled, opt, name, front)
    if kind == "figure_or_prices":  # one USD figure for every GPU, or prices by GPU
        x = _as_float(value) if not isinstance(value, Mapping) else None
        if x is not None:
            lo, hi, unit = GPU_HOUR_USD
            return _number(value, spelled, Opt("number", "", low=lo, high=hi, unit=unit), name)
        return _prices(value, spelled, opt, name, JSON)  # never a file
    if kind == "path":
        if front == JSON:  # never a path a client names: the id of one of this server's uploads
            if not isinstance(value, str) or uploads is None:
                raise RequestError(f"{spelled} {_shown(value)} is not an upload of this server (upload it again)", name)
            return uploads(opt.upload, spelled, value)
        return _path(value, spelled, name)
    raise AssertionError(f"unknown option kind {kind}")


_OPTS: dict[str, Opt] = {name: opt for name, opt, _ in RecommendOptions.options()}


# ---------------------------------------------------------------- what each front end is generated from


def python_signature(first: tuple[str, ...] = ("model", "gpus")) -> inspect.Signature:
    """energylens.recommend's signature: `model` and `gpus` positional, every other option a keyword."""
    params = []
    for name, opt, default in RecommendOptions.options():
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if name in first else inspect.Parameter.KEYWORD_ONLY
        params.append(inspect.Parameter(name, kind, default=inspect.Parameter.empty if name in first else default))
    return inspect.Signature(params)


def typer_parameters(skip: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One Typer option per CLI option, in declaration order: every value reaches the command as the text
    given (a list for a repeatable one), so that RecommendOptions.parse checks it, as it does JSON's."""
    import typer

    params = []
    for name, opt, default in RecommendOptions.options():
        if opt.cli is None or name in skip:
            continue
        repeat = opt.kind in ("names", "int_list", "number_list")
        shown = opt.cli_default if opt.cli_default is not None else default
        if opt.kind == "flag":  # a switch: present or not
            info = typer.Option(False, opt.cli, help=opt.help)
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=bool))
            continue
        if repeat:
            annotation = Optional[list[str]]
            shown = None
        else:
            annotation = Optional[str]
            shown = None if shown is None else str(int(shown) if isinstance(shown, float) and shown.is_integer()
                                                   else shown)
        required = name == "gpus"
        info = typer.Option(... if required else shown, opt.cli, help=opt.help,
                            metavar=opt.metavar or _metavar(name, opt), show_default=not repeat and shown is not None)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation))
    return params


def _metavar(name: str, opt: Opt) -> str:
    return {"int": "INTEGER", "number": "FLOAT", "slo": "MS", "path": "PATH", "prices": "PRICES", "number_list": "R[,R...]",
            "choice": name.upper()}.get(opt.kind, "TEXT")


@dataclass(frozen=True)
class JsonField:
    """One JSON field of POST /api/recommend: its spelling, the other spellings accepted, the CLI option it
    mirrors and what its value is (the page's API help and the README list these)."""
    name: str  # the Python name (RecommendOptions)
    field: str  # the JSON spelling messages use: the CLI option without dashes
    aliases: tuple[str, ...]
    cli: str
    value: str


_JSON_VALUES = {"int": "a whole number", "number": "a number", "slo": "a number of ms, or 'none'",
                "int_list": "a list, or text '64,256'", "number_list": "a list, or text '0.5,1,2'",
                "flag": "true or false", "names": "a list, or text 'H100,B200'", "text": "text",
                "choice": "one of {}", "prices": "text 'H100=2.5,B200=5' or an object {\"H100\": 2.5}"}


def json_fields() -> list[JsonField]:
    """The JSON fields of POST /api/recommend, in declaration order (local files excluded; uploads by id)."""
    out = []
    for name, opt, _ in RecommendOptions.options():
        if not opt.json:
            continue
        spelled = _spelled(name, opt, JSON)
        if opt.upload:
            alias = f"{opt.upload}_id"
            value = (f"the {alias} POST /api/upload/{'config' if opt.upload == 'config' else 'profile'} returned "
                     f"({'instead of a config.json path' if opt.upload == 'config' else 'instead of a model file'})")
            out.append(JsonField(name, spelled, (alias,), opt.cli, value))
            continue
        value = _JSON_VALUES.get(opt.kind, "text")
        if opt.kind == "choice":
            value = value.format(", ".join(opt.choices() if callable(opt.choices) else opt.choices)) \
                if name != "region" else "a grid region (see /api/options)"
        bounds = ""
        if opt.kind == "int" and opt.choices:
            value, bounds = f"one of {', '.join(opt.choices)}", ""
        elif opt.kind in ("int", "number", "int_list", "number_list") and opt.high is not None:
            low = f"above {_fmt(opt.low)}" if opt.low_open else f"from {_fmt(opt.low)}"
            bounds = f"{' each' if opt.kind.endswith('_list') else ''} {low} to {_fmt(opt.high)}"
        unit = f" {opt.unit}" if opt.unit and opt.kind in ("int", "number", "number_list") else ""
        first = opt.web_help or re.split(r" \(|; |\. ", opt.help)[0].rstrip(".")
        out.append(JsonField(name, spelled, (name,) if name != spelled else (), opt.cli,
                             f"{first}: {value}{bounds}{unit}"))
    return out
