"""Accelerator catalog: spec-sheet figures per GPU, resolved from any common spelling of its name."""
from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources

from ..errors import CatalogError
from ..io import read_toml
from ._names import closest, normalize

# Schema column <- catalog field.
HARDWARE_COLUMNS = {
    "gpu_peak_tflops": "peak_tflops",
    "gpu_mem_bw_tbs": "mem_bw_tbs",
    "gpu_mem_gb": "mem_gb",
    "gpu_tdp_w": "tdp_w",
    "gpu_idle_w": "idle_w",
    "gpu_link_gbs": "link_gbs",
}


@dataclass(frozen=True)
class GpuSpec:
    name: str
    peak_tflops: float
    mem_bw_tbs: float
    mem_gb: float
    tdp_w: float
    idle_w: float
    link_gbs: float
    vendor: str = ""
    source: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return asdict(self)


def _parse(entries: dict, origin: str) -> dict[str, GpuSpec]:
    out = {}
    for name, e in entries.items():
        if not isinstance(e, dict):
            raise CatalogError(f"{origin}: entry '{name}' must be a table")
        try:
            spec = GpuSpec(
                name=name,
                peak_tflops=float(e["peak_tflops"]),
                mem_bw_tbs=float(e["mem_bw_tbs"]),
                mem_gb=float(e["mem_gb"]),
                tdp_w=float(e["tdp_w"]),
                idle_w=float(e["idle_w"]),
                link_gbs=float(e["link_gbs"]),
                vendor=str(e.get("vendor", "")),
                source=str(e.get("source", "")),
                aliases=tuple(e.get("aliases", ())),
            )
        except KeyError as exc:
            raise CatalogError(f"{origin}: entry '{name}' lacks field {exc.args[0]!r}")
        except (TypeError, ValueError):
            raise CatalogError(f"{origin}: entry '{name}' has a non-numeric figure")
        for fname in ("peak_tflops", "mem_bw_tbs", "mem_gb", "tdp_w", "link_gbs"):
            if getattr(spec, fname) <= 0:
                raise CatalogError(f"{origin}: entry '{name}' field '{fname}' must be > 0")
        if not 0 <= spec.idle_w < spec.tdp_w:
            raise CatalogError(f"{origin}: entry '{name}' needs 0 <= idle_w < tdp_w")
        out[name] = spec
    return out


class HardwareCatalog:
    """Lookup of GpuSpec by canonical name or alias (case and punctuation insensitive)."""

    def __init__(self, specs: dict[str, GpuSpec]):
        self.specs = dict(specs)
        self._index: dict[str, str] = {}
        for name, spec in self.specs.items():
            for alias in (name, *spec.aliases):
                self._index[normalize(alias)] = name

    def extend(self, path: str | os.PathLike) -> "HardwareCatalog":
        merged = dict(self.specs)
        merged.update(_parse(read_toml(path, CatalogError, "catalog file"), str(path)))
        return HardwareCatalog(merged)

    def names(self) -> list[str]:
        return list(self.specs)

    def canonical(self, name: str) -> str | None:
        return self._index.get(normalize(name))

    def __contains__(self, name: str) -> bool:
        return self.canonical(name) is not None

    def get(self, name: str) -> GpuSpec:
        key = self.canonical(name)
        if key is None:
            options = closest(name, self.names() + [a for s in self.specs.values() for a in s.aliases])
            hint = f"; closest known: {', '.join(options)}" if options else ""
            raise CatalogError(f"unknown GPU '{name}'{hint} (add it with --hardware-catalog FILE.toml)")
        return self.specs[key]


@lru_cache(maxsize=1)
def _builtin() -> HardwareCatalog:
    text = resources.files("energylens.catalog").joinpath("data/hardware.toml").read_bytes()
    return HardwareCatalog(_parse(tomllib.loads(text.decode()), "built-in hardware catalog"))


def hardware_catalog(extra: str | os.PathLike | None = None) -> HardwareCatalog:
    """The shipped catalog, extended by `extra` or the ENERGYLENS_HARDWARE_CATALOG file when given."""
    cat = _builtin()
    extra = extra or os.environ.get("ENERGYLENS_HARDWARE_CATALOG")
    return cat.extend(extra) if extra else cat
