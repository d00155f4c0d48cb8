"""recommend's options are declared once (recommendation/request.py): the CLI, the web API and Python agree on
names, bounds and defaults, validate through the same code, and spell the option their own way in messages;
a Recommendation means one thing by rank and top everywhere."""
import inspect
import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from energylens import recommend
from energylens.recommendation import request as R
from energylens.recommendation.request import CLI, JSON, PYTHON, RecommendOptions, RequestError

MODEL = "meta-llama/Llama-3.1-8B"
BASE = {"model": MODEL, "gpus": ["H100"]}


def _cli_command():
    import typer.main

    from energylens.cli.main import app

    return typer.main.get_command(app).commands["recommend"]


def test_cli_web_and_python_have_the_same_options_and_defaults():
    declared = {name: (opt, default) for name, opt, default in RecommendOptions.options()}
    # Python: the signature is the declaration's, defaults included
    sig = inspect.signature(recommend).parameters
    assert list(sig) == list(declared)
    for name, (opt, default) in declared.items():
        if name not in ("model", "gpus"):
            assert sig[name].default == default, name
    # CLI: one option per declared option with a flag; its default, parsed, is the declaration's
    params = {p.name: p for p in _cli_command().params}
    for name, (opt, default) in declared.items():
        assert opt.cli in {o for p in params.values() for o in p.opts}, name
        cli_default = params[name].default
        if cli_default is not None and not isinstance(cli_default, (list, tuple)):
            parsed = RecommendOptions.parse({**BASE, name: cli_default}, CLI)
            assert getattr(parsed, name) == default, (name, cli_default, default)
    # Web: every option but the local files is a field, spelled as the CLI's flag without dashes
    from energylens.web import service

    fields = {f.name: f for f in service.recommend_fields()}
    assert set(fields) == {n for n, (opt, _) in declared.items() if opt.json}
    for name, f in fields.items():
        assert f.field == declared[name][0].cli.lstrip("-").replace("-", "_") and f.cli == declared[name][0].cli


def test_one_batch_cap_everywhere():
    from energylens.data import schema
    from energylens.profile import sweep
    from energylens.recommendation import search

    assert R.MAX_BATCH == schema.MAX_BATCH == sweep.LIMITS["batch_size"] == search.MAX_BATCH == 1_000_000
    assert R.MAX_TOKENS == schema.MAX_TOKENS == sweep.LIMITS["input_tokens"]
    assert R.MAX_GPUS == schema.MAX_GPUS


BAD = {  # a bad value of each kind of option
    "max_gpus": ["0", 0, 8.5, "0x10", "abc", [8], True, 10**40, "1e400"],
    "input_tokens": ["nan", float("inf"), -1, "x", {}, 10**400],
    "output_tokens": [0, "-5", 1e308],
    "visual_tokens": [-1, [1]],
    "batches": ["0", "64,x", [0], {"64": 1}, [True], [64.5], "0x20", [[64]], [10**12]],
    "itl_slo_ms": [0, -3, "nan", [], {}],
    "ttft_slo_ms": ["abc", float("inf")],
    "top": [0, -5, "abc", [3], 3.5, True],
    "engine": [["x"], {}, 5, "x" * 1000, ""],
    "objective": ["cheap", 5, ["energy"]],
    "gpu_hour_usd": ["H100=abc", {"H100": -1}, {"H100": "abc"}, [1], 5],
    "electricity_usd_per_kwh": [-1, "inf", {}],
    "grid_gco2_per_kwh": [-1, "1e999"],
    "region": ["mars", 5, ["world"]],
    "pue": [0.5, "abc", [1]],
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_gets_the_same_message_spelled_by_each_front_end(name):
    opt = dict((n, o) for n, o, _ in RecommendOptions.options())[name]
    spelled = {CLI: opt.cli, JSON: opt.cli.lstrip("-").replace("-", "_"), PYTHON: name}
    for value in BAD[name]:
        messages = {}
        for front in (CLI, JSON, PYTHON):
            with pytest.raises(RequestError) as err:
                RecommendOptions.parse({**BASE, name: value}, front)
            msg = str(err.value)
            assert msg.startswith(spelled[front]) and "\n" not in msg and len(msg) < 600, (front, value, msg)
            assert err.value.field == name
            messages[front] = msg.replace(spelled[front], "OPTION", 1)
        assert messages[CLI] == messages[JSON] == messages[PYTHON] or name in ("gpu_hour_usd", "region"), messages
        # (the web's price message adds that the server reads no price file; region's names a second option)


def test_cross_field_rules_and_the_candidate_cap():
    with pytest.raises(RequestError, match=r"^visual_tokens must be between 0 and input_tokens"):
        RecommendOptions.parse({**BASE, "visual_tokens": 600, "input_tokens": 512}, JSON)
    with pytest.raises(RequestError, match="^give --region or --grid-gco2-per-kwh, not both"):
        RecommendOptions.parse({**BASE, "region": "france", "grid_gco2_per_kwh": 50}, CLI)
    with pytest.raises(RequestError, match="^3 GPU type.* max_gpus 4,096 .* over the limit of 2,000,000"):
        recommend(MODEL, ["H100", "B200", "A100"], max_gpus=4096, batches=list(range(1, 2001)))
    with pytest.raises(RequestError, match="at most 10,000 values"):
        RecommendOptions.parse({**BASE, "batches": ",".join(map(str, range(1, 20_001)))}, JSON)
    with pytest.raises(RequestError, match="at most 64 values"):
        RecommendOptions.parse({**BASE, "gpus": ["H100"] * 100_000}, JSON)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["meta-llama/Llama-3.1-8B", "Qwen/Qwen3-30B-A3B-Instruct-2507", "meta-llama/Llama-3.1-70B"]),
       st.integers(1, 40), st.lists(st.integers(1, 4096), min_size=1, max_size=4))
def test_the_candidate_count_is_the_candidates(model, max_gpus, batches):
    from energylens.catalog import model_catalog
    from energylens.recommendation.search import enumerate_candidates

    n = len(enumerate_candidates(model, ["H100", "B200"], max_gpus, 1024, 256, batches))
    assert n == R.candidate_count(model_catalog().get(model), 2, max_gpus, len(set(batches)))


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                       max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([n for n, _, _ in RecommendOptions.options()]), JSONISH, st.sampled_from([CLI, JSON, PYTHON]))
def test_any_value_of_any_option_parses_or_is_one_request_error(name, value, front):
    try:
        opts = RecommendOptions.parse({**BASE, name: value}, front)
    except RequestError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 1000
        return
    got = getattr(opts, name)
    if isinstance(got, float):
        assert math.isfinite(got)


def test_the_web_never_takes_a_path(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text("{}")
    for name in ("model_config", "model_file"):
        with pytest.raises(RequestError, match="is not an upload of this server"):
            RecommendOptions.parse({**BASE, name: str(secret)}, JSON)
    for name in ("hardware_catalog_file", "model_catalog_file"):
        with pytest.raises(RequestError, match="the web API reads no such file"):
            RecommendOptions.parse({**BASE, name: str(secret)}, JSON)
    with pytest.raises(RequestError, match="the server reads no price file"):
        RecommendOptions.parse({**BASE, "gpu_hour_usd": str(secret)}, JSON)


# ---------------------------------------------------------------- one meaning of top and rank


def test_top_and_rank_mean_one_thing_in_python_cli_and_web(run_cli):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from energylens.web.app import create_app

    kw = dict(max_gpus=8, batches=[64, 256], input_tokens=512, output_tokens=128)
    rec = recommend(MODEL, ["H100"], top=5, **kw)
    shown = rec.shown()
    distinct = shown[~shown["replica_of_smaller"]]
    listed = distinct[distinct["rank"] <= 5]
    assert list(listed["rank"]) == [1, 2, 3, 4, 5]  # 5 distinct layouts, numbered without gaps
    assert set(shown.index) == set(listed.index) | set(rec.table.index[rec.table["latency_optimal"]
                                                                     | rec.table["tp_default"]])
    assert rec.counts["distinct"] + rec.counts["copies"] == len(rec.table) == rec.counts["meeting_slo"]
    assert rec.best.equals(rec.table.iloc[0]) and bool(rec.latency_optimal["latency_optimal"])
    code, out = run_cli("recommend", "--model", MODEL, "--gpu", "H100", "--max-gpus", 8, "--batch", "64,256",
                        "--input-tokens", 512, "--output-tokens", 128, "--top", 5, "--json")
    cli = json.loads(out)
    with TestClient(create_app(), base_url="http://localhost") as c:
        web = c.post("/api/recommend", json={"model": MODEL, "gpus": ["H100"], "top": 5, **kw}).json()
    key = ("rank", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size")
    python_rows = [tuple(r[k] for k in key) for r in rec.to_dict()["recommendations"]]
    assert python_rows == [tuple(r[k] for k in key) for r in cli["recommendations"]]
    assert python_rows == [tuple(r[k] for k in key) for r in web["table"]]
    assert cli["top"] == web["top"] == 5


def test_a_recommendation_answers_as_the_old_dataframe():
    rec = recommend(MODEL, ["H100"], max_gpus=2, batches=[8, 64])
    assert len(rec) == len(rec.table) and rec["energy_request_j"].equals(rec.table["energy_request_j"])
    assert rec.iloc[0]["rank"] == 1 and rec.attrs["objective"] == "energy" and "gpu" in rec
    assert recommend(MODEL, ["H100"], max_gpus=2, batches=[8, 64], return_all=True).table.equals(rec.table)
