"""Accelerator catalog: spec-sheet figures per GPU, resolved from any common spelling of its name."""
from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources

from ..errors import CatalogError
from ._lookup import NamedCatalog
from ._names import normalize
from ._validate import Fields, check_name, oneline, short

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


# Accepted range of each spec-sheet figure (inclusive). The bounds are generous physical limits, not a
# judgement of what is plausible: a few hundred times beyond today's largest accelerators on the high side
# (wafer-scale systems included) and far below any chip that could serve a language model on the low side.
# They exist so that typos, inf/nan and 1e300-style values fail at load time with one line naming the
# field, instead of overflowing or producing 1e304 J energies downstream.
HARDWARE_BOUNDS: dict[str, tuple[float, float, str]] = {
    # 1 GFLOP/s .. 1 EFLOP/s per device (B200: 2,250; a Cerebras WSE-3 wafer: about 125,000).
    "peak_tflops": (1e-3, 1e6, "TFLOP/s"),
    # 1 GB/s .. 100 PB/s (B200 HBM3e: 8; WSE-3 on-wafer SRAM: 21,000).
    "mem_bw_tbs": (1e-3, 1e5, "TB/s"),
    # 100 MB .. 100 TB of device memory (B200: 180).
    "mem_gb": (0.1, 1e5, "GB"),
    # A 1 W edge chip .. a 100 kW wafer-scale or rack-scale device (CS-3: 23 kW).
    "tdp_w": (1.0, 1e5, "W"),
    # 0 W .. the TDP (checked separately: idle_w < tdp_w).
    "idle_w": (0.0, 1e5, "W"),
    # 1 MB/s .. 100 TB/s per GPU (NVLink 5: 1,800 GB/s).
    "link_gbs": (1e-3, 1e5, "GB/s"),
}
_KNOWN_FIELDS = (*HARDWARE_BOUNDS, "vendor", "source", "aliases", "note")


def _parse(entries: dict, origin: str, base: dict[str, GpuSpec] | None = None) -> dict[str, GpuSpec]:
    """Validated GpuSpecs of a catalog's tables. An entry redefining one of `base` (same name, any spelling)
    keeps its canonical name, and its aliases unless the entry gives `aliases` itself."""
    where = oneline(origin)
    if not isinstance(entries, dict):
        raise CatalogError(f"{where}: expected one table per accelerator")
    base = base or {}
    base_keys = {normalize(k): k for k in base}
    out: dict[str, GpuSpec] = {}
    claimed: dict[str, str] = {}  # normalized name or alias -> entry of this file that uses it
    for name, e in entries.items():
        check_name(name, where, "entry", normalize)
        if not isinstance(e, dict):
            raise CatalogError(f"{where}: entry {short(name)} must be a table of figures, got {short(e)}")
        f = Fields(e, f"{where}: entry {short(name)}")
        f.only(_KNOWN_FIELDS)
        key = base_keys.get(normalize(name), name)
        if key in out:
            raise CatalogError(f"{where}: entry {short(name)} defines GPU {short(key)} a second time")
        figures = {k: f.number(k, lo, hi, unit) for k, (lo, hi, unit) in HARDWARE_BOUNDS.items()}
        if figures["idle_w"] >= figures["tdp_w"]:
            f.fail("idle_w", f"must be below tdp_w ({figures['tdp_w']:g} W), got {figures['idle_w']:g}")
        aliases = f.names("aliases", normalize)
        if aliases is None:
            aliases = base[key].aliases if key in base else ()
        for alias in (key, *aliases):
            owner = claimed.setdefault(normalize(alias), key)
            if owner != key:
                f.fail("aliases", f"holds {short(alias)}, already a name or alias of entry {short(owner)}")
            owner = base_keys.get(normalize(alias), key)
            if owner != key:
                f.fail("aliases", f"holds {short(alias)}, the name of the built-in GPU {short(owner)}")
        out[key] = GpuSpec(name=key, **figures, vendor=f.text("vendor"), source=f.text("source"), aliases=aliases)
    return out


class HardwareCatalog(NamedCatalog):
    """Lookup of GpuSpec by canonical name or alias (case and punctuation insensitive)."""

    kind = "GPU"
    unknown_hint = "add it with --hardware-catalog FILE.toml"
    parse = staticmethod(_parse)


@lru_cache(maxsize=1)
def _builtin() -> HardwareCatalog:
    text = resources.files("energylens.catalog").joinpath("data/hardware.toml").read_bytes()
    return HardwareCatalog(_parse(tomllib.loads(text.decode()), "built-in hardware catalog"))


def hardware_catalog(extra: str | os.PathLike | None = None) -> HardwareCatalog:
    """The shipped catalog, extended by `extra` or the ENERGYLENS_HARDWARE_CATALOG file when given."""
    cat = _builtin()
    extra = extra or os.environ.get("ENERGYLENS_HARDWARE_CATALOG")
    return cat.extend(extra) if extra else cat
