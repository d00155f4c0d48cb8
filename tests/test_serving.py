"""Serving latency under continuous batching (model/serving.py) and its use by recommend."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from energylens.model import serving
from energylens.recommendation.search import DEFAULT_ITL_SLO_MS, DEFAULT_TTFT_SLO_MS, recommend


def cb(t_pf, t_dec, b, l_in, l_out, budget=8192):
    return serving.continuous_batching(np.array([t_pf]), np.array([t_dec]), np.array([b]), np.array([l_in]),
                                       np.array([l_out]), np.array([budget]))


def test_one_request_waits_half_a_step_then_runs_its_own_prefill():
    out = cb(t_pf=0.05, t_dec=0.01, b=1, l_in=1000, l_out=100)
    # Alone, a request's decode steps carry no prefill: ITL is the decode step and TTFT its prefill and half a step.
    assert out["tpot_s"][0] == pytest.approx(0.01)
    assert out["ttft_s"][0] == pytest.approx(0.5 * 0.01 + 0.05)
    assert out["latency_s"][0] == pytest.approx(out["ttft_s"][0] + 99 * 0.01)
    assert not out["prefill_bound"][0]


def test_batch_one_counts_its_prefill_once():
    out = cb(t_pf=1.0, t_dec=0.01, b=1, l_in=1000, l_out=100)  # the audit's case: latency about 2 s, not 3
    assert out["latency_s"][0] == pytest.approx(0.005 + 1.0 + 99 * 0.01)


def test_no_prompt_still_takes_a_step_to_the_first_token():
    out = cb(t_pf=0.001, t_dec=0.02, b=16, l_in=0, l_out=100)
    assert out["ttft_s"][0] >= 0.02


def test_the_budget_is_raised_only_at_or_past_the_concurrency():
    lo = cb(t_pf=1.0, t_dec=0.02, b=1500, l_in=8000, l_out=100, budget=2048)  # 548 tokens of room, as vLLM
    hi = cb(t_pf=1.0, t_dec=0.02, b=2048, l_in=8000, l_out=100, budget=2048)  # raised to 4096: 2048 of room
    assert lo["prefill_bound"][0] and hi["prefill_bound"][0]
    assert lo["ttft_s"][0] / lo["tpot_s"][0] > hi["ttft_s"][0] / hi["tpot_s"][0]


def test_long_prompts_are_cut_into_chunks_of_the_room_beside_the_decodes():
    short = cb(t_pf=1.0, t_dec=0.02, b=64, l_in=4000, l_out=500)
    long = cb(t_pf=1.0, t_dec=0.02, b=64, l_in=20000, l_out=500)  # 3 chunks of 8128 tokens
    assert long["ttft_s"][0] > short["ttft_s"][0] + 2 * 0.02


def test_prefill_sets_the_pace_when_prompts_arrive_faster_than_the_budget():
    out = cb(t_pf=10.0, t_dec=0.05, b=512, l_in=8000, l_out=50)
    assert out["prefill_bound"][0]
    room = 8192 - 512
    steps = 512 * 8000 / room - 50 + 0.5
    assert out["tpot_s"][0] == pytest.approx(0.05 + 511 / 512 * 10.0 / (steps + 50))


def test_decode_only_workload_keeps_the_decode_step():
    out = cb(t_pf=0.0, t_dec=0.03, b=32, l_in=0, l_out=200)
    assert out["tpot_s"][0] == pytest.approx(0.03)


def test_token_budget_follows_the_engine_default_per_gpu():
    got = serving.default_token_budget(["H100", "A100-SXM4-80GB", "L4", "B200", "MI250", "Max-1550", "MI300X"],
                                       [80, 80, 24, 180, 128, 128, 192])
    assert got.tolist() == [8192, 2048, 2048, 8192, 2048, 2048, 8192]


@settings(max_examples=200, deadline=None)
@given(t_pf=st.floats(1e-5, 1e3), t_dec=st.floats(1e-5, 10), b=st.integers(1, 100_000),
       l_in=st.floats(0, 1e6), l_out=st.floats(0.5, 1e6), budget=st.integers(1, 1_000_000))
def test_latencies_are_finite_and_ordered(t_pf, t_dec, b, l_in, l_out, budget):
    out = cb(t_pf, t_dec, b, l_in, l_out, budget)
    assert np.isfinite(out["ttft_s"]).all() and np.isfinite(out["latency_s"]).all()
    assert out["tpot_s"][0] >= t_dec
    assert out["ttft_s"][0] >= t_pf / b  # at least the request's own share of prefill
    assert out["latency_s"][0] >= out["ttft_s"][0]


def test_predict_frame_has_the_serving_columns_and_schema_md_documents_them():
    from pathlib import Path

    from energylens.model.default import default_model

    rows = recommend("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=1, ttft_slo_ms=None, itl_slo_ms=None)
    assert {"batch_prefill_ms", "decode_step_ms"} <= set(rows.columns)
    doc = (Path(__file__).resolve().parents[1] / "docs" / "SCHEMA.md").read_text()
    from energylens.recommendation.search import enumerate_candidates

    cand = enumerate_candidates("meta-llama/Llama-3.1-8B", ["H100"], 1, 1024, 256, [1, 64])
    frame = default_model().predict_frame(cand[cand["reason"] == ""])
    for col in frame.columns:
        assert f"`{col}`" in doc, col
    # Serving TTFT at batch 64 is far below the prefill of 64 prompts at once.
    b64 = frame[cand.loc[frame.index, "batch_size"] == 64]
    assert (b64["pred_serving_ttft_s"] < 0.5 * b64["pred_ttft_s"]).all()


def test_recommend_applies_default_slos_and_says_which_latency():
    res = recommend("meta-llama/Llama-3.1-70B-Instruct", ["H100", "B200"], max_gpus=8)
    assert (res["ttft_ms"] <= DEFAULT_TTFT_SLO_MS).all() and (res["itl_ms"] <= DEFAULT_ITL_SLO_MS).all()
    assert "continuous batching" in res.attrs["latency_definition"]
    assert res.attrs["slo"]["source"].startswith("MLPerf")
    assert "end-to-end latency" in res.attrs["latency_optimal_metric"]
    lifted = recommend("meta-llama/Llama-3.1-70B-Instruct", ["H100", "B200"], max_gpus=8, ttft_slo_ms=None,
                       itl_slo_ms=None)
    assert len(lifted) >= len(res)


def test_cli_slo_none_lifts_it_and_json_states_the_definition(run_cli):
    args = ["recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", "2", "--json"]
    code, out = run_cli(*args)
    default = json.loads(out)
    code2, out2 = run_cli(*args, "--ttft-slo-ms", "none", "--itl-slo-ms", "none")
    lifted = json.loads(out2)
    assert code == code2 == 0
    assert default["ttft_slo_ms"] == DEFAULT_TTFT_SLO_MS and lifted["ttft_slo_ms"] is None
    assert "continuous batching" in default["latency_definition"]
    assert lifted["meeting_slo"] >= default["meeting_slo"]
    code, out = run_cli(*args, "--ttft-slo-ms", "soon")
    assert code == 2 and "--ttft-slo-ms" in out and len(out.strip().splitlines()) == 1


def test_an_slo_nothing_meets_says_which_and_how_to_lift_it():
    from energylens.errors import InfeasibleError

    with pytest.raises(InfeasibleError, match="ITL SLO 0.001 ms.*none"):
        recommend("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=2, itl_slo_ms=0.001)


def test_recommend_json_explains_its_columns_and_the_prefill_phase(run_cli):
    code, out = run_cli("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", "1", "--json")
    payload = json.loads(out)
    row = payload["recommendations"][0]
    assert row["prefill_phase_pct"] == pytest.approx(100 * row["prefill_energy_j"] / row["energy_request_j"])
    assert "prefill_phase_pct" in payload["columns"] and "<group>_pct" in payload["columns"]


def test_output_tokens_below_one_are_refused(run_cli):
    code, out = run_cli("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--output-tokens", "0.5")
    assert code == 2 and "--output-tokens" in out and len(out.strip().splitlines()) == 1
