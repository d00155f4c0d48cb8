"""The fitted state of a model as one typed object: what `fit` learns and a model file holds.

`FittedModel` = a structure, the shared coefficient set, one set per serving engine (its recalibrated
coefficients), the training domain (what the rows covered, so that a prediction outside it is flagged),
cross-validation, typed notes and training metrics. The estimator stores one and reads everything from
it; model/modelfile.py serializes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .structure import Structure


@dataclass
class CoefficientSet:
    """Values of a structure's coefficients (in the order of `structure.names`) and their uncertainty."""

    values: np.ndarray
    fitted: np.ndarray  # bool: fitted on data (False: held at its prior or at a given value)
    cov_log: np.ndarray  # covariance of the fitted parameters (log coefficients, exponents as they are)
    residual_std: float  # std of energy log residuals
    time_residual_std: float = float("nan")
    rows: int = 0


@dataclass(frozen=True)
class Note:
    """Something the fit says about one coefficient (or about the fit when `coefficient` is empty)."""

    coefficient: str
    kind: str  # "kept at prior", "held fixed", "at bound", "fit"
    text: str

    def __str__(self) -> str:
        return self.text


# What a training domain records: for each numeric input, the range the training rows covered.
_RANGES = {"prompt tokens": "input_tokens", "output tokens": "output_tokens", "batch": "batch_size",
           "GPUs": "num_gpus", "pp": "pp", "ep": "ep", "tp": "tp"}
_SPECS = {"peak TFLOP/s": "gpu_peak_tflops", "memory bandwidth": "gpu_mem_bw_tbs", "TDP": "gpu_tdp_w",
          "idle power": "gpu_idle_w"}
SPEC_SLACK = 0.05  # a GPU's figures within 5% of the trained ones are inside the domain


@dataclass
class TrainingDomain:
    """What the training rows covered: GPU types and their figures, precisions, pipeline schedules,
    and the range of each numeric input. A prediction outside it is an extrapolation and says so."""

    gpus: list[str] = field(default_factory=list)
    precisions: list[str] = field(default_factory=list)
    schedules: list[str] = field(default_factory=list)
    ranges: dict[str, list[float]] = field(default_factory=dict)
    specs: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, df: pd.DataFrame, f) -> "TrainingDomain":
        ranges = {k: [float(df[c].min()), float(df[c].max())] for k, c in _RANGES.items() if c in df}
        specs = {k: [float(df[c].min()), float(df[c].max())] for k, c in _SPECS.items() if c in df}
        return cls(gpus=sorted(map(str, pd.unique(df["gpu"]))) if "gpu" in df else [],
                   precisions=sorted({str(p) for p in df.get("precision", pd.Series(["bf16"])).fillna("bf16")}),
                   schedules=sorted({"sequential" if s else "microbatch" for s in (f.microbatches < np.minimum(f.batch, f.pp))
                                     [f.pp > 1]}),
                   ranges=ranges, specs=specs)

    def union(self, other: "TrainingDomain") -> "TrainingDomain":
        """The domain of two sets of training rows together (a recalibration: the base model's rows set the
        structure and the coefficients it keeps, the user's rows the ones it refits)."""
        def span(a: dict, b: dict) -> dict:
            return {k: [min(a[k][0], b[k][0]), max(a[k][1], b[k][1])] if k in a and k in b else list(a.get(k, b.get(k)))
                    for k in {**a, **b}}

        return TrainingDomain(sorted({*self.gpus, *other.gpus}), sorted({*self.precisions, *other.precisions}),
                              sorted({*self.schedules, *other.schedules}), span(self.ranges, other.ranges),
                              span(self.specs, other.specs))

    def flags(self, df: pd.DataFrame, f) -> list[str]:
        """Per row, '' inside the domain, else why the prediction extrapolates (reasons joined by '; '). Each reason
        is worded once per distinct offending value, so a large table costs a few array passes."""
        n = len(df)
        columns, words = [], []  # per reason: a code per row (-1: none) and the text of each code

        def add(mask, values, word):
            """A reason for the rows of `mask`, worded once per distinct value of `values` there."""
            if not mask.any():
                return
            codes, uniques = pd.factorize(pd.Series(values)[mask], sort=False)
            col = np.full(n, -1, dtype=np.int64)
            col[mask] = codes
            columns.append(col)
            words.append([word(u) for u in uniques])

        names = df["gpu"].astype(str).to_numpy() if "gpu" in df else np.full(n, "")
        unseen = ~np.isin(names, self.gpus) if self.gpus and "gpu" in df else np.zeros(n, bool)
        if unseen.any():  # an unseen GPU's figures, worded once per GPU name
            codes, gpus = pd.factorize(pd.Series(names))
            first = pd.Series(np.arange(n)).groupby(codes).first().to_numpy()
            for label, col in _SPECS.items():
                if col in df and label in self.specs:
                    lo, hi = self.specs[label]
                    v = df[col].to_numpy(float)[first]
                    outside = {g: x for g, x in zip(gpus, v) if not lo * (1 - SPEC_SLACK) <= x <= hi * (1 + SPEC_SLACK)}
                    add(unseen & np.isin(names, list(outside)), names,
                        lambda g, label=label, lo=lo, hi=hi, outside=outside: f"GPU {g} {label} {outside[g]:.4g} outside "
                                                                              f"the trained {lo:.4g}-{hi:.4g}")
        add(unseen, names, lambda g: f"GPU {g} not among the trained ({', '.join(self.gpus)})")
        if self.precisions and "precision" in df:
            p = df["precision"].fillna("bf16").astype(str).to_numpy()
            add(~np.isin(p, self.precisions), p, lambda x: f"precision {x} not trained")
        for label, col in _RANGES.items():
            if col in df and label in self.ranges:
                lo, hi = self.ranges[label]
                v = df[col].to_numpy(float)
                add((v < lo) | (v > hi), v, lambda x, label=label, lo=lo, hi=hi: f"{label} {x:g} outside the trained "
                                                                                 f"{lo:g}-{hi:g}")
        if f is not None:
            seq = (f.pp > 1) & (f.microbatches < np.minimum(f.batch, f.pp))
            pipelined = f.pp > 1
            for kind, mask in (("sequential", seq), ("microbatch", pipelined & ~seq)):
                if kind not in self.schedules:
                    add(mask, np.full(n, kind), lambda k: f"pipeline schedule {k} not trained")
        if not columns:
            return [""] * n
        key = np.zeros(n, dtype=np.int64)  # the reasons of a row as one number, renumbered after each reason
        for col, w in zip(columns, words):
            key = pd.factorize(key * (len(w) + 1) + (col + 1))[0].astype(np.int64)
        inverse, first = key, pd.Series(np.arange(n)).groupby(key).first().to_numpy()
        texts = ["; ".join(w[col[i]] for col, w in zip(columns, words) if col[i] >= 0) for i in first]
        return np.array(texts, dtype=object)[inverse].tolist()

    def to_dict(self) -> dict:
        return {"gpus": self.gpus, "precisions": self.precisions, "schedules": self.schedules, "ranges": self.ranges,
                "specs": self.specs}

    @classmethod
    def from_dict(cls, d) -> "TrainingDomain":
        if not isinstance(d, dict):
            return cls()
        text = lambda v: [str(x) for x in v] if isinstance(v, list) else []
        rng = lambda v: {str(k): [float(a), float(b)] for k, (a, b) in v.items()} if isinstance(v, dict) else {}
        try:
            return cls(text(d.get("gpus")), text(d.get("precisions")), text(d.get("schedules")), rng(d.get("ranges")),
                       rng(d.get("specs")))
        except (TypeError, ValueError):
            return cls()


@dataclass
class FittedModel:
    structure: Structure
    shared: CoefficientSet
    engines: dict[str, CoefficientSet] = field(default_factory=dict)
    engine_column: str | None = None
    domain: TrainingDomain = field(default_factory=TrainingDomain)
    cv: dict = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    train_metrics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    n_train: int = 0
