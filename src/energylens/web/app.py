"""The explorer's ASGI app (FastAPI): one page, its vendored assets, and a JSON API mirroring the CLI.

Errors: an EnergyLensError (bad input) is a 400 whose body {"error": "..."} holds the CLI's one-line
message without its `error:` prefix, naming the JSON field where the CLI names its option (the request
layer spells it so); an unreadable request a 400/415/422 in one line, a
body over the upload limit a 413, one not sent in time a 408, a server at its limit of heavy requests a
429, a request over its time a 503; anything else a 500 that names the error in one line, never a traceback.

Defences, all in `Guard` (an ASGI middleware in front of everything):
* Host: only the names the server answers to (`allowed_hosts`; default the loopback names), so that a web
  page whose name was rebound to this machine (DNS rebinding) gets 400; a POST whose Origin is another
  site gets 403, and JSON routes take only a JSON content type (a cross-site form or text/plain POST: 415).
* The body is read whole before the app sees it, at most `max_upload_bytes` (Content-Length or not: 413)
  and within `body_timeout_s` (408); a client that leaves meanwhile is dropped without a log line.
* Heavy routes (recommend, fit) run at most `max_heavy` at a time (429 beyond), each cut at
  `request_timeout_s` (503; its thread finishes, still counted, so memory stays bounded by the caps).
"""
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import EnergyLensError
from ..model.modelfile import load_model
from ..recommendation.request import RequestError
from . import service

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # a config.json is a few kB; a profiling CSV of 10,000 rows about 2 MB
BODY_TIMEOUT_S = 10.0  # to send a whole body: 8 MB at 1 MB/s
REQUEST_TIMEOUT_S = 60.0  # for the answer (a recommendation at the candidate cap takes a few seconds)
MAX_HEAVY = 2  # recommend and fit requests at once: each may hold ~2 GB at the candidate cap
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
JSON_ROUTES = ("/api/recommend", "/api/predict", "/api/explain")
UPLOAD_ROUTES = ("/api/upload/config", "/api/upload/profile")
HEAVY_ROUTES = ("/api/recommend", "/api/upload/profile")


def _one_line(text) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())[:1000]


def error(status: int, message, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": _one_line(message)}, status_code=status, headers=headers)


def host_name(value: str) -> str:
    """The host of a Host header or an Origin's netloc, lower case, without port or IPv6 brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: the checks of the module docstring, before the app reads anything."""

    def __init__(self, app, limit: int, allowed_hosts, body_timeout_s: float):
        self.app, self.limit, self.body_timeout_s = app, limit, body_timeout_s
        hosts = {host_name(h) for h in allowed_hosts}
        self.any_host = "*" in hosts
        self.hosts = hosts - {"*"}

    def _allowed(self, host: str) -> bool:
        return self.any_host or host_name(host) in self.hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {}
        for k, v in scope.get("headers") or []:
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await refusal(scope, receive, send)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        body = await self._read_body(headers, receive)
        if isinstance(body, JSONResponse):
            return await body(scope, receive, send)
        if body is None:  # the client left: nothing to answer
            return None
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    def _refusal(self, scope, headers) -> JSONResponse | None:
        if not self._allowed(headers.get("host", "")):
            return error(400, f"this server does not answer for host {headers.get('host', '')[:80]!r} "
                              "(start it with --allowed-host NAME to add one)")
        if scope["method"] == "POST":
            origin = headers.get("origin")
            if origin is not None and origin != "null" and not self._allowed(urlsplit(origin).netloc):
                return error(403, f"cross-origin request from {origin[:80]!r} refused")
            if origin == "null":
                return error(403, "cross-origin request from an opaque origin refused")
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            path = scope.get("path", "")
            if path in JSON_ROUTES and not (ctype == "application/json" or ctype.endswith("+json")):
                return error(415, f"{path} takes a JSON body with Content-Type: application/json, got "
                                  f"{ctype[:60] or 'no content type'!r}")
            if path in UPLOAD_ROUTES and ctype != "multipart/form-data":
                return error(415, f"{path} takes a file as multipart/form-data, got {ctype[:60] or 'no content type'!r}")
        return None

    async def _read_body(self, headers, receive):
        """The whole body (bytes); a JSONResponse to send instead (413, 408, 400); None if the client left."""
        too_big = error(413, f"request body over the upload limit of {self.limit / 1e6:g} MB")
        length = headers.get("content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.limit):
            return too_big if length.strip().isdigit() else error(400, "Content-Length is not a number")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        chunks, seen = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                return error(408, f"the request body did not arrive within {self.body_timeout_s:g} s")
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                return too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class HeavyLimit:
    """At most `limit` heavy computations at once; each answered within `timeout_s` or given up (its thread
    still counts until it ends)."""

    def __init__(self, limit: int, timeout_s: float):
        self.limit, self.timeout_s, self.running = limit, timeout_s, 0

    async def run(self, fn, *args, heavy: bool = True):
        if heavy and self.running >= self.limit:
            raise _Busy(self.limit)
        if heavy:
            self.running += 1
        task = asyncio.ensure_future(run_in_threadpool(fn, *args))
        task.add_done_callback(self._finished if heavy else _consume)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.timeout_s)
        except asyncio.TimeoutError:
            raise _TooSlow(self.timeout_s) from None

    def _finished(self, task) -> None:
        self.running -= 1
        _consume(task)


def _consume(task) -> None:
    """Retrieve an abandoned task's outcome (asyncio would log it as never retrieved)."""
    if not task.cancelled():
        task.exception()


class _Busy(Exception):
    pass


class _TooSlow(Exception):
    pass


def create_app(model_file=None, report=None, max_upload_bytes: int = MAX_UPLOAD_BYTES, allowed_hosts=LOCAL_HOSTS,
               body_timeout_s: float = BODY_TIMEOUT_S, request_timeout_s: float = REQUEST_TIMEOUT_S,
               max_heavy: int = MAX_HEAVY) -> FastAPI:
    """The app. `model_file`: the model that prices recommendations (default: the shipped one);
    `report`: an evaluation report (report.html, or the folder `energylens evaluate --out` wrote) shown at /report;
    `allowed_hosts`: the names in Host headers it answers ('*': any)."""
    if model_file is not None:  # read it now: a bad file fails at start, in one line, not on the first request

        load_model(model_file, estimator=False)
    report_html = _report_path(report)
    store = service.Store()
    work = HeavyLimit(max_heavy, request_timeout_s)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        store.close()  # uploads and fitted models live only as long as the server

    app = FastAPI(title="EnergyLens explorer", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.store = store
    app.state.work = work

    @app.exception_handler(RequestError)
    async def _bad_option(request: Request, exc: RequestError):
        return error(400, str(exc))

    @app.exception_handler(EnergyLensError)
    async def _user_error(request: Request, exc: EnergyLensError):
        return error(400, str(exc))

    @app.exception_handler(_Busy)
    async def _busy(request: Request, exc: _Busy):
        return error(429, f"the server is running {exc.args[0]} heavy requests (recommend, fit), its limit; "
                          "retry in a few seconds", headers={"Retry-After": "2"})

    @app.exception_handler(_TooSlow)
    async def _slow(request: Request, exc: _TooSlow):
        return error(503, f"the request took longer than {exc.args[0]:g} s; ask for fewer candidates "
                          "(GPU types, batch sizes, max_gpus)")

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return error(422, f"{first.get('msg', 'invalid request')}{f' ({where})' if where else ''}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return error(exc.status_code, exc.detail)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    async def _json(request: Request):
        return service.parse_json(await request.body())

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/options")
    async def options():
        return {**await run_in_threadpool(service.options, model_file), "report": report_html is not None}

    @app.post("/api/recommend")
    async def recommend(request: Request):
        body = await _json(request)
        return await work.run(service.recommend_payload, body, store, model_file)

    @app.post("/api/predict")
    async def predict(request: Request):
        body = await _json(request)
        return await work.run(service.predict_payload, body, store, model_file, heavy=False)

    @app.post("/api/explain")
    async def explain(request: Request):
        body = await _json(request)
        return await work.run(service.explain_payload, body, store, model_file, heavy=False)

    @app.post("/api/upload/config")
    async def upload_config(file: UploadFile = File(...)):
        data = await file.read()
        return await work.run(service.upload_config, data, file.filename, store, heavy=False)

    @app.post("/api/upload/profile")
    async def upload_profile(file: UploadFile = File(...), mode: str = Form("recalibrate")):
        data = await file.read()
        return await work.run(service.fit_upload, data, file.filename, mode, store)

    @app.get("/report", response_class=HTMLResponse)
    async def report_page():
        if report_html is None:
            return error(404, "no evaluation report: start the explorer with --report DIR "
                              "(the folder `energylens evaluate --out DIR` wrote)")
        return FileResponse(report_html, media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guard, limit=max_upload_bytes, allowed_hosts=allowed_hosts, body_timeout_s=body_timeout_s)
    return app


def _report_path(report) -> Path | None:
    if report is None:
        return None
    path = Path(report)
    path = path / "report.html" if path.is_dir() else path
    if not path.is_file():
        raise EnergyLensError(f"--report {report}: no report.html there; run `energylens evaluate --out DIR` first")
    return path
