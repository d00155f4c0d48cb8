"""What symbolic regression searches over: the logs of the term table's dimensionless groups, and the
residual of the physics form it is asked to explain.

The target is log(measured energy / the base structure's fitted prediction): what the physics form
misses. The inputs are the correction library of `energylens.model.terms` (running batch, GPUs,
prompt and output length, roofline balance, idle fraction, launch-over-memory time, prefill-over-decode
time), each the logarithm of a dimensionless group, so any polynomial the search finds is a product of
power laws in those groups: it becomes corrections of the structure, each exponent refitted.
"""
from __future__ import annotations

import numpy as np

from ..model.structure import CORRECTION_LIBRARY


def group_matrix(f) -> tuple[np.ndarray, list[str]]:
    """(n x groups) log dimensionless groups of every row, and the correction names in column order."""
    names = list(CORRECTION_LIBRARY)
    from ..model.structure import compact_structure

    s = compact_structure().with_corrections(CORRECTION_LIBRARY.values())
    _, _, Z = s.energy_design(f)
    return Z, names
