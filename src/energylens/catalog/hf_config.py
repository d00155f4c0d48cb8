"""Read a Hugging Face config.json the way its architecture defines it.

Parameters are counted from the shapes, layer by layer: attention (grouped-query, or MLA with its
low-rank query and latent KV projections), dense MLP layers (gated or not, `intermediate_size_mlp`),
mixture-of-experts layers (which layers: `first_k_dense_replace`, `moe_layer_freq`,
`decoder_sparse_step`, `mlp_only_layers`, `moe_layers`, `interleave_moe_layer_step`; shared experts:
`n_shared_experts`, `shared_expert_intermediate_size`, Llama 4's one shared expert), embeddings (tied or
not), and the vision/audio encoders of a multimodal container (`text_config`, `thinker_config`).
The KV cache is described for the features: MLA caches one latent per layer and token
(`kv_cache_dim`), windowed layers keep at most `sliding_window` tokens (`sliding_layers` of them).
Weight precision comes from `quantization_config`, else `torch_dtype` / `dtype`.

Active parameters follow the model cards of Meta, Mistral, Qwen and DeepSeek: everything a token passes
through, the input embedding included (OpenAI's gpt-oss card leaves the input embedding out).
DeepSeek's multi-token-prediction layers (`num_nextn_predict_layers`) and Qwen-Omni's talker are not
counted: serving text without speculative decoding does not run them.

Whatever cannot be counted with confidence (an unknown `model_type`, layer kinds not modelled, a
checkpoint whose size disagrees with the count) is returned in `ModelSpec.warnings` and logged on the
`energylens.catalog` logger, which prints to stderr when nothing else is configured; malformed values
are one CatalogError naming the file and the key.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CatalogError
from ..io import read_json
from ..vocabulary import BYTES_PER_PARAM
from ._validate import _MISSING, Fields, load, oneline, short
from .models import MODEL_BOUNDS, ModelSpec

log = logging.getLogger("energylens.catalog")

MAX_VOCAB = 10_000_000  # largest today about 260,000
MAX_WIDTH = 10_000_000  # MLP and latent widths
CHECKPOINT_TOLERANCE = 0.15  # relative gap between counted and checkpoint-implied parameters that is reported


@dataclass(frozen=True)
class Family:
    """How one `model_type` lays out its layers, where its config leaves that implicit."""

    gated_mlp: bool = True  # gate, up and down projections (SwiGLU/GeGLU); else up and down only
    window: str = ""  # sliding-window layout: "all", "qwen", "alternate", "pattern", "chunked" or "" (none)
    shared_expert: bool = False  # one shared expert of intermediate_size beside the routed ones (Llama 4)
    defaults: tuple[tuple[str, Any], ...] = ()  # values the transformers config class fills when a key is absent


_LLAMA = Family()
_QWEN = Family(window="qwen")
FAMILIES: dict[str, Family] = {
    **dict.fromkeys(("llama", "olmo", "olmo2", "granite", "cohere", "internlm2", "exaone", "stablelm", "chameleon",
                     "minicpm", "qwen3_vl_text", "qwen2_5_vl_text", "qwen3_omni_moe_text"), _LLAMA),
    **dict.fromkeys(("qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "qwen2_5_omni_text", "qwen2_vl_text",
                     "qwen3_vl_moe_text"), _QWEN),
    "mistral": Family(window="all"),
    "mixtral": Family(window="all", defaults=(("num_experts_per_tok", 2),)),
    "phi3": Family(window="all"),
    "olmoe": Family(defaults=(("num_experts_per_tok", 8),)),
    "granitemoe": Family(),
    "deepseek_v2": _LLAMA, "deepseek_v3": _LLAMA, "kimi_k2": _LLAMA,
    "gemma": Family(defaults=(("vocab_size", 256000), ("head_dim", 256), ("tie_word_embeddings", True))),
    "gemma2": Family(window="alternate", defaults=(("vocab_size", 256000), ("head_dim", 256), ("sliding_window", 4096),
                                                   ("tie_word_embeddings", True))),
    "gemma3_text": Family(window="pattern", defaults=(("vocab_size", 262208), ("head_dim", 256),
                                                      ("sliding_window", 4096), ("sliding_window_pattern", 6),
                                                      ("tie_word_embeddings", True))),
    "llama4_text": Family(window="chunked", shared_expert=True,
                          defaults=(("vocab_size", 202048), ("attention_chunk_size", 8192),
                                    ("num_experts_per_tok", 1), ("interleave_moe_layer_step", 1))),
    "gpt_oss": Family(window="alternate", defaults=(("sliding_window", 128), ("vocab_size", 201088))),
    # Up and down projections only.
    **dict.fromkeys(("gpt2", "gpt_neox", "gptj", "opt", "bloom", "falcon", "phi", "mpt", "gpt_bigcode", "nemotron"),
                    Family(gated_mlp=False)),
    "starcoder2": Family(gated_mlp=False, window="all"),
    # Recurrent and hybrid models (hybrid_override_pattern).
    **dict.fromkeys(("mamba", "mamba2", "rwkv", "nemotron_h"), _LLAMA),
}
# Containers whose language model is their text_config (or thinker_config.text_config), and the
# model_type that text config has when it does not say.
CONTAINERS = {"gemma3": "gemma3_text", "llama4": "llama4_text", "mistral3": "mistral", "llava": "llama",
              "llava_next": "llama", "qwen2_5_vl": "qwen2", "qwen2_vl": "qwen2", "qwen3_vl": "qwen3_vl_text",
              "qwen3_vl_moe": "qwen3_vl_moe_text", "qwen2_5_omni": "qwen2_5_omni_text",
              "qwen2_5_omni_thinker": "qwen2_5_omni_text", "qwen3_omni_moe": "qwen3_omni_moe_text",
              "qwen3_omni_moe_thinker": "qwen3_omni_moe_text"}
SSM_TYPES = ("mamba", "mamba2", "rwkv")
# Layer kinds of `layer_types`: attention caching the whole context, or a window of it.
FULL_KINDS = ("full_attention", "attention", "global_attention")
WINDOW_KINDS = ("sliding_attention", "chunked_attention", "local_attention")
DTYPES = {"bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "fp16": "fp16", "half": "fp16",
          "float32": "fp32", "fp32": "fp32", "float": "fp32"}


def read_hf_config(path: str | os.PathLike, name: str | None = None) -> ModelSpec:
    """A ModelSpec counted from the config.json at `path` (see the module docstring)."""
    path = Path(path)
    where = oneline(path)
    cfg = load(read_json, path, "model config", "JSON")
    if not isinstance(cfg, dict):
        raise CatalogError(f"{where}: expected a JSON object (a Hugging Face config.json), got {short(cfg)}")
    notes: list[str] = []
    container, text, prefix = _language_model(cfg, where)
    model_type = _model_type(cfg, container, text, where, prefix)
    family = FAMILIES.get(model_type)
    if family is None:
        said = f"model_type {short(model_type, 40)}" if model_type else "no model_type"
        notes.append(f"{where}: {said} is not an architecture the reader knows; counted as a Llama-style decoder "
                     f"(gated MLP, grouped-query attention): check params_total_b against the model card")
        family = _LLAMA
    text = {**dict(family.defaults), **{k: v for k, v in text.items() if v is not None}}
    t = Fields(text, where, word="key", prefix=prefix)
    shape = _Shape.read(t, where, model_type, notes)
    vision_b = _encoders_b(container, where, "" if container is cfg else prefix.rsplit("text_config.", 1)[0])
    tied = _tied(text, container, cfg, where, prefix)
    precision = _precision(cfg, container, text, where, prefix, notes)
    window, windowed = _windows(t, family, shape, notes, where)
    total, active = shape.count(tied)
    total_b, active_b = total / 1e9 + vision_b, active / 1e9 + vision_b  # Python integers until here
    lo, hi = MODEL_BOUNDS["params_total_b"][:2]
    if not lo <= total_b <= hi:
        raise CatalogError(f"{where}: its layer, width, vocabulary and expert sizes give {total_b:.3g} billion "
                           f"parameters, outside {lo:g} to {hi:g} billion")
    _check_checkpoint(path, total_b, precision, notes)
    for note in notes:
        log.warning("warning: %s", note)
    given = cfg.get("_name_or_path")
    return ModelSpec(
        name=name or (given if isinstance(given, str) and given.strip() else "") or path.parent.name or path.stem,
        arch=shape.arch, params_total_b=_round_b(total_b), params_active_b=_round_b(min(active_b, total_b)),
        layers=shape.layers, hidden_size=shape.hidden, heads=shape.heads, kv_heads=shape.kv_heads,
        head_dim=shape.head_dim, experts=shape.experts, active_experts=shape.active,
        attention_layers=shape.attn_layers, vision_params_b=_round_b(vision_b), ssm_state_mb=round(shape.ssm_mb, 3),
        kv_cache_dim=shape.kv_cache_dim, sliding_window=window, sliding_layers=windowed, precision=precision,
        modality="image" if vision_b else "text", source=f"config {path}", warnings=tuple(notes),
    )


def _round_b(x: float) -> float:
    """Billions to 4 decimals, or 4 significant figures for models under ten million parameters."""
    return round(x, 4) if x >= 0.01 else float(f"{x:.4g}")


def _part(cfg: dict, key: str, where: str, prefix: str = "") -> dict | None:
    """cfg[key] when it is a non-empty JSON object, None when absent, null or empty; else a CatalogError."""
    part = cfg.get(key)
    if part is None or part == {}:
        return None
    if not isinstance(part, dict):
        raise CatalogError(f"{where}: key '{prefix}{key}' must be a JSON object (a nested config), got {short(part)}")
    return part


def _language_model(cfg: dict, where: str) -> tuple[dict, dict, str]:
    """(container of the encoders, the language model's config, its key prefix in messages)."""
    if (text := _part(cfg, "text_config", where)) is not None:
        return cfg, text, "text_config."
    if (thinker := _part(cfg, "thinker_config", where)) is not None:
        if (text := _part(thinker, "text_config", where, "thinker_config.")) is not None:
            return thinker, text, "thinker_config.text_config."
        return thinker, thinker, "thinker_config."
    return cfg, cfg, ""


def _text_value(d: dict, key: str, where: str, shown: str) -> str:
    value = d.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 200:
        raise CatalogError(f"{where}: key '{shown}' must be a string of at most 200 characters, got {short(value)}")
    return value.strip().lower()


def _model_type(cfg: dict, container: dict, text: dict, where: str, prefix: str) -> str:
    """The language model's model_type: its own, else the one its container implies."""
    outer_prefix = prefix.rsplit("text_config.", 1)[0]
    for d, shown in ((text, prefix), (container, outer_prefix), (cfg, "")):
        kind = _text_value(d, "model_type", where, shown + "model_type")
        if kind:
            return CONTAINERS.get(kind, kind)
    return ""


def _int_list(t: Fields, key: str, length_max: int, lo: int, hi: int) -> list[int] | None:
    """A list of integers in [lo, hi] (booleans count as 0/1), None when absent."""
    value = t.table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > length_max:
        t.fail(key, f"must be a list of at most {length_max} integers, got {short(value)}")
    out = []
    for v in value:
        if isinstance(v, bool):
            v = int(v)
        if not isinstance(v, int) or not lo <= v <= hi:
            t.fail(key, f"must hold integers from {lo} to {hi}, got an element {short(v)}")
        out.append(v)
    return out


def _str_list(t: Fields, key: str, length: int) -> list[str] | None:
    """A list of `length` short strings (one per layer), lower-cased; None when absent."""
    value = t.table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != length:
        t.fail(key, f"must be a list of {length} layer kinds (one per layer), got {short(value)}")
    for v in value:
        if not isinstance(v, str) or len(v) > 100:
            t.fail(key, f"must hold strings (layer kinds), got an element {short(v)}")
    return [v.strip().lower() for v in value]


@dataclass
class _Shape:
    """Shapes of the language model, read and checked once; `count` turns them into parameters."""

    arch: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    attn_params: int  # per attention layer
    kv_cache_dim: int
    dense_mlp: int  # per dense layer
    moe_layers: int
    experts: int
    active: int
    expert_params: int  # one routed expert
    shared_params: int  # shared experts and router of one MoE layer
    attn_layers: int | None
    mixer_params: int  # per recurrent (Mamba) layer of a hybrid
    ssm_mb: float

    @classmethod
    def read(cls, t: Fields, where: str, model_type: str, notes: list[str]) -> "_Shape":
        family = FAMILIES.get(model_type, _LLAMA)

        def count(keys, lo, hi, default=_MISSING):
            return t.number(keys, lo, hi, integer=True, default=default)

        layers_keys, hidden_keys = ("num_hidden_layers", "n_layer", "num_layers"), ("hidden_size", "n_embd", "d_model")
        if not t.has(*layers_keys) or not t.has(*hidden_keys):
            raise CatalogError(f"{where}: config lacks num_hidden_layers or hidden_size")
        b = {k: MODEL_BOUNDS[k][:2] for k in ("layers", "hidden_size", "heads", "kv_heads", "head_dim", "experts")}
        layers, hidden = count(layers_keys, *b["layers"]), count(hidden_keys, *b["hidden_size"])
        heads = count(("num_attention_heads", "n_head"), *b["heads"], default=max(hidden // 128, 1))
        kv_key = t.first("num_key_value_heads", "num_kv_heads")[0]
        kv_heads = count(("num_key_value_heads", "num_kv_heads"), *b["kv_heads"], default=heads)
        if kv_heads > heads:
            t.fail(kv_key, f"must not exceed the attention heads ({heads}), got {kv_heads}")
        if not t.has("head_dim") and hidden < heads:
            t.fail("head_dim", f"is missing and hidden_size ({hidden}) is smaller than the attention heads ({heads})")
        head_dim = count("head_dim", *b["head_dim"], default=hidden // heads)
        if not t.has("vocab_size"):
            notes.append(f"{where}: key '{t.prefix}vocab_size' is missing; 32000 assumed")
        vocab = count("vocab_size", 1, MAX_VOCAB, default=32000)
        inter = count(("intermediate_size", "n_inner", "ffn_dim"), 1, MAX_WIDTH, default=4 * hidden)
        mats = 3 if family.gated_mlp else 2

        # Attention: MLA when the config gives a latent KV rank.
        kv_rank = count("kv_lora_rank", 0, 50_000, default=0)  # with the RoPE part at most a head_dim bound
        kv_cache_dim = 0
        if kv_rank:
            rope = count("qk_rope_head_dim", 0, 50_000, default=64)
            nope = count("qk_nope_head_dim", 0, 100_000, default=128)
            v_dim = count("v_head_dim", 1, 100_000, default=nope or 128)
            q_rank = count("q_lora_rank", 0, MAX_WIDTH, default=0)
            q_out = heads * (nope + rope)
            q = hidden * q_rank + q_rank + q_rank * q_out if q_rank else hidden * q_out
            attn = q + hidden * (kv_rank + rope) + kv_rank + kv_rank * heads * (nope + v_dim) + heads * v_dim * hidden
            # The latent is shared by every head (cached once, replicated across TP): one KV "head" of its width.
            kv_heads, head_dim = 1, kv_rank + rope
            kv_cache_dim = kv_rank + rope
        else:
            attn = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim

        # Mixture of experts.
        experts = count(("num_local_experts", "num_experts", "n_routed_experts"), *b["experts"], default=0)
        fan_keys = ("num_experts_per_tok", "num_experts_per_token", "experts_per_token", "moe_topk")
        active = count(fan_keys, 0, 100_000, default=0) if experts > 1 else 0
        if experts > 1 and not active:
            t.fail(fan_keys[0], f"is missing or 0; a mixture of {experts} experts needs the experts each token uses")
        if experts and active > experts:
            t.fail(t.first(*fan_keys)[0], f"must not exceed the number of experts ({experts}), got {active}")
        if experts <= 1:
            experts = active = 0
        dense_inter = count("intermediate_size_mlp", 1, MAX_WIDTH, default=inter)
        moe_inter = count("moe_intermediate_size", 1, MAX_WIDTH, default=inter)
        shared = count(("n_shared_experts", "num_shared_experts"), 0, 100_000, default=0)
        shared_width = count("shared_expert_intermediate_size", 0, MAX_WIDTH,
                             default=shared * moe_inter + (inter if family.shared_expert else 0))
        moe_layers = _moe_layer_count(t, layers) if experts else 0

        # Recurrent and hybrid models.
        attn_layers, arch, ssm_mb, mixer = None, "moe" if experts else "dense", 0.0, 0
        _, pattern = t.first("hybrid_override_pattern")
        if pattern is not _MISSING and pattern != "":
            if not isinstance(pattern, str) or len(pattern) > 10_000:
                t.fail("hybrid_override_pattern", f"must be a string of at most 10000 layer codes, got {short(pattern)}")
            attn_layers = pattern.count("*")
            if attn_layers > layers:
                t.fail("hybrid_override_pattern", f"has {attn_layers} attention layers ('*'), more than "
                                                  f"num_hidden_layers ({layers})")
            arch = "hybrid"
            m_heads = count("mamba_num_heads", 0, 100_000, default=0)
            m_dim = count("mamba_head_dim", 0, 100_000, default=0)
            d_state = count(("ssm_state_size", "mamba_d_state", "d_state"), 0, 100_000, default=128) or 128
            ssm_mb = pattern.count("M") * m_heads * m_dim * d_state * 2 / 1e6
            if ssm_mb > MODEL_BOUNDS["ssm_state_mb"][1]:
                t.fail("ssm_state_size", f"with mamba_num_heads and mamba_head_dim gives a {ssm_mb:g} MB state per "
                                         f"sequence, above {MODEL_BOUNDS['ssm_state_mb'][1]:g} MB")
            mixer = attn  # a Mamba mixer priced as an attention-sized one
            notes.append(f"{where}: hybrid layers (hybrid_override_pattern) are counted approximately: each Mamba "
                         f"mixer as an attention-sized one, every layer with an MLP")
        elif model_type in SSM_TYPES:
            attn_layers, arch = 0, "ssm"
        return cls(arch=arch, layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
                   vocab=vocab, attn_params=attn, kv_cache_dim=kv_cache_dim, dense_mlp=mats * hidden * dense_inter,
                   moe_layers=moe_layers, experts=experts, active=active, expert_params=mats * hidden * moe_inter,
                   shared_params=3 * hidden * shared_width + experts * hidden, attn_layers=attn_layers,
                   mixer_params=mixer, ssm_mb=ssm_mb)

    def count(self, tied: bool) -> tuple[int, int]:
        """(total, active) parameters: Python integers, so no overflow whatever the sizes."""
        n_attn = self.layers if self.attn_layers is None else self.attn_layers
        dense_layers = self.layers - self.moe_layers
        common = (self.vocab * self.hidden * (1 if tied else 2) + n_attn * self.attn_params
                  + (self.layers - n_attn) * self.mixer_params + dense_layers * self.dense_mlp
                  + self.moe_layers * self.shared_params)
        total = common + self.moe_layers * self.experts * self.expert_params
        active = common + self.moe_layers * self.active * self.expert_params
        return total, active


def _moe_layer_count(t: Fields, layers: int) -> int:
    """Layers holding routed experts: each layout key the config gives must agree that a layer is one."""
    given = _int_list(t, "moe_layers", 10_000, 0, 10_000)
    if given is not None:
        return len({i for i in given if i < layers})
    step = t.number("interleave_moe_layer_step", 1, 10_000, integer=True, default=0)
    first_dense = t.number("first_k_dense_replace", 0, 10_000, integer=True, default=0)
    freq = t.number("moe_layer_freq", 1, 10_000, integer=True, default=1)
    sparse_step = t.number("decoder_sparse_step", 1, 10_000, integer=True, default=1)
    dense_only = set(_int_list(t, "mlp_only_layers", 10_000, 0, 10_000) or ())
    return sum(1 for i in range(layers)
               if (not step or i % step == step - 1) and i >= first_dense and i % freq == 0
               and (i + 1) % sparse_step == 0 and i not in dense_only)


def _windows(t: Fields, family: Family, shape: _Shape, notes: list[str], where: str) -> tuple[int, int]:
    """(sliding_window, sliding_layers): the window in tokens and how many attention layers use it."""
    n_attn = shape.layers if shape.attn_layers is None else shape.attn_layers
    kinds = _str_list(t, "layer_types", shape.layers)
    window_key = "attention_chunk_size" if family.window == "chunked" else "sliding_window"
    window = t.number(window_key, 0, MODEL_BOUNDS["sliding_window"][1], integer=True, default=0)
    if kinds is not None:
        unknown = sorted({k for k in kinds if k not in FULL_KINDS + WINDOW_KINDS})
        if unknown:
            notes.append(f"{where}: layer_types holds {', '.join(short(k, 30) for k in unknown[:3])}, not modelled; "
                         f"those layers are counted as full attention")
        windowed = sum(k in WINDOW_KINDS for k in kinds)
    elif family.window == "all":
        windowed = n_attn
    elif family.window == "qwen":  # transformers Qwen2/3: layers from max_window_layers on, when enabled
        enabled = t.table.get("use_sliding_window")
        if enabled not in (None, True, False):
            t.fail("use_sliding_window", f"must be true or false, got {short(enabled)}")
        first = t.number("max_window_layers", 0, 10_000, integer=True, default=shape.layers)
        windowed = max(shape.layers - first, 0) if enabled else 0
    elif family.window == "alternate":  # Gemma 2, gpt-oss: even layers windowed
        windowed = (shape.layers + 1) // 2
    elif family.window == "pattern":  # Gemma 3: every pattern-th layer global
        pattern = t.number(("sliding_window_pattern", "_sliding_window_pattern"), 1, 10_000, integer=True, default=6)
        windowed = shape.layers - shape.layers // pattern
    elif family.window == "chunked":  # Llama 4: layers with RoPE attend within chunks, the NoPE ones globally
        rope = _int_list(t, "no_rope_layers", 10_000, 0, 1)
        if rope is not None and len(rope) == shape.layers:
            windowed = sum(rope)
        else:
            every = t.number("no_rope_layer_interval", 1, 10_000, integer=True, default=4)
            windowed = shape.layers - shape.layers // every
    else:
        windowed = 0
    windowed = min(windowed, n_attn)
    if windowed and not window and kinds is not None:
        notes.append(f"{where}: layer_types names {windowed} windowed layers but key '{t.prefix}{window_key}' gives "
                     f"no window; they are counted as full attention")
    return (window, windowed) if window and windowed else (0, 0)


def _encoders_b(container: dict, where: str, prefix: str) -> float:
    """Billions of parameters of the vision and audio encoders beside the language model."""
    total = 0
    if (v := _part(container, "vision_config", where, prefix)) is not None:
        f = Fields(v, where, word="key", prefix=prefix + "vision_config.")
        width = f.number(("hidden_size", "embed_dim"), 0, 1_000_000, integer=True, default=0)
        depth = f.number(("num_hidden_layers", "depth"), 0, 10_000, integer=True, default=0)
        mlp = f.number("intermediate_size", 0, MAX_WIDTH, integer=True, default=4 * width)
        act = v.get("hidden_act")
        mats = 3 if isinstance(act, str) and act.strip().lower() in ("silu", "swiglu") else 2
        total += depth * (4 * width * width + mats * width * mlp)
    if (a := _part(container, "audio_config", where, prefix)) is not None:
        f = Fields(a, where, word="key", prefix=prefix + "audio_config.")
        width = f.number(("d_model", "hidden_size"), 0, 1_000_000, integer=True, default=0)
        depth = f.number(("encoder_layers", "num_hidden_layers"), 0, 10_000, integer=True, default=0)
        mlp = f.number(("encoder_ffn_dim", "intermediate_size"), 0, MAX_WIDTH, integer=True, default=4 * width)
        total += depth * (4 * width * width + 2 * width * mlp)
    return total / 1e9


def _tied(text: dict, container: dict, cfg: dict, where: str, prefix: str) -> bool:
    """tie_word_embeddings of the language model, else of its container, else of the file; false if none."""
    for d, shown in ((text, prefix), (container, prefix.rsplit("text_config.", 1)[0]), (cfg, "")):
        tied = d.get("tie_word_embeddings")
        if tied is None:
            continue
        if tied in (0, 1) and not isinstance(tied, float):  # true/false, or 0/1 as some exporters write
            return bool(tied)
        raise CatalogError(f"{where}: key '{shown}tie_word_embeddings' must be true or false, got {short(tied)}")
    return False


def _precision(cfg: dict, container: dict, text: dict, where: str, prefix: str, notes: list[str]) -> str:
    """Weight precision (vocabulary.PRECISIONS): quantization_config first, else torch_dtype / dtype."""
    dtype, outer_prefix = "bf16", prefix.rsplit("text_config.", 1)[0]
    given = [(shown + key, value) for d, shown in ((cfg, ""), (text, prefix)) for key in ("torch_dtype", "dtype")
             if (value := _text_value(d, key, where, shown + key))]
    if given:
        key, value = given[0]
        if value.removeprefix("torch.") in DTYPES:
            dtype = DTYPES[value.removeprefix("torch.")]
        elif value != "auto":
            notes.append(f"{where}: {key} {short(value, 30)} is not a weight type the reader knows; weights priced "
                         f"in bf16")
    for d, shown in ((cfg, ""), (container, outer_prefix), (text, prefix)):
        if (q := _part(d, "quantization_config", where, shown)) is not None:
            return _quantized(q, Fields(q, where, word="key", prefix=shown + "quantization_config."), dtype, notes)
    return dtype


def _quantized(q: dict, f: Fields, dtype: str, notes: list[str]) -> str:
    method = _text_value(q, "quant_method", f.where, f.prefix + "quant_method")
    if method in ("awq", "gptq", "auto-round", "autoround", "hqq", "exl2"):
        bits = f.number(("bits", "w_bit", "nbits"), 1, 16, integer=True, default=4)
        return _int_bits(bits, f, method, notes)
    if method in ("fp8", "fbgemm_fp8", "ptpc_fp8", "fp8_e4m3"):
        return "fp8"
    if method == "mxfp4":
        return "mxfp4"
    if method == "bitsandbytes":
        four = q.get("load_in_4bit", q.get("_load_in_4bit"))
        eight = q.get("load_in_8bit", q.get("_load_in_8bit"))
        return "int4" if four is True else "int8" if eight is True else dtype
    if method == "compressed-tensors":
        return _compressed_tensors(q, f, dtype, notes)
    if method == "modelopt":
        algo = _text_value(q, "quant_algo", f.where, f.prefix + "quant_algo")
        if "fp8" in algo:
            return "fp8"
        if "fp4" in algo:
            return "mxfp4"
        if "int4" in algo or "w4a" in algo:
            return "int4"
        if "int8" in algo or "w8a" in algo:
            return "int8"
    notes.append(f"{f.where}: {f.prefix}quant_method {short(method or None, 30)} is not a quantization the reader "
                 f"knows; weights priced in {dtype}")
    return dtype


def _int_bits(bits: int, f: Fields, method: str, notes: list[str]) -> str:
    if bits == 8:
        return "int8"
    if bits != 4:
        notes.append(f"{f.where}: {method} with {bits}-bit weights priced as int4 (0.5 bytes per parameter)"
                     + (", an upper bound" if bits < 4 else ", a lower bound"))
    return "int4"


def _compressed_tensors(q: dict, f: Fields, dtype: str, notes: list[str]) -> str:
    """The weight format of the first quantization group (llm-compressor writes one per scheme)."""
    groups = _part(q, "config_groups", f.where, f.prefix)
    for name, group in (groups or {}).items():
        if not isinstance(group, dict) or not isinstance(group.get("weights"), dict):
            f.fail(f"config_groups.{name}", f"must be an object with a 'weights' object, got {short(group)}")
        w = Fields(group["weights"], f.where, word="key", prefix=f"{f.prefix}config_groups.{name}.weights.")
        bits = w.number("num_bits", 1, 16, integer=True, default=8)
        kind = _text_value(group["weights"], "type", f.where, w.prefix + "type") or "int"
        if kind == "float":
            if bits == 8:
                return "fp8"
            if bits == 4:
                return "mxfp4"  # NVFP4 / MXFP4: 4-bit floats with block scales
        elif kind == "int":
            return _int_bits(bits, f, "compressed-tensors", notes)
        notes.append(f"{f.where}: compressed-tensors weights of type {short(kind, 20)} and {bits} bits are not a "
                     f"format the reader knows; weights priced in {dtype}")
        return dtype
    fmt = _text_value(q, "format", f.where, f.prefix + "format")
    if "float" in fmt:
        return "fp8"
    if "int" in fmt or "pack" in fmt:
        return "int8" if "int" in fmt else "int4"
    notes.append(f"{f.where}: compressed-tensors without config_groups or a known format; weights priced in {dtype}")
    return dtype


def _check_checkpoint(path: Path, total_b: float, precision: str, notes: list[str]) -> None:
    """Compare the count with model.safetensors.index.json beside the config, when there is one.

    A gap is reported, not refused: checkpoints hold tensors that serving text does not run (DeepSeek's
    multi-token-prediction layer, Qwen-Omni's talker), and quantized ones keep some tensors in 16 bits and
    add scales, so the size bounds the parameter count rather than giving it."""
    index = path.parent / "model.safetensors.index.json"
    if not index.is_file():
        return
    where = oneline(index)
    data = load(read_json, index, "safetensors index", "JSON")
    meta = data.get("metadata") if isinstance(data, dict) else None
    size = meta.get("total_size") if isinstance(meta, dict) else None
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 < size < 1e16:
        raise CatalogError(f"{where}: key 'metadata.total_size' must be the checkpoint's size in bytes, "
                           f"got {short(size)}")
    bpp = BYTES_PER_PARAM[precision]
    most = size / bpp / 1e9  # every tensor in the weight format
    least = size / 2.0 / 1e9 if bpp < 2 else most  # quantized: at worst every tensor in 16 bits
    if not least * (1 - CHECKPOINT_TOLERANCE) <= total_b <= most * (1 + CHECKPOINT_TOLERANCE):
        implied = f"{most:.4g}" if least == most else f"{least:.4g} to {most:.4g}"
        notes.append(f"{where}: the checkpoint's {size / 1e9:.4g} GB hold {implied} billion {precision} parameters, "
                     f"but the config counts {total_b:.4g} billion; check the model card")
