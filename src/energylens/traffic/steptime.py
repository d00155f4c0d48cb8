"""The time of one engine step, the only thing the simulation needs from a time model.

An engine step (one forward pass of the running batch) computes one token for each decoding request
and a chunk of prompt tokens for each prefilling one. Its time is a function of

    x = (1, d, c, p, q)
    d: decoding requests in the step
    c: their context tokens (for each, its prompt plus the tokens it has generated so far: the KV
       cache the new token attends over)
    p: prompt (prefill) tokens in the step
    q: prefill attention pairs: for each chunk of k tokens after h tokens of its prompt already in the
       cache, k h + k (k + 1) / 2 (attention work grows with it; a prompt of L tokens cut into any chunks
       sums to L (L + 1) / 2)

written, per replica r, as

    t_r(x) = fixed_r . x + max(memory_r . x, compute_r . x) + by_tokens_r[d + p]

`fixed` holds what always adds (launches, host time, collectives), `memory` and `compute` the two
sides of a roofline (the slower one sets the pace); an affine step time puts everything in `fixed`.
`by_tokens` (optional) adds a time looked up by the step's token count, for what is neither affine
nor a roofline in x (the experts a MoE step touches). Coefficients are non-negative, so a step never
gets faster by carrying more work, and the constant part is positive (every step takes time).

Coefficient arrays have one row per replica, or one row for every replica. The simulation evaluates
this inside its compiled loop; `StepTime.__call__` evaluates it with NumPy for inspection.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EnergyLensError

INPUTS = ("constant", "decoding", "context_tokens", "prefill_tokens", "prefill_pairs")


def _rows(x, name: str) -> np.ndarray:
    a = np.array(x, dtype=float)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != len(INPUTS):
        raise EnergyLensError(f"step time {name}: expected {len(INPUTS)} coefficients ({', '.join(INPUTS)}) "
                              f"per replica, got shape {np.shape(x)}")
    if not (np.isfinite(a).all() and (a >= 0).all()):
        raise EnergyLensError(f"step time {name}: coefficients must be finite and >= 0")
    return a


@dataclass(frozen=True, eq=False)
class StepTime:
    """Seconds of one engine step per replica (module docstring). Build it with `affine`, `roofline` or
    `constant`, or directly with (k, 5) coefficient arrays."""

    fixed: np.ndarray
    memory: np.ndarray | None = None
    compute: np.ndarray | None = None
    by_tokens: np.ndarray | None = None  # (k, T): seconds added for T = 0 .. (tokens in the step)

    def __post_init__(self):
        fixed = _rows(self.fixed, "fixed")
        k = fixed.shape[0]
        memory = np.zeros((k, len(INPUTS))) if self.memory is None else _rows(self.memory, "memory")
        compute = np.zeros((k, len(INPUTS))) if self.compute is None else _rows(self.compute, "compute")
        by_tokens = np.zeros((k, 0)) if self.by_tokens is None else np.array(self.by_tokens, dtype=float)
        if by_tokens.ndim == 1:
            by_tokens = by_tokens[None, :]
        if by_tokens.ndim != 2 or not (np.isfinite(by_tokens).all() and (by_tokens >= 0).all()):
            raise EnergyLensError("step time by_tokens: expected finite seconds >= 0 per replica and token count")
        counts = {fixed.shape[0], memory.shape[0], compute.shape[0]} | ({by_tokens.shape[0]} if by_tokens.size else set())
        if len(counts - {1}) > 1:
            raise EnergyLensError(f"step time: coefficient rows disagree on the number of replicas ({sorted(counts)})")
        k = max(counts)
        arrays = [np.ascontiguousarray(np.broadcast_to(a, (k, a.shape[1]))) for a in (fixed, memory, compute)]
        by_tokens = np.ascontiguousarray(np.broadcast_to(by_tokens, (k, by_tokens.shape[1])))
        base = arrays[0][:, 0] + np.maximum(arrays[1][:, 0], arrays[2][:, 0])
        if not (base > 0).all():
            raise EnergyLensError("step time: the constant part (fixed + max(memory, compute) at x = (1, 0, 0, 0, 0)) "
                                  "must be > 0 s for every replica: every engine step takes time")
        for name, a in zip(("fixed", "memory", "compute", "by_tokens"), (*arrays, by_tokens)):
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @classmethod
    def affine(cls, base_s, per_decoding_s=0.0, per_context_token_s=0.0, per_prefill_token_s=0.0,
               per_prefill_pair_s=0.0) -> "StepTime":
        """t = base + per_decoding d + per_context_token c + per_prefill_token p + per_prefill_pair q; each a
        number or one per replica."""
        cols = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in
                                     (base_s, per_decoding_s, per_context_token_s, per_prefill_token_s,
                                      per_prefill_pair_s)))
        return cls(np.stack(cols, axis=1))

    @classmethod
    def constant(cls, seconds) -> "StepTime":
        """Every step takes `seconds`, whatever it carries."""
        return cls.affine(seconds)

    @classmethod
    def roofline(cls, *, fixed=None, memory=None, compute=None, by_tokens=None) -> "StepTime":
        """fixed . x + max(memory . x, compute . x) (+ by_tokens[d + p]); each a (5,) or (k, 5) array."""
        z = np.zeros(len(INPUTS))
        return cls(z if fixed is None else fixed, memory, compute, by_tokens)

    @property
    def replicas(self) -> int:
        """Rows of coefficients: 1 (every replica alike) or one per replica."""
        return self.fixed.shape[0]

    def for_replicas(self, n: int) -> "StepTime":
        """These coefficients for `n` replicas (one row repeated, or exactly n rows)."""
        if self.replicas not in (1, n):
            raise EnergyLensError(f"step time has coefficients for {self.replicas} replicas, not {n}")
        if self.replicas == n:
            return self
        rep = [np.repeat(a, n, axis=0) for a in (self.fixed, self.memory, self.compute, self.by_tokens)]
        return StepTime(*rep)

    def __call__(self, decoding, context_tokens, prefill_tokens, prefill_pairs=0, replica: int = 0) -> np.ndarray:
        """Seconds of steps with these contents on `replica` (NumPy, broadcasting)."""
        d, c, p, q = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in
                                           (decoding, context_tokens, prefill_tokens, prefill_pairs)))
        x = np.stack([np.ones_like(d), d, c, p, q], axis=-1)
        t = x @ self.fixed[replica] + np.maximum(x @ self.memory[replica], x @ self.compute[replica])
        if self.by_tokens.shape[1]:
            t = t + self.by_tokens[replica][(d + p).astype(np.int64)]
        return t
