"""What `fit`, `predict`, `explain`, `show`, `profile` and `plan` take, declared once.

Each command's options are one frozen dataclass whose fields carry an `Opt` (recommendation/request.py: kind,
help, unit, bounds, default, how the command line spells it), as `RecommendOptions` declares recommend's. The
Typer parameters of each command are generated from its dataclass (`signature`), so a flag, its default, its
bounds and its help live in one place; the command's body receives the values as that dataclass. Typer checks
the types and the integer bounds (a bad value: one usage line naming the flag, exit 2); the bounds that need a
finite number, or that depend on another option, are checked in the body from the same declaration (`bounds`).
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

from ..data.schema import MAX_BATCH, MAX_DEGREE, MAX_TOKENS
from ..recommendation.request import MAX_GPUS, Opt, option
from ..vocabulary import MAX_SEED

# Bounds of profile's options (the sweep's grid takes the profiling schema's own: MAX_DEGREE, MAX_BATCH, MAX_TOKENS).
MAX_IDLE_S = 3600.0  # idle power measured before a sweep
MAX_WAIT_S = 86_400.0  # a steady-state window, or a request's wait for its next byte
MAX_LEVEL = 100_000  # requests in flight, or a server's parallel degree
MAX_RATE = 1_000_000.0  # arrivals per second
MAX_RETRIES = 100

MODEL_FILE_HELP = "Model file written by `energylens fit`, or 'default' for the model shipped with EnergyLens."


def _argument(opt: Opt):
    return dataclasses.field(default=..., metadata={"opt": dataclasses.replace(opt, argument=True, required=True)})


def _required(opt: Opt):
    return dataclasses.field(default=..., metadata={"opt": dataclasses.replace(opt, required=True)})


def _seed(help: str):
    return option(0, Opt("int", help, low=0, high=MAX_SEED, cli="--seed"))


def _output(help: str):
    return _required(Opt("path", help, cli="--output", short="-o"))


# ---------------------------------------------------------------- the model commands


DISCOVERY_SECONDS = 2.0  # `fit`'s default search budget: a 50-row fit with discovery stays near 10 s on 2 cores


@dataclass(frozen=True)
class FitOptions:
    """`energylens fit`."""
    data: list = _argument(Opt("paths", "Profiling data (CSV or Parquet in the schema); several files are "
                                        "concatenated."))
    output: Path = _output("Model file to write (JSON).")
    samples: Optional[int] = option(None, Opt("int", "Fit on N rows drawn at random.", low=1, cli="--samples"))
    seed: int = _seed("Seed for the row draw and the fit's extra starts.")
    base: Optional[Path] = option(None, Opt(
        "path", "Start from this model ('default' = the shipped one): compare by cross-validation on these rows the "
        "model as it is, its recalibration (only the hardware- and engine-dependent coefficients refitted) and a fit "
        "from scratch, print the three errors and keep the best.", cli="--from"))
    choose: str = option("auto", Opt("text", "With --from: keep 'auto' (the lowest CV error), 'base', 'recalibrate' "
                                             "or 'fresh'.", cli="--choose"))
    note: Optional[str] = option(None, Opt("text", "Free text stored in the model's provenance (e.g. how to "
                                                   "regenerate it).", cli="--note"))
    engine_column: Optional[str] = option(None, Opt(
        "text", "Column naming each row's serving engine or cluster (e.g. source): hardware/engine coefficients per "
        "engine around one shared fit.", cli="--engine-column"))
    structure: str = option("auto", Opt("text", "auto (chosen by 5-fold cross-validation on these rows), physics, "
                                                "compact, or a model file whose structure to refit.",
                                        cli="--structure"))
    discover_seconds: float = option(DISCOVERY_SECONDS, Opt(
        "number", "With --structure auto: seconds of symbolic regression proposing further structures (corrections "
        "and time terms in raw system quantities) for the cross-validated comparison; needs pyoperon (the discovery "
        "extra), skipped without it; 0 turns it off.", low=0, high=3600, unit="s", cli="--discover-seconds"))


@dataclass(frozen=True)
class PredictOptions:
    """`energylens predict`."""
    model_file: Path = _argument(Opt("path", MODEL_FILE_HELP))
    configs: Path = _argument(Opt("path", "Configurations (CSV or Parquet; measured columns not needed)."))
    output: Path = _output("Where to write the configurations with predictions.")


@dataclass(frozen=True)
class ExplainOptions:
    """`energylens explain`."""
    model_file: Path = _argument(Opt("path", MODEL_FILE_HELP))
    configs: Path = _argument(Opt("path", "Configurations to explain (CSV or Parquet)."))
    rows: int = option(10, Opt("int", "How many configurations to show.", low=1, cli="--rows"))
    json_out: bool = option(False, Opt("flag", "Print JSON instead of a table.", cli="--json"))
    verbose: bool = option(False, Opt("flag", "Under the table, what each column means and why a flagged share is "
                                              "uncertain.", cli="--verbose"))


@dataclass(frozen=True)
class ShowOptions:
    """`energylens show`."""
    model_file: Path = _argument(Opt("path", MODEL_FILE_HELP))
    latex: bool = option(False, Opt("flag", "Also print the formula in LaTeX.", cli="--latex"))


# ---------------------------------------------------------------- measuring


def _endpoint(help: str) -> str:
    return f"With --endpoint: {help}"


def _wait(default: float, cli: str, help: str):
    """A wait of --endpoint in seconds: more than 0, at most MAX_WAIT_S."""
    return option(default, Opt("number", _endpoint(help), low=0, low_open=True, high=MAX_WAIT_S, cli=cli, unit="s"))


@dataclass(frozen=True)
class ProfileOptions:
    """`energylens profile` (a sweep of configurations, or of load levels against --endpoint URL)."""
    model: Optional[str] = option(None, Opt(
        "text", "Catalog model name or a config.json (random weights, no download). With --endpoint: the name "
        "recorded in the rows (default: the model the server names).", cli="--model"))
    engine: str = option("vllm", Opt(
        "text", "Inference backend that runs the sweep: vllm or transformers. Rows record it as source "
        "'energylens-profile:BACKEND', the engine group that `fit --engine-column source` fits and `recommend "
        "--engine` prices with.", cli="--engine", metavar="BACKEND"))
    tp: Optional[str] = option(None, Opt("int_list", "Tensor-parallel degrees, comma-separated (default 1). With "
                                                     "--endpoint: the server's degree, one value.", cli="--tp",
                                         high=int(MAX_DEGREE)))
    pp: Optional[str] = option(None, Opt("int_list", "Pipeline-parallel degrees, comma-separated (default 1). With "
                                                     "--endpoint: the server's degree, one value.", cli="--pp",
                                         high=int(MAX_DEGREE)))
    batch: str = option("1,8,64", Opt("int_list", "Batch sizes, comma-separated.", cli="--batch",
                                      high=int(MAX_BATCH)))
    input_tokens: Optional[str] = option(None, Opt("int_list", "Prompt lengths, comma-separated.",
                                                   cli="--input-tokens",
                                                   high=int(MAX_TOKENS), cli_default="128,1024"))
    output_tokens: Optional[str] = option(None, Opt("int_list", "Generated lengths, comma-separated.",
                                                    cli="--output-tokens",
                                                    high=int(MAX_TOKENS), cli_default="64,256"))
    repeats: int = option(3, Opt("int", "Measured repeats per configuration (after a warm-up).", low=1,
                                 cli="--repeats"))
    plan_file: Optional[Path] = option(None, Opt("path", "Sweep file from `energylens plan` (replaces the grid "
                                                         "options).", cli="--plan"))
    output: Path = _output("CSV to append measurements to (resumes if it exists).")
    gpus: Optional[str] = option(None, Opt("text", "GPUs to measure, comma-separated indices or UUIDs (default: "
                                                   "all). With --endpoint: every GPU the server runs on.",
                                           cli="--gpus"))
    allow_cpu: bool = option(False, Opt("flag", "Without an NVIDIA GPU, run on the CPU (with --endpoint: measure "
                                                "timings only); energy columns are left empty.", cli="--allow-cpu"))
    idle_seconds: float = option(2.0, Opt(
        "number", f"Seconds of idle power measured before the sweep (at most {MAX_IDLE_S:g}; with "
        "--endpoint at least the window the energy counter needs).", low=0, high=MAX_IDLE_S,
        cli="--idle-seconds", unit="s"))
    retry_failed: bool = option(False, Opt(
        "flag", "Run again the configurations of this sweep recorded as failed in <output>.failed.csv (without it "
        "they are skipped); those that succeed leave that file.", cli="--retry-failed"))
    cluster: Optional[str] = option(None, Opt(
        "text", "ray or ray=ADDRESS (e.g. ray=head:6379): one Ray task per configuration, asking for tp x pp GPUs on "
        "one node; plain ray starts a local Ray. Needs pip install 'energylens[cluster]'.", cli="--cluster"))
    retries: int = option(2, Opt(
        "int", "With --cluster: times a configuration whose worker or node was lost runs again before it is "
        "recorded as failed. With --endpoint: times a probe of the server (/v1/models) is retried on a connection "
        "error or HTTP 5xx.", low=0, high=MAX_RETRIES, cli="--retries"))
    endpoint: Optional[str] = option(None, Opt(
        "text", "Profile a running OpenAI-compatible server (vLLM, SGLang, TGI, ...) at this base URL, e.g. "
        "http://127.0.0.1:8000: a sweep of load levels, GPU energy over each level's steady state. Only this URL is "
        "contacted.", cli="--endpoint", metavar="URL"))
    api: str = option("completions", Opt("text", _endpoint("completions (/v1/completions) or chat "
                                                           "(/v1/chat/completions)."), cli="--api"))
    served_model: Optional[str] = option(None, Opt("text", _endpoint("the model name to request, where the server "
                                                                     "serves several."), cli="--served-model"))
    concurrency: Optional[str] = option(None, Opt(
        "int_list", _endpoint("requests kept in flight, one level per value, comma-separated (the default unless --rate "
                              "is given)."), cli="--concurrency", high=MAX_LEVEL,
        cli_default="1,8,64,256"))
    rate: Optional[str] = option(None, Opt(
        "text", _endpoint("Poisson arrival rates in requests/s, comma-separated; or 'trace' to replay the arrival "
                          "times of --trace."), cli="--rate", low=0, low_open=True, high=MAX_RATE))
    trace: Optional[Path] = option(None, Opt(
        "path", _endpoint("replay the prompt and output lengths (and, with --rate trace, arrival times) of a trace "
                          "CSV: the Azure LLM trace layout (TIMESTAMP, ContextTokens, GeneratedTokens) or "
                          "input_tokens, output_tokens[, arrival_s]."), cli="--trace"))
    ep: Optional[int] = option(None, Opt("int", _endpoint("the server's expert-parallel degree (default 1)."), low=1,
                                         cli="--ep"))
    dp: Optional[int] = option(None, Opt("int", _endpoint("the server's data-parallel replicas (default: vLLM's "
                                                          "/metrics engines, else 1)."), low=1, cli="--dp"))
    max_num_seqs: Optional[int] = option(None, Opt(
        "int", "With --endpoint and --rate: the server's cap on running requests, recorded as batch_size (default: "
        "the peak in flight).", low=1, cli="--max-num-seqs"))
    min_window: float = _wait(10.0, "--min-window", "shortest steady-state window in seconds; longer where the "
                                                    "energy counter's steps need it (100 steps, for 1% resolution).")
    min_requests: Optional[int] = option(None, Opt(
        "int", _endpoint("requests that must start and complete within a level's window (default: 2 x concurrency, "
                         "at least 16)."), low=1, cli="--requests"))
    warmup_requests: Optional[int] = option(None, Opt(
        "int", _endpoint("completed requests before the window opens (default: the concurrency, at least 4)."),
        low=0, cli="--warmup-requests"))
    request_timeout: float = _wait(120.0, "--request-timeout", "seconds a request may wait for its next byte (and "
                                                               "the drain for the last requests) before the level "
                                                               "fails.")
    api_key_env: Optional[str] = option(None, Opt(
        "text", _endpoint("the environment variable holding the server's API key (sent as a bearer token; never "
                          "printed or written)."), cli="--api-key-env", metavar="NAME"))


# What only a sweep against --endpoint URL takes (named in the error when given without it).
ENDPOINT_ONLY = ("api", "served_model", "concurrency", "rate", "trace", "ep", "dp", "max_num_seqs", "min_requests",
                 "warmup_requests", "api_key_env")


@dataclass(frozen=True)
class PlanOptions:
    """`energylens plan`."""
    model: str = _required(Opt("text", "Catalog model name or config.json.", cli="--model"))
    gpu: list = _required(Opt("names", "GPU type (repeatable).", cli="--gpu"))
    max_gpus: int = option(8, Opt("int", "Most GPUs per configuration.", low=1, high=MAX_GPUS, cli="--max-gpus"))
    budget: int = option(50, Opt("int", "How many configurations to measure.", low=1, cli="--budget"))
    batch: Optional[str] = option(None, Opt("int_list", "Batch sizes to consider (default 1..1024).", cli="--batch",
                                            high=int(MAX_BATCH)))
    input_tokens: str = option("128,512,2048", Opt("int_list", "Prompt lengths to consider.", cli="--input-tokens",
                                                   high=int(MAX_TOKENS)))
    output_tokens: str = option("64,256", Opt("int_list", "Generated lengths to consider.", cli="--output-tokens",
                                              high=int(MAX_TOKENS)))
    model_file: Optional[Path] = option(None, Opt("path", "Model whose coefficients set the sensitivities (default: "
                                                          "shipped).", cli="--model-file"))
    output: Path = _output("Sweep file to write (CSV) for `energylens profile --plan`.")


# ---------------------------------------------------------------- generated from the declarations


def options(cls) -> list[tuple[str, Opt, Any]]:
    """(name, Opt, default) of every field of a declaration, in order."""
    return [(f.name, f.metadata["opt"], f.default) for f in dataclasses.fields(cls)]


def opt(cls, name: str) -> Opt:
    """The declaration of one field."""
    return next(o for n, o, _ in options(cls) if n == name)


_ANNOTATIONS = {"int": int, "number": float, "flag": bool, "path": Path, "paths": list[Path], "names": list[str]}
_METAVARS = {"int": "INTEGER", "number": "FLOAT", "path": "PATH", "int_list": "N[,N...]", "text": "TEXT",
             "names": "NAME"}


def _parameter(name: str, o: Opt, default) -> inspect.Parameter:
    annotation = _ANNOTATIONS.get(o.kind, str)
    if default is None:
        annotation = Optional[annotation]
    value = ... if o.required else default
    metavar = o.metavar or _METAVARS.get(o.kind)
    if o.argument:
        info = typer.Argument(value, help=o.help, show_default=False)
    else:
        # Typer checks whole numbers within both bounds and a closed lower bound of a number; what it cannot
        # say well (a finite number, an upper bound in the option's own words) the command checks (`bounds`).
        bounds = {"min": o.low, "max": o.high} if o.kind == "int" else \
            {"min": o.low} if o.kind == "number" and not o.low_open else {}
        shown = True if o.cli_default is None else o.cli_default  # text: --help shows it as given
        if o.required or default is None or default is False:
            shown = False
        info = typer.Option(value, *filter(None, (o.short, o.cli)), help=o.help, show_default=shown,
                            metavar=None if o.kind == "flag" else metavar,
                            **{k: v for k, v in bounds.items() if v is not None})
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=info, annotation=annotation)


def signature(cls) -> inspect.Signature:
    """The Typer parameters of a command, from its declaration: arguments first, then the options in order."""
    return inspect.Signature([_parameter(name, o, default) for name, o, default in options(cls)])


def command(cls):
    """Make `body` a Typer command taking the options `cls` declares: its parameters are the declaration's
    fields, in order (checked here), and reach it as keyword arguments."""
    def wrap(body):
        names = [f.name for f in dataclasses.fields(cls)]
        if list(inspect.signature(body).parameters) != names:
            raise TypeError(f"{body.__name__} takes {list(inspect.signature(body).parameters)}, "
                            f"{cls.__name__} declares {names}")

        def run(**values):
            return body(**values)

        run.__name__, run.__qualname__, run.__doc__ = body.__name__, body.__qualname__, body.__doc__
        run.__module__ = body.__module__
        run.__signature__ = signature(cls)
        run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
        run.declaration = cls
        return run
    return wrap


def bounds(cls, name: str) -> tuple[float, float]:
    """(low, high) of a number option, for the checks Typer cannot make (finite numbers, open bounds)."""
    o = opt(cls, name)
    return o.low, o.high
