"""A mock OpenAI-compatible streaming server on 127.0.0.1 for the endpoint profiler's tests.

Each streamed request waits `prefill_s`, sends its first token, then one token every `token_s` on an
absolute schedule (first + k x token_s, so delays do not add up), then a usage chunk and [DONE]. Prompt
tokens are the prompt's whitespace-separated words (plus CHAT_OVERHEAD for chat). It can require an API
key, refuse `ignore_eos` (as a server without it would), fail with HTTP 500 from a given request on, and
expose vLLM-style /metrics with the number of requests in flight.

    with MockServer(prefill_s=0.1, token_s=0.02) as server:
        server.url  # http://127.0.0.1:PORT
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field

CHAT_OVERHEAD = 7


@dataclass
class MockConfig:
    prefill_s: float = 0.05
    token_s: float = 0.01
    model: str = "meta-llama/Llama-3.1-8B-Instruct"
    served_name: str | None = None  # the id /v1/models lists (default: model)
    api_key: str | None = None
    accept_ignore_eos: bool = True
    fail_from: int | None = None  # the n-th generation request (1-based) and all after it answer HTTP 500
    fail_max_tokens: int | None = None  # requests asking for this many tokens answer HTTP 500
    metrics: bool = True
    report_usage: bool = True  # False: no usage in any answer (token counts must come from the stream)
    engines: int = 1  # data-parallel engines shown in /metrics
    seen_auth: list = field(default_factory=list)
    generations: int = 0
    in_flight: int = 0


def make_app(cfg: MockConfig):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    def authorized(request) -> bool:
        cfg.seen_auth.append(request.headers.get("authorization"))
        return cfg.api_key is None or request.headers.get("authorization") == f"Bearer {cfg.api_key}"

    async def models(request):
        if not authorized(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        name = cfg.served_name or cfg.model
        return JSONResponse({"object": "list", "data": [{"id": name, "object": "model", "owned_by": "vllm",
                                                         "root": cfg.model, "max_model_len": 8192}]})

    async def version(request):
        return JSONResponse({"version": "mock-0.1"})

    async def metrics(request):
        if not cfg.metrics:
            return PlainTextResponse("not found", status_code=404)
        lines = ["# HELP vllm:num_requests_running Number of requests in model execution batches.",
                 "# TYPE vllm:num_requests_running gauge"]
        share = cfg.in_flight / cfg.engines
        lines += [f'vllm:num_requests_running{{engine="{e}",model_name="{cfg.model}"}} {share}'
                  for e in range(cfg.engines)]
        lines += [f'vllm:num_requests_waiting{{engine="{e}",model_name="{cfg.model}"}} 0.0' for e in range(cfg.engines)]
        return PlainTextResponse("\n".join(lines) + "\n")

    async def generate(request, chat: bool):
        if not authorized(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.json()
        if "ignore_eos" in body and not cfg.accept_ignore_eos:
            return JSONResponse({"error": {"message": "unknown field: ignore_eos"}}, status_code=400)
        cfg.generations += 1
        if (cfg.fail_from is not None and cfg.generations >= cfg.fail_from) or \
                (cfg.fail_max_tokens is not None and body.get("max_tokens") == cfg.fail_max_tokens):
            return JSONResponse({"error": {"message": "mock engine crashed: CUDA error"}}, status_code=500)
        text = body["messages"][0]["content"] if chat else body["prompt"]
        prompt_tokens = len(text.split()) + (CHAT_OVERHEAD if chat else 0)
        n = int(body.get("max_tokens", 16))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n}
        if not body.get("stream"):
            await asyncio.sleep(cfg.prefill_s)
            choice = {"index": 0, "message": {"role": "assistant", "content": "x " * n}} if chat else \
                {"index": 0, "text": "x " * n}
            return JSONResponse({"id": "mock", "choices": [choice], **({"usage": usage} if cfg.report_usage else {})})
        with_usage = bool((body.get("stream_options") or {}).get("include_usage")) and cfg.report_usage

        async def stream():
            cfg.in_flight += 1
            try:
                start = time.perf_counter()
                for k in range(n):
                    due = start + cfg.prefill_s + k * cfg.token_s
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    piece = {"index": 0, "delta": {"content": f"t{k} "}} if chat else {"index": 0, "text": f"t{k} "}
                    yield f"data: {json.dumps({'id': 'mock', 'choices': [piece]})}\n\n"
                if with_usage:
                    yield f"data: {json.dumps({'id': 'mock', 'choices': [], 'usage': usage})}\n\n"
                yield "data: [DONE]\n\n"
            finally:
                cfg.in_flight -= 1

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def completions(request):
        return await generate(request, chat=False)

    async def chat(request):
        return await generate(request, chat=True)

    return Starlette(routes=[Route("/v1/models", models), Route("/version", version), Route("/metrics", metrics),
                             Route("/v1/completions", completions, methods=["POST"]),
                             Route("/v1/chat/completions", chat, methods=["POST"])])


class MockServer:
    """The mock app served by uvicorn in a background thread, on a free port of 127.0.0.1."""

    def __init__(self, **config):
        self.cfg = MockConfig(**config)

    def __enter__(self) -> "MockServer":
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(make_app(self.cfg), log_level="error", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("mock server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


class MockServerProcess:
    """The mock server in its own process (no GIL shared with the client being timed); url only."""

    def __init__(self, prefill_s: float, token_s: float):
        self.args = (prefill_s, token_s)

    def __enter__(self) -> "MockServerProcess":
        import subprocess
        import sys

        self.proc = subprocess.Popen([sys.executable, __file__, *map(str, self.args)], stdout=subprocess.PIPE,
                                     text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.proc.kill()
            raise RuntimeError("mock server process did not start")
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def main() -> None:
    """`python tests/mock_openai.py PREFILL_S TOKEN_S`: serve until killed, printing the URL (for a subprocess)."""
    import sys

    prefill, token = float(sys.argv[1]), float(sys.argv[2])
    with MockServer(prefill_s=prefill, token_s=token) as server:
        print(server.url, flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
