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

from ..model.selection import correction_matrix
from ..model.structure import CORRECTION_LIBRARY


def group_matrix(f) -> tuple[np.ndarray, list[str]]:
    """(n x groups) log dimensionless groups of every row, and the correction names in column order."""
    return correction_matrix(f), list(CORRECTION_LIBRARY)
