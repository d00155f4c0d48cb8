"""EnergyLens: interpretable closed-form energy models for LLM inference serving.

Importing the package is cheap: heavy and optional dependencies load where they are used.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("energylens")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "EnergyLensRegressor", "recommend", "load_model"]


def __getattr__(name):
    # Lazy public API so that `import energylens` stays fast.
    if name == "EnergyLensRegressor":
        from .model.estimator import EnergyLensRegressor

        return EnergyLensRegressor
    if name == "recommend":
        from .recommendation.search import recommend

        return recommend
    if name == "load_model":
        from .model.modelfile import load_model

        return load_model
    raise AttributeError(f"module 'energylens' has no attribute {name!r}")
