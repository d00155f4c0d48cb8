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


def _spec_from_entry(name: str, e: dict, origin: str) -> ModelSpec:
    try:
        arch = str(e["arch"]).lower()
        if arch not in ARCHS:
            raise CatalogError(f"{origin}: model '{name}' has arch '{arch}'; expected one of {', '.join(ARCHS)}")
        spec = ModelSpec(
            name=name,
            arch=arch,
            params_total_b=float(e["params_total_b"]),
            params_active_b=float(e.get("params_active_b", e["params_total_b"])),
            layers=int(e.get("layers", 0)),
            hidden_size=int(e.get("hidden_size", 0)),
            heads=int(e.get("heads", 0)),
            kv_heads=int(e.get("kv_heads", e.get("heads", 0))),
            head_dim=int(e.get("head_dim", 0)) or (int(e.get("hidden_size", 0)) // max(int(e.get("heads", 1)), 1)),
            experts=int(e.get("experts", 0)),
            active_experts=int(e.get("active_experts", 0)),
            attention_layers=int(e["attention_layers"]) if "attention_layers" in e else None,
            vision_params_b=float(e.get("vision_params_b", 0.0)),
            ssm_state_mb=float(e.get("ssm_state_mb", 0.0)),
            image_tokens=int(e["image_tokens"]) if "image_tokens" in e else None,
            precision=str(e.get("precision", "bf16")),
            modality=str(e.get("modality", "text")),
            source=str(e.get("source", "")),
            aliases=tuple(e.get("aliases", ())),
        )
    except KeyError as exc:
        raise CatalogError(f"{origin}: model '{name}' lacks field {exc.args[0]!r}")
    except (TypeError, ValueError):
        raise CatalogError(f"{origin}: model '{name}' has a non-numeric figure")
    if spec.params_total_b <= 0 or not 0 < spec.params_active_b <= spec.params_total_b * 1.0001:
        raise CatalogError(f"{origin}: model '{name}' needs 0 < params_active_b <= params_total_b")
    return spec


class ModelCatalog:
    def __init__(self, specs: dict[str, ModelSpec]):
        self.specs = dict(specs)
        self._index: dict[str, str] = {}
        for name, spec in self.specs.items():
            for alias in (name, *spec.aliases):
                self._index[normalize(alias)] = name

    def extend(self, path: str | os.PathLike) -> "ModelCatalog":
        entries = read_toml(path, CatalogError, "catalog file")
        merged = dict(self.specs)
        merged.update({n: _spec_from_entry(n, e, str(path)) for n, e in entries.items()})
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
            raise CatalogError(f"unknown model '{name}'{hint} (or pass --model-config path/to/config.json)")
        return self.specs[key]


@lru_cache(maxsize=1)
def _builtin() -> ModelCatalog:
    text = resources.files("energylens.catalog").joinpath("data/models.toml").read_text()
    entries = tomllib.loads(text)
    return ModelCatalog({n: _spec_from_entry(n, e, "built-in model catalog") for n, e in entries.items()})


def model_catalog(extra: str | os.PathLike | None = None) -> ModelCatalog:
    cat = _builtin()
    extra = extra or os.environ.get("ENERGYLENS_MODEL_CATALOG")
    return cat.extend(extra) if extra else cat


def _first(cfg: dict, *keys, default=None):
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return default


def model_from_hf_config(path: str | os.PathLike, name: str | None = None) -> ModelSpec:
    """Build a ModelSpec from a Hugging Face config.json, counting parameters from the shapes."""
    path = Path(path)
    cfg = read_json(path, CatalogError, "model config")
    if not isinstance(cfg, dict):
        raise CatalogError(f"{path}: expected a JSON object (a Hugging Face config.json)")
    vision_b = 0.0
    text = cfg.get("text_config") or cfg.get("thinker_config", {}).get("text_config") or cfg
    if text is not cfg and isinstance(cfg.get("vision_config"), dict):
        v = cfg["vision_config"]
        vh, vl = _first(v, "hidden_size", "embed_dim", default=0), _first(v, "num_hidden_layers", "depth", default=0)
        vi = _first(v, "intermediate_size", default=4 * (vh or 0))
        vision_b = vl * (4 * vh * vh + 2 * vh * vi) / 1e9 if vh and vl else 0.0
    try:
        layers = int(_first(text, "num_hidden_layers", "n_layer", "num_layers"))
        hidden = int(_first(text, "hidden_size", "n_embd", "d_model"))
    except (TypeError, ValueError):
        raise CatalogError(f"{path}: config lacks num_hidden_layers or hidden_size")
    heads = int(_first(text, "num_attention_heads", "n_head", default=max(hidden // 128, 1)))
    kv_heads = int(_first(text, "num_key_value_heads", "num_kv_heads", default=heads))
    head_dim = int(_first(text, "head_dim", default=hidden // heads))
    vocab = int(_first(text, "vocab_size", default=32000))
    inter = int(_first(text, "intermediate_size", "n_inner", "ffn_dim", default=4 * hidden))
    experts = int(_first(text, "num_local_experts", "num_experts", "n_routed_experts", default=0) or 0)
    active = int(_first(text, "num_experts_per_tok", "num_experts_per_token", "moe_topk", default=0) or 0)
    moe_inter = int(_first(text, "moe_intermediate_size", default=inter))
    shared = int(_first(text, "n_shared_experts", "num_shared_experts", default=0) or 0)
    tied = bool(_first(text, "tie_word_embeddings", default=cfg.get("tie_word_embeddings", False)))
    pattern = _first(text, "hybrid_override_pattern", default=None)
    attn_layers = None
    arch = "dense"
    ssm_mb = 0.0
    if pattern:
        attn_layers = str(pattern).count("*")
        arch = "hybrid"
        m_heads = int(_first(text, "mamba_num_heads", default=0) or 0)
        m_dim = int(_first(text, "mamba_head_dim", default=0) or 0)
        d_state = int(_first(text, "ssm_state_size", "mamba_d_state", "d_state", default=128) or 128)
        ssm_mb = str(pattern).count("M") * m_heads * m_dim * d_state * 2 / 1e6
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
    return ModelSpec(
        name=name or str(cfg.get("_name_or_path") or path.parent.name or path.stem),
        arch=arch,
        params_total_b=round(total / 1e9 + vision_b, 4),
        params_active_b=round(active_p / 1e9 + vision_b, 4),
        layers=layers, hidden_size=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        experts=experts, active_experts=active, attention_layers=attn_layers,
        vision_params_b=round(vision_b, 4), ssm_state_mb=round(ssm_mb, 3), modality="image" if vision_b else "text",
        source=f"config {path}",
    )
