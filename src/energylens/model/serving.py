"""Latency as a served request sees it: continuous batching with chunked prefill.

The time model (terms.TIME_TERMS) predicts what profilers measure: the prefill time of one batch of
requests arriving together, and the time of one decode step of the running batch. A serving engine
(vLLM, SGLang) runs neither alone: it keeps `batch` requests in flight, and every engine step decodes one
token for each running request and adds up to the step's token budget of waiting prompt tokens
(chunked prefill). In a closed loop at `batch` concurrent requests, a request finishes every few steps
and a new one takes its place, so:

- prefill work per step: B / (s + L_out) requests start per step (s = steps to the first token), each
  bringing its share T_pf(B) / B of the batch's prefill time; a request's decode steps carry the prompts of
  the B - 1 others, so they last t_step = t_decode + (B - 1) / B x T_pf(B) / (s + L_out);
- steps to the first token: the prompt is cut into chunks of the budget left beside the decodes,
  C' = C - B, so s = ceil(L_in / C') (at least one step: the first token comes out of one); when prompts
  arrive faster than C' per step (B L_in / (s + L_out) > C')
  the prefill queue sets the pace: s = B L_in / C' - L_out; plus half a step, on average, before the
  scheduler's next step picks the request up;
- TTFT = the wait for a scheduling point and, when prefill sets the pace, for the queue ahead (in steps of
  t_step), plus the steps that carry the request's own chunks (each a decode of the other running requests
  and its share of the interleaved prefill), plus its own prefill T_pf(B) / B; at batch 1 this is the
  request's prefill time and half a step;
- TPOT (mean time per output token after the first) = t_step; end-to-end = TTFT + (L_out - 1) TPOT.

The token budget C is the engine's `max_num_batched_tokens`: vLLM's OpenAI server defaults to 8192 on GPUs
with at least 70 GB that are not A100s and to 2048 otherwise (vllm/engine/arg_utils.py,
EngineArgs.get_batch_defaults); vLLM requires it to be above `max_num_seqs`, and we assume an operator
who raises the concurrency to the budget or past it raises the budget to twice the running batch.
None of these constants was fitted or chosen by looking at a dataset.
"""
from __future__ import annotations

import numpy as np

LARGE_GPU_BUDGET = 8192  # vLLM OpenAI-server default on >= 70 GB GPUs other than A100
SMALL_GPU_BUDGET = 2048  # vLLM OpenAI-server default elsewhere
LARGE_GPU_GB = 70.0
SCHEDULING_WAIT_STEPS = 0.5  # a request arrives, on average, half a step before the next scheduling point

DEFINITION = ("TTFT and ITL under continuous batching with chunked prefill at the listed batch (concurrent "
              "requests): TTFT = wait for the prompt's chunks to be scheduled + its prefill; ITL = mean time per output "
              "token (TPOT), a decode step plus the prefill chunks interleaved with it")


def default_token_budget(gpu_names, gpu_mem_gb) -> np.ndarray:
    """The engine's tokens per step (vLLM's `max_num_batched_tokens` default) for each row's GPU."""
    import pandas as pd  # factorize: each distinct name is read once, not each row

    names = gpu_names if isinstance(gpu_names, pd.Series) else np.asarray(gpu_names, dtype=object)
    codes, distinct = pd.factorize(names, use_na_sentinel=False)
    lowered = np.char.lower(np.array([str(x) for x in distinct], dtype=str))
    a100 = (np.char.find(lowered, "a100") >= 0)[codes]
    # MI250 and Max 1550 modules hold two devices of half the module's memory; vLLM sees each device.
    two_dies = ((np.char.find(lowered, "mi250") >= 0) | (np.char.find(lowered, "max-1550") >= 0)
                | (np.char.find(lowered, "max 1550") >= 0))[codes]
    mem = np.asarray(gpu_mem_gb, dtype=float) / np.where(two_dies, 2.0, 1.0)
    return np.where((mem >= LARGE_GPU_GB) & ~a100, LARGE_GPU_BUDGET, SMALL_GPU_BUDGET).astype(float)


def continuous_batching(batch_prefill_s, decode_step_s, batch, input_tokens, output_tokens,
                        token_budget) -> dict[str, np.ndarray]:
    """Serving TTFT, TPOT and end-to-end latency (s) per row, and whether the prefill queue sets the pace.

    `batch_prefill_s`: time to prefill `batch` prompts together; `decode_step_s`: one decode step of the
    running batch; `batch`: concurrent requests per replica; `token_budget`: tokens per engine step.
    """
    t_pf = np.asarray(batch_prefill_s, dtype=float)
    t_dec = np.asarray(decode_step_s, dtype=float)
    b = np.maximum(np.asarray(batch, dtype=float), 1.0)
    l_in = np.maximum(np.asarray(input_tokens, dtype=float), 0.0)
    l_out = np.maximum(np.asarray(output_tokens, dtype=float), 1.0)
    budget = np.asarray(token_budget, dtype=float)
    budget = np.where(budget <= b, 2.0 * b, budget)  # vLLM needs the budget above the concurrency
    room = budget - b  # prompt tokens a step takes beside one decode token per running request
    chunks = np.maximum(np.ceil(l_in / room), 1.0)  # the first token comes out of a step, even with no prompt
    queued = b * l_in / room - l_out
    steps = np.maximum(chunks, queued) + SCHEDULING_WAIT_STEPS
    # Prefill per step, of the other running requests' prompts (a request's own prefill is not in the steps
    # that decode it; at batch 1 there is no other request).
    others = (b - 1.0) / b * t_pf / (steps + l_out)
    step = t_dec + others
    # The steps that carry the request's own chunks also decode the other running requests (none at batch 1)
    # and other prompts' chunks; its own prefill is its share of the batch's.
    riding = np.where(b > 1, t_dec, 0.0) + others
    waiting = SCHEDULING_WAIT_STEPS + np.maximum(queued - chunks, 0.0)
    ttft = waiting * step + chunks * riding + t_pf / b
    return {"ttft_s": ttft, "tpot_s": step, "latency_s": ttft + (l_out - 1.0) * step,
            "prefill_bound": queued > chunks}


def serving_latency(df, f, batch_prefill_s, decode_step_s, token_budget=None) -> dict[str, np.ndarray]:
    """`continuous_batching` for rows of the profiling schema (`df`) with their features `f`; the token
    budget is the engine default of each row's GPU unless given (a number or one per row)."""
    if token_budget is None:
        names = df["gpu"] if "gpu" in df else np.full(len(df), "")
        mem = df["gpu_mem_gb"].to_numpy(float) if "gpu_mem_gb" in df else np.full(len(df), np.nan)
        token_budget = default_token_budget(names, mem)
    return continuous_batching(batch_prefill_s, decode_step_s, f.batch, f.in_tokens, f.out_tokens, token_budget)
