"""Importers for public measurement sets, registered by name: each turns a folder into schema rows."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ...errors import DataError
from . import llm_inference_bench, mlenergy_v2, mlenergy_v3, splitwise
from ._common import drop_summary

__all__ = ["IMPORTERS", "detect_kind", "drop_summary", "import_dataset"]

IMPORTERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "mlenergy-v3": mlenergy_v3.read,
    "mlenergy-v2": mlenergy_v2.read,
    "llm-inference-bench": llm_inference_bench.read,
    "splitwise": splitwise.read,
}


def import_dataset(kind: str, path) -> pd.DataFrame:
    """Read a public dataset folder (or file) into validated schema rows. The frame's
    attrs["dropped"] counts the source rows left out by reason, attrs["rows_read"] those read
    (`drop_summary` words them)."""
    from ..schema import validate

    if kind not in IMPORTERS:
        raise DataError(f"unknown dataset kind '{kind}'; expected one of {', '.join(IMPORTERS)}")
    path = Path(path)
    if not path.exists():
        raise DataError("not found", path=path)
    df = IMPORTERS[kind](path)
    if df.empty:
        why = drop_summary(df)
        raise DataError(f"no {kind} measurements found" + (f" ({why})" if df.attrs.get("dropped") else ""), path=path)
    out = validate(df, path)
    out.attrs = {"rows_read": df.attrs["rows_read"], "dropped": dict(df.attrs["dropped"])}
    return out


def detect_kind(path) -> str:
    """Guess a dataset folder's kind from its layout."""
    path = Path(path)
    if (path / "models").is_dir() and (path / "index.json").exists():
        return "mlenergy-v3"
    if any(path.glob("*text_generation")) or any(path.rglob("bs*+tp*+pp*.json")):
        return "mlenergy-v2"
    if (path / "power" / "All_results.csv").exists():
        return "llm-inference-bench"
    if (path / "perf_model.csv").exists():
        return "splitwise"
    raise DataError(f"cannot tell which dataset this folder holds; pass --kind ({', '.join(IMPORTERS)})", path=path)
