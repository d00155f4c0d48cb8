"""`energylens data import vllm-bench|guidellm FILE --power LOG`: benchmark results joined with a GPU power log.

The fixtures in tests/data/bench/ are GENERATED (generate.py there) in the exact layouts the tools write, with
constant power inside each benchmark window, so the right energies are known exactly."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energylens.data.importers import BenchOptions, import_dataset
from energylens.errors import DataError
from energylens.data.powerlog import read_power_log, window_energy

BENCH = Path(__file__).parent / "data" / "bench"
VLLM = BENCH / "vllm_bench_results.json"
GUIDELLM = BENCH / "guidellm_benchmarks.json"
# (400 + 380) W x 60 s / 480 requests; (500 + 480) W x 60 s / 960 requests
VLLM_J_PER_REQUEST = [97.5, 61.25]
# 350 W x 30 s / 120 requests; 450 W x 30 s / 360 requests
GUIDELLM_J_PER_REQUEST = [87.5, 37.5]


def _generator():
    spec = importlib.util.spec_from_file_location("bench_generate", BENCH / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_fixtures_are_the_generators_output():
    gen = _generator()
    for name, make in gen.FILES.items():
        assert (BENCH / name).read_text(encoding="utf-8") == make(), f"{name}: run python tests/data/bench/generate.py"


def test_vllm_bench_with_nvidia_smi_log(tmp_path, run_cli):
    out = tmp_path / "v.csv"
    code, text = run_cli("data", "import", "vllm-bench", VLLM, "--power", BENCH / "nvidia_smi_power.csv", "--tz", "UTC",
                         "-o", out)
    assert code == 0 and "wrote 2 rows" in text and "overlap 100.0%" in text, text
    df = pd.read_csv(out)
    assert df["energy_request_j"].tolist() == pytest.approx(VLLM_J_PER_REQUEST, rel=1e-9)
    assert df["energy_token_j"].tolist() == pytest.approx([x / 128 for x in VLLM_J_PER_REQUEST], rel=1e-9)
    assert df["avg_power_w"].tolist() == pytest.approx([780.0, 980.0])
    assert df["gpu"].unique().tolist() == ["H100-SXM"] and df["num_gpus"].tolist() == [2, 2]
    assert df["tp"].tolist() == [2, 2]  # from the run's --metadata tp=2
    assert df["batch_size"].tolist() == [8, 32] and df["avg_batch_size"].tolist() == pytest.approx([8.0, 32.0])
    assert df["source_power_overlap"].tolist() == [1.0, 1.0] and (df["source_power_method"] == "power").all()
    assert df["source_window_uncertainty"].tolist() == pytest.approx([1 / 60, 1 / 60])


def test_power_log_with_gaps_reports_its_overlap(tmp_path, run_cli):
    out = tmp_path / "v.csv"
    gaps = BENCH / "nvidia_smi_power_gaps.csv"
    code, text = run_cli("data", "import", "vllm-bench", VLLM, "--power", gaps, "--tz", "UTC", "-o", out)
    assert code == 2 and "covers 83%" in text and "--min-overlap" in text and len(text.strip().splitlines()) == 1
    assert not out.exists()
    code, text = run_cli("data", "import", "vllm-bench", VLLM, "--power", gaps, "--tz", "UTC", "--min-overlap", 0.8,
                         "-o", out)
    assert code == 0 and "overlap 83.3% at worst" in text and "filled in gaps" in text, text
    df = pd.read_csv(out)
    # GPU 1 lost 10 s of samples (filled with its mean power); GPU 0's 3 s hole is within 5 sampling intervals
    assert df["source_power_overlap"].tolist() == pytest.approx([50 / 60, 1.0])
    assert df["source_power_filled_j"].tolist() == pytest.approx([380.0 * 10, 0.0])
    assert df["energy_request_j"].tolist() == pytest.approx(VLLM_J_PER_REQUEST, rel=1e-9)  # constant power: exact


def test_skewed_clocks_do_not_overlap(tmp_path, run_cli):
    out = tmp_path / "v.csv"
    skewed = BENCH / "nvidia_smi_power_skewed.csv"
    code, text = run_cli("data", "import", "vllm-bench", VLLM, "--power", skewed, "--tz", "UTC", "-o", out)
    assert code == 2 and "the clocks do not overlap" in text and "--power-offset" in text
    assert len(text.strip().splitlines()) == 1 and "Traceback" not in text and not out.exists()
    code, text = run_cli("data", "import", "vllm-bench", VLLM, "--power", skewed, "--tz", "UTC", "--power-offset",
                         -7200, "-o", out)
    assert code == 0, text
    assert pd.read_csv(out)["energy_request_j"].tolist() == pytest.approx(VLLM_J_PER_REQUEST, rel=1e-9)


def test_guidellm_with_dcgm_counter_and_with_zeus(tmp_path, run_cli):
    out = tmp_path / "g.csv"
    code, text = run_cli("data", "import", "guidellm", GUIDELLM, "--power", BENCH / "dcgm_exporter_dump.txt", "-o", out)
    assert code == 0 and "wrote 2 rows" in text, text
    df = pd.read_csv(out)
    assert df["energy_request_j"].tolist() == pytest.approx(GUIDELLM_J_PER_REQUEST, rel=1e-6)
    assert (df["source_power_method"] == "counter").all() and df["batch_size"].tolist() == [4, 16]
    assert df["ttft_s"].tolist() == pytest.approx([0.04, 0.09]) and df["itl_s"].tolist() == pytest.approx([0.008, 0.012])
    assert df["model"].unique().tolist() == ["meta-llama/Llama-3.1-8B-Instruct"]
    zeus = BENCH / "zeus_power_timeline.json"
    code, text = run_cli("data", "import", "guidellm", GUIDELLM, "--power", zeus, "-o", out)
    assert code == 2 and "--gpu" in text  # a Zeus timeline does not name the GPU model
    code, text = run_cli("data", "import", "guidellm", GUIDELLM, "--power", zeus, "--gpu", "H100", "-o", out)
    assert code == 0, text
    assert pd.read_csv(out)["energy_request_j"].tolist() == pytest.approx(GUIDELLM_J_PER_REQUEST, rel=1e-6)


def test_bench_options_are_refused_for_dataset_kinds(tmp_path, run_cli):
    code, text = run_cli("data", "import", "mlenergy-v3", tmp_path, "--power", BENCH / "nvidia_smi_power.csv",
                         "-o", tmp_path / "o.csv")
    assert code == 2 and "--power applies to benchmark results" in text


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r.pop("duration"), "lacks 'duration'"),
    (lambda r: r.update(date="yesterday"), "YYYYMMDD-HHMMSS"),
    (lambda r: r.update(completed=0), "positive duration"),
    (lambda r: r.update(max_concurrency=None, max_concurrent_requests=None), "--max-num-seqs"),
])
def test_bad_vllm_results_are_one_line(tmp_path, run_cli, mutate, expected):
    r = json.loads(VLLM.read_text().splitlines()[0])
    mutate(r)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(r))
    code, text = run_cli("data", "import", "vllm-bench", bad, "--power", BENCH / "nvidia_smi_power.csv", "--tz", "UTC",
                         "-o", tmp_path / "o.csv")
    assert code == 2 and expected in text and len(text.strip().splitlines()) == 1, text


def test_missing_power_log_is_named():
    with pytest.raises(DataError, match="--power"):
        import_dataset("vllm-bench", VLLM, BenchOptions())


def test_nvidia_smi_variants(tmp_path):
    """nounits, [N/A] cells, a repeated header and a line cut off by stopping the logger."""
    text = ("timestamp, index, power.draw [W], power.draw.instant [W]\n"
            "2025/03/01 12:00:00.000, 0, 100.00, 110.00\n"
            "2025/03/01 12:00:01.000, 0, [N/A], [N/A]\n"
            "timestamp, index, power.draw [W], power.draw.instant [W]\n"
            "2025/03/01 12:00:02.000, 0, 100.00, 110.00\n"
            "2025/03/01 12:00:03.000, 0, 100.00, 110.00\n"
            "2025/03/01 12:00:04.0")
    p = tmp_path / "smi.csv"
    p.write_text(text)
    log = read_power_log(p, tz=__import__("datetime").timezone.utc)
    assert log.kind == "nvidia-smi" and log.dropped_lines == 1
    s = log.series["0"]
    assert s.power_w.tolist() == [110.0, 110.0, 110.0]  # power.draw.instant preferred
    t0 = s.power_t[0]
    got = window_energy(log, t0, t0 + 3.0)
    assert got.energy_j == pytest.approx(330.0) and got.coverage == 1.0  # the 2 s hole is within 5 intervals


def test_dcgm_dump_with_time_lines(tmp_path):
    """Scrapes without per-sample timestamps, each after a line holding `date +%s.%N`."""
    lines = []
    for k in range(11):
        lines += [f"{1740830400 + k}.000000000", "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).",
                  'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-a",modelName="NVIDIA A100-SXM4-80GB"} 200',
                  'DCGM_FI_DEV_POWER_USAGE{gpu="1",UUID="GPU-b",modelName="NVIDIA A100-SXM4-80GB"} 100',
                  'DCGM_FI_DEV_GPU_UTIL{gpu="0"} 99']
    p = tmp_path / "dcgm.txt"
    p.write_text("\n".join(lines) + "\n")
    log = read_power_log(p)
    assert log.kind == "dcgm" and log.gpu_name() == "A100-SXM4-80GB" and sorted(log.series) == ["0", "1"]
    assert window_energy(log, 1740830401, 1740830409).energy_j == pytest.approx(300.0 * 8)
    assert window_energy(log.select(["1"]), 1740830401, 1740830409).energy_j == pytest.approx(100.0 * 8)
    with pytest.raises(DataError, match="no GPU '7'"):
        log.select(["7"])
    p.write_text('DCGM_FI_DEV_POWER_USAGE{gpu="0"} 200\n')
    with pytest.raises(DataError, match="without a time"):
        read_power_log(p)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40), max_size=4),
       where=st.integers(min_value=1, max_value=5))
def test_power_log_parser_never_crashes(tmp_path, junk, where):
    """Any lines spliced into a power log: it reads, or a DataError names the problem; never another exception."""
    base = (BENCH / "nvidia_smi_power.csv").read_text().splitlines()[:8]
    lines = base[:where] + junk + base[where:]
    p = tmp_path / "junk.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        log = read_power_log(p)
    except DataError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(np.all(np.diff(s.power_t) >= 0) for s in log.series.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60), max_size=4),
       numbers=st.lists(st.integers(min_value=-10**30, max_value=10**400), max_size=2))
def test_dcgm_parser_never_crashes(tmp_path, junk, numbers):
    base = (BENCH / "dcgm_exporter_dump.txt").read_text().splitlines()[:12]
    extra = [f'DCGM_FI_DEV_POWER_USAGE{{gpu="0"}} 5 {n}' for n in numbers] + [str(n) for n in numbers]
    p = tmp_path / "junk.txt"
    p.write_text("\n".join(base[:6] + junk + extra + base[6:]) + "\n", encoding="utf-8")
    try:
        read_power_log(p)
    except DataError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=40, deadline=None)
@given(watts=st.floats(min_value=1, max_value=2000), start=st.floats(min_value=0, max_value=50),
       length=st.floats(min_value=0.5, max_value=40), step=st.sampled_from([0.1, 0.5, 1.0]))
def test_window_energy_of_constant_power_is_exact(watts, start, length, step):
    from energylens.data.powerlog import PowerLog, Series

    t = np.arange(0.0, 100.0 + step, step)
    log = PowerLog(Path("x"), "zeus", {"0": Series("0", power_t=t, power_w=np.full_like(t, watts))})
    got = window_energy(log, start, start + length)
    assert got.energy_j == pytest.approx(watts * length, rel=1e-9) and got.coverage == pytest.approx(1.0)
