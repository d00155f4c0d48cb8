"""The closed-form energy and time models (docs/MODEL.md holds one line per term below).

Energy per request, every term linear in its coefficient (twelve fitted; the static term is physics):

    E = E_prefill + E_decode
      = dP*(th_pf*F_lin/F + th_attn*F_attn/F + th_vis*F_vis/F)                    prefill compute
      + dP*(L_out/b)*(th_w*W_step/BW + th_kv*KV_step/BW + th_fd*F_step/F)         decode
      + dP*G*th_tp*(t_ar_pf + (L_out/b)*t_ar_step)                                TP all-reduce
      + dP*(L_out/b)*th_pp*(pp-1)*W_step/BW                                       PP micro-batch re-reads
      + dP*(L_out/b)*G*th_ep*t_a2a_step                                           EP all-to-all
      + dP*G*th_ovh*(T_ovh_pf/b + (L_out/b)*T_ovh_step)                           kernel-launch overhead
      + dP*G*th_moe*(T_moe_pf/b + (L_out/b)*T_moe_step)                           MoE routing and dispatch
      + dP*G*th_host*(L_out/b)*T_host_step                                        host-side stalls
      + 1*P_idle*G*(T_pf/b + L_out*ITL/b)                                         static (idle) power

with dP = TDP - P_idle, b the running batch per engine, G the GPUs of one engine, and ITL and
T_pf (batch prefill time, TTFT) from the companion time model:

    ITL  = ta_mem*(pp*W_step + KV_step)/(G*BW) + ta_fl*F_step/(G*F) + ta_comm*(t_ar + t_a2a)
           + T_ovh_step + T_host_step + T_moe_step
    TTFT = ta_pf*b*(F_lin+F_attn+F_vis)/(G*F) + ta_mem*W/(G*BW) + ta_comm*b*t_ar_pf + T_ovh_pf + T_moe_pf
    T_ovh_step  = ta_ovh*(layers + moe_layers)*tau0         T_ovh_pf = ta_pfo*(layers + moe_layers)*tau0
    T_host_step = ta_step*1ms + ta_seq*b*tau0
    T_moe_step  = ta_moe*moe_layers*experts_touched*tau1/G  T_moe_pf = ta_moe_pf*b*L_in*moe_layers*k*tau1/G

tau0 = 10 us and tau1 = 1 us set the scale of the overhead coefficients.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..features.physics import LAYER_OVERHEAD_S, STEP_OVERHEAD_S, Features


@dataclass(frozen=True)
class Term:
    name: str  # coefficient name
    group: str  # breakdown group shown by explain / recommend
    unit: str
    prior: float  # physics prior, used when data cannot identify the coefficient
    doc: str
    prior_weight: float = 0.15  # pull toward the prior (log units); larger where physics pins the value
    lower: float = 0.0  # physical lower bound (a time can never beat the peak rate: >= 1)
    fixed: bool = False  # a physical constant, never fitted
    upper: float = float("inf")  # physical upper bound (a GPU cannot draw more than TDP - idle above idle: 1)


# Idle power is drawn whatever the work: the static term is the catalog's (or the measured) idle power
# of every GPU over the request's share of wall time, coefficient 1, not fitted (docs/MODEL.md: holding
# it cost no accuracy and makes the static share match the measured idle / average power, 22% vs 23%
# on ML.ENERGY v3). The twelve fitted energy coefficients are the other terms.
ENERGY_TERMS: tuple[Term, ...] = (
    Term("theta_prefill", "prefill", "J per (J at peak FLOP/s)", 1.6, "prefill linear-layer FLOPs at TDP-idle power"),
    Term("theta_attn", "prefill", "J per (J at peak FLOP/s)", 1.5, "prefill attention FLOPs (quadratic in prompt length)"),
    Term("theta_vision", "prefill", "J per (J at peak FLOP/s)", 1.5, "vision/audio encoder FLOPs on image and video tokens"),
    Term("theta_weights", "decode", "J per (J at peak bandwidth)", 0.7, "decode: weight bytes read per step, amortized over the batch"),
    Term("theta_kv", "decode", "J per (J at peak bandwidth)", 1.0, "decode: KV-cache bytes read per step"),
    Term("theta_decode_flops", "decode", "J per (J at peak FLOP/s)", 1.5, "decode FLOPs per step"),
    Term("theta_tp", "tp_comm", "fraction of TDP-idle", 0.5, "tensor-parallel all-reduce time on all GPUs"),
    Term("theta_pp", "pp_bubble", "J per (J at peak bandwidth)", 0.6, "pipeline micro-batches re-reading stage weights"),
    Term("theta_ep", "ep_comm", "fraction of TDP-idle", 0.5, "expert-parallel all-to-all time on all GPUs"),
    Term("theta_overhead", "decode", "fraction of TDP-idle", 0.2, "dynamic power during launch and scheduling overhead time", upper=1.0),
    Term("theta_moe", "decode", "fraction of TDP-idle", 0.7, "dynamic power during MoE routing and dispatch time", upper=1.0),
    Term("theta_host", "decode", "fraction of TDP-idle", 0.1, "dynamic power while the host schedules and samples (per step, per sequence)", upper=1.0),
    Term("theta_static", "static", "fraction of idle power", 1.0, "idle power of every GPU over the request's share of time", fixed=True),
)
ENERGY_NAMES = tuple(t.name for t in ENERGY_TERMS)
GROUPS = ("prefill", "decode", "tp_comm", "pp_bubble", "ep_comm", "static")

TIME_TERMS: tuple[Term, ...] = (
    Term("tau_memory", "time", "s per s at peak bandwidth", 1.15, "decode memory traffic at achieved bandwidth", 0.5, 1.0),
    Term("tau_flops", "time", "s per s at peak FLOP/s", 1.6, "decode compute at achieved FLOP rate", 0.05, 1.0),
    Term("tau_comm", "time", "s per s of ideal collective", 1.0, "TP/EP collectives"),
    Term("tau_overhead", "time", "s per (layers x 10 us)", 5.0, "per decode step and layer: kernel launches and tails"),
    Term("tau_step", "time", "ms per decode step", 0.5, "per decode step: sampling, scheduling, host synchronization"),
    Term("tau_sequence", "time", "s per (sequence x 10 us)", 1.0, "per decode step and running sequence: host-side scheduling and sampling"),
    Term("tau_moe", "time", "s per (expert touched x layer x 1 us)", 2.5, "decode: MoE dispatch per expert touched and layer"),
    Term("tau_moe_prefill", "time", "s per (token x expert x layer x 1 us)", 0.03, "prefill: MoE routing per token, expert and layer"),
    Term("tau_prefill", "time", "s per s at peak FLOP/s", 1.6, "prefill compute at achieved FLOP rate", 0.05, 1.0),
    Term("tau_prefill_overhead", "time", "s per (layers x 10 us)", 10.0, "per prefill batch launch overhead"),
)
TIME_NAMES = tuple(t.name for t in TIME_TERMS)


def time_columns(f: Features) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """Per time coefficient, its ITL column and its TTFT column (None where it does not enter)."""
    if f.time_columns_cache is None:
        f.time_columns_cache = _time_columns(f)
    return f.time_columns_cache


def _time_columns(f: Features) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    ovh = f.launch_layers * LAYER_OVERHEAD_S
    pf_flops = f.flops_pf_linear + f.flops_pf_attn + f.flops_pf_vision
    return [
        ((f.pp * f.weight_bytes_step + f.kv_bytes_step) / (f.G * f.bw), f.weight_bytes / (f.G * f.bw)),  # memory
        (f.flops_dec_step / (f.G * f.peak_flops), None),  # decode FLOPs
        (f.t_allreduce_step + f.t_alltoall_step, f.batch * f.t_allreduce_pf),  # collectives
        (ovh, None),  # launches per step
        (np.full(f.n, STEP_OVERHEAD_S), None),  # host time per step
        (f.batch * LAYER_OVERHEAD_S, None),  # host time per running sequence
        (f.moe_dispatch_step / f.G, None),  # MoE dispatch, decode
        (None, f.batch * f.moe_dispatch_pf / f.G),  # MoE routing, prefill
        (None, f.batch * pf_flops / (f.G * f.peak_flops)),  # prefill FLOPs
        (None, ovh),  # launches per prefill batch
    ]


def time_matrices(f: Features) -> tuple[np.ndarray, np.ndarray]:
    """Design matrices (n x 10) of the ITL and of the batch prefill time (TTFT) in the time coefficients."""
    cols = time_columns(f)
    zero = np.zeros(f.n)
    itl = np.column_stack([c[0] if c[0] is not None else zero for c in cols])
    ttft = np.column_stack([c[1] if c[1] is not None else zero for c in cols])
    return itl, ttft


# Columns of the time model that are overhead (not work): their time feeds the overhead terms.
OVERHEAD_TIME_COLUMNS = (3, 9)  # device-side launch overheads
HOST_TIME_COLUMNS = (4, 5)  # host-side time per step and per sequence
MOE_TIME_COLUMNS = (6, 7)


def partial_times(f: Features, tau: np.ndarray, cols=None) -> tuple[np.ndarray, np.ndarray]:
    """ITL and batch prefill time made of the given time-model columns (all when None)."""
    columns = time_columns(f)
    itl, ttft = np.zeros(f.n), np.zeros(f.n)
    for j in (range(len(columns)) if cols is None else cols):
        a, b = columns[j]
        if a is not None:
            itl += tau[j] * a
        if b is not None:
            ttft += tau[j] * b
    return itl, ttft


def predict_times(f: Features, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return partial_times(f, tau)


def energy_columns(f: Features, tau: np.ndarray) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """Per energy coefficient, its prefill and decode energy per request at coefficient 1."""
    itl, ttft = predict_times(f, tau)
    ovh_step, ovh_pf = partial_times(f, tau, OVERHEAD_TIME_COLUMNS)
    moe_step, moe_pf = partial_times(f, tau, MOE_TIME_COLUMNS)
    host_step, _ = partial_times(f, tau, HOST_TIME_COLUMNS)
    dP = np.maximum(f.tdp - f.idle, 0.0)
    per_req = f.out_tokens / f.batch  # decode steps' share that belongs to one request
    dPG = dP * f.G
    return [
        (dP * f.flops_pf_linear / f.peak_flops, None),  # theta_prefill
        (dP * f.flops_pf_attn / f.peak_flops, None),  # theta_attn
        (dP * f.flops_pf_vision / f.peak_flops, None),  # theta_vision
        (None, dP * per_req * f.weight_bytes_step / f.bw),  # theta_weights
        (None, dP * per_req * f.kv_bytes_step / f.bw),  # theta_kv
        (None, dP * per_req * f.flops_dec_step / f.peak_flops),  # theta_decode_flops
        (dPG * f.t_allreduce_pf, dPG * per_req * f.t_allreduce_step),  # theta_tp
        (None, dP * per_req * (f.pp - 1) * f.weight_bytes_step / f.bw),  # theta_pp
        (None, dPG * per_req * f.t_alltoall_step),  # theta_ep
        (dPG * ovh_pf / f.batch, dPG * per_req * ovh_step),  # theta_overhead
        (dPG * moe_pf / f.batch, dPG * per_req * moe_step),  # theta_moe
        (None, dPG * per_req * host_step),  # theta_host
        (f.idle * f.G * ttft / f.batch, f.idle * f.G * per_req * itl),  # theta_static
    ]


def energy_matrices(f: Features, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Design matrices (n x 13) of prefill and decode energy per request in the energy coefficients.

    Column j of the sum is term j's energy at coefficient 1; the prediction is matrix @ theta.
    """
    cols = energy_columns(f, tau)
    pf = np.zeros((f.n, len(cols)))
    dec = np.zeros((f.n, len(cols)))
    for j, (a, b) in enumerate(cols):
        if a is not None:
            pf[:, j] = a
        if b is not None:
            dec[:, j] = b
    return pf, dec


def energy_parts(f: Features, tau: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prefill and decode energy per request (the lean path: no matrices)."""
    e_pf, e_dec = np.zeros(f.n), np.zeros(f.n)
    for j, (a, b) in enumerate(energy_columns(f, tau)):
        if a is not None and theta[j]:
            e_pf += theta[j] * a
        if b is not None and theta[j]:
            e_dec += theta[j] * b
    return e_pf, e_dec


def group_matrix() -> np.ndarray:
    """(terms x groups) 0/1 matrix mapping each energy term to its breakdown group."""
    m = np.zeros((len(ENERGY_TERMS), len(GROUPS)))
    for i, t in enumerate(ENERGY_TERMS):
        m[i, GROUPS.index(t.group)] = 1.0
    return m
