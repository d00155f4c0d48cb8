"""Data layer: the profiling-record schema, importers for public datasets, summaries."""
from .schema import COLUMNS, ENERGY_COLUMNS, load_profiles, validate

__all__ = ["COLUMNS", "ENERGY_COLUMNS", "load_profiles", "validate"]
