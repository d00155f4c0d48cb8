"""What the hardware and model catalogs share: lookup by canonical name or alias, and extension by a
user's TOML file."""
from __future__ import annotations

import os

from ..errors import CatalogError
from ..io import read_toml
from ._names import closest, normalize
from ._validate import load, oneline, short


class NamedCatalog:
    """Specs by canonical name; names and aliases match whatever their case and punctuation. Subclasses
    set `kind` (the word errors use), `unknown_hint` (how to add what is missing) and `parse`
    (a file's tables -> validated specs, given the specs it may redefine)."""

    kind = "entry"
    unknown_hint = ""

    @staticmethod
    def parse(entries: dict, origin: str, base: dict | None = None) -> dict:
        raise NotImplementedError

    def __init__(self, specs: dict):
        self.specs = dict(specs)
        self._index: dict[str, str] = {}
        for name, spec in self.specs.items():  # later entries (user files) win an alias
            for alias in spec.aliases:
                self._index[normalize(alias)] = name
        for name in self.specs:  # a canonical name always means its own entry
            self._index[normalize(name)] = name

    def extend(self, path: str | os.PathLike):
        """This catalog with the entries of a TOML file added or redefined (a redefinition keeps the
        built-in aliases unless it gives its own)."""
        user = self.parse(load(read_toml, path, "catalog file", "TOML"), str(path), base=self.specs)
        merged = {k: v for k, v in self.specs.items() if k not in user}
        merged.update(user)  # user entries last, so their aliases take precedence
        return type(self)(merged)

    def names(self) -> list[str]:
        return list(self.specs)

    def canonical(self, name: str) -> str | None:
        return self._index.get(normalize(name))

    def __contains__(self, name: str) -> bool:
        return self.canonical(name) is not None

    def _named(self, matches: list[str]) -> list[str]:
        """Matches by their listed (canonical) name, once each; one matched through an alias says so."""
        out: dict[str, str] = {}
        for match in matches:
            key = self.canonical(match)
            out.setdefault(key, key if normalize(match) == normalize(key) else f"{key} (alias {match})")
        return list(out.values())

    def aliases(self) -> dict[str, str]:
        """Every alias -> the canonical name it resolves to."""
        out = {alias: self.canonical(alias) for spec in self.specs.values() for alias in spec.aliases}
        return {alias: key for alias, key in out.items() if normalize(alias) != normalize(key)}

    def get(self, name: str, hint: str | None = None):
        """The spec of `name`; unknown: a CatalogError with the closest names and `hint` (how to add it;
        default: the catalog's own)."""
        key = self.canonical(name)
        if key is None:
            hint_text = hint
            options = closest(name, self.names() + [a for s in self.specs.values() for a in s.aliases])
            hint = f"; closest known: {', '.join(self._named(options))}" if options else ""
            raise CatalogError(f"unknown {self.kind} {oneline(short(name, 80))}{hint} ({hint_text or self.unknown_hint})")
        return self.specs[key]
