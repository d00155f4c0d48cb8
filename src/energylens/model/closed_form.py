"""The closed-form energy and time models (docs/MODEL.md holds one line per term below).

Energy per request, every term linear in its coefficient:

    E = E_prefill + E_decode
      = dP*[th_pf*F_lin/F + th_attn*F_attn/F + th_vis*F_vis/F]                    prefill compute
      + dP*(L_out/b)*[th_w*W_step/BW + th_kv*KV_step/BW + th_fd*F_step/F]         decode
      + dP*G*th_tp*(t_ar_pf + (L_out/b)*t_ar_step)                                TP all-reduce
      + dP*(L_out/b)*th_pp*(pp-1)*W_step/BW                                       PP micro-batch re-reads
      + dP*(L_out/b)*G*th_ep*t_a2a_step                                           EP all-to-all
      + dP*(L_out/b)*G*th_ovh*layers*tau0                                         per-step launch overhead
      + th_s*P_idle*G*(T_pf/b + L_out*ITL/b)                                      static (idle) power

with dP = TDP - P_idle, b the running batch per replica, G the GPUs of one replica, and ITL and
T_pf (batch prefill time) from the companion time model:

    ITL  = ta_mem*(pp*W_step + KV_step)/(G*BW) + ta_fl*F_step/(G*F) + ta_comm*(t_ar + t_a2a) + ta_ovh*layers*tau0
    TTFT = ta_pf*b*(F_lin+F_attn+F_vis)/(G*F) + ta_mem*W/(G*BW) + ta_comm*b*t_ar_pf + ta_ovh*layers*tau0
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..features.physics import LAYER_OVERHEAD_S, Features


@dataclass(frozen=True)
class Term:
    name: str  # coefficient name
    group: str  # breakdown group shown by explain / recommend
    unit: str
    prior: float  # physics prior, used when data cannot identify the coefficient
    doc: str


ENERGY_TERMS: tuple[Term, ...] = (
    Term("theta_prefill", "prefill", "J per (J at peak FLOP/s)", 1.0, "prefill linear-layer FLOPs at TDP-idle power"),
    Term("theta_attn", "prefill", "J per (J at peak FLOP/s)", 1.5, "prefill attention FLOPs (quadratic in prompt length)"),
    Term("theta_vision", "prefill", "J per (J at peak FLOP/s)", 1.5, "vision/audio encoder FLOPs on image and video tokens"),
    Term("theta_weights", "decode", "J per (J at peak bandwidth)", 0.6, "decode: weight bytes read per step, amortized over the batch"),
    Term("theta_kv", "decode", "J per (J at peak bandwidth)", 0.6, "decode: KV-cache bytes read per step"),
    Term("theta_decode_flops", "decode", "J per (J at peak FLOP/s)", 1.0, "decode FLOPs per step"),
    Term("theta_tp", "tp_comm", "fraction of TDP-idle", 0.5, "tensor-parallel all-reduce time on all GPUs"),
    Term("theta_pp", "pp_bubble", "J per (J at peak bandwidth)", 0.6, "pipeline micro-batches re-reading stage weights"),
    Term("theta_ep", "ep_comm", "fraction of TDP-idle", 0.5, "expert-parallel all-to-all time on all GPUs"),
    Term("theta_overhead", "decode", "fraction of TDP-idle", 0.3, "per-step kernel-launch and synchronization overhead"),
    Term("theta_static", "static", "fraction of idle power", 1.0, "idle power of every GPU over the request's share of time"),
)
ENERGY_NAMES = tuple(t.name for t in ENERGY_TERMS)
GROUPS = ("prefill", "decode", "tp_comm", "pp_bubble", "ep_comm", "static")

TIME_TERMS: tuple[Term, ...] = (
    Term("tau_memory", "time", "s per s at peak bandwidth", 1.3, "decode memory traffic at achieved bandwidth"),
    Term("tau_flops", "time", "s per s at peak FLOP/s", 1.6, "decode compute at achieved FLOP rate"),
    Term("tau_comm", "time", "s per s of ideal collective", 1.0, "TP/EP collectives"),
    Term("tau_overhead", "time", "s per (layers x 10 us)", 1.0, "per-step launch/scheduling overhead"),
    Term("tau_prefill", "time", "s per s at peak FLOP/s", 1.6, "prefill compute at achieved FLOP rate"),
)
TIME_NAMES = tuple(t.name for t in TIME_TERMS)


def time_matrices(f: Features) -> tuple[np.ndarray, np.ndarray]:
    """Design matrices (n x 5) of the ITL and of the batch prefill time (TTFT) in the time coefficients."""
    ovh = f.layers * LAYER_OVERHEAD_S
    itl = np.column_stack([
        (f.pp * f.weight_bytes_step + f.kv_bytes_step) / (f.G * f.bw),
        f.flops_dec_step / (f.G * f.peak_flops),
        f.t_allreduce_step + f.t_alltoall_step,
        ovh,
        np.zeros(f.n),
    ])
    pf_flops = f.flops_pf_linear + f.flops_pf_attn + f.flops_pf_vision
    ttft = np.column_stack([
        f.weight_bytes / (f.G * f.bw),
        np.zeros(f.n),
        f.batch * f.t_allreduce_pf,
        ovh,
        f.batch * pf_flops / (f.G * f.peak_flops),
    ])
    return itl, ttft


def predict_times(f: Features, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    itl_X, ttft_X = time_matrices(f)
    return itl_X @ tau, ttft_X @ tau


def energy_matrices(f: Features, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Design matrices (n x 11) of prefill and decode energy per request in the energy coefficients.

    Column j of the sum is term j's energy at coefficient 1; the prediction is matrix @ theta.
    """
    itl, ttft = predict_times(f, tau)
    dP = np.maximum(f.tdp - f.idle, 0.0)
    per_req = f.out_tokens / f.batch  # decode steps' share that belongs to one request
    n = f.n
    pf = np.zeros((n, len(ENERGY_TERMS)))
    dec = np.zeros((n, len(ENERGY_TERMS)))
    pf[:, 0] = dP * f.flops_pf_linear / f.peak_flops
    pf[:, 1] = dP * f.flops_pf_attn / f.peak_flops
    pf[:, 2] = dP * f.flops_pf_vision / f.peak_flops
    dec[:, 3] = dP * per_req * f.weight_bytes_step / f.bw
    dec[:, 4] = dP * per_req * f.kv_bytes_step / f.bw
    dec[:, 5] = dP * per_req * f.flops_dec_step / f.peak_flops
    pf[:, 6] = dP * f.G * f.t_allreduce_pf
    dec[:, 6] = dP * f.G * per_req * f.t_allreduce_step
    dec[:, 7] = dP * per_req * (f.pp - 1) * f.weight_bytes_step / f.bw
    dec[:, 8] = dP * f.G * per_req * f.t_alltoall_step
    dec[:, 9] = dP * f.G * per_req * f.layers * LAYER_OVERHEAD_S
    pf[:, 10] = f.idle * f.G * ttft / f.batch
    dec[:, 10] = f.idle * f.G * per_req * itl
    return pf, dec


def group_matrix() -> np.ndarray:
    """(11 x groups) 0/1 matrix mapping each energy term to its breakdown group."""
    m = np.zeros((len(ENERGY_TERMS), len(GROUPS)))
    for i, t in enumerate(ENERGY_TERMS):
        m[i, GROUPS.index(t.group)] = 1.0
    return m
