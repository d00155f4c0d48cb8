"""Shared console helpers: Rich tables from DataFrames, and numbers formatted for people.

Every table of the CLI goes through `print_table` / `fitted_table` (or `table` at its natural width), every
number in one through `fmt` (significant digits without exponents, thousands separated from 10,000 up) and
every error fraction through `percent`. A number or an identifier is never split or cut: a table that does
not fit drops its lowest-priority columns and says which; only prose cells wrap, between words.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import re
import textwrap
from typing import TYPE_CHECKING

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # pandas loads where a table is printed, not at start-up
    import pandas as pd

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


def progress_bar(*columns):
    """A transient progress bar with these columns on a terminal; nothing at all on a pipe or in a file, where
    Rich would leave a blank line in the bar's place."""
    from rich.progress import Progress

    return Progress(*columns, console=console, transient=True, disable=not console.is_terminal)

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


def percent(fraction, decimals: int = 1) -> str:
    """An error given as a fraction (MAPE 0.0655) as people read it: '6.6%' (empty for None or NaN)."""
    if fraction is None or (isinstance(fraction, float) and math.isnan(fraction)):
        return ""
    return f"{100 * float(fraction):.{decimals}f}%"


_UPPER = {"itl": "ITL", "ttft": "TTFT", "mape": "MAPE", "rmse": "RMSE", "cv": "CV"}


def metrics_text(metrics: dict) -> str:
    """A model's error metrics in words: 'energy MAPE 24.1%, ITL MAPE 20.3%, energy log RMSE 0.3525, rows 904'
    (every *_mape a percent; other numbers as `fmt` gives them)."""
    parts = []
    for key, value in metrics.items():
        label = " ".join(_UPPER.get(w, w) for w in str(key).split("_"))
        if str(key).endswith("mape") and isinstance(value, numbers.Real) and not isinstance(value, bool):
            parts.append(f"{label} {percent(value)}")
        else:
            parts.append(f"{label} {fmt(value)}")
    return ", ".join(parts)


def plural(n: int, noun: str, many: str | None = None) -> str:
    """'1 GPU', '2 GPUs', '1 model', '0 models' ('many' for irregular plurals)."""
    return f"{n} {noun if n == 1 else many or noun + 's'}"


def _new_table(title, compact: bool) -> Table:
    if compact:  # no vertical rules: two spaces between columns, so more columns fit a narrow terminal
        return Table(title=plain(title) if title else None, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0),
                     pad_edge=False, show_edge=False, header_style="bold")
    return Table(title=plain(title) if title else None, show_lines=False, header_style="bold")


_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?\s?[%x*]*$|^[-+]?inf$")


def _lines(text: str) -> list[str]:
    return str(text).split("\n")


def _is_prose(cells: list[str]) -> bool:
    """Text that may wrap between words (a description, a list 'A100, H100'); numbers and identifiers
    (model IDs, GPU names, layouts: no space in them) never wrap."""
    return any(" " in line and not _NUMBER.match(line.strip()) for cell in cells for line in _lines(cell))


def _widths(header: str, cells: list[str], prose: bool) -> tuple[int, int]:
    """(narrowest, natural) content width of a column: a prose column down to its longest word, any other
    one only whole (its widest line, header included)."""
    lines = [ln for text in [header, *cells] for ln in _lines(text)]
    natural = max((cell_len(ln) for ln in lines), default=0)
    if not prose:
        return natural, natural
    return max((cell_len(w) for ln in lines for w in ln.split()), default=0), natural


def _build(df: pd.DataFrame, columns, title, compact: bool, no_wrap: bool, width: int | None = None) -> Table:
    """The table of `columns`. Numbers and identifiers never wrap; prose columns wrap only between words,
    and only when the natural width exceeds `width` (their widths are then set here, not left to Rich,
    whose last resort is cutting every column)."""
    t = _new_table(title, compact)
    import pandas as pd  # here: the CLI starts without pandas (`energylens --version`)

    cells = {c: [fmt(v) for v in df[c]] for c in columns}
    prose = {c: not no_wrap and _is_prose(cells[c]) for c in columns}
    ranges = {c: _widths(str(c), cells[c], prose[c]) for c in columns}
    given = _prose_widths(ranges, prose, width - _extra_width(t, len(columns)) if width else None)
    for c in columns:
        numeric = (pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])) or \
            (len(cells[c]) > 0 and all(_NUMBER.match(v) or not v for v in cells[c]))
        t.add_column(plain(c), justify="right" if numeric else "left", overflow="fold", no_wrap=not prose[c],
                     min_width=ranges[c][0], width=given.get(c))
    for row in zip(*cells.values()):
        t.add_row(*(plain(v, 400) for v in row))
    return t


def _extra_width(t: Table, n_columns: int) -> int:
    """Columns a table of `n_columns` spends on padding and rules."""
    edges = 2 if t.show_edge and t.box else 0
    rules = (n_columns - 1) if t.box else 0
    pad = sum(t.padding[i] for i in (1, 3)) * n_columns
    if not t.pad_edge:
        pad -= t.padding[3] + t.padding[1]
    return edges + rules + max(pad, 0)


def _prose_widths(ranges: dict, prose: dict, room: int | None) -> dict:
    """Widths of the prose columns so that every column fits `room`: the widest prose column narrowed
    first, none below its longest word. Empty when the natural widths fit (or nothing can wrap)."""
    if room is None or sum(r[1] for r in ranges.values()) <= room or not any(prose.values()):
        return {}
    widths = {c: r[1] for c, r in ranges.items() if prose[c]}
    excess = sum(r[1] for r in ranges.values()) - room
    while excess > 0:
        narrowable = [c for c in widths if widths[c] > ranges[c][0]]
        if not narrowable:
            break
        widest = max(narrowable, key=widths.get)
        widths[widest] -= 1
        excess -= 1
    return widths


def table(df: pd.DataFrame, title: str | None = None, max_rows: int | None = None, compact: bool = False,
          no_wrap: bool = False) -> Table:
    """Every column of `df` as a Rich table (cells formatted by `fmt`; text shown without markup) at its
    natural width; `fitted_table` makes one fit the terminal."""
    rows = df if max_rows is None else df.head(max_rows)
    t = _build(rows, list(df.columns), title, compact, no_wrap=no_wrap)
    if max_rows is not None and len(df) > max_rows:
        t.caption = f"{len(df) - max_rows} more rows not shown"
    return t


def table_width(t: Table, width: int | None = None) -> int:
    """Columns the table needs to print without wrapping a cell (its natural width)."""
    width = width or console.width
    return console.measure(t, options=console.options.update(width=max(width, 1000))).maximum


def least_width(t: Table) -> int:
    """Columns the table needs with its prose columns wrapped between words (no number or identifier cut)."""
    return console.measure(t, options=console.options.update(width=1000)).minimum


def fitted_table(df: pd.DataFrame, drop_order=(), title: str | None = None, width: int | None = None,
                 compact: bool = True, whole=()) -> tuple[Table, list[str]]:
    """A table of `df` that fits `width` (the console's by default) with no number or identifier cut or
    wrapped: the columns named in `drop_order` are left out, first ones first, until it fits; then prose
    columns wrap between words. Returns the table and the columns left out. When even that does not fit,
    the table is as narrow as it can be without cutting a cell (`print_table` prints it whole).
    (`whole`: kept for callers; every column without spaces is printed whole.)"""
    width = width or console.width
    columns, dropped = list(df.columns), []
    for victim in [None, *[c for c in drop_order if c in df.columns]]:
        if victim is not None:
            columns.remove(victim)
            dropped.append(victim)
        t = _build(df, columns, title, compact, no_wrap=True)
        if table_width(t) <= width:
            return t, dropped
    # every droppable column gone: prose wraps between words (no-op for tables without prose)
    return _build(df, columns, title, compact, no_wrap=False, width=width), dropped


def constant_first(df: pd.DataFrame, drop_order) -> list[str]:
    """`drop_order` (the columns of `df` among them) with those equal on every row first: they tell no
    row apart, so a narrow terminal loses them before any other."""
    order = [c for c in drop_order if c in df.columns]
    constant = [c for c in order if df[c].nunique(dropna=False) <= 1]
    return constant + [c for c in order if c not in constant]


def dropped_note(dropped, how: str = "--json or a wider terminal show them") -> str:
    """The line under a table that left columns out: which, and how to see them."""
    names = ", ".join(str(d).replace("\n/", "/").replace("\n", " ") for d in dropped)
    return f"Not shown at this width: {names} ({how})."


FOOTER_LINES = 6  # printed lines under a table by default; --verbose prints the definitions beyond them


def printed_lines(text: str, width: int) -> int:
    """Lines `text` takes on a terminal `width` columns wide, wrapped between words as the console wraps it."""
    return max(1, len(textwrap.wrap(str(text), width=max(width, 1), break_long_words=True, break_on_hyphens=False)))


def print_table(df: pd.DataFrame, title: str | None = None, drop_order=(), how: str = "--json or a wider terminal "
                "show them", compact: bool = True, caption=None, footer=()) -> list[str]:
    """Print `df` fitted to the terminal (`fitted_table`) and, under it, which columns were left out and
    `how` to see them, then the `footer` lines. A table whose kept columns are still too wide prints at its own
    width (the terminal wraps its lines; no cell is cut). Returns the columns left out."""
    t, dropped = fitted_table(df, drop_order, title=title, compact=compact)
    if caption is not None:
        t.caption = caption
    with console.at_least(table_width(t, 1000) if table_width(t) > console.width else 0):
        console.print(t)
    lines = [*([dropped_note(dropped, how)] if dropped else []), *footer]
    for line in lines:
        console.print(line, markup=False, highlight=False)
    return dropped
