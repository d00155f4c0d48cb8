"""The explorer's ASGI app (FastAPI): one page, its vendored assets, and a JSON API mirroring the CLI.

Errors: an EnergyLensError (bad input) is a 400 whose body {"error": "..."} holds the CLI's one-line
message without its `error:` prefix, naming the JSON field where the CLI names its option (service.api_message);
an unreadable request a 400/422 in one line, a body over the upload limit a 413; anything else a 500 that names the error in
one line, never a traceback.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import EnergyLensError
from . import service

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # a config.json is a few kB; a profiling CSV of 10,000 rows about 2 MB


def _one_line(text) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())[:1000]


def error(status: int, message) -> JSONResponse:
    return JSONResponse({"error": _one_line(message)}, status_code=status)


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets a 413 before the app reads it whole
    (Content-Length checked up front; a chunked body counted as it arrives)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_big = error(413, f"request body over the upload limit of {self.limit / 1e6:g} MB")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await too_big(scope, receive, send)
        seen, started = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooBig
            return message

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooBig:
            if not started:
                await too_big(scope, receive, send)


class _TooBig(Exception):
    pass


def create_app(model_file=None, report=None, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """The app. `model_file`: the model that prices recommendations (default: the shipped one);
    `report`: an evaluation report (report.html, or the folder `energylens evaluate --out` wrote) shown at /report."""
    if model_file is not None:  # read it now: a bad file fails at start, in one line, not on the first request
        from ..model.modelfile import load_model

        load_model(model_file, estimator=False)
    report_html = _report_path(report)
    store = service.Store()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        store.close()  # uploads and fitted models live only as long as the server

    app = FastAPI(title="EnergyLens explorer", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.store = store

    @app.exception_handler(EnergyLensError)
    async def _user_error(request: Request, exc: EnergyLensError):
        return error(400, service.api_message(exc))

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
        try:
            return await request.json()
        except ValueError:
            raise EnergyLensError("the request body is not valid JSON") from None

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/options")
    async def options():
        return {**await run_in_threadpool(service.options, model_file), "report": report_html is not None}

    @app.post("/api/recommend")
    async def recommend(request: Request):
        body = await _json(request)
        return await run_in_threadpool(service.recommend_payload, body, store, model_file)

    @app.post("/api/predict")
    async def predict(request: Request):
        body = await _json(request)
        return await run_in_threadpool(service.predict_payload, body, store, model_file)

    @app.post("/api/explain")
    async def explain(request: Request):
        body = await _json(request)
        return await run_in_threadpool(service.explain_payload, body, store, model_file)

    @app.post("/api/upload/config")
    async def upload_config(file: UploadFile = File(...)):
        data = await file.read()
        return await run_in_threadpool(service.upload_config, data, file.filename, store)

    @app.post("/api/upload/profile")
    async def upload_profile(file: UploadFile = File(...), mode: str = Form("recalibrate")):
        data = await file.read()
        return await run_in_threadpool(service.fit_upload, data, file.filename, mode, store)

    @app.get("/report", response_class=HTMLResponse)
    async def report_page():
        if report_html is None:
            return error(404, "no evaluation report: start the explorer with --report DIR "
                              "(the folder `energylens evaluate --out DIR` wrote)")
        return FileResponse(report_html, media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=max_upload_bytes)
    return app


def _report_path(report) -> Path | None:
    if report is None:
        return None
    path = Path(report)
    path = path / "report.html" if path.is_dir() else path
    if not path.is_file():
        raise EnergyLensError(f"--report {report}: no report.html there; run `energylens evaluate --out DIR` first")
    return path
