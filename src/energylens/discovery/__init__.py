"""Structure discovery: symbolic regression of the physics form's residual over dimensionless groups."""
from .features import group_matrix
from .search import Discovery, discover

__all__ = ["Discovery", "discover", "group_matrix"]
