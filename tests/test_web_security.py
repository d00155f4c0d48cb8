"""The web API as a service facing hostile clients: it opens no path a client names, answers only its own
host names and JSON-typed bodies, bounds bodies, nesting, lists and time, and answers every request with
2xx or a 4xx JSON error (a 5xx only for a slow or busy server), never a traceback."""
import asyncio
import json
import os
import re
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install '.[web]')")
pytest.importorskip("multipart", reason="python-multipart (web extra) is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from energylens.web import app as web  # noqa: E402
from energylens.web.app import Guard, HeavyLimit, create_app  # noqa: E402

MODEL = "meta-llama/Llama-3.1-8B"
BODY = {"model": MODEL, "gpus": ["H100"], "max_gpus": 2, "batches": [8, 64]}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(), base_url="http://localhost") as c:
        yield c


def _in_time(fn, seconds=30):
    """fn() in a thread; a hang becomes a failure (not a speed target: a generous bound)."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"no answer in {seconds} s"
    return out["r"]


def test_a_client_named_path_is_never_opened_and_tells_nothing(client, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"model_type": "TOPSECRET", "num_hidden_layers": "TOPSECRET"}))
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    answers = {}
    for path in (secret, tmp_path / "missing.json", fifo, "/dev/zero"):
        r = _in_time(lambda: client.post("/api/recommend", json={**BODY, "model": str(path)}))
        assert r.status_code == 400 and "TOPSECRET" not in r.text, r.text
        # the names it suggests follow the text asked for, not the file: taken out
        answers[str(path)] = re.sub(r"; closest known: [^(]*", " ", r.json()["error"].replace(str(path), "PATH"))
    assert len(set(answers.values())) == 1, answers  # no file-existence oracle
    for field in ("model_config", "config_id", "model_file", "model_id"):
        r = client.post("/api/recommend", json={**BODY, field: str(secret)})
        assert r.status_code == 400 and "not an upload of this server" in r.json()["error"], r.text
    for field in ("hardware_catalog_file", "model_catalog_file"):
        assert client.post("/api/recommend", json={**BODY, field: str(secret)}).status_code == 400
    r = client.post("/api/recommend", json={**BODY, "objective": "cost", "gpu_hour_usd": str(secret)})
    assert r.status_code == 400 and "reads no price file" in r.json()["error"]
    r = client.post("/api/predict", json={"configs": [{"model": "x"}], "model_file": str(secret)})
    assert r.status_code == 400 and "not an upload" in r.json()["error"]


@pytest.mark.parametrize("host, ok", [("localhost", True), ("127.0.0.1:8000", True), ("[::1]:8000", True),
                                      ("evil.example", False), ("evil.example:8000", False),
                                      ("127.0.0.1.evil.example", False), ("", False)])
def test_only_the_servers_own_host_names_are_answered(client, host, ok):
    for r in (client.get("/api/options", headers={"Host": host}),
              client.post("/api/recommend", json=BODY, headers={"Host": host})):
        assert (r.status_code == 200) == ok and (ok or r.status_code == 400), (host, r.status_code)
        if not ok:
            assert "--allowed-host" in r.json()["error"]


def test_allowed_hosts_are_configurable():
    with TestClient(create_app(allowed_hosts=["energy.example"]), base_url="http://energy.example") as c:
        assert c.get("/api/options").status_code == 200
        assert c.get("/api/options", headers={"Host": "localhost"}).status_code == 400
    with TestClient(create_app(allowed_hosts=["*"]), base_url="http://anything.example") as c:
        assert c.get("/api/options").status_code == 200
    from energylens.cli.serve_cmd import allowed_hosts

    assert set(allowed_hosts("10.0.0.5", ["a.example"])) >= {"localhost", "127.0.0.1", "10.0.0.5", "a.example"}


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                   None])
def test_json_routes_take_only_a_json_content_type(client, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    for route in ("/api/recommend", "/api/predict", "/api/explain"):
        r = client.post(route, content=json.dumps(BODY).encode(), headers=headers)
        assert r.status_code == 415 and "application/json" in r.json()["error"], (route, r.text)
    ok = client.post("/api/recommend", content=json.dumps(BODY).encode(),
                     headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


def test_cross_origin_posts_are_refused(client):
    assert client.post("/api/recommend", json=BODY, headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post("/api/recommend", json=BODY, headers={"Origin": "null"}).status_code == 403
    assert client.post("/api/recommend", json=BODY, headers={"Origin": "http://localhost:8000"}).status_code == 200


def test_bodies_are_bounded_chunked_or_not():
    client = TestClient(create_app(max_upload_bytes=100_000), base_url="http://localhost")
    big = b'{"model": "' + b"x" * 200_000 + b'"}'
    r = client.post("/api/recommend", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "upload limit" in r.json()["error"]

    def chunks():
        yield b'{"model": "'
        for _ in range(10):
            yield b"x" * 65536
        yield b'"}'

    r = client.post("/api/recommend", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "upload limit" in r.json()["error"]
    r = client.post("/api/upload/profile", files={"file": ("r.csv", b"x" * 200_000, "text/csv")})
    assert r.status_code == 413


@pytest.mark.parametrize("body, words", [
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "nested deeper"),
    (b'{"model": [[[[[[[[[["x"]]]]]]]]]]}', "nested deeper"),
    (b'{"model": "x", "gpus": ["H100"], "input_tokens": NaN}', "not valid JSON"),
    (b'{"model": "x", "gpus": ["H100"], "max_gpus": ' + b"9" * 5000 + b"}", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
])
def test_bad_json_is_a_400(client, body, words):
    for route in ("/api/recommend", "/api/predict"):
        r = client.post(route, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and words in r.json()["error"], r.text


def test_huge_lists_and_candidate_products_are_refused_at_once(client):
    for body, words in (({**BODY, "max_gpus": 4096, "batches": list(range(1, 20001))}, "at most 10,000"),
                        ({**BODY, "max_gpus": 100_000, "batches": list(range(1, 1000)), "gpus": ["H100", "B200"]},
                         "candidate deployments"),
                        ({**BODY, "gpus": ["H100"] * 100_000}, "at most 64"),
                        ({**BODY, "model": "x" * 1_000_0}, "1 to 200 characters")):
        r = _in_time(lambda: client.post("/api/recommend", json=body))
        assert r.status_code == 400 and words in r.json()["error"], r.text
    rows = [{"model": MODEL, "gpu": "H100", "num_gpus": 1, "tp": 1, "pp": 1, "batch_size": 1, "input_tokens": 1,
             "output_tokens": 1}]
    r = client.post("/api/predict", json={"configs": [{**rows[0], "notes": {"a": 1}}]})
    assert r.status_code == 400 and "expected a number or text" in r.json()["error"]
    r = client.post("/api/predict", json={"configs": [{f"c{i}": 1 for i in range(300)}]})
    assert r.status_code == 400 and "at most 200 fields" in r.json()["error"]


def _asgi_call(app, messages, scope_extra=None):
    """Run an ASGI app on a scripted client; returns what it sent."""
    sent = []

    async def main():
        queue = list(messages)

        async def receive():
            if queue:
                item = queue.pop(0)
                if item == "hang":
                    await asyncio.sleep(3600)
                return item
            await asyncio.sleep(3600)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/api/recommend", "headers": [
            (b"host", b"localhost"), (b"content-type", b"application/json"), (b"content-length", b"1000")],
            **(scope_extra or {})}
        await app(scope, receive, send)

    asyncio.run(asyncio.wait_for(main(), 30))
    return sent


def test_a_half_sent_body_times_out_and_a_client_that_leaves_is_dropped_quietly():
    called = []

    async def inner(scope, receive, send):
        called.append(scope)

    guard = Guard(inner, limit=10_000, allowed_hosts=["localhost"], body_timeout_s=0.2)
    sent = _asgi_call(guard, [{"type": "http.request", "body": b'{"model"', "more_body": True}, "hang"])
    assert sent[0]["status"] == 408 and b"did not arrive within 0.2 s" in sent[1]["body"] and not called
    sent = _asgi_call(guard, [{"type": "http.request", "body": b'{"model"', "more_body": True},
                              {"type": "http.disconnect"}])
    assert sent == [] and not called  # nothing to answer, nothing logged


def test_heavy_requests_are_capped_and_timed_out():
    release = threading.Event()

    async def main():
        limit = HeavyLimit(1, timeout_s=0.3)
        first = asyncio.ensure_future(limit.run(release.wait, 10))
        await asyncio.sleep(0.05)
        with pytest.raises(web._Busy):  # the second heavy request while the first runs: 429
            await limit.run(lambda: None)
        assert await limit.run(lambda: "light", heavy=False) == "light"
        with pytest.raises(web._TooSlow):  # the first is given up at its timeout: 503 ...
            await first
        assert limit.running == 1  # ... but counted until its thread ends
        release.set()
        for _ in range(100):
            if limit.running == 0:
                break
            await asyncio.sleep(0.02)
        assert limit.running == 0 and await limit.run(lambda: "next") == "next"

    asyncio.run(main())
    app = create_app(max_heavy=1)
    with TestClient(app, base_url="http://localhost") as c:
        app.state.work.running = 1  # as if one heavy request were running
        r = c.post("/api/recommend", json=BODY)
        assert r.status_code == 429 and r.headers["Retry-After"] and "limit" in r.json()["error"]
        assert c.post("/api/predict", json={"configs": [{"model": MODEL}]}).status_code == 400  # light: answered


def test_serve_on_a_bad_address_leaves_no_temp_folder(tmp_path, monkeypatch, run_cli):
    import socket
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        code, out = run_cli("serve", "--port", s.getsockname()[1])
    assert code == 2 and "cannot listen" in out
    code, out = run_cli("serve", "--host", "no such host..", "--port", 8000)
    assert code == 2 and "not an address" in out
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- fuzz: any JSON body, any field

FIELDS = ["model", "gpu", "gpus", "max_gpus", "input_tokens", "output_tokens", "visual_tokens", "batch", "batches",
          "itl_slo_ms", "ttft_slo_ms", "engine", "top", "objective", "gpu_hour_usd", "electricity_usd_per_kwh",
          "grid_gco2_per_kwh", "region", "pue", "model_config", "config_id", "model_file", "model_id", "colour"]
SCALARS = (st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=False)
           | st.text(max_size=30) | st.sampled_from(["H100", "B200", "8", "64,256", "none", "1e3", "0x10", "energy",
                                                    "cost", "world", "H100=2.5", MODEL, "../../etc/passwd"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=4), max_leaves=15)


@st.composite
def bodies(draw):
    body = {"model": MODEL, "gpus": ["H100"], "max_gpus": 2, "batches": [8]}  # a valid start, kept small
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        body[name] = draw(VALUES)
    if draw(st.booleans()):  # some bodies are not objects at all
        return draw(VALUES)
    return body


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=bodies(), route=st.sampled_from(["/api/recommend", "/api/recommend", "/api/predict", "/api/explain"]))
def test_any_json_body_gets_2xx_or_a_4xx_json_error(client, body, route):
    if route != "/api/recommend" and isinstance(body, dict):
        body = {"configs": [body]} if len(body) % 2 else {"configs": body, "model_file": body.get("model_file")}
    r = _in_time(lambda: client.post(route, content=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}))
    assert r.status_code < 500, (body, r.text)
    if r.status_code >= 400:
        err = r.json()["error"]
        assert isinstance(err, str) and err and "\n" not in err and "Traceback" not in r.text, r.text


def test_a_half_sent_request_head_is_closed_and_whole_requests_are_served():
    import socket
    import time

    import httpx
    import uvicorn

    from energylens.web.protocol import HeaderTimeoutProtocol

    class Quick(HeaderTimeoutProtocol):
        header_timeout_s = 0.3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning", http=Quick))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"POST /api/recommend HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
            c.settimeout(20)
            assert c.recv(100) == b""  # closed by the server
        with httpx.Client() as client:  # keep-alive: a second request on the same connection
            for _ in range(2):
                assert client.get(f"http://127.0.0.1:{port}/api/options").status_code == 200
                time.sleep(0.1)
    finally:
        server.should_exit = True
        thread.join(10)
