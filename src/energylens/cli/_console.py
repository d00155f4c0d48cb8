"""Shared console helpers: Rich tables from DataFrames, and numbers formatted for people."""
from __future__ import annotations

import math
import re
import sys

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Wide tables when the output is a file or a pipe (reports, CI logs); the terminal's width otherwise.
console = Console() if sys.stdout.isatty() else Console(width=160)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text, limit: int | None = None) -> Text:
    """Text from a file or the user, shown as it is: no Rich markup, terminal control characters made
    visible (an escape sequence in a model file's provenance must not drive the terminal)."""
    s = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    if limit is not None and len(s) > limit:
        s = s[:limit] + "…"
    return Text(s)


def fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e9:
            return str(int(v))
        a = abs(v)
        return f"{v:.3g}" if a < 1e-2 or a >= 1e5 else (f"{v:.4g}")
    return str(v)


def table(df: pd.DataFrame, title: str | None = None, max_rows: int | None = None) -> Table:
    t = Table(title=plain(title) if title else None, show_lines=False, header_style="bold")
    for c in df.columns:
        t.add_column(plain(c), justify="right" if pd.api.types.is_numeric_dtype(df[c]) else "left")
    rows = df if max_rows is None else df.head(max_rows)
    for _, r in rows.iterrows():
        t.add_row(*(plain(fmt(v), 200) for v in r.tolist()))
    if max_rows is not None and len(df) > max_rows:
        t.caption = f"{len(df) - max_rows} more rows not shown"
    return t
