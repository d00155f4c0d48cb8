"""Tensor parallelism stays inside one node; pipeline and data parallelism span nodes."""
from energylens import recommend
from energylens.catalog import model_catalog
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
