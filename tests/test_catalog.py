import json
import math

import pytest

from energylens.catalog import hardware_catalog, model_catalog, model_from_hf_config
from energylens.catalog.hardware import HARDWARE_BOUNDS
from energylens.catalog.models import MODEL_BOUNDS
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


# ---------------------------------------------------------------------------------------------------
# Hostile catalogs and configs: every bad input is one CatalogError line naming file, entry and field.
# ---------------------------------------------------------------------------------------------------
GPU_OK = {"peak_tflops": 100, "mem_bw_tbs": 1, "mem_gb": 16, "tdp_w": 200, "idle_w": 20, "link_gbs": 64}
MODEL_OK = {"arch": "dense", "params_total_b": 7, "layers": 32, "hidden_size": 4096, "heads": 32, "kv_heads": 8}
LLAMA_CFG = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 8, "vocab_size": 128256}


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def write_toml(path, entries: dict):
    lines = []
    for name, fields in entries.items():
        lines.append(f"[{json.dumps(name)}]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in fields.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg and len(msg) < 300, msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


@pytest.mark.parametrize("loader", [hardware_catalog, model_catalog, model_from_hf_config])
def test_directory_and_binary_files_are_one_line_errors(tmp_path, loader):
    with pytest.raises(CatalogError) as e:
        loader(tmp_path)
    one_line_error(e, str(tmp_path))
    p = tmp_path / "bad.toml"
    p.write_bytes(b"\xff\xfe[X1]\npeak_tflops = 1\n")
    with pytest.raises(CatalogError) as e:
        loader(p)
    one_line_error(e, "bad.toml")
    with pytest.raises(CatalogError, match="not found"):
        loader(tmp_path / "missing.toml")


def test_huge_integer_literal_is_a_catalog_error(tmp_path):
    p = tmp_path / "hw.toml"
    p.write_text(f"[X1]\npeak_tflops = {'9' * 5000}\n")
    with pytest.raises(CatalogError) as e:
        hardware_catalog(p)
    one_line_error(e, "hw.toml")


@pytest.mark.parametrize("field", list(GPU_OK))
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e-300, 1e300, -1.0, "100", [100], {"a": 1}, True])
def test_every_gpu_figure_must_be_finite_and_in_range(tmp_path, field, value):
    if field == "idle_w" and value == 1e-300:
        value = -1e-300  # 1e-300 W idle is physically fine (>= 0)
    p = write_toml(tmp_path / "hw.toml", {"X1": {**GPU_OK, field: value}})
    with pytest.raises(CatalogError) as e:
        hardware_catalog(p)
    one_line_error(e, "hw.toml", "'X1'", f"'{field}'")


def test_gpu_bounds_are_inclusive_and_idle_below_tdp(tmp_path):
    lows = {k: lo for k, (lo, hi, _) in HARDWARE_BOUNDS.items()}
    highs = {k: hi for k, (lo, hi, _) in HARDWARE_BOUNDS.items()}
    highs["idle_w"] = highs["tdp_w"] - 1
    p = write_toml(tmp_path / "hw.toml", {"LO": lows, "HI": highs})
    hw = hardware_catalog(p)
    assert hw.get("LO").tdp_w == 1 and hw.get("HI").peak_tflops == 1e6
    p = write_toml(tmp_path / "hw.toml", {"X1": {**GPU_OK, "idle_w": 200}})
    with pytest.raises(CatalogError) as e:
        hardware_catalog(p)
    one_line_error(e, "'idle_w'", "tdp_w")


def test_missing_and_unknown_gpu_fields(tmp_path):
    p = write_toml(tmp_path / "hw.toml", {"X1": {k: v for k, v in GPU_OK.items() if k != "mem_gb"}})
    with pytest.raises(CatalogError) as e:
        hardware_catalog(p)
    one_line_error(e, "'mem_gb'", "missing")
    p = write_toml(tmp_path / "hw.toml", {"X1": {**GPU_OK, "tdp": 3}})
    with pytest.raises(CatalogError) as e:
        hardware_catalog(p)
    one_line_error(e, "'tdp'", "did you mean 'tdp_w'")
    p.write_text("X1 = 3\n")
    with pytest.raises(CatalogError, match="must be a table"):
        hardware_catalog(p)


def test_a_string_alias_is_one_alias_not_characters(tmp_path):
    p = write_toml(tmp_path / "hw.toml", {"X1": {**GPU_OK, "aliases": "H100x"}})
    hw = hardware_catalog(p)
    assert hw.get("H100x").name == "X1" and hw.get("X1").aliases == ("H100x",)
    assert "0" not in hw and "H" not in hw and "x" not in hw


@pytest.mark.parametrize("aliases", [[1], [["a"]], [""], ["  - _ "], {"a": 1}, 3, ["x" * 500]])
def test_bad_aliases_are_refused(tmp_path, aliases):
    p = write_toml(tmp_path / "hw.toml", {"X1": {**GPU_OK, "aliases": aliases}})
    with pytest.raises(CatalogError) as e:
        hardware_catalog(p)
    one_line_error(e, "'X1'", "'aliases'")


def test_redefining_a_builtin_gpu_keeps_its_aliases(tmp_path):
    builtin = hardware_catalog().get("H100")
    for spelling in ("H100-SXM", "h100 sxm"):
        p = write_toml(tmp_path / "hw.toml", {spelling: {**GPU_OK, "mem_gb": 96}})
        hw = hardware_catalog(p)
        for alias in builtin.aliases:
            assert hw.get(alias).name == "H100-SXM" and hw.get(alias).mem_gb == 96
        assert hw.get("H100").aliases == builtin.aliases and len(hw.names()) == len(hardware_catalog().names())
    # Aliases given by the redefinition replace the built-in ones.
    p = write_toml(tmp_path / "hw.toml", {"H100-SXM": {**GPU_OK, "aliases": ["my-h100"]}})
    hw = hardware_catalog(p)
    assert hw.get("my-h100").name == "H100-SXM" and hw.get("H100-SXM").aliases == ("my-h100",)


def test_user_aliases_win_but_never_hide_a_canonical_name(tmp_path):
    p = write_toml(tmp_path / "hw.toml", {"X1": {**GPU_OK, "aliases": ["A100"]}})
    hw = hardware_catalog(p)
    assert hw.get("A100").name == "X1" and hw.get("A100-SXM4-80GB").mem_gb == 80
    p = write_toml(tmp_path / "hw.toml", {"X1": {**GPU_OK, "aliases": ["A100-SXM4-80GB"]}})
    with pytest.raises(CatalogError) as e:
        hardware_catalog(p)
    one_line_error(e, "'aliases'", "A100-SXM4-80GB")
    p = write_toml(tmp_path / "hw.toml", {"X1": {**GPU_OK, "aliases": ["y"]}, "X2": {**GPU_OK, "aliases": ["Y"]}})
    with pytest.raises(CatalogError, match="already a name or alias of entry 'X1'"):
        hardware_catalog(p)


def test_hostile_entry_names_stay_on_one_line(tmp_path):
    for name in ("a\nb\n" * 50, "", "---", "x" * 1000):
        p = write_toml(tmp_path / "hw.toml", {name: GPU_OK})
        with pytest.raises(CatalogError) as e:
            hardware_catalog(p)
        one_line_error(e, "hw.toml")


@pytest.mark.parametrize("field", ["layers", "hidden_size", "heads", "kv_heads", "head_dim", "experts",
                                   "active_experts", "params_total_b", "params_active_b", "attention_layers",
                                   "vision_params_b", "ssm_state_mb", "image_tokens"])
@pytest.mark.parametrize("value", [-1, math.inf, math.nan, 1e300, "4", [4]])
def test_every_model_figure_must_be_finite_and_in_range(tmp_path, field, value):
    p = write_toml(tmp_path / "m.toml", {"me/m": {**MODEL_OK, field: value}})
    with pytest.raises(CatalogError) as e:
        model_catalog(p)
    one_line_error(e, "m.toml", "'me/m'", f"'{field}'")


@pytest.mark.parametrize("field", ["layers", "hidden_size", "heads", "kv_heads", "head_dim", "image_tokens"])
def test_zero_or_fractional_shapes_are_refused(tmp_path, field):
    for value in (0, 2.5):
        p = write_toml(tmp_path / "m.toml", {"me/m": {**MODEL_OK, field: value}})
        with pytest.raises(CatalogError) as e:
            model_catalog(p)
        one_line_error(e, "'me/m'", f"'{field}'", "integer")


@pytest.mark.parametrize("extra, field", [
    ({"precision": "fp64"}, "precision"),
    ({"precision": 16}, "precision"),
    ({"modality": "smell"}, "modality"),
    ({"arch": "transformer"}, "arch"),
    ({"arch": ["dense"]}, "arch"),
    ({"kv_heads": 64}, "kv_heads"),
    ({"params_active_b": 8}, "params_active_b"),
    ({"arch": "moe", "experts": 8, "active_experts": 9}, "active_experts"),
    ({"arch": "moe", "experts": 8, "active_experts": 0}, "active_experts"),
    ({"arch": "moe"}, "experts"),
    ({"experts": 8, "active_experts": 2}, "experts"),
    ({"active_experts": 2}, "experts"),
    ({"attention_layers": 40}, "attention_layers"),
    ({"vision_params_b": 7}, "vision_params_b"),
    ({"kv_head": 8}, "kv_head"),
    ({"source": ["x"]}, "source"),
])
def test_inconsistent_model_entries_are_refused(tmp_path, extra, field):
    p = write_toml(tmp_path / "m.toml", {"me/m": {**MODEL_OK, **extra}})
    with pytest.raises(CatalogError) as e:
        model_catalog(p)
    one_line_error(e, "m.toml", "'me/m'", f"'{field}'")


def test_valid_model_entries_load(tmp_path):
    p = write_toml(tmp_path / "m.toml", {
        "me/fp8": {**MODEL_OK, "precision": "FP8", "modality": "image", "image_tokens": 576, "vision_params_b": 0.4},
        "me/moe": {**MODEL_OK, "arch": "moe", "params_active_b": 2, "experts": 8, "active_experts": 2},
        "me/sizes-only": {"arch": "dense", "params_total_b": 3},  # shapes left out: derived downstream
        "me/alias": {**MODEL_OK, "aliases": "my-model"},
    })
    mc = model_catalog(p)
    assert mc.get("me/fp8").precision == "fp8" and mc.get("me/moe").active_experts == 2
    assert mc.get("me/sizes-only").layers == 0 and mc.get("my-model").name == "me/alias"
    assert "m" not in mc


def test_redefining_a_builtin_model_keeps_its_aliases(tmp_path):
    builtin = model_catalog().get("meta-llama/Llama-3.1-8B")
    p = write_toml(tmp_path / "m.toml", {"meta-llama/Llama-3.1-8B": {**MODEL_OK, "precision": "fp8"}})
    mc = model_catalog(p)
    assert builtin.aliases and all(mc.get(a).precision == "fp8" for a in builtin.aliases)


def _write_cfg(tmp_path, cfg, raw=None):
    p = tmp_path / "config.json"
    p.write_text(raw if raw is not None else json.dumps(cfg))
    return p


@pytest.mark.parametrize("change, key", [
    ({"num_attention_heads": 0}, "num_attention_heads"),
    ({"num_attention_heads": "four"}, "num_attention_heads"),
    ({"num_attention_heads": -32}, "num_attention_heads"),
    ({"num_hidden_layers": 0}, "num_hidden_layers"),
    ({"num_hidden_layers": 10 ** 30}, "num_hidden_layers"),
    ({"hidden_size": 4096.5}, "hidden_size"),
    ({"hidden_size": [4096]}, "hidden_size"),
    ({"num_key_value_heads": 0}, "num_key_value_heads"),
    ({"num_key_value_heads": 64}, "num_key_value_heads"),
    ({"num_local_experts": 8, "num_experts_per_tok": 9}, "num_experts_per_tok"),
    ({"num_local_experts": -8, "num_experts_per_tok": 2}, "num_local_experts"),
    ({"vocab_size": 0}, "vocab_size"),
    ({"intermediate_size": {"a": 1}}, "intermediate_size"),
    ({"tie_word_embeddings": "no"}, "tie_word_embeddings"),
    ({"hybrid_override_pattern": ["M", "*"]}, "hybrid_override_pattern"),
    ({"hybrid_override_pattern": "*" * 40}, "hybrid_override_pattern"),
    ({"text_config": [1, 2]}, "text_config"),
    ({"text_config": "llama"}, "text_config"),
    ({"thinker_config": 3}, "thinker_config"),
    ({"thinker_config": {"text_config": [1]}}, "thinker_config.text_config"),
    ({"text_config": {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 0}},
     "text_config.num_attention_heads"),
    ({"text_config": {"num_hidden_layers": 2, "hidden_size": 64}, "vision_config": [1]}, "vision_config"),
    ({"text_config": {"num_hidden_layers": 2, "hidden_size": 64}, "vision_config": {"depth": -1}},
     "vision_config.depth"),
    ({"hidden_size": 8, "num_attention_heads": 32}, "head_dim"),
])
def test_hostile_hf_configs_name_file_and_key(tmp_path, change, key):
    p = _write_cfg(tmp_path, {**LLAMA_CFG, **change})
    with pytest.raises(CatalogError) as e:
        model_from_hf_config(p)
    one_line_error(e, "config.json", f"'{key}'")


@pytest.mark.parametrize("raw", ['{"hidden_size": NaN, "num_hidden_layers": 2}',
                                 '{"hidden_size": Infinity, "num_hidden_layers": 2}',
                                 '{"hidden_size": 1e999, "num_hidden_layers": 2}',
                                 '{"hidden_size": %s, "num_hidden_layers": 2}' % ("9" * 5000),
                                 "[" * 100000 + "]" * 100000, '"config"', "{"])
def test_non_finite_or_unparsable_json(tmp_path, raw):
    p = _write_cfg(tmp_path, None, raw)
    with pytest.raises(CatalogError) as e:
        model_from_hf_config(p)
    one_line_error(e, "config.json")


def test_implausible_parameter_count_from_a_config(tmp_path):
    p = _write_cfg(tmp_path, {**LLAMA_CFG, "hidden_size": 1_000_000, "intermediate_size": 10_000_000,
                              "num_hidden_layers": 10_000})
    with pytest.raises(CatalogError) as e:
        model_from_hf_config(p)
    one_line_error(e, "config.json", "billion parameters")


def test_hf_config_without_a_routing_fanout_is_refused(tmp_path):
    # A missing fan-out does not prove a dense model: counting one would drop the experts silently.
    with pytest.raises(CatalogError) as e:
        model_from_hf_config(_write_cfg(tmp_path, {**LLAMA_CFG, "num_local_experts": 8}))
    one_line_error(e, "config.json", "'num_experts_per_tok'", "8 experts")
    spec = model_from_hf_config(_write_cfg(tmp_path, {**LLAMA_CFG, "tie_word_embeddings": 1,
                                                      "_name_or_path": ["not", "a", "name"]}))
    assert spec.params_total_b == pytest.approx(7.5, rel=0.01) and spec.name != "['not', 'a', 'name']"


def test_builtin_catalogs_respect_the_bounds():
    for spec in hardware_catalog().specs.values():
        for f, (lo, hi, _) in HARDWARE_BOUNDS.items():
            assert lo <= getattr(spec, f) <= hi, (spec.name, f)
        assert spec.idle_w < spec.tdp_w
    for spec in model_catalog().specs.values():
        for f, (lo, hi, _, integer) in MODEL_BOUNDS.items():
            v = getattr(spec, f)
            assert v is None or (lo <= v <= hi and (not integer or isinstance(v, int))), (spec.name, f)


@pytest.mark.parametrize("args", [
    ("catalog", "gpus", "--hardware-catalog", "{dir}"),
    ("catalog", "gpus", "--hardware-catalog", "{bin}"),
    ("catalog", "gpus", "--hardware-catalog", "{inf}"),
    ("catalog", "models", "--model-catalog", "{fp64}"),
    ("catalog", "models", "--model-config", "{heads0}"),
    ("catalog", "models", "--model-config", "{dir}"),
    ("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "0", "--hardware-catalog", "{alias}"),
])
def test_cli_reports_bad_catalogs_in_one_line(tmp_path, run_cli, args):
    files = {"dir": tmp_path, "bin": tmp_path / "bin.toml"}
    files["bin"].write_bytes(b"\x80\x81\x82")
    files["inf"] = write_toml(tmp_path / "inf.toml", {"X1": {**GPU_OK, "tdp_w": math.inf}})
    files["fp64"] = write_toml(tmp_path / "fp64.toml", {"me/m": {**MODEL_OK, "precision": "fp64"}})
    files["alias"] = write_toml(tmp_path / "alias.toml", {"X1": {**GPU_OK, "aliases": "H100x"}})
    files["heads0"] = _write_cfg(tmp_path, {**LLAMA_CFG, "num_attention_heads": 0})
    code, out = run_cli(*[a.format(**files) for a in args])
    assert code == 2 and len(out.strip().splitlines()) == 1 and out.startswith("error: "), out
    assert "Traceback" not in out and "internal error" not in out


def test_cli_still_lists_and_recommends(run_cli):
    code, out = run_cli("catalog", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["gpus"]) == len(hardware_catalog().names())
    assert len(data["models"]) == len(model_catalog().names())
    code, out = run_cli("catalog", "models")
    assert code == 0 and "Llama-3.1-8B" in out
    code, out = run_cli("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", 2,
                        "--input-tokens", 512, "--output-tokens", 128)
    assert code == 0 and "best: H100-SXM" in out
