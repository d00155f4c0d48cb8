"""`vllm bench serve --save-result` results (one JSON object per run; `--append-result` puts several in one
file, one per line), joined with a GPU power log by each run's time window.

vLLM records when the result was saved (`date`, local time to the second) and how long the run took
(`duration`, seconds); the window is [date - duration, date]. Its per-request times are relative
(`time.perf_counter`), so the date is the only link to the wall clock: its one-second resolution is
reported as `source_window_uncertainty` (1 s / duration).
"""
from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import pandas as pd

from ...errors import DataError
from ..powerlog import local_epoch, parse_tz
from ._bench import BenchOptions, deployment, join, number
from ._common import with_drops

DATE_FORMAT = "%Y%m%d-%H%M%S"
REQUIRED = ("date", "duration", "completed", "total_input_tokens", "total_output_tokens")


def results(path: Path) -> list[dict]:
    """The result objects of a file: one JSON object, or one per line (--append-result)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read ({type(exc).__name__})", path=path) from None
    try:
        one = json.loads(text)
        objs = one if isinstance(one, list) else [one]
    except json.JSONDecodeError:
        objs = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    objs.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"not valid JSON: {exc.msg}", path=path, row=n) from None
    if not objs or not all(isinstance(o, dict) for o in objs):
        raise DataError("expected the JSON object(s) `vllm bench serve --save-result` writes", path=path)
    return objs


def _batch(r: dict, opts: BenchOptions, path, k: int):
    """The server's cap on concurrent requests as far as the run tells it, and where it came from."""
    for value, origin in ((opts.max_num_seqs, "--max-num-seqs"), (r.get("max_num_seqs"), "metadata max_num_seqs"),
                          (r.get("max_concurrency"), "max_concurrency"),
                          (r.get("max_concurrent_requests"), "max_concurrent_requests (peak observed)")):
        if value not in (None, ""):
            try:
                return int(float(value)), origin
            except (TypeError, ValueError):
                raise DataError(f"result {k}: {origin} = {str(value)[:20]!r} is not a whole number", path=path)
    raise DataError(f"result {k} has no max_concurrency (the run was not capped): give --max-num-seqs, the "
                    "server's cap on running requests", path=path)


def read(path: Path, opts: BenchOptions | None = None) -> pd.DataFrame:
    opts = opts or BenchOptions()
    objs = results(path)
    log = opts.load_power()
    tz = parse_tz(opts.tz)
    rows = []
    for k, r in enumerate(objs, start=1):
        missing = [f for f in REQUIRED if f not in r]
        if missing:
            raise DataError(f"result {k} lacks '{missing[0]}' (a `vllm bench serve --save-result` file has "
                            f"{', '.join(REQUIRED)})", path=path)
        try:
            end = datetime.strptime(str(r["date"]), DATE_FORMAT)
        except ValueError:
            raise DataError(f"result {k}: date {str(r['date'])[:30]!r} is not YYYYMMDD-HHMMSS", path=path) from None
        duration, completed = number(r, "duration", path=path), number(r, "completed", path=path)
        out_tokens, in_tokens = number(r, "total_output_tokens", path=path), number(r, "total_input_tokens", path=path)
        if not duration or duration <= 0 or not completed or completed <= 0 or not out_tokens or out_tokens <= 0:
            raise DataError(f"result {k}: expected a positive duration, completed requests and output tokens",
                            path=path)
        t1 = local_epoch(end, tz)
        t0 = t1 - duration
        got = join(log, t0, t1, f"result {k}", path, opts.min_overlap)
        dep = deployment(opts, log, r, path)
        batch, batch_origin = _batch(r, opts, path, k)
        model = opts.model or r.get("model_id")
        if not model:
            raise DataError(f"result {k} names no model_id; give --model", path=path)
        energy = got.energy_j
        detailed = r.get("latencies")
        avg_batch = (sum(x for x in detailed if isinstance(x, (int, float))) / duration
                     if isinstance(detailed, list) and detailed else None)

        def ms(key):
            value = number(r, key, path=path)
            return None if value is None else value / 1000.0

        rows.append({
            "model": model, **dep, "batch_size": batch,
            "input_tokens": in_tokens / completed, "output_tokens": out_tokens / completed,
            "avg_batch_size": avg_batch, "task": r.get("dataset_name") or "vllm-bench",
            "energy_request_j": energy / completed, "energy_token_j": energy / out_tokens,
            "ttft_s": ms("mean_ttft_ms"), "itl_s": ms("mean_tpot_ms") or ms("mean_itl_ms"),
            "avg_power_w": energy / duration,
            "throughput_tok_s": number(r, "output_throughput", path=path) or out_tokens / duration,
            "source": "vllm-bench",
            "source_file": path.name, "source_result": k, "source_date": r["date"],
            "source_window_start": t0, "source_window_end": t1,
            "source_window_uncertainty": 1.0 / duration,
            "source_power_log": log.path.name, "source_power_kind": log.kind,
            "source_power_overlap": got.coverage, "source_power_method": got.method,
            "source_power_filled_j": got.filled_j, "source_energy_j": energy,
            "source_batch_size_from": batch_origin,
            "source_backend": r.get("backend"), "source_request_rate": r.get("request_rate"),
            "source_max_concurrency": r.get("max_concurrency"), "source_completed": completed,
            "source_failed": r.get("failed"), "source_duration_s": duration,
            **{f"source_{key}": r.get(key) for key in ("mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms",
                                                        "median_tpot_ms", "p99_tpot_ms", "mean_itl_ms", "median_itl_ms",
                                                        "p99_itl_ms")},
        })
    for row in rows:
        for key, value in list(row.items()):
            if isinstance(value, float) and math.isnan(value):
                row[key] = None
    return with_drops(pd.DataFrame(rows), len(objs), {})
