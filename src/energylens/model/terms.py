"""The one definition of the closed form: its coefficients, its formula and its corrections.

Energy is the integral of every GPU's power over the time the deployment spends on a request:

    E_request = G * (t_prefill / batch) * (P_prefill + waiting * P_idle)
              + G * (out_tokens * t_step / batch) * (P_decode + waiting * P_idle)

with the times from the time model (batch prefill, decode step: memory, compute, collectives, launch
and host overheads, pipeline slots) and each phase's power per GPU

    P = P_static + (TDP - P_static) * sat(pp_slots * u) / pp_slots,     sat(x) = x / (1 + x^4)^(1/4)

where u is the dynamic demand of the work (FLOPs, HBM bytes, link time, each at its fitted share of the
power range) over the phase's time. sat is a soft minimum of the demand and 1, so every GPU's power
lies between its static power and its TDP, and the static power between idle and TDP: the prediction
is physically possible by construction, whatever the coefficients. GPUs of replicas without a request
(`waiting` per busy replica) draw idle power. A GPU of a sequential pipeline works 1/pp_slots of a step
and waits the rest at static power.

Every symbol is a field of `energylens.features.physics.Features`, a coefficient below, or a
definition above it in `DEFINITIONS`. The definitions are the only source of the formula: prediction,
fitting (values and exact derivatives), the SymPy, LaTeX and NumPy exports, docs/MODEL.md and the
model file's formula are all generated from them (model/formula.py).
"""
from __future__ import annotations

from dataclasses import dataclass

PHYSICS = "physics estimate (order of magnitude from hardware behaviour, set before any fit; not fitted on any dataset)"
# Time coefficients are scales of the time each expression writes out: 1 is that nominal time (10 us per layer
# and step, 1 ms per engine step, ...). Their priors are 1, except the efficiencies of memory and compute:
# streaming kernels reach about 80% of peak bandwidth and large GEMMs about two thirds of peak FLOP/s.
TIME_PRIOR_PROVENANCE = PHYSICS
# The overhead coefficients scale nominal times (10 us per layer launch, 1 ms of host work per engine step, 10 us
# per sequence and step): orders of magnitude, not fitted, but written by a developer who had seen these datasets
# (the evaluation lists them beside every result on those datasets: not independent of them).
OVERHEAD_SEEN_WITH = ("mlenergy-v3", "gpu-prefill-decode")
OVERHEAD_PROVENANCE = ("physics estimate of an order of magnitude (nominal launch, host and per-sequence times), not "
                       "fitted, but set with ML.ENERGY v3 and the project's H100 file in view")
SATURATION_ORDER = 4  # sat(x) = x / (1 + x^4)^(1/4): at a demand equal to the power range, 84% of it is drawn


@dataclass(frozen=True)
class Coefficient:
    """One fitted number of the formula."""

    name: str
    kind: str  # "time" (an efficiency or overhead scale) or "power"
    prior: float
    doc: str
    unit: str = "dimensionless"
    lower: float = 1e-4
    upper: float = 1e4
    prior_weight: float = 0.05  # pull toward the prior (log units per unit residual)
    provenance: str = PHYSICS
    seen_with: tuple[str, ...] = ()  # datasets (evaluation keys) in view when the prior was set, not fitted on
    recalibrate: bool = False  # depends on hardware and serving engine: refit by `fit --from`
    groups: tuple[str, ...] = ()  # breakdown groups whose energy it scales (explain's flags)


@dataclass(frozen=True)
class Definition:
    """One named quantity of the formula: an expression over features, coefficients and earlier definitions."""

    name: str
    expression: str
    unit: str
    doc: str


@dataclass(frozen=True)
class Correction:
    """A power law exp(c * h) in a dimensionless group h (the log of a ratio of features), with a fitted
    exponent c. Target "power" scales the dynamic demand u inside sat (power stays within [static, TDP]);
    target "time" scales the step and prefill times, held at or above the ideal hardware time."""

    name: str
    expression: str
    doc: str
    target: str = "power"
    prior: float = 0.0
    prior_weight: float = 0.05
    provenance: str = "power law in a dimensionless group (exponent fitted)"
    recalibrate: bool = False


TARGETS = ("power", "time")
# Breakdown groups: where the energy goes (static power over each part of the time, plus the dynamic energy of
# the work). "idle" is the GPUs of replicas that have no request.
GROUPS = ("compute", "memory", "tp_comm", "ep_comm", "pp_bubble", "overhead", "idle")
GROUP_LABELS = {"compute": "compute", "memory": "memory", "tp_comm": "TP", "ep_comm": "EP", "pp_bubble": "PP",
                "overhead": "overhead", "idle": "idle GPUs"}

_T = dict(kind="time", provenance=TIME_PRIOR_PROVENANCE)
_OVERHEAD = dict(kind="time", provenance=OVERHEAD_PROVENANCE, seen_with=OVERHEAD_SEEN_WITH)
PHYSICS_COEFFICIENTS: tuple[Coefficient, ...] = (
    Coefficient("tau_mem", prior=1.25, lower=1.0, upper=50.0, prior_weight=0.5, recalibrate=True,
                groups=("memory", "pp_bubble"),
                doc="HBM traffic time over its ideal at peak bandwidth (weights, KV cache, MoE permutations)", **_T),
    Coefficient("tau_compute", prior=1.5, lower=1.0, upper=100.0, recalibrate=True, groups=("compute", "pp_bubble"),
                doc="compute time over its ideal at peak FLOP/s (prefill and decode)", **_T),
    Coefficient("tau_comm", prior=1.0, lower=0.05, upper=1000.0, groups=("tp_comm", "ep_comm", "pp_bubble"),
                doc="TP all-reduce and EP all-to-all time over its ideal (8 us latency + bytes at link bandwidth)", **_T),
    Coefficient("tau_launch", prior=1.0, lower=1e-3, upper=1000.0, recalibrate=True, groups=("overhead",),
                doc="kernel launch, synchronization and MoE dispatch per layer and decode step (10 us per layer, a MoE "
                    "block counting twice, and 1 us per expert touched)", **_OVERHEAD),
    Coefficient("tau_launch_prefill", prior=1.0, lower=1e-3, upper=1000.0, recalibrate=True, groups=("overhead",),
                doc="launch and synchronization per layer of a batch prefill (10 us scale; engines run prefill "
                    "without CUDA graphs)", **_OVERHEAD),
    Coefficient("tau_host", prior=1.0, lower=1e-3, upper=1000.0, recalibrate=True, groups=("overhead",),
                doc="host work per engine step: scheduling, sampling, synchronization (1 ms scale)", **_OVERHEAD),
    Coefficient("tau_seq", prior=1.0, lower=1e-3, upper=1000.0, recalibrate=True, groups=("overhead",),
                doc="host work per running sequence and step (10 us scale)", **_OVERHEAD),
    Coefficient("s_static", kind="power", prior=0.1, lower=1e-3, upper=1.0, prior_weight=0.1, recalibrate=True,
                groups=GROUPS[:-1],
                doc="static power of a stepping GPU: idle + s_static x (TDP - idle) (clocks up, nothing to do: "
                    "close to idle)"),
    Coefficient("a_flop", kind="power", prior=1.2, lower=1e-3, upper=20.0, recalibrate=True, groups=("compute",),
                doc="dynamic power of tensor-core work at peak FLOP/s, as a share of TDP - static (above 1: "
                    "a GPU at peak compute would exceed its power limit and throttles)"),
    Coefficient("a_mem", kind="power", prior=0.6, lower=1e-3, upper=20.0, recalibrate=True,
                groups=("memory", "pp_bubble"),
                doc="dynamic power of HBM traffic at peak bandwidth, as a share of TDP - static"),
    Coefficient("a_comm", kind="power", prior=0.3, lower=1e-3, upper=20.0, groups=("tp_comm", "ep_comm"),
                doc="dynamic power during collectives (NVLink traffic and the kernels that wait on it), as a "
                    "share of TDP - static"),
    Coefficient("a_launch", kind="power", prior=0.2, lower=1e-3, upper=20.0, recalibrate=True, groups=("overhead",),
                doc="dynamic power during launch and synchronization gaps (small kernels keep the SMs partly busy), "
                    "as a share of TDP - static; host time draws static power only"),
)

# The physics formula. `corr_time` and `corr_power` are the structure's corrections (1 without any).
_SAT = f"(1 + ({{x}})**{SATURATION_ORDER})**(-{1 / SATURATION_ORDER!r})"


def _sat_times_x(x: str) -> str:
    """x * (1 + x^k)^(-1/k): the soft minimum of x and 1 (as text of the grammar)."""
    return f"({x})*" + _SAT.format(x=x)


# Power per GPU of a phase whose dynamic demand is {u} (one place: the decode and prefill powers below, and the
# power of any step a traffic simulation records, read it).
POWER_LAW = "p_static + (tdp - p_static)*" + _sat_times_x("pp_slots*{u}") + "/pp_slots"


_WORK = (
    Definition("w_mem_dec", "(microbatches*weight_bytes_step + kv_bytes_step + moe_permute_bytes_step)/(G*bw)", "s",
               "HBM time of one decode step per GPU at peak bandwidth (each micro-batch re-reads its stage's weights)"),
    Definition("w_flop_dec", "flops_dec_step/(G*peak_flops)", "s", "compute time of one decode step per GPU at peak"),
    Definition("w_comm_dec", "t_allreduce_step + t_alltoall_step + t_p2p_step", "s",
               "collectives and pipeline sends of one decode step per GPU"),
    Definition("w_mem_pf", "(microbatches*weight_bytes + batch*moe_permute_bytes_pf)/(G*bw)", "s",
               "HBM time of one batch prefill per GPU at peak bandwidth"),
    Definition("w_flop_pf", "batch*(flops_pf_linear + flops_pf_attn + flops_pf_vision)/(G*peak_flops)", "s",
               "compute time of one batch prefill per GPU at peak"),
    Definition("w_comm_pf", "batch*(t_allreduce_pf + t_p2p_pf)", "s",
               "collectives and pipeline sends of one batch prefill per GPU"),
)
_POWER = (
    Definition("p_static", "idle + s_static*(tdp - idle)", "W", "power of a GPU that steps with nothing to do"),
    Definition("u_dec", "corr_power*(a_flop*w_flop_dec + a_mem*w_mem_dec + a_comm*w_comm_dec + "
               "a_launch*t_launch_dec)/t_step", "",
               "dynamic power demand of a decode step per GPU, as a share of TDP - static"),
    Definition("p_decode", POWER_LAW.format(u="u_dec"), "W",
               "mean power of a GPU during decode (within [static, TDP])"),
    Definition("u_pf", "corr_power*(a_flop*w_flop_pf + a_mem*w_mem_pf + a_comm*w_comm_pf + "
               "a_launch*t_launch_pf)/t_prefill", "",
               "dynamic power demand of a batch prefill per GPU, as a share of TDP - static"),
    Definition("p_prefill", POWER_LAW.format(u="u_pf"), "W",
               "mean power of a GPU during prefill (within [static, TDP])"),
)
_ENERGY = (
    Definition("e_prefill", "G*t_prefill/batch*(p_prefill + waiting*idle)", "J",
               "prefill energy per request: every GPU of the replica over the request's share of the batch "
               "prefill, and the idle replicas' GPUs"),
    Definition("e_decode", "G*out_tokens*t_step/batch*(p_decode + waiting*idle)", "J",
               "decode energy per request: every GPU of the replica over the request's share of the decode "
               "steps, and the idle replicas' GPUs"),
)
PHYSICS_TIME = (
    Definition("t_launch_dec", "tau_launch*(launch_time + pp_slots*moe_time_step)", "s",
               "launch, synchronization and MoE dispatch gaps of one decode step"),
    Definition("t_step", "corr_time*(pp_slots*(tau_mem*w_mem_dec + tau_compute*w_flop_dec + tau_comm*w_comm_dec) "
               "+ t_launch_dec + tau_host*0.001 + tau_seq*batch*0.00001)", "s",
               "one decode step of the running batch (its critical path: pp_slots stage slots of memory, compute "
               "and collectives, plus launch and host overheads)"),
    Definition("t_launch_pf", "tau_launch_prefill*launch_time", "s", "launch and synchronization gaps of one batch "
               "prefill"),
    Definition("t_prefill", "corr_time*(pp_slots*(tau_mem*w_mem_pf + tau_compute*w_flop_pf + tau_comm*w_comm_pf) "
               "+ t_launch_pf)", "s", "prefill of the batch's prompts together"),
)

# Few coefficients with the same physics: what about 50 rows of one engine identify. The overhead terms are
# merged at their nominal scales (10 us per layer and step or prefill, 1 ms per step, 10 us per sequence, 1 us
# per expert touched and layer).
COMPACT_COEFFICIENTS: tuple[Coefficient, ...] = (
    *PHYSICS_COEFFICIENTS[:3],
    Coefficient("tau_overhead", prior=1.0, lower=1e-3, upper=1000.0, recalibrate=True, groups=("overhead",),
                doc="launch, host and MoE dispatch overheads together, at their nominal scales' mix", **_OVERHEAD),
    *PHYSICS_COEFFICIENTS[7:12],
)
COMPACT_TIME = (
    Definition("t_launch_dec", "tau_overhead*(launch_time + pp_slots*moe_time_step)", "s", PHYSICS_TIME[0].doc),
    Definition("t_step", "corr_time*(pp_slots*(tau_mem*w_mem_dec + tau_compute*w_flop_dec + tau_comm*w_comm_dec) "
               "+ t_launch_dec + tau_overhead*(0.001 + 0.00001*batch))", "s", PHYSICS_TIME[1].doc),
    Definition("t_launch_pf", "tau_overhead*launch_time", "s", PHYSICS_TIME[2].doc),
    Definition("t_prefill", "corr_time*(pp_slots*(tau_mem*w_mem_pf + tau_compute*w_flop_pf + tau_comm*w_comm_pf) "
               "+ t_launch_pf)", "s", PHYSICS_TIME[3].doc),
)
# Time corrections may not take a time below what the hardware allows: the floor of each phase.
TIME_FLOORS = {"t_step": "pp_slots*max(w_mem_dec, w_flop_dec)", "t_prefill": "pp_slots*max(w_mem_pf, w_flop_pf)"}


def definitions(time: tuple[Definition, ...]) -> tuple[Definition, ...]:
    """The whole formula of a structure whose times are `time` (every structure shares work, power, energy)."""
    return (*_WORK, *time, *_POWER, *_ENERGY)


# Dimensionless groups a structure may correct for (power laws). A fitted structure holds each group within
# its training range and centres it there (model/structure.py), so the reference values inside (64
# sequences, 1024 and 256 tokens) only keep the text readable; they are round numbers, not fitted.
CORRECTIONS: tuple[Correction, ...] = (
    Correction("c_batch", "log(batch/64)", "running batch per engine"),
    Correction("c_gpus", "log(G)", "GPUs per engine"),
    Correction("c_prompt", "log(max(in_tokens, 1)/1024)", "prompt length"),
    Correction("c_output", "log(out_tokens/256)", "output length"),
    Correction("c_intensity", "log((flops_dec_step/peak_flops)/((weight_bytes_step + kv_bytes_step)/bw))",
               "compute time over memory time of a decode step (the roofline balance)"),
    Correction("c_idle", "log(idle/tdp)", "idle power over TDP"),
    Correction("c_batch_time", "log(batch/64)", "running batch per engine (on the times)", target="time"),
    Correction("c_overhead_time", "log(G*launch_time/((weight_bytes_step + kv_bytes_step)/bw))",
               "launch time over memory time of a decode step (on the times)", target="time"),
    Correction("c_prompt_time", "log(max(in_tokens, 1)/1024)", "prompt length (on the times)", target="time"),
)
