import json
import time

import numpy as np
import pytest

from energylens import recommend
from energylens.catalog import hardware_catalog, model_catalog
from energylens.errors import CatalogError, EnergyLensError, InfeasibleError
from energylens.features.physics import ACTIVATION_RESERVE_GB, MEMORY_USABLE
from energylens.model.default import default_model
from energylens.recommendation.space import _divisors, candidate_table, default_gpu_counts, parallel_layouts, tp_valid


def _feasible(row, model, gpu, slack=1.03):
    """Independent memory check: weights plus the batch's KV cache fit in the replica's memory."""
    bpp = {"bf16": 2, "fp8": 1}.get(model.precision, 2)
    gpus = row["num_gpus"] / row["dp"]
    weights = model.params_total_b * 1e9 * bpp
    if row["ep"] > 1 and row["dp"] > 1:  # DP attention + EP experts: experts stored once over all GPUs
        k = model.active_experts / model.experts
        routed = (model.params_total_b - model.params_active_b) / (1 - k)
        weights = (model.params_total_b - routed + routed / row["dp"]) * 1e9 * bpp
    kv_tok = 2 * model.kv_layers * model.kv_heads * model.head_dim * 2
    need = weights + (row["batch_size"] / row["dp"]) * kv_tok * (1024 + 256 / 2)
    return need <= gpus * (gpu.mem_gb * 2**30 * MEMORY_USABLE - ACTIVATION_RESERVE_GB * 1e9) * slack


@pytest.mark.parametrize("name, gpu, max_gpus", [("meta-llama/Llama-3.1-8B", "H100", 2),
                                                  ("meta-llama/Llama-3.1-70B", "A100 80GB", 4),
                                                  ("mistralai/Mixtral-8x7B-Instruct-v0.1", "H100", 4)])
def test_best_matches_exhaustive_enumeration(name, gpu, max_gpus):
    res = recommend(name, [gpu], max_gpus=max_gpus, input_tokens=1024, output_tokens=256, batches=[1, 8, 64])
    model, spec = model_catalog().get(name), hardware_catalog().get(gpu)
    # Exhaustive: every layout and batch, predicted one by one, feasibility checked independently.
    cand = candidate_table(model, [spec], max_gpus, [1, 8, 64], 1024, 256)
    est = default_model()
    if res.attrs["engine"] != "shared":  # priced with the same engine's coefficients as the recommender
        cand[est.fitted_.engine_column] = res.attrs["engine"]
    best = None
    for _, row in cand.iterrows():  # feasible without slack: recommend may not miss any of these
        if row["reason"] or not _feasible(row, model, spec, slack=1.0):
            continue
        e = est.predict(cand.loc[[_]])[0]
        if best is None or e < best[0] - 1e-9:
            best = (e, row)
    top = res.iloc[0]
    assert top["energy_request_j"] <= best[0] * (1 + 1e-9)
    same = cand[(cand[["num_gpus", "tp", "pp", "ep", "dp", "batch_size"]] == top[["num_gpus", "tp", "pp", "ep", "dp",
                                                                                  "batch_size"]].to_numpy()).all(axis=1)]
    assert top["energy_request_j"] == pytest.approx(est.predict(same.iloc[[0]])[0], rel=1e-12)
    for _, r in res.iterrows():  # everything recommended is feasible
        assert _feasible(r, model, spec) and tp_valid(model, r["tp"]) and model.layers % r["pp"] == 0
        assert r["tp"] * r["pp"] * r["dp"] == r["num_gpus"] <= max_gpus


def test_ranked_by_energy_and_flags():
    res = recommend("meta-llama/Llama-3.1-8B-Instruct", ["H100", "A100"], max_gpus=4)
    assert np.all(np.diff(res["energy_request_j"]) >= 0)
    assert res["latency_optimal"].sum() == 1 and res["tp_default"].sum() == 1
    assert res.loc[res["latency_optimal"], "savings_vs_latency_optimal_pct"].iloc[0] == pytest.approx(0)
    # The default: all of the largest GPU count in one TP group, on the best row's GPU type; its savings
    # figure is recomputed from the energies (it was only checked to be >= 0, true by construction).
    best, default = res.iloc[0], res[res["tp_default"]].iloc[0]
    assert default["gpu"] == best["gpu"] and default["tp"] == default["num_gpus"] == 4
    assert (default["pp"], default["dp"], default["ep"]) == (1, 1, 1)
    assert best["savings_vs_tp_default_pct"] == pytest.approx(
        100 * (1 - best["energy_request_j"] / default["energy_request_j"]))
    assert default["energy_request_j"] > best["energy_request_j"]  # one TP group over 4 GPUs costs more for an 8B model
    # Both GPU types of the pool appear, under their canonical catalog names.
    assert set(res["gpu"]) == {"H100-SXM", "A100-SXM4-80GB"}


def test_itl_slo_is_respected():
    res = recommend("meta-llama/Llama-3.1-70B", ["H100"], max_gpus=8, itl_slo_ms=40)
    assert (res["itl_ms"] <= 40).all() and len(res) > 0


def test_infeasible_says_why():
    with pytest.raises(InfeasibleError, match="memory"):
        recommend("meta-llama/Llama-3.1-405B", ["A40"], max_gpus=2)
    with pytest.raises(InfeasibleError, match="ITL SLO"):
        recommend("meta-llama/Llama-3.1-70B", ["H100"], max_gpus=8, itl_slo_ms=0.01)


def test_unknown_names():
    with pytest.raises(CatalogError, match="closest known"):
        recommend("meta-llama/Llama-3.1-7B", ["H100"])
    with pytest.raises(CatalogError, match="unknown GPU"):
        recommend("meta-llama/Llama-3.1-8B", ["H1000X"])


def test_layouts_respect_divisibility():
    model = model_catalog().get("mistralai/Mixtral-8x7B-Instruct-v0.1")
    lay = parallel_layouts(model, 8)
    assert all(tp * pp * dp == 8 for tp, pp, ep, dp, _ in lay)
    assert any(ep == 8 for *_, ep, dp, r in [(a, b, c, d, e) for a, b, c, d, e in lay] if not r)
    bad = [r for tp, pp, ep, dp, r in lay if r]
    assert all(r.startswith("divisibility") for r in bad)


def test_cli_json_and_plot(run_cli, tmp_path):
    png = tmp_path / "pareto.png"
    code, out = run_cli("recommend", "--model", "Qwen/Qwen3-8B", "--gpu", "H100", "--max-gpus", 2,
                        "--input-tokens", 512, "--output-tokens", 128, "--json", "--plot", png)
    assert code == 0, out
    payload = json.loads(out)
    assert payload["recommendations"][0]["rank"] == 1 and payload["feasible"] > 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_table_and_errors(run_cli):
    code, out = run_cli("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", 2)
    assert code == 0 and "ranked by predicted energy" in out and "lat-opt: lowest latency" in out
    code, out = run_cli("recommend", "--model", "no-such/model-xyz", "--gpu", "H100")
    assert code == 2 and len(out.strip().splitlines()) == 1
    code, out = run_cli("recommend", "--model", "meta-llama/Llama-3.1-405B", "--gpu", "A40", "--max-gpus", 1)
    assert code == 2 and "memory" in out


def test_model_config_path(tmp_path, run_cli):
    cfg = {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": True}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    res = recommend(str(p), ["H100"], max_gpus=2)
    # This config is Llama-3.2-1B's: the recommendation must match the catalog entry's (it was only checked
    # to be non-empty with num_gpus >= 1, which no result can fail).
    ref = recommend("meta-llama/Llama-3.2-1B", ["H100"], max_gpus=2)
    cols = ["gpu", "num_gpus", "tp", "pp", "dp", "batch_size"]
    assert res.iloc[0][cols].tolist() == ref.iloc[0][cols].tolist()
    np.testing.assert_allclose(res["energy_request_j"].iloc[:5], ref["energy_request_j"].iloc[:5], rtol=1e-3)


# --- bad numbers, duplicate GPUs, large GPU counts (robustness) ---

LLAMA = "meta-llama/Llama-3.1-8B"


@pytest.mark.parametrize("kwargs, option", [
    ({"output_tokens": float("nan")}, "--output-tokens"),
    ({"output_tokens": float("inf")}, "--output-tokens"),
    ({"output_tokens": 0}, "--output-tokens"),
    ({"output_tokens": -5}, "--output-tokens"),
    ({"output_tokens": 1e308}, "--output-tokens"),
    ({"output_tokens": 10_000_001}, "--output-tokens"),
    ({"input_tokens": float("nan")}, "--input-tokens"),
    ({"input_tokens": float("-inf")}, "--input-tokens"),
    ({"input_tokens": -1}, "--input-tokens"),
    ({"input_tokens": 1e308}, "--input-tokens"),
    ({"visual_tokens": float("nan")}, "--visual-tokens"),
    ({"visual_tokens": 2048, "input_tokens": 1024}, "--visual-tokens"),
    ({"visual_tokens": -1}, "--visual-tokens"),
    ({"itl_slo_ms": float("nan")}, "--itl-slo-ms"),
    ({"itl_slo_ms": 0}, "--itl-slo-ms"),
    ({"itl_slo_ms": -3}, "--itl-slo-ms"),
    ({"ttft_slo_ms": float("inf")}, "--ttft-slo-ms"),
    ({"ttft_slo_ms": 0.0}, "--ttft-slo-ms"),
    ({"max_gpus": 0}, "--max-gpus"),
    ({"max_gpus": 100_001}, "--max-gpus"),
    ({"max_gpus": 1_000_000_000}, "--max-gpus"),
    ({"batches": [0]}, "--batch"),
    ({"batches": [1, 10**12]}, "--batch"),
])
def test_bad_numbers_name_their_option(kwargs, option):
    """The Python API names the keyword (the CLI the option: test_cli_bad_numbers_are_one_line_errors)."""
    keyword = {"--batch": "batches"}.get(option, option.lstrip("-").replace("-", "_"))
    with pytest.raises(EnergyLensError) as info:
        recommend(LLAMA, ["H100"], **{"max_gpus": 2, **kwargs})
    msg = str(info.value)
    assert msg.startswith(keyword + " ") and "\n" not in msg
    assert not isinstance(info.value, InfeasibleError)  # refused as input, not as "nothing fits"


def test_bounds_are_inclusive():
    res = recommend(LLAMA, ["H100"], max_gpus=1, input_tokens=0, output_tokens=1, batches=[1])
    assert len(res) == 1
    with pytest.raises(InfeasibleError):  # 10 M tokens per request is accepted as input; nothing fits it
        recommend(LLAMA, ["H100"], max_gpus=1, input_tokens=10_000_000, output_tokens=10_000_000, batches=[1])


@pytest.mark.parametrize("args, option", [
    (["--output-tokens", "nan"], "--output-tokens"),
    (["--input-tokens", "nan"], "--input-tokens"),
    (["--input-tokens", "inf"], "--input-tokens"),
    (["--output-tokens", "1e308"], "--output-tokens"),
    (["--input-tokens", "1e308"], "--input-tokens"),
    (["--itl-slo-ms", "nan"], "--itl-slo-ms"),
    (["--ttft-slo-ms", "-1"], "--ttft-slo-ms"),
    (["--visual-tokens", "1e9"], "--visual-tokens"),
    (["--max-gpus", "1000000000"], "--max-gpus"),
    (["--max-gpus", "-3"], "--max-gpus"),
    (["--batch", "0"], "--batch"),
])
def test_cli_bad_numbers_are_one_line_errors(run_cli, args, option):
    code, out = run_cli("recommend", "--model", LLAMA, "--gpu", "H100", "--max-gpus", 2, *args)
    assert code == 2, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and option in lines[0], out


def test_duplicate_gpus_count_once_in_the_users_order(run_cli):
    one = recommend(LLAMA, ["H100"], max_gpus=2, batches=[1, 8])
    for pool in (["H100", "H100"], ["H100", "H100-SXM"], ["H100-SXM", "H100", "h100"]):
        res = recommend(LLAMA, pool, max_gpus=2, batches=[1, 8])
        assert len(res) == len(one) and res.attrs["candidates"] == one.attrs["candidates"], pool
        assert not res.duplicated(["gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size"]).any()
    mixed = recommend(LLAMA, ["A100", "H100", "A100-SXM4-80GB"], max_gpus=1, batches=[1])
    assert mixed.attrs["gpus"] == ["A100-SXM4-80GB", "H100-SXM"] and len(mixed) == 2
    code, out = run_cli("recommend", "--model", LLAMA, "--gpu", "H100", "--gpu", "H100-SXM", "--gpu", "H100",
                        "--max-gpus", 2, "--json")
    assert code == 0, out
    payload = json.loads(out)
    assert payload["gpus"] == ["H100-SXM"]
    keys = [(r["gpu"], r["num_gpus"], r["tp"], r["pp"], r["ep"], r["dp"], r["batch_size"]) for r in payload["recommendations"]]
    assert len(keys) == len(set(keys))


def test_duplicate_batches_count_once():
    a = recommend(LLAMA, ["H100"], max_gpus=2, batches=[8, 1, 8, 1])
    b = recommend(LLAMA, ["H100"], max_gpus=2, batches=[8, 1])
    assert a.attrs["candidates"] == b.attrs["candidates"] and len(a) == len(b)


def test_divisors_and_gpu_counts():
    for n in range(1, 400):
        assert _divisors(n) == [d for d in range(1, n + 1) if n % d == 0]
        halvings = {n >> j for j in range(n.bit_length()) if n % (1 << j) == 0}
        assert default_gpu_counts(n) == [k for k in range(1, n + 1) if k & (k - 1) == 0 or k in halvings]
    t = time.perf_counter()
    assert _divisors(1_000_000_007) == [1, 1_000_000_007]  # a prime: sqrt(n) steps, not n
    assert len(_divisors(735_134_400)) == 1344  # highly composite
    assert time.perf_counter() - t < 2


def test_max_gpus_bound_is_fast(run_cli):
    t = time.perf_counter()
    res = recommend(LLAMA, ["H100"], max_gpus=100_000, batches=[1, 64])
    assert time.perf_counter() - t < 20
    assert res["num_gpus"].max() <= 100_000 and 100_000 in set(candidate_table(
        model_catalog().get(LLAMA), [hardware_catalog().get("H100")], 100_000, [1], 1024, 256)["num_gpus"])
    t = time.perf_counter()
    code, out = run_cli("recommend", "--model", LLAMA, "--gpu", "H100", "--max-gpus", 100_001)
    assert code == 2 and len(out.strip().splitlines()) == 1 and "--max-gpus" in out and "100,000" in out
    code, out = run_cli("recommend", "--model", LLAMA, "--gpu", "H100", "--max-gpus", 10**9)
    assert code == 2 and "--max-gpus" in out
    assert time.perf_counter() - t < 5
