"""Work and time of one configuration, from model and hardware descriptors (docs/MODEL.md, "Features").

Everything here is fixed physics with no fitted number: FLOPs and bytes per prefill and per decode
step, the running batch the memory allows, and ideal times of communication and overheads. The
fields of `Features` are the symbols that term expressions read (`energylens.model.terms`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..vocabulary import BYTES_PER_PARAM, SEQUENTIAL_PP_ENGINES

KV_BYTES = 2.0  # KV cache kept in 16-bit by default in vLLM / SGLang, whatever the weight precision
COLLECTIVE_LATENCY_S = 8e-6  # one small NCCL collective inside a node (NVLink class)
STEP_OVERHEAD_S = 1e-3  # scale of the fixed per-step cost (sampling, scheduler, host sync)
LAYER_OVERHEAD_S = 1e-5  # launch/synchronization cost per layer and step, order of magnitude
DISPATCH_S = 1e-6  # scale of the per token-expert-layer MoE dispatch cost
MEMORY_USABLE = 0.95  # vLLM gpu_memory_utilization (0.9 default; benchmarks often raise it)
ACTIVATION_RESERVE_GB = 1.0  # per GPU, for activations and CUDA graphs
PERMUTE_PASSES = 4  # MoE token permutation: write and read the expert-sorted copy, on dispatch and on combine


@dataclass(frozen=True)
class Features:
    """Arrays (one entry per configuration); each field is a symbol of the term expressions."""

    G: np.ndarray  # GPUs per replica (num_gpus / dp)
    dp: np.ndarray
    engines: np.ndarray  # groups of GPUs that step independently
    tp: np.ndarray
    pp: np.ndarray
    ep: np.ndarray
    batch: np.ndarray  # running batch per replica (memory-capped)
    out_tokens: np.ndarray
    in_tokens: np.ndarray
    layers: np.ndarray
    launch_layers: np.ndarray  # layers weighted by kernel launches: a MoE block launches about twice a dense MLP's
    # hardware
    peak_flops: np.ndarray  # FLOP/s
    bw: np.ndarray  # B/s
    link: np.ndarray  # B/s
    tdp: np.ndarray
    idle: np.ndarray
    # work per request (prefill) and per decode step of a replica
    flops_pf_linear: np.ndarray
    flops_pf_attn: np.ndarray
    flops_pf_vision: np.ndarray
    weight_bytes: np.ndarray  # whole model, bytes
    weight_bytes_step: np.ndarray  # bytes of weights one decode step touches (MoE: depends on batch)
    kv_bytes_step: np.ndarray  # KV bytes one decode step reads (whole replica batch)
    flops_dec_step: np.ndarray
    t_allreduce_step: np.ndarray  # TP all-reduce time per decode step and GPU (per micro-batch message)
    t_allreduce_pf: np.ndarray  # TP all-reduce time of one request's prefill, per GPU
    t_alltoall_step: np.ndarray  # EP all-to-all time per decode step and GPU
    t_p2p_step: np.ndarray  # pipeline sends of activations between stages per decode step and GPU
    t_p2p_pf: np.ndarray  # the same for one request's prefill
    moe_dispatch_step: np.ndarray  # experts touched x MoE layers per decode step, x 1 us
    moe_dispatch_pf: np.ndarray  # token-expert-layer dispatches of one request's prompt, x 1 us
    launch_time: np.ndarray  # kernel-launch time scale of one step: launch_layers x 10 us
    moe_time_step: np.ndarray  # MoE dispatch time scale per decode step and GPU: moe_dispatch_step / G
    moe_permute_bytes_step: np.ndarray  # bytes of token permutation to and from experts per decode step
    moe_permute_bytes_pf: np.ndarray  # the same for one request's prompt
    # pipeline schedule: micro-batches in flight and the step's critical path in stage slots
    microbatches: np.ndarray  # 1 for a sequential layer split, else min(running batch, pp)
    pp_slots: np.ndarray  # pp / microbatches: a GPU works 1/pp_slots of a step (1 without pipeline bubbles)
    num_gpus: np.ndarray  # every GPU of the deployment
    waiting: np.ndarray  # replicas with no request per busy replica (batch_size below the replica count)
    kv_fits: np.ndarray  # False when weights leave no room for one request's KV cache

    @property
    def n(self) -> int:
        return len(self.G)


def _text(df: pd.DataFrame, name: str, default: str) -> np.ndarray:
    """Lower-cased strings of a column, mapping each distinct value once (fast on large tables)."""
    if name not in df.columns:
        return np.full(len(df), default, dtype=object)
    codes, uniques = pd.factorize(df[name], use_na_sentinel=True)
    lowered = np.array([str(u).strip().lower() for u in uniques] + [default], dtype=object)
    return lowered[np.where(codes < 0, len(uniques), codes)]


def _col(df: pd.DataFrame, name: str, default: float) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), float(default))
    col = df[name]
    if col.dtype.kind in "fiu":  # already numeric (validated tables): skip the parse
        arr = col.to_numpy(dtype=float)
        return np.where(np.isnan(arr), float(default), arr) if col.dtype.kind == "f" else arr
    return pd.to_numeric(col, errors="coerce").fillna(default).to_numpy(dtype=float)


def _sequential_pp(df: pd.DataFrame) -> np.ndarray:
    """Rows whose pipeline stages run one at a time: pp_schedule 'sequential', or no pp_schedule and an engine
    that splits layers without micro-batching (vocabulary.SEQUENTIAL_PP_ENGINES)."""
    if "pp_schedule" not in df.columns and "engine" not in df.columns:  # the engines' default: micro-batched
        return np.zeros(len(df), dtype=bool)
    schedule = _text(df, "pp_schedule", "")
    engine = _text(df, "engine", "")
    by_engine = np.isin(engine, SEQUENTIAL_PP_ENGINES)
    return np.where(schedule == "", by_engine, schedule == "sequential")


def expert_split(total_b, active_b, experts, active_experts):
    """Shared (always read) and routed-expert parameters, from totals and the routing fan-out."""
    frac = np.where(experts > 0, np.clip(active_experts / np.maximum(experts, 1), 0, 1), 1.0)
    routed = np.where((experts > 0) & (frac < 1), (total_b - active_b) / np.maximum(1 - frac, 1e-9), 0.0)
    routed = np.clip(routed, 0, total_b)
    return total_b - routed, routed, frac


def compute_features(df: pd.DataFrame) -> Features:
    """Compute Features for every row of a validated profiling table (or configuration table)."""
    n = len(df)
    num_gpus = _col(df, "num_gpus", 1)
    dp = np.maximum(_col(df, "dp", 1), 1)
    tp = np.maximum(_col(df, "tp", 1), 1)
    pp = np.maximum(_col(df, "pp", 1), 1)
    ep = np.maximum(_col(df, "ep", 1), 1)
    total_b = _col(df, "params_total_b", 1)
    active_b = np.minimum(_col(df, "params_active_b", 1), total_b)
    layers = np.maximum(_col(df, "layers", 0), 0)
    hidden = _col(df, "hidden_size", 0)
    # Models described by parameter counts only: shapes from params ~ 12 * layers * hidden^2
    # and the usual aspect ratio layers ~ hidden / 128.
    guess_hidden = np.where(layers > 0, np.sqrt(active_b * 1e9 / (12 * np.maximum(layers, 1))),
                            (active_b * 1e9 * 128 / 12) ** (1 / 3))
    hidden = np.where(hidden > 0, hidden, guess_hidden)
    layers = np.where(layers > 0, layers, np.maximum(np.round(active_b * 1e9 / (12 * hidden ** 2)), 1))
    heads = _col(df, "heads", 0)
    head_dim = _col(df, "head_dim", 0)
    head_dim = np.where(head_dim > 0, head_dim, 128.0)
    heads = np.where(heads > 0, heads, hidden / head_dim)
    kv_heads = _col(df, "kv_heads", 0)
    kv_heads = np.where(kv_heads > 0, kv_heads, heads)
    attn_layers = _col(df, "attention_layers", np.nan)
    arch = _text(df, "arch", "dense")
    attn_layers = np.where(np.isnan(attn_layers), np.where(arch == "ssm", 0, layers), attn_layers)
    experts = _col(df, "experts", 0)
    k_active = _col(df, "active_experts", 0)
    vision_b = _col(df, "vision_params_b", 0)
    ssm_mb = _col(df, "ssm_state_mb", 0)
    precision = _text(df, "precision", "bf16")
    codes, kinds = pd.factorize(precision)  # each distinct precision looked up once, not each row
    bpp = np.array([BYTES_PER_PARAM.get(k, 2.0) for k in kinds] + [2.0])[codes]

    peak = _col(df, "gpu_peak_tflops", 989) * 1e12
    bw = _col(df, "gpu_mem_bw_tbs", 3.35) * 1e12
    mem = _col(df, "gpu_mem_gb", 80) * 2**30  # spec-sheet "GB" of HBM are GiB (an "80 GB" H100 holds 85.5e9 bytes)
    tdp = _col(df, "gpu_tdp_w", 700)
    idle = _col(df, "gpu_idle_w", 100)
    link = _col(df, "gpu_link_gbs", 900) * 1e9
    # 8-bit weights and activations run on tensor paths twice the BF16 rate (Hopper, Blackwell);
    # 4-bit formats are dequantized to BF16 on these GPUs, so only their bytes shrink.
    peak = peak * np.array([2.0 if k in ("fp8", "int8") else 1.0 for k in kinds] + [1.0])[codes]

    L_in = np.maximum(_col(df, "input_tokens", 0), 0)
    L_out = np.maximum(_col(df, "output_tokens", 1), 1)
    modality = _text(df, "modality", "text")
    task_codes, task_names = (pd.factorize(df["task"]) if "task" in df.columns else (np.full(n, -1), []))
    visual_tokens = _visual_tokens(modality, task_codes, list(task_names), L_in)
    given = _col(df, "visual_tokens", np.nan)
    visual_tokens = np.where(np.isnan(given), visual_tokens, np.minimum(given, L_in))

    # Weights and KV cache.
    W = total_b * 1e9 * bpp
    # KV bytes per token and attention layer: K and V of each KV head, or the one latent MLA caches.
    kv_dim = _col(df, "kv_cache_dim", 0)
    kv_layer_bytes = np.where(kv_dim > 0, kv_dim, 2 * kv_heads * head_dim) * KV_BYTES
    # Sliding-window (and chunked) layers cache at most `window` tokens; the other attention layers all.
    window = _col(df, "sliding_window", 0)
    windowed = np.where(window > 0, np.clip(_col(df, "sliding_layers", 0), 0, attn_layers), 0.0)

    def cached(c):  # tokens in the KV cache at context c, summed over attention layers
        return (attn_layers - windowed) * c + windowed * np.minimum(c, window)

    def attended(c):  # query-key pairs of a causal prompt of c tokens, summed over attention layers
        m = np.minimum(c, window)  # a windowed layer: sum of min(i, window) over the prompt
        return (attn_layers - windowed) * c ** 2 / 2 + windowed * (m * c - m ** 2 / 2)

    ctx = L_in + L_out / 2  # mean context over a request's decode
    shared_b, routed_b, frac = expert_split(total_b, active_b, experts, k_active)
    # An "engine" is the set of GPUs that step together. Usually a data-parallel replica; with expert
    # parallelism across data-parallel attention ranks (DP attention + EP experts, as in ML.ENERGY v3)
    # the whole pool steps together: experts are stored once, the shared part once per rank.
    spans = (ep > 1) & (dp > 1)
    engines = np.where(spans, 1.0, dp)
    G = np.maximum(num_gpus / engines, 1)
    shared_copies = np.where(spans, dp, 1.0)
    stored = (shared_copies * shared_b + routed_b) * 1e9 * bpp
    # Recurrent models described without their state size: Mamba-2 keeps d_inner x d_state per layer,
    # with d_inner ~ 2 x hidden and d_state 128, in 16-bit (an upper estimate where MLP layers interleave).
    recurrent = (arch == "ssm") | (arch == "hybrid")
    guess_mb = np.maximum(layers - attn_layers, 0) * 2 * hidden * 128 * 2 / 1e6
    ssm_mb = np.where((ssm_mb <= 0) & recurrent, guess_mb, ssm_mb)
    state_per_seq = ssm_mb * 1e6
    free = G * (mem * MEMORY_USABLE - ACTIVATION_RESERVE_GB * 1e9) - stored
    per_seq = kv_layer_bytes * cached(ctx) + state_per_seq
    kv_fits = free > kv_layer_bytes * cached(L_in + L_out) + state_per_seq
    cap = np.where(per_seq > 0, np.maximum(free, 0) / np.maximum(per_seq, 1e-9), np.inf)
    batch_req = np.maximum(_col(df, "batch_size", 1) / engines, 1)
    # Soft minimum of the requested concurrency and what the KV cache can hold.
    p = 8.0
    batch = np.where(np.isfinite(cap), (batch_req ** -p + np.maximum(cap, 1) ** -p) ** (-1 / p), batch_req)
    batch = np.maximum(batch, 1.0)

    touched = np.where(routed_b > 0, 1 - (1 - frac) ** batch, 0.0)
    weight_bytes_step = (shared_copies * shared_b + routed_b * touched) * 1e9 * bpp
    # KV cache read per step, plus recurrent (SSM) state read and written per step for hybrids.
    kv_bytes_step = batch * (kv_layer_bytes * cached(ctx) + 2 * state_per_seq)
    attn_width = heads * head_dim
    flops_dec_step = batch * (2 * active_b * 1e9 + 4 * attn_width * cached(ctx))
    flops_pf_linear = 2 * (active_b - vision_b).clip(min=0.01) * 1e9 * L_in
    flops_pf_attn = 4 * attn_width * attended(L_in)  # 4*d FLOPs per query-key pair (scores and values)
    flops_pf_vision = 2 * vision_b * 1e9 * visual_tokens

    # Pipeline: micro-batches in flight (a sequential layer split runs one; vLLM-style engines run up to pp, no
    # more than the running requests). One step's critical path is pp stage slots of one micro-batch each, so
    # a GPU works microbatches / pp of it; every micro-batch re-reads its stage's weights.
    sequential = _sequential_pp(df)
    microbatches = np.where(sequential | (pp <= 1), 1.0, np.clip(batch, 1.0, pp))
    pp_slots = pp / microbatches
    waiting = np.maximum(engines / np.maximum(_col(df, "batch_size", 1), 1), 1.0) - 1.0

    msg_bytes = hidden * 2.0
    ar_factor = 2 * (tp - 1) / tp
    # Per GPU and step: each stage runs 2 all-reduces per layer of its layers for each micro-batch in flight.
    per_gpu = microbatches / pp
    t_allreduce_step = np.where(tp > 1, per_gpu * 2 * layers * (COLLECTIVE_LATENCY_S + ar_factor * (batch / microbatches)
                                                                * msg_bytes / link), 0.0)
    t_allreduce_pf = np.where(tp > 1, 2 * layers / pp * ar_factor * L_in * msg_bytes / link, 0.0)
    moe_layers = np.where(experts > 0, layers, 0)
    a2a_factor = (ep - 1) / ep
    # An all-to-all exchanges with every other rank of the expert group: one message latency per peer.
    t_alltoall_step = np.where(ep > 1, per_gpu * 2 * moe_layers * (COLLECTIVE_LATENCY_S * (ep - 1) + a2a_factor
                                                                   * (batch / microbatches) * np.maximum(k_active, 1)
                                                                   * msg_bytes / link), 0.0)
    # Pipeline stages hand each micro-batch's activations to the next stage: one send per stage boundary.
    boundaries = (pp - 1) / pp
    t_p2p_step = np.where(pp > 1, per_gpu * pp * boundaries * (COLLECTIVE_LATENCY_S + (batch / microbatches) * msg_bytes
                                                                / link), 0.0)
    t_p2p_pf = np.where(pp > 1, boundaries * L_in * msg_bytes / link, 0.0)
    # Token permutation to and from the experts: each token's hidden vector (16-bit) written to and read from
    # the expert-sorted buffer on the way in and out, per active expert and MoE layer.
    permute = PERMUTE_PASSES * hidden * 2.0 * np.maximum(k_active, 1) * moe_layers

    return Features(G=G, dp=dp, engines=engines, tp=tp, pp=pp, ep=ep, batch=batch, out_tokens=L_out, in_tokens=L_in, layers=layers,
                    launch_layers=layers + moe_layers,
                    peak_flops=peak, bw=bw, link=link, tdp=tdp, idle=idle,
                    flops_pf_linear=flops_pf_linear, flops_pf_attn=flops_pf_attn, flops_pf_vision=flops_pf_vision,
                    weight_bytes=W, weight_bytes_step=weight_bytes_step, kv_bytes_step=kv_bytes_step,
                    flops_dec_step=flops_dec_step, t_allreduce_step=t_allreduce_step, t_allreduce_pf=t_allreduce_pf,
                    t_alltoall_step=t_alltoall_step, moe_dispatch_step=moe_layers * experts * touched * DISPATCH_S,
                    moe_dispatch_pf=L_in * moe_layers * k_active * DISPATCH_S,
                    launch_time=(layers + moe_layers) * LAYER_OVERHEAD_S,
                    moe_time_step=moe_layers * experts * touched * DISPATCH_S / G,
                    t_p2p_step=t_p2p_step, t_p2p_pf=t_p2p_pf,
                    moe_permute_bytes_step=batch * permute, moe_permute_bytes_pf=L_in * permute,
                    microbatches=microbatches, pp_slots=pp_slots, num_gpus=np.maximum(num_gpus, 1.0), waiting=waiting,
                    kv_fits=kv_fits)


def _visual_tokens(modality, task_codes, task_names, L_in):
    """Visual tokens in the prompt: the task catalog's figure when known, else half the prompt."""
    from ..catalog.tasks import task_defaults

    image, video = modality == "image", modality == "video"
    out = np.zeros(len(modality))
    if not (image.any() or video.any()):
        return out
    # Per task (code), the catalog's image and video token counts; NaN when unknown.
    table = np.full((len(task_names) + 1, 2), np.nan)
    for i, t in enumerate(task_names):
        d = task_defaults(str(t)) or {}
        table[i] = [d.get("image_tokens", np.nan), d.get("video_tokens", np.nan)]
    codes = np.where(task_codes < 0, len(task_names), task_codes)
    v = np.where(video, table[codes, 1], table[codes, 0])
    visual = image | video
    out[visual] = np.where(np.isnan(v[visual]), 0.5 * L_in[visual], np.minimum(v[visual], L_in[visual]))
    return out
