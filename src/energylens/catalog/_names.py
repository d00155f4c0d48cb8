"""Name matching shared by the catalogs: case, vendor prefixes and punctuation do not matter."""
from __future__ import annotations

import difflib
import re

_VENDOR = re.compile(r"^(nvidia|amd|intel|habana)[\s_-]+", re.IGNORECASE)


def normalize(name: str) -> str:
    name = _VENDOR.sub("", str(name).strip())
    return re.sub(r"[\s_\-]+", "", name).lower()


def closest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    lowered = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(str(name).lower(), list(lowered), n=n, cutoff=0.3)
    if not hits:  # fall back to the part after an organisation prefix
        short = {c.split("/")[-1].lower(): c for c in candidates}
        hits = [short[h] for h in difflib.get_close_matches(str(name).split("/")[-1].lower(), list(short), n=n, cutoff=0.3)]
        return hits
    return [lowered[h] for h in hits]
