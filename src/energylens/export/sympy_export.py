"""The fitted closed form as a SymPy expression over named feature symbols."""
from __future__ import annotations

import sympy as sp

# One symbol per feature of a term (see energylens.model.closed_form.energy_matrices).
TERM_FEATURES = {
    "theta_prefill": "dP*F_lin/F",
    "theta_attn": "dP*F_attn/F",
    "theta_vision": "dP*F_vis/F",
    "theta_weights": "dP*(L_out/b)*W_step/BW",
    "theta_kv": "dP*(L_out/b)*KV_step/BW",
    "theta_decode_flops": "dP*(L_out/b)*F_step/F",
    "theta_tp": "dP*G*(t_ar_pf + (L_out/b)*t_ar)",
    "theta_pp": "dP*(L_out/b)*(pp - 1)*W_step/BW",
    "theta_ep": "dP*G*(L_out/b)*t_a2a",
    "theta_overhead": "dP*G*(T_ovh_pf/b + (L_out/b)*T_ovh)",
    "theta_moe": "dP*G*(T_moe_pf/b + (L_out/b)*T_moe)",
    "theta_host": "dP*G*(L_out/b)*T_host",
    "theta_static": "P_idle*G*(T_pf/b + L_out*ITL/b)",  # coefficient 1: physics, not fitted
}


def energy_expression(model=None, digits: int = 3) -> sp.Expr:
    """E_request as a SymPy expression; with a fitted model, its coefficients substituted."""
    from ..model.closed_form import ENERGY_NAMES

    expr = 0
    for i, name in enumerate(ENERGY_NAMES):
        coef = sp.Float(float(model.coef_[i]), digits) if model is not None else sp.Symbol(name)
        expr += coef * sp.sympify(TERM_FEATURES[name])
    return expr
