"""Importers registered by name: public measurement sets (a folder each) and benchmark results joined with a
GPU power log (vllm-bench, guidellm), each turned into schema rows."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ...errors import DataError
from ..schema import validate
from . import guidellm, llm_inference_bench, mlenergy_v2, mlenergy_v3, splitwise, vllm_bench
from ._bench import BenchOptions
from ._common import drop_summary

__all__ = ["BENCHMARK_IMPORTERS", "IMPORTERS", "KINDS", "BenchOptions", "detect_kind", "drop_summary",
           "import_dataset"]

IMPORTERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "mlenergy-v3": mlenergy_v3.read,
    "mlenergy-v2": mlenergy_v2.read,
    "llm-inference-bench": llm_inference_bench.read,
    "splitwise": splitwise.read,
}
# Results of a load generator run against a live server: a file, plus the GPU power log of the same time.
BENCHMARK_IMPORTERS: dict[str, Callable[[Path, BenchOptions], pd.DataFrame]] = {
    "vllm-bench": vllm_bench.read,
    "guidellm": guidellm.read,
}
KINDS = (*IMPORTERS, *BENCHMARK_IMPORTERS)


def import_dataset(kind: str, path, options: BenchOptions | None = None) -> pd.DataFrame:
    """Read a public dataset folder (or file), or a benchmark result file with `options` (its power log and
    deployment), into validated schema rows. The frame's attrs["dropped"] counts the source rows left out
    by reason, attrs["rows_read"] those read (`drop_summary` words them)."""
    if kind not in KINDS:
        raise DataError(f"unknown dataset kind '{kind}'; expected one of {', '.join(KINDS)}")
    path = Path(path)
    if not path.exists():
        raise DataError("not found", path=path)
    if kind in BENCHMARK_IMPORTERS:
        if path.is_dir():
            raise DataError(f"{kind} reads a result file, not a folder", path=path)
        df = BENCHMARK_IMPORTERS[kind](path, options or BenchOptions())
    else:
        df = IMPORTERS[kind](path)
    if df.empty:
        why = drop_summary(df)
        raise DataError(f"no {kind} measurements found" + (f" ({why})" if df.attrs.get("dropped") else ""), path=path)
    out = validate(df, path)
    out.attrs = {"rows_read": df.attrs["rows_read"], "dropped": dict(df.attrs["dropped"])}
    return out


class SeveralDatasetsError(DataError):
    """A folder whose sub-folders hold datasets of different kinds."""


def detect_kind(path) -> str:
    """Guess a dataset folder's kind from its layout; a folder that holds several datasets is refused."""
    path = Path(path)
    inside = {}
    for child in sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []:
        try:
            inside[child.name] = _layout_kind(child)
        except DataError:
            pass
    if len(set(inside.values())) > 1:
        raise SeveralDatasetsError("this folder holds several datasets (" + ", ".join(f"{n}: {k}" for n, k in inside.items())
                        + "); give one of its folders", path=path)
    return _layout_kind(path)


def _layout_kind(path: Path) -> str:
    if (path / "models").is_dir() and (path / "index.json").exists():
        return "mlenergy-v3"
    if any(path.glob("*text_generation")) or any(path.rglob("bs*+tp*+pp*.json")):
        return "mlenergy-v2"
    if (path / "power" / "All_results.csv").exists():
        return "llm-inference-bench"
    if (path / "perf_model.csv").exists():
        return "splitwise"
    raise DataError(f"cannot tell which dataset this folder holds; pass --kind ({', '.join(IMPORTERS)})", path=path)
