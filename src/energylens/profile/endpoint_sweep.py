"""`energylens profile --endpoint URL`: a sweep of load levels against a running server, one schema row each.

Rows follow the profiling schema (docs/SCHEMA.md) with the deployment the user states (or, for the
data-parallel degree, vLLM's /metrics), and `raw_*` columns with everything measured (latency
percentiles, window, energy, the server's own figures). Like the local sweep (sweep.py), each level is
appended atomically as soon as it is measured, levels already in the output are skipped on resume,
and a level that fails (a server error, a timeout) goes to `<output>.failed.csv` with its reason while
the sweep goes on. Ctrl-C stops the sweep; every level measured before it is on disk.
"""
from __future__ import annotations

import asyncio
import math
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone

from ..data.schema import CPU_GPU
from ..errors import EnergyLensError
from .endpoint import Client, Load, Workload, WindowRule, level_statistics, run_level
from .monitor import counter_update_period_s, make_monitor, min_window_s
from .sweep import append_row, drop_failed, failed_path, pending

# A level's identity on resume: what was asked, not what was measured (prompt lengths vary a little).
KEY = ("model", "tp", "pp", "ep", "dp", "raw_level", "raw_workload", "raw_asked_input_tokens",
       "raw_asked_output_tokens")
SOURCE_PREFIX = "energylens-endpoint"
MIN_SERVER_SAMPLES = 5  # /metrics readings a window needs before its mean running batch replaces the client's


TEXT_KEY = ("model", "raw_level", "raw_workload")


def key_of(row) -> tuple | None:
    """A level's key; None for a row of another kind of profile (no raw_level) sharing the file."""
    level = row["raw_level"]
    if not isinstance(level, str) or not level:
        return None
    return (str(row["model"]), *(int(float(row[k])) for k in ("tp", "pp", "ep", "dp")), str(row["raw_level"]),
            str(row["raw_workload"]), int(float(row["raw_asked_input_tokens"])),
            int(float(row["raw_asked_output_tokens"])))


@dataclass(frozen=True)
class Level:
    load: Load
    input_tokens: int = 0  # asked prompt tokens; 0 where a trace gives them
    output_tokens: int = 0

    def describe(self) -> str:
        return self.load.label + (f" in={self.input_tokens} out={self.output_tokens}" if self.input_tokens else "")


@dataclass
class EndpointSpec:
    url: str
    levels: list[Level]
    api: str = "completions"
    model: str | None = None  # recorded in the rows (a catalog name); default: what the server says
    served_model: str | None = None  # the model name requests ask for, where the server serves several
    trace: list | None = None
    trace_name: str | None = None
    tp: int | None = None
    pp: int | None = None
    ep: int | None = None
    dp: int | None = None
    max_num_seqs: int | None = None  # the server's cap on running requests (batch_size of rate levels)
    min_window_s: float = 10.0  # floor of the steady-state window; the energy counter may ask for more
    min_requests: int | None = None  # requests that must complete in the window (default: from the load)
    warmup_requests: int | None = None
    request_timeout_s: float = 120.0
    retries: int = 2
    api_key_env: str | None = None
    seed: int = 0

    @property
    def workload(self) -> str:
        return f"trace:{self.trace_name}" if self.trace else "fixed"


def default_rule(spec: EndpointSpec, load: Load, window_floor_s: float) -> WindowRule:
    """How long a level warms up and how many requests its window needs: the stated values, else one cycle
    of every concurrency slot to warm up and two in the window (at least 16 requests for open loads)."""
    c = int(load.value) if load.kind == "concurrency" else 0
    warm = spec.warmup_requests if spec.warmup_requests is not None else max(c, 4)
    need = spec.min_requests if spec.min_requests is not None else max(2 * c, 16)
    return WindowRule(min_window_s=window_floor_s, min_requests=need, warmup_requests=warm,
                      drain_timeout_s=spec.request_timeout_s)


def api_key(spec: EndpointSpec) -> str | None:
    """The API key from the environment variable the user named; never echoed."""
    if spec.api_key_env is None:
        return None
    value = os.environ.get(spec.api_key_env)
    if not value:
        raise EnergyLensError(f"--api-key-env {spec.api_key_env}: that environment variable is not set")
    return value


def run_endpoint_sweep(spec: EndpointSpec, gpus, output, *, idle_seconds: float = 2.0, retry_failed: bool = False,
                       progress=None, announce=None) -> dict:
    """Measure every level of `spec` not yet in `output`; returns counts as `sweep.run_sweep` does.
    `announce(text)` hears, once, what the server is and how long a window lasts at least."""
    key = api_key(spec)
    return asyncio.run(_sweep(spec, list(gpus), output, key, idle_seconds, retry_failed, progress, announce))


def _gpu_name(info: dict) -> str:
    gpu = str(info.get("name", CPU_GPU))
    for prefix in ("NVIDIA ", "Nvidia "):
        gpu = gpu[len(prefix):] if gpu.startswith(prefix) else gpu
    return gpu


async def _sweep(spec, gpus, output, key, idle_seconds, retry_failed, progress, announce) -> dict:
    client = Client(spec.url, spec.api, timeout_s=spec.request_timeout_s, retries=spec.retries, api_key=key,
                    max_connections=max([int(lv.load.value) for lv in spec.levels if lv.load.kind == "concurrency"]
                                        + [512]))
    try:
        return await _sweep_with(client, spec, gpus, output, idle_seconds, retry_failed, progress, announce)
    finally:
        await client.close()


async def _sweep_with(client, spec, gpus, output, idle_seconds, retry_failed, progress, announce) -> dict:
    info = await client.probe(spec.served_model or spec.model)
    model = spec.model or info.root or info.served_model
    dep, dep_source = _deployment(spec, info, gpus)
    base = {"model": model, **dep}
    todo, counts, failed_before = pending(spec.levels, output, retry_failed,
                                          key=lambda level: _level_key(base, spec, level), row_key=key_of,
                                          columns=KEY, text_columns=TEXT_KEY)
    if not todo:
        return counts
    await client.negotiate()
    calibration = await client.calibrate()
    monitor = make_monitor(gpus)
    period = counter_update_period_s(gpus) if gpus else None
    floor = min_window_s(period, spec.min_window_s)
    idle = None
    if gpus and idle_seconds > 0:
        idle = monitor.idle_power_w(max(idle_seconds, floor))  # the same resolution rule as a level's window
    gpu_info = gpus[0].info() if gpus else {"name": CPU_GPU}
    meter = type(monitor).__name__
    if announce:
        step = f"energy counter step {period * 1000:.0f} ms, " if period else ""
        announce(f"{info.engine}{' ' + info.version if info.version else ''} at {client.root} serving "
                 f"{info.served_model}; {len(todo)} level(s) to measure; {step}windows of at least {floor:.3g} s"
                 + (f"; idle {idle:.1f} W" if idle is not None else ""))
    for i, level in enumerate(todo):
        if progress:
            progress(i, len(todo), level)
        await client.get("/v1/models")  # the server still answers (bounded retries), else stop with one line
        retried = _level_key(base, spec, level) in failed_before
        workload = Workload(calibration, level.input_tokens or None, level.output_tokens or None, spec.trace,
                            seed=spec.seed + i)
        rule = default_rule(spec, level.load, floor)
        name = f"level-{i}-{level.load.label}"
        run = await run_level(client, level.load, workload, rule, lambda: monitor.begin_window(name),
                              lambda: monitor.end_window(name), info.metrics, seed=spec.seed + i)
        ident = {**base, **_level_columns(spec, level)}
        if run.error is not None or run.measurement is None:
            _record_failed(output, ident, run.error or "the window never opened", retried)
            counts["failed"] += 1
            continue
        row = _row(spec, level, run, info, ident, dep_source, gpus, gpu_info, idle, period, calibration, meter,
                   client)
        append_row(output, row)
        if retried:
            drop_failed(output, key_of(row), key_of=key_of, columns=KEY)
        counts["measured"] += 1
    if progress:
        progress(len(todo), len(todo), None)
    return counts


def _deployment(spec: EndpointSpec, info, gpus) -> tuple[dict, str]:
    dp, source = spec.dp, "stated"
    if dp is None and info.engines_in_metrics and info.engines_in_metrics > 1:
        dp, source = info.engines_in_metrics, "dp from the server's /metrics (engine labels), the rest stated"
    tp, pp, ep, dp = spec.tp or 1, spec.pp or 1, spec.ep or 1, dp or 1
    if all(v is None for v in (spec.tp, spec.pp, spec.ep, spec.dp)) and source == "stated":
        source = "default (tp = pp = ep = dp = 1; state them with --tp/--pp/--ep/--dp)"
    num_gpus = len(gpus) if gpus else tp * pp * dp
    if tp * pp * dp > num_gpus:
        raise EnergyLensError(f"tp x pp x dp = {tp * pp * dp} GPUs, but {num_gpus} measured (--gpus); name every GPU "
                              "the server runs on")
    if num_gpus % ep:
        raise EnergyLensError(f"--ep {ep} must divide the {num_gpus} GPUs measured")
    return {"num_gpus": num_gpus, "tp": tp, "pp": pp, "ep": ep, "dp": dp}, source


def _level_columns(spec: EndpointSpec, level: Level) -> dict:
    return {"raw_level": level.load.label, "raw_workload": spec.workload,
            "raw_asked_input_tokens": level.input_tokens, "raw_asked_output_tokens": level.output_tokens}


def _level_key(base: dict, spec: EndpointSpec, level: Level) -> tuple:
    return key_of({**base, **_level_columns(spec, level)})


def _record_failed(output, ident: dict, reason: str, retried: bool) -> None:
    record = {**ident, "status": "failed", "reason": reason,
              "raw_measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if retried:
        drop_failed(output, key_of(record), record, key_of=key_of, columns=KEY)
    else:
        append_row(failed_path(output), record)


def _row(spec, level, run, info, ident, dep_source, gpus, gpu_info, idle, period, calibration, meter, client) -> dict:
    nan = math.nan
    st = level_statistics(run)
    energy = run.measurement.total_energy_j if gpus else None
    has_energy = energy is not None and energy > 0 and st["tokens_in_window"] > 0
    out_tokens = st["output_tokens"]
    in_tokens = st["input_tokens"]
    if level.load.kind == "concurrency":
        batch, batch_from = int(level.load.value), "concurrency"
    elif spec.max_num_seqs:
        batch, batch_from = spec.max_num_seqs, "--max-num-seqs"
    else:
        batch, batch_from = max(st["peak_in_flight"], 1), "peak requests in flight"
    # the server's running-request gauge where it was read often enough in the window, else the client's count
    # of requests in flight (which includes any the server queues)
    server = st["server_running"] if st["server_samples"] >= MIN_SERVER_SAMPLES else nan
    avg_batch = server if not math.isnan(server) else st["client_concurrency"]
    e_tok = energy / st["tokens_in_window"] if has_energy else nan
    row = {
        **ident, "gpu": _gpu_name(gpu_info), "batch_size": batch,
        "input_tokens": in_tokens, "output_tokens": out_tokens,
        "avg_batch_size": avg_batch if avg_batch > 0 else nan,
        "task": spec.workload if spec.trace else "fixed-length",
        "gpu_idle_w": idle / len(gpus) if idle is not None else nan,
        "modality": "text",
        "energy_request_j": e_tok * out_tokens if has_energy else nan, "energy_token_j": e_tok,
        "ttft_s": st["ttft"]["mean"], "itl_s": st["tpot"]["mean"],
        "avg_power_w": energy / run.measurement.time_s if has_energy else nan,
        "throughput_tok_s": st["throughput_tok_s"],
        "source": f"{SOURCE_PREFIX}:{info.engine}",
        "node": socket.gethostname(), "gpu_uuids": ",".join(str(g.info().get("uuid", "")) for g in gpus),
        "raw_endpoint": client.root, "raw_api": spec.api, "raw_served_model": info.served_model,
        "raw_model_root": info.root or "", "raw_engine": info.engine, "raw_engine_version": info.version or "",
        "raw_max_model_len": info.max_model_len if info.max_model_len else nan,
        "raw_deployment_from": dep_source, "raw_batch_size_from": batch_from,
        "raw_ignore_eos": client.ignore_eos, "raw_usage_in_stream": client.usage_in_stream,
        "raw_output_tokens_from": "usage" if st["output_tokens_reported"] else "stream chunks",
        "raw_input_tokens_from": "usage" if st["input_tokens_reported"] else "asked",
        "raw_prompt_calibration": f"{calibration.source}: {calibration.intercept:.3g} + {calibration.slope:.4g} x words",
        "raw_warmup_requests": run.warmup_completed, "raw_requests_in_window": st["requests"],
        "raw_tokens_in_window": st["tokens_in_window"], "raw_window_s": st["window_s"],
        "raw_window_energy_j": energy if energy is not None else nan,
        "raw_energy_meter": meter if gpus else "none",
        "raw_counter_update_s": period if period is not None else nan,
        "raw_energy_resolution": (period / st["window_s"]) if period else nan,
        "raw_client_concurrency": st["client_concurrency"], "raw_peak_in_flight": st["peak_in_flight"],
        "raw_server_running": st["server_running"], "raw_server_waiting": st["server_waiting"],
        "raw_server_samples": st["server_samples"], "raw_avg_batch_from": "server /metrics" if not math.isnan(server)
        else "client requests in flight",
        "raw_idle_power_w": idle if idle is not None else nan,
        "raw_gpu_name": gpu_info.get("name", CPU_GPU), "raw_driver": gpu_info.get("driver", ""),
        "raw_power_limit_w": gpu_info.get("power_limit_w", nan),
        "raw_measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for name in ("ttft", "tpot", "itl", "e2e"):
        for stat, value in st[name].items():
            row[f"raw_{name}_{stat}_s"] = value
    return row
