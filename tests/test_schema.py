import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

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


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=8).filter(lambda s: s.strip() and not _is_number(s)))
def test_any_text_in_a_numeric_column_is_one_line_error(text):
    from conftest import config_rows

    bad = config_rows(5).assign(energy_request_j=1.0).astype({"output_tokens": object})
    bad.loc[2, "output_tokens"] = text
    with pytest.raises(DataError) as exc:
        validate(bad)
    assert "row 3" in str(exc.value) and "output_tokens" in str(exc.value)


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
