"""Fuzz the user-facing catalog inputs: hardware/model TOML entries and Hugging Face config.json files.

Whatever the file holds, loading it either succeeds with finite figures inside the documented bounds, or
raises a CatalogError whose message is one short line; the CLI exits 0 or 2 (never 1, "internal error")
and prints exactly one line on error.
"""
import json
import math
import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from energylens.catalog import hardware_catalog, model_catalog, model_from_hf_config
from energylens.catalog.hardware import HARDWARE_BOUNDS
from energylens.catalog.models import ARCHS, MODEL_BOUNDS
from energylens.data.schema import MODALITIES, PRECISIONS
from energylens.errors import CatalogError

FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
CLI_FUZZ = FUZZ

# ----------------------------------------------------------------------------------- value strategies

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SPECIAL = st.sampled_from([0, -1, 0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, 5e-324, math.inf, -math.inf, math.nan,
                           2**63 - 1, -(2**63), 0.5, 1e-6, 1e6, 1e12, 10_001, 100_001])
LONG_TEXT = st.builds(lambda c, n: c * n, st.characters(), st.integers(200, 3000))
SHORT_TEXT = st.text(max_size=20)
SCALAR = st.one_of(SPECIAL, st.floats(), INT64, st.booleans(), SHORT_TEXT)
HOSTILE = st.one_of(
    SPECIAL, st.floats(), INT64, st.booleans(), SHORT_TEXT, LONG_TEXT,
    st.lists(SCALAR, max_size=3),
    st.dictionaries(SHORT_TEXT, SCALAR, max_size=3),
)


def often(good, bad, k=5):
    """`good` k times out of k + 1, else `bad` (so that both loading and refusing get explored)."""
    return st.integers(0, k).flatmap(lambda i: good if i else bad)


NAMES = often(
    k=10,
    good=st.one_of(st.sampled_from(["X1", "X2", "H100-SXM", "h100 sxm", "H100", "A100", "0", "me/m",
                                    "meta-llama/Llama-3.1-8B"]),
                   st.from_regex(r"[A-Za-z0-9][\w ./-]{0,30}", fullmatch=True)),
    bad=st.one_of(st.sampled_from(["", "-", " _ ", "a\nb"]), st.text(min_size=1, max_size=30), LONG_TEXT),
)
ALIASES = often(st.one_of(st.lists(NAMES, max_size=4), NAMES), HOSTILE)  # a list, or one string (one alias)


def _mode(draw, good_weight=12):
    return draw(st.sampled_from(("good",) * good_weight + ("bad", "absent")))


# ----------------------------------------------------------------------------------- file writers

def _toml_str(s: str) -> str:
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c.isprintable() and c != "\x7f":
            out.append(c)
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_str(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def _write_toml(path, entries: dict):
    """Top-level scalars first (TOML requires it), then one [table] per dict entry."""
    lines = [f"{_toml_str(k)} = {_toml_value(v)}" for k, v in entries.items() if not isinstance(v, dict)]
    for name, fields in entries.items():
        if isinstance(fields, dict):
            lines.append(f"[{_toml_str(name)}]")
            lines += [f"{_toml_str(k)} = {_toml_value(v)}" for k, v in fields.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------- entry strategies

@st.composite
def gpu_entries(draw):
    e = {}
    for f, (lo, hi, _) in HARDWARE_BOUNDS.items():
        mode = _mode(draw)
        if mode == "good":
            if f == "idle_w" and isinstance(e.get("tdp_w"), float):
                e[f] = e["tdp_w"] * draw(st.floats(0, 0.99))
            else:
                e[f] = draw(st.floats(lo, hi))
        elif mode == "bad":
            e[f] = draw(HOSTILE)
    for f, strat, k in (("aliases", ALIASES, 2), ("vendor", often(SHORT_TEXT, HOSTILE), 3),
                        ("source", SHORT_TEXT, 3), ("tdp", HOSTILE, 12)):  # "tdp": a misspelt field
        if draw(st.integers(0, k)) == 0:
            e[f] = draw(strat)
    return e


@st.composite
def model_entries(draw):
    """A coherent entry (some optional fields left out), then 0-3 fields replaced by hostile values."""
    arch = draw(st.sampled_from(ARCHS))
    total = draw(st.floats(1e-3, 1e4))
    layers, heads = draw(st.integers(1, 300)), draw(st.integers(1, 256))
    e = {"arch": arch, "params_total_b": total, "params_active_b": total * draw(st.floats(0.01, 1)),
         "layers": layers, "hidden_size": draw(st.integers(1, 65536)), "heads": heads,
         "kv_heads": draw(st.integers(1, heads)), "head_dim": draw(st.integers(1, 1024)),
         "experts": 0, "active_experts": 0,
         "attention_layers": draw(st.integers(0, layers)), "vision_params_b": total * draw(st.floats(0, 0.5)),
         "ssm_state_mb": draw(st.floats(0, 1e4)), "image_tokens": draw(st.integers(1, 5000))}
    if arch == "moe" or (arch == "hybrid" and draw(st.booleans())):
        e["experts"] = draw(st.integers(1, 512))
        e["active_experts"] = draw(st.integers(1, e["experts"]))
    for f in list(e):
        if f not in ("arch", "params_total_b") and draw(st.integers(0, 3)) == 0:
            del e[f]
    for f in draw(often(st.just([]), st.lists(st.sampled_from(sorted(MODEL_BOUNDS) + ["arch"]), min_size=1,
                                              max_size=3), k=1)):
        e[f] = draw(HOSTILE)
    for f, strat, k in (("precision", often(st.sampled_from(PRECISIONS + ("FP8", "fp64")), HOSTILE), 2),
                        ("modality", often(st.sampled_from(MODALITIES + ("smell",)), HOSTILE), 3),
                        ("aliases", ALIASES, 2), ("source", SHORT_TEXT, 3), ("note", often(SHORT_TEXT, HOSTILE), 3),
                        ("kv_head", SCALAR, 12)):  # "kv_head": a misspelt field
        if draw(st.integers(0, k)) == 0:
            e[f] = draw(strat)
    return e


def _entries(entry_strategy):
    return st.dictionaries(NAMES, often(entry_strategy, HOSTILE, k=12), min_size=1, max_size=2)


HF_KEYS = ["num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size",
           "intermediate_size", "num_local_experts", "num_experts_per_tok", "moe_intermediate_size",
           "n_shared_experts", "mamba_num_heads", "mamba_head_dim", "ssm_state_size", "n_layer", "d_model",
           "tie_word_embeddings", "hybrid_override_pattern", "model_type", "_name_or_path", "text_config",
           "vision_config", "thinker_config"]


@st.composite
def hf_configs(draw):
    """A coherent config (dense, MoE, hybrid or SSM; maybe nested as a VLM's text_config), then 0-3 keys
    replaced by hostile values, at the top level or inside the nested config."""
    layers, heads = draw(st.integers(1, 128)), draw(st.integers(1, 128))
    head_dim = draw(st.integers(1, 256))
    text = {"num_hidden_layers": layers, "hidden_size": draw(st.integers(max(heads, 8), 16384)),
            "num_attention_heads": heads, "num_key_value_heads": draw(st.sampled_from([h for h in range(1, heads + 1)
                                                                                      if heads % h == 0])),
            "head_dim": head_dim, "vocab_size": draw(st.integers(1, 260_000)),
            "intermediate_size": draw(st.integers(1, 60_000)), "tie_word_embeddings": draw(st.booleans())}
    kind = draw(st.sampled_from(["dense", "moe", "hybrid", "ssm"]))
    if kind == "moe":
        text["num_local_experts"] = draw(st.integers(1, 256))
        text["num_experts_per_tok"] = draw(st.integers(1, text["num_local_experts"]))
        text["moe_intermediate_size"] = draw(st.integers(1, 4096))
    elif kind == "hybrid":
        text["hybrid_override_pattern"] = draw(st.text(alphabet="M*-", min_size=layers, max_size=layers))
        text["mamba_num_heads"], text["mamba_head_dim"] = draw(st.integers(0, 128)), draw(st.integers(0, 128))
    elif kind == "ssm":
        text["model_type"] = draw(st.sampled_from(["mamba", "mamba2", "rwkv"]))
    for k in ("head_dim", "num_key_value_heads", "tie_word_embeddings", "vocab_size", "intermediate_size"):
        if draw(st.integers(0, 3)) == 0:
            del text[k]
    nested = draw(st.sampled_from(["no", "no", "text_config", "thinker_config"]))
    if nested == "text_config":
        cfg = {"text_config": text, "vision_config": {"hidden_size": draw(st.integers(0, 2048)),
                                                      "depth": draw(st.integers(0, 48))}}
    elif nested == "thinker_config":
        cfg = {"thinker_config": {"text_config": text}}
    else:
        cfg = text
    for k in draw(often(st.just([]), st.lists(st.sampled_from(HF_KEYS), min_size=1, max_size=3), k=1)):
        target = draw(st.sampled_from([cfg, text]))
        target[k] = draw(st.one_of(HOSTILE, st.integers(-(10**30), 10**30)))
    return cfg


# ----------------------------------------------------------------------------------- checks

def _check_error(exc: CatalogError):
    msg = str(exc)
    found = re.search(r"(?:field|key) '([a-z_.]+)'", msg)
    event("refused: " + (found.group(1) if found else "file or entry"))
    assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
    assert len(msg) < 300, (len(msg), msg)


def _check_gpu_specs(hw):
    for spec in hw.specs.values():
        for f, (lo, hi, _) in HARDWARE_BOUNDS.items():
            v = getattr(spec, f)
            assert isinstance(v, float) and math.isfinite(v) and lo <= v <= hi, (spec.name, f, v)
        assert spec.idle_w < spec.tdp_w
        assert all(isinstance(a, str) and a for a in spec.aliases)


def _check_model_spec(spec):
    for f, (lo, hi, _, integer) in MODEL_BOUNDS.items():
        v = getattr(spec, f)
        if v is None:
            continue
        assert math.isfinite(v), (spec.name, f, v)
        if f in ("layers", "hidden_size", "heads", "kv_heads", "head_dim", "vision_params_b", "ssm_state_mb"):
            lo = 0  # 0: not given, derived downstream
        assert lo <= v <= hi, (spec.name, f, v)
        assert not integer or isinstance(v, int), (spec.name, f, v)
    assert 0 < spec.params_active_b <= spec.params_total_b
    assert spec.active_experts <= spec.experts
    assert not spec.heads or spec.kv_heads <= spec.heads
    assert spec.arch in ARCHS and spec.precision in PRECISIONS and spec.modality in MODALITIES


def _tmp(tmp_path_factory, name):
    d = tmp_path_factory.mktemp("fuzz", numbered=True)
    return d / name


# ----------------------------------------------------------------------------------- library tests

@FUZZ
@given(entries=_entries(gpu_entries()))
def test_fuzz_hardware_catalog(tmp_path_factory, entries):
    p = _write_toml(_tmp(tmp_path_factory, "hw.toml"), entries)
    try:
        hw = hardware_catalog(p)
    except CatalogError as exc:
        _check_error(exc)
        return
    _check_gpu_specs(hw)
    event("loaded")
    for name, e in entries.items():  # a single string is one alias, never split into characters
        if isinstance(e.get("aliases"), str):
            assert hw.canonical(e["aliases"]) is not None and e["aliases"] in hw.get(name).aliases
    # Built-in entries stay reachable by name, and by their aliases unless a redefinition gave its own.
    assert all(name in hw for name in hardware_catalog().names())
    if not any(hw.canonical(n) == "H100-SXM" and isinstance(e, dict) and "aliases" in e for n, e in entries.items()):
        assert hw.canonical("NVIDIA H100 80GB HBM3") in ("H100-SXM", *entries)


@FUZZ
@given(entries=_entries(model_entries()))
def test_fuzz_model_catalog(tmp_path_factory, entries):
    p = _write_toml(_tmp(tmp_path_factory, "models.toml"), entries)
    try:
        mc = model_catalog(p)
    except CatalogError as exc:
        _check_error(exc)
        return
    for spec in mc.specs.values():
        _check_model_spec(spec)
    event("loaded")


@FUZZ
@given(cfg=often(hf_configs(), HOSTILE, k=10))
def test_fuzz_hf_config(tmp_path_factory, cfg):
    p = _tmp(tmp_path_factory, "config.json")
    p.write_text(json.dumps(cfg, allow_nan=True), encoding="utf-8")
    try:
        spec = model_from_hf_config(p)
    except CatalogError as exc:
        _check_error(exc)
        return
    _check_model_spec(spec)
    event("loaded")
    assert spec.layers >= 1 and spec.hidden_size >= 1 and spec.heads >= 1 and spec.kv_heads >= 1
    assert spec.head_dim >= 1


@FUZZ
@given(data=st.binary(max_size=200), kind=st.sampled_from(["hw", "model", "config"]))
def test_fuzz_raw_bytes(tmp_path_factory, data, kind):
    p = _tmp(tmp_path_factory, "raw.toml")
    p.write_bytes(data)
    loader = {"hw": hardware_catalog, "model": model_catalog, "config": model_from_hf_config}[kind]
    try:
        loader(p)
    except CatalogError as exc:
        _check_error(exc)


# ----------------------------------------------------------------------------------- CLI tests

def _check_cli(code, out):
    assert code in (0, 2), (code, out)
    assert "Traceback" not in out and "internal error" not in out, out
    if code == 2:
        lines = out.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), out


@CLI_FUZZ
@given(entries=_entries(gpu_entries()), where=st.sampled_from(["file", "file", "file", "dir", "missing"]),
       json_flag=st.sampled_from([(), ("--json",)]))
def test_fuzz_cli_hardware_catalog(tmp_path_factory, run_cli, entries, where, json_flag):
    p = _write_toml(_tmp(tmp_path_factory, "hw.toml"), entries)
    arg = {"file": p, "dir": p.parent, "missing": p.parent / "nope.toml"}[where]
    _check_cli(*run_cli("catalog", "--hardware-catalog", arg, *json_flag))


@CLI_FUZZ
@given(cfg=often(hf_configs(), HOSTILE, k=10))
def test_fuzz_cli_model_config(tmp_path_factory, run_cli, cfg):
    p = _tmp(tmp_path_factory, "config.json")
    p.write_text(json.dumps(cfg, allow_nan=True), encoding="utf-8")
    _check_cli(*run_cli("catalog", "models", "--model-config", p))


@pytest.mark.parametrize("args", [("catalog",), ("catalog", "models")])
def test_cli_tables_with_a_valid_user_catalog(tmp_path, run_cli, args):
    p = _write_toml(tmp_path / "hw.toml", {"X1": {"peak_tflops": 1e6, "mem_bw_tbs": 1e-3, "mem_gb": 0.1,
                                                  "tdp_w": 1e5, "idle_w": 0, "link_gbs": 1e5, "aliases": "x-one"}})
    code, out = run_cli(*args, "--hardware-catalog", p)
    assert code == 0, out
