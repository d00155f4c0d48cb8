"""The optional parts of EnergyLens: which extra of pyproject.toml brings which modules, and the one-line
error a command gives when one is missing (exit code 2, never a traceback). The core commands (recommend,
catalog, data, fit, predict, explain, show, plan) need none of them."""
from __future__ import annotations

import importlib.util

from .errors import EnergyLensError

# extra -> the modules a command checks for before it starts (the distributions' import names).
EXTRAS = {
    "discovery": ("pyoperon",),
    "baselines": ("xgboost",),
    "plot": ("matplotlib",),
    "fast": ("numba",),
    "gpu": ("pynvml",),
    "endpoint": ("httpx",),
    "profile": ("torch", "transformers"),
    "cluster": ("ray",),
    "web": ("fastapi", "uvicorn", "multipart"),
}


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require(what: str, *extras: str) -> None:
    """Raise one line naming the extras `what` needs when any of their modules is missing."""
    lacking = [e for e in extras if missing(e)]
    if lacking:
        modules = [m for e in lacking for m in missing(e)]
        raise EnergyLensError(f"{what} needs {', '.join(modules)}, not installed: pip install "
                              f"'energylens[{','.join(lacking)}]'")
