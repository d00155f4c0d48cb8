"""Requests to serve: arrival times with prompt and output lengths, generated or read from a trace.

A `Workload` is three aligned arrays (arrival time in seconds from the workload's origin, prompt
tokens, output tokens), sorted by arrival. It comes from

- `poisson(rate, ...)`: Poisson arrivals (exponential gaps of mean 1/rate, seeded) with lognormal
  prompt and output lengths of the given means: log-length ~ Normal(ln(mean) - spread^2/2, spread),
  so the mean of the continuous draw is the given mean; each draw is rounded to the nearest whole
  token and at least 1 (this moves the mean of short lengths up slightly). The default spread, 1.0,
  is a round number; the Azure 2023 traces have log-length standard deviations of 0.85 to 1.36.
  `spread=0` gives every request the mean lengths (rounded).
- `read_trace(path, rate_scale=K)`: the Azure LLM inference trace format
  (`TIMESTAMP,ContextTokens,GeneratedTokens`, timestamps `YYYY-MM-DD HH:MM:SS.fffffff`) or a plain
  CSV with the header `arrival_s,prompt_tokens,output_tokens` (seconds, any origin). The origin is
  moved to the first arrival; K > 1 replays the trace K times faster (every gap divided by K).

Bad input raises `DataError` (a file: its path, the 1-based data row and the column) or
`EnergyLensError` (a parameter: its name), each one line.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, EnergyLensError
from ..io import clip

LENGTH_SPREAD = 1.0  # standard deviation of log-length (round number; Azure 2023: 0.85 to 1.36)
MAX_REQUESTS = 20_000_000  # a generated or read workload larger than this is refused (memory)
MAX_TOKENS = 10_000_000  # longest prompt or output accepted (a sanity bound, not a model limit)

# The trace formats: name -> header (one source for the reader and its messages).
AZURE_HEADER = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
PLAIN_HEADER = ("arrival_s", "prompt_tokens", "output_tokens")
TRACE_FORMATS = {"azure": AZURE_HEADER, "plain": PLAIN_HEADER}


@dataclass(frozen=True, eq=False)
class Workload:
    """Requests in arrival order: `arrival_s` (float seconds), `prompt_tokens` and `output_tokens` (int >= 1)."""

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    source: str = "workload"

    def __post_init__(self):
        a = np.array(self.arrival_s, dtype=float)
        p = _whole(self.prompt_tokens, "prompt_tokens")
        o = _whole(self.output_tokens, "output_tokens")
        if a.ndim != 1 or not (len(a) == len(p) == len(o)):
            raise EnergyLensError("arrival_s, prompt_tokens and output_tokens must be 1-D arrays of one length, "
                                  f"got {a.shape}, {p.shape} and {o.shape}")
        if len(a) == 0:
            raise EnergyLensError("a workload needs at least one request")
        if len(a) > MAX_REQUESTS:
            raise EnergyLensError(f"a workload holds at most {MAX_REQUESTS:,} requests, got {len(a):,}")
        if not np.isfinite(a).all():
            raise EnergyLensError(f"arrival_s[{int(np.flatnonzero(~np.isfinite(a))[0])}] is not a finite number")
        back = np.flatnonzero(np.diff(a) < 0)
        if back.size:
            raise EnergyLensError(f"arrival_s must not decrease: arrival_s[{back[0] + 1}] = {a[back[0] + 1]:g} "
                                  f"comes before arrival_s[{back[0]}] = {a[back[0]]:g}")
        for name, x in (("prompt_tokens", p), ("output_tokens", o)):
            bad = np.flatnonzero((x < 1) | (x > MAX_TOKENS))
            if bad.size:
                raise EnergyLensError(f"{name}[{bad[0]}] must be a whole number from 1 to {MAX_TOKENS:,}, "
                                      f"got {x[bad[0]]}")
        for name, x in (("arrival_s", a), ("prompt_tokens", p), ("output_tokens", o)):
            x.setflags(write=False)
            object.__setattr__(self, name, x)

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def span_s(self) -> float:
        """Time from the first to the last arrival."""
        return float(self.arrival_s[-1] - self.arrival_s[0])

    @property
    def offered_rate(self) -> float:
        """Mean arrival rate (requests/s) between the first and last arrival: (n - 1) / span; inf for a
        burst (every request at one time) and 0 for a single request."""
        if len(self) < 2:
            return 0.0
        return (len(self) - 1) / self.span_s if self.span_s > 0 else math.inf

    def scaled(self, rate_scale: float) -> "Workload":
        """The same requests arriving `rate_scale` times faster (every arrival time divided by it)."""
        k = _positive(rate_scale, "rate_scale", "a speed-up factor")
        return Workload(self.arrival_s / k, self.prompt_tokens, self.output_tokens,
                        self.source if k == 1 else f"{self.source} x{k:g}")

    def head(self, n: int) -> "Workload":
        """The first `n` requests."""
        return Workload(self.arrival_s[:n], self.prompt_tokens[:n], self.output_tokens[:n], self.source)


def _whole(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    f = np.asarray(arr, dtype=float)
    bad = np.flatnonzero(~np.isfinite(f) | (f != np.round(f)))
    if bad.size:
        raise EnergyLensError(f"{name}[{bad[0]}] must be a whole number, got {f.flat[bad[0]]:g}")
    return f.astype(np.int64)


def _positive(value, name: str, what: str) -> float:
    """A finite number > 0, or an EnergyLensError naming the parameter."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise EnergyLensError(f"{name}: expected {what} > 0, got {clip(repr(value))}") from None
    if not (math.isfinite(x) and x > 0):
        raise EnergyLensError(f"{name}: expected {what} > 0, got {clip(value)}")
    return x


# ------------------------------------------------------------------------------------------------ generated


def lognormal_lengths(rng: np.random.Generator, mean: float, spread: float, n: int) -> np.ndarray:
    """`n` whole token counts >= 1: lognormal of mean `mean` and log-standard deviation `spread`, rounded."""
    if spread == 0:
        return np.full(n, max(1, round(mean)), dtype=np.int64)
    draw = rng.lognormal(math.log(mean) - spread * spread / 2.0, spread, n)
    return np.clip(np.rint(draw), 1, MAX_TOKENS).astype(np.int64)


def poisson(rate: float, *, input_tokens: float, output_tokens: float, requests: int | None = None,
            duration_s: float | None = None, spread: float = LENGTH_SPREAD, output_spread: float | None = None,
            seed: int = 0) -> Workload:
    """Poisson arrivals at `rate` requests/s: `requests` of them, or those in the first `duration_s` seconds.

    Prompt and output lengths are lognormal with means `input_tokens` and `output_tokens` and log-standard
    deviation `spread` (`output_spread` for outputs when given), rounded to whole tokens >= 1. The gaps are
    drawn first (standard exponentials divided by the rate), then the prompt lengths, then the output
    lengths, from one generator seeded with `seed`: the same seed and request count at two rates give the
    same requests, one arriving faster.
    """
    rate = _positive(rate, "rate", "requests per second")
    mean_in = _positive(input_tokens, "input_tokens", "a mean prompt length in tokens")
    mean_out = _positive(output_tokens, "output_tokens", "a mean output length in tokens")
    sd_in = _spread(spread, "spread")
    sd_out = sd_in if output_spread is None else _spread(output_spread, "output_spread")
    if (requests is None) == (duration_s is None):
        raise EnergyLensError("poisson: give either requests or duration_s")
    rng = np.random.default_rng(seed)
    if requests is not None:
        n = _count(requests)
        gaps = rng.standard_exponential(n) / rate
        arrival = np.cumsum(gaps)
    else:
        horizon = _positive(duration_s, "duration_s", "seconds")
        expected = rate * horizon
        if expected > MAX_REQUESTS:
            raise EnergyLensError(f"rate x duration_s = {expected:,.0f} requests; at most {MAX_REQUESTS:,}")
        parts, t = [], 0.0
        while t <= horizon:  # draw gaps in blocks until the horizon is passed
            block = np.cumsum(rng.standard_exponential(int(expected + 5 * math.sqrt(expected) + 16)) / rate) + t
            parts.append(block)
            t = float(block[-1])
        arrival = np.concatenate(parts)
        arrival = arrival[arrival <= horizon]
        n = len(arrival)
        if n == 0:
            raise EnergyLensError(f"no request arrives within duration_s = {horizon:g} s at rate {rate:g}/s; "
                                  "give a longer duration or a higher rate")
    prompt = lognormal_lengths(rng, mean_in, sd_in, n)
    output = lognormal_lengths(rng, mean_out, sd_out, n)
    return Workload(arrival, prompt, output, f"poisson {rate:g}/s, {mean_in:g}/{mean_out:g} tokens (generated)")


def _spread(value, name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not (math.isfinite(x) and 0 <= x <= 5):
        raise EnergyLensError(f"{name}: expected a log-length standard deviation from 0 to 5, got {clip(value)}")
    return x


def _count(value) -> int:
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not (math.isfinite(x) and x.is_integer() and 1 <= x <= MAX_REQUESTS):
        raise EnergyLensError(f"requests: expected a whole number from 1 to {MAX_REQUESTS:,}, got {clip(value)}")
    return int(x)


# ------------------------------------------------------------------------------------------------ traces


def read_trace(path, rate_scale: float = 1.0) -> Workload:
    """A trace file (Azure or plain format, told by its header) as a Workload, `rate_scale` times faster."""
    k = _positive(rate_scale, "rate_scale", "a speed-up factor")
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise DataError(f"cannot read the trace: {clip(reason, 120)}", path=path) from None
    expected = " or ".join(",".join(h) for h in TRACE_FORMATS.values())
    if not rows:
        raise DataError(f"empty file; expected the header {expected}", path=path)
    header = tuple(c.strip() for c in rows[0])
    fmt = next((name for name, h in TRACE_FORMATS.items() if header == h), None)
    if fmt is None:
        raise DataError(f"unknown header {clip(','.join(rows[0]))!r}; expected {expected}", path=path)
    names = TRACE_FORMATS[fmt]
    # Blank lines (csv gives []) carry no request; trailing ones are common.
    numbered = [(i, r) for i, r in enumerate(rows[1:], start=1) if r and any(c.strip() for c in r)]
    if not numbered:
        raise DataError("the trace has no requests (only a header)", path=path)
    for i, r in numbered:
        if len(r) != 3:
            raise DataError(f"expected 3 fields ({','.join(names)}), got {len(r)}", path=path, row=i)
    row_no = np.array([i for i, _ in numbered])
    times = [r[0].strip() for _, r in numbered]
    t = _azure_times(times, path, row_no, names[0]) if fmt == "azure" else _seconds(times, path, row_no, names[0])
    prompt = _tokens([r[1] for _, r in numbered], path, row_no, names[1])
    output = _tokens([r[2] for _, r in numbered], path, row_no, names[2])
    gaps = np.diff(t)
    bad = np.flatnonzero(gaps <= 0)
    if bad.size:
        j = bad[0] + 1
        what = ("the same arrival time as the row before (duplicate timestamp)" if gaps[bad[0]] == 0
                else f"an arrival time earlier than the row before ({times[j - 1]}); sort the trace by arrival time")
        raise DataError(f"{clip(times[j])} is {what}", path=path, row=int(row_no[j]), column=names[0])
    seconds = (t - t[0]) / 1e9 if fmt == "azure" else t - t[0]
    if len(seconds) > MAX_REQUESTS:
        raise DataError(f"the trace holds {len(seconds):,} requests; at most {MAX_REQUESTS:,}", path=path)
    source = f"{path.name}" + ("" if k == 1 else f" x{k:g}")
    return Workload(seconds / k, prompt, output, source)


def _azure_times(values, path, row_no, column) -> np.ndarray:
    """Timestamps as integer nanoseconds (exact: duplicates are told apart from near-duplicates)."""
    try:
        return np.array(values, dtype="datetime64[ns]").astype(np.int64)
    except (ValueError, OverflowError):
        for i, v in enumerate(values):
            try:
                np.datetime64(v, "ns")
                ok = bool(v)
            except (ValueError, OverflowError):
                ok = False
            if not ok:
                raise DataError(f"expected a timestamp YYYY-MM-DD HH:MM:SS.fffffff, got {clip(v)!r}",
                                path=path, row=int(row_no[i]), column=column) from None
        raise


def _seconds(values, path, row_no, column) -> np.ndarray:
    out = np.empty(len(values))
    for i, v in enumerate(values):
        try:
            x = float(v)
        except ValueError:
            x = math.nan
        if not math.isfinite(x):
            raise DataError(f"expected an arrival time in seconds, got {clip(v)!r}", path=path,
                            row=int(row_no[i]), column=column)
        out[i] = x
    return out


def _tokens(values, path, row_no, column) -> np.ndarray:
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        s = v.strip()
        try:
            x = int(s)
        except ValueError:
            try:
                f = float(s)
                x = int(f) if math.isfinite(f) and f.is_integer() else None
            except (ValueError, OverflowError):
                x = None
        if x is None or not 1 <= x <= MAX_TOKENS:
            shown = repr(clip(v)) if x is None else f"{x:,}"
            raise DataError(f"expected a whole number of tokens from 1 to {MAX_TOKENS:,}, got {shown}", path=path,
                            row=int(row_no[i]), column=column)
        out[i] = x
    return out
