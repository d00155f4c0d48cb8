"""Profiling planner: which configurations to measure so that the fitted model learns the most.

Greedy D-optimal design over the closed form's sensitivities: each candidate contributes the
Jacobian of log prefill energy, log decode energy, log TTFT and log ITL with respect to the log
coefficients (evaluated at the shipped model's values, time and power coefficients together); the
planner repeatedly adds the candidate that most increases log det of the information matrix.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InfeasibleError
from ..features.physics import compute_features
from ..model.default import default_model
from ..model.fitting import predicted
from ..recommendation.search import enumerate_candidates


def sensitivity_blocks(df: pd.DataFrame, model, with_split: bool = True, with_time: bool = True) -> np.ndarray:
    """(n, k, p) Jacobians of k log-outputs per configuration (prefill and decode energy, or energy per
    request; TTFT and ITL) with respect to the p log-coefficients (correction exponents as they are), from
    the formula's exact derivatives at the model's values."""
    f = compute_features(df)
    s = model.structure_
    coef = np.asarray(model.coef_, dtype=float)
    pred = predicted(s.evaluate(f, coef, gradient_of=s.names), f.out_tokens)
    scale = np.where(np.arange(len(coef)) < s.n_coefficients, coef, 1.0)

    def jac(q):
        v, g = pred[q]
        return g * scale / np.maximum(v, 1e-300)[:, None]

    rows = [jac("prefill"), jac("decode")] if with_split else [jac("energy")]
    if with_time:
        rows += [jac("ttft"), jac("itl")]
    return np.stack(rows, axis=1)


def greedy_d_optimal(blocks: np.ndarray, budget: int, ridge: float = 1e-3) -> tuple[list[int], list[float]]:
    """Indices of `budget` candidates chosen greedily for log det; and each pick's gain."""
    n, k, p = blocks.shape
    M_inv = np.eye(p) / ridge
    chosen, gains = [], []
    available = np.ones(n, bool)
    eye_k = np.eye(k)
    for _ in range(min(budget, n)):
        # gain_i = log det(I_k + G_i M^-1 G_i^T)
        GM = np.einsum("nkp,pq->nkq", blocks, M_inv)
        S = np.einsum("nkq,njq->nkj", GM, blocks) + eye_k
        sign, logdet = np.linalg.slogdet(S)
        logdet = np.where(available & (sign > 0), logdet, -np.inf)
        i = int(np.argmax(logdet))
        if not np.isfinite(logdet[i]):
            break
        G = blocks[i]
        # Woodbury: (M + G^T G)^-1 = M^-1 - M^-1 G^T (I + G M^-1 G^T)^-1 G M^-1
        MGt = M_inv @ G.T
        M_inv = M_inv - MGt @ np.linalg.solve(eye_k + G @ MGt, MGt.T)
        chosen.append(i)
        gains.append(float(logdet[i]))
        available[i] = False
    return chosen, gains


def plan_sweep(model_name: str, gpus, max_gpus: int, budget: int, input_tokens=(128, 512, 2048),
               output_tokens=(64, 256), batches=None, base_model=None, model_config=None) -> pd.DataFrame:
    """The `budget` most informative feasible configurations to profile (a sweep file)."""
    model = base_model or default_model()
    frames = []
    for lin in input_tokens:
        for lout in output_tokens:
            c = enumerate_candidates(model_name, gpus, max_gpus, lin, lout, batches, model_config)
            frames.append(c[c["reason"] == ""])
    cand = pd.concat(frames, ignore_index=True)
    if cand.empty:
        raise InfeasibleError(f"no feasible configuration of {model_name} on {', '.join(gpus)} with at most {max_gpus} GPUs")
    idx, gains = greedy_d_optimal(sensitivity_blocks(cand, model), budget)
    out = cand.iloc[idx][["model", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size", "input_tokens",
                          "output_tokens"]].reset_index(drop=True)
    out["input_tokens"] = out["input_tokens"].astype(int)
    out["output_tokens"] = out["output_tokens"].astype(int)
    out["information_gain"] = gains
    out.attrs["candidates"] = len(cand)
    return out
