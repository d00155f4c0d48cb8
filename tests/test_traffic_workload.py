"""Workloads of the traffic package: Poisson generation, trace readers, and their one-line errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energylens.errors import DataError, EnergyLensError
from energylens.traffic import Workload, poisson, read_trace
from energylens.traffic.workload import AZURE_HEADER, PLAIN_HEADER, TRACE_FORMATS


def write(tmp_path, text, name="trace.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def one_line_error(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------------------------------------ readers


def test_azure_trace_is_read_with_the_origin_at_the_first_arrival(tmp_path):
    p = write(tmp_path, "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                        "2023-11-16 18:15:46.6805900,374,44\n"
                        "2023-11-16 18:15:50.9951690,396,109\n"
                        "2023-11-16 18:16:00.0000000,10,1\n")
    w = read_trace(p)
    assert w.arrival_s.tolist() == pytest.approx([0.0, 4.314579, 13.31941])
    assert w.prompt_tokens.tolist() == [374, 396, 10]
    assert w.output_tokens.tolist() == [44, 109, 1]
    assert w.offered_rate == pytest.approx(2 / 13.31941)


def test_plain_trace_and_rate_scale(tmp_path):
    p = write(tmp_path, "arrival_s,prompt_tokens,output_tokens\n100.5,10,5\n101.5,20,6\n\n104.5,30,7\n")
    w = read_trace(p, rate_scale=2)
    assert w.arrival_s.tolist() == [0.0, 0.5, 2.0]
    assert w.prompt_tokens.tolist() == [10, 20, 30] and w.output_tokens.tolist() == [5, 6, 7]
    assert read_trace(p).scaled(2).arrival_s.tolist() == w.arrival_s.tolist()


def test_real_azure_traces_match_their_readme(data_dir):
    folder = data_dir / "azure-llm-trace-2023"
    if not folder.is_dir():
        pytest.skip("azure-llm-trace-2023 not in the data folder")
    conv = read_trace(folder / "AzureLLMInferenceTrace_conv.csv")
    code = read_trace(folder / "AzureLLMInferenceTrace_code.csv")
    assert (len(conv), len(code)) == (19_366, 8_819)  # the README's counts
    assert conv.offered_rate == pytest.approx(5.53, abs=0.01) and code.offered_rate == pytest.approx(2.57, abs=0.01)
    assert conv.prompt_tokens.mean() == pytest.approx(1155, abs=1) and conv.output_tokens.mean() == pytest.approx(211, abs=1)


@pytest.mark.parametrize("body, message", [
    ("", "empty file; expected the header TIMESTAMP,ContextTokens,GeneratedTokens or arrival_s,prompt_tokens,output_tokens"),
    ("arrival_s,prompt_tokens,output_tokens\n", "the trace has no requests (only a header)"),
    ("time,in,out\n1,2,3\n", "unknown header 'time,in,out'; expected TIMESTAMP,ContextTokens,GeneratedTokens or "
                             "arrival_s,prompt_tokens,output_tokens"),
    ("arrival_s,prompt_tokens,output_tokens\n1,10,5\n0.5,10,5\n",
     "row 2, column 'arrival_s': 0.5 is an arrival time earlier than the row before (1); sort the trace by arrival time"),
    ("arrival_s,prompt_tokens,output_tokens\n1,10,5\n1,10,5\n",
     "row 2, column 'arrival_s': 1 is the same arrival time as the row before (duplicate timestamp)"),
    ("arrival_s,prompt_tokens,output_tokens\n1,10,5\n2,-3,5\n",
     "row 2, column 'prompt_tokens': expected a whole number of tokens from 1 to 10,000,000, got -3"),
    ("arrival_s,prompt_tokens,output_tokens\n1,10,0\n",
     "row 1, column 'output_tokens': expected a whole number of tokens from 1 to 10,000,000, got 0"),
    ("arrival_s,prompt_tokens,output_tokens\n1,10.5,5\n",
     "row 1, column 'prompt_tokens': expected a whole number of tokens from 1 to 10,000,000, got '10.5'"),
    ("arrival_s,prompt_tokens,output_tokens\nnan,10,5\n",
     "row 1, column 'arrival_s': expected an arrival time in seconds, got 'nan'"),
    ("arrival_s,prompt_tokens,output_tokens\n1,10\n", "row 1: expected 3 fields (arrival_s,prompt_tokens,output_tokens), got 2"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\nyesterday,1,1\n",
     "row 2, column 'TIMESTAMP': expected a timestamp YYYY-MM-DD HH:MM:SS.fffffff, got 'yesterday'"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:46.6805900,3,4\n",
     "row 2, column 'TIMESTAMP': 2023-11-16 18:15:46.6805900 is the same arrival time as the row before "
     "(duplicate timestamp)"),
])
def test_bad_traces_get_one_line_naming_file_row_and_column(tmp_path, body, message):
    p = write(tmp_path, body)
    with pytest.raises(DataError) as e:
        read_trace(p)
    assert one_line_error(e) == (f"{p}, {message}" if message.startswith("row") else f"{p}: {message}")


def test_blank_lines_do_not_shift_row_numbers(tmp_path):
    p = write(tmp_path, "arrival_s,prompt_tokens,output_tokens\n1,10,5\n\n2,x,5\n")
    with pytest.raises(DataError, match=r", row 3, column 'prompt_tokens': .* got 'x'$"):
        read_trace(p)


def test_unreadable_file_is_one_line(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError) as e:
        read_trace(missing)
    assert one_line_error(e) == f"{missing}: cannot read the trace: No such file or directory"
    with pytest.raises(DataError) as e:
        read_trace(tmp_path)  # a folder
    assert one_line_error(e).startswith(f"{tmp_path}: cannot read the trace: ")
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match="cannot read the trace"):
        read_trace(binary)


@pytest.mark.parametrize("k, shown", [(0, "0"), (-1, "-1"), (math.nan, "nan"), (math.inf, "inf"), ("x", "'x'")])
def test_rate_scale_must_be_positive(tmp_path, k, shown):
    p = write(tmp_path, "arrival_s,prompt_tokens,output_tokens\n1,10,5\n")
    with pytest.raises(EnergyLensError) as e:
        read_trace(p, rate_scale=k)
    assert one_line_error(e) == f"rate_scale: expected a speed-up factor > 0, got {shown}"


def test_trace_formats_are_the_two_headers():
    assert TRACE_FORMATS == {"azure": AZURE_HEADER, "plain": PLAIN_HEADER}


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=30),
       lengths=st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 10**5)), min_size=31, max_size=31),
       k=st.floats(0.01, 100))
def test_plain_trace_round_trips(tmp_path_factory, gaps, lengths, k):
    t = np.concatenate([[5.0], 5.0 + np.cumsum(gaps)])
    t = np.unique(t)  # gaps this small can round to one float: keep distinct times
    rows = [f"{float(x)!r},{lengths[i][0]},{lengths[i][1]}" for i, x in enumerate(t)]
    p = tmp_path_factory.mktemp("t") / "t.csv"
    p.write_text("arrival_s,prompt_tokens,output_tokens\n" + "\n".join(rows) + "\n")
    w = read_trace(p, rate_scale=k)
    assert len(w) == len(t)
    np.testing.assert_allclose(w.arrival_s, (t - t[0]) / k, rtol=1e-12, atol=1e-12)
    assert w.prompt_tokens.tolist() == [lengths[i][0] for i in range(len(t))]
    assert (np.diff(w.arrival_s) >= 0).all()


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_reads_or_fails_with_one_data_error(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("t") / "t.csv"
    p.write_text("arrival_s,prompt_tokens,output_tokens\n" + text)
    try:
        w = read_trace(p)
    except DataError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(p))
    else:
        assert len(w) >= 1 and (w.prompt_tokens >= 1).all() and (np.diff(w.arrival_s) > 0).all()


# ------------------------------------------------------------------------------------------------ generated


def test_poisson_is_seeded_and_has_the_stated_means():
    a = poisson(4.0, input_tokens=1000, output_tokens=200, requests=20_000, seed=3)
    b = poisson(4.0, input_tokens=1000, output_tokens=200, requests=20_000, seed=3)
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.prompt_tokens, b.prompt_tokens)
    assert a.offered_rate == pytest.approx(4.0, rel=0.03)
    assert a.prompt_tokens.mean() == pytest.approx(1000, rel=0.05)
    assert a.output_tokens.mean() == pytest.approx(200, rel=0.05)
    assert np.std(np.log(a.output_tokens)) == pytest.approx(1.0, abs=0.05)  # the stated spread
    gaps = np.diff(a.arrival_s)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(1.0, abs=0.05)  # exponential gaps


def test_poisson_at_two_rates_gives_the_same_requests_faster():
    slow = poisson(1.0, input_tokens=100, output_tokens=10, requests=50, seed=1)
    fast = poisson(5.0, input_tokens=100, output_tokens=10, requests=50, seed=1)
    np.testing.assert_allclose(fast.arrival_s * 5, slow.arrival_s, rtol=1e-12)
    assert np.array_equal(fast.prompt_tokens, slow.prompt_tokens)


def test_poisson_by_duration_and_without_spread():
    w = poisson(10.0, input_tokens=7.4, output_tokens=3, duration_s=100, spread=0)
    assert w.arrival_s.max() <= 100 and len(w) == pytest.approx(1000, rel=0.15)
    assert set(w.prompt_tokens.tolist()) == {7} and set(w.output_tokens.tolist()) == {3}


@pytest.mark.parametrize("kwargs, message", [
    ({"rate": 0}, "rate: expected requests per second > 0, got 0"),
    ({"rate": math.nan}, "rate: expected requests per second > 0, got nan"),
    ({"rate": -2.0}, "rate: expected requests per second > 0, got -2.0"),
    ({"input_tokens": 0}, "input_tokens: expected a mean prompt length in tokens > 0, got 0"),
    ({"output_tokens": math.inf}, "output_tokens: expected a mean output length in tokens > 0, got inf"),
    ({"spread": -1}, "spread: expected a log-length standard deviation from 0 to 5, got -1"),
    ({"requests": 0}, "requests: expected a whole number from 1 to 20,000,000, got 0"),
    ({"requests": 2.5}, "requests: expected a whole number from 1 to 20,000,000, got 2.5"),
    ({"requests": None}, "poisson: give either requests or duration_s"),
])
def test_poisson_rejects_bad_parameters_in_one_line(kwargs, message):
    args = {"rate": 1.0, "input_tokens": 100, "output_tokens": 10, "requests": 10} | kwargs
    rate = args.pop("rate")
    with pytest.raises(EnergyLensError) as e:
        poisson(rate, **args)
    assert one_line_error(e) == message


def test_workload_checks_its_arrays():
    with pytest.raises(EnergyLensError, match=r"^arrival_s must not decrease: arrival_s\[1\] = 0 comes before"):
        Workload([1.0, 0.0], [1, 1], [1, 1])
    with pytest.raises(EnergyLensError, match=r"^prompt_tokens\[1\] must be a whole number from 1"):
        Workload([0.0, 1.0], [1, -1], [1, 1])
    with pytest.raises(EnergyLensError, match="at least one request"):
        Workload([], [], [])
    w = Workload([0.0, 1.0, 3.0], [1, 2, 3], [4, 5, 6])
    assert w.head(2).arrival_s.tolist() == [0.0, 1.0] and w.offered_rate == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        w.arrival_s[0] = 5.0  # read-only: a result cannot be changed behind the workload's back


@settings(max_examples=60, deadline=None)
@given(rate=st.floats(1e-3, 1e4), mean_in=st.floats(1, 1e5), mean_out=st.floats(1, 1e4), spread=st.floats(0, 3),
       n=st.integers(1, 500), seed=st.integers(0, 2**32 - 1))
def test_poisson_workloads_are_valid_for_any_parameters(rate, mean_in, mean_out, spread, n, seed):
    w = poisson(rate, input_tokens=mean_in, output_tokens=mean_out, requests=n, spread=spread, seed=seed)
    assert len(w) == n and (np.diff(w.arrival_s) >= 0).all() and w.arrival_s[0] > 0
    assert w.prompt_tokens.dtype == np.int64 and (w.prompt_tokens >= 1).all() and (w.output_tokens >= 1).all()
    assert "(generated)" in w.source
