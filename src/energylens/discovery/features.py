"""What symbolic regression searches over: the logarithms of raw system quantities, and the residual of the
fitted base structure it is asked to explain.

The target is log(measured energy / the base structure's fitted prediction): what the formula misses. The
inputs are the logs of quantities a deployment is described by (tokens, batch, degrees of parallelism,
layers, heads, bytes, FLOPs, hardware figures: SYSTEM_QUANTITIES, each an expression of the feature
symbols), so any polynomial the search finds is a product of power laws in those quantities. Its monomials
become candidate corrections (centred on the training range, so a raw quantity acts as its ratio to the
range's middle) and additive time terms; each candidate is refitted with the same joint fit and compared
by cross-validation.
"""
from __future__ import annotations

import numpy as np

from ..model.expression import parse
from ..model.structure import FEATURES

# name: expression over the feature symbols (positive for every row).
SYSTEM_QUANTITIES = {
    "prompt_tokens": "max(in_tokens, 1)",
    "output_tokens": "out_tokens",
    "batch": "batch",
    "gpus": "G",
    "tp": "tp",
    "pp": "pp",
    "ep": "ep",
    "layers": "layers",
    "weight_bytes": "weight_bytes",
    "kv_bytes_step": "max(kv_bytes_step, 1)",
    "decode_flops": "flops_dec_step",
    "prefill_flops": "max(flops_pf_linear + flops_pf_attn + flops_pf_vision, 1)",
    "peak_flops": "peak_flops",
    "bandwidth": "bw",
    "tdp": "tdp",
    "idle_power": "max(idle, 1)",
    "link": "link",
}


def quantity_matrix(f) -> tuple[np.ndarray, list[str]]:
    """(n x quantities) log of every system quantity for the rows of `f`, and their names."""
    values = {name: getattr(f, name) for name in FEATURES}
    cols = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, text in SYSTEM_QUANTITIES.items():
            v = np.broadcast_to(np.asarray(parse(text, FEATURES, name).evaluate(values), float), (f.n,))
            cols.append(np.log(v))
    return np.column_stack(cols), list(SYSTEM_QUANTITIES)
