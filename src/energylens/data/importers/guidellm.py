"""GuideLLM benchmark reports (`guidellm benchmark --output-path benchmarks.json`), one row per benchmark
(one load level), joined with a GPU power log by each benchmark's measured window.

Each benchmark's `start_time` and `end_time` are seconds since the epoch; in GuideLLM 0.4 and later they
bound the measured period (warm-up and cool-down excluded). Its metrics are distributions
(`{"successful": {"mean", "median", "percentiles": {"p50", ...}, "total_sum", "count", ...}, ...}`) of which
the successful requests' are used.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ...errors import DataError
from ._bench import BenchOptions, deployment, join, number
from ._common import with_drops


def _report(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("not found", path=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON (line {exc.lineno}): {exc.msg}; give the report's .json output "
                        "(guidellm benchmark --output-path benchmarks.json)", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read ({type(exc).__name__})", path=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise DataError("expected a GuideLLM report: an object with a 'benchmarks' list", path=path)
    return data


def _strategy(b: dict) -> dict:
    for holder in (b.get("config"), b.get("args")):  # 0.4+: config.strategy; 0.2-0.3: args.strategy
        if isinstance(holder, dict) and isinstance(holder.get("strategy"), dict):
            return holder["strategy"]
    return {}


def _summary(b: dict, metric: str, stat: str, path):
    return number(b, "metrics", metric, "successful", stat, path=path, what="metric")


def _batch(b: dict, strategy: dict, opts: BenchOptions, path, k: int):
    kind = strategy.get("type_")
    if opts.max_num_seqs is not None:
        return opts.max_num_seqs, "--max-num-seqs"
    if kind == "concurrent" and strategy.get("streams"):
        return int(strategy["streams"]), "strategy streams"
    if kind == "synchronous":
        return 1, "strategy synchronous"
    if kind == "throughput" and strategy.get("max_concurrency"):
        return int(strategy["max_concurrency"]), "strategy max_concurrency"
    peak = _summary(b, "request_concurrency", "max", path)
    if peak:
        return int(math.ceil(peak)), "request_concurrency max (peak observed)"
    raise DataError(f"benchmark {k} ({kind or 'unknown strategy'}) records no concurrency cap: give --max-num-seqs",
                    path=path)


def _model(report: dict, b: dict, opts: BenchOptions):
    if opts.model:
        return opts.model
    for holder in (report.get("args"), b.get("args"), (b.get("config") or {}).get("backend"),
                   (b.get("worker") or {})):
        if isinstance(holder, dict):
            for key in ("model", "backend_model"):
                if isinstance(holder.get(key), str) and holder[key]:
                    return holder[key]
    return None


def read(path: Path, opts: BenchOptions | None = None) -> pd.DataFrame:
    opts = opts or BenchOptions()
    report = _report(path)
    benchmarks = report["benchmarks"]
    log = opts.load_power()
    rows = []
    for k, b in enumerate(benchmarks, start=1):
        if not isinstance(b, dict):
            raise DataError(f"benchmark {k} is not an object", path=path)
        t0, t1 = number(b, "start_time", path=path), number(b, "end_time", path=path)
        if t0 is None or t1 is None or not t1 > t0:
            raise DataError(f"benchmark {k}: expected start_time < end_time (seconds since the epoch)", path=path)
        out_total = _summary(b, "output_token_count", "total_sum", path)
        count = _summary(b, "output_token_count", "count", path)
        out_mean = _summary(b, "output_token_count", "mean", path)
        in_mean = _summary(b, "prompt_token_count", "mean", path)
        if not out_total or not count or out_mean is None or in_mean is None:
            raise DataError(f"benchmark {k}: no successful requests with token counts "
                            "(metrics.output_token_count.successful)", path=path)
        got = join(log, t0, t1, f"benchmark {k}", path, opts.min_overlap)
        strategy = _strategy(b)
        batch, batch_origin = _batch(b, strategy, opts, path, k)
        model = _model(report, b, opts)
        if not model:
            raise DataError(f"benchmark {k}: the report names no model; give --model", path=path)
        duration = t1 - t0
        energy = got.energy_j

        def ms(metric):
            value = _summary(b, metric, "mean", path)
            return None if value is None else value / 1000.0

        rows.append({
            "model": model, **deployment(opts, log, {}, path), "batch_size": batch,
            "input_tokens": in_mean, "output_tokens": out_mean,
            "avg_batch_size": _summary(b, "request_concurrency", "mean", path) or None,
            "task": "guidellm",
            "energy_token_j": energy / out_total, "energy_request_j": energy / out_total * out_mean,
            "ttft_s": ms("time_to_first_token_ms"), "itl_s": ms("inter_token_latency_ms"),
            "avg_power_w": energy / duration, "throughput_tok_s": out_total / duration,
            "source": "guidellm",
            "source_file": path.name, "source_benchmark": k,
            "source_strategy": strategy.get("type_"), "source_rate": strategy.get("rate"),
            "source_streams": strategy.get("streams"), "source_batch_size_from": batch_origin,
            "source_window_start": t0, "source_window_end": t1,
            "source_power_log": log.path.name, "source_power_kind": log.kind,
            "source_power_overlap": got.coverage, "source_power_method": got.method,
            "source_power_filled_j": got.filled_j, "source_energy_j": energy,
            "source_successful_requests": count, "source_output_tokens": out_total,
            "source_ttft_p50_ms": _summary(b, "time_to_first_token_ms", "median", path),
            "source_ttft_p99_ms": number(b, "metrics", "time_to_first_token_ms", "successful", "percentiles", "p99",
                                         path=path),
            "source_itl_p50_ms": _summary(b, "inter_token_latency_ms", "median", path),
            "source_itl_p99_ms": number(b, "metrics", "inter_token_latency_ms", "successful", "percentiles", "p99",
                                        path=path),
            "source_tpot_mean_ms": _summary(b, "time_per_output_token_ms", "mean", path),
        })
    return with_drops(pd.DataFrame(rows), len(benchmarks), {})
