"""`energylens profile --endpoint`: a mock OpenAI-compatible streaming server on 127.0.0.1 (tests/mock_openai.py)
with known prefill and per-token delays, and fake GPUs whose energy counters integrate a known power."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from energylens.data.schema import load_profiles  # noqa: E402
from energylens.profile.devices import FakeGpu  # noqa: E402
from energylens.profile.endpoint import (EndpointError, Load, RequestRecord, LevelRun, check_url,  # noqa: E402
                                         level_statistics, running_and_waiting)
from energylens.profile.endpoint_sweep import EndpointSpec, Level, run_endpoint_sweep  # noqa: E402
from energylens.profile.sweep import failed_path  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from mock_openai import MockServer, MockServerProcess  # noqa: E402

H100 = "NVIDIA H100 80GB HBM3"
# A long prefill keeps the client's own overhead (a few ms on a busy 2-core machine) far below 5% of it.
PREFILL_S, TOKEN_S, OUT = 0.4, 0.02, 12


def gpu(power=250.0, **kw):
    return FakeGpu(name=H100, power_w=power, **kw)


def spec(url, levels, **kw):
    kw.setdefault("min_window_s", 0.5)
    kw.setdefault("min_requests", 3)
    kw.setdefault("warmup_requests", 1)
    return EndpointSpec(url, levels, **kw)


# -- what a level measures -------------------------------------------------------------------------------------

def test_timings_and_energy_match_the_configured_server_and_power(tmp_path):
    out = tmp_path / "runs.csv"
    # a counter that moves every 10 ms: the window must last 100 steps (1 s) for 1% resolution
    gpus = [gpu(250.0, update_period_s=0.01), FakeGpu(index=1, name=H100, power_w=150.0)]
    with MockServerProcess(PREFILL_S, TOKEN_S) as server:  # its own process: no GIL shared with the client
        counts = run_endpoint_sweep(spec(server.url, [Level(Load("concurrency", 1), 32, OUT),
                                                      Level(Load("concurrency", 4), 32, OUT)], tp=2,
                                                min_requests=2),
                                    gpus, out, idle_seconds=0.1)
    assert counts == {"measured": 2, "skipped": 0, "failed": 0, "previously_failed": 0}
    df = pd.read_csv(out)
    for _, row in df.iterrows():
        assert row["ttft_s"] == pytest.approx(PREFILL_S, rel=0.05)
        assert row["raw_ttft_p50_s"] == pytest.approx(PREFILL_S, rel=0.05)
        assert row["itl_s"] == pytest.approx(TOKEN_S, rel=0.05)  # mean time per output token after the first
        assert row["raw_itl_p50_s"] == pytest.approx(TOKEN_S, rel=0.05)  # median gap between stream chunks
        assert row["raw_window_s"] >= 100 * row["raw_counter_update_s"] * (1 - 1e-9)  # 100 counter steps
        # energy: the counters integrate 250 W + 150 W
        assert row["raw_window_energy_j"] == pytest.approx(400.0 * row["raw_window_s"], rel=0.01)
        assert row["avg_power_w"] == pytest.approx(400.0, rel=0.01)
        assert row["energy_token_j"] * row["raw_tokens_in_window"] == pytest.approx(row["raw_window_energy_j"], rel=1e-9)
        # and per token it is the power over the throughput the delays allow: c x OUT tokens per request time
        request_s = PREFILL_S + (OUT - 1) * TOKEN_S
        assert row["energy_token_j"] == pytest.approx(400.0 / (row["batch_size"] * OUT / request_s), rel=0.05)
        assert row["input_tokens"] == 32 and row["output_tokens"] == OUT
        assert row["raw_input_tokens_from"] == "usage" and row["raw_output_tokens_from"] == "usage"
    assert df["batch_size"].tolist() == [1, 4]
    assert df["avg_batch_size"].round(1).tolist() == [1.0, 4.0]
    assert df["gpu_idle_w"].tolist() == pytest.approx([200.0, 200.0], rel=0.01)  # 400 W over 2 GPUs, before the sweep
    assert (df["source"] == "energylens-endpoint:vllm").all() and (df["num_gpus"] == 2).all() and (df["tp"] == 2).all()
    # found by polling: a poll late by more than a step misses one, which can only lengthen the estimate
    # (and the window: the safe side)
    assert all(0.0095 <= s <= 0.02 for s in df["raw_counter_update_s"])
    valid = load_profiles(out)  # rows validate against the schema
    assert valid["gpu"].unique().tolist() == ["H100-SXM"] and len(valid) == 2
    documented = _documented_columns()
    assert [c for c in df.columns if c.startswith("raw_") and c not in documented] == []


def _documented_columns() -> set:
    """The `code` names of docs/SCHEMA.md, `{a,b}` alternatives expanded."""
    import itertools
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "SCHEMA.md").read_text()
    names = set()
    for name in re.findall(r"`([a-z0-9_{},.]+)`", doc):
        parts = [p.split(",") for p in re.split(r"[{}]", name)]
        names.update("".join(combo) for combo in itertools.product(*parts))
    return names


def test_rate_level_and_chat_api(tmp_path):
    out = tmp_path / "runs.csv"
    with MockServer(prefill_s=0.05, token_s=0.01) as server:
        counts = run_endpoint_sweep(spec(server.url, [Level(Load("rate", 20.0), 16, 8)], api="chat",
                                         max_num_seqs=64), [gpu()], out, idle_seconds=0)
    assert counts["measured"] == 1
    row = pd.read_csv(out).iloc[0]
    assert row["raw_level"] == "rate=20" and row["batch_size"] == 64 and row["raw_batch_size_from"] == "--max-num-seqs"
    assert row["input_tokens"] == 16 and row["raw_api"] == "chat"  # the chat template's tokens are calibrated away
    assert 0.05 <= row["ttft_s"] < 0.1 and row["throughput_tok_s"] > 0  # the prefill delay, plus the client's own
    load_profiles(out)


def test_trace_replay_uses_the_traces_lengths(tmp_path):
    trace = tmp_path / "trace.csv"
    pd.DataFrame({"input_tokens": [10, 30, 50, 70], "output_tokens": [4, 6, 8, 10],
                  "arrival_s": [0.0, 0.05, 0.1, 0.15]}).to_csv(trace, index=False)
    from energylens.profile.workload import read_trace

    requests = read_trace(trace)
    out = tmp_path / "runs.csv"
    with MockServer(prefill_s=0.02, token_s=0.005) as server:
        counts = run_endpoint_sweep(spec(server.url, [Level(Load("concurrency", 2)), Level(Load("trace"))],
                                         trace=requests, trace_name=trace.name, min_requests=8), [gpu()], out,
                                    idle_seconds=0)
    assert counts["measured"] == 2
    df = pd.read_csv(out)
    assert df["raw_workload"].tolist() == ["trace:trace.csv"] * 2 and df["raw_level"].tolist() == ["concurrency=2",
                                                                                                  "rate=trace"]
    assert df["input_tokens"].between(10, 70).all() and df["output_tokens"].between(4, 10).all()


def test_server_without_usage_records_the_asked_and_streamed_lengths(tmp_path):
    trace = tmp_path / "trace.csv"
    pd.DataFrame({"input_tokens": [10, 30], "output_tokens": [4, 6]}).to_csv(trace, index=False)
    from energylens.profile.workload import read_trace

    out = tmp_path / "runs.csv"
    with MockServer(prefill_s=0.02, token_s=0.005, report_usage=False) as server:
        counts = run_endpoint_sweep(spec(server.url, [Level(Load("concurrency", 2))], trace=read_trace(trace),
                                         trace_name=trace.name, min_requests=6), [gpu()], out, idle_seconds=0)
    assert counts["measured"] == 1
    row = pd.read_csv(out).iloc[0]
    assert row["raw_input_tokens_from"] == "asked" and row["raw_output_tokens_from"] == "stream chunks"
    assert 10 <= row["input_tokens"] <= 30 and 4 <= row["output_tokens"] <= 6
    assert row["raw_prompt_calibration"].startswith("assumed")
    load_profiles(out)


def test_azure_trace_reads(data_dir):
    from energylens.profile.workload import read_trace

    requests = read_trace(data_dir / "azure-llm-trace-2023" / "AzureLLMInferenceTrace_conv.csv", limit=200)
    assert len(requests) == 200 and requests[0].arrival_s == 0.0
    assert all(r.input_tokens >= 1 and r.output_tokens >= 1 for r in requests)
    assert all(b.arrival_s >= a.arrival_s for a, b in zip(requests, requests[1:]))


def test_level_statistics_attribute_tokens_to_the_window():
    # two requests: one inside the window [10, 20], one straddling its end; 2 tokens per chunk (usage says so)
    a = RequestRecord(start=11.0, chunks=[12.0, 13.0, 14.0], end=14.5, prompt_tokens=100, completion_tokens=6)
    b = RequestRecord(start=18.0, chunks=[19.0, 21.0], end=22.0, prompt_tokens=100, completion_tokens=4)
    st = level_statistics(LevelRun([a, b], t0=10.0, t1=20.0))
    assert st["tokens_in_window"] == 3 * 2 + 1 * 2  # b's second chunk came after the window
    assert st["requests"] == 2 and st["ttft"]["mean"] == pytest.approx(1.0)
    assert st["tpot"]["mean"] == pytest.approx(((14 - 12) / 5 + (21 - 19) / 3) / 2)
    assert st["client_concurrency"] == pytest.approx((3.5 + 2.0) / 10)


# -- resume, failures, interruption ---------------------------------------------------------------------------

def test_resume_runs_nothing_twice(tmp_path):
    out = tmp_path / "runs.csv"
    first = [Level(Load("concurrency", 1), 16, 8), Level(Load("concurrency", 2), 16, 8)]
    with MockServer(prefill_s=0.02, token_s=0.005) as server:
        assert run_endpoint_sweep(spec(server.url, first), [gpu()], out, idle_seconds=0)["measured"] == 2
        before = server.cfg.generations
        again = run_endpoint_sweep(spec(server.url, first), [gpu()], out, idle_seconds=0)
        assert again == {"measured": 0, "skipped": 2, "failed": 0, "previously_failed": 0}
        assert server.cfg.generations == before  # nothing generated at all: no level ran again
        more = run_endpoint_sweep(spec(server.url, first + [Level(Load("concurrency", 3), 16, 8)]), [gpu()], out,
                                  idle_seconds=0)
    assert more["measured"] == 1 and more["skipped"] == 2
    df = pd.read_csv(out)
    assert df["raw_level"].tolist() == ["concurrency=1", "concurrency=2", "concurrency=3"]


def test_server_error_mid_sweep_fails_the_level_and_goes_on(tmp_path):
    out = tmp_path / "runs.csv"
    levels = [Level(Load("concurrency", 1), 16, 8), Level(Load("concurrency", 1), 16, 13),
              Level(Load("concurrency", 2), 16, 8)]
    with MockServer(prefill_s=0.02, token_s=0.005, fail_max_tokens=13) as server:
        counts = run_endpoint_sweep(spec(server.url, levels), [gpu()], out, idle_seconds=0)
        assert counts == {"measured": 2, "skipped": 0, "failed": 1, "previously_failed": 0}
        failed = pd.read_csv(failed_path(out))
        assert failed["raw_asked_output_tokens"].tolist() == [13]
        assert "HTTP 500" in failed["reason"].iloc[0] and "CUDA error" in failed["reason"].iloc[0]
        # on resume the failed level is skipped unless retried; retried and failing again, it keeps one record
        assert run_endpoint_sweep(spec(server.url, levels), [gpu()], out, idle_seconds=0)["previously_failed"] == 1
        again = run_endpoint_sweep(spec(server.url, levels), [gpu()], out, idle_seconds=0, retry_failed=True)
        assert again["failed"] == 1 and len(pd.read_csv(failed_path(out))) == 1
        server.cfg.fail_max_tokens = None  # the server is fixed: the retried level succeeds and leaves the file
        fixed = run_endpoint_sweep(spec(server.url, levels), [gpu()], out, idle_seconds=0, retry_failed=True)
    assert fixed["measured"] == 1 and not failed_path(out).exists()
    assert len(pd.read_csv(out)) == 3


DRIVER = """
import signal, sys
sys.path.insert(0, {tests!r})
from energylens.profile.devices import FakeGpu
from energylens.profile.endpoint import Load
from energylens.profile.endpoint_sweep import EndpointSpec, Level, run_endpoint_sweep
levels = [Level(Load("concurrency", c), 16, 8) for c in (1, 2, 3, 4)]
spec = EndpointSpec({url!r}, levels, min_window_s=1.5, min_requests=2, warmup_requests=1)
try:
    run_endpoint_sweep(spec, [FakeGpu(name="NVIDIA H100 80GB HBM3")], {out!r}, idle_seconds=0)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_sigint_mid_level_loses_no_completed_level(tmp_path):
    out = tmp_path / "runs.csv"
    with MockServer(prefill_s=0.02, token_s=0.005) as server:
        script = DRIVER.format(tests=str(Path(__file__).parent), url=server.url, out=str(out))
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        proc = subprocess.Popen([sys.executable, "-c", script], env=env)
        try:
            deadline = time.time() + 60
            while not (out.exists() and len(pd.read_csv(out)) >= 1):  # one level done, the next one running
                assert proc.poll() is None and time.time() < deadline, "the driver stopped before a level completed"
                time.sleep(0.05)
            time.sleep(0.5)  # inside the second level's window
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert code == 130
        kept = pd.read_csv(out)
        assert 1 <= len(kept) < 4 and not list(tmp_path.glob(".runs.csv.*.tmp"))  # no half-written file left
        load_profiles(out)
        levels = [Level(Load("concurrency", c), 16, 8) for c in (1, 2, 3, 4)]
        counts = run_endpoint_sweep(spec(server.url, levels), [gpu()], out, idle_seconds=0)
    assert counts["skipped"] == len(kept) and counts["measured"] == 4 - len(kept)
    df = pd.read_csv(out)
    assert sorted(df["raw_level"]) == [f"concurrency={c}" for c in (1, 2, 3, 4)]


# -- the command line and its safety rules ----------------------------------------------------------------------

@pytest.fixture
def fake_gpus(monkeypatch):
    import energylens.profile.devices as devices

    monkeypatch.setattr(devices, "open_gpus", lambda ids=None, extra="gpu": [gpu(300.0)])


def test_cli_sweep_and_api_key_never_written(tmp_path, run_cli, fake_gpus, monkeypatch):
    secret = "sk-test-5f0c1b9e7d"
    monkeypatch.setenv("MOCK_SERVER_KEY", secret)
    out = tmp_path / "runs.csv"
    with MockServer(prefill_s=0.02, token_s=0.005, api_key=secret) as server:
        code, text = run_cli("profile", "--endpoint", server.url + "/v1", "--concurrency", "1,2", "--input-tokens", 16,
                             "--output-tokens", 8, "--min-window", 0.5, "--requests", 3, "--warmup-requests", 1,
                             "--idle-seconds", 0, "--tp", 1, "--api-key-env", "MOCK_SERVER_KEY", "-o", out)
        assert code == 0 and "2 measured" in text and "windows of at least 0.5 s" in text, text
        assert f"Bearer {secret}" in server.cfg.seen_auth  # the key was sent ...
        assert secret not in text and secret not in out.read_text()  # ... and never printed or written
        code, text = run_cli("profile", "--endpoint", server.url, "--concurrency", 1, "-o", tmp_path / "r2.csv",
                             "--retries", 0)
        assert code == 2 and "HTTP 401" in text and len(text.strip().splitlines()) == 1  # without the key
    assert len(load_profiles(out)) == 2


def test_cli_refuses_bad_input_with_one_line(tmp_path, run_cli, fake_gpus, monkeypatch):
    out = tmp_path / "r.csv"
    cases = [
        (["--endpoint", "http://user:pw@127.0.0.1:8000"], "credentials"),
        (["--endpoint", "file:///etc/passwd"], "http(s) URL"),
        (["--endpoint", "http://127.0.0.1:9", "--rate", "0"], "--rate"),
        (["--endpoint", "http://127.0.0.1:9", "--tp", "1,2"], "--tp"),
        (["--endpoint", "http://127.0.0.1:9", "--plan", "x.csv"], "--plan"),
        (["--endpoint", "http://127.0.0.1:9", "--api-key-env", "ENERGYLENS_NO_SUCH_VAR"], "not set"),
        (["--endpoint", "http://127.0.0.1:9", "--rate", "trace"], "--trace"),
        (["--model", "m", "--concurrency", "4"], "--concurrency applies to --endpoint"),
    ]
    monkeypatch.delenv("ENERGYLENS_NO_SUCH_VAR", raising=False)
    for args, expected in cases:
        code, text = run_cli("profile", *args, "-o", out)
        assert code == 2 and expected in text and "Traceback" not in text, (args, text)
        assert len(text.strip().splitlines()) == 1 and not out.exists()


def test_unreachable_server_is_one_line(tmp_path, run_cli, fake_gpus):
    code, text = run_cli("profile", "--endpoint", "http://127.0.0.1:9", "--retries", 0, "-o", tmp_path / "r.csv")
    assert code == 2 and "did not answer" in text and len(text.strip().splitlines()) == 1


def test_server_without_ignore_eos_is_measured_by_its_real_lengths(tmp_path):
    out = tmp_path / "runs.csv"
    with MockServer(prefill_s=0.02, token_s=0.005, accept_ignore_eos=False, metrics=False) as server:
        assert run_endpoint_sweep(spec(server.url, [Level(Load("concurrency", 2), 16, 8)]), [gpu()], out,
                                  idle_seconds=0)["measured"] == 1
    row = pd.read_csv(out).iloc[0]
    assert not row["raw_ignore_eos"] and row["output_tokens"] == 8
    assert row["raw_avg_batch_from"] == "client requests in flight"  # no /metrics on this server


def test_data_parallel_degree_read_from_vllm_metrics(tmp_path):
    out = tmp_path / "runs.csv"
    gpus = [gpu(), FakeGpu(index=1, name=H100)]
    with MockServer(prefill_s=0.02, token_s=0.005, engines=2) as server:
        run_endpoint_sweep(spec(server.url, [Level(Load("concurrency", 2), 16, 8)]), gpus, out, idle_seconds=0)
    row = pd.read_csv(out).iloc[0]
    assert row["dp"] == 2 and row["num_gpus"] == 2 and "metrics" in row["raw_deployment_from"]


def test_check_url_and_metrics_parsing():
    assert check_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000"
    assert check_url("https://host/prefix/v1/chat/completions") == "https://host/prefix"
    with pytest.raises(EndpointError):
        check_url("http://127.0.0.1:8000/?key=abc")
    text = ('vllm:num_requests_running{engine="0",model_name="m"} 3.0\n'
            'vllm:num_requests_running{engine="1",model_name="m"} 5.0\n'
            'vllm:num_requests_waiting{engine="0",model_name="m"} 1.0\n'
            'vllm:num_requests_running_total 99\n')
    assert running_and_waiting(text) == (8.0, 1.0)
    assert running_and_waiting("sglang:num_running_reqs 4\nsglang:num_queue_reqs 2\n") == (4.0, 2.0)
    assert running_and_waiting("# nothing here\n") == (None, None)


def test_profile_without_gpu_names_allow_cpu(run_cli, tmp_path, monkeypatch):
    import energylens.profile.devices as devices
    from energylens.errors import NoGpuError

    def none(ids=None):
        raise NoGpuError(f"no NVIDIA GPU found: nvidia-ml-py is not installed, or {devices.NO_GPU_HINT}")

    monkeypatch.setattr(devices, "open_gpus", none)
    code, text = run_cli("profile", "--engine", "transformers", "--model", "meta-llama/Llama-3.1-8B-Instruct",
                         "--batch", 1, "-o", tmp_path / "r.csv")
    assert code == 2 and "--allow-cpu" in text


def test_no_gpu_message_says_how_to_proceed(monkeypatch):
    from energylens.errors import NoGpuError
    from energylens.profile.devices import open_gpus

    monkeypatch.setitem(sys.modules, "pynvml", None)  # as without nvidia-ml-py: `import pynvml` fails
    with pytest.raises(NoGpuError, match="nvidia-ml-py is not installed.*--allow-cpu"):
        open_gpus()


def test_gpu_ids_parse_indices_and_uuids():
    from energylens.errors import EnergyLensError
    from energylens.profile.devices import parse_gpu_ids

    assert parse_gpu_ids("0,1,1") == [0, 1]
    assert parse_gpu_ids("GPU-5f3a1c2e-0000-1111-2222-333344445555, 2") == ["GPU-5f3a1c2e-0000-1111-2222-333344445555", 2]
    for bad in ("", "0,,1", "-1", "gpu0", "0;1"):
        with pytest.raises(EnergyLensError, match="--gpus"):
            parse_gpu_ids(bad)


def test_window_rule_keeps_counter_steps_below_one_percent():
    from energylens.profile.monitor import EnergyMonitor, counter_update_period_s, min_window_s

    g = FakeGpu(power_w=200.0, update_period_s=0.01)
    period = counter_update_period_s([g, FakeGpu(index=1)], seconds=0.3)
    assert 0.0095 <= period <= 0.02  # a poll delayed past a step (a busy machine) can only lengthen it
    window = min_window_s(period, floor_s=0.1)
    assert window == pytest.approx(100 * period)
    mon = EnergyMonitor([g])
    mon.begin_window("w")
    time.sleep(window)
    m = mon.end_window("w")
    assert m.total_energy_j == pytest.approx(200.0 * m.time_s, rel=0.01)


def test_mock_server_json_is_what_the_client_expects():
    # the usage chunk and [DONE] close the stream as vLLM's do
    import httpx

    with MockServer(prefill_s=0.0, token_s=0.0) as server:
        r = httpx.post(server.url + "/v1/completions", json={"model": "m", "prompt": "a b c", "max_tokens": 2,
                                                               "stream": True, "stream_options": {"include_usage": True}})
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and json.loads(events[-2])["usage"]["prompt_tokens"] == 3


def test_damaged_output_is_named_on_resume(tmp_path):
    from energylens.errors import DataError
    from energylens.profile.endpoint_sweep import KEY, TEXT_KEY, key_of
    from energylens.profile.sweep import _keys_of

    out = tmp_path / "runs.csv"
    row = {"model": "m", "tp": 1, "pp": 1, "ep": 1, "dp": 1, "raw_level": "concurrency=8", "raw_workload": "fixed",
           "raw_asked_input_tokens": 128, "raw_asked_output_tokens": 64}
    local = {"model": "m", "tp": 1, "pp": 1, "ep": 1, "dp": 1}  # a local-sweep row in the same file: not a level
    pd.DataFrame([row, local]).to_csv(out, index=False)
    assert _keys_of(out, key_of, KEY, TEXT_KEY) == {("m", 1, 1, 1, 1, "concurrency=8", "fixed", 128, 64)}
    pd.DataFrame([{**row, "raw_asked_input_tokens": "many"}]).to_csv(out, index=False)
    with pytest.raises(DataError, match="row 1, column 'raw_asked_input_tokens'"):
        _keys_of(out, key_of, KEY, TEXT_KEY)
