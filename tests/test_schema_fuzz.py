"""Hostile profiling tables built from the schema's columns: `validate` returns a table within the
schema's bounds or raises one short, one-line DataError; `energylens data validate` exits 0 or 2, never 1."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import config_rows
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from energylens.data.schema import BY_NAME, COLUMNS, REQUIRED, SPLIT_TOLERANCE, validate
from energylens.errors import DataError

NUMERIC = [c for c in COLUMNS if c.kind != "str"]
NAMES = [c.name for c in COLUMNS]

# Values no column should accept as they are, mixed with ordinary ones so that some tables stay valid
# and the consistency checks (idle vs TDP, prefill + decode vs total, visual vs input) are reached.
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)  # Cs: not encodable
hostile = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 1e300, 1e13, 1.0001e12, 1e7 + 1, 2.0**63, 10**30, -(10**30), 10**400]),
    st.integers(-10, 10**6),
    st.booleans(),
    text,
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "Infinity", "True", "false", "1e308", "1e999", "\n",
                     "a\nb", "1,5", "٣", "１２", "Llama\r\n3", "H100\u2028", "model\x00", "🚀" * 3, "bf16", "fp8",
                     "dense", "moe", "image", "H100", "meta-llama/Llama-3.1-8B"]),
    st.sampled_from([100, 10_000, 1_000_000]).map(lambda n: "x" * n),
    st.sampled_from([1_000, 1_000_000]).map(lambda n: "1" * n),
    st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2100, 1, 1)),
)
plausible = st.one_of(st.floats(0.001, 5000), st.integers(1, 64))
edits = st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 3), st.one_of(hostile, plausible)),
                 min_size=1, max_size=6)


def _table(changes) -> pd.DataFrame:
    df = config_rows(4)
    df["energy_request_j"] = [10.0, 20.0, 30.0, 40.0]
    for col, row, value in changes:
        if col not in df.columns:
            df[col] = None
        df[col] = df[col].astype(object)
        df.at[row, col] = value
    return df


def _check_one_line(msg: str):
    assert "\n" not in msg and "\r" not in msg and len(msg.splitlines()) == 1, repr(msg[:400])
    assert len(msg) < 300, (len(msg), msg[:400])


def _check_within_schema(out: pd.DataFrame):
    for c in NUMERIC:
        if c.name not in out.columns:
            continue
        v = out[c.name].to_numpy(dtype=float)
        given_ = v[~np.isnan(v)]
        assert np.isfinite(given_).all(), c.name
        assert (given_ <= c.maximum).all(), c.name
        if c.positive:
            assert (given_ > 0).all(), c.name
        if c.minimum is not None:
            assert (given_ >= c.minimum).all(), c.name
    for name in REQUIRED:
        assert out[name].notna().all(), name
        if BY_NAME[name].kind == "str":
            assert all(isinstance(x, str) and x.strip() for x in out[name]), name
    assert (out["tp"] * out["pp"] * out["dp"] <= out["num_gpus"]).all()
    assert not (out["gpu_idle_w"] > out["gpu_tdp_w"]).any()
    if "visual_tokens" in out.columns:
        assert not (out["visual_tokens"] > out["input_tokens"]).any()
    if {"prefill_energy_j", "decode_energy_j"} <= set(out.columns):
        total = out["energy_request_j"]
        gap = (out["prefill_energy_j"] + out["decode_energy_j"] - total).abs() / total
        assert not (gap > SPLIT_TOLERANCE).any()


@settings(max_examples=100, deadline=None)
@given(edits)
def test_validate_returns_bounded_table_or_one_line_error(changes):
    df = _table(changes)
    try:
        out = validate(df)
    except DataError as exc:
        _check_one_line(str(exc))
        return
    _check_within_schema(out)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits)
def test_cli_validate_exits_0_or_2_with_one_line(tmp_path_factory, run_cli, changes):
    path = tmp_path_factory.mktemp("fuzz") / "rows.csv"
    _table(changes).to_csv(path, index=False)
    code, out = run_cli("data", "validate", path)
    assert code in (0, 2), out[-2000:]
    if code == 2:
        assert "Traceback" not in out and out.startswith("error: "), out[:400]
        assert len(out.strip().splitlines()) == 1, repr(out[:400])
        assert len(out) < 300 + len(str(path)), out[:400]
    else:
        assert "rows valid" in out


energy = st.floats(1e-3, 1e6)


@settings(max_examples=50, deadline=None)
@given(energy, energy, st.floats(-0.2, 0.2))
def test_prefill_plus_decode_is_checked_against_the_total_within_the_tolerance(prefill, decode, off):
    total = (prefill + decode) * (1 + off)
    gap = abs(prefill + decode - total) / total
    assume(abs(gap - SPLIT_TOLERANCE) > 1e-9)  # not on the edge, where rounding decides
    df = _table([]).assign(prefill_energy_j=prefill, decode_energy_j=decode, energy_request_j=total)
    if gap <= SPLIT_TOLERANCE:
        assert len(validate(df)) == 4
    else:
        with pytest.raises(DataError, match=r"row 1, column 'energy_request_j': prefill_energy_j \+ decode_energy_j"):
            validate(df)
