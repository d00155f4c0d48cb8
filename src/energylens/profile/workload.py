"""What the endpoint profiler sends: prompts of an asked token count, and request traces to replay.

A server tokenizes text its own way, so a prompt of N tokens is built from random common words whose
token count the server itself reports: two calibration requests (`usage.prompt_tokens` of a short and a
long prompt) give tokens = a + b x words, chat template included, and each prompt then gets
(N - a) / b words. Every prompt starts with its own number and draws its own words, so a prefix cache
cannot serve one request's prefill from another's. The row records the prompt lengths the server
reported, not the asked ones.

A trace is a CSV of requests with prompt and output token counts and, optionally, arrival times: the Azure
LLM inference trace layout (`TIMESTAMP, ContextTokens, GeneratedTokens`) or plain `input_tokens,
output_tokens[, arrival_s]` columns.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

# Short, frequent English words: one token each (with their leading space) in the BPE vocabularies of
# common model families; calibration measures the real ratio anyway.
WORDS = tuple("""the of and to in is for on that with as it at by from this be are or an was have not but
all they his her more one can will were has its their which about there out up when who time been would
so what if no into some them could other than then now only just new also any these two like may use her
over such our most see first way after made many well long down day year good work life find here both
need much each make call very back part help home show place right hand high small large think know take
come give look want keep turn start might seem point state world water house city story level light
power energy model server token value space order group number system case word end line side""".split())
CALIBRATION_WORDS = (32, 256)


@dataclass(frozen=True)
class Calibration:
    """Prompt tokens the server counts for a prompt of `words` words: intercept + slope x words."""

    intercept: float
    slope: float
    source: str  # "usage" (the server reported its counts) or "assumed" (one token per word)

    def words_for(self, tokens: float) -> int:
        return max(1, round((tokens - self.intercept) / self.slope))


def prompt_text(words: int, rng: random.Random, serial: int) -> str:
    return f"{serial} " + " ".join(rng.choice(WORDS) for _ in range(max(words - 1, 0)))


def fit_calibration(counts: list[tuple[int, float]]) -> Calibration:
    """The line through the calibration requests' (words, prompt tokens); one token per word if unusable."""
    (w1, t1), (w2, t2) = counts
    slope = (t2 - t1) / (w2 - w1)
    if not slope > 0:
        return Calibration(0.0, 1.0, "assumed")
    return Calibration(t1 - slope * w1, slope, "usage")


@dataclass(frozen=True)
class TraceRequest:
    input_tokens: int
    output_tokens: int
    arrival_s: float | None  # seconds after the trace's first request, where the trace has times


def read_trace(path, limit: int | None = None) -> list[TraceRequest]:
    """The requests of a trace CSV, in order; a DataError naming the row for a bad cell."""
    import pandas as pd

    from ..io import read_table

    path = Path(path)
    df = read_table(path)
    cols = {c.strip().lower(): c for c in df.columns}
    if "contexttokens" in cols and "generatedtokens" in cols:  # Azure LLM inference trace
        c_in, c_out, c_t = cols["contexttokens"], cols["generatedtokens"], cols.get("timestamp")
    elif "input_tokens" in cols and "output_tokens" in cols:
        c_in, c_out, c_t = cols["input_tokens"], cols["output_tokens"], cols.get("arrival_s")
    else:
        raise DataError("a trace needs columns ContextTokens and GeneratedTokens (Azure LLM trace) or input_tokens "
                        "and output_tokens", path=path)
    if limit is not None:
        df = df.head(limit)
    if df.empty:
        raise DataError("the trace has no requests", path=path)
    times = None
    if c_t is not None:
        if c_t == cols.get("timestamp"):
            # Azure writes 7 fractional digits; pandas reads them (datetime.fromisoformat would not before 3.11)
            parsed = pd.to_datetime(df[c_t], errors="coerce", format="mixed")
            bad = parsed.isna()
            if bad.any():
                i = int(bad.to_numpy().argmax())
                raise DataError(f"expected a time like 2023-11-16 18:15:46.6805900, got {str(df[c_t].iloc[i])[:30]!r}",
                                path=path, row=i + 1, column=c_t)
            times = ((parsed - parsed.iloc[0]).dt.total_seconds()).tolist()
        else:
            times = pd.to_numeric(df[c_t], errors="coerce").tolist()
    out = []
    for i, (a, b) in enumerate(zip(df[c_in].tolist(), df[c_out].tolist()), start=1):
        for col, v in ((c_in, a), (c_out, b)):
            try:
                x = float(v)
            except (TypeError, ValueError):
                x = math.nan
            if not (math.isfinite(x) and x.is_integer() and 1 <= x <= 10_000_000):
                raise DataError(f"expected a whole number of tokens >= 1, got {str(v)[:30]!r}", path=path, row=i,
                                column=col)
        t = None if times is None else times[i - 1]
        if t is not None and not math.isfinite(t):
            raise DataError("expected a number of seconds", path=path, row=i, column=c_t)
        out.append(TraceRequest(int(float(a)), int(float(b)), t))
    if times is not None and any(b.arrival_s < a.arrival_s for a, b in zip(out, out[1:])):
        raise DataError("the trace's arrival times must not go backwards", path=path, column=c_t)
    return out
