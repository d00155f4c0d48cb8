"""The deployment space: GPU type and count, TP x PP x EP x DP factorizations valid for a model."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..catalog.hardware import HARDWARE_COLUMNS, GpuSpec
from ..catalog.models import ModelSpec

# GPUs that share one NVLink / Infinity Fabric domain in the servers of the catalog's accelerators
# (HGX/DGX H100, H200, B200, A100 and MI300X platforms hold 8). Tensor parallelism all-reduces every
# layer over `link_gbs`, an intra-node figure: a TP group wider than a node would run its all-reduces
# over the network, which the features do not price, so such layouts are not offered; pipeline, data
# and expert parallelism span nodes.
NODE_GPUS = 8
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _divisors(n: int) -> list[int]:
    """The divisors of n in increasing order, found in O(sqrt(n)) steps."""
    small, large = [], []
    d = 1
    while d * d <= n:
        if n % d == 0:
            small.append(d)
            if d != n // d:
                large.append(n // d)
        d += 1
    return small + large[::-1]


def default_gpu_counts(max_gpus: int, model: ModelSpec | None = None) -> list[int]:
    """The GPU counts considered, up to max_gpus: every tp x pp x 2^k (a model-parallel group the layout rules
    accept, replicated a power-of-two number of times), and max_gpus and its halvings.

    With a model, tp runs over the valid tensor-parallel widths (at most NODE_GPUS) and pp over the divisors of
    its layer count (126 layers: pp 3, 7, 9, ... make 24, 56, 72 GPUs); without one, over powers of two.
    A fixed set cut at max_gpus, plus max_gpus / 2^j, so the counts at budget B are among those at 2B: a larger
    budget never loses a deployment that a smaller one finds. A few dozen counts even at thousands of GPUs."""
    if model is None:
        tps, pps = [1], [1]
    else:
        tps = [tp for tp in _divisors(NODE_GPUS) if tp_valid(model, tp)]
        pps = _divisors(int(model.layers)) if model.layers else [1]
    counts = set()
    for group in {tp * pp for tp in tps for pp in pps}:
        n = group
        while n <= max_gpus:
            counts.add(n)
            n *= 2
    n = max_gpus
    while n >= 1:
        counts.add(n)
        if n % 2:
            break
        n //= 2
    return sorted(counts)


def tp_valid(model: ModelSpec, tp: int) -> bool:
    """Heads split evenly; KV heads split evenly or are replicated (tp a multiple of kv_heads). An MLA
    latent (kv_cache_dim given) is one cache that every TP rank holds whole, so only the heads must split."""
    if model.heads and model.heads % tp:
        return False
    if model.kv_cache_dim:
        return True
    if model.kv_heads and model.kv_heads % tp and tp % model.kv_heads:
        return False
    return True


def parallel_layouts(model: ModelSpec, num_gpus: int) -> list[tuple[int, int, int, int, str]]:
    """(tp, pp, ep, dp, reason) for every factorization of num_gpus; reason is '' when valid."""
    out = []
    for tp in _divisors(num_gpus):
        for pp in _divisors(num_gpus // tp):
            dp = num_gpus // (tp * pp)
            reason = ""
            if tp > NODE_GPUS:
                reason = (f"topology: tp={tp} spans {-(-tp // NODE_GPUS)} nodes of {NODE_GPUS} GPUs; tensor parallelism "
                          "across nodes is not modelled (pipeline or data parallelism spans nodes)")
            elif not tp_valid(model, tp):
                reason = f"divisibility: {model.heads} heads / {model.kv_heads} KV heads not divisible by tp={tp}"
            elif model.layers and model.layers % pp:
                reason = f"divisibility: {model.layers} layers not divisible by pp={pp}"
            eps = [1]
            if model.experts and tp * dp > 1:
                ep = tp * dp  # experts spread over a stage's GPUs (vLLM --enable-expert-parallel)
                if model.experts % ep == 0:
                    eps.append(ep)
            for ep in eps:
                out.append((tp, pp, ep, dp, reason))
    return out


def candidate_table(model: ModelSpec, gpus: list[GpuSpec], max_gpus: int, batches, input_tokens: float,
                    output_tokens: float, gpu_counts=None, visual_tokens: float = 0.0) -> pd.DataFrame:
    """Every candidate deployment as rows of the profiling schema (descriptors filled), with a
    `reason` column that is empty for structurally valid ones."""
    counts = list(gpu_counts) if gpu_counts else default_gpu_counts(max_gpus, model)
    # Layouts depend on the GPU count only: found once per count, then crossed with GPU types and
    # batches by array indexing (GPU-major, then count, layout, batch), never row by row.
    layouts = [(n, tp, pp, ep, dp, reason) for n in counts for tp, pp, ep, dp, reason in parallel_layouts(model, n)]
    grid = np.array([lay[:5] for lay in layouts], dtype=np.int64).reshape(-1, 5)
    n_lay, n_b = len(layouts), len(batches)
    gpu_index = np.repeat(np.arange(len(gpus)), n_lay * n_b)
    lay = np.tile(np.repeat(np.arange(n_lay), n_b), len(gpus))
    # Text columns as categoricals: a handful of distinct values over up to millions of rows (building and
    # factorizing a million strings costs more than the rest of the table).
    columns = {"gpu": pd.Categorical.from_codes(gpu_index, [g.name for g in gpus])}
    for k, name in enumerate(("num_gpus", "tp", "pp", "ep", "dp")):
        columns[name] = grid[lay, k]
    columns["batch_size"] = np.tile(np.asarray(list(batches), dtype=np.int64), len(gpus) * n_lay)
    reasons, reason_code = np.unique(np.array([layout[5] for layout in layouts], dtype=object), return_inverse=True)
    columns["reason"] = pd.Categorical.from_codes(reason_code[lay], reasons)
    df = pd.DataFrame(columns)
    n = len(df)

    def constant(text: str):
        return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [text])

    df.insert(0, "model", constant(model.name))
    df["input_tokens"] = float(input_tokens)
    df["output_tokens"] = float(output_tokens)
    # The workload decides the modality: image/video tokens among the prompt run the vision encoder.
    df["visual_tokens"] = float(min(visual_tokens, input_tokens))
    df["modality"] = constant("image" if visual_tokens > 0 else "text")
    df["precision"] = constant(model.precision)
    df["arch"] = constant(model.arch)
    for col in ("params_total_b", "params_active_b", "layers", "hidden_size", "heads", "kv_heads",
                "head_dim", "experts", "active_experts", "vision_params_b", "ssm_state_mb", "kv_cache_dim",
                "sliding_window", "sliding_layers"):
        df[col] = getattr(model, col)
    df["attention_layers"] = np.nan if model.attention_layers is None else model.attention_layers
    for col, field in HARDWARE_COLUMNS.items():
        df[col] = np.array([float(getattr(g, field)) for g in gpus])[gpu_index]
    return df
