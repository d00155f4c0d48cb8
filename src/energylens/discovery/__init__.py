"""Structure discovery: symbolic regression over hardware-normalized features (pyoperon)."""
from .features import discovery_features
from .search import discover
from .select import select_formula

__all__ = ["discovery_features", "discover", "select_formula"]
