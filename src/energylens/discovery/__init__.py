"""Structure discovery: symbolic regression of the fitted formula's residual over raw system quantities."""
from .features import SYSTEM_QUANTITIES, quantity_matrix
from .search import Discovery, discover

__all__ = ["Discovery", "discover", "quantity_matrix", "SYSTEM_QUANTITIES"]
