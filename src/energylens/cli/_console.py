"""Shared console helpers: Rich tables from DataFrames, and numbers formatted for people.

Every table of the CLI goes through `table` (or `fitted_table`), and every number in one through `fmt`:
significant digits without exponents, thousands separated from 10,000 up. Cells are never cut with
"…": a table that does not fit drops its lowest-priority columns (`fitted_table`) or folds long cells.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import re

from rich import box
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

PIPE_WIDTH = 160  # output to a file or a pipe (reports, CI logs): wide tables unless $COLUMNS says otherwise


class _Console(Console):
    """A console whose width is decided at each print, not at import: $COLUMNS when set (so that
    `COLUMNS=100 energylens ...` and tests get that width), else the terminal's, else PIPE_WIDTH."""

    _at_least = 0  # set by `at_least`: a wide table printed whole (the terminal wraps its lines, no cell is cut)

    @contextlib.contextmanager
    def at_least(self, width: int):
        """Print at `width` columns or more inside the block."""
        self._at_least = width
        try:
            yield self
        finally:
            self._at_least = 0

    @property
    def size(self) -> ConsoleDimensions:
        dims = self._size()
        return ConsoleDimensions(max(dims.width, self._at_least), dims.height)

    def _size(self) -> ConsoleDimensions:
        dims = Console.size.fget(self)
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            return ConsoleDimensions(int(columns), dims.height)
        if not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size) -> None:
        Console.size.fset(self, new_size)


console = _Console()

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text, limit: int | None = None) -> Text:
    """Text from a file or the user, shown as it is: no Rich markup, terminal control characters made
    visible (an escape sequence in a model file's provenance must not drive the terminal)."""
    s = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    if limit is not None and len(s) > limit:
        s = s[:limit] + "…"
    return Text(s)


SIGNIFICANT = 4  # digits a table shows of a measured or predicted quantity
SEPARATE_FROM = 10_000  # whole numbers from here up get thousands separators (1024 stays 1024)


def fmt(v, digits: int = SIGNIFICANT) -> str:
    """A number for people: `digits` significant digits, never an exponent (1.234e+03 reads 1234, 2.185e+04
    reads 21,850, 1.2e-05 reads 0.000012); whole numbers as whole numbers; NaN and None empty."""
    if v is None or isinstance(v, (str, bool)):
        return "" if v is None else str(v)
    if not isinstance(v, numbers.Real):
        return str(v)
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}" if abs(int(v)) >= SEPARATE_FROM else str(int(v))
    x = float(v)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if abs(x) >= SEPARATE_FROM or (x == int(x)):
        return fmt(int(round(x)))
    # Round to significant digits, then print positionally (format's 'g' switches to exponents).
    exponent = math.floor(math.log10(abs(x)))
    decimals = max(digits - 1 - exponent, 0)
    if decimals == 0:
        return fmt(int(round(x)))
    text = f"{round(x, decimals):.{decimals}f}"
    return text.rstrip("0").rstrip(".")


def _new_table(title, compact: bool) -> Table:
    if compact:  # no vertical rules: two spaces between columns, so more columns fit a narrow terminal
        return Table(title=plain(title) if title else None, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0),
                     pad_edge=False, show_edge=False, header_style="bold")
    return Table(title=plain(title) if title else None, show_lines=False, header_style="bold")


def _build(df: pd.DataFrame, columns, title, compact: bool, no_wrap: bool, whole=()) -> Table:
    t = _new_table(title, compact)
    import pandas as pd  # here: the CLI starts without pandas (`energylens --version`)

    cells = {c: [fmt(v) for v in df[c]] for c in columns}
    for c in columns:
        numeric = pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        # fold, never ellipsis: a cell too wide for its column continues on the next line, whole;
        # the `whole` columns (identifiers) keep their widest cell's width
        widest = max((len(v) for v in cells[c]), default=0) if c in whole else None
        t.add_column(plain(c), justify="right" if numeric else "left", overflow="fold", no_wrap=no_wrap or c in whole,
                     min_width=widest)
    for row in zip(*cells.values()):
        t.add_row(*(plain(v, 400) for v in row))
    return t


def table(df: pd.DataFrame, title: str | None = None, max_rows: int | None = None, compact: bool = False,
          no_wrap: bool = False) -> Table:
    """Every column of `df` as a Rich table (cells formatted by `fmt`; text shown without markup)."""
    rows = df if max_rows is None else df.head(max_rows)
    t = _build(rows, list(df.columns), title, compact, no_wrap=no_wrap)
    if max_rows is not None and len(df) > max_rows:
        t.caption = f"{len(df) - max_rows} more rows not shown"
    return t


def table_width(t: Table, width: int | None = None) -> int:
    """Columns the table needs to print without wrapping a cell (its natural width)."""
    width = width or console.width
    return console.measure(t, options=console.options.update(width=max(width, 1000))).maximum


def fitted_table(df: pd.DataFrame, drop_order=(), title: str | None = None, width: int | None = None,
                 compact: bool = True, whole=()) -> tuple[Table, list[str]]:
    """A table of `df` that fits `width` (the console's by default) with no cell cut or wrapped: the
    columns named in `drop_order` are left out, first ones first, until it fits. Returns the table and the
    columns left out. When even the essential columns do not fit, long cells fold onto more lines, except
    in the `whole` columns (identifiers such as model IDs)."""
    width = width or console.width
    columns, dropped = list(df.columns), []
    for victim in [None, *[c for c in drop_order if c in df.columns]]:
        if victim is not None:
            columns.remove(victim)
            dropped.append(victim)
        t = _build(df, columns, title, compact, no_wrap=True)
        if table_width(t) <= width:
            return t, dropped
    return _build(df, columns, title, compact, no_wrap=False, whole=whole), dropped
