"""The table of terms: the one source of every formula EnergyLens fits.

Each record is one term: its name, breakdown group, unit, prior with its provenance, bounds, and
its expression over the symbols of `energylens.features.physics.Features` (the field names). The
design matrices, the SymPy/LaTeX/NumPy exports, the formula written into model files, the groups
of `explain` and `recommend`, and the formula block of docs/MODEL.md are all generated from here.

Energy per request of a structure:

    E = (sum_j theta_j * X_j) * exp(sum_k c_k * h_k)

where X_j is term j's energy at coefficient 1 (its prefill part plus its decode part) and h_k a
correction: the logarithm of a dimensionless group. The theta_j are non-negative; with no
correction (c = 0) this is the physics form. Every energy term is priced at TDP, so a coefficient
reads as (achieved time / ideal time) x (average power / TDP): idle power is inside every term.

Adding a term is one record here (plus a field of `Features` if its physics is new).
"""
from __future__ import annotations

from dataclasses import dataclass

PHYSICS = "physics estimate (order of magnitude from hardware behaviour, not fitted on any dataset)"
# The time model's priors predate the term table and were set while ML.ENERGY v3 and the H100 file
# were in view: recorded as such. They shape TTFT and ITL only; no energy prediction uses them.
TIME_PRIOR_PROVENANCE = ("development estimate set with ML.ENERGY v3 and gpu-prefill-decode in view "
                         "(not independent of them); TTFT and ITL only")


@dataclass(frozen=True)
class EnergyTerm:
    name: str  # coefficient name
    group: str  # breakdown group shown by explain / recommend
    prefill: str | None  # prefill energy per request at coefficient 1 (expression, J)
    decode: str | None  # decode energy per request at coefficient 1 (expression, J)
    prior: float
    doc: str
    unit: str = "J per J at TDP over the ideal time"
    lower: float = 0.0
    upper: float = float("inf")
    prior_weight: float = 0.15  # pull toward the prior (log units per unit residual)
    provenance: str = PHYSICS
    recalibrate: bool = False  # depends on hardware and serving engine: refit by `fit --from`


@dataclass(frozen=True)
class Correction:
    """A multiplicative correction exp(c * expression); the expression is a log of a dimensionless group."""

    name: str
    expression: str
    doc: str
    prior: float = 0.0  # exponent prior: no correction
    prior_weight: float = 0.05
    provenance: str = "power law in a dimensionless group (exponent fitted)"
    recalibrate: bool = False  # an exponent is structure: 5 new rows cannot pin it (refitting one cost accuracy)


@dataclass(frozen=True)
class TimeTerm:
    name: str
    itl: str | None  # seconds per decode step at coefficient 1
    ttft: str | None  # seconds of one batch's prefill at coefficient 1
    prior: float
    doc: str
    unit: str = "s per s of the ideal time"
    lower: float = 0.0
    prior_weight: float = 1.0  # launch, host and memory times trade off: physics separates them
    provenance: str = TIME_PRIOR_PROVENANCE
    recalibrate: bool = True


# The step shares of one request: a decode step serves `batch` requests.
_STEPS = "(out_tokens/batch)"

PHYSICS_TERMS: tuple[EnergyTerm, ...] = (
    EnergyTerm("theta_prefill", "prefill", "tdp*(flops_pf_linear + flops_pf_vision)/peak_flops", None, 1.5,
               "prefill linear-layer and vision-encoder FLOPs (about 60% of peak at 90% of TDP)", recalibrate=True),
    EnergyTerm("theta_attn", "prefill", "tdp*flops_pf_attn/peak_flops", None, 1.5,
               "prefill attention FLOPs, quadratic in the prompt length"),
    EnergyTerm("theta_weights", "decode", "tdp*weight_bytes/(bw*batch)", f"tdp*{_STEPS}*weight_bytes_step/bw", 0.75,
               "weight bytes read once per prefill batch and once per decode step, shared by the batch "
               "(80% of peak bandwidth at 60% of TDP)",
               recalibrate=True),
    EnergyTerm("theta_kv", "decode", None, f"tdp*{_STEPS}*kv_bytes_step/bw", 0.75,
               "decode: KV-cache (and recurrent-state) bytes read per step"),
    EnergyTerm("theta_decode_flops", "decode", None, f"tdp*{_STEPS}*flops_dec_step/peak_flops", 1.5,
               "decode FLOPs per step"),
    EnergyTerm("theta_tp", "tp_comm", "tdp*G*t_allreduce_pf", f"tdp*G*{_STEPS}*t_allreduce_step", 0.5,
               "tensor-parallel all-reduces (two per layer) on every GPU of the engine"),
    EnergyTerm("theta_pp", "pp_bubble", None, f"tdp*{_STEPS}*(pp - 1)*weight_bytes_step/bw", 0.75,
               "pipeline micro-batches re-reading each stage's weights"),
    EnergyTerm("theta_ep", "ep_comm", None, f"tdp*G*{_STEPS}*t_alltoall_step", 0.5,
               "expert-parallel all-to-alls (two per MoE layer) on every GPU of the engine"),
    EnergyTerm("theta_launch", "overhead", "tdp*G*launch_time/batch", f"tdp*G*{_STEPS}*launch_time", 2.0,
               "kernel launches per layer and step (10 us scale; a MoE block counts twice)", recalibrate=True),
    EnergyTerm("theta_host_step", "overhead", None, f"tdp*G*{_STEPS}*0.001", 0.3,
               "host work per decode step: scheduling, sampling, synchronization (1 ms scale)", recalibrate=True),
    EnergyTerm("theta_host_sequence", "overhead", None, "tdp*G*out_tokens*0.00001", 0.5,
               "host work per running sequence and step (10 us scale)", recalibrate=True),
    # No prefill part: a 20 ns-per-token-expert-layer prefill part was tried and kept only after it was seen to
    # help on gpu-prefill-decode, a test set; a constant chosen that way may not be in force there, so it was removed.
    EnergyTerm("theta_moe", "overhead", None, f"tdp*G*{_STEPS}*moe_time_step", 1.5,
               "MoE routing and dispatch per expert touched and layer (1 us scale)"),
)

# Few terms with the same physics: what n = 50 rows of one engine can identify. The merged terms keep
# the physics priors' ratios inside them (the weights 2, 0.0005 and 1e-5 are those priors' time scales).
COMPACT_TERMS: tuple[EnergyTerm, ...] = (
    EnergyTerm("theta_prefill", "prefill",
               "tdp*(flops_pf_linear + flops_pf_attn + flops_pf_vision)/peak_flops", None, 1.5,
               "prefill FLOPs (linear layers, attention, vision encoder)", recalibrate=True),
    EnergyTerm("theta_memory", "decode", "tdp*weight_bytes/(bw*batch)",
               f"tdp*{_STEPS}*(pp*weight_bytes_step + kv_bytes_step)/bw", 0.75,
               "weights read once per prefill batch; weight and KV-cache bytes read per decode step (pipeline "
               "stages re-read weights)", recalibrate=True),
    EnergyTerm("theta_decode_flops", "decode", None, f"tdp*{_STEPS}*flops_dec_step/peak_flops", 1.5,
               "decode FLOPs per step"),
    EnergyTerm("theta_comm", "comm", "tdp*G*t_allreduce_pf",
               f"tdp*G*{_STEPS}*(t_allreduce_step + t_alltoall_step)", 0.5,
               "tensor- and expert-parallel collectives on every GPU of the engine"),
    EnergyTerm("theta_overhead", "overhead", None,
               f"tdp*G*{_STEPS}*(2*launch_time + 0.0005 + 0.00001*batch + moe_time_step)", 1.0,
               "launch, host and MoE-dispatch time per decode step", recalibrate=True),
)

# Dimensionless groups a structure may correct for (power laws). Reference values (64 sequences,
# 1024 and 256 tokens) only set where the correction is 1; they are round numbers, not fitted.
CORRECTIONS: tuple[Correction, ...] = (
    Correction("c_batch", "log(batch/64)", "running batch per engine"),
    Correction("c_gpus", "log(G)", "GPUs per engine"),
    Correction("c_prompt", "log(max(in_tokens, 1)/1024)", "prompt length"),
    Correction("c_output", "log(out_tokens/256)", "output length"),
    Correction("c_intensity", "log((flops_dec_step/peak_flops)/((weight_bytes_step + kv_bytes_step)/bw))",
               "compute time over memory time of a decode step (the roofline balance)"),
    Correction("c_idle", "log(idle/tdp)", "idle power over TDP"),
    Correction("c_overhead", "log(G*launch_time/((weight_bytes_step + kv_bytes_step)/bw))",
               "launch time over memory time of a decode step"),
    Correction("c_prefill", "log(((flops_pf_linear + flops_pf_attn + flops_pf_vision)/peak_flops + 1e-9)/"
               f"({_STEPS}*(weight_bytes_step + kv_bytes_step)/bw))",
               "ideal prefill time over ideal decode time of a request"),
)

# The companion time model (TTFT and ITL). Energy never depends on it: its coefficients are reported
# with "used_by_energy": false. Memory, FLOP and prefill coefficients are bounded below by 1 (nothing
# beats the peak rate).
TIME_TERMS: tuple[TimeTerm, ...] = (
    TimeTerm("tau_memory", "(pp*weight_bytes_step + kv_bytes_step)/(G*bw)", "weight_bytes/(G*bw)", 1.15,
             "memory traffic at achieved bandwidth", lower=1.0, prior_weight=0.5),
    TimeTerm("tau_flops", "flops_dec_step/(G*peak_flops)", None, 1.6, "decode compute at achieved FLOP rate",
             lower=1.0, prior_weight=0.05),
    TimeTerm("tau_comm", "t_allreduce_step + t_alltoall_step", "batch*t_allreduce_pf", 1.0, "TP/EP collectives"),
    TimeTerm("tau_overhead", "launch_time", None, 5.0, "kernel launches per decode step (layers x 10 us)"),
    TimeTerm("tau_step", "0.001", None, 0.5, "host time per decode step (ms)"),
    TimeTerm("tau_sequence", "batch*0.00001", None, 1.0, "host time per running sequence and step (10 us)"),
    TimeTerm("tau_moe", "moe_time_step", None, 2.5, "MoE dispatch per expert touched and layer (1 us)"),
    TimeTerm("tau_moe_prefill", None, "batch*moe_dispatch_pf/G", 0.03, "MoE routing per prompt token, expert and layer (1 us)"),
    TimeTerm("tau_prefill", None, "batch*(flops_pf_linear + flops_pf_attn + flops_pf_vision)/(G*peak_flops)", 1.6,
             "prefill compute at achieved FLOP rate", lower=1.0, prior_weight=0.05),
    TimeTerm("tau_prefill_overhead", None, "launch_time", 10.0, "launch overhead of one batch prefill (layers x 10 us)"),
)

GROUPS = ("prefill", "decode", "tp_comm", "pp_bubble", "ep_comm", "comm", "overhead")
GROUP_LABELS = {"prefill": "prefill", "decode": "decode", "tp_comm": "TP", "pp_bubble": "PP", "ep_comm": "EP", "comm": "TP+EP",
                "overhead": "overhead"}
