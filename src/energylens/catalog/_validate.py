"""Checks shared by the catalogs and the config reader: typed, finite, bounded figures and one-line errors.

Every figure a catalog entry or a Hugging Face config gives must be a number of the right kind (an integer
where a count is meant), finite and inside a generous physical range; anything else is a CatalogError
whose message names the file, the entry and the field, says what was expected and fits on one line.
"""
from __future__ import annotations

import difflib
import math
from typing import Any, Callable, NoReturn

from ..errors import CatalogError, EnergyLensError

_MISSING = object()


def short(value: Any, limit: int = 40) -> str:
    """repr of a value on one line, cut to `limit` characters (a hostile value must not flood a message)."""
    try:
        text = repr(value)
    except Exception:  # e.g. an integer of more than 4300 digits built through the Python API
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def oneline(text: Any, limit: int = 160, tail: bool = True) -> str:
    """Text (a file name, a library's message) with control characters escaped, cut to `limit` characters
    keeping its tail (file names) or its head."""
    text = str(text)
    if not text.isprintable():
        text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    if len(text) <= limit:
        return text
    return "..." + text[-(limit - 3):] if tail else text[: limit - 3] + "..."


def _num(x: float) -> str:
    return f"{x:g}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


class Fields:
    """Typed access to the fields of one entry (a catalog table or a config object), failing in one line."""

    def __init__(self, table: dict, where: str, word: str = "field", prefix: str = ""):
        self.table = table
        self.where = where  # e.g. "my.toml: entry 'X1'" or "config.json"
        self.word = word  # "field" (catalogs) or "key" (JSON configs)
        self.prefix = prefix  # e.g. "text_config." for keys of a nested config

    def fail(self, field: str, message: str) -> NoReturn:
        name = oneline(f"{self.prefix}{field}", 60, tail=False)  # field names of a hostile file may be anything
        raise CatalogError(f"{self.where}: {self.word} '{name}' {message}")

    def first(self, *keys: str) -> tuple[str, Any]:
        """The first of `keys` present with a non-null value, and that value ((keys[0], _MISSING) if none)."""
        for k in keys:
            if self.table.get(k) is not None:
                return k, self.table[k]
        return keys[0], _MISSING

    def has(self, *keys: str) -> bool:
        return self.first(*keys)[1] is not _MISSING

    def number(self, keys: str | tuple[str, ...], lo: float, hi: float, unit: str = "", *, integer: bool = False,
               default: Any = _MISSING) -> Any:
        """The value of the first present key, checked against [lo, hi]: an int if `integer`, else a float.
        Absent keys give `default`; without a default they are an error."""
        keys = (keys,) if isinstance(keys, str) else keys
        key, value = self.first(*keys)
        if value is _MISSING:
            if default is _MISSING:
                self.fail(key, f"is missing; expected {self._expect(lo, hi, unit, integer)}")
            return default
        return self.check(key, value, lo, hi, unit, integer=integer)

    def check(self, key: str, value: Any, lo: float, hi: float, unit: str = "", *, integer: bool = False) -> Any:
        expect = self._expect(lo, hi, unit, integer)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"must be {expect}, got {_kind(value)} {short(value)}")
        if isinstance(value, float):
            if not math.isfinite(value) or (integer and not value.is_integer()):
                self.fail(key, f"must be {expect}, got {short(value)}")
            if integer:
                value = int(value)
        # Compare before any float(): a 400-digit integer is in range or not, but float() of it overflows.
        if not lo <= value <= hi:
            self.fail(key, f"must be {expect}, got {short(value)}")
        return int(value) if integer else float(value)

    @staticmethod
    def _expect(lo: float, hi: float, unit: str, integer: bool) -> str:
        kind = "an integer" if integer else "a number"
        return f"{kind} from {_num(lo)} to {_num(hi)}{' ' + unit if unit else ''}"

    def text(self, key: str, default: str = "", limit: int = 100_000) -> str:
        value = self.table.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {_kind(value)} {short(value)}")
        if len(value) > limit:
            self.fail(key, f"must be at most {limit} characters, got {len(value)}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.table.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value.strip().lower() not in allowed:
            self.fail(key, f"must be one of {', '.join(allowed)}, got {short(value)}")
        return value.strip().lower()

    def names(self, key: str, normalize: Callable[[str], str]) -> tuple[str, ...] | None:
        """A list of names (aliases); a single string is one name. None when the field is absent."""
        value = self.table.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]  # one alias, never split into characters
        if not isinstance(value, list):
            self.fail(key, f"must be a list of strings, got {_kind(value)} {short(value)}")
        if len(value) > 1000:
            self.fail(key, f"must hold at most 1000 names, got {len(value)}")
        for v in value:
            if not isinstance(v, str):
                self.fail(key, f"must be a list of strings, got an element {short(v)}")
            if not normalize(v) or len(v) > 200 or not v.isprintable():
                self.fail(key, f"holds {short(v)}; a name needs 1 to 200 printable characters besides spaces, "
                               f"'-' and '_'")
        return tuple(dict.fromkeys(value))

    def only(self, known: tuple[str, ...] | set[str]) -> None:
        """Refuse fields nobody reads: a misspelt optional field would otherwise be silently ignored."""
        for key in self.table:
            if key not in known:
                hint = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
                self.fail(str(key), "is not a known field" + (f" (did you mean '{hint[0]}'?)" if hint else ""))


def check_name(name: Any, origin: str, what: str, normalize: Callable[[str], str]) -> None:
    if not isinstance(name, str) or not normalize(name) or len(name) > 200 or not name.isprintable():
        raise CatalogError(f"{origin}: {what} name {short(name)} must have 1 to 200 printable characters besides "
                           f"spaces, '-' and '_'")


def load(reader: Callable, path: Any, what: str, fmt: str):
    """`reader(path, CatalogError, what)` with every failure to read or parse the file as one CatalogError."""
    where = oneline(path)
    try:
        return reader(path, CatalogError, what)
    except EnergyLensError as exc:  # the reader's own message, as one line of the catalog class
        msg = str(exc)
        if isinstance(exc, CatalogError) and msg.isprintable() and len(msg) <= 280:
            raise
        raise CatalogError(oneline(msg, 280, tail=False)) from None
    except IsADirectoryError:
        raise CatalogError(f"{where}: is a directory, expected a {what}") from None
    except PermissionError:
        raise CatalogError(f"{where}: permission denied, cannot read the {what}") from None
    except FileNotFoundError:
        raise CatalogError(f"{where}: {what} not found") from None
    except UnicodeError:
        raise CatalogError(f"{where}: not a UTF-8 text file, expected a {fmt} {what}") from None
    except RecursionError:
        raise CatalogError(f"{where}: {fmt} nested too deeply to be a {what}") from None
    except OSError as exc:
        reason = oneline(exc.strerror or type(exc).__name__, 80, tail=False)
        raise CatalogError(f"{where}: cannot read the {what} ({reason})") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. an integer of more than 4300 digits
        msg = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CatalogError(f"{where}: not valid {fmt} ({oneline(msg, 100, tail=False)})") from None
