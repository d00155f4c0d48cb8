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


def true_coefficients(scale: float = 1.0, seed: int = 0, structure: Structure | None = None) -> np.ndarray:
    """Coefficients near the priors (then correction exponents), perturbed so that recovery is not trivially
    the prior, and kept within each coefficient's bounds."""
    s = structure or physics_structure()
    rng = np.random.default_rng(seed)
    coef = np.array([c.prior for c in s.coefficients]) * np.exp(rng.normal(0, 0.3 * scale, s.n_coefficients))
    coef = np.clip(coef, [c.lower for c in s.coefficients], [c.upper for c in s.coefficients])
    return np.r_[coef, rng.normal(0, 0.2 * scale, len(s.corrections))]


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


def synthetic_profiles(n: int = 200, noise: float = 0.03, seed: int = 0, coef=None, split: bool = True,
                       structure: Structure | None = None) -> pd.DataFrame:
    """Configurations with energies, mean power, TTFT and ITL from a structure (physics by default) and its
    coefficients (drawn near the priors unless given), times lognormal noise."""
    s = structure or physics_structure()
    df = synthetic_configs(n, seed)
    f = compute_features(df)
    s = s.with_correction_range(f)
    coef = true_coefficients(seed=seed, structure=s) if coef is None else np.asarray(coef, float)
    out = s.evaluate(f, coef)
    rng = np.random.default_rng(seed + 1)
    jitter = lambda: np.exp(rng.normal(0, noise, len(df)))
    e_pf, e_dec = out["e_prefill"] * jitter(), out["e_decode"] * jitter()
    if split:
        df["prefill_energy_j"] = e_pf
        df["decode_energy_j"] = e_dec
    df["energy_request_j"] = e_pf + e_dec
    df["energy_token_j"] = df["energy_request_j"] / df["output_tokens"]
    df["avg_power_w"] = out["power_all"] * jitter()
    df["itl_s"] = out["t_step"] * jitter()
    df["ttft_s"] = out["t_prefill"] * jitter()
    df["source"] = "synthetic"
    return df
