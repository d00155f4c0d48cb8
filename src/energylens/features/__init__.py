"""Physical, hardware-normalized features of a serving configuration (FLOPs, bytes, times)."""
from .physics import BYTES_PER_PARAM, Features, compute_features

__all__ = ["BYTES_PER_PARAM", "Features", "compute_features"]
