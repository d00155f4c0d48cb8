"""Hardware-normalized features for symbolic regression, and the target it explains.

The target is measured energy per output token divided by the roofline energy per output token
(`e_roof`: every FLOP at peak rate and every byte at peak bandwidth, at TDP power). Symbolic regression
then looks for what multiplies the roofline: how the ratio grows with overheads, idle power,
communication and pipeline stages. Each feature is dimensionless.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..features.physics import LAYER_OVERHEAD_S, compute_features

FEATURE_DOCS = {
    "w_share": "weight-streaming share of the roofline energy",
    "kv_share": "KV-cache-read share of the roofline energy",
    "pf_share": "prefill-compute share of the roofline energy",
    "idle_ratio": "idle power of all GPUs over the ideal step, relative to the roofline energy",
    "ovh_ratio": "per-layer launch overhead time at idle power, relative to the roofline energy",
    "ar_ratio": "TP all-reduce time on all GPUs at TDP, relative to the roofline energy",
    "a2a_ratio": "EP all-to-all time on all GPUs at TDP, relative to the roofline energy",
    "tp": "tensor-parallel degree",
    "pp": "pipeline-parallel degree",
    "ep": "expert-parallel degree",
    "inv_batch": "1 / running batch",
    "idle_frac": "idle power / TDP",
}


def discovery_features(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(features, target ratio, roofline energy per token) for a validated profiling table."""
    f = compute_features(df)
    per_tok = 1.0 / f.batch
    e_w = f.tdp * f.weight_bytes_step / f.bw * per_tok
    e_kv = f.tdp * f.kv_bytes_step / f.bw * per_tok
    e_fd = f.tdp * f.flops_dec_step / f.peak_flops * per_tok
    e_pf = f.tdp * (f.flops_pf_linear + f.flops_pf_attn + f.flops_pf_vision) / f.peak_flops / f.out_tokens
    e_roof = e_w + e_kv + e_fd + e_pf
    t_ideal = (f.weight_bytes_step + f.kv_bytes_step) / (f.G * f.bw) + f.flops_dec_step / (f.G * f.peak_flops)
    X = pd.DataFrame({
        "w_share": e_w / e_roof,
        "kv_share": e_kv / e_roof,
        "pf_share": e_pf / e_roof,
        "idle_ratio": f.idle * f.G * t_ideal * per_tok / e_roof,
        "ovh_ratio": f.idle * f.G * f.layers * LAYER_OVERHEAD_S * per_tok / e_roof,
        "ar_ratio": f.tdp * f.G * f.t_allreduce_step * per_tok / e_roof,
        "a2a_ratio": f.tdp * f.G * f.t_alltoall_step * per_tok / e_roof,
        "tp": f.tp, "pp": f.pp, "ep": f.ep,
        "inv_batch": per_tok,
        "idle_frac": f.idle / f.tdp,
    }, index=df.index)
    if "energy_token_j" in df and df["energy_token_j"].notna().any():
        e_tok = df["energy_token_j"].to_numpy(float)
    else:
        e_tok = df["energy_request_j"].to_numpy(float) / f.out_tokens
    return X, e_tok / e_roof, e_roof
