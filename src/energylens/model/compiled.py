"""A fused, compiled evaluator of a closed form: raw configuration columns in, energy per request out.

The reference path (`compute_features` then `Structure.energy_design`) makes about 200 passes over
every column, each through memory. This module generates, once per structure, one loop that reads a
row's ~25 inputs and computes its features, term energies and correction in registers, compiled
with numba (the `fast` extra). The coefficients are arguments, so every model of one structure (and
every engine-specific coefficient set) shares one compiled kernel, cached on disk across processes.

One source of truth: the physics lives in `features/physics.py`. The kernel's feature block below is
that function written per row; `compiled_energy` checks it against the reference on probe rows
covering every branch (MoE, expert parallel across replicas, SSM, hybrid, vision, fp8, shapes from
parameter counts, memory-capped batches) before it is used, and falls back to the reference path,
with a warning, when they differ by more than 1e-12 relative (physics changed and this did not).
Without numba the reference path runs, on the columns taken once.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..features import physics

AGREEMENT_RTOL = 1e-12

# (column, default when absent or empty): the numeric inputs of `physics.compute_features`.
NUMERIC_INPUTS: tuple[tuple[str, float], ...] = (
    ("num_gpus", 1.0), ("dp", 1.0), ("tp", 1.0), ("pp", 1.0), ("ep", 1.0), ("params_total_b", 1.0),
    ("params_active_b", 1.0), ("layers", 0.0), ("hidden_size", 0.0), ("heads", 0.0), ("head_dim", 0.0),
    ("kv_heads", 0.0), ("attention_layers", float("nan")), ("experts", 0.0), ("active_experts", 0.0),
    ("vision_params_b", 0.0), ("ssm_state_mb", 0.0), ("gpu_peak_tflops", 989.0), ("gpu_mem_bw_tbs", 3.35),
    ("gpu_mem_gb", 80.0), ("gpu_tdp_w", 700.0), ("gpu_idle_w", 100.0), ("gpu_link_gbs", 900.0),
    ("input_tokens", 0.0), ("output_tokens", 1.0), ("visual_tokens", float("nan")), ("batch_size", 1.0),
    ("kv_cache_dim", 0.0), ("sliding_window", 0.0), ("sliding_layers", 0.0),
)
# Text columns: per-row codes into small tables of what each distinct text decides (built once per call).
TEXT_INPUTS = ("precision", "arch", "modality", "task")

# compute_features, one row at a time (same operations in the same order; np.where -> if/else).
_FEATURE_BODY = """
bpp = precision_table[precision, 0]
peak_factor = precision_table[precision, 1]
arch_ssm = arch_table[arch, 0] > 0
arch_recurrent = arch_table[arch, 1] > 0
dp = max(dp, 1.0)
tp = max(tp, 1.0)
pp = max(pp, 1.0)
ep = max(ep, 1.0)
total_b = params_total_b
active_b = min(params_active_b, total_b)
layers = max(layers, 0.0)
hidden = hidden_size
if layers > 0:
    guess_hidden = np.sqrt(active_b * 1e9 / (12 * max(layers, 1.0)))
else:
    guess_hidden = (active_b * 1e9 * 128 / 12) ** (1 / 3)
hidden = hidden if hidden > 0 else guess_hidden
if not layers > 0:
    layers = max(np.rint(active_b * 1e9 / (12 * (hidden * hidden))), 1.0)
head_dim = head_dim if head_dim > 0 else 128.0
heads = heads if heads > 0 else hidden / head_dim
kv_heads = kv_heads if kv_heads > 0 else heads
attn_layers = attention_layers
if np.isnan(attn_layers):
    attn_layers = 0.0 if arch_ssm else layers
k_active = active_experts
vision_b = vision_params_b
ssm_mb = ssm_state_mb
peak_flops = gpu_peak_tflops * 1e12
bw = gpu_mem_bw_tbs * 1e12
mem = gpu_mem_gb * 2 ** 30
tdp = gpu_tdp_w
idle = gpu_idle_w
link = gpu_link_gbs * 1e9
peak_flops = peak_flops * peak_factor
in_tokens = max(input_tokens, 0.0)
out_tokens = max(output_tokens, 1.0)
visual_default = 0.0
if modality_table[modality, 0] > 0 or modality_table[modality, 1] > 0:
    v = task_table[task, 1] if modality_table[modality, 1] > 0 else task_table[task, 0]
    visual_default = 0.5 * in_tokens if np.isnan(v) else min(v, in_tokens)
vis = visual_default if np.isnan(visual_tokens) else min(visual_tokens, in_tokens)
weight_bytes = total_b * 1e9 * bpp
kv_layer_bytes = (kv_cache_dim if kv_cache_dim > 0 else 2 * kv_heads * head_dim) * KV_BYTES
window = sliding_window
windowed = min(max(sliding_layers, 0.0), attn_layers) if window > 0 else 0.0
ctx = in_tokens + out_tokens / 2
frac = min(max(k_active / max(experts, 1.0), 0.0), 1.0) if experts > 0 else 1.0
routed_b = (total_b - active_b) / max(1 - frac, 1e-9) if (experts > 0 and frac < 1) else 0.0
routed_b = min(max(routed_b, 0.0), total_b)
shared_b = total_b - routed_b
spans = ep > 1 and dp > 1
engines = 1.0 if spans else dp
G = max(num_gpus / engines, 1.0)
shared_copies = dp if spans else 1.0
stored = (shared_copies * shared_b + routed_b) * 1e9 * bpp
guess_mb = max(layers - attn_layers, 0.0) * 2 * hidden * 128 * 2 / 1e6
if ssm_mb <= 0 and arch_recurrent:
    ssm_mb = guess_mb
state_per_seq = ssm_mb * 1e6
free = G * (mem * MEMORY_USABLE - ACTIVATION_RESERVE_GB * 1e9) - stored
cached_ctx = _cached(attn_layers, windowed, window, ctx)
per_seq = kv_layer_bytes * cached_ctx + state_per_seq
cap = max(free, 0.0) / max(per_seq, 1e-9) if per_seq > 0 else np.inf
batch_req = max(batch_size / engines, 1.0)
if np.isfinite(cap):
    # (a**-8 + b**-8)**(-1/8) by squarings and square roots: pow() is most of a row's time
    a8 = batch_req * batch_req
    a8 = a8 * a8
    a8 = a8 * a8
    b8 = max(cap, 1.0)
    b8 = b8 * b8
    b8 = b8 * b8
    b8 = b8 * b8
    batch = 1.0 / np.sqrt(np.sqrt(np.sqrt(1.0 / a8 + 1.0 / b8)))
else:
    batch = batch_req
batch = max(batch, 1.0)
touched = 1 - (1 - frac) ** batch if routed_b > 0 else 0.0
weight_bytes_step = (shared_copies * shared_b + routed_b * touched) * 1e9 * bpp
kv_bytes_step = batch * (kv_layer_bytes * cached_ctx + 2 * state_per_seq)
attn_width = heads * head_dim
flops_dec_step = batch * (2 * active_b * 1e9 + 4 * attn_width * cached_ctx)
flops_pf_linear = 2 * max(active_b - vision_b, 0.01) * 1e9 * in_tokens
flops_pf_attn = 4 * attn_width * _attended(attn_layers, windowed, window, in_tokens)
flops_pf_vision = 2 * vision_b * 1e9 * vis
msg_bytes = hidden * 2.0
ar_factor = 2 * (tp - 1) / tp
t_allreduce_step = 2 * layers * (COLLECTIVE_LATENCY_S + ar_factor * batch * msg_bytes / link) if tp > 1 else 0.0
t_allreduce_pf = 2 * layers * ar_factor * in_tokens * msg_bytes / link if tp > 1 else 0.0
moe_layers = layers if experts > 0 else 0.0
a2a_factor = (ep - 1) / ep
t_alltoall_step = 2 * moe_layers * (COLLECTIVE_LATENCY_S + a2a_factor * batch * max(k_active, 1.0) * msg_bytes / link) if ep > 1 else 0.0
launch_layers = layers + moe_layers
moe_dispatch_step = moe_layers * experts * touched * DISPATCH_S
moe_dispatch_pf = in_tokens * moe_layers * k_active * DISPATCH_S
launch_time = (layers + moe_layers) * LAYER_OVERHEAD_S
moe_time_step = moe_layers * experts * touched * DISPATCH_S / G
"""
_CONSTANTS = ("KV_BYTES", "COLLECTIVE_LATENCY_S", "DISPATCH_S", "LAYER_OVERHEAD_S", "MEMORY_USABLE",
              "ACTIVATION_RESERVE_GB")


# ---------------------------------------------------------------- columns, taken once


@dataclass
class Columns:
    """The inputs of one evaluation as NumPy arrays. A missing column is a 1-entry array holding its
    default, read with stride 0. Text columns are codes into small tables of what each text decides."""

    n: int
    numeric: list  # float64 arrays, one per NUMERIC_INPUTS entry
    strides: np.ndarray  # 1 where the column is present, 0 where its default stands in
    codes: list  # int64 code arrays, one per TEXT_INPUTS entry
    code_strides: np.ndarray
    tables: list  # per TEXT_INPUTS entry, a (distinct texts + 1) x 2 float table


def _as_float(col) -> np.ndarray:
    if col.dtype.kind in "fiu":
        return np.ascontiguousarray(col.to_numpy(dtype=float))
    import pandas as pd

    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)


def _codes(df, name: str):
    """(codes, distinct values) of a column; an empty cell gets the code len(values) (the default's)."""
    import pandas as pd

    if name not in df.columns:
        return np.zeros(1, np.int64), []
    codes, uniques = pd.factorize(df[name], use_na_sentinel=True)
    if len(uniques) and codes.min() < 0:
        codes = np.where(codes < 0, len(uniques), codes)
    return np.ascontiguousarray(codes, dtype=np.int64), list(uniques)


def _table(values, default, rule) -> np.ndarray:
    """Row k: rule(lower-cased text k) as two numbers; the last row is the default's."""
    texts = [str(v).strip().lower() for v in values] + [default]
    return np.array([rule(t) for t in texts], dtype=float).reshape(len(texts), 2)


def _task_figures(task: str | None):
    from ..catalog.tasks import task_defaults

    d = (task_defaults(task) or {}) if task is not None else {}
    return d.get("image_tokens", np.nan), d.get("video_tokens", np.nan)


def columns_of(df) -> Columns:
    """Take each input column of a configuration table as an array, once (the only pandas step)."""
    n = len(df)
    numeric, strides = [], []
    for name, default in NUMERIC_INPUTS:
        if name in df.columns:
            numeric.append(_as_float(df[name]))
            strides.append(1)
        else:
            numeric.append(np.array([default]))
            strides.append(0)
    prec, arch, modality, task = (_codes(df, c) for c in TEXT_INPUTS)
    tables = [
        _table(prec[1], "bf16", lambda p: (physics.BYTES_PER_PARAM.get(p, 2.0), 2.0 if p in ("fp8", "int8") else 1.0)),
        _table(arch[1], "dense", lambda a: (a == "ssm", a in ("ssm", "hybrid"))),
        _table(modality[1], "text", lambda m: (m == "image", m == "video")),
        # physics looks tasks up by their text as given (not lower-cased)
        np.array([_task_figures(str(t)) for t in task[1]] + [(np.nan, np.nan)], dtype=float).reshape(-1, 2),
    ]
    if not (tables[2][:, 0].any() or tables[2][:, 1].any()):  # no image or video: no task is read
        task = (np.zeros(1, np.int64), [])
        tables[3] = np.full((1, 2), np.nan)
    codes = [prec[0], arch[0], modality[0], task[0]]
    return Columns(n, numeric, np.array(strides, np.int64), codes,
                   np.array([1 if len(c) == n else 0 for c in codes], np.int64), tables)


# ---------------------------------------------------------------- code generation


def _source(node) -> str:
    """Python source of a checked expression tree, with NumPy's semantics (the reference evaluator's)."""
    if isinstance(node, ast.BinOp):
        a, b = _source(node.left), _source(node.right)
        op = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}[type(node.op)]
        return f"({a} {op} {b})"
    if isinstance(node, ast.UnaryOp):
        return f"(-{_source(node.operand)})" if isinstance(node.op, ast.USub) else _source(node.operand)
    if isinstance(node, ast.Constant):
        return repr(float(node.value))
    if isinstance(node, ast.Name):
        return node.id
    args = [_source(a) for a in node.args]
    name = node.func.id
    if name in ("exp", "log", "sqrt"):
        return f"np.{name}({args[0]})"
    out = args[0]
    for a in args[1:]:  # np.minimum / np.maximum propagate NaN; Python's min/max do not
        out = f"_{name}({out}, {a})"
    return out


def kernel_source(structure) -> str:
    """Source of the numba kernel of `structure`'s energy per request."""
    lines = ["import numpy as np", "import numba", "",
             *(f"{c} = {getattr(physics, c)!r}" for c in _CONSTANTS), "",
             "@numba.njit(cache=True)",
             "def _min(a, b):", "    return a + b if (a != a or b != b) else (a if a <= b else b)", "",
             "@numba.njit(cache=True)",
             "def _max(a, b):", "    return a + b if (a != a or b != b) else (a if a >= b else b)", "",
             "@numba.njit(cache=True)",
             "def _cached(attn_layers, windowed, window, c):  # tokens cached at context c, over attention layers",
             "    return (attn_layers - windowed) * c + windowed * _min(c, window)", "",
             "@numba.njit(cache=True)",
             "def _attended(attn_layers, windowed, window, c):  # query-key pairs of a causal prompt of c tokens",
             "    m = _min(c, window)",
             "    return (attn_layers - windowed) * (c * c) / 2 + windowed * (m * c - (m * m) / 2)", "",
             "@numba.njit(cache=True)",
             "def _finite(x):", "    return x if np.isfinite(x) else 0.0", "",
             "@numba.njit(cache=True, parallel=True, error_model='numpy')",
             "def energy(cols, strides, codes, code_strides, precision_table, arch_table, modality_table, task_table,",
             "           theta, c, zlo, zhi, sets, set_strides, out):",
             "    for i in numba.prange(out.shape[0]):"]
    body = []
    for k, (name, default) in enumerate(NUMERIC_INPUTS):
        body.append(f"{name} = cols[{k}][i * strides[{k}]]")
        body.append(f"{name} = {_default_literal(default)} if {name} != {name} else {name}")
    for k, name in enumerate(TEXT_INPUTS):
        body.append(f"{name} = codes[{k}][i * code_strides[{k}]]")
    body += [ln for ln in _FEATURE_BODY.strip().splitlines()]
    body.append("s = set_strides * i")
    body.append("k = sets[s]")
    terms, corrections = [], []
    for j, t in enumerate(structure.energy_terms):
        parts = [f"_finite({_source(structure.expression(t.name, ph).tree)})"
                 for ph in ("prefill", "decode") if structure.expression(t.name, ph) is not None]
        if parts:
            terms.append(f"({' + '.join(parts)}) * theta[k, {j}]")
    for j, corr in enumerate(structure.corrections):
        h = f"_finite({_source(structure.expression(corr.name, 'h').tree)})"
        corrections.append(f"_min(_max({h}, zlo[{j}]), zhi[{j}]) * c[k, {j}]")  # held to the training range
    body.append(f"total = {' + '.join(terms) if terms else '0.0'}")
    body.append(f"out[i] = total * np.exp({' + '.join(corrections) if corrections else '0.0'})")
    lines += [_indent(ln) for ln in body]
    # The names physics gives Features are the symbols the expressions read; `batch` etc. are locals above.
    return "\n".join(lines) + "\n"


def _default_literal(x: float) -> str:
    return "np.nan" if np.isnan(x) else repr(float(x))


def _indent(line: str) -> str:
    return "        " + line


# ---------------------------------------------------------------- loading, cached per structure


def numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def _cache_dir() -> Path:
    root = os.environ.get("ENERGYLENS_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                              os.path.join(Path.home(), ".cache"), "energylens")
    return Path(root) / "kernels"


@lru_cache(maxsize=32)
def _load_kernel(source: str):
    """The compiled kernel of this source. The source is written to a file named by its hash, so numba's
    on-disk cache serves every later process (compiling takes seconds, loading a fraction of one)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"energylens_kernel_{digest}"
    folder = _cache_dir()
    path = folder / f"{name}.py"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != source:
            from ..io import atomic_write_text

            atomic_write_text(path, source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # numba's cache finds the helpers of a cached kernel by module name
        spec.loader.exec_module(module)
    except OSError:  # no writable cache: compile in memory (every process pays the compile time)
        module = type(sys)(name)
        exec(compile(source.replace("cache=True", "cache=False"), name, "exec"), module.__dict__)
    return module.energy


class CompiledEnergy:
    """Energy per request of one structure, from `Columns`, for any coefficients of that structure."""

    def __init__(self, structure):
        self.structure = structure
        self.source = kernel_source(structure)
        self._kernel = _load_kernel(self.source)

    def __call__(self, cols: Columns, coefs, set_index=None) -> np.ndarray:
        """`coefs`: one coefficient vector (terms then exponents) or a (sets x coefficients) matrix with
        `set_index` giving each row's set."""
        s = self.structure
        coefs = np.atleast_2d(np.asarray(coefs, dtype=float))
        theta = np.ascontiguousarray(coefs[:, :s.n_terms])
        c = np.ascontiguousarray(coefs[:, s.n_terms:])
        if c.shape[1] == 0:
            c = np.zeros((len(coefs), 1))
        k = max(len(s.corrections), 1)
        held = np.array(s.correction_range, dtype=float).reshape(-1, 2) if s.correction_range else None
        zlo = np.full(k, -np.inf) if held is None else np.ascontiguousarray(held[:, 0])
        zhi = np.full(k, np.inf) if held is None else np.ascontiguousarray(held[:, 1])
        sets = np.zeros(1, np.int64) if set_index is None else np.ascontiguousarray(set_index, dtype=np.int64)
        out = np.empty(cols.n)
        if cols.n:
            self._kernel(tuple(cols.numeric), cols.strides, tuple(cols.codes), cols.code_strides, *cols.tables,
                         theta, c, zlo, zhi, sets,
                         0 if set_index is None else 1, out)
        return out


def reference_energy(structure, df, coefs) -> np.ndarray:
    """Energy per request by the reference path: compute_features, energy_design, coefficients."""
    f = physics.compute_features(df)
    pf, dec, Z = structure.energy_design(f)
    coefs = np.asarray(coefs, dtype=float)
    return (pf + dec) @ coefs[:structure.n_terms] * np.exp(Z @ coefs[structure.n_terms:])


@lru_cache(maxsize=32)
def _checked(structure) -> CompiledEnergy | None:
    """The compiled evaluator of `structure` once it agrees with the reference on the probe rows; None
    (the reference path is used) without numba or when they disagree."""
    if os.environ.get("ENERGYLENS_NO_COMPILE") or not numba_available():
        return None
    probe = probe_rows()
    rng = np.random.default_rng(0)
    coefs = np.r_[rng.uniform(0.2, 3.0, structure.n_terms), rng.uniform(-1, 1, len(structure.corrections))]
    try:
        ev = CompiledEnergy(structure)
        got = ev(columns_of(probe), coefs)  # compiles (or loads the cached kernel)
    except Exception as exc:  # a symbol or construct the kernel does not know: the reference serves
        warnings.warn(f"compiled evaluator unavailable for structure '{structure.name}' ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); using the reference path",
                      RuntimeWarning, stacklevel=3)
        return None
    want = reference_energy(structure, probe, coefs)
    if not np.allclose(got, want, rtol=AGREEMENT_RTOL, atol=0, equal_nan=True):
        bad = int(np.argmax(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)))
        warnings.warn(f"compiled evaluator disagrees with compute_features on probe row {bad} ({got[bad]!r} vs "
                      f"{want[bad]!r}): features/physics.py changed without model/compiled.py; using the "
                      "reference path", RuntimeWarning, stacklevel=3)
        return None
    return ev


def compiled_energy(structure) -> CompiledEnergy | None:
    """The checked compiled evaluator of `structure`, built once per structure per process, or None."""
    return _checked(structure)


def probe_rows():
    """Configuration rows covering every branch of the physics (see the module docstring)."""
    import pandas as pd

    rows = []
    shapes = [  # arch, total, active, layers, hidden, heads, kv_heads, head_dim, experts, active_experts, attention_layers, vision, ssm
        ("dense", 8.0, 8.0, 32, 4096, 32, 8, 128, 0, 0, np.nan, 0.0, 0.0),
        ("dense", 70.0, 70.0, 80, 8192, 64, 8, 128, 0, 0, np.nan, 0.0, 0.0),
        ("moe", 30.0, 3.0, 48, 2048, 32, 4, 128, 128, 8, np.nan, 0.0, 0.0),
        ("moe", 235.0, 22.0, 94, 4096, 64, 4, 128, 128, 8, np.nan, 0.0, 0.0),
        ("hybrid", 52.0, 12.0, 32, 4096, 32, 8, 128, 16, 2, 4, 0.0, 0.0),
        ("ssm", 2.8, 2.8, 64, 2560, 0, 0, 0, 0, 0, np.nan, 0.0, 0.0),
        ("ssm", 7.0, 7.0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 30.0),
        ("dense", 7.0, 7.0, 0, 0, 0, 0, 0, 0, 0, np.nan, 0.6, 0.0),
        ("dense", 405.0, 405.0, 126, 16384, 128, 8, 128, 0, 0, np.nan, 0.0, 0.0),
    ]
    layouts = [(1, 1, 1, 1, 1), (8, 8, 1, 1, 1), (8, 2, 2, 1, 2), (8, 1, 1, 8, 8), (4, 2, 1, 2, 2), (16, 4, 2, 2, 1)]
    gpus = [(989, 3.35, 80, 700, 100, 900), (2250, 8.0, 180, 1000, 140, 1800), (312, 2.0, 40, 400, 60, 600)]
    precisions = ["bf16", "fp8", "int4", None]
    modalities = [("text", None, np.nan), ("image", "image-chat", np.nan), ("video", None, np.nan), ("image", None, 300.0)]
    i = 0
    for shape in shapes:
        for n, tp, pp, dp, ep in layouts:
            if ep > 1 and shape[0] not in ("moe", "hybrid"):
                ep = 1
            g = gpus[i % len(gpus)]
            prec = precisions[i % len(precisions)]
            mod, task, vis = modalities[i % len(modalities)]
            b = [1, 7, 64, 256, 4096][i % 5]
            L_in, L_out = [(0, 1), (1024, 256), (8000, 64), (128, 2048)][i % 4]
            rows.append(dict(arch=shape[0], params_total_b=shape[1], params_active_b=shape[2], layers=shape[3],
                             hidden_size=shape[4], heads=shape[5], kv_heads=shape[6], head_dim=shape[7],
                             experts=shape[8], active_experts=shape[9], attention_layers=shape[10],
                             vision_params_b=shape[11], ssm_state_mb=shape[12], num_gpus=n, tp=tp, pp=pp, dp=dp, ep=ep,
                             batch_size=b, input_tokens=float(L_in), output_tokens=float(L_out), visual_tokens=vis,
                             modality=mod, task=task, precision=prec, gpu_peak_tflops=g[0], gpu_mem_bw_tbs=g[1],
                             gpu_mem_gb=g[2], gpu_tdp_w=g[3], gpu_idle_w=g[4], gpu_link_gbs=g[5],
                             # multi-head latent attention (one cached latent) and sliding-window layers
                             kv_cache_dim=576.0 if shape[8] >= 128 and i % 2 else 0.0,
                             sliding_window=4096.0 if shape[0] == "dense" and i % 3 else 0.0,
                             sliding_layers=float(shape[3] // 2) if i % 3 != 2 else 1e4))
            i += 1
    return pd.DataFrame(rows)



# ---------------------------------------------------------------- a fitted model's predictions

COMPILE_MIN_ROWS = 20_000  # below this the reference path is as fast as loading a kernel


def coefficient_sets(model, df):
    """(sets x coefficients matrix, per-row set index or None): the model's engine-specific coefficient
    sets where `engine_column` names a known engine, the shared set elsewhere (as `_coefficient_sets`)."""
    import pandas as pd

    engines = getattr(model, "engines_", None) or {}
    col = getattr(model, "engine_column", None)
    if not engines or not col or col not in df:
        return np.atleast_2d(model.coef_), None
    names = list(engines)
    coefs = np.vstack([model.coef_] + [engines[g]["coef"] for g in names])
    codes, uniques = pd.factorize(df[col], use_na_sentinel=True)
    keys = pd.Series(uniques, dtype=object).astype(str).tolist()  # the reference compares str(value)
    lookup = np.array([names.index(k) + 1 if k in engines else 0 for k in keys] + [0], dtype=np.int64)
    return coefs, lookup[np.where(codes < 0, len(uniques), codes)]


def predict_energy(model, df) -> np.ndarray | None:
    """Energy per request of a validated table by the compiled kernel; None where the reference path serves
    (a small table, no numba, or a kernel that does not agree with the physics)."""
    if len(df) < COMPILE_MIN_ROWS:
        return None
    ev = compiled_energy(model.structure_)
    if ev is None:
        return None
    coefs, index = coefficient_sets(model, df)
    return ev(columns_of(df), coefs, index)
