import csv

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from energylens.data.schema import load_profiles, validate
from energylens.errors import DataError


def _write(tmp_path, df, name="bad.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_valid_rows_fill_descriptors(good_rows):
    out = validate(good_rows)
    assert out["gpu"].unique().tolist() == ["H100-SXM"]
    assert out["gpu_mem_bw_tbs"].iloc[0] == pytest.approx(3.35)
    assert out["params_total_b"].iloc[0] == pytest.approx(8.03)
    assert out["ep"].tolist() == [1] * 5 and out["dp"].tolist() == [1] * 5


def test_given_descriptors_are_kept(good_rows):
    good_rows["gpu_mem_bw_tbs"] = 9.9
    assert validate(good_rows)["gpu_mem_bw_tbs"].iloc[0] == 9.9


@pytest.mark.parametrize("change, column, expected", [
    (lambda d: d.assign(energy_request_j=[-1.0, 1, 1, 1, 1]), "energy_request_j", "> 0"),
    (lambda d: d.assign(tp=[0, 1, 1, 1, 1]), "tp", ">= 1"),
    (lambda d: d.assign(tp=[2, 1, 1, 1, 1], pp=[2, 1, 1, 1, 1]), "num_gpus", "exceeds num_gpus"),
    (lambda d: d.assign(batch_size=["many", 1, 1, 1, 1]), "batch_size", "expected a number"),
    (lambda d: d.assign(tp=[1.5, 1, 1, 1, 1], num_gpus=2), "tp", "whole number"),
    (lambda d: d.assign(gpu=["Z9000", "H100", "H100", "H100", "H100"]), "gpu", "unknown GPU"),
    (lambda d: d.assign(model=["no/such-model", *["meta-llama/Llama-3.1-8B"] * 4]), "model", "unknown model"),
    (lambda d: d.assign(ep=[2, 1, 1, 1, 1], num_gpus=2), "ep", "mixture-of-experts"),
    (lambda d: d.assign(ep=[3, 1, 1, 1, 1], num_gpus=4), "ep", "divide"),
    (lambda d: d.assign(precision=["fp7", "bf16", "bf16", "bf16", "bf16"]), "precision", "one of"),
])
def test_violations_name_file_row_column(tmp_path, good_rows, change, column, expected):
    path = _write(tmp_path, change(good_rows))
    with pytest.raises(DataError) as exc:
        load_profiles(path)
    msg = str(exc.value)
    assert str(path) in msg and "row 1" in msg and f"column '{column}'" in msg and expected in msg
    assert "\n" not in msg


def test_missing_column(tmp_path, good_rows):
    with pytest.raises(DataError, match="column 'model'.*missing required column"):
        load_profiles(_write(tmp_path, good_rows.drop(columns="model")))


def test_no_energy_column(tmp_path, good_rows):
    with pytest.raises(DataError, match="no energy column"):
        load_profiles(_write(tmp_path, good_rows.drop(columns="energy_request_j")))
    assert len(load_profiles(_write(tmp_path, good_rows.drop(columns="energy_request_j")), require_energy=False)) == 5


def test_empty_file(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_profiles(p)


def test_header_only(tmp_path, good_rows):
    p = _write(tmp_path, good_rows.iloc[:0])
    with pytest.raises(DataError, match="no data rows"):
        load_profiles(p)


def test_parquet_round_trip(tmp_path, good_rows):
    from energylens.io import read_table, write_table

    p = tmp_path / "rows.parquet"
    write_table(validate(good_rows), p)
    back = read_table(p)
    assert len(back) == 5 and back["energy_request_j"].tolist() == good_rows["energy_request_j"].tolist()


@pytest.mark.parametrize("name", ["NVIDIA H100 80GB HBM3", "H100 80GB HBM3", "h100-sxm", "NVIDIA H200", "H200"])
def test_gpu_names_resolve(good_rows, name):
    out = validate(good_rows.assign(gpu=name))
    assert out["gpu"].iloc[0] in ("H100-SXM", "H200")


def test_h200_catalog_figures():
    from energylens.catalog import hardware_catalog

    h200 = hardware_catalog().get("NVIDIA H200")
    assert (h200.mem_gb, h200.mem_bw_tbs) == (141, 4.8)


row_strategy = st.fixed_dictionaries({
    "tp": st.sampled_from([1, 2, 4]), "pp": st.sampled_from([1, 2]),
    "batch_size": st.integers(1, 4096),
    "input_tokens": st.floats(0, 1e5, allow_nan=False), "output_tokens": st.floats(0.5, 1e5, allow_nan=False),
    "energy_request_j": st.floats(1e-6, 1e7, allow_nan=False),
})


@settings(max_examples=40, deadline=None)
@given(st.lists(row_strategy, min_size=1, max_size=6))
def test_valid_rows_round_trip_through_csv(tmp_path_factory, rows):
    df = pd.DataFrame(rows)
    df.insert(0, "model", "meta-llama/Llama-3.1-70B")
    df.insert(1, "gpu", "A100")
    df["num_gpus"] = df["tp"] * df["pp"]
    path = tmp_path_factory.mktemp("h") / "rows.csv"
    df.to_csv(path, index=False)
    out = load_profiles(path)
    assert len(out) == len(df)
    np.testing.assert_allclose(out["energy_request_j"], df["energy_request_j"], rtol=1e-12)
    assert (out["num_gpus"] >= out["tp"] * out["pp"]).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=8).filter(lambda s: s.strip() and not _is_number(s)))
def test_any_text_in_a_numeric_column_is_one_line_error(tmp_path_factory, run_cli, text):
    from conftest import config_rows

    bad = config_rows(5).assign(energy_request_j=1.0).astype({"output_tokens": object})
    bad.loc[2, "output_tokens"] = text
    with pytest.raises(DataError) as exc:
        validate(bad)
    msg = str(exc.value)
    assert "row 3" in msg and "column 'output_tokens'" in msg and len(msg.splitlines()) == 1 and "\n" not in msg
    # The promise itself: the CLI prints exactly one line, no traceback, and exits 2.
    path = tmp_path_factory.mktemp("text") / "rows.csv"
    bad.to_csv(path, index=False, quoting=csv.QUOTE_ALL)  # quoted: a lone "\r" stays inside its cell
    code, out = run_cli("data", "validate", path)
    assert code == 2, out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1, repr(out)
    assert "row 3" in out and "column 'output_tokens'" in out


def _is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def test_schema_doc_lists_every_column():
    from pathlib import Path

    from energylens.data.schema import schema_markdown

    doc = (Path(__file__).resolve().parents[1] / "docs" / "SCHEMA.md").read_text()
    assert schema_markdown() in doc


# --- Robustness: types, bounds, consistency and echoed text (one short line, always) ---

def _error(df, **kwargs) -> str:
    with pytest.raises(DataError) as exc:
        validate(df, **kwargs)
    msg = str(exc.value)
    assert "\n" not in msg and len(msg.splitlines()) == 1 and len(msg) < 300, repr(msg[:400])
    return msg


def test_booleans_are_not_read_as_whole_numbers(good_rows):
    one = good_rows.astype({"tp": object})
    one.loc[1, "tp"] = True
    assert "row 2, column 'tp'" in _error(one) and "boolean" in _error(one)
    whole = good_rows.assign(batch_size=[True, False, True, True, True])  # a bool column
    assert "row 1, column 'batch_size'" in _error(whole) and "boolean" in _error(whole)
    nullable = good_rows.assign(ep=pd.array([pd.NA, True, True, True, True], dtype="boolean"))
    assert "row 2, column 'ep'" in _error(nullable)


def test_booleans_in_a_csv_integer_column_are_refused(tmp_path, good_rows):
    p = tmp_path / "bool.csv"
    good_rows.assign(tp=["True", "False", "True", "True", "True"]).to_csv(p, index=False)
    assert pd.read_csv(p)["tp"].dtype == bool  # what pandas makes of it: 1 and 0 unless refused
    with pytest.raises(DataError, match=r"row 1, column 'tp': expected a number, got a boolean"):
        load_profiles(p)


def test_datetimes_are_not_read_as_numbers(tmp_path, good_rows):
    stamps = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
    msg = _error(good_rows.assign(energy_request_j=stamps))
    assert "row 1, column 'energy_request_j'" in msg and "date/time" in msg
    p = tmp_path / "stamps.parquet"
    good_rows.assign(energy_request_j=stamps).to_parquet(p, index=False)
    with pytest.raises(DataError, match=r"row 1, column 'energy_request_j': expected a number, got a date/time"):
        load_profiles(p)
    mixed = good_rows.assign(ttft_s=pd.Series([0.1, 0.1, pd.Timedelta(seconds=1), 0.1, 0.1], dtype=object))
    assert "row 3, column 'ttft_s'" in _error(mixed)


def test_every_numeric_column_has_an_upper_bound():
    from energylens.data.schema import COLUMNS

    assert all(c.maximum is not None and c.maximum > 0 for c in COLUMNS if c.kind != "str")


def _bounded():
    from energylens.data.schema import COLUMNS

    return [c for c in COLUMNS if c.kind != "str"]


@pytest.mark.parametrize("spec", _bounded(), ids=lambda c: c.name)
def test_values_above_the_upper_bound_are_refused(good_rows, spec):
    df = good_rows.copy()
    if spec.name not in df.columns:
        df[spec.name] = np.nan
    df[spec.name] = df[spec.name].astype(float)
    df.loc[1, spec.name] = spec.maximum * 10
    msg = _error(df)
    assert f"row 2, column '{spec.name}'" in msg and "upper bound" in msg


@pytest.mark.parametrize("value", [1e308, -1e308, np.inf, -np.inf, 10**400])
def test_overflow_sized_and_infinite_values_are_refused_without_warnings(good_rows, value):
    import warnings

    df = good_rows.astype({"input_tokens": object})
    df.loc[3, "input_tokens"] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # formerly ~40 overflow RuntimeWarnings and inf/nan predictions
        msg = _error(df)
    assert "row 4, column 'input_tokens'" in msg


def test_infinity_text_in_a_csv_is_refused(tmp_path, good_rows):
    p = _write(tmp_path, good_rows.astype({"energy_request_j": object}).assign(energy_request_j=[1, 2, "-inf", 4, 5]))
    with pytest.raises(DataError, match=r"row 3, column 'energy_request_j': expected a finite number"):
        load_profiles(p)


def test_values_at_the_bounds_are_accepted(good_rows):
    from energylens.data.schema import BY_NAME

    out = validate(good_rows.assign(input_tokens=BY_NAME["input_tokens"].maximum,
                                    energy_request_j=BY_NAME["energy_request_j"].maximum))
    assert out["input_tokens"].iloc[0] == 1e7 and out["energy_request_j"].iloc[0] == 1e12


def test_idle_power_above_the_power_limit_is_refused(good_rows):
    msg = _error(good_rows.assign(gpu_idle_w=[100.0, 100.0, 900.0, 100.0, 100.0]))  # H100 TDP 700 W from the catalog
    assert "row 3, column 'gpu_idle_w'" in msg and "gpu_tdp_w = 700" in msg
    msg = _error(good_rows.assign(gpu_tdp_w=300.0, gpu_idle_w=[50.0, 400.0, 50.0, 50.0, 50.0]))
    assert "row 2, column 'gpu_idle_w'" in msg and "exceeds gpu_tdp_w = 300" in msg
    assert len(validate(good_rows.assign(gpu_idle_w=700.0))) == 5  # equal is allowed


def test_prefill_plus_decode_must_match_the_request_energy(good_rows):
    split = good_rows.assign(prefill_energy_j=good_rows["energy_request_j"] * 0.2,
                             decode_energy_j=good_rows["energy_request_j"] * 0.8)
    assert len(validate(split)) == 5
    within = split.assign(decode_energy_j=split["decode_energy_j"] * 1.04)  # 3.2% off: measurement noise
    assert len(validate(within)) == 5
    off = split.copy()
    off.loc[3, "decode_energy_j"] *= 1.5  # 40% off
    msg = _error(off)
    assert "row 4, column 'energy_request_j'" in msg and "prefill_energy_j + decode_energy_j" in msg
    assert "40.0%" in msg and "within 5%" in msg
    partial = split.assign(prefill_energy_j=np.nan)  # not all three given: not checked
    assert len(validate(partial)) == 5


def test_visual_tokens_cannot_exceed_input_tokens(good_rows):
    df = good_rows.assign(modality="image", visual_tokens=good_rows["input_tokens"])
    assert len(validate(df)) == 5
    df.loc[4, "visual_tokens"] = df.loc[4, "input_tokens"] + 1
    msg = _error(df)
    assert "row 5, column 'visual_tokens'" in msg and "exceeds input_tokens" in msg


def test_long_names_and_values_are_cut_short(good_rows):
    long_model = good_rows.copy()
    long_model.loc[0, "model"] = "m" * 1_000_000
    msg = _error(long_model)
    assert "row 1, column 'model'" in msg and "m" * 60 + "…" in msg and "m" * 61 not in msg
    long_value = good_rows.astype({"batch_size": object})
    long_value.loc[2, "batch_size"] = "9" * 10 + "x" * 1_000_000
    msg = _error(long_value)
    assert "row 3, column 'batch_size'" in msg and "…" in msg
    long_precision = good_rows.assign(precision="p" * 100_000)
    assert "column 'precision'" in _error(long_precision)
    long_gpu = good_rows.copy()
    long_gpu.loc[1, "gpu"] = "G" * 5000
    assert "row 2, column 'gpu'" in _error(long_gpu)


@pytest.mark.parametrize("column, value", [
    ("model", "Llama\nerror: fake second line"), ("gpu", "H100\r\nX"), ("precision", "bf\n16"),
    ("batch_size", "12\n34"), ("modality", "te\u2028xt"), ("energy_request_j", "1\x0b2"),
])
def test_newlines_in_values_never_break_the_one_line(good_rows, column, value):
    df = good_rows.assign(**{column: good_rows[column] if column in good_rows else "x"}).astype({column: object})
    df.loc[0, column] = value
    msg = _error(df)
    assert f"row 1, column '{column}'" in msg


def test_unicode_that_cannot_be_written_is_refused(good_rows):
    df = good_rows.astype({"model": object})
    df.loc[2, "model"] = "bad\ud800name"
    msg = _error(df)
    assert "row 3, column 'model'" in msg and "\\ud800" in msg


def test_text_nan_in_a_required_column_is_an_empty_value(good_rows):
    df = good_rows.astype({"tp": object})
    df.loc[1, "tp"] = "nan"
    assert "row 2, column 'tp': empty value" in _error(df)


def test_all_empty_text_columns_in_a_csv_are_filled(tmp_path, good_rows):
    # pandas reads an all-empty column as float NaN; filling it with catalog text once raised TypeError (exit 1)
    p = _write(tmp_path, good_rows.assign(precision=None, arch=None, modality=None, task=None))
    out = load_profiles(p)
    assert out["precision"].tolist() == ["bf16"] * 5 and out["arch"].tolist() == ["dense"] * 5
