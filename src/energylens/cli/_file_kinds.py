"""Which kind of file an argument is (a model file, a table), judged from its first bytes, so that a file given
in the wrong place (the arguments of predict swapped, a model file where a table goes, a misspelt 'default')
gets one line that says so instead of the parser's complaint about its contents."""
from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import EnergyLensError
from ..io import input_problem

DEFAULT_MODEL = "default"  # the name of the shipped model wherever a model file is asked for
_HEAD = 4096


def sniff(path) -> str | None:
    """'model file (JSON)', 'Parquet table', 'CSV table' or None (unreadable, empty or something else)."""
    if input_problem(path) is not None:
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError:
        return None
    if head.startswith(b"PAR1"):
        return "Parquet table"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return "model file (JSON)"
    first = text.split(b"\n", 1)[0]
    if b"," in first and b"{" not in first:
        return "CSV table"
    return None


def check_model_argument(path, where: str, usage: str) -> None:
    """Refuse in one line a model file argument (`where`: 'the first argument', '--from') that is a table, or a
    missing file whose name is close to 'default'; `usage` is the command's synopsis."""
    name = str(path)
    if name == DEFAULT_MODEL:
        return
    if input_problem(path) == "not found":
        if difflib.get_close_matches(Path(name).name.lower(), [DEFAULT_MODEL], n=1, cutoff=0.7):
            raise EnergyLensError(f"{name}: model file not found; did you mean '{DEFAULT_MODEL}' (the shipped model)?")
        return  # the loader words a missing file
    kind = sniff(path)
    if kind in ("CSV table", "Parquet table"):
        swapped = "are the arguments swapped? " if where.endswith("argument") else ""
        raise EnergyLensError(f"{name}: {where} must be a model file (JSON, or '{DEFAULT_MODEL}'), and this looks like "
                              f"a {kind}; {swapped}usage: {usage}")


def check_table_argument(path, where: str, usage: str) -> None:
    """Refuse in one line a table argument that is a model file."""
    if sniff(path) == "model file (JSON)":
        raise EnergyLensError(f"{path}: {where} must be a table of configurations (CSV or Parquet), and this looks like "
                              f"a model file (JSON); usage: {usage}")
