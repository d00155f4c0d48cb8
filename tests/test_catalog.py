import json

import pytest

from energylens.catalog import hardware_catalog, model_catalog, model_from_hf_config
from energylens.errors import CatalogError


def test_every_accelerator_of_the_issue_is_there():
    hw = hardware_catalog()
    for name in ("H100 SXM", "H100 PCIe", "H100 NVL", "B200", "A100-SXM4-40GB", "A100 80GB", "GH200", "MI250",
                 "MI300X", "Intel Max 1550", "Gaudi2", "V100", "A40", "L40S", "H200"):
        spec = hw.get(name)
        assert spec.peak_tflops > 0 and spec.source


def test_unknown_gpu_suggests_closest():
    with pytest.raises(CatalogError, match="closest known: .*H100"):
        hardware_catalog().get("H10")


def test_unknown_model_suggests_closest():
    with pytest.raises(CatalogError, match="closest known: .*Llama-3.1-8B"):
        model_catalog().get("meta-llama/Llama-3.1-8B-Instructt")


def test_user_toml_extends_catalog(tmp_path):
    p = tmp_path / "hw.toml"
    p.write_text('[X1]\naliases=["my-x1"]\npeak_tflops=100\nmem_bw_tbs=1\nmem_gb=16\ntdp_w=200\nidle_w=20\nlink_gbs=64\n')
    hw = hardware_catalog(p)
    assert hw.get("my-x1").mem_gb == 16 and hw.get("H100").mem_gb == 80


def test_bad_user_toml(tmp_path):
    p = tmp_path / "hw.toml"
    p.write_text("[X1]\npeak_tflops = \n")
    with pytest.raises(CatalogError, match="not valid TOML"):
        hardware_catalog(p)


def test_hf_config_of_llama_8b_counts_parameters(tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    spec = model_from_hf_config(p, name="my-llama")
    assert spec.arch == "dense" and spec.params_total_b == pytest.approx(8.03, rel=0.01)
    assert (spec.layers, spec.kv_heads, spec.head_dim) == (32, 8, 128)


def test_hf_config_of_a_moe(tmp_path):
    cfg = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 32000, "num_local_experts": 8, "num_experts_per_tok": 2}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    spec = model_from_hf_config(p)
    assert spec.arch == "moe" and spec.params_total_b == pytest.approx(46.7, rel=0.02)
    assert spec.params_active_b == pytest.approx(12.9, rel=0.03)


def test_hf_config_errors(tmp_path):
    p = tmp_path / "config.json"
    p.write_text("[1, 2]")
    with pytest.raises(CatalogError, match="JSON object"):
        model_from_hf_config(p)
    p.write_text('{"hidden_size": 10}')
    with pytest.raises(CatalogError, match="num_hidden_layers"):
        model_from_hf_config(p)


def test_every_model_in_the_real_data_is_in_the_catalog(data_dir):
    from energylens.data.importers import import_dataset

    for kind in ("mlenergy-v3", "mlenergy-v2", "llm-inference-bench", "splitwise"):
        df = import_dataset(kind, data_dir / kind)
        models = model_catalog()
        assert all(m in models for m in df["model"].unique()), kind


def test_catalog_command_reads_a_config(tmp_path, run_cli):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
                             "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256,
                             "tie_word_embeddings": True}))
    code, out = run_cli("catalog", "--model-config", p, "--json")
    spec = json.loads(out)
    assert code == 0 and spec["layers"] == 16 and spec["params_total_b"] == pytest.approx(1.24, rel=0.02)
