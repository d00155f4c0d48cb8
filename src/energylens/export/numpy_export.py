"""The fitted closed form as a NumPy callable (SymPy lambdify of the rendered expression).

`symbol_values(model, table)` computes every symbol of the expression for a table of configurations,
so that `numpy_function(model)(**symbol_values(model, table))` reproduces `model.predict(table)`.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from .sympy_export import energy_expression


def numpy_function(model):
    """A function of the expression's symbols (keyword arrays) returning energy per request."""
    expr = energy_expression(model, digits=17)
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    fn = sp.lambdify(symbols, expr, modules="numpy")

    def energy(**values):
        return fn(*(values[s.name] for s in symbols))

    energy.symbols = [s.name for s in symbols]
    return energy


def symbol_values(model, table) -> dict[str, np.ndarray]:
    """Values of the expression's symbols for each configuration (shared coefficients' time model)."""
    from ..features.physics import compute_features
    from ..model.closed_form import HOST_TIME_COLUMNS, MOE_TIME_COLUMNS, OVERHEAD_TIME_COLUMNS, partial_times
    from ..model.predictor import prepare

    f = compute_features(prepare(table))
    tau = model.tau_
    itl, ttft = partial_times(f, tau)
    ovh, ovh_pf = partial_times(f, tau, OVERHEAD_TIME_COLUMNS)
    moe, moe_pf = partial_times(f, tau, MOE_TIME_COLUMNS)
    host, _ = partial_times(f, tau, HOST_TIME_COLUMNS)
    return {"dP": np.maximum(f.tdp - f.idle, 0.0), "P_idle": f.idle, "G": f.G, "b": f.batch, "L_out": f.out_tokens,
            "pp": f.pp, "F": f.peak_flops, "BW": f.bw, "F_lin": f.flops_pf_linear, "F_attn": f.flops_pf_attn,
            "F_vis": f.flops_pf_vision, "W_step": f.weight_bytes_step, "KV_step": f.kv_bytes_step,
            "F_step": f.flops_dec_step, "t_ar_pf": f.t_allreduce_pf, "t_ar": f.t_allreduce_step,
            "t_a2a": f.t_alltoall_step, "T_ovh_pf": ovh_pf, "T_ovh": ovh, "T_moe_pf": moe_pf, "T_moe": moe,
            "T_host": host, "T_pf": ttft, "ITL": itl}
