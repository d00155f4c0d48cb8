"""`energylens profile` (measure energy on NVIDIA GPUs) and `energylens plan` (choose what to measure)."""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Optional

import typer

from ..errors import EnergyLensError, NoGpuError
from ..io import write_table
from ._console import console, constant_first, print_table
from ._options import int_list as _ints  # one parser of number lists for every command

SWEEP_FAILED = 3  # exit code: every configuration this run tried failed (documented in `profile --help`)
DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS = "128,1024", "64,256"
DEFAULT_CONCURRENCY = "1,8,64,256"  # --endpoint without --concurrency or --rate


def profile(
    model: Optional[str] = typer.Option(None, "--model", help="Catalog model name or a config.json (random weights, no download). With --endpoint: the name recorded in the rows (default: the model the server names)."),
    engine: str = typer.Option("vllm", "--engine", metavar="BACKEND", help="Inference backend that runs the sweep: vllm or transformers. Rows record it as source 'energylens-profile:BACKEND', the engine group that `fit --engine-column source` fits and `recommend --engine` prices with."),
    tp: Optional[str] = typer.Option(None, "--tp", help="Tensor-parallel degrees, comma-separated (default 1). With --endpoint: the server's degree, one value."),
    pp: Optional[str] = typer.Option(None, "--pp", help="Pipeline-parallel degrees, comma-separated (default 1). With --endpoint: the server's degree, one value."),
    batch: str = typer.Option("1,8,64", "--batch", help="Batch sizes, comma-separated."),
    input_tokens: Optional[str] = typer.Option(None, "--input-tokens", help="Prompt lengths, comma-separated (default 128,1024)."),
    output_tokens: Optional[str] = typer.Option(None, "--output-tokens", help="Generated lengths, comma-separated (default 64,256)."),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Measured repeats per configuration (after a warm-up)."),
    plan_file: Optional[Path] = typer.Option(None, "--plan", help="Sweep file from `energylens plan` (replaces the grid options)."),
    output: Path = typer.Option(..., "-o", "--output", help="CSV to append measurements to (resumes if it exists)."),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="GPUs to measure, comma-separated indices or UUIDs (default: all). With --endpoint: every GPU the server runs on."),
    allow_cpu: bool = typer.Option(False, "--allow-cpu", help="Without an NVIDIA GPU, run on the CPU (with --endpoint: measure timings only); energy columns are left empty."),
    idle_seconds: float = typer.Option(2.0, "--idle-seconds", min=0, help="Seconds of idle power measured before the sweep (at most 3600; with --endpoint at least the window the energy counter needs)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run again the configurations of this sweep recorded as failed in <output>.failed.csv (without it they are skipped); those that succeed leave that file."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="ray or ray=ADDRESS (e.g. ray=head:6379): one Ray task per configuration, asking for tp x pp GPUs on one node; plain ray starts a local Ray. Needs pip install 'energylens[cluster]'."),
    retries: int = typer.Option(2, "--retries", min=0, max=100, help="With --cluster: times a configuration whose worker or node was lost runs again before it is recorded as failed. With --endpoint: times a probe of the server (/v1/models) is retried on a connection error or HTTP 5xx."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", metavar="URL", help="Profile a running OpenAI-compatible server (vLLM, SGLang, TGI, ...) at this base URL, e.g. http://127.0.0.1:8000: a sweep of load levels, GPU energy over each level's steady state. Only this URL is contacted."),
    api: str = typer.Option("completions", "--api", help="With --endpoint: completions (/v1/completions) or chat (/v1/chat/completions)."),
    served_model: Optional[str] = typer.Option(None, "--served-model", help="With --endpoint: the model name to request, where the server serves several."),
    concurrency: Optional[str] = typer.Option(None, "--concurrency", help="With --endpoint: requests kept in flight, one level per value, comma-separated (default 1,8,64,256 unless --rate is given)."),
    rate: Optional[str] = typer.Option(None, "--rate", help="With --endpoint: Poisson arrival rates in requests/s, comma-separated; or 'trace' to replay the arrival times of --trace."),
    trace: Optional[Path] = typer.Option(None, "--trace", help="With --endpoint: replay the prompt and output lengths (and, with --rate trace, arrival times) of a trace CSV: the Azure LLM trace layout (TIMESTAMP, ContextTokens, GeneratedTokens) or input_tokens, output_tokens[, arrival_s]."),
    ep: Optional[int] = typer.Option(None, "--ep", min=1, help="With --endpoint: the server's expert-parallel degree (default 1)."),
    dp: Optional[int] = typer.Option(None, "--dp", min=1, help="With --endpoint: the server's data-parallel replicas (default: vLLM's /metrics engines, else 1)."),
    max_num_seqs: Optional[int] = typer.Option(None, "--max-num-seqs", min=1, help="With --endpoint and --rate: the server's cap on running requests, recorded as batch_size (default: the peak in flight)."),
    min_window: float = typer.Option(10.0, "--min-window", help="With --endpoint: shortest steady-state window in seconds; longer where the energy counter's steps need it (100 steps, for 1% resolution)."),
    min_requests: Optional[int] = typer.Option(None, "--requests", min=1, help="With --endpoint: requests that must start and complete within a level's window (default: 2 x concurrency, at least 16)."),
    warmup_requests: Optional[int] = typer.Option(None, "--warmup-requests", min=0, help="With --endpoint: completed requests before the window opens (default: the concurrency, at least 4)."),
    request_timeout: float = typer.Option(120.0, "--request-timeout", help="With --endpoint: seconds a request may wait for its next byte (and the drain for the last requests) before the level fails."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", metavar="NAME", help="With --endpoint: the environment variable holding the server's API key (sent as a bearer token; never printed or written)."),
):
    """Measure energy of prefill and decode in separate windows over a sweep of configurations; or, with --endpoint URL, the energy, latency and throughput of a running server under a sweep of load levels.

    Resumable: configurations already in the output are skipped. Failed ones (out of memory, ...) are recorded in <output>.failed.csv with the reason and skipped on resume unless --retry-failed.

    Exit codes: 3 "sweep failed" when every configuration this run tried failed; 0 otherwise, partial failures included (the summary counts them and names the failed file); 2 for bad input.
    """
    if endpoint is not None:
        return _profile_endpoint(locals())
    if model is None:
        raise _error("--model is required (a catalog model or config.json), or --endpoint URL to profile a running server")
    endpoint_only = {"--api": api != "completions", "--served-model": served_model, "--concurrency": concurrency,
                     "--rate": rate, "--trace": trace, "--ep": ep, "--dp": dp, "--max-num-seqs": max_num_seqs,
                     "--requests": min_requests, "--warmup-requests": warmup_requests, "--api-key-env": api_key_env}
    given = [name for name, value in endpoint_only.items() if value not in (None, False)]
    if given:
        raise _error(f"{given[0]} applies to --endpoint URL (profiling a running server)")
    tp, pp = tp or "1", pp or "1"
    input_tokens, output_tokens = input_tokens or DEFAULT_INPUT_TOKENS, output_tokens or DEFAULT_OUTPUT_TOKENS
    from ._paths import check_output
    check_output(output, inputs=[plan_file, Path(model)])  # an existing output is resumed, not an input
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..profile.devices import open_gpus
    from ..profile.engines import make_engine
    from ..profile.sweep import LIMITS, SweepSpec, configurations_from_plan, run_sweep

    if not math.isfinite(idle_seconds) or not 0 <= idle_seconds <= 3600:
        raise EnergyLensError(f"--idle-seconds expects a finite number of seconds between 0 and 3600, got {idle_seconds:g}")
    from ..profile.devices import parse_gpu_ids

    gpu_indices = parse_gpu_ids(gpus) if gpus is not None else None
    if cluster is not None:
        from ..profile.cluster import parse_cluster

        address = parse_cluster(cluster)
        if gpus is not None:
            raise EnergyLensError("--gpus chooses local GPUs; with --cluster, Ray assigns each configuration its GPUs")
    # Parse the sweep before touching any device: a typo is reported at once.
    if plan_file is not None:
        configs = configurations_from_plan(plan_file, model)
    else:
        configs = SweepSpec(model, _ints(tp, "--tp", maximum=LIMITS["tp"]), _ints(pp, "--pp", maximum=LIMITS["pp"]),
                            _ints(batch, "--batch", maximum=LIMITS["batch_size"]),
                            _ints(input_tokens, "--input-tokens", maximum=LIMITS["input_tokens"]),
                            _ints(output_tokens, "--output-tokens", maximum=LIMITS["output_tokens"])).configurations()
    if cluster is not None:  # the workers open their GPUs and build the engine; nothing is opened here
        from ..profile.cluster import import_ray, run_ray_sweep
        from ..profile.engines import ENGINES

        if engine not in ENGINES:
            make_engine(engine)  # its one-line error names the engines
        import_ray()  # without Ray: the one-line error naming the extra, before any work
    else:
        try:
            devices = open_gpus(gpu_indices)
        except NoGpuError:
            if not allow_cpu:
                raise
            devices = []
            console.print("no NVIDIA GPU found: running on the CPU, energy columns will be empty (never estimated)")
        eng = make_engine(engine, device="auto" if devices else "cpu")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("profiling", total=len(configs))

        def progress(i, n, cfg):
            bar.update(task, total=n, completed=i,
                       description="profiling" if cfg is None else f"b={cfg['batch_size']} in={cfg['input_tokens']} out={cfg['output_tokens']}")

        if cluster is not None:
            counts = run_ray_sweep(configs, functools.partial(make_engine, engine), output, address=address,
                                   repeats=repeats, idle_seconds=idle_seconds, retries=retries,
                                   retry_failed=retry_failed, allow_cpu=allow_cpu, progress=progress)
        else:
            counts = run_sweep(configs, eng, devices, output, repeats=repeats,
                               idle_seconds=idle_seconds if devices else 0, progress=progress, retry_failed=retry_failed)
    _report(counts, output)


def _report(counts: dict, output: Path) -> None:
    """The sweep's summary line; exit code 3 when every configuration tried failed."""
    from ..profile.sweep import failed_path

    failed_file = failed_path(output)
    summary = f"{counts['measured']} measured, {counts['skipped']} already in {output}, {counts['failed']} failed"
    if counts["previously_failed"]:
        summary += (f", {counts['previously_failed']} skipped as failed before (recorded in {failed_file}; "
                    "--retry-failed runs them again)")
    if counts["failed"] and not counts["measured"]:
        typer.echo(f"error: sweep failed: {summary}; every configuration tried failed, reasons in {failed_file}"
                   + _last_reason(failed_file), err=True)
        raise typer.Exit(SWEEP_FAILED)
    if counts["failed"]:
        summary += f"; {counts['failed']} of {counts['failed'] + counts['measured']} tried failed, reasons in {failed_file}"
    console.print(summary, markup=False, highlight=False)


def _error(message: str):
    return EnergyLensError(message)


def _one_degree(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    values = _ints(text, option, maximum=100_000)
    if len(values) != 1:
        raise _error(f"{option} with --endpoint is the server's degree: one value, got '{text}'")
    return values[0]


def _rates(text: str) -> list:
    """Rates in requests/s (> 0), or the word 'trace'."""
    if text.strip().lower() == "trace":
        return ["trace"]
    out = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 < value <= 1_000_000):
            raise _error(f"--rate expects requests per second > 0, comma-separated (e.g. 0.5,2), or 'trace'; got '{text}'")
        out.append(value)
    return list(dict.fromkeys(out))


def _seconds(value: float, option: str, low: float, high: float) -> float:
    if not (math.isfinite(value) and low < value <= high):
        raise _error(f"{option} expects seconds > {low:g} and <= {high:g}, got {value:g}")
    return value


def _profile_endpoint(a: dict) -> None:
    """`profile --endpoint URL`: a load sweep against a running server (profile/endpoint_sweep.py)."""
    from ._paths import check_output
    check_output(a["output"], inputs=[a["trace"]])
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..profile.devices import open_gpus, parse_gpu_ids
    from ..profile.endpoint import Load, check_url
    from ..profile.endpoint_sweep import EndpointSpec, Level, run_endpoint_sweep
    from ..profile.sweep import LIMITS

    for option in ("--plan", "--cluster"):
        if a[{"--plan": "plan_file", "--cluster": "cluster"}[option]] is not None:
            raise _error(f"{option} does not apply to --endpoint (the server runs the model)")
    check_url(a["endpoint"])  # a bad URL is reported before any device is opened
    if not math.isfinite(a["idle_seconds"]) or not 0 <= a["idle_seconds"] <= 3600:
        raise _error(f"--idle-seconds expects a finite number of seconds between 0 and 3600, got {a['idle_seconds']:g}")
    min_window = _seconds(a["min_window"], "--min-window", 0, 86_400)
    timeout = _seconds(a["request_timeout"], "--request-timeout", 0, 86_400)
    loads = []
    if a["concurrency"] is not None or a["rate"] is None:
        loads += [Load("concurrency", c) for c in _ints(a["concurrency"] or DEFAULT_CONCURRENCY, "--concurrency",
                                                         maximum=100_000)]
    trace = None
    if a["trace"] is not None:
        from ..profile.workload import read_trace

        trace = read_trace(a["trace"])
    if a["rate"] is not None:
        for r in _rates(a["rate"]):
            if r == "trace":
                if trace is None or trace[0].arrival_s is None:
                    raise _error("--rate trace replays the arrival times of --trace FILE: give a trace with times "
                                 "(TIMESTAMP or arrival_s)")
                loads.append(Load("trace"))
            else:
                loads.append(Load("rate", r))
    if trace is not None:
        if a["input_tokens"] is not None or a["output_tokens"] is not None:
            raise _error("--trace gives each request's prompt and output lengths: drop --input-tokens/--output-tokens")
        levels = [Level(load) for load in loads]
    else:
        ins = _ints(a["input_tokens"] or DEFAULT_INPUT_TOKENS, "--input-tokens", maximum=LIMITS["input_tokens"])
        outs = _ints(a["output_tokens"] or DEFAULT_OUTPUT_TOKENS, "--output-tokens", maximum=LIMITS["output_tokens"])
        levels = [Level(load, i, o) for i in ins for o in outs for load in loads]
    spec = EndpointSpec(a["endpoint"], levels, api=a["api"], model=a["model"], served_model=a["served_model"],
                        trace=trace, trace_name=a["trace"].name if a["trace"] is not None else None,
                        tp=_one_degree(a["tp"], "--tp"), pp=_one_degree(a["pp"], "--pp"), ep=a["ep"], dp=a["dp"],
                        max_num_seqs=a["max_num_seqs"], min_window_s=min_window, min_requests=a["min_requests"],
                        warmup_requests=a["warmup_requests"], request_timeout_s=timeout, retries=a["retries"],
                        api_key_env=a["api_key_env"])
    try:
        devices = open_gpus(parse_gpu_ids(a["gpus"]) if a["gpus"] is not None else None)
    except NoGpuError:
        if not a["allow_cpu"]:
            raise
        devices = []
        console.print("no NVIDIA GPU found: measuring timings only, energy columns will be empty (never estimated)")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("profiling", total=len(levels))

        def progress(i, n, level):
            bar.update(task, total=n, completed=i, description="profiling" if level is None else level.describe())

        counts = run_endpoint_sweep(spec, devices, a["output"], idle_seconds=a["idle_seconds"] if devices else 0,
                                    retry_failed=a["retry_failed"], progress=progress,
                                    announce=lambda text: console.print(text, markup=False, highlight=False))
    _report(counts, a["output"])


def _last_reason(path) -> str:
    """' (last: <reason>)' from a failed file, or '' when it cannot be read."""
    try:
        import pandas as pd

        reason = str(pd.read_csv(path)["reason"].dropna().iloc[-1])
    except Exception:  # the summary must not fail on a damaged sidecar file
        return ""
    return f" (last: {' '.join(reason.split())[:200]})"


def plan(
    model: str = typer.Option(..., "--model", help="Catalog model name or config.json."),
    gpu: list[str] = typer.Option(..., "--gpu", help="GPU type (repeatable)."),
    max_gpus: int = typer.Option(8, "--max-gpus", min=1, help="Most GPUs per configuration."),
    budget: int = typer.Option(50, "--budget", min=1, help="How many configurations to measure."),
    batch: Optional[str] = typer.Option(None, "--batch", help="Batch sizes to consider (default 1..1024)."),
    input_tokens: str = typer.Option("128,512,2048", "--input-tokens", help="Prompt lengths to consider."),
    output_tokens: str = typer.Option("64,256", "--output-tokens", help="Generated lengths to consider."),
    model_file: Optional[Path] = typer.Option(None, "--model-file", help="Model whose coefficients set the sensitivities (default: shipped)."),
    output: Path = typer.Option(..., "-o", "--output", help="Sweep file to write (CSV) for `energylens profile --plan`."),
):
    """Choose the most informative configurations to profile (greedy D-optimal design)."""
    from ._paths import check_output
    check_output(output, inputs=[model_file, Path(model)])
    from ..model.modelfile import load_model
    from ..profile.plan import plan_sweep

    base = load_model(model_file, estimator=False) if model_file else None
    sweep = plan_sweep(model, gpu, max_gpus, budget, _ints(input_tokens, "--input-tokens"),
                       _ints(output_tokens, "--output-tokens"), _ints(batch, "--batch") if batch else None, base)
    write_table(sweep, output)
    shown = min(PLAN_ROWS_SHOWN, len(sweep))
    view = sweep.head(shown).rename(columns=PLAN_HEADERS)
    view.insert(0, "#", range(1, shown + 1))
    print_table(view, title=f"{len(sweep)} of {sweep.attrs['candidates']} candidates chosen, most informative first",
                drop_order=constant_first(view, PLAN_DROP_ORDER), how=f"all columns are in {output.name}",
                caption=f"the first {shown} of {len(sweep)} shown; all are in {output.name}" if shown < len(sweep) else None)
    console.print(f"wrote {output}; measure them with:", markup=False, highlight=False)
    typer.echo(f"energylens profile --model {model} --plan {output} -o runs.csv")  # copy-paste text: never wrapped


PLAN_ROWS_SHOWN = 15
# The plan's columns as headed on screen (the file keeps the schema names), and those left out first on a
# narrow terminal (after the ones equal on every row).
PLAN_HEADERS = {"gpu": "GPU", "num_gpus": "GPUs", "batch_size": "batch", "input_tokens": "in\ntokens",
                "output_tokens": "out\ntokens", "information_gain": "information\ngain"}
PLAN_DROP_ORDER = ("pp", "ep", "dp", "GPUs", "model", "GPU", "tp", "information\ngain")
