"""Rows generated from the closed form with known coefficients (labelled source='synthetic').

For tests of the fitting machinery (parameter recovery) and of monotonicity; never reported as real data.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.schema import validate
from ..features.physics import compute_features
from ..model.structure import Structure, physics_structure

MODELS = ("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B", "mistralai/Mixtral-8x7B-Instruct-v0.1",
          "Qwen/Qwen3-30B-A3B-Instruct-2507", "meta-llama/Llama-3.2-1B", "Qwen/Qwen3-VL-8B-Instruct")
GPUS = ("H100", "A100 80GB", "B200", "H200")


def true_coefficients(scale: float = 1.0, seed: int = 0, structure: Structure | None = None):
    """Coefficients near the priors (terms, then correction exponents), perturbed so that recovery is
    not trivially the prior."""
    s = structure or physics_structure()
    rng = np.random.default_rng(seed)
    theta = np.array([t.prior for t in s.energy_terms]) * np.exp(rng.normal(0, 0.3 * scale, s.n_terms))
    exps = rng.normal(0, 0.2 * scale, len(s.corrections))
    tau = np.array([max(t.prior, t.lower) for t in s.time_terms]) * np.exp(np.abs(rng.normal(0, 0.2 * scale, len(s.time_terms))))
    return np.r_[theta, exps], tau


def synthetic_configs(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < n:
        model = MODELS[rng.integers(len(MODELS))]
        gpu = GPUS[rng.integers(len(GPUS))]
        tp = int(rng.choice([1, 2, 4, 8]))
        pp = int(rng.choice([1, 1, 2]))
        ep = 1
        if "Mixtral" in model or "A3B" in model:
            ep = int(rng.choice([1, tp])) if tp > 1 else 1
        modality = "image" if "VL" in model else "text"
        rows.append({"model": model, "gpu": gpu, "num_gpus": tp * pp, "tp": tp, "pp": pp, "ep": ep,
                     "batch_size": int(rng.choice([1, 4, 16, 64, 256])),
                     "input_tokens": float(rng.choice([128, 512, 2048])),
                     "output_tokens": float(rng.choice([64, 256, 1024])),
                     "modality": modality, "task": "image-chat" if modality == "image" else "synthetic"})
    return validate(pd.DataFrame(rows), require_energy=False)


def synthetic_profiles(n: int = 200, noise: float = 0.03, seed: int = 0, theta=None, tau=None,
                       split: bool = True, structure: Structure | None = None) -> pd.DataFrame:
    """Configurations with energies, TTFT and ITL from a structure (physics by default) times lognormal noise."""
    s = structure or physics_structure()
    if theta is None or tau is None:
        t0, u0 = true_coefficients(seed=seed, structure=s)
        theta = t0 if theta is None else theta
        tau = u0 if tau is None else tau
    theta, tau = np.asarray(theta, float), np.asarray(tau, float)
    df = synthetic_configs(n, seed)
    f = compute_features(df)
    pf, dec, Z = s.energy_design(f)
    itl_X, ttft_X = s.time_design(f)
    itl, ttft = itl_X @ tau, ttft_X @ tau
    scale = np.exp(Z @ theta[s.n_terms:])
    rng = np.random.default_rng(seed + 1)
    jitter = lambda: np.exp(rng.normal(0, noise, len(df)))
    e_pf, e_dec = pf @ theta[:s.n_terms] * scale * jitter(), dec @ theta[:s.n_terms] * scale * jitter()
    if split:
        df["prefill_energy_j"] = e_pf
        df["decode_energy_j"] = e_dec
    df["energy_request_j"] = e_pf + e_dec
    df["energy_token_j"] = df["energy_request_j"] / df["output_tokens"]
    df["itl_s"] = itl * jitter()
    df["ttft_s"] = ttft * jitter()
    df["source"] = "synthetic"
    return df
