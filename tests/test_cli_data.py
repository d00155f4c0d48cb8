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


@pytest.mark.parametrize("mutate", [
    lambda d: d.assign(energy_request_j=-5.0),
    lambda d: d.assign(tp=0),
    lambda d: d.assign(tp=2, pp=2, num_gpus=2),
    lambda d: d.assign(gpu="Q1000"),
    lambda d: d.assign(batch_size="lots"),
    lambda d: d.drop(columns=["gpu"]),
])
def test_validate_rejects_malformed_files(tmp_path, run_cli, good_rows, mutate):
    p = tmp_path / "bad.csv"
    mutate(good_rows).to_csv(p, index=False)
    code, out = run_cli("data", "validate", p)
    assert _one_line_error(code, out), out
    assert str(p) in out


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
