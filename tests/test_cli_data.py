"""The data commands' contract: outputs, one-line errors and exit code 2."""
import pandas as pd
import pytest


def _one_line_error(code, out):
    return code == 2 and "Traceback" not in out and len(out.strip().splitlines()) == 1


def test_version_and_help(run_cli):
    code, out = run_cli("--version")
    assert code == 0 and out.startswith("energylens ")
    for cmd in (["data", "import"], ["data", "validate"], ["data", "summary"], ["fit"], ["predict"], ["explain"],
                ["show"], ["recommend"], ["catalog"]):
        code, out = run_cli(*cmd, "--help")
        assert code == 0 and "Usage" in out, cmd


def test_catalog_lists_gpus_and_models(run_cli):
    code, out = run_cli("catalog")
    assert code == 0 and "H100-SXM" in out and "MI300X" in out and "Gaudi2" in out and "Llama-3.1-70B" in out


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d.assign(energy_request_j=-5.0), "row 1, column 'energy_request_j'"),
    (lambda d: d.assign(tp=0), "row 1, column 'tp'"),
    (lambda d: d.assign(tp=2, pp=2, num_gpus=2), "row 1, column 'num_gpus'"),
    (lambda d: d.assign(gpu="Q1000"), "row 1, column 'gpu'"),
    (lambda d: d.assign(batch_size="lots"), "row 1, column 'batch_size'"),
    (lambda d: d.drop(columns=["gpu"]), "column 'gpu'"),
])
def test_validate_rejects_malformed_files(tmp_path, run_cli, good_rows, mutate, where):
    p = tmp_path / "bad.csv"
    mutate(good_rows).to_csv(p, index=False)
    code, out = run_cli("data", "validate", p)
    assert _one_line_error(code, out), out
    assert out.startswith(f"error: {p}, {where}:"), out


def test_validate_empty_file(tmp_path, run_cli):
    p = tmp_path / "empty.csv"
    p.write_text("")
    code, out = run_cli("data", "validate", p)
    assert _one_line_error(code, out) and "empty" in out


def test_validate_accepts_good_file(tmp_path, run_cli, good_rows):
    p = tmp_path / "good.csv"
    good_rows.to_csv(p, index=False)
    code, out = run_cli("data", "validate", p)
    assert code == 0 and "5 rows valid" in out


def test_import_then_summary(tmp_path, run_cli, data_dir):
    out_csv = tmp_path / "v2.csv"
    code, out = run_cli("data", "import", "mlenergy-v2", data_dir / "mlenergy-v2", "-o", out_csv)
    assert code == 0, out
    df = pd.read_csv(out_csv)
    assert len(df) == 356 and {"source_energy_per_request_j", "energy_token_j"} <= set(df.columns)
    code, out = run_cli("data", "summary", out_csv)
    assert code == 0 and "Per model" in out and "Per GPU" in out and "gemma-2-27b-it" in out


def test_summary_of_dataset_folder(run_cli, data_dir):
    code, out = run_cli("data", "summary", data_dir / "mlenergy-v3")
    assert code == 0 and "838 rows" in out and "B200" in out


def test_gpu_prefill_decode_file_validates_unchanged(run_cli, data_dir):
    code, out = run_cli("data", "validate", data_dir / "gpu-prefill-decode" / "h100.csv")
    assert code == 0 and "66 rows valid" in out


def test_import_unreadable_folder_is_one_line(tmp_path, run_cli):
    code, out = run_cli("data", "import", "mlenergy-v2", tmp_path, "-o", tmp_path / "x.csv")
    assert _one_line_error(code, out) and not (tmp_path / "x.csv").exists()


def _bad_file(tmp_path, df, name="bad.csv"):
    p = tmp_path / name
    if name.endswith(".parquet"):
        df.to_parquet(p, index=False)
    else:
        df.to_csv(p, index=False)
    return p


@pytest.mark.parametrize("mutate, name, where, what", [
    # booleans and datetimes are refused instead of read as 1/0 or nanoseconds
    (lambda d: d.assign(tp=["True", "False", "True", "True", "True"]), "bad.csv", "row 1, column 'tp'", "boolean"),
    (lambda d: d.assign(batch_size=[1, 4, "false", 1, 1]), "bad.csv", "row 3, column 'batch_size'", "boolean"),
    (lambda d: d.assign(energy_request_j=pd.to_datetime(["2024-05-01"] * 5)), "bad.parquet",
     "row 1, column 'energy_request_j'", "date/time"),
    (lambda d: d.assign(ep=[True] * 5), "bad.parquet", "row 1, column 'ep'", "boolean"),
    # physical upper bounds and infinities
    (lambda d: d.assign(input_tokens=[128.0, 1e308, 128.0, 128.0, 128.0]), "bad.csv", "row 2, column 'input_tokens'",
     "<= 10,000,000 tokens"),
    (lambda d: d.assign(energy_request_j=[1.0, 1.0, 1.0, 2e12, 1.0]), "bad.csv", "row 4, column 'energy_request_j'",
     "<= 1e12 J"),
    (lambda d: d.assign(batch_size=[1, 1, 1, 1, 10**30]), "bad.csv", "row 5, column 'batch_size'", "upper bound"),
    (lambda d: d.assign(ttft_s=["inf"] * 5), "bad.csv", "row 1, column 'ttft_s'", "finite"),
    # physically inconsistent rows
    (lambda d: d.assign(gpu_idle_w=[100.0, 800.0, 100.0, 100.0, 100.0]), "bad.csv", "row 2, column 'gpu_idle_w'",
     "exceeds gpu_tdp_w"),
    (lambda d: d.assign(prefill_energy_j=1.0, decode_energy_j=d["energy_request_j"]), "bad.csv",
     "row 1, column 'energy_request_j'", "within 5%"),
    (lambda d: d.assign(visual_tokens=[0.0, 0.0, 0.0, 0.0, 1e6]), "bad.csv", "row 5, column 'visual_tokens'",
     "exceeds input_tokens"),
    # echoed text stays one short line
    (lambda d: d.assign(model=["x" * 1_000_000] + ["meta-llama/Llama-3.1-8B"] * 4), "bad.csv", "row 1, column 'model'",
     "x" * 60 + "…"),
    (lambda d: d.assign(model=["Llama\nerror: second line"] + ["meta-llama/Llama-3.1-8B"] * 4), "bad.csv",
     "row 1, column 'model'", "Llama\\nerror"),
    (lambda d: d.assign(precision=["bf16\r\nfp8"] * 5), "bad.csv", "row 1, column 'precision'", "'bf16\\r\\nfp8'"),
])
def test_validate_refuses_hostile_values_in_one_line(tmp_path, run_cli, good_rows, mutate, name, where, what):
    p = _bad_file(tmp_path, mutate(good_rows), name)
    code, out = run_cli("data", "validate", p)
    assert _one_line_error(code, out), out[:500]
    assert out.startswith(f"error: {p}, {where}:") and what in out, out[:500]
    assert len(out) < 300 + len(str(p))


def test_fit_and_predict_refuse_overflow_sized_configs(tmp_path, run_cli, good_rows):
    p = _bad_file(tmp_path, good_rows.assign(output_tokens=[1e308, 64.0, 64.0, 64.0, 64.0]))
    for cmd in (["fit", p, "-o", tmp_path / "m.json"], ["data", "summary", p]):
        code, out = run_cli(*cmd)
        assert _one_line_error(code, out) and "row 1, column 'output_tokens'" in out, (cmd, out[:500])
    assert not (tmp_path / "m.json").exists()


def test_summary_of_a_file_without_task_column(tmp_path, run_cli, good_rows):
    p = _bad_file(tmp_path, good_rows, "good.csv")
    code, out = run_cli("data", "summary", p)
    assert code == 0 and "Per model" in out and "5 rows" in out, out


def test_all_empty_text_columns_validate(tmp_path, run_cli, good_rows):
    p = _bad_file(tmp_path, good_rows.assign(precision=None, arch=None), "good.csv")
    code, out = run_cli("data", "validate", p)
    assert code == 0 and "5 rows valid" in out, out


def test_a_path_with_a_newline_stays_one_line(tmp_path, run_cli, good_rows):
    p = _bad_file(tmp_path, good_rows.assign(tp=0), "bad\nname.csv")
    code, out = run_cli("data", "validate", p)
    assert _one_line_error(code, out) and "bad\\nname.csv, row 1, column 'tp'" in out, out
