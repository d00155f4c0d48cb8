"""Hugging Face configs read the way their architectures define them (issue 14, point 1).

Fixtures under tests/data/hf_configs/<model>/config.json hold the public config.json fields of each model;
the expected figures are the public parameter counts of the model cards.
"""
import copy
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energylens.catalog import model_catalog, model_from_hf_config
from energylens.catalog.models import MODEL_BOUNDS
from energylens.data.schema import PRECISIONS
from energylens.errors import CatalogError, EnergyLensError

CONFIGS = Path(__file__).parent / "data" / "hf_configs"


def config(name: str) -> Path:
    return CONFIGS / name / "config.json"


def write(tmp_path, cfg: dict, name: str = "config.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(cfg), encoding="utf-8")
    return p


def embedding_b(name: str) -> float:
    """Billions of parameters of one vocab x hidden embedding matrix of a fixture."""
    cfg = json.loads(config(name).read_text())
    text = cfg.get("text_config", cfg)
    return text["vocab_size"] * text["hidden_size"] / 1e9


# (fixture, public total in billions, public active in billions or None)
PUBLIC = [
    ("deepseek-v3", 671, 37),
    ("qwen1.5-moe-a2.7b", 14.3, 2.7),
    ("mixtral-8x7b", 46.7, 12.9),
    ("llama-3.1-8b", 8.03, None),
    ("llama-3.1-70b", 70.6, None),
    ("qwen3-30b-a3b", 30.5, 3.3),
    ("gpt-oss-120b", 117, None),  # active: see test_gpt_oss_active_follows_openai_when_the_input_embedding_is_left_out
    ("llama-4-scout-17b-16e", 109, None),  # active: see test_llama4_scout_active_counts_its_text_path
    ("gemma-3-27b", 27.4, None),
    ("llama-3.2-1b", 1.24, None),
    ("llama-3.1-8b-awq-int4", 8.03, None),
]


@pytest.mark.parametrize("name, total, active", PUBLIC)
def test_public_parameter_counts_within_3_percent(name, total, active):
    spec = model_from_hf_config(config(name))
    assert spec.params_total_b == pytest.approx(total, rel=0.03)
    if active is not None:
        assert spec.params_active_b == pytest.approx(active, rel=0.03)
    else:  # dense: every parameter active
        assert spec.arch == "moe" or spec.params_active_b == spec.params_total_b
    assert spec.warnings == (), spec.warnings  # every family here is read with confidence


def test_gpt_oss_active_follows_openai_when_the_input_embedding_is_left_out():
    # OpenAI's 5.1 B counts the unembedding but not the input embedding (a lookup); EnergyLens counts both,
    # as the Meta, Mistral, Qwen and DeepSeek cards do.
    spec = model_from_hf_config(config("gpt-oss-120b"))
    assert spec.params_active_b - embedding_b("gpt-oss-120b") == pytest.approx(5.1, rel=0.03)
    assert (spec.experts, spec.active_experts, spec.precision) == (128, 4, "mxfp4")


def test_llama4_scout_active_counts_its_text_path():
    # 17 B active per text token; the vision encoder (counted in the total, and in params_active_b as the
    # catalog and the features expect: prefill subtracts it) runs on image tokens only.
    spec = model_from_hf_config(config("llama-4-scout-17b-16e"))
    assert spec.params_active_b - spec.vision_params_b == pytest.approx(17, rel=0.03)
    assert 0.7 < spec.vision_params_b < 0.9 and spec.modality == "image"
    assert (spec.experts, spec.active_experts) == (16, 1)


def test_deepseek_v3_is_mla_with_dense_first_layers_and_a_shared_expert(tmp_path):
    spec = model_from_hf_config(config("deepseek-v3"))
    assert (spec.heads, spec.kv_heads, spec.head_dim, spec.kv_cache_dim) == (128, 1, 576, 576)
    assert spec.precision == "fp8" and spec.arch == "moe" and (spec.experts, spec.active_experts) == (256, 8)
    cfg = json.loads(config("deepseek-v3").read_text())
    no_dense = model_from_hf_config(variant(tmp_path, cfg, first_k_dense_replace=0))
    no_shared = model_from_hf_config(variant(tmp_path, cfg, n_shared_experts=0))
    # Three dense layers hold less than three MoE layers; the shared expert is active for every token.
    assert no_dense.params_total_b > spec.params_total_b
    assert spec.params_active_b - no_shared.params_active_b == pytest.approx(58 * 3 * 7168 * 2048 / 1e9, rel=1e-3)


def test_qwen_moe_shared_expert_counts(tmp_path):
    spec = model_from_hf_config(config("qwen1.5-moe-a2.7b"))
    cfg = json.loads(config("qwen1.5-moe-a2.7b").read_text())
    without = model_from_hf_config(variant(tmp_path, cfg, shared_expert_intermediate_size=0))
    assert spec.params_active_b - without.params_active_b == pytest.approx(24 * 3 * 2048 * 5632 / 1e9, rel=1e-3)


def test_mlp_only_layers_and_sparse_step_make_dense_layers(tmp_path):
    cfg = json.loads(config("qwen3-30b-a3b").read_text())
    base = model_from_hf_config(config("qwen3-30b-a3b"))
    every_other = model_from_hf_config(variant(tmp_path, cfg, decoder_sparse_step=2))
    two_dense = model_from_hf_config(variant(tmp_path, cfg, mlp_only_layers=[0, 1]))
    expert_layer = 128 * 3 * 2048 * 768 + 128 * 2048  # routed experts and router of one layer
    dense_layer = 3 * 2048 * 6144
    assert base.params_total_b - every_other.params_total_b == pytest.approx(24 * (expert_layer - dense_layer) / 1e9,
                                                                              rel=1e-3)
    assert base.params_total_b - two_dense.params_total_b == pytest.approx(2 * (expert_layer - dense_layer) / 1e9,
                                                                            rel=1e-3)


def variant(tmp_path, cfg: dict, **changes) -> Path:
    """A copy of `cfg` with `changes`, in a folder of its own under tmp_path (no index file beside it)."""
    d = tmp_path / f"variant{len(list(tmp_path.iterdir()))}"
    d.mkdir()
    return write(d, {**copy.deepcopy(cfg), **changes})


@pytest.mark.parametrize("name, window, layers", [
    ("gemma-3-27b", 1024, 52),  # five of six layers local (sliding_window_pattern 6, the Gemma 3 default)
    ("gpt-oss-120b", 128, 18),  # layer_types: every other layer
    ("llama-4-scout-17b-16e", 8192, 36),  # chunked attention on the three RoPE layers of four
    ("mixtral-8x7b", 0, 0),  # sliding_window null
    ("qwen3-30b-a3b", 0, 0),  # use_sliding_window false
])
def test_sliding_windows(name, window, layers):
    spec = model_from_hf_config(config(name))
    assert (spec.sliding_window, spec.sliding_layers) == (window, layers)


def test_nested_configs():
    gemma = model_from_hf_config(config("gemma-3-27b"))  # text_config without vocab_size: the Gemma 3 default
    assert gemma.layers == 62 and gemma.vision_params_b == pytest.approx(0.41, rel=0.05)
    omni = model_from_hf_config(config("qwen2.5-omni-7b"))  # thinker_config.text_config + audio and vision encoders
    assert omni.params_total_b - omni.vision_params_b == pytest.approx(7.61, rel=0.03)  # Qwen2.5-7B
    assert 1.0 < omni.vision_params_b < 1.6 and omni.warnings == ()


def test_tied_embeddings_count_once(tmp_path):
    tied = model_from_hf_config(config("llama-3.2-1b"))
    cfg = json.loads(config("llama-3.2-1b").read_text())
    untied = model_from_hf_config(variant(tmp_path, cfg, tie_word_embeddings=False))
    assert untied.params_total_b - tied.params_total_b == pytest.approx(128256 * 2048 / 1e9, rel=1e-3)


@pytest.mark.parametrize("change, precision", [
    ({}, "bf16"),
    ({"torch_dtype": "float16"}, "fp16"),
    ({"torch_dtype": "float32"}, "fp32"),
    ({"torch_dtype": None, "dtype": "bfloat16"}, "bf16"),
    ({"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}, "int4"),
    ({"quantization_config": {"quant_method": "gptq", "bits": 8}}, "int8"),
    ({"quantization_config": {"quant_method": "awq", "bits": 4}}, "int4"),
    ({"quantization_config": {"quant_method": "fp8", "fmt": "e4m3"}}, "fp8"),
    ({"quantization_config": {"quant_method": "mxfp4"}}, "mxfp4"),
    ({"quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True}}, "int4"),
    ({"quantization_config": {"quant_method": "bitsandbytes", "load_in_8bit": True}}, "int8"),
    ({"quantization_config": {"quant_method": "compressed-tensors", "format": "float-quantized", "config_groups": {
        "group_0": {"weights": {"num_bits": 8, "type": "float"}, "targets": ["Linear"]}}}}, "fp8"),
    ({"quantization_config": {"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {
        "group_0": {"weights": {"num_bits": 4, "type": "int"}, "targets": ["Linear"]}}}}, "int4"),
    ({"quantization_config": {"quant_method": "compressed-tensors", "config_groups": {
        "group_0": {"weights": {"num_bits": 8, "type": "int"}}}}}, "int8"),
])
def test_precision_from_quantization_config_and_dtype(tmp_path, change, precision):
    cfg = json.loads(config("llama-3.1-8b").read_text())
    spec = model_from_hf_config(variant(tmp_path, cfg, **change))
    assert spec.precision == precision and precision in PRECISIONS and spec.warnings == ()
    assert spec.params_total_b == pytest.approx(8.03, rel=0.01)  # quantization changes bytes, not the count


def test_unknown_quantization_is_reported_not_guessed(tmp_path):
    cfg = json.loads(config("llama-3.1-8b").read_text())
    spec = model_from_hf_config(variant(tmp_path, cfg, quantization_config={"quant_method": "zip9"}))
    assert spec.precision == "bf16" and any("zip9" in w and "bf16" in w for w in spec.warnings)


def test_awq_fixture_is_int4():
    assert model_from_hf_config(config("llama-3.1-8b-awq-int4")).precision == "int4"


def test_safetensors_index_agrees_or_is_reported(tmp_path):
    assert model_from_hf_config(config("llama-3.1-8b")).warnings == ()  # 16,060,522,496 bytes = 8.03 B in bf16
    cfg = json.loads(config("llama-3.1-8b").read_text())
    p = write(tmp_path, cfg)
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 8_030_261_248}}))
    spec = model_from_hf_config(p)
    assert len(spec.warnings) == 1 and "4.015 billion" in spec.warnings[0] and "8.03 billion" in spec.warnings[0]
    # A quantized checkpoint's size bounds the count: 4-bit AWQ of 8 B is about 5.7 GB, in range.
    awq = {**cfg, "quantization_config": {"quant_method": "awq", "bits": 4}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 5_700_000_000}}))
    assert model_from_hf_config(write(tmp_path, awq)).warnings == ()
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": "big"}}))
    with pytest.raises(CatalogError, match=r"model.safetensors.index.json: key 'metadata.total_size'"):
        model_from_hf_config(p)


def test_unknown_architecture_is_reported(tmp_path, caplog):
    cfg = {**json.loads(config("llama-3.1-8b").read_text()), "model_type": "zebra_lm"}
    with caplog.at_level(logging.WARNING, logger="energylens.catalog"):
        spec = model_from_hf_config(write(tmp_path, cfg))
    assert any("'zebra_lm' is not an architecture the reader knows" in w for w in spec.warnings)
    assert any("zebra_lm" in r.getMessage() for r in caplog.records)


def test_cli_prints_the_warning(tmp_path):
    cfg = {**json.loads(config("llama-3.1-8b").read_text()), "model_type": "zebra_lm"}
    p = write(tmp_path, cfg)
    env = {**os.environ, "COLUMNS": "200"}
    run = subprocess.run([sys.executable, "-m", "energylens", "catalog", "--model-config", str(p), "--json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "warning:" in run.stderr and "zebra_lm" in run.stderr
    assert any("zebra_lm" in w for w in json.loads(run.stdout)["warnings"])


def test_catalog_entries_encode_kv_like_the_reader():
    cat = model_catalog()
    for name, entry in (("deepseek-v3", "deepseek-ai/DeepSeek-V3"), ("gemma-3-27b", "google/gemma-3-27b-it"),
                        ("gpt-oss-120b", "openai/gpt-oss-120b"),
                        ("llama-4-scout-17b-16e", "meta-llama/Llama-4-Scout-17B-16E-Instruct")):
        read, listed = model_from_hf_config(config(name)), cat.get(entry)
        for f in ("layers", "heads", "kv_heads", "head_dim", "kv_cache_dim", "sliding_window", "sliding_layers",
                  "experts", "active_experts"):
            assert getattr(read, f) == getattr(listed, f), (name, f)


def test_mla_kv_cache_counts_the_latent_once():
    from energylens.catalog import hardware_catalog
    from energylens.features.physics import KV_BYTES, compute_features
    from energylens.recommendation.space import candidate_table

    spec = model_catalog().get("deepseek-ai/DeepSeek-V3")
    df = candidate_table(spec, [hardware_catalog().get("H200")], 8, [1], 1000.0, 1.0, gpu_counts=[8])
    f = compute_features(df.iloc[:1])
    ctx = 1000.5  # prompt + half the output
    assert f.kv_bytes_step[0] / (f.batch[0] * ctx) == pytest.approx(61 * 576 * KV_BYTES)


def test_windows_bound_the_kv_cache():
    from energylens.catalog import hardware_catalog
    from energylens.features.physics import KV_BYTES, compute_features
    from energylens.recommendation.space import candidate_table

    spec = model_from_hf_config(config("gpt-oss-120b"))
    df = candidate_table(spec, [hardware_catalog().get("H200")], 1, [1], 8000.0, 2.0, gpu_counts=[1])
    f = compute_features(df.iloc[:1])
    per_layer = 2 * 8 * 64 * KV_BYTES
    assert f.kv_bytes_step[0] / f.batch[0] == pytest.approx(per_layer * (18 * 8001 + 18 * 128))
    # Prefill attention: full layers attend to every earlier token, windowed ones to at most 128.
    pairs = 18 * 8000 ** 2 / 2 + 18 * (128 * 8000 - 128 ** 2 / 2)
    assert f.flops_pf_attn[0] == pytest.approx(4 * 64 * 64 * pairs)


def test_recommend_on_the_deepseek_config_agrees_with_the_catalog():
    from energylens.recommendation.search import recommend

    by_catalog = recommend("deepseek-ai/DeepSeek-V3", ["H200"], max_gpus=16)
    by_config = recommend("deepseek-ai/DeepSeek-V3", ["H200"], max_gpus=16, model_config=config("deepseek-v3"))
    assert by_config.attrs["feasible"] == pytest.approx(by_catalog.attrs["feasible"], rel=0.05)
    best_catalog, best_config = by_catalog.iloc[0], by_config.iloc[0]
    assert best_config["energy_request_j"] == pytest.approx(best_catalog["energy_request_j"], rel=0.03)
    assert (best_config["num_gpus"], best_config["tp"]) == (best_catalog["num_gpus"], best_catalog["tp"])


# ------------------------------------------------------------------------------------------ fuzz

HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(-(10 ** 20), 10 ** 20), st.floats(allow_nan=True), st.text(max_size=12),
    st.sampled_from([0, -1, 1, 2, 3, 7, 64, 10 ** 9, 1.5, "", "int4", "fp8", "awq", "compressed-tensors",
                     "bitsandbytes", "sliding_attention", "float16"]),
    st.lists(st.one_of(st.integers(-3, 70), st.text(max_size=20), st.booleans()), max_size=70),
    st.dictionaries(st.sampled_from(["quant_method", "bits", "num_bits", "type", "weights", "config_groups",
                                     "load_in_4bit", "format", "group_0"]),
                    st.one_of(st.integers(-2, 16), st.text(max_size=8), st.booleans(), st.none(),
                              st.dictionaries(st.sampled_from(["weights", "num_bits", "type"]),
                                              st.one_of(st.integers(-2, 16), st.text(max_size=8)), max_size=2)),
                    max_size=3),
)
FIXTURES = sorted(p.parent.name for p in CONFIGS.glob("*/config.json"))


def _paths(cfg, prefix=()):
    """Every (path to a key) of a config, nested objects included."""
    for k, v in cfg.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


@st.composite
def mutated_configs(draw):
    cfg = json.loads(config(draw(st.sampled_from(FIXTURES))).read_text())
    paths = list(_paths(cfg))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths))
        target = cfg
        for k in path[:-1]:
            target = target.get(k) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        if draw(st.booleans()):
            target.pop(path[-1], None)
        else:
            target[path[-1]] = draw(HOSTILE)
    if draw(st.integers(0, 4)) == 0:  # a key the reader reads but the fixture lacks
        key = draw(st.sampled_from(["kv_lora_rank", "first_k_dense_replace", "moe_layers", "layer_types",
                                    "sliding_window_pattern", "n_shared_experts", "quantization_config",
                                    "hybrid_override_pattern", "no_rope_layers", "mlp_only_layers", "text_config",
                                    "thinker_config", "audio_config", "vision_config", "model_type", "dtype"]))
        cfg[key] = draw(HOSTILE)
    return cfg


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(cfg=mutated_configs())
def test_mutated_configs_give_a_spec_or_one_line_error(tmp_path_factory, cfg):
    p = write(tmp_path_factory.mktemp("mut"), cfg)
    try:
        spec = model_from_hf_config(p)
    except EnergyLensError as exc:  # anything else (a traceback) fails the test
        msg = str(exc)
        assert msg and "\n" not in msg and len(msg) < 400, msg
        return
    for f, (lo, hi, _, integer) in MODEL_BOUNDS.items():
        v = getattr(spec, f)
        if v is None:
            continue
        assert math.isfinite(v) and min(lo, 0) <= v <= hi, (f, v)
        assert not integer or isinstance(v, int), (f, v)
    assert 0 < spec.params_active_b <= spec.params_total_b and spec.precision in PRECISIONS
    assert spec.sliding_layers <= spec.layers and spec.kv_heads <= spec.heads
    assert all(isinstance(w, str) and "\n" not in w for w in spec.warnings)
