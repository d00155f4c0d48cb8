"""Model catalog: architecture figures per model, and a reader for any Hugging Face config.json."""
from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..errors import CatalogError
from ..io import read_json, read_toml
from ._names import closest, normalize
from ._validate import _MISSING, Fields, check_name, load, oneline, short

ARCHS = ("dense", "moe", "ssm", "hybrid")

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
    precision: str = "bf16"
    modality: str = "text"
    source: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)

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
}
_KNOWN_FIELDS = (*MODEL_BOUNDS, "arch", "precision", "modality", "source", "aliases", "note")


def _allowed() -> tuple[tuple[str, ...], tuple[str, ...]]:
    # Imported here: energylens.data.schema imports this module at load time.
    from ..data.schema import MODALITIES, PRECISIONS

    return PRECISIONS, MODALITIES


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
    precisions, modalities = _allowed()
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
    aliases = f.names("aliases", normalize)
    if aliases is None:
        aliases = base.aliases if base is not None else ()
    return ModelSpec(
        name=name, arch=arch, params_total_b=total, params_active_b=min(active, total),
        layers=layers, hidden_size=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        experts=experts, active_experts=k, attention_layers=attn, vision_params_b=vision,
        ssm_state_mb=num("ssm_state_mb", default=0.0), image_tokens=num("image_tokens", default=None),
        precision=f.choice("precision", precisions, "bf16"), modality=f.choice("modality", modalities, "text"),
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


class ModelCatalog:
    def __init__(self, specs: dict[str, ModelSpec]):
        self.specs = dict(specs)
        self._index: dict[str, str] = {}
        for name, spec in self.specs.items():  # later entries (user files) win an alias
            for alias in spec.aliases:
                self._index[normalize(alias)] = name
        for name in self.specs:  # a canonical name always means its own model
            self._index[normalize(name)] = name

    def extend(self, path: str | os.PathLike) -> "ModelCatalog":
        """This catalog with the models of a TOML file added or redefined (a redefinition keeps the
        built-in aliases unless it gives its own)."""
        user = _parse(load(read_toml, path, "catalog file", "TOML"), str(path), base=self.specs)
        merged = {k: v for k, v in self.specs.items() if k not in user}
        merged.update(user)  # user entries last, so their aliases take precedence
        return ModelCatalog(merged)

    def names(self) -> list[str]:
        return list(self.specs)

    def canonical(self, name: str) -> str | None:
        return self._index.get(normalize(name))

    def __contains__(self, name: str) -> bool:
        return self.canonical(name) is not None

    def get(self, name: str) -> ModelSpec:
        key = self.canonical(name)
        if key is None:
            options = closest(name, self.names() + [a for s in self.specs.values() for a in s.aliases])
            hint = f"; closest known: {', '.join(options)}" if options else ""
            raise CatalogError(f"unknown model {short(name, 80)}{hint} (or pass --model-config path/to/config.json)")
        return self.specs[key]


@lru_cache(maxsize=1)
def _builtin() -> ModelCatalog:
    text = resources.files("energylens.catalog").joinpath("data/models.toml").read_text(encoding="utf-8")
    return ModelCatalog(_parse(tomllib.loads(text), "built-in model catalog"))


def model_catalog(extra: str | os.PathLike | None = None) -> ModelCatalog:
    cat = _builtin()
    extra = extra or os.environ.get("ENERGYLENS_MODEL_CATALOG")
    return cat.extend(extra) if extra else cat


def _round_b(x: float) -> float:
    """Billions to 4 decimals, or 4 significant figures for models under ten million parameters."""
    return round(x, 4) if x >= 0.01 else float(f"{x:.4g}")


def _config_part(cfg: dict, key: str, where: str, prefix: str = "") -> dict | None:
    """cfg[key] when it is a non-empty JSON object, None when absent, null or empty; else a CatalogError."""
    part = cfg.get(key)
    if part is None or part == {}:
        return None
    if not isinstance(part, dict):
        raise CatalogError(f"{where}: key '{prefix}{key}' must be a JSON object (a nested config), got {short(part)}")
    return part


def model_from_hf_config(path: str | os.PathLike, name: str | None = None) -> ModelSpec:
    """Build a ModelSpec from a Hugging Face config.json, counting parameters from the shapes.

    Every size read must be an integer inside the same generous bounds as the model catalog (MODEL_BOUNDS
    and the comments below); anything else is one CatalogError naming the file and the key."""
    path = Path(path)
    where = oneline(path)
    cfg = load(read_json, path, "model config", "JSON")
    if not isinstance(cfg, dict):
        raise CatalogError(f"{where}: expected a JSON object (a Hugging Face config.json), got {short(cfg)}")
    text, prefix = cfg, ""
    if (part := _config_part(cfg, "text_config", where)) is not None:
        text, prefix = part, "text_config."
    elif (thinker := _config_part(cfg, "thinker_config", where)) is not None:
        if (part := _config_part(thinker, "text_config", where, "thinker_config.")) is not None:
            text, prefix = part, "thinker_config.text_config."
    t = Fields(text, where, word="key", prefix=prefix)

    def count(keys, lo, hi, default=_MISSING):
        return t.number(keys, lo, hi, integer=True, default=default)

    vision_b = 0.0
    if text is not cfg and (v := _config_part(cfg, "vision_config", where)) is not None:
        vf = Fields(v, where, word="key", prefix="vision_config.")
        vh = vf.number(("hidden_size", "embed_dim"), 0, 1_000_000, integer=True, default=0)
        vl = vf.number(("num_hidden_layers", "depth"), 0, 10_000, integer=True, default=0)
        vi = vf.number("intermediate_size", 0, 10_000_000, integer=True, default=4 * vh)
        vision_b = vl * (4 * vh * vh + 2 * vh * vi) / 1e9 if vh and vl else 0.0
    layers_keys, hidden_keys = ("num_hidden_layers", "n_layer", "num_layers"), ("hidden_size", "n_embd", "d_model")
    if not t.has(*layers_keys) or not t.has(*hidden_keys):
        raise CatalogError(f"{where}: config lacks num_hidden_layers or hidden_size")
    lo_hi = {k: MODEL_BOUNDS[k][:2] for k in ("layers", "hidden_size", "heads", "kv_heads", "head_dim", "experts")}
    layers = count(layers_keys, *lo_hi["layers"])
    hidden = count(hidden_keys, *lo_hi["hidden_size"])
    heads = count(("num_attention_heads", "n_head"), *lo_hi["heads"], default=max(hidden // 128, 1))
    kv_key = t.first("num_key_value_heads", "num_kv_heads")[0]
    kv_heads = count(("num_key_value_heads", "num_kv_heads"), *lo_hi["kv_heads"], default=heads)
    if kv_heads > heads:
        t.fail(kv_key, f"must not exceed the attention heads ({heads}), got {kv_heads}")
    if not t.has("head_dim") and hidden < heads:
        t.fail("head_dim", f"is missing and hidden_size ({hidden}) is smaller than the attention heads ({heads})")
    head_dim = count("head_dim", *lo_hi["head_dim"], default=hidden // heads)
    vocab = count("vocab_size", 1, 10_000_000, default=32000)  # largest today about 260,000
    inter = count(("intermediate_size", "n_inner", "ffn_dim"), 1, 10_000_000, default=4 * hidden)
    experts = count(("num_local_experts", "num_experts", "n_routed_experts"), *lo_hi["experts"], default=0)
    active_key = t.first("num_experts_per_tok", "num_experts_per_token", "moe_topk")[0]
    active = count(("num_experts_per_tok", "num_experts_per_token", "moe_topk"), 0, 100_000, default=0)
    if experts and active > experts:
        t.fail(active_key, f"must not exceed the number of experts ({experts}), got {active}")
    if not (experts and active):  # routing fan-out or expert count missing: priced as a dense model
        experts = active = 0
    moe_inter = count("moe_intermediate_size", 1, 10_000_000, default=inter)
    shared = count(("n_shared_experts", "num_shared_experts"), 0, 100_000, default=0)
    tie_key, tied = prefix + "tie_word_embeddings", text.get("tie_word_embeddings")
    if tied is None:
        tie_key, tied = "tie_word_embeddings", cfg.get("tie_word_embeddings")
    tied = False if tied is None else tied
    if tied in (0, 1) and not isinstance(tied, float):  # true/false, or 0/1 as some exporters write
        tied = bool(tied)
    else:
        raise CatalogError(f"{where}: key '{tie_key}' must be true or false, got {short(tied)}")
    _, pattern = t.first("hybrid_override_pattern")
    attn_layers = None
    arch = "dense"
    ssm_mb = 0.0
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
    elif str(text.get("model_type", "")).lower() in ("mamba", "mamba2", "rwkv"):
        attn_layers, arch = 0, "ssm"
    n_attn = layers if attn_layers is None else attn_layers
    attn = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    if experts and active:
        arch = "moe"
        mlp_total = experts * 3 * hidden * moe_inter + shared * 3 * hidden * moe_inter
        mlp_active = (active + shared) * 3 * hidden * moe_inter
    else:
        mlp_total = mlp_active = 3 * hidden * inter
    embed = vocab * hidden * (1 if tied else 2)
    total = n_attn * attn + layers * mlp_total + embed
    active_p = n_attn * attn + layers * mlp_active + embed
    if arch == "hybrid":  # Mamba layers replace attention: count them as attention-sized mixers
        total += (layers - n_attn) * attn
        active_p += (layers - n_attn) * attn
    total_b = total / 1e9 + vision_b  # Python integers: no overflow before this division
    lo, hi = MODEL_BOUNDS["params_total_b"][:2]
    if not lo <= total_b <= hi:
        raise CatalogError(f"{where}: its layer, width, vocabulary and expert sizes give {total_b:.3g} billion "
                           f"parameters, outside {lo:g} to {hi:g} billion")
    given = cfg.get("_name_or_path")
    return ModelSpec(
        name=name or (given if isinstance(given, str) and given.strip() else "") or path.parent.name or path.stem,
        arch=arch,
        params_total_b=_round_b(total_b),
        params_active_b=_round_b(active_p / 1e9 + vision_b),
        layers=layers, hidden_size=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        experts=experts, active_experts=active, attention_layers=attn_layers,
        vision_params_b=_round_b(vision_b), ssm_state_mb=round(ssm_mb, 3), modality="image" if vision_b else "text",
        source=f"config {path}",
    )
