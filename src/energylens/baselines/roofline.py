"""Analytical roofline baseline in the style of GenZ / LLM-Viewer, with one fitted scale factor.

Time of each phase = max(FLOPs / peak FLOP/s, bytes / peak bandwidth) per GPU; power = idle plus
(TDP - idle) x the phase's utilization of its bound resource; energy = power x time x GPUs. The only
fitted number is a global multiplicative scale (median of measured / predicted in log space).
"""
from __future__ import annotations

import numpy as np

from ..features.physics import compute_features
from .raw_features import energy_target


def roofline_energy(df) -> np.ndarray:
    f = compute_features(df)
    # Decode: one step serves `batch` tokens of a replica.
    t_mem = (f.pp * f.weight_bytes_step + f.kv_bytes_step) / (f.G * f.bw)
    t_cmp = f.flops_dec_step / (f.G * f.peak_flops)
    t_step = np.maximum(t_mem, t_cmp) + f.t_allreduce_step + f.t_alltoall_step
    util = np.maximum(t_mem, t_cmp) / t_step
    p_dec = f.idle + (f.tdp - f.idle) * util
    e_dec = p_dec * f.G * t_step * f.out_tokens / f.batch
    # Prefill: compute bound, at TDP.
    flops_pf = f.flops_pf_linear + f.flops_pf_attn + f.flops_pf_vision
    t_pf = np.maximum(flops_pf / (f.G * f.peak_flops), f.weight_bytes / (f.G * f.bw) / f.batch)
    e_pf = f.tdp * f.G * t_pf
    return e_pf + e_dec


class RooflineModel:
    name = "roofline"
    label = "Analytical roofline (1 scale factor)"

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, df):
        y = energy_target(df)
        pred = roofline_energy(df)
        ok = np.isfinite(y) & (y > 0)
        self.scale_ = float(np.exp(np.median(np.log(y[ok] / pred[ok])))) if ok.any() else 1.0
        return self

    def predict(self, df) -> np.ndarray:
        return self.scale_ * roofline_energy(df)
