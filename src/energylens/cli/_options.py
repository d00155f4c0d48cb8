"""Options and option values shared by several commands: the random seed, and lists of whole numbers given as
`64,256` or as repeated flags."""
from __future__ import annotations

from collections.abc import Iterable

import typer

from ..vocabulary import MAX_SEED

from ..errors import EnergyLensError



def seed_option(help: str):
    """--seed, bounded as the random generators need it (a bad value: one usage line, exit 2)."""
    return typer.Option(0, "--seed", min=0, max=MAX_SEED, help=help)


def int_list(text: str | Iterable[str], option: str, minimum: int = 1, maximum: int | None = None) -> list[int]:
    """Whole numbers in [minimum, maximum], each once, in the order given, from comma-separated text or
    from several such texts (a repeated flag: `--batch 64 --batch 256` equals `--batch 64,256`).
    Anything else raises an EnergyLensError naming the option and what was expected."""
    texts = [text] if isinstance(text, str) else [str(t) for t in text]
    shown = ",".join(texts)
    items = [v.strip() for t in texts for v in t.split(",")]
    bound = f"between {minimum:,} and {maximum:,}" if maximum is not None else f">= {minimum:,}"
    if not any(items) or any(not v.lstrip("+-").isdigit() or not v.isascii() for v in items if v):
        raise EnergyLensError(f"{option} expects comma-separated whole numbers {bound} (e.g. 64,256), got '{shown}'")
    try:
        vals = [int(v) for v in items if v]
    except ValueError:  # thousands of digits: beyond Python's int-from-text limit, and beyond any bound
        vals = [minimum - 1]
    if any(v < minimum or (maximum is not None and v > maximum) for v in vals):
        raise EnergyLensError(f"{option} expects whole numbers {bound}, got '{shown}'")
    return list(dict.fromkeys(vals))
