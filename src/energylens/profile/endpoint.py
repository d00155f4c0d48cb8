"""Drive a running OpenAI-compatible server (vLLM, SGLang, TGI, TensorRT-LLM, ...) and time its stream.

Safe by default: only the URL given is contacted (no redirects followed, no proxy from the environment),
every request has bounded timeouts, probes are retried a bounded number of times, and an API key is
sent only when `--api-key-env NAME` names the environment variable that holds it (never printed, never
written).

One load level runs in three phases. Warm-up: requests start (a fixed number kept in flight, staggered over
one request's latency, or Poisson arrivals at a rate) until `warmup_requests` have completed, so that every
slot has cycled once and the server's batch is mixed. Steady state: the energy window is open until it has lasted `min_window_s` (long
enough for the energy counter's steps to stay below 1%, monitor.min_window_s) and `min_requests`
requests that started in it have completed; it closes on the next completion. Drain: no new request starts; those in flight finish (they
count for latency, not for energy). Output tokens are attributed to the window by the arrival times of
their stream chunks, so the energy per token is the window's energy over the tokens produced in it.
"""
from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import EnergyLensError
from .workload import CALIBRATION_WORDS, Calibration, TraceRequest, fit_calibration, prompt_text

API_PATHS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
CONNECT_TIMEOUT_S = 5.0
METRICS_PERIOD_S = 1.0  # how often /metrics is read during a window (where the server exposes it)
METRICS_TIMEOUT_S = 2.0
ERROR_ECHO = 200  # characters of a server's error body kept in a failure reason


class EndpointError(EnergyLensError):
    """The server cannot be profiled: bad URL, unreachable, or it refuses the requests the profiler sends."""


def check_url(url: str) -> str:
    """The server's root URL (scheme://host:port[/prefix], without a trailing /v1); refuses what is not plain
    http(s) or carries credentials (an API key goes in an environment variable, --api-key-env)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(f"--endpoint expects an http(s) URL such as http://127.0.0.1:8000, got '{url[:80]}'")
    if parts.username or parts.password:
        raise EndpointError("--endpoint: put no credentials in the URL; give the name of the environment variable "
                            "that holds the API key with --api-key-env")
    if parts.query or parts.fragment:
        raise EndpointError("--endpoint expects the server's base URL, without a query or fragment")
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        if path.endswith("/v1" + suffix):
            path = path[: -len(suffix)]
    if path.endswith("/v1"):
        path = path[:-3]
    return f"{parts.scheme}://{parts.netloc}{path}"


@dataclass
class ServerInfo:
    """What the server says about itself (/v1/models, and /version and /metrics where it has them)."""

    models: list[str]
    served_model: str
    root: str | None = None  # the model path or id behind the served name (vLLM: root)
    owned_by: str | None = None
    max_model_len: int | None = None
    engine: str = "unknown"
    version: str | None = None
    metrics: bool = False  # /metrics exposes the engine's running-request gauge
    engines_in_metrics: int | None = None  # distinct `engine` labels of vLLM's gauges: data-parallel engines


@dataclass
class RequestRecord:
    """One request as the client saw it: perf_counter times of start, each content chunk, and end."""

    start: float
    chunks: list[float] = field(default_factory=list)
    end: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    asked_input_tokens: int | None = None  # what the prompt was built for (used where the server reports no usage)

    @property
    def ok(self) -> bool:
        return self.error is None and self.end is not None and bool(self.chunks)

    @property
    def tokens(self) -> int:
        return self.completion_tokens if self.completion_tokens else len(self.chunks)

    @property
    def tokens_per_chunk(self) -> float:
        return self.tokens / len(self.chunks) if self.chunks else 0.0


def _metric_values(text: str, name: str) -> dict[str, float]:
    """{label text: value} of one Prometheus metric in /metrics text."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name) and (len(line) == len(name) or line[len(name)] in "{ "):
            m = re.match(re.escape(name) + r"(\{[^}]*\})?\s+(\S+)", line)
            if m:
                try:
                    out[m.group(1) or ""] = float(m.group(2))
                except ValueError:
                    pass
    return out


def running_and_waiting(text: str) -> tuple[float | None, float | None]:
    """Requests the server is running and queueing, summed over its engines (vLLM and SGLang gauges)."""
    for running, waiting in (("vllm:num_requests_running", "vllm:num_requests_waiting"),
                             ("sglang:num_running_reqs", "sglang:num_queue_reqs")):
        r = _metric_values(text, running)
        if r:
            w = _metric_values(text, waiting)
            return sum(r.values()), (sum(w.values()) if w else None)
    return None, None


ENDPOINT_EXTRA = "endpoint"  # the extra of pyproject.toml that brings httpx and nvidia-ml-py


def require_httpx():
    """The httpx module, or the one-line error naming the extra that installs it."""
    try:
        import httpx
    except ImportError:
        raise EnergyLensError(f"profiling an endpoint needs httpx (pip install 'energylens[{ENDPOINT_EXTRA}]')") from None
    return httpx


class Client:
    """An httpx client bound to one server, with the profiler's safety rules."""

    def __init__(self, url: str, api: str = "completions", *, timeout_s: float = 120.0, retries: int = 2,
                 api_key: str | None = None, max_connections: int = 512):
        httpx = require_httpx()
        if api not in API_PATHS:
            raise EndpointError(f"--api must be one of {', '.join(API_PATHS)}, got '{api}'")
        self.httpx = httpx
        self.root, self.api, self.retries = check_url(url), api, int(retries)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(
            base_url=self.root, headers=headers, follow_redirects=False, trust_env=False,
            timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
            limits=httpx.Limits(max_connections=max_connections + 8, max_keepalive_connections=max_connections + 8))
        self.served_model: str | None = None
        self.ignore_eos = True
        self.usage_in_stream = True

    async def close(self):
        await self.http.aclose()

    def _where(self, path: str) -> str:
        return f"{self.root}{path}"

    async def get(self, path: str, *, retries: int | None = None, timeout: float | None = None, optional=False):
        """GET with bounded retries on connection errors and 5xx; None for a 404 when `optional`."""
        attempts = (self.retries if retries is None else retries) + 1
        last = None
        for attempt in range(attempts):
            try:
                r = await self.http.get(path, **({"timeout": timeout} if timeout else {}))
            except self.httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {str(exc)[:ERROR_ECHO] or 'no answer'}"
            else:
                if r.status_code < 500:
                    if optional and r.status_code >= 400:
                        return None
                    if r.status_code >= 400:
                        raise EndpointError(f"{self._where(path)} answered HTTP {r.status_code}: {_body(r.text)}")
                    return r
                last = f"HTTP {r.status_code}: {_body(r.text)}"
            if attempt + 1 < attempts:
                await asyncio.sleep(0.5 * 2 ** attempt)
        if optional:
            return None
        raise EndpointError(f"{self._where(path)} did not answer after {attempts} tries ({last})")

    async def probe(self, model: str | None) -> ServerInfo:
        """Models, engine and version, and whether /metrics shows the running batch."""
        r = await self.get("/v1/models")
        try:
            data = r.json().get("data") or []
            entries = [d for d in data if isinstance(d, dict) and isinstance(d.get("id"), str)]
        except (ValueError, AttributeError):
            entries = []
        if not entries:
            raise EndpointError(f"{self._where('/v1/models')} lists no model; is this an OpenAI-compatible server?")
        ids = [d["id"] for d in entries]
        if model is not None:
            pick = next((d for d in entries if model in (d["id"], d.get("root"))), None)
            if pick is None:
                raise EndpointError(f"the server does not serve '{model}' (it serves {', '.join(ids)[:200]})")
        elif len(entries) == 1:
            pick = entries[0]
        else:
            raise EndpointError(f"the server serves several models ({', '.join(ids)[:200]}); choose one with --served-model")
        info = ServerInfo(ids, pick["id"], pick.get("root") if isinstance(pick.get("root"), str) else None,
                          pick.get("owned_by") if isinstance(pick.get("owned_by"), str) else None)
        if isinstance(pick.get("max_model_len"), int):
            info.max_model_len = pick["max_model_len"]
        version = await self.get("/version", retries=0, optional=True, timeout=METRICS_TIMEOUT_S)
        if version is not None:
            try:
                info.version = str(version.json().get("version"))[:40]
            except (ValueError, AttributeError):
                pass
        metrics = await self.get("/metrics", retries=0, optional=True, timeout=METRICS_TIMEOUT_S)
        text = metrics.text if metrics is not None else ""
        running, _ = running_and_waiting(text)
        info.metrics = running is not None
        if "vllm:" in text:
            info.engine = "vllm"
            engines = {m.group(1) for m in re.finditer(r'vllm:num_requests_running\{[^}]*engine="([^"]*)"', text)}
            info.engines_in_metrics = len(engines) or None
        elif "sglang:" in text:
            info.engine = "sglang"
        elif info.owned_by:
            info.engine = re.sub(r"[^A-Za-z0-9_.-]", "", info.owned_by)[:40] or "unknown"
        self.served_model = info.served_model
        return info

    def body(self, text: str, max_tokens: int, stream: bool = True) -> dict:
        body = {"model": self.served_model, "max_tokens": int(max_tokens), "stream": stream}
        if self.api == "completions":
            body["prompt"] = text
        else:
            body["messages"] = [{"role": "user", "content": text}]
        if stream and self.usage_in_stream:
            body["stream_options"] = {"include_usage": True}
        if self.ignore_eos:
            body["ignore_eos"] = True  # vLLM, SGLang: generate max_tokens whatever the text says
        return body

    async def negotiate(self) -> None:
        """Drop the request fields the server refuses (ignore_eos, stream_options), with a 2-token request."""
        path = API_PATHS[self.api]
        for _ in range(3):
            rec = RequestRecord(time.perf_counter())
            status, text = await self.stream(self.body("1 2 3", 2), rec)
            if status == 200 and rec.error is None:
                return
            refused = status in (400, 422) and text
            if refused and self.ignore_eos and "ignore_eos" in text:
                self.ignore_eos = False
            elif refused and self.usage_in_stream and ("stream_options" in text or "include_usage" in text):
                self.usage_in_stream = False
            elif refused and self.ignore_eos:
                self.ignore_eos = False
            else:
                raise EndpointError(f"{self._where(path)} refused a streaming request: {rec.error or status}")
        raise EndpointError(f"{self._where(path)} refused every form of a streaming request")

    async def calibrate(self) -> Calibration:
        """tokens = a + b x words from the prompt_tokens the server reports for two prompt sizes."""
        path = API_PATHS[self.api]
        counts = []
        rng = random.Random(12345)
        for words in CALIBRATION_WORDS:
            try:
                r = await self.http.post(path, json=self.body(prompt_text(words, rng, words), 1, stream=False))
                usage = r.json().get("usage") if r.status_code == 200 else None
                tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
            except (self.httpx.HTTPError, ValueError, AttributeError):
                tokens = None
            if not isinstance(tokens, (int, float)) or tokens <= 0:
                return Calibration(0.0, 1.0, "assumed")
            counts.append((words, float(tokens)))
        return fit_calibration(counts)

    async def metrics_sample(self) -> tuple[float | None, float | None]:
        try:
            r = await self.http.get("/metrics", timeout=METRICS_TIMEOUT_S)
        except self.httpx.HTTPError:
            return None, None
        return running_and_waiting(r.text) if r.status_code == 200 else (None, None)

    async def stream(self, body: dict, rec: RequestRecord) -> tuple[int | None, str]:
        """Send one streaming request, filling `rec`; returns (HTTP status, error body)."""
        path = API_PATHS[self.api]
        rec.start = time.perf_counter()
        status, text = None, ""
        try:
            async with self.http.stream("POST", path, json=body) as r:
                status = r.status_code
                if status != 200:
                    text = (await r.aread()).decode("utf-8", "replace")
                    rec.error = f"HTTP {status} from {path}: {_body(text)}"
                    return status, text
                async for line in r.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    now = time.perf_counter()
                    try:
                        obj = json.loads(data)
                    except ValueError:
                        rec.error = f"the stream of {path} carried invalid JSON: {_body(data)}"
                        break
                    if not isinstance(obj, dict):
                        continue
                    if obj.get("error"):
                        rec.error = f"the server reported an error mid-stream: {_body(json.dumps(obj['error']))}"
                        break
                    for choice in obj.get("choices") or []:
                        piece = choice.get("text") if self.api == "completions" else (choice.get("delta") or {}).get(
                            "content")
                        if piece:
                            rec.chunks.append(now)
                            break
                    usage = obj.get("usage")
                    if isinstance(usage, dict):
                        rec.prompt_tokens = usage.get("prompt_tokens") or rec.prompt_tokens
                        rec.completion_tokens = usage.get("completion_tokens") or rec.completion_tokens
        except self.httpx.HTTPError as exc:
            rec.error = f"{type(exc).__name__} from {path}: {_body(str(exc)) or 'no answer'}"
        rec.end = time.perf_counter()
        if rec.error is None and not rec.chunks:
            rec.error = f"{path} streamed no token"
        return status, text


def _body(text: str) -> str:
    return " ".join(str(text).split())[:ERROR_ECHO]


# -- one load level -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Load:
    kind: str  # concurrency, rate or trace (arrival times of the trace)
    value: float | None = None

    @property
    def label(self) -> str:
        if self.kind == "concurrency":
            return f"concurrency={int(self.value)}"
        if self.kind == "rate":
            return f"rate={self.value:g}"
        return "rate=trace"


@dataclass(frozen=True)
class WindowRule:
    min_window_s: float
    min_requests: int
    warmup_requests: int
    max_window_s: float = 3600.0
    drain_timeout_s: float = 120.0
    max_in_flight: int = 4096


@dataclass
class LevelRun:
    records: list[RequestRecord]
    t0: float | None = None
    t1: float | None = None
    measurement: object = None  # monitor.Measurement of the steady-state window
    server_samples: list = field(default_factory=list)
    error: str | None = None
    warmup_completed: int = 0


class Workload:
    """The (prompt, max_tokens) of each request of a level: fixed asked lengths, or a trace's, in order."""

    def __init__(self, calibration: Calibration, input_tokens: int | None, output_tokens: int | None,
                 trace: list[TraceRequest] | None, seed: int = 0):
        self.cal, self.fixed = calibration, (input_tokens, output_tokens)
        self.trace, self.rng, self.serial = trace, random.Random(seed), 0

    def next(self) -> tuple[str, int, int]:
        """(prompt, max_tokens, the prompt tokens it was built for)."""
        self.serial += 1
        if self.trace:
            req = self.trace[(self.serial - 1) % len(self.trace)]
            tokens_in, tokens_out = req.input_tokens, req.output_tokens
        else:
            tokens_in, tokens_out = self.fixed
        return prompt_text(self.cal.words_for(tokens_in), self.rng, self.serial), tokens_out, tokens_in

    def gap_s(self, index: int) -> float:
        """Seconds between trace arrivals `index - 1` and `index` (cycling: 0 at each start of the trace)."""
        n = len(self.trace)
        a, b = self.trace[(index - 1) % n].arrival_s, self.trace[index % n].arrival_s
        return max(b - a, 0.0) if index % n else 0.0


async def run_level(client: Client, load: Load, workload: Workload, rule: WindowRule, begin, end,
                    server_metrics: bool, seed: int = 0) -> LevelRun:
    """Warm up, hold the steady-state window (begin() ... end() -> Measurement), drain; see the module docstring."""
    run = LevelRun([])
    # completions counted for the warm-up: those after every slot has started (open loads: from the start)
    state = {"completed": 0, "in_window_done": 0, "stop": False, "ramped": load.kind != "concurrency"}
    changed = asyncio.Event()
    tasks: set[asyncio.Task] = set()

    def finished(rec: RequestRecord) -> None:
        if rec.error is not None and run.error is None:
            run.error = rec.error
        if rec.ok and state["ramped"]:
            state["completed"] += 1
            if run.t0 is not None and rec.start >= run.t0 and run.t1 is None:
                state["in_window_done"] += 1
        changed.set()

    async def one() -> None:
        text, max_tokens, asked = workload.next()
        rec = RequestRecord(time.perf_counter(), asked_input_tokens=asked)
        run.records.append(rec)
        await client.stream(client.body(text, max_tokens), rec)
        finished(rec)

    async def closed_loop(delay: float) -> None:
        await asyncio.sleep(delay)
        while not state["stop"] and run.error is None:
            await one()

    def spawn() -> None:
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def open_loop() -> None:
        rng = random.Random(seed)
        index = 0
        while not state["stop"] and run.error is None:
            if load.kind == "rate":
                await asyncio.sleep(rng.expovariate(load.value))
            else:  # the trace's own gaps: its first request at once, then each after its predecessor's gap
                await asyncio.sleep(workload.gap_s(index))
                index += 1
            if state["stop"]:
                break
            if len(tasks) >= rule.max_in_flight:
                run.error = (f"more than {rule.max_in_flight} requests in flight: the server does not keep up with "
                             f"{load.label}")
                changed.set()
                break
            spawn()

    async def poll_metrics() -> None:
        while run.t1 is None and not state["stop"]:
            running, waiting = await client.metrics_sample()
            if run.t0 is not None and run.t1 is None and running is not None:
                run.server_samples.append((running, waiting))
            await asyncio.sleep(METRICS_PERIOD_S)

    async def wait_until(condition, deadline: float | None = None) -> bool:
        while True:
            changed.clear()  # no await between this and the checks: no completion can slip through
            if condition():
                return True
            if run.error is not None:
                return False
            timeout = None if deadline is None else deadline - time.perf_counter()
            if timeout is not None and timeout <= 0:
                return False
            try:
                await asyncio.wait_for(changed.wait(), timeout=None if timeout is None else min(timeout, 1.0))
            except asyncio.TimeoutError:
                pass

    async def window_end(deadline: float) -> bool:
        """Wait for the completion that ends the window: the first once it has lasted min_window_s and
        min_requests started in it have completed. Ending on a completion keeps the window in step with the
        load's own cycle (a single slot's window then holds whole requests)."""
        while True:
            changed.clear()
            if run.error is not None:
                return False
            now = time.perf_counter()
            if now >= deadline:
                return False
            try:
                await asyncio.wait_for(changed.wait(), timeout=min(1.0, deadline - now))
            except asyncio.TimeoutError:
                continue
            if time.perf_counter() - run.t0 >= rule.min_window_s and state["in_window_done"] >= rule.min_requests:
                return True

    if load.kind == "concurrency":
        # One request alone gives its latency L; the slots then start L / C apart, so that they do not run in
        # lockstep (all prefilling, then all decoding), which a window would sample unevenly.
        await one()
        first = run.records[-1]
        latency = (first.end - first.start) if first.ok else 0.0
        slots = int(load.value)
        for i in range(slots if run.error is None else 0):
            task = asyncio.create_task(closed_loop(i * latency / slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        async def ramped() -> None:
            await asyncio.sleep((slots - 1) * latency / slots)
            state["ramped"] = True

        ramp = asyncio.create_task(ramped())
        tasks.add(ramp)
        ramp.add_done_callback(tasks.discard)
    else:
        driver = asyncio.create_task(open_loop())
        tasks.add(driver)
        driver.add_done_callback(tasks.discard)
    poller = asyncio.create_task(poll_metrics()) if server_metrics else None
    try:
        if await wait_until(lambda: state["completed"] >= rule.warmup_requests):
            run.warmup_completed = state["completed"]
            begin()
            run.t0 = time.perf_counter()
            deadline = run.t0 + rule.max_window_s

            reached = await window_end(deadline)
            if run.error is None:
                run.measurement = end()
                run.t1 = time.perf_counter()
                if not reached:
                    run.error = (f"only {state['in_window_done']} of the {rule.min_requests} requests the window needs "
                                 f"completed within {rule.max_window_s:g} s")
        state["stop"] = True
        if run.error is None:
            pending = [t for t in tasks if not t.done()]
            if pending:
                done, still = await asyncio.wait(pending, timeout=rule.drain_timeout_s)
                for t in still:
                    t.cancel()
    finally:
        state["stop"] = True
        for t in list(tasks):
            t.cancel()
        if poller is not None:
            poller.cancel()
        await asyncio.gather(*tasks, *([poller] if poller else []), return_exceptions=True)
    return run


# -- what a level measured -----------------------------------------------------------------------------------

def _percentiles(values: list[float]) -> dict:
    import numpy as np

    if not values:
        return {"mean": math.nan, "p50": math.nan, "p90": math.nan, "p99": math.nan}
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "p50": float(np.percentile(arr, 50)), "p90": float(np.percentile(arr, 90)),
            "p99": float(np.percentile(arr, 99))}


def level_statistics(run: LevelRun) -> dict:
    """Latencies of the requests that started in the window; tokens, throughput and concurrency of the window."""
    t0, t1 = run.t0, run.t1
    length = t1 - t0
    ok = [r for r in run.records if r.ok]
    started = [r for r in ok if t0 <= r.start <= t1]
    tokens_in_window = sum(sum(1 for c in r.chunks if t0 <= c <= t1) * r.tokens_per_chunk for r in ok)
    busy = sum(max(0.0, min(r.end if r.end is not None else t1, t1) - max(r.start, t0)) for r in run.records)
    ttft = [r.chunks[0] - r.start for r in started]
    tpot = [(r.chunks[-1] - r.chunks[0]) / (r.tokens - 1) for r in started if r.tokens > 1 and len(r.chunks) > 1]
    gaps = [b - a for r in started for a, b in zip(r.chunks, r.chunks[1:])]
    e2e = [r.end - r.start for r in started]
    prompt = [r.prompt_tokens for r in started if r.prompt_tokens]
    asked = [r.asked_input_tokens for r in started if r.asked_input_tokens]
    out = {
        "requests": len(started), "tokens_in_window": tokens_in_window, "window_s": length,
        "throughput_tok_s": tokens_in_window / length, "client_concurrency": busy / length,
        "output_tokens": (sum(r.tokens for r in started) / len(started)) if started else math.nan,
        "input_tokens_reported": len(prompt) == len(started) and bool(started),
        "output_tokens_reported": all(r.completion_tokens for r in started) and bool(started),
        "peak_in_flight": _peak(run.records, t0, t1),
        "ttft": _percentiles(ttft), "tpot": _percentiles(tpot), "itl": _percentiles(gaps), "e2e": _percentiles(e2e),
    }
    # prompt lengths as the server counted them; where it reported none, the lengths the prompts were built for
    use = prompt if out["input_tokens_reported"] else asked
    out["input_tokens"] = (sum(use) / len(use)) if use else math.nan
    samples = [s for s in run.server_samples if s[0] is not None]
    out["server_samples"] = len(samples)
    out["server_running"] = (sum(s[0] for s in samples) / len(samples)) if samples else math.nan
    waits = [s[1] for s in samples if s[1] is not None]
    out["server_waiting"] = (sum(waits) / len(waits)) if waits else math.nan
    return out


def _peak(records: list[RequestRecord], t0: float, t1: float) -> int:
    """Most requests in flight at once during [t0, t1]."""
    events = []
    for r in records:
        a, b = max(r.start, t0), min(r.end if r.end is not None else t1, t1)
        if b > a:
            events += [(a, 1), (b, -1)]
    peak = level = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        level += step
        peak = max(peak, level)
    return peak
