"""recommend at a load (--rate, --trace): the physics of load, the fitted formula in the simulation, the options,
bad input, and the fields Python, --json and the web carry."""
import json

import numpy as np
import pandas as pd
import pytest

from energylens import recommend
from energylens.catalog import hardware_catalog
from energylens.features.physics import compute_features
from energylens.model.default import default_model
from energylens.recommendation import load as L
from energylens.recommendation.objectives import assumptions
from energylens.recommendation.search import _candidates, _resolve_gpus
from energylens.traffic import Engine, StepTime, Workload, poisson, simulate

MODEL = "meta-llama/Llama-3.1-8B"


@pytest.fixture(autouse=True)
def few_requests(monkeypatch):
    """Generated loads of 600 requests keep each test to seconds (the default is 5,000)."""
    monkeypatch.setattr(L, "POISSON_REQUESTS", 600)


def _models(model=MODEL, gpus=("H100",), max_gpus=2, mean_in=512.0, mean_out=128.0, batches=None):
    est = default_model()
    cand, *_ = _candidates(model, _resolve_gpus(list(gpus)), max_gpus, mean_in, mean_out, [64], None, None, 0)
    rows = cand[cand["reason"] == ""].reset_index(drop=True)
    coef = est.fitted_.engines["mlenergy-v3"].values
    return est, coef, L.replica_models(rows, est.structure_, coef, mean_in, mean_out, batches, 4096)


# ------------------------------------------------------------------------------------------------ the formula


@pytest.mark.parametrize("model", [MODEL, "Qwen/Qwen3-30B-A3B"])
def test_step_time_and_power_are_the_formulas_t_step_and_p_decode(model):
    """A pure decode step of B requests at the mean context takes the model's t_step at batch B and draws its
    p_decode: exactly for a dense model (affine), within 1% for MoE (experts touched, tabled by tokens)."""
    est, coef, m = _models(model, gpus=("H100", "B200"), max_gpus=4, mean_in=1024.0, mean_out=256.0)
    B = np.array([1.0, 2.0, 37.0, 300.0])
    for e in range(len(m.layouts)):
        rows = m.layouts.iloc[[e] * len(B)].reset_index(drop=True)
        rows["batch_size"], rows["input_tokens"], rows["output_tokens"], rows["gpu_mem_gb"] = B, 1024.0, 256.0, 1e9
        val = est.structure_.evaluate(compute_features(rows), coef)
        ctx = 1024 + 128
        dt = m.steps[e](B, B * ctx, 0, 0)
        power = L.step_power(m, e, B, B * ctx, 0, 0, B, dt)
        tol = 1e-9 if model == MODEL else 1e-2
        assert np.allclose(dt, val["t_step"], rtol=tol), (e, dt, val["t_step"])
        assert np.allclose(power, val["p_decode"], rtol=max(tol, 1e-4)), (e, power, val["p_decode"])
        assert (power >= m.p_static[e] - 1e-9).all() and (power <= m.tdp[e] + 1e-9).all()


def test_prefill_steps_cost_the_formulas_prefill_per_token():
    """A step of p prompt tokens adds what the formula's batch prefill adds per prompt token and attention pair."""
    est, coef, m = _models()
    L_ = np.array([256.0, 1024.0, 4096.0])
    rows = m.layouts.iloc[[0] * 3].reset_index(drop=True)
    rows["batch_size"], rows["input_tokens"], rows["gpu_mem_gb"] = 1.0, L_, 1e9
    t_pf = est.structure_.evaluate(compute_features(rows), coef)["t_prefill"]
    step = m.steps[0]
    pairs = L_ * (L_ + 1) / 2
    added = step(0, 0, L_, pairs) - step(0, 0, 0, 0)
    assert np.allclose(np.diff(added), np.diff(t_pf), rtol=0.02)


# ------------------------------------------------------------------------------------------------ physics of load


def _one_replica_energy(m, e, rate):
    w = poisson(rate, input_tokens=512, output_tokens=128, requests=600, seed=3)
    res = simulate(w, m.steps[e], engine=m.engines[e], record_steps=True)
    return L.price(m, e, res), res, w


def test_energy_per_request_falls_as_the_rate_rises_to_saturation():
    _, _, m = _models()
    e = 0  # H100 x1
    c = L._Cached()
    L._saturation(m, e, poisson(1, input_tokens=512, output_tokens=128, requests=600, seed=3), c)
    rates = c.sustainable_rps * np.array([0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 0.95])
    per_request = [(_one_replica_energy(m, e, r)[0].energy_j / 600) for r in rates]
    assert all(a > b for a, b in zip(per_request, per_request[1:])), per_request
    assert per_request[-1] >= c.saturation_j * 0.999  # the load never beats every GPU busy


def test_every_gpu_draws_between_idle_and_tdp_and_busy_plus_idle_is_the_horizon():
    _, _, m = _models()
    for e in range(len(m.layouts)):
        pr, res, _ = _one_replica_energy(m, e, 2.0)
        mean = pr.energy_j / pr.gpu_seconds
        assert m.idle[e] <= mean <= m.tdp[e]
        assert pr.busy_s == pytest.approx(res.busy_s.sum())
        assert pr.gpu_seconds == pytest.approx(m.gpus[e] * res.replicas * res.horizon_s)


def _hand_built(gpus=2.0):
    """One layout whose every step takes 0.5 s and draws p_static = 200 W (no dynamic demand); idle 100 W."""
    step = StepTime.constant(0.5)
    grid = np.array([1, 2])
    lay = pd.DataFrame({"gpu": ["H100-SXM"], "tp": [1], "pp": [1], "ep": [1], "dp": [1], "gpus_per_replica": [2],
                        "max_num_seqs": [4], "reason": [""]})
    return L.ReplicaModels(lay, [step], [Engine(4, 16)], np.zeros((1, 5)), [None], grid, np.ones((1, 2)),
                           np.ones((1, 2)), np.array([200.0]), np.array([200.0]), np.array([700.0]),
                           np.array([100.0]), np.array([gpus]), np.array([1.0]))


def test_kwh_per_day_on_a_hand_built_case():
    """Two requests 10 s apart, each a prefill step and a decode step of 0.5 s, on one replica of 2 GPUs: busy
    2 s of an 11 s horizon: 2 x (200 W x 2 s + 100 W x 9 s) = 2600 J, 1300 J/request; the offered rate is 0.1/s:
    kWh/day = 0.1 x 86,400 x 1300 / 3.6e6 = 3.12."""
    m = _hand_built()
    w = Workload(np.array([0.0, 10.0]), np.array([1, 1]), np.array([2, 2]))
    t = L.Traffic("hand-built", w.offered_rate, w)
    row = L._serve(m, 0, t, L._Cached(sustainable_rps=1e9, saturation_j=1.0), (None, None), 99)
    assert row["replicas"] == 1 and row["energy_request_j"] == pytest.approx(1300.0, rel=1e-12)
    assert row["idle_energy_pct"] == pytest.approx(100 * 1800 / 2600)
    assert row["utilization"] == pytest.approx(2 / 11)
    assert row["power_per_gpu_w"] == pytest.approx(2600 / (2 * 11))
    costs = assumptions(None, None, None, None, None, hardware_catalog())
    L._daily(row, t.rate_rps, "H100-SXM", costs)
    assert row["kwh_per_day"] == pytest.approx(3.12, rel=1e-12)
    assert row["kwh_per_day"] == pytest.approx(t.rate_rps * 86_400 * row["energy_request_j"] / 3.6e6, rel=1e-15)
    assert row["kgco2e_per_day"] == pytest.approx(3.12 * costs.pue.value * costs.grid_gco2_per_kwh.value / 1000)
    assert row["usd_per_day"] == pytest.approx(2 * 24 * costs.price("H100-SXM").value)


def test_busy_floor_is_the_union_of_latencies_alone():
    arrival = np.array([0.0, 1.0, 5.0, 5.5])
    latency = np.array([2.0, 0.5, 1.0, 0.2])
    assert L.busy_floor(arrival, latency) == pytest.approx(2.0 + 1.0)


# ------------------------------------------------------------------------------------------------ recommend


@pytest.fixture(scope="module")
def curve():
    import energylens.recommendation.load as load_module

    saved = load_module.POISSON_REQUESTS
    load_module.POISSON_REQUESTS = 600
    try:
        return recommend(MODEL, ["H100", "B200"], max_gpus=2, input_tokens=512, output_tokens=128,
                         rate=[0.5, 4, 40], top=3)
    finally:
        load_module.POISSON_REQUESTS = saved


def test_replicas_keep_up_and_load_costs_at_least_saturation(curve):
    t = curve.load.table
    offered = {tr.rate_rps: tr.workload.offered_rate for tr in curve.load.traffics}
    assert (t["replicas"] * t["sustainable_rps"] >= t["rate_rps"].map(offered) * (1 - 1e-12)).all()
    assert (t["energy_request_j"] >= t["saturation_energy_request_j"]).all()
    assert (t["num_gpus"] == t["replicas"] * t["gpus_per_replica"]).all()
    hw = hardware_catalog()
    for _, r in t.iterrows():
        g = hw.get(r["gpu"])
        assert g.idle_w <= r["power_per_gpu_w"] <= g.tdp_w
        assert r["kwh_per_day"] == pytest.approx(r["rate_rps"] * 86_400 * r["energy_request_j"] / 3.6e6, rel=1e-12)
        assert 0 <= r["idle_energy_pct"] <= 100 and 0 < r["utilization"] <= 1
        assert r["ttft_ms"] <= 2000 and r["tpot_ms"] <= 200  # the default SLOs, at p99


def test_the_ranking_is_by_energy_within_each_rate_and_the_curve_is_its_first_row(curve):
    t, c = curve.load.table, curve.load.curve
    assert list(c["rate_rps"]) == [0.5, 4.0, 40.0]
    for rate, rows in t.groupby("rate_rps"):
        assert list(rows["rank"]) == list(range(1, len(rows) + 1))
        assert rows["energy_request_j"].is_monotonic_increasing
        best = c[c["rate_rps"] == rate].iloc[0]
        assert best["energy_request_j"] == rows["energy_request_j"].iloc[0]
        sat = rows[rows["saturation_choice"]]
        if len(sat):  # the saturation choice is compared at every rate it can serve
            assert best["choice_changes"] == (not bool(rows["saturation_choice"].iloc[0]))
            assert best["saturation_choice_energy_request_j"] == sat["energy_request_j"].iloc[0]
    # At saturation energy per request falls with the rate for the chosen layouts too (more batching).
    assert c["energy_request_j"].is_monotonic_decreasing


def test_pruned_layouts_are_bounded_below_by_what_was_kept():
    """The bound that lets a layout go unsimulated is a lower bound: with every layout simulated, each layout's
    energy at the load is at least its bound."""
    _, _, m = _models(gpus=("H100", "B200"))
    w = poisson(3, input_tokens=512, output_tokens=128, requests=600, seed=0)
    t = L.Traffic("test", 3.0, w)
    costs = assumptions(None, None, None, None, None, hardware_catalog())
    for e in range(len(m.layouts)):
        c = L._alone(m, e, w, (2.0, 0.2), 99)
        before = L._bound("energy", c, m, e, t, costs)
        L._saturation(m, e, w, c)
        after = L._bound("energy", c, m, e, t, costs)
        row = L._serve(m, e, t, c, (2.0, 0.2), 99)
        assert before <= after * (1 + 1e-12) and after <= row["energy_request_j"], (e, before, after, row)


def test_json_and_python_carry_the_load(curve, run_cli, tmp_path):
    d = curve.to_dict()
    assert {"traffic", "curve", "ranking", "slo_percentile", "columns", "per_rate"} <= set(d["load"])
    assert len(d["load"]["curve"]) == 3 and d["load"]["ranking"][0]["rank"] == 1
    json.dumps(d)  # JSON-ready
    code, out = run_cli("recommend", "--model", MODEL, "--gpu", "H100", "--max-gpus", "1", "--rate", "3",
                        "--input-tokens", "256", "--output-tokens", "64", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["load"]["curve"][0]["replicas"] >= 1 and "kwh_per_day" in payload["load"]["ranking"][0]


def test_cli_table_and_curve_plot(run_cli, tmp_path):
    code, out = run_cli("recommend", "--model", MODEL, "--gpu", "H100", "--max-gpus", "2", "--rate", "3",
                        "--input-tokens", "256", "--output-tokens", "64", "--slo-percentile", "90")
    assert code == 0, out
    assert "p90 TTFT <= 2000 ms" in out and "kWh" in out and "Against saturation" in out
    plot = tmp_path / "curve.png"
    code, out = run_cli("recommend", "--model", MODEL, "--gpu", "H100", "--max-gpus", "1", "--rate", "0.5,3",
                        "--input-tokens", "256", "--output-tokens", "64", "--plot", plot)
    assert code == 0, out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "req/s" in out


def test_a_trace_is_served_and_rate_scale_speeds_it_up(tmp_path):
    path = tmp_path / "trace.csv"
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.exponential(0.5, 300))
    pd.DataFrame({"arrival_s": t, "prompt_tokens": rng.integers(50, 800, 300),
                  "output_tokens": rng.integers(10, 200, 300)}).to_csv(path, index=False)
    slow = recommend(MODEL, ["H100"], max_gpus=1, trace=path)
    fast = recommend(MODEL, ["H100"], max_gpus=1, trace=path, rate_scale=4)
    assert fast.load.curve["rate_rps"].iloc[0] == pytest.approx(4 * slow.load.curve["rate_rps"].iloc[0])
    assert fast.load.curve["energy_request_j"].iloc[0] < slow.load.curve["energy_request_j"].iloc[0]


# ------------------------------------------------------------------------------------------------ bad input


def _trace(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, message", [
    ("arrival_s,prompt_tokens,output_tokens\n2,10,10\n1,10,10\n", "row 2, column 'arrival_s': 1 is an arrival time "
                                                                  "earlier than the row before"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
     "2023-11-16 18:15:46.6805900,396,109\n", "duplicate timestamp"),
    ("arrival_s,prompt_tokens,output_tokens\n0,10,-3\n", "row 1, column 'output_tokens': expected a whole number of "
                                                         "tokens from 1"),
    ("arrival_s,prompt_tokens,output_tokens\n", "the trace has no requests"),
])
def test_bad_traces_get_one_line_and_exit_2(tmp_path, run_cli, text, message):
    path = _trace(tmp_path, text)
    plot = tmp_path / "out.png"
    code, out = run_cli("recommend", "--model", MODEL, "--gpu", "H100", "--trace", path, "--plot", plot)
    assert code == 2 and message in out and len(out.strip().splitlines()) == 1, out
    assert str(path) in out and not plot.exists()


@pytest.mark.parametrize("args, message", [
    (["--rate", "0"], "--rate must be a number > 0"),
    (["--rate", "nan"], "--rate must be a number > 0"),
    (["--rate", "1,x"], "--rate expects comma-separated numbers"),
    (["--rate", "1", "--rate-sweep"], "give --rate or --rate-sweep, not both"),
    (["--rate-scale", "2"], "--rate-scale replays --trace faster"),
    (["--rate", "1", "--slo-percentile", "95"], "--slo-percentile must be one of 50, 90, 99, got 95"),
])
def test_bad_load_options_get_one_line_and_exit_2(run_cli, args, message):
    code, out = run_cli("recommend", "--model", MODEL, "--gpu", "H100", *args)
    assert code == 2 and message in out and len(out.strip().splitlines()) == 1, out


def test_python_names_the_keyword():
    from energylens.recommendation import RequestError

    with pytest.raises(RequestError, match="^rate must be a number > 0"):
        recommend(MODEL, ["H100"], rate=[1.0, -2.0])
    with pytest.raises(RequestError, match="^slo_percentile must be one of 50, 90, 99"):
        recommend(MODEL, ["H100"], rate=1, slo_percentile=75)


def test_an_slo_no_layout_meets_at_the_load_says_why():
    from energylens.errors import InfeasibleError

    with pytest.raises(InfeasibleError, match="no layout serves the load at the SLOs: .*TPOT alone"):
        recommend(MODEL, ["H100"], max_gpus=1, rate=1, itl_slo_ms=0.5, input_tokens=128, output_tokens=32)


def test_the_web_answers_with_the_load():
    pytest.importorskip("fastapi", reason="the web extra is not installed (pip install '.[web]')")
    pytest.importorskip("multipart", reason="python-multipart (web extra) is not installed")
    from fastapi.testclient import TestClient

    from energylens.web.app import create_app

    body = {"model": MODEL, "gpus": ["H100"], "max_gpus": 1, "input_tokens": 256, "output_tokens": 64,
            "rate": "1,3", "slo_percentile": "90"}
    with TestClient(create_app(), base_url="http://localhost") as client:
        r = client.post("/api/recommend", json=body)
        assert r.status_code == 200, r.text
        load = r.json()["load"]
        assert [c["rate_rps"] for c in load["curve"]] == [1.0, 3.0] and load["slo_percentile"] == 90
        bad = client.post("/api/recommend", json={**body, "rate": "0"})
        assert bad.status_code == 400 and bad.json()["error"].startswith("rate must be a number > 0")
        local = client.post("/api/recommend", json={**body, "trace": "/etc/passwd"})
        assert local.status_code == 400 and "unknown field 'trace'" in local.json()["error"]  # never a server path
        assert 'id="load-form"' in client.get("/").text


def test_no_load_keeps_the_saturation_answer():
    rec = recommend(MODEL, ["H100"], max_gpus=1, batches=[8])
    assert rec.load is None and "load" not in rec.to_dict()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False), min_size=1, max_size=10),
       st.sampled_from(["list", "text"]))
def test_rates_parse_to_sorted_distinct_numbers_from_any_front(rates, form):
    from energylens.recommendation.request import CLI, RecommendOptions

    value = rates if form == "list" else ",".join(repr(r) for r in rates)
    opts = RecommendOptions.parse({"model": MODEL, "gpus": "H100", "rate": value}, CLI)
    assert list(opts.rate) == sorted(set(float(repr(r)) for r in rates)) and opts.has_load


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.floats(max_value=0.0), st.just(float("nan")), st.just(float("inf")), st.floats(min_value=1.0000001e6),
                 st.text(max_size=8).filter(lambda s: s.strip() and not s.strip().replace(".", "", 1).isdigit())))
def test_bad_rates_are_refused_with_one_line(value):
    from energylens.recommendation.request import CLI, RecommendOptions, RequestError

    with pytest.raises(RequestError) as e:
        RecommendOptions.parse({"model": MODEL, "gpus": "H100", "rate": [value]}, CLI)
    assert str(e.value).startswith("--rate ") and "\n" not in str(e.value)
