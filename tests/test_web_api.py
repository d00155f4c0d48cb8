"""The explorer's JSON API through FastAPI's test client: it mirrors the CLI, bad input gets the CLI's one line."""
import hashlib
import inspect
import io
import json
import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install '.[web]')")
pytest.importorskip("multipart", reason="python-multipart (web extra) is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from energylens import recommend  # noqa: E402
from energylens.evaluation.synthetic import synthetic_profiles  # noqa: E402
from energylens.web import service  # noqa: E402
from energylens.web.app import STATIC, create_app  # noqa: E402

BODY = {"model": "meta-llama/Llama-3.1-8B", "gpus": ["H100", "B200"], "max_gpus": 2, "batches": "8,64",
        "input_tokens": 512, "output_tokens": 128}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(max_upload_bytes=200_000), base_url="http://localhost") as c:
        yield c


def _cli_error(capsys, *args):
    from energylens.cli.main import main

    with pytest.raises(SystemExit):
        main([str(a) for a in args])
    return capsys.readouterr().err.strip()


def test_page_and_pinned_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and "EnergyLens explorer" in page.text
    pins = [line.split() for line in (STATIC / "vendor" / "VERSIONS.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert {p[1] for p in pins} == {"vega", "vega-lite", "vega-embed"}
    for name, _, version, sha in pins:
        assert f"/static/vendor/{name}" in page.text  # the page loads exactly the pinned files
        served = client.get(f"/static/vendor/{name}")
        assert served.status_code == 200 and hashlib.sha256(served.content).hexdigest() == sha
        assert version in served.text[-400:] or f'version="{version}"' in served.text or version in served.text
    assert "BSD" in (STATIC / "vendor" / "LICENSES.txt").read_text() or "Redistribution" in (
        STATIC / "vendor" / "LICENSES.txt").read_text()


def test_recommend_mirrors_the_library(client):
    for objective in ("energy", "cost", "carbon"):
        r = client.post("/api/recommend", json={**BODY, "objective": objective})
        assert r.status_code == 200, r.text
        out = r.json()
        lib = recommend("meta-llama/Llama-3.1-8B", ["H100", "B200"], max_gpus=2, batches=[8, 64], input_tokens=512,
                        output_tokens=128, objective=objective)
        assert [row["energy_request_j"] for row in out["rows"]] == pytest.approx(list(lib["energy_request_j"]))
        metric = out["metric"]
        values = [row[metric] for row in out["rows"]]
        assert values == sorted(values)
        front = [row for row in out["rows"] if row["on_front"]]
        # Nothing on the front is beaten in both latency and the objective by any row.
        for f in front:
            assert not any(o["latency_s"] < f["latency_s"] and o[metric] < f[metric] for o in out["rows"])
        assert out["attrs"]["objective"] == objective and out["attrs"]["assumptions"]["statements"]
        assert out["table"][0]["rank"] == 1 and all(f"{g}_pct" in out["table"][0] for g in out["terms"])


@pytest.mark.parametrize("body, cli", [
    ({**BODY, "max_gpus": 0}, ["--max-gpus", "0"]),
    ({**BODY, "objective": "cheap"}, ["--objective", "cheap"]),
    ({**BODY, "visual_tokens": 600}, ["--visual-tokens", "600"]),  # names two options
    ({**BODY, "gpu_hour_usd": "H100=abc"}, ["--gpu-hour-usd", "H100=abc"]),
    ({**BODY, "region": "mars"}, ["--region", "mars"]),
])
def test_bad_input_is_a_400_with_the_clis_line(client, capsys, body, cli):
    r = client.post("/api/recommend", json=body)
    args = {"--model": BODY["model"], "--max-gpus": "2"}
    for k, v in zip(cli[::2], cli[1::2]):
        args[k] = v
    flat = [x for kv in args.items() for x in kv]
    expected = _cli_error(capsys, "recommend", *flat, "--gpu", "H100", "--gpu", "B200", "--batch", "8", "--batch", "64",
                          "--input-tokens", "512", "--output-tokens", "128")
    assert r.status_code == 400 and expected.startswith("error: ")
    # The CLI's line without its `error:` prefix (the JSON key says it), each option named as its JSON field.
    assert r.json() == {"error": re.sub(r"--([a-z][a-z0-9-]*)", lambda m: m.group(1).replace("-", "_"),
                                        expected.removeprefix("error: "))}


@pytest.mark.parametrize("request_kwargs, status, words", [
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
    ({"json": [1, 2]}, 400, "expected a JSON object"),
    ({"json": {**BODY, "colour": "red"}}, 400, "unknown field 'colour'"),
    ({"json": {"gpus": ["H100"]}}, 400, "missing field model"),
    ({"json": {"model": "meta-llama/Llama-3.1-8B"}}, 400, "missing field gpu (or gpus)"),
    ({"json": {**BODY, "gpu": ["H100"]}}, 400, "give field 'gpu' or 'gpus', not both"),
    ({"json": {**BODY, "gpu_hour_usd": "/etc/hostname"}}, 400, "the server reads no price file"),
    ({"json": {**BODY, "config_id": "config-000"}}, 400, "not an upload of this server"),
    ({"content": b"x" * 300_000, "headers": {"content-type": "application/json"}}, 413, "upload limit"),
])
def test_malformed_requests_are_4xx_in_one_line(client, request_kwargs, status, words):
    r = client.post("/api/recommend", **request_kwargs)
    assert r.status_code == status and words in r.json()["error"] and "\n" not in r.json()["error"]
    assert "Traceback" not in r.text


def test_predict_and_explain_mirror_the_cli(client, tmp_path, capsys):
    configs = [{"model": "meta-llama/Llama-3.1-8B", "gpu": "H100", "num_gpus": 1, "tp": 1, "pp": 1, "batch_size": 32,
                "input_tokens": 512, "output_tokens": 256}]
    r = client.post("/api/predict", json={"configs": configs})
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    csv = tmp_path / "c.csv"
    csv.write_text(",".join(configs[0]) + "\n" + ",".join(str(v) for v in configs[0].values()) + "\n")
    from energylens.cli.main import main
    from energylens.io import read_table

    main(["predict", "default", str(csv), "-o", str(tmp_path / "p.csv")])
    capsys.readouterr()
    cli = read_table(tmp_path / "p.csv").iloc[0]
    for col in ("pred_energy_request_j", "pred_energy_token_j", "pred_ttft_s", "pred_itl_s"):
        assert pred[col] == pytest.approx(cli[col])
    ex = client.post("/api/explain", json={"configs": configs}).json()["explanations"][0]
    main(["explain", "default", str(csv), "--json"])
    cli_ex = json.loads(capsys.readouterr().out)[0]
    assert ex["total_j"] == pytest.approx(cli_ex["total_j"]) == pytest.approx(pred["pred_energy_request_j"])
    bad = client.post("/api/predict", json={"configs": [{**configs[0], "tp": 0}]})
    assert bad.status_code == 400 and "column 'tp'" in bad.json()["error"]


def test_config_upload_then_recommend(client):
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
           "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
           "torch_dtype": "bfloat16"}
    up = client.post("/api/upload/config", files={"file": ("tiny-llama.json", json.dumps(cfg).encode(), "application/json")})
    assert up.status_code == 200, up.text
    c = up.json()
    assert c["layers"] == 16 and 1.0 < c["params_total_b"] < 1.6
    r = client.post("/api/recommend", json={**BODY, "model": c["name"], "config_id": c["config_id"]})
    assert r.status_code == 200 and r.json()["rows"]
    broken = client.post("/api/upload/config", files={"file": ("bad.json", b"{\"hidden_size\": -1}", "application/json")})
    assert broken.status_code == 400 and "bad.json" in broken.json()["error"] and "energylens-serve" not in broken.text


def test_profile_upload_fits_and_recalibrates(client, tmp_path):
    rows = synthetic_profiles(40, seed=3)
    buf = io.StringIO()
    rows.to_csv(buf, index=False)
    for mode in ("recalibrate", "fit"):
        r = client.post("/api/upload/profile", files={"file": ("runs.csv", buf.getvalue().encode(), "text/csv")},
                        data={"mode": mode})
        assert r.status_code == 200, r.text
        f = r.json()
        # recalibrate: `fit --from default` keeps the best of the shipped model, its recalibration and a fresh fit
        label = service.FIT_LABELS[f["comparison"]["kept"]] if mode == "recalibrate" else "fitted"
        assert f["rows"] == 40 and {p["model"] for p in f["parity"]} == {label, "shipped"}
        assert len([p for p in f["parity"] if p["model"] == label]) == 40
        # In sample, refitting on these rows cannot do worse than the shipped coefficients; a full fit of rows
        # made by the closed form itself must come close (recalibration keeps each term within 3x of the base).
        assert f["mape"][label] <= f["mape"]["shipped"]
        if mode == "fit":
            assert f["mape"]["fitted"] < 0.1
        rec = client.post("/api/recommend", json={**BODY, "model_id": f["model_id"]})
        assert rec.status_code == 200
    bad = client.post("/api/upload/profile", files={"file": ("runs.csv", b"model,gpu\nx,y\n", "text/csv")})
    assert bad.status_code == 400 and bad.json()["error"].startswith("runs.csv")
    wrong = client.post("/api/upload/profile", files={"file": ("runs.csv", b"a", "text/csv")}, data={"mode": "guess"})
    assert wrong.status_code == 400 and "mode must be one of fit, recalibrate" in wrong.json()["error"]
    big = client.post("/api/upload/profile", files={"file": ("runs.csv", b"x" * 250_000, "text/csv")})
    assert big.status_code == 413


def test_report_route(tmp_path):
    with TestClient(create_app(), base_url="http://localhost") as c:
        r = c.get("/report")
        assert r.status_code == 404 and "--report" in r.json()["error"]
    (tmp_path / "report.html").write_text("<html><nav>Contents</nav></html>")
    with TestClient(create_app(report=tmp_path), base_url="http://localhost") as c:
        assert c.get("/report").text.startswith("<html><nav>") and c.get("/api/options").json()["report"] is True


def test_store_keeps_a_bounded_number_of_files():
    store = service.Store(limit=3)
    paths = []
    for _ in range(5):
        ident, path = store.new_path("model", ".json")
        path.write_text("{}")
        paths.append((ident, path))
    assert [p.exists() for _, p in paths] == [False, False, True, True, True]
    with pytest.raises(Exception, match="not an upload"):
        store.get(paths[0][0], "model", "model_id")
    store.close()
    assert not Path(paths[-1][1]).parent.exists()


def test_serve_refuses_a_taken_port_in_one_line(capsys):
    import socket

    from energylens.cli.main import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(SystemExit) as e:
            main(["serve", "--port", str(port)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "cannot listen" in err


def _cli_spelling(body: dict) -> dict:
    return {{"gpus": "gpu", "batches": "batch", "config_id": "model_config", "model_id": "model_file"}.get(k, k): v
            for k, v in body.items()}


def test_cli_option_names_are_accepted_as_fields(client):
    """`{"gpu": [...], "batch": ...}` as the CLI spells its options, or the Python API's names: the same answer."""
    body = {**BODY, "objective": "cost", "gpu_hour_usd": "H100=2.5,B200=5", "itl_slo_ms": "none"}
    cli = client.post("/api/recommend", json=_cli_spelling(body))
    assert cli.status_code == 200, cli.text
    assert "gpu" in _cli_spelling(body) and "batch" in _cli_spelling(body)
    python = client.post("/api/recommend", json=body).json()
    assert cli.json()["rows"] == python["rows"] and len(python["rows"]) >= 4
    assert [r["batch_size"] for r in python["rows"]] and {r["batch_size"] for r in python["rows"]} <= {8, 64}
    configs = [{"model": "meta-llama/Llama-3.1-8B", "gpu": "H100", "num_gpus": 1, "tp": 1, "pp": 1, "batch_size": 8,
                "input_tokens": 512, "output_tokens": 64}]
    stale = client.post("/api/predict", json={"configs": configs, "model_file": "model-000"})
    assert stale.status_code == 400 and stale.json()["error"].startswith("model_file 'model-000' is not an upload")


def test_the_field_mapping_is_the_clis_and_the_python_apis():
    """Each field's CLI option is an option of `energylens recommend`, each Python name a keyword of recommend(),
    and every CLI option with a JSON meaning has a field."""
    import typer.main

    from energylens.cli.main import app

    command = typer.main.get_command(app).commands["recommend"]
    cli_options = {o for p in command.params for o in p.opts}
    keywords = set(inspect.signature(recommend).parameters)
    for f in service.recommend_fields():
        assert f.cli in cli_options, f
        assert f.name in keywords, f
    local_only = {"--hardware-catalog", "--model-catalog", "--trace", "--json", "--wide", "--plot", "--verbose",
                  "--help"}
    assert cli_options - local_only == {f.cli for f in service.recommend_fields()}


def test_unknown_field_lists_the_cli_spellings(client):
    r = client.post("/api/recommend", json={**BODY, "colour": "red"})
    msg = r.json()["error"]
    assert r.status_code == 400 and msg.startswith("unknown field 'colour'; expected one of model, gpu (or gpus)")
    for f in service.recommend_fields():
        assert f.field in msg


def test_error_body_has_no_cli_prefix_and_names_the_upload_not_a_flag(client, capsys):
    r = client.post("/api/recommend", json={**BODY, "model": "nope"})
    cli = _cli_error(capsys, "recommend", "--model", "nope", "--gpu", "H100")
    msg = r.json()["error"]
    assert r.status_code == 400 and cli.startswith("error: unknown model 'nope'") and "--model-config" in cli
    assert msg.startswith("unknown model 'nope'") and "error" not in msg.split(";")[0]
    assert "--" not in msg and "POST /api/upload/config" in msg and "as model_config" in msg
    # Identical in substance: the CLI's line up to its hint, word for word.
    assert msg.split(" (or ")[0] == cli.removeprefix("error: ").split(" (or ")[0]


def test_fields_are_documented_in_readme_and_on_the_page(client):
    api = client.get("/api/options").json()["api"]
    assert set(api) == {"/api/recommend", "/api/predict", "/api/explain"}
    assert [f["field"] for f in api["/api/recommend"]] == [f.field for f in service.recommend_fields()]
    assert {f["field"]: f["alias"] for f in api["/api/recommend"]}["gpu"] == "gpus"
    readme = (Path(__file__).resolve().parents[1] / "docs" / "WEB.md").read_text()
    serve = " ".join(readme[readme.index("Explore in a browser"):readme.index("energylens serve [")].split())
    for route, spec in service.api_fields().items():
        assert route in serve
        for f in spec:
            assert f"`{f.field}`" in serve, f
            for alias in f.aliases:
                assert f"(`{alias}`" in serve, f
    page = client.get("/").text
    assert 'id="api-help"' in page and 'id="electricity-note"' in page
    assert "owned hardware" in client.get("/api/options").json()["electricity_basis"]


def test_recalibrate_is_the_clis_fit_from_default(client, tmp_path, capsys):
    """mode=recalibrate is `energylens fit CSV --from default`: the same three cross-validated errors (the shipped
    model as it is, recalibrated, fitted from scratch) and the same one kept, from the CLI's own code."""
    from energylens.cli.main import main

    csv = tmp_path / "runs.csv"
    synthetic_profiles(30, seed=5).to_csv(csv, index=False)
    r = client.post("/api/upload/profile", files={"file": ("runs.csv", csv.read_bytes(), "text/csv")},
                    data={"mode": "recalibrate"})
    assert r.status_code == 200, r.text
    f = r.json()
    main(["fit", str(csv), "--from", "default", "-o", str(tmp_path / "cli.json")])
    printed = capsys.readouterr().out
    cli = json.loads((tmp_path / "cli.json").read_text())["provenance"]["recalibrated_from"]
    web = f["comparison"]
    assert [c["name"] for c in web["candidates"]] == ["base", "recalibrate", "fresh"]
    assert web["kept"] == cli["kept"] and [c["name"] for c in web["candidates"] if c["kept"]] == [cli["kept"]]
    for c in web["candidates"]:
        assert c["mape"] == pytest.approx(cli["comparison"][c["name"]]["mape"], rel=1e-9), c
        assert c["folds"] == cli["comparison"][c["name"]]["folds"]
        assert c["label"] in printed  # the CLI's words for each candidate
    assert web["candidates"][0]["folds"] == 0 and web["candidates"][1]["folds"] >= 2
    # The model kept prices recommendations; its parity series is named after what was kept.
    label = service.FIT_LABELS[web["kept"]]
    assert set(f["mape"]) == {label, "shipped"} and f["command"] == "energylens fit runs.csv --from default"
    assert client.post("/api/recommend", json={**BODY, "model_id": f["model_id"]}).status_code == 200
    # A plain fit compares nothing.
    plain = client.post("/api/upload/profile", files={"file": ("runs.csv", csv.read_bytes(), "text/csv")},
                        data={"mode": "fit"}).json()
    assert "comparison" not in plain and set(plain["mape"]) == {"fitted", "shipped"}


def test_recalibrate_with_few_rows_says_the_fresh_fit_needs_more(client):
    rows = synthetic_profiles(6, seed=1)
    r = client.post("/api/upload/profile", files={"file": ("few.csv", rows.to_csv(index=False).encode(), "text/csv")},
                    data={"mode": "recalibrate"})
    assert r.status_code == 200, r.text
    fresh = r.json()["comparison"]["candidates"][2]
    assert fresh["name"] == "fresh" and fresh["mape"] is None and not fresh["kept"]
