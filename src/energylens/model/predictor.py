"""Prediction with a fitted closed form: NumPy only, so loading a model and predicting stays fast."""
from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd

from ..data.schema import validate
from ..errors import DataError, NotFittedError
from ..features.physics import Features, compute_features
from .fitted import FittedModel
from .fitting import Z95 as INTERVAL_Z, log_prediction_std, measurements
from .serving import serving_latency
from .terms import GROUPS

_DESCRIPTORS = ("params_total_b", "params_active_b", "arch", "gpu_peak_tflops", "gpu_mem_bw_tbs", "gpu_tdp_w",
                "gpu_idle_w", "gpu_link_gbs", "gpu_mem_gb")


def described(X: pd.DataFrame) -> bool:
    """Whether every row carries the descriptors a prediction reads (prepare returns such a table as it is)."""
    return all(c in X.columns for c in _DESCRIPTORS) and not X[list(_DESCRIPTORS)].isna().any().any()


_CONFIGURATION = ("num_gpus", "tp", "pp", "ep", "dp", "batch_size", "input_tokens", "output_tokens", *_DESCRIPTORS)


def _finite_configuration(X: pd.DataFrame) -> bool:
    """Whether every numeric configuration and descriptor value is finite (a validated table's are)."""
    cols = [c for c in _CONFIGURATION if c in X.columns and X[c].dtype.kind in "fiu"]
    return bool(np.isfinite(X[cols].to_numpy(float)).all()) if cols else True


def prepare(X) -> pd.DataFrame:
    """A validated table with descriptors filled, validating only when descriptors are missing."""
    if not isinstance(X, pd.DataFrame):
        raise DataError("EnergyLens estimators take a pandas DataFrame in the profiling schema")
    if described(X) and _finite_configuration(X):
        return X
    return validate(X, require_energy=False)  # names the first bad cell


def energy_targets(df: pd.DataFrame, y=None):
    """(total, prefill, decode) per-request energy targets; NaN where a row does not measure it."""
    v = measurements(df, y).values
    return v["energy"], v["prefill"], v["decode"]


def _rows(f: Features, mask: np.ndarray) -> Features:
    """The features of the rows `mask` selects (every feature is computed row by row)."""
    return Features(**{k.name: getattr(f, k.name)[mask] for k in fields(Features)})


class ClosedFormPredictor:
    """Predictions, breakdowns and coefficient tables of a fitted closed form (`fitted_`, a FittedModel)."""

    def _check_fitted(self):
        if not hasattr(self, "fitted_"):
            raise NotFittedError("this model is not fitted yet: call fit() or load a model file")

    # -- the fitted state, by name -----------------------------------------------------------
    structure_ = property(lambda self: self._state().structure)
    coef_ = property(lambda self: self._state().shared.values)
    identified_ = property(lambda self: self._state().shared.fitted)
    cov_log_ = property(lambda self: self._state().shared.cov_log)
    residual_std_ = property(lambda self: self._state().shared.residual_std)
    engines_ = property(lambda self: self._state().engines)
    notes_ = property(lambda self: self._state().notes)
    train_metrics_ = property(lambda self: self._state().train_metrics)
    provenance_ = property(lambda self: self._state().provenance)
    domain_ = property(lambda self: self._state().domain)
    n_train_ = property(lambda self: self._state().n_train)

    @property
    def cv_(self) -> dict:
        return self._state().cv

    @cv_.setter
    def cv_(self, value):
        self._state().cv = value

    def _state(self) -> FittedModel:
        self._check_fitted()
        return self.fitted_

    def default_engine(self) -> str | None:
        """The engine whose coefficients price a configuration that names none (`recommend`'s default): the
        one with the most training rows; None when the model has no engine-specific coefficients."""
        engines = self._state().engines
        return max(engines, key=lambda g: engines[g].rows) if engines else None

    def engine_values(self, engine: str | None = None) -> np.ndarray:
        """Coefficient values of `engine` (None or 'shared': those shared by all engines, what `predict` uses for a
        table without the engine column)."""
        st = self._state()
        if engine in (None, "shared"):
            return st.shared.values
        if engine not in st.engines:
            from ..errors import DataError

            known = ", ".join(st.engines) or "none"
            raise DataError(f"engine {str(engine)[:60]!r} unknown; this model's engines: {known} (or 'shared')")
        return st.engines[engine].values

    # -- prediction ------------------------------------------------------------------------
    def _coefficient_sets(self, df):
        """(row mask, CoefficientSet) per engine; one set when engines are not modelled."""
        st = self._state()
        col = st.engine_column
        if not st.engines or not col or col not in df:
            return [(np.ones(len(df), bool), st.shared)]
        keys = df[col].astype(str).to_numpy()
        sets, known = [], np.zeros(len(df), bool)
        for g, e in st.engines.items():
            sel = keys == g
            if sel.any():
                sets.append((sel, e))
                known |= sel
        if (~known).any():
            sets.append((~known, st.shared))
        return sets

    def _frame(self, df, f=None, breakdown: bool = False) -> pd.DataFrame:
        return pd.DataFrame(self.predict_arrays(df, f, breakdown=breakdown), index=df.index)

    def predict_arrays(self, df, f=None, *, intervals: bool = True, breakdown: bool = False,
                       extrapolation: bool = True) -> dict[str, np.ndarray]:
        """predict_frame's columns as arrays, for a validated table `df` (and its features `f` when the caller
        has them): no DataFrame is built. `intervals=False` leaves out the 95% interval, `extrapolation=False`
        the training-domain flags."""
        f = f if f is not None else compute_features(df)
        sets = self._coefficient_sets(df)
        if len(sets) == 1:
            out = self._arrays(df, f, sets[0][1], intervals=intervals, breakdown=breakdown)
        else:
            out = {}
            for mask, cs in sets:  # rows of each engine with that engine's coefficients
                part = self._arrays(df[mask], _rows(f, mask), cs, intervals=intervals, breakdown=breakdown)
                for name, values in part.items():
                    out.setdefault(name, np.empty(len(df), values.dtype))[mask] = values
        if extrapolation:
            out["extrapolation"] = np.array(self._state().domain.flags(df, f), dtype=object)
        return out

    def _arrays(self, df, f, cs, *, intervals: bool = True, breakdown: bool = False) -> dict[str, np.ndarray]:
        s = self.structure_
        free = tuple(n for n, ok in zip(s.names, cs.fitted) if ok) if intervals else ()
        raw = s.evaluate(f, cs.values, gradient_of=free)
        val = {k: (v[0] if isinstance(v, tuple) else v) for k, v in raw.items()}
        e_pf, e_dec = val["e_prefill"], val["e_decode"]
        total = e_pf + e_dec
        ttft, itl = val["t_prefill"], val["t_step"]
        out = {"pred_energy_request_j": total, "pred_energy_token_j": total / f.out_tokens,
               "pred_prefill_energy_j": e_pf, "pred_decode_energy_j": e_dec, "pred_ttft_s": ttft, "pred_itl_s": itl,
               "pred_power_w": val["power_all"], "pred_power_per_gpu_w": val["power_all"] / f.num_gpus,
               "pred_gpu_seconds": val["gpu_seconds"]}
        if intervals:
            idx = [s.names.index(n) for n in free]
            grad = raw["e_prefill"][1] + raw["e_decode"][1] if free else np.zeros((len(total), 0))
            is_log = np.array([j < s.n_coefficients for j in idx], dtype=bool)
            cov = cs.cov_log[np.ix_(idx, idx)] if idx else np.zeros((0, 0))
            sd = log_prediction_std(grad, total, cs.values[idx], cov, is_log, cs.residual_std)
            out["pred_energy_request_lo_j"] = total * np.exp(-INTERVAL_Z * sd)
            out["pred_energy_request_hi_j"] = total * np.exp(INTERVAL_Z * sd)
        served = serving_latency(df, f, ttft, itl)
        out["pred_serving_ttft_s"] = served["ttft_s"]
        out["pred_serving_itl_s"] = served["tpot_s"]
        out["pred_serving_latency_s"] = served["latency_s"]
        if breakdown:
            parts = breakdown_energy(s, f, cs.values, val)
            for g in GROUPS:
                out[f"{g}_j"] = parts[g]
            for g in GROUPS:
                out[f"{g}_pct"] = 100 * parts[g] / total
            out["prefill_share_pct"] = 100 * e_pf / total
            out["total_j"] = total
        return out

    def predict_frame(self, X, breakdown: bool = False) -> pd.DataFrame:
        """All predictions for each configuration (energy, split, times, power, GPU-seconds, 95% interval,
        training-domain flags); with `breakdown`, also the columns of `explain`."""
        self._check_fitted()
        return self._frame(prepare(X), breakdown=breakdown)

    def predict(self, X) -> np.ndarray:
        """Energy per request (J): the lean path (no intervals, no flags) for large batches of configurations."""
        self._check_fitted()
        df = prepare(X)
        f = compute_features(df)
        out = np.empty(len(df))
        s = self.structure_
        for mask, cs in self._coefficient_sets(df):
            val = s.evaluate(f if mask.all() else _rows(f, mask), cs.values)
            out[mask] = val["e_prefill"] + val["e_decode"]
        return out

    def explain(self, X) -> pd.DataFrame:
        """Energy per request broken down by where it goes (GROUPS: static power over each part of the time
        plus the dynamic energy of that work; 'idle' the GPUs of replicas with no request), J and %, one row
        per configuration, with the prefill phase's share (prefill_share_pct) and `shares_not_identified`: the
        groups whose share rests on a coefficient the data did not identify."""
        self._check_fitted()
        df = prepare(X)
        f = compute_features(df)
        frame = self._frame(df, f, breakdown=True)
        cols = [f"{g}_j" for g in GROUPS] + [f"{g}_pct" for g in GROUPS] + ["prefill_share_pct", "total_j"]
        out = frame[cols].copy()
        out["shares_not_identified"] = self._shares_not_identified(frame)
        return out

    def _shares_not_identified(self, frame) -> list[list[str]]:
        """Per row, the groups with a share of at least 1% whose coefficients include one that no data set
        (model/identification.py: not fitted or not identified)."""
        from .identification import UNSUPPORTED

        coefs = self.coefficients()
        weak = coefs.loc[coefs["status"].isin(UNSUPPORTED), "name"]
        groups = set()
        by_name = {r.name: r for r in self.structure_.coefficients}
        for n in weak:
            if n in by_name:
                groups |= set(by_name[n].groups)
        if not groups:
            return [[] for _ in range(len(frame))]
        shares = {g: frame[f"{g}_pct"].to_numpy() for g in GROUPS if g in groups}
        return [[g for g, v in shares.items() if v[i] >= 1.0] for i in range(len(frame))]

    def coefficients(self) -> pd.DataFrame:
        """Coefficient table with 95% intervals, whether the data identified each one
        (model/identification.py: `identified`, and `identification` saying why not; lo95 and hi95 are NaN
        then), its kind (time or power; correction exponents: 'correction') and unit."""
        from .identification import fit_bounds, judge

        st = self._state()
        s = st.structure
        held = set(getattr(self, "fixed", None) or ())  # estimator parameter: names held at a given value
        bounds = fit_bounds(s)
        sd = np.sqrt(np.maximum(np.diag(st.shared.cov_log), 0))
        rows = []
        for j, rec in enumerate(s.records()):
            exponent = j >= s.n_coefficients
            c = float(st.shared.values[j])
            z = INTERVAL_Z * sd[j]
            lo, hi = (c - z, c + z) if exponent else (c * np.exp(-z), c * np.exp(z))
            low, high = bounds[j]
            verdict = judge(c, float(lo), float(hi), bool(st.shared.fitted[j]), exponent=exponent, lower=low, upper=high,
                            held=rec.name in held)
            if not verdict.identified:
                lo = hi = np.nan
            else:  # shown within the bounds the fit worked in (a time coefficient is never below 1: the hardware)
                lo, hi = max(lo, low), min(hi, high)
            rows.append({"name": rec.name, "kind": "correction" if exponent else rec.kind, "value": c, "lo95": lo,
                         "hi95": hi, "unit": "exponent" if exponent else rec.unit, "fitted": bool(st.shared.fitted[j]),
                         "identified": verdict.identified, "status": verdict.status,
                         "identification": verdict.text(), "used_by_energy": True, "meaning": rec.doc,
                         "prior_provenance": rec.provenance})
        return pd.DataFrame(rows)

    def fitted_count(self) -> int:
        """Fitted numbers an energy prediction depends on: every fitted coefficient, the time model's included
        (energy is power over the predicted time)."""
        return int(np.sum(self._state().shared.fitted))


def breakdown_energy(structure, f, coef, val) -> dict[str, np.ndarray]:
    """Energy per request by group. Each phase's GPUs draw static power over its time and dynamic power over
    the work: static energy is shared among the parts of the time (each time coefficient's term, found as
    coefficient x d time / d coefficient: the times are linear in them), the stage-slot terms' bubble part
    (1 - 1/pp_slots) going to pp_bubble; dynamic energy among the kinds of work (a_flop, a_mem, a_comm terms
    of the demand u); idle replicas' GPUs to 'idle'."""
    s = structure
    time_names = tuple(c.name for c in s.coefficients if c.kind == "time")
    power_names = tuple(c.name for c in s.coefficients if c.kind == "power" and c.name != "s_static")
    grads = s.evaluate(f, coef, gradient_of=time_names + power_names)
    by = {c.name: c for c in s.coefficients}
    values = dict(zip(s.names, coef))
    n = f.n
    parts = {g: np.zeros(n) for g in GROUPS}
    comm = np.maximum(f.t_allreduce_step + f.t_alltoall_step + f.t_p2p_step, 1e-300)
    comm_split = {"tp_comm": np.where(comm > 1e-300, f.t_allreduce_step / comm, 1.0),
                  "ep_comm": f.t_alltoall_step / comm, "pp_bubble": f.t_p2p_step / comm}
    for t_name, p_name, u_name, e_name in (("t_prefill", "p_prefill", "u_pf", "e_prefill"),
                                           ("t_step", "p_decode", "u_dec", "e_decode")):
        t_val, t_grad = grads[t_name]
        e_total = val[e_name]
        idle_e = e_total * (f.waiting * f.idle) / (val[p_name] + f.waiting * f.idle)
        busy_e = e_total - idle_e
        static_e = busy_e * val["p_static"] / val[p_name]
        dynamic_e = busy_e - static_e
        parts["idle"] += idle_e
        # Static energy by the parts of the time.
        comps = {}
        for j, name in enumerate(time_names):
            comps[name] = values[name] * t_grad[:, j]
        accounted = sum(comps.values()) if comps else np.zeros(n)
        rest = np.maximum(t_val - accounted, 0.0)  # time not linear in a coefficient (a floor, a discovered term)
        denom = np.maximum(accounted + rest, 1e-300)
        bubble = 1 - 1 / f.pp_slots
        for name, comp in comps.items():
            share = static_e * comp / denom
            groups = by[name].groups
            stage = "pp_bubble" in groups
            main = [g for g in groups if g != "pp_bubble"] or ["overhead"]
            if stage:
                parts["pp_bubble"] += share * bubble
                share = share * (1 - bubble)
            _spread(parts, main, share, comm_split)
        parts["overhead"] += static_e * rest / denom
        # Dynamic energy by the kind of work.
        u_val, u_grad = grads[u_name]
        dyn = {}
        for j, name in enumerate(power_names):
            dyn[name] = values[name] * u_grad[:, len(time_names) + j]
        dsum = np.maximum(sum(dyn.values()), 1e-300) if dyn else np.ones(n)
        for name, d in dyn.items():
            groups = [g for g in by[name].groups if g != "pp_bubble"] or ["overhead"]
            _spread(parts, groups, dynamic_e * d / dsum, comm_split)
    return parts


def _spread(parts, groups, energy, comm_split):
    """Add `energy` to `groups`: communication split by the times of TP all-reduces, EP all-to-alls and pipeline
    sends (the last counted with the pipeline's cost), other groups evenly."""
    if set(groups) == {"tp_comm", "ep_comm"}:
        for g, share in comm_split.items():
            parts[g] += energy * share
        return
    for g in groups:
        parts[g] += energy / len(groups)
