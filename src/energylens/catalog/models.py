"""Model catalog: architecture figures per model, and a reader for any Hugging Face config.json."""
from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources

from ..errors import CatalogError
from ._lookup import NamedCatalog
from ._names import normalize
from ..vocabulary import ARCHS, MODALITIES, PRECISIONS
from ._validate import _MISSING, Fields, check_name, oneline, short


# Schema column <- ModelSpec field.
MODEL_COLUMNS = {
    "arch": "arch",
    "params_total_b": "params_total_b",
    "params_active_b": "params_active_b",
    "layers": "layers",
    "hidden_size": "hidden_size",
    "heads": "heads",
    "kv_heads": "kv_heads",
    "head_dim": "head_dim",
    "experts": "experts",
    "active_experts": "active_experts",
    "kv_cache_dim": "kv_cache_dim",
    "sliding_window": "sliding_window",
    "sliding_layers": "sliding_layers",
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    arch: str
    params_total_b: float
    params_active_b: float
    layers: int = 0
    hidden_size: int = 0
    heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    experts: int = 0
    active_experts: int = 0
    attention_layers: int | None = None
    vision_params_b: float = 0.0
    ssm_state_mb: float = 0.0
    image_tokens: int | None = None
    # KV-cache values per token and attention layer, K and V together; 0: 2 x kv_heads x head_dim.
    # MLA (DeepSeek-V2/V3, Kimi-K2) caches one latent of kv_lora_rank + qk_rope_head_dim, read by K and V.
    kv_cache_dim: int = 0
    sliding_window: int = 0  # tokens the windowed layers keep (Gemma 2/3, gpt-oss, Llama 4 chunks); 0: none
    sliding_layers: int = 0  # attention layers with that window; the others cache the whole context
    precision: str = "bf16"
    modality: str = "text"
    source: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)  # what a config reader could not count with confidence

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def kv_layers(self) -> int:
        return self.layers if self.attention_layers is None else self.attention_layers


# Accepted range of each catalog figure (inclusive): generous physical limits, far beyond today's models
# (largest: about 2,000 billion parameters, 126 layers, hidden size 16,384, 256 experts, head_dim 576),
# so that typos, inf/nan and 1e300-style values fail at load time with one line naming the field.
# (low, high, unit, integer)
MODEL_BOUNDS: dict[str, tuple[float, float, str, bool]] = {
    "params_total_b": (1e-6, 1e6, "billion", False),  # a thousand parameters .. a quadrillion
    "params_active_b": (1e-6, 1e6, "billion", False),  # and <= params_total_b
    "layers": (1, 10_000, "", True),
    "hidden_size": (1, 1_000_000, "", True),
    "heads": (1, 100_000, "", True),
    "kv_heads": (1, 100_000, "", True),  # and <= heads (MQA 1, GQA a divisor, MHA = heads)
    "head_dim": (1, 100_000, "", True),
    "experts": (0, 100_000, "", True),  # 0: dense
    "active_experts": (0, 100_000, "", True),  # 0: dense; else 1 .. experts
    "attention_layers": (0, 10_000, "", True),  # and <= layers (hybrids: the others are Mamba layers)
    "vision_params_b": (0.0, 1e6, "billion", False),  # and < params_total_b, which counts it
    "ssm_state_mb": (0.0, 1e6, "MB", False),  # recurrent state per sequence (today about 70 MB)
    "image_tokens": (1, 1_000_000, "", True),  # prompt tokens one image becomes (today up to about 2,900)
    "kv_cache_dim": (0, 1_000_000, "", True),  # 0: derived; MLA today 576, GQA up to about 2 x 16 x 256
    "sliding_window": (0, 10_000_000, "tokens", True),  # 0: none; today 128 (gpt-oss) to 8,192 (Llama 4 chunks)
    "sliding_layers": (0, 10_000, "", True),  # and <= the attention layers
}
_KNOWN_FIELDS = (*MODEL_BOUNDS, "arch", "precision", "modality", "source", "aliases", "note")


def _spec_from_entry(name: str, e: dict, origin: str, base: ModelSpec | None = None) -> ModelSpec:
    """A validated ModelSpec from one catalog table. Shape fields may be left out (0: unknown, derived from
    the parameter count downstream) but, when given, must be positive integers inside MODEL_BOUNDS.
    `base` is the entry this one redefines: its aliases are kept unless the entry gives its own."""
    where = oneline(origin)
    check_name(name, where, "model", normalize)
    if not isinstance(e, dict):
        raise CatalogError(f"{where}: model {short(name)} must be a table of figures, got {short(e)}")
    f = Fields(e, f"{where}: model {short(name)}")
    f.only(_KNOWN_FIELDS)
    arch = f.choice("arch", ARCHS, "")
    if not arch:
        f.fail("arch", f"is missing; expected one of {', '.join(ARCHS)}")

    def num(key, default=0, **kw):
        lo, hi, unit, integer = MODEL_BOUNDS[key]
        return f.number(key, lo, hi, unit, integer=integer, default=default, **kw)

    total = num("params_total_b", default=_MISSING)
    active = num("params_active_b", default=total)
    if active > total * 1.0001:
        f.fail("params_active_b", f"must not exceed params_total_b ({total:g}), got {active:g}")
    layers, hidden, heads = num("layers"), num("hidden_size"), num("heads")
    kv_heads = num("kv_heads", default=heads)
    if heads and kv_heads > heads:
        f.fail("kv_heads", f"must not exceed heads ({heads}), got {kv_heads}")
    if hidden and heads > hidden:  # every head holds at least one dimension of the width
        f.fail("heads", f"must not exceed hidden_size ({hidden}), got {heads}")
    head_dim = num("head_dim", default=hidden // heads if hidden and heads else 0)
    experts, k = num("experts"), num("active_experts")
    if experts and not 1 <= k <= experts:
        f.fail("active_experts", f"must be an integer from 1 to experts ({experts}), got {k}")
    if k and not experts:
        f.fail("experts", f"must be given (at least active_experts = {k}) when active_experts is")
    if arch == "moe" and not experts:
        f.fail("experts", "must be given for arch 'moe' (with active_experts)")
    if arch == "dense" and experts:
        f.fail("experts", f"must be 0 or absent for arch 'dense', got {experts} (use arch = 'moe')")
    attn = num("attention_layers", default=None)
    if attn is not None and layers and attn > layers:
        f.fail("attention_layers", f"must not exceed layers ({layers}), got {attn}")
    vision = num("vision_params_b", default=0.0)
    if vision and vision >= total:
        f.fail("vision_params_b", f"must be below params_total_b ({total:g}), which counts it, got {vision:g}")
    kv_dim = num("kv_cache_dim", default=0)
    window, windowed = num("sliding_window", default=0), num("sliding_layers", default=0)
    if bool(window) != bool(windowed):
        f.fail("sliding_layers" if window else "sliding_window",
               "must be given with sliding_window / sliding_layers (both, or neither)")
    kv_layers = layers if attn is None else attn
    if kv_layers and windowed > kv_layers:
        f.fail("sliding_layers", f"must not exceed the attention layers ({kv_layers}), got {windowed}")
    aliases = f.names("aliases", normalize)
    if aliases is None:
        aliases = base.aliases if base is not None else ()
    return ModelSpec(
        name=name, arch=arch, params_total_b=total, params_active_b=min(active, total),
        layers=layers, hidden_size=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        experts=experts, active_experts=k, attention_layers=attn, vision_params_b=vision,
        ssm_state_mb=num("ssm_state_mb", default=0.0), image_tokens=num("image_tokens", default=None),
        kv_cache_dim=kv_dim, sliding_window=window, sliding_layers=windowed,
        precision=f.choice("precision", PRECISIONS, "bf16"), modality=f.choice("modality", MODALITIES, "text"),
        source=f.text("source"), aliases=aliases,
    )


def _parse(entries: dict, origin: str, base: dict[str, ModelSpec] | None = None) -> dict[str, ModelSpec]:
    """Validated ModelSpecs of a catalog's tables. An entry redefining one of `base` (same name, any
    spelling) keeps its canonical name, and its aliases unless it gives `aliases` itself."""
    where = oneline(origin)
    if not isinstance(entries, dict):
        raise CatalogError(f"{where}: expected one table per model")
    base = base or {}
    base_keys = {normalize(k): k for k in base}
    out: dict[str, ModelSpec] = {}
    claimed: dict[str, str] = {}  # normalized name or alias -> entry of this file that uses it
    for name, e in entries.items():
        check_name(name, where, "model", normalize)
        key = base_keys.get(normalize(name), name)
        if key in out:
            raise CatalogError(f"{where}: model {short(name)} defines model {short(key)} a second time")
        spec = _spec_from_entry(key, e, origin, base.get(key))
        for alias in (key, *spec.aliases):
            owner = claimed.setdefault(normalize(alias), key)
            if owner == key:
                owner = base_keys.get(normalize(alias), key)
            if owner != key:
                raise CatalogError(f"{where}: model {short(name)}, field 'aliases' holds {short(alias)}, "
                                   f"already the name or an alias of model {short(owner)}")
        out[key] = spec
    return out


class ModelCatalog(NamedCatalog):
    """Lookup of ModelSpec by canonical name or alias (case and punctuation insensitive)."""

    kind = "model"
    unknown_hint = "or pass --model-config path/to/config.json"
    parse = staticmethod(_parse)


@lru_cache(maxsize=1)
def _builtin() -> ModelCatalog:
    text = resources.files("energylens.catalog").joinpath("data/models.toml").read_text(encoding="utf-8")
    return ModelCatalog(_parse(tomllib.loads(text), "built-in model catalog"))


def model_catalog(extra: str | os.PathLike | None = None) -> ModelCatalog:
    cat = _builtin()
    extra = extra or os.environ.get("ENERGYLENS_MODEL_CATALOG")
    return cat.extend(extra) if extra else cat
