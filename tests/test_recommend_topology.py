"""Tensor parallelism stays inside one node; pipeline and data parallelism span nodes."""
from hypothesis import given, settings
from hypothesis import strategies as st

from energylens import recommend
from energylens.catalog import hardware_catalog, model_catalog
from energylens.recommendation.space import NODE_GPUS, parallel_layouts


def test_no_tensor_parallel_group_wider_than_a_node():
    spec = model_catalog().get("meta-llama/Llama-3.1-70B-Instruct")
    layouts = parallel_layouts(spec, 4 * NODE_GPUS)
    wide = [r for tp, pp, ep, dp, r in layouts if tp > NODE_GPUS]
    assert wide and all(r.startswith("topology:") and f"tp={tp}" in r
                        for (tp, *_), r in zip([lay for lay in layouts if lay[0] > NODE_GPUS], wide))
    assert any(tp == NODE_GPUS and pp * dp == 4 and not r for tp, pp, ep, dp, r in layouts)


def test_recommend_over_two_nodes_offers_pipeline_and_data_parallel_only():
    res = recommend("meta-llama/Llama-3.1-70B-Instruct", ["H200"], max_gpus=16, ttft_slo_ms=None, itl_slo_ms=None,
                    return_all=True)
    assert (res["tp"] <= NODE_GPUS).all()
    sixteen = res[res["num_gpus"] == 16]
    assert len(sixteen) and ((sixteen["pp"] > 1) | (sixteen["dp"] > 1)).all()


@settings(max_examples=12, deadline=None)
@given(model=st.sampled_from(["meta-llama/Llama-3.1-405B", "meta-llama/Llama-3.1-70B", "deepseek-ai/DeepSeek-V3",
                              "meta-llama/Llama-3.1-8B"]),
       gpu=st.sampled_from(["A100-40GB", "H100", "L40S"]), budget=st.integers(1, 80))
def test_a_larger_budget_never_loses_a_feasible_deployment(model, gpu, budget):
    """The feasible deployments at --max-gpus B are among those at 2B (the GPU counts tried at B are a subset of
    those at 2B, and each count's layouts do not depend on the budget)."""
    from energylens.recommendation.search import _fit_mask
    from energylens.recommendation.space import default_gpu_counts

    spec = model_catalog().get(model)
    gpus = [hardware_catalog().get(gpu)]
    assert set(default_gpu_counts(budget, spec)) <= set(default_gpu_counts(2 * budget, spec))

    def feasible(b):
        df, _, ok = _fit_mask(spec, gpus, b, [1, 64], 1024, 256, 0.0)
        return set(map(tuple, df.loc[ok, ["num_gpus", "tp", "pp", "ep", "dp", "batch_size"]].to_numpy().tolist()))

    assert feasible(budget) <= feasible(2 * budget)


def test_the_budget_finds_the_layer_split_of_126_layers():
    """405B (126 layers) on 40 GB GPUs needs a pipeline of 3 or more stages: budgets of 64 and 128 find one."""
    for budget in (24, 64, 128):
        res = recommend("meta-llama/Llama-3.1-405B", ["A100-40GB"], max_gpus=budget, batches=[64])
        assert len(res) > 0 and (res["pp"] % 3 == 0).any() | (res["pp"] % 7 == 0).any()
