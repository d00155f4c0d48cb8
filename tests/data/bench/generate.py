"""Writes the GENERATED benchmark and power-log fixtures of this folder (see README.md). Nobody measured them.

Each file follows the exact layout its tool writes (docs/SCHEMA.md, "Benchmark results and power logs"),
with made-up values chosen so that the right answer is known exactly: constant power inside each benchmark
window (load starts 2 s before a window and ends 2 s after it), idle power outside.

    python tests/data/bench/generate.py          # rewrite the fixtures (tests/test_import_bench.py checks
                                                 # that the committed files equal this script's output)
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENERATED = "GENERATED test fixture of energylens (tests/data/bench/generate.py); not a measurement"

# vllm bench serve: two runs appended to one file (--append-result), on 2 x H100 (tp 2 in --metadata).
VLLM_T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()
VLLM_RUNS = [  # (start offset s, duration s, max_concurrency, completed, watts of GPU 0 and 1, e2e latency s)
    (0.0, 60.0, 8, 480, (400.0, 380.0), 1.0),
    (120.0, 60.0, 32, 960, (500.0, 480.0), 2.0),
]
VLLM_IDLE_W = (80.0, 78.0)
VLLM_IN, VLLM_OUT = 1024, 128
SMI_STEP = 1.0  # nvidia-smi -lms 1000
SKEW_S = 7200.0  # the skewed log's clock is two hours ahead (written in another zone)
GAP = (20.0, 30.0)  # seconds into run 1 where the gapped log lost GPU 1's samples
SMALL_GAP = (39.5, 41.5)  # GPU 0 loses 2 samples: a 3 s hole, within 5 sampling intervals, so still covered

# GuideLLM: two concurrent benchmarks on 1 x H100; power from DCGM (counter and power) and from Zeus.
GLLM_T0 = datetime(2025, 3, 1, 13, 0, 0, tzinfo=timezone.utc).timestamp()
GLLM_RUNS = [  # (start offset s, duration s, streams, successful, watts, ttft ms, itl ms)
    (0.0, 30.0, 4, 120, 350.0, 40.0, 8.0),
    (40.0, 30.0, 16, 360, 450.0, 90.0, 12.0),
]
GLLM_IDLE_W = 70.0
GLLM_IN, GLLM_OUT = 512, 256


def _smi_time(t: float) -> str:
    """nvidia-smi's timestamp (local time, milliseconds); the fixtures are written in UTC (tests pass --tz UTC)."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]


def vllm_power(gpu: int, t: float) -> float:
    for start, duration, *_rest in VLLM_RUNS:
        watts = _rest[2]
        if VLLM_T0 + start - 2 <= t <= VLLM_T0 + start + duration + 2:
            return watts[gpu]
    return VLLM_IDLE_W[gpu]


def vllm_results() -> str:
    lines = []
    for k, (start, duration, conc, completed, _watts, latency) in enumerate(VLLM_RUNS):
        end = datetime.fromtimestamp(VLLM_T0 + start + duration, timezone.utc)
        ttft, tpot = 60.0 + 40.0 * k, (latency * 1000 - (60.0 + 40.0 * k)) / (VLLM_OUT - 1)
        result = {
            "date": end.strftime("%Y%m%d-%H%M%S"), "endpoint_type": "vllm", "backend": "vllm", "label": None,
            "model_id": "meta-llama/Llama-3.1-8B-Instruct", "tokenizer_id": "meta-llama/Llama-3.1-8B-Instruct",
            "num_prompts": completed, "tp": "2", "note": GENERATED,  # the last two from --metadata KEY=VALUE
            "request_rate": "inf", "burstiness": 1.0, "max_concurrency": conc,
            "duration": duration, "completed": completed, "failed": 0,
            "total_input_tokens": completed * VLLM_IN, "total_output_tokens": completed * VLLM_OUT,
            "request_throughput": completed / duration, "request_goodput": None,
            "output_throughput": completed * VLLM_OUT / duration,
            "total_token_throughput": completed * (VLLM_IN + VLLM_OUT) / duration,
            "latencies": [latency] * completed, "queue_times": [0.0] * completed,
            "max_output_tokens_per_s": 1.1 * completed * VLLM_OUT / duration, "max_concurrent_requests": conc,
            "rtfx": 0.0,
            "mean_ttft_ms": ttft, "median_ttft_ms": ttft, "std_ttft_ms": 0.0, "p99_ttft_ms": ttft,
            "mean_tpot_ms": tpot, "median_tpot_ms": tpot, "std_tpot_ms": 0.0, "p99_tpot_ms": tpot,
            "mean_itl_ms": tpot, "median_itl_ms": tpot, "std_itl_ms": 0.0, "p99_itl_ms": tpot,
            "mean_client_queue_time_ms": 0.0, "median_client_queue_time_ms": 0.0, "std_client_queue_time_ms": 0.0,
            "p99_client_queue_time_ms": 0.0,
        }
        lines.append(json.dumps(result))
    return "\n".join(lines)  # --append-result: one object per line, newline between them


def nvidia_smi(variant: str) -> str:
    """`nvidia-smi --query-gpu=timestamp,index,name,power.draw --format=csv -lms 1000` over both runs."""
    rows = ["timestamp, index, name, power.draw [W]"]
    t, t_end = VLLM_T0 - 10, VLLM_T0 + 190
    n = 0
    while t <= t_end + 1e-9:
        for gpu in (0, 1):
            into = t - VLLM_T0
            if variant == "gaps" and gpu == 1 and GAP[0] < into < GAP[1]:
                continue
            if variant == "gaps" and gpu == 0 and SMALL_GAP[0] < into < SMALL_GAP[1]:
                continue
            stamp = t + (SKEW_S if variant == "skewed" else 0.0)
            rows.append(f"{_smi_time(stamp)}, {gpu}, NVIDIA H100 80GB HBM3, {vllm_power(gpu, t):.2f} W")
        n += 1
        t = VLLM_T0 - 10 + n * SMI_STEP
    return "\n".join(rows) + "\n"


def gllm_power(t: float) -> float:
    for start, duration, _s, _n, watts, *_ in GLLM_RUNS:
        if GLLM_T0 + start - 2 <= t <= GLLM_T0 + start + duration + 2:
            return watts
    return GLLM_IDLE_W


def _dist(value: float, count: int) -> dict:
    """A GuideLLM DistributionSummary of `count` equal values."""
    pct = {k: value for k in ("p001", "p01", "p05", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "p999")}
    return {"mean": value, "median": value, "mode": value, "variance": 0.0, "std_dev": 0.0, "min": value,
            "max": value, "count": count, "total_sum": value * count, "percentiles": pct, "pdf": None}


def _status(value: float, count: int) -> dict:
    empty = _dist(0.0, 0)
    return {"successful": _dist(value, count), "incomplete": empty, "errored": empty, "total": _dist(value, count)}


def guidellm_report() -> str:
    benchmarks = []
    for k, (start, duration, streams, n, _watts, ttft, itl) in enumerate(GLLM_RUNS):
        t0, t1 = GLLM_T0 + start, GLLM_T0 + start + duration
        latency = (ttft + itl * (GLLM_OUT - 1)) / 1000.0
        metrics = {
            "request_totals": {"successful": n, "incomplete": 0, "errored": 0, "total": n},
            "requests_per_second": _status(n / duration, n),
            "request_concurrency": _status(float(streams), n),
            "request_latency": _status(latency, n),
            "request_streaming_iterations_count": _status(float(GLLM_OUT), n),
            "prompt_token_count": _status(float(GLLM_IN), n),
            "output_token_count": _status(float(GLLM_OUT), n),
            "total_token_count": _status(float(GLLM_IN + GLLM_OUT), n),
            "time_to_first_token_ms": _status(ttft, n),
            "time_to_first_output_token_ms": _status(ttft, n),
            "time_per_output_token_ms": _status(latency * 1000.0 / GLLM_OUT, n),
            "inter_token_latency_ms": _status(itl, n),
            "prompt_tokens_per_second": _status(n * GLLM_IN / duration, n),
            "output_tokens_per_second": _status(n * GLLM_OUT / duration, n),
            "tokens_per_second": _status(n * (GLLM_IN + GLLM_OUT) / duration, n),
            "output_tokens_per_iteration": _status(1.0, n),
            "iter_tokens_per_iteration": _status(1.0, n),
        }
        benchmarks.append({
            "type_": "generative_benchmark",
            "config": {
                "id_": f"generated-{k}", "run_id": "generated-run", "run_index": k,
                "strategy": {"type_": "concurrent", "streams": streams, "startup_duration": 0.0},
                "constraints": {"max_seconds": {"max_duration": duration}}, "sample_requests": 0,
                "warmup": {"percent": None, "value": 2.0, "mode": "prefer_duration"},
                "cooldown": {"percent": None, "value": 2.0, "mode": "prefer_duration"},
                "prefer_response_metrics": True,
                "profile": {"type_": "concurrent", "streams": [r[2] for r in GLLM_RUNS]},
                "requests": {"note": GENERATED}, "backend": {"type_": "openai_http"}, "environment": {},
            },
            "scheduler_state": {"start_time": t0 - 2, "end_time": t1 + 2},
            "scheduler_metrics": {"start_time": t0 - 2, "request_start_time": t0 - 2, "measure_start_time": t0,
                                  "measure_end_time": t1, "request_end_time": t1 + 2, "end_time": t1 + 2,
                                  "requests_made": {"successful": n, "incomplete": 0, "errored": 0, "total": n}},
            "metrics": metrics,
            "requests": {"successful": [], "incomplete": [], "errored": [], "total": None},
            "start_time": t0, "end_time": t1, "duration": duration, "warmup_duration": 2.0, "cooldown_duration": 2.0,
        })
    report = {"args": {"target": "http://localhost:8000", "model": "meta-llama/Llama-3.1-8B-Instruct",
                       "profile": "concurrent", "rate": [r[2] for r in GLLM_RUNS], "outputs": ["json"]},
              "benchmarks": benchmarks}
    return json.dumps(report)


def dcgm_dump() -> str:
    """Scrapes of dcgm-exporter's /metrics once a second, each sample with its timestamp in milliseconds."""
    labels = ('gpu="0",UUID="GPU-00000000-0000-0000-0000-000000000000",pci_bus_id="00000000:18:00.0",'
              'device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="generated-host"')
    lines = []
    energy_mj = 5.0e9
    t = GLLM_T0 - 10
    while t <= GLLM_T0 + 80:
        ms = round(t * 1000)
        lines += ["# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).", "# TYPE DCGM_FI_DEV_POWER_USAGE gauge",
                  f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} {gllm_power(t):.3f} {ms}",
                  "# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).",
                  "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter",
                  f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{labels}}} {round(energy_mj)} {ms}"]
        energy_mj += _energy_j(gllm_power, t, t + 1.0) * 1000.0
        t += 1.0
    return "\n".join(lines) + "\n"


def _energy_j(power, a: float, b: float, steps: int = 1000) -> float:
    """Exact enough integral of a piecewise-constant power over [a, b] (midpoint rule, 1 ms steps)."""
    h = (b - a) / steps
    return sum(power(a + (i + 0.5) * h) for i in range(steps)) * h


def zeus_timeline() -> str:
    """json.dump of Zeus PowerMonitor.get_power_timeline(...): {gpu index: [[unix time, watts], ...]}, 5 Hz."""
    samples, n = [], 0
    while n * 0.2 <= 90:
        t = GLLM_T0 - 10 + n * 0.2
        samples.append([round(t, 3), gllm_power(t)])
        n += 1
    return json.dumps({"0": samples})


FILES = {
    "vllm_bench_results.json": vllm_results,
    "nvidia_smi_power.csv": lambda: nvidia_smi("plain"),
    "nvidia_smi_power_gaps.csv": lambda: nvidia_smi("gaps"),
    "nvidia_smi_power_skewed.csv": lambda: nvidia_smi("skewed"),
    "guidellm_benchmarks.json": guidellm_report,
    "dcgm_exporter_dump.txt": dcgm_dump,
    "zeus_power_timeline.json": zeus_timeline,
}


def main() -> None:
    for name, make in FILES.items():
        (HERE / name).write_text(make(), encoding="utf-8")
        print(f"wrote {HERE / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
