"""`energylens profile` (measure energy on NVIDIA GPUs) and `energylens plan` (choose what to measure)."""
from __future__ import annotations

import functools
import math
from pathlib import Path

import typer

from ..errors import EnergyLensError, NoGpuError
from ..io import write_table
from ._console import console, constant_first, print_table, progress_bar
from ._options import int_list as _ints  # one parser of number lists for every command
from .declarations import (ENDPOINT_ONLY, MAX_LEVEL, MAX_RATE, PlanOptions, ProfileOptions, bounds, command, opt,
                           options)

SWEEP_FAILED = 3  # exit code: every configuration this run tried failed (documented in `profile --help`)
# The grid's lengths when not given, and the load levels of --endpoint without --concurrency or --rate.
DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS, DEFAULT_CONCURRENCY = (
    opt(ProfileOptions, name).cli_default for name in ("input_tokens", "output_tokens", "concurrency"))


@command(ProfileOptions)
def profile(model, engine, tp, pp, batch, input_tokens, output_tokens, repeats, plan_file, output, gpus, allow_cpu,
            idle_seconds, retry_failed, cluster, retries, endpoint, api, served_model, concurrency, rate, trace, ep, dp,
            max_num_seqs, min_window, min_requests, warmup_requests, request_timeout, api_key_env):
    """Measure energy of prefill and decode in separate windows over a sweep of configurations; or, with --endpoint URL, the energy, latency and throughput of a running server under a sweep of load levels.

    Resumable: configurations already in the output are skipped. Failed ones (out of memory, ...) are recorded in <output>.failed.csv with the reason and skipped on resume unless --retry-failed.

    Exit codes: 3 "sweep failed" when every configuration this run tried failed; 0 otherwise, partial failures included (the summary counts them and names the failed file); 2 for bad input.
    """
    if endpoint is not None:
        return _profile_endpoint(locals())
    if model is None:
        raise _error("--model is required (a catalog model or config.json), or --endpoint URL to profile a running server")
    values = locals()
    given = [o.cli for name, o, default in options(ProfileOptions) if name in ENDPOINT_ONLY
             and values[name] not in (None, False, default)]
    if given:
        raise _error(f"{given[0]} applies to --endpoint URL (profiling a running server)")
    tp, pp = tp or "1", pp or "1"
    input_tokens, output_tokens = input_tokens or DEFAULT_INPUT_TOKENS, output_tokens or DEFAULT_OUTPUT_TOKENS
    from ._paths import check_output
    check_output(output, inputs=[plan_file, Path(model)])  # an existing output is resumed, not an input
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from ..profile.devices import open_gpus
    from ..profile.engines import make_engine
    from ..profile.sweep import SweepSpec, configurations_from_plan, run_sweep

    _check_idle(idle_seconds)
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
        configs = SweepSpec(model, _numbers(tp, "tp"), _numbers(pp, "pp"), _numbers(batch, "batch"),
                            _numbers(input_tokens, "input_tokens"),
                            _numbers(output_tokens, "output_tokens")).configurations()
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
    with progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
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


def _numbers(text: str, name: str, declaration=ProfileOptions) -> list[int]:
    """A list option's whole numbers, within its declared bounds."""
    o = opt(declaration, name)
    return _ints(text, o.cli, maximum=o.high)


def _check_idle(seconds: float) -> None:
    low, high = bounds(ProfileOptions, "idle_seconds")
    if not math.isfinite(seconds) or not low <= seconds <= high:
        raise _error(f"--idle-seconds expects a finite number of seconds between {low:g} and {high:g}, got {seconds:g}")


def _one_degree(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    values = _ints(text, option, maximum=MAX_LEVEL)
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
        if not (math.isfinite(value) and 0 < value <= MAX_RATE):
            raise _error(f"--rate expects requests per second > 0, comma-separated (e.g. 0.5,2), or 'trace'; got '{text}'")
        out.append(value)
    return list(dict.fromkeys(out))


def _seconds(value: float, name: str) -> float:
    """A wait in seconds within its declared bounds (low excluded)."""
    (low, high), option = bounds(ProfileOptions, name), opt(ProfileOptions, name).cli
    if not (math.isfinite(value) and low < value <= high):
        raise _error(f"{option} expects seconds > {low:g} and <= {high:g}, got {value:g}")
    return value


def _profile_endpoint(a: dict) -> None:
    """`profile --endpoint URL`: a load sweep against a running server (profile/endpoint_sweep.py)."""
    from ._paths import check_output
    check_output(a["output"], inputs=[a["trace"]])
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from ..profile.devices import open_gpus, parse_gpu_ids
    from ..profile.endpoint import Load, check_url
    from ..profile.endpoint_sweep import EndpointSpec, Level, run_endpoint_sweep
    for option in ("--plan", "--cluster"):
        if a[{"--plan": "plan_file", "--cluster": "cluster"}[option]] is not None:
            raise _error(f"{option} does not apply to --endpoint (the server runs the model)")
    check_url(a["endpoint"])  # a bad URL is reported before any device is opened
    _check_idle(a["idle_seconds"])
    min_window = _seconds(a["min_window"], "min_window")
    timeout = _seconds(a["request_timeout"], "request_timeout")
    loads = []
    if a["concurrency"] is not None or a["rate"] is None:
        loads += [Load("concurrency", c) for c in _numbers(a["concurrency"] or DEFAULT_CONCURRENCY, "concurrency")]
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
        ins = _numbers(a["input_tokens"] or DEFAULT_INPUT_TOKENS, "input_tokens")
        outs = _numbers(a["output_tokens"] or DEFAULT_OUTPUT_TOKENS, "output_tokens")
        levels = [Level(load, i, o) for i in ins for o in outs for load in loads]
    spec = EndpointSpec(a["endpoint"], levels, api=a["api"], model=a["model"], served_model=a["served_model"],
                        trace=trace, trace_name=a["trace"].name if a["trace"] is not None else None,
                        tp=_one_degree(a["tp"], "--tp"), pp=_one_degree(a["pp"], "--pp"), ep=a["ep"], dp=a["dp"],
                        max_num_seqs=a["max_num_seqs"], min_window_s=min_window, min_requests=a["min_requests"],
                        warmup_requests=a["warmup_requests"], request_timeout_s=timeout, retries=a["retries"],
                        api_key_env=a["api_key_env"])
    from ..profile.endpoint import ENDPOINT_EXTRA, require_httpx

    require_httpx()  # before any GPU is looked for: without httpx nothing can be measured
    try:
        devices = open_gpus(parse_gpu_ids(a["gpus"]) if a["gpus"] is not None else None, extra=ENDPOINT_EXTRA)
    except NoGpuError:
        if not a["allow_cpu"]:
            raise
        devices = []
        console.print("no NVIDIA GPU found: measuring timings only, energy columns will be empty (never estimated)")
    with progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
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


@command(PlanOptions)
def plan(model, gpu, max_gpus, budget, batch, input_tokens, output_tokens, model_file, output):
    """Choose the most informative configurations to profile (greedy D-optimal design)."""
    from ._paths import check_output
    check_output(output, inputs=[model_file, Path(model)])
    from ..model.modelfile import load_model
    from ..profile.plan import plan_sweep

    base = load_model(model_file, estimator=False) if model_file else None
    sweep = plan_sweep(model, gpu, max_gpus, budget, _numbers(input_tokens, "input_tokens", PlanOptions),
                       _numbers(output_tokens, "output_tokens", PlanOptions),
                       _numbers(batch, "batch", PlanOptions) if batch else None, base)
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
