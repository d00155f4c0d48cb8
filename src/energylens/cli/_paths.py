"""Output paths checked before a command does any work: one line naming the option, exit code 2.

A command calls `check_output` at the top of its body for every file (or folder) it will write, so
a typo in `-o` fails in a second instead of after a long fit, and never overwrites an input.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import EnergyLensError
from ..io import clip, output_problem

# Environment variables naming catalog files every command reads (catalog/hardware.py, catalog/models.py).
CATALOG_ENV = ("ENERGYLENS_HARDWARE_CATALOG", "ENERGYLENS_MODEL_CATALOG")


def same_file(a, b) -> bool:
    """Whether `a` and `b` name one file: samefile where both exist (symbolic and hard links included),
    else equal resolved paths while `b` exists (a missing input is no data to lose)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
        return Path(a).resolve() == Path(b).resolve() and os.path.lexists(b)
    except (OSError, RuntimeError, ValueError):
        return False


def check_output(path, *, inputs=(), outputs=(), option: str = "-o", folder: bool = False) -> None:
    """Refuse `path` as the output of `option` unless it can be written without harm.

    Refused: a folder (or, with `folder`, a file), a device, a path under a regular file, a missing
    folder (never created), a place where files cannot be created (read-only, /proc, /sys), any
    of `inputs` (the command's existing input files, and the catalog files the environment names), which would be
    overwritten, an existing file inside an input folder (a dataset's raw file), and any of `outputs` (the
    command's other outputs, which need not exist yet). `path` None (option not given) passes.
    """
    if path is None:
        return
    problem = output_problem(path, folder=folder)
    if problem:
        raise EnergyLensError(f"{option} {clip(path, 200)}: {problem}")
    # Every command reads the catalog files the environment names: they are inputs of every command.
    env_inputs = [os.environ.get(k) for k in CATALOG_ENV]
    for inp in [*inputs, *env_inputs]:
        if inp is None or not str(inp):
            continue
        if same_file(path, inp):
            raise EnergyLensError(f"{option} {clip(path, 200)} is also an input ({clip(inp, 200)}); writing it would "
                                  "overwrite that input: choose another output name")
        if not folder and _inside(path, inp):
            raise EnergyLensError(f"{option} {clip(path, 200)} is a file of the input folder {clip(inp, 200)}; "
                                  "writing it would overwrite that input: choose another output name")
    for other in outputs:
        if other is not None and str(other) and (same_file(path, other) or _resolved(path) == _resolved(other)):
            raise EnergyLensError(f"{option} {clip(path, 200)} is also the path of another output ({clip(other, 200)}); "
                                  "one would overwrite the other: choose two names")


def _inside(path, folder) -> bool:
    """Whether `path` is an existing file under the existing folder `folder` (a dataset's raw file)."""
    try:
        if not (os.path.isdir(folder) and os.path.exists(path)):
            return False
        return Path(os.path.realpath(folder)) in Path(os.path.realpath(path)).parents
    except (OSError, ValueError):
        return False


def _resolved(p):
    try:
        return Path(p).resolve()
    except (OSError, RuntimeError, ValueError):
        return p
