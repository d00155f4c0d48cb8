"""'No feasible deployment' names the binding constraint with its numbers and the smallest change that makes a
deployment feasible; the change it suggests does make one feasible, and a smaller one does not."""
import re

import pytest

from energylens import recommend
from energylens.errors import InfeasibleError
from energylens.recommendation.search import _above


def why(model, gpus, **kw) -> str:
    """The message as the command line words it (options spelled --max-gpus; Python's say max_gpus)."""
    from energylens.recommendation.request import CLI, RecommendOptions
    from energylens.recommendation.search import run

    with pytest.raises(InfeasibleError) as e:
        run(RecommendOptions.parse({"model": model, "gpus": gpus, **kw}, CLI))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("no feasible deployment: ")
    return msg


def test_weights_larger_than_the_pool_say_so_and_suggest_more_gpus_or_a_larger_gpu():
    msg = why("deepseek-ai/DeepSeek-V3", ["H100"], max_gpus=8)
    assert "671 GB of weights > 8 x 80 GB of H100-SXM" in msg, msg
    m = re.search(r"try --max-gpus (\d+), or --gpu (.+)$", msg)
    assert m and int(m.group(1)) == 16, msg
    assert "H200 (141 GB)" in m.group(2)
    # the suggestions are feasible ...
    assert len(recommend("deepseek-ai/DeepSeek-V3", ["H100"], max_gpus=16, batches=[64])) > 0
    assert len(recommend("deepseek-ai/DeepSeek-V3", ["H200"], max_gpus=8, batches=[64])) > 0


def test_the_gpu_count_suggested_is_the_smallest_that_fits():
    msg = why("meta-llama/Llama-3.1-405B", ["H100"], max_gpus=4)
    assert "812 GB of weights > 4 x 80 GB" in msg, msg
    n = int(re.search(r"try --max-gpus (\d+)", msg).group(1))
    free = dict(itl_slo_ms=None, ttft_slo_ms=None)
    assert len(recommend("meta-llama/Llama-3.1-405B", ["H100"], max_gpus=n, **free)) > 0
    with pytest.raises(InfeasibleError):  # one GPU fewer is still too small
        recommend("meta-llama/Llama-3.1-405B", ["H100"], max_gpus=n - 1, **free)


def test_a_budget_the_layer_split_limits_suggests_a_count_that_splits_the_layers():
    # 126 layers: no power-of-two pipeline fits 812 GB on 40 GB GPUs within a node-wide tp; 3 or 7 stages do
    msg = why("meta-llama/Llama-3.1-405B", ["A100-40GB"], max_gpus=2)
    assert "shorten" not in msg and "up to 4096" not in msg, msg
    n = int(re.search(r"try --max-gpus (\d+)", msg).group(1))
    assert n % 2 == 1 or n % 3 == 0 or n % 7 == 0, msg
    # the memory fits at n (the latency SLOs are another constraint, with their own message)
    assert len(recommend("meta-llama/Llama-3.1-405B", ["A100-40GB"], max_gpus=n, itl_slo_ms=None, ttft_slo_ms=None)) > 0


def test_a_batch_the_kv_cache_cannot_hold_says_how_many_it_holds():
    msg = why("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=1, batches=[100_000])
    m = re.search(r"at most (\d+) concurrent requests fit the KV cache of 1 H100-SXM \(the smallest --batch is "
                  r"100000\): try --batch (\d+)$", msg)
    assert m and m.group(1) == m.group(2), msg
    held = int(m.group(1))
    assert len(recommend("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=1, batches=[held])) == 1
    with pytest.raises(InfeasibleError):  # one more does not fit: the suggestion is the smallest change
        recommend("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=1, batches=[held + 1])


def test_a_request_too_long_for_any_gpu_says_where_the_memory_goes():
    msg = why("meta-llama/Llama-3.1-8B", ["H100"], max_gpus=1, input_tokens=10_000_000, output_tokens=10_000_000,
              batches=[1])
    assert "16 GB of weights" in msg and "KV cache of one 20,000,000-token request" in msg, msg


@pytest.mark.parametrize("kw, slo, option", [
    (dict(itl_slo_ms=5), "best predicted ITL", "--itl-slo-ms"),
    (dict(ttft_slo_ms=10), "best predicted TTFT", "--ttft-slo-ms"),
])
def test_an_slo_no_deployment_meets_is_named_with_the_relaxation_that_admits_one(kw, slo, option):
    msg = why("meta-llama/Llama-3.1-70B", ["H100"], max_gpus=8, **kw)
    assert slo in msg and "none lift them" in msg, msg
    relaxed = float(re.search(rf"try {option} ([\d.]+)", msg).group(1))
    key = "itl_slo_ms" if option == "--itl-slo-ms" else "ttft_slo_ms"
    assert len(recommend("meta-llama/Llama-3.1-70B", ["H100"], max_gpus=8, **{key: relaxed})) > 0


def test_two_slos_no_deployment_meets_together_are_relaxed_together():
    msg = why("meta-llama/Llama-3.1-70B", ["H100"], max_gpus=8, itl_slo_ms=5, ttft_slo_ms=10)
    m = re.search(r"try --itl-slo-ms ([\d.]+) --ttft-slo-ms ([\d.]+) \(together\)", msg)
    assert m, msg
    res = recommend("meta-llama/Llama-3.1-70B", ["H100"], max_gpus=8, itl_slo_ms=float(m.group(1)),
                    ttft_slo_ms=float(m.group(2)))
    assert len(res) > 0


@pytest.mark.parametrize("ms, text", [(15.17, "16"), (0.42, "0.43"), (1234.5, "1300"), (58.0, "59"), (9.99, "10")])
def test_round_slos_lie_just_above_the_prediction(ms, text):
    assert _above(ms) == text and float(text) > ms


def test_beyond_every_suggestion_the_true_limit_is_named(tmp_path):
    """When no GPU count up to the suggestion limit fits, the hint names what limits: the weights (split at most
    tp x pp ways, the layer and head counts allow) on a small GPU, one request's KV cache on a large one."""
    from energylens.catalog import hardware_catalog, model_catalog
    from energylens.recommendation.search import SUGGEST_MAX_GPUS, _largest_limit

    catalog = tmp_path / "tiny.toml"
    catalog.write_text('[Tiny-GPU]\nvendor = "Test"\npeak_tflops = 100.0\nmem_bw_tbs = 1.0\nmem_gb = 0.5\n'
                       'tdp_w = 300\nidle_w = 50\nlink_gbs = 100\nsource = "made up for this test"\n')
    tiny = hardware_catalog(catalog).get("Tiny-GPU")
    spell = lambda name: "--" + name.replace("_", "-")  # noqa: E731
    spec = model_catalog().get("meta-llama/Llama-3.1-405B")
    weights = _largest_limit(spec, [tiny], [1], (1024.0, 256.0, 0.0), spell)
    assert "812 GB of weights split at most 1008 ways (tp8·pp126" in weights and "shorten" not in weights, weights
    h100 = hardware_catalog().get("H100")
    small = model_catalog().get("meta-llama/Llama-3.1-8B")
    kv = _largest_limit(small, [h100], [1], (1e9, 1e9, 0.0), spell)
    assert "KV cache" in kv and "shorten --input-tokens / --output-tokens" in kv, kv
    assert SUGGEST_MAX_GPUS >= 1008
