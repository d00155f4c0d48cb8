"""Physics of the features: fixed formulas, checked on hand-computable cases."""
import numpy as np
import pandas as pd
import pytest

from energylens.data.schema import validate
from energylens.features import compute_features


def _rows(**cols):
    base = {"model": "meta-llama/Llama-3.1-8B", "gpu": "H100", "num_gpus": 1, "tp": 1, "pp": 1, "batch_size": 1,
            "input_tokens": 512.0, "output_tokens": 256.0}
    base.update(cols)
    n = max(len(v) if isinstance(v, list) else 1 for v in base.values())
    return validate(pd.DataFrame({k: v if isinstance(v, list) else [v] * n for k, v in base.items()}), require_energy=False)


def test_dense_decode_reads_all_weights_and_kv_grows_with_context():
    f = compute_features(_rows(input_tokens=[128.0, 2048.0]))
    assert f.weight_bytes_step[0] == pytest.approx(8.03e9 * 2)
    kv_per_token = 2 * 32 * 8 * 128 * 2
    assert f.kv_bytes_step[0] == pytest.approx(kv_per_token * (128 + 128))
    assert f.kv_bytes_step[1] > f.kv_bytes_step[0]


def test_moe_touches_more_experts_with_batch_and_saturates():
    f = compute_features(_rows(model="mistralai/Mixtral-8x7B-Instruct-v0.1", num_gpus=2, tp=2, batch_size=[1, 4, 64]))
    w = f.weight_bytes_step
    assert w[0] < w[1] < w[2] <= 46.7e9 * 2 * 1.0001
    assert w[2] == pytest.approx(46.7e9 * 2, rel=0.01)  # 64 tokens touch all 8 experts
    assert w[0] == pytest.approx(12.9e9 * 2, rel=0.02)  # one token reads the active parameters


def test_kv_cache_caps_the_running_batch():
    f = compute_features(_rows(model="meta-llama/Llama-3.1-70B", gpu="A100 80GB", num_gpus=2, tp=2,
                               batch_size=[8, 4096], input_tokens=4000.0, output_tokens=2000.0))
    assert f.batch[0] == pytest.approx(8, rel=0.01) and f.batch[1] < 200
    assert f.kv_fits.all()


def test_weights_that_do_not_fit_are_flagged():
    f = compute_features(_rows(model="meta-llama/Llama-3.1-405B", gpu="A40"))
    assert not f.kv_fits[0]


def test_recurrent_state_from_catalog_or_estimated():
    f = compute_features(_rows(model="nvidia/NVIDIA-Nemotron-Nano-9B-v2", batch_size=10))
    assert f.kv_bytes_step[0] / 10 > 2 * 70.8e6  # state read and written each step
    f = compute_features(_rows(model="my/mamba", arch="ssm", params_total_b=2.7, params_active_b=2.7, layers=64,
                               hidden_size=2560, batch_size=10))
    assert f.kv_bytes_step[0] / 10 == pytest.approx(2 * 64 * 2 * 2560 * 128 * 2)


def test_visual_tokens_column_wins_over_task_assumption():
    f = compute_features(_rows(model="Qwen/Qwen3-VL-8B-Instruct", modality="image", task="image-chat",
                               input_tokens=1300.0, visual_tokens=[np.nan, 300.0]))
    assert f.flops_pf_vision[0] == pytest.approx(2 * 0.6e9 * 1200)
    assert f.flops_pf_vision[1] == pytest.approx(2 * 0.6e9 * 300)


def test_tp_and_ep_collectives_only_when_parallel():
    f = compute_features(_rows(model="mistralai/Mixtral-8x7B-Instruct-v0.1", num_gpus=[1, 4, 4], tp=[1, 4, 4],
                               ep=[1, 1, 4], batch_size=32))
    assert f.t_allreduce_step[0] == 0 and f.t_allreduce_step[1] > 0
    assert f.t_alltoall_step[1] == 0 and f.t_alltoall_step[2] > 0
