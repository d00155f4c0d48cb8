"""Profiler: windows, sweep, resume, failures and CPU runs (no GPU needed)."""
import dataclasses
import json
import math
import time

import numpy as np
import pandas as pd
import pytest

from energylens.profile.devices import FakeGpu
from energylens.profile.monitor import EnergyMonitor
from energylens.profile.sweep import SweepSpec, done_keys, failed_path, run_sweep


class SleepyEngine:
    """A stand-in engine whose prefill and decode take time proportional to the work."""

    name = "fake"
    decode_includes_prefill = False

    def __init__(self, fail_batch=None, interrupt_after=None):
        self.fail_batch, self.interrupt_after, self.calls = fail_batch, interrupt_after, 0

    def sync(self):
        pass

    def load(self, model, tp=1, pp=1):
        pass

    def prefill(self, batch, input_tokens):
        if batch == self.fail_batch:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        time.sleep(1e-5 * batch * input_tokens / 16)
        return batch

    def decode(self, state, output_tokens):
        self.calls += 1
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        time.sleep(2e-4 * output_tokens)


def test_windows_return_typed_measurements():
    gpu = FakeGpu(power_w=250.0)
    mon = EnergyMonitor([gpu])
    mon.begin_window("w")
    time.sleep(0.05)
    m = mon.end_window("w")
    assert m.name == "w" and m.time_s >= 0.05
    assert m.total_energy_j == pytest.approx(250.0 * m.time_s, rel=0.05)
    with pytest.raises(ValueError):
        mon.end_window("w")
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'time_s'"):
        m.time_s = 1.0  # frozen
    assert m.time_s >= 0.05


def test_no_counter_means_no_energy():
    mon = EnergyMonitor([FakeGpu(has_counter=False)])
    mon.begin_window("w")
    assert mon.end_window("w").total_energy_j is None


def _spec():
    return SweepSpec("meta-llama/Llama-3.2-1B", batch=[1, 8], input_tokens=[16, 64], output_tokens=[4], repeats=2)


def test_sweep_writes_schema_rows_that_fit_reads(tmp_path):
    out = tmp_path / "runs.csv"
    counts = run_sweep(_spec().configurations(), SleepyEngine(), [FakeGpu(name="NVIDIA H100 80GB HBM3")], out,
                       repeats=2, idle_seconds=0.01)
    assert counts == {"measured": 4, "skipped": 0, "failed": 0, "previously_failed": 0}
    df = pd.read_csv(out)
    assert len(df) == 4 and (df["prefill_energy_j"] > 0).all() and (df["decode_energy_j"] > 0).all()
    np.testing.assert_allclose(df["energy_request_j"], df["prefill_energy_j"] + df["decode_energy_j"])
    assert (df["raw_repeats"] == 2).all() and df["raw_energy_available"].all()
    import socket  # each row names the host and the GPUs it measured

    assert (df["node"] == socket.gethostname()).all() and (df["gpu_uuids"] == "GPU-fake-0").all()
    from energylens.data.schema import load_profiles

    valid = load_profiles(out)
    assert valid["gpu"].unique().tolist() == ["H100-SXM"]


def test_interrupted_sweep_resumes_without_duplicates(tmp_path):
    out = tmp_path / "runs.csv"
    configs = _spec().configurations()
    with pytest.raises(KeyboardInterrupt):  # warm-up + 2 repeats = 3 decode calls per configuration
        run_sweep(configs, SleepyEngine(interrupt_after=7), [FakeGpu()], out, repeats=2, idle_seconds=0)
    first = pd.read_csv(out)
    assert 1 <= len(first) < 4
    counts = run_sweep(configs, SleepyEngine(), [FakeGpu()], out, repeats=2, idle_seconds=0)
    assert counts["skipped"] == len(first) and counts["measured"] == 4 - len(first)
    df = pd.read_csv(out)
    assert len(df) == 4 and not df.duplicated(["batch_size", "input_tokens", "output_tokens"]).any()
    assert run_sweep(configs, SleepyEngine(), [FakeGpu()], out, idle_seconds=0)["measured"] == 0


def test_out_of_memory_is_recorded_with_reason(tmp_path):
    out = tmp_path / "runs.csv"
    counts = run_sweep(_spec().configurations(), SleepyEngine(fail_batch=8), [FakeGpu()], out, repeats=1, idle_seconds=0)
    assert counts == {"measured": 2, "skipped": 0, "failed": 2, "previously_failed": 0}
    failed = pd.read_csv(failed_path(out))
    assert (failed["status"] == "failed").all() and failed["reason"].str.startswith("out of memory").all()
    assert len(done_keys(out)) == 4  # failures are not retried on resume...
    again = run_sweep(_spec().configurations(), SleepyEngine(), [FakeGpu()], out, repeats=1, idle_seconds=0)
    assert again == {"measured": 0, "skipped": 2, "failed": 0, "previously_failed": 2}


def test_without_gpu_energy_is_left_empty(tmp_path):
    out = tmp_path / "runs.csv"
    run_sweep(_spec().configurations()[:1], SleepyEngine(), [], out, repeats=1)
    row = pd.read_csv(out).iloc[0]
    assert math.isnan(row["energy_request_j"]) and math.isnan(row["prefill_energy_j"])
    assert not row["raw_energy_available"] and row["ttft_s"] > 0 and row["itl_s"] > 0


def test_profile_without_gpu_says_so(run_cli, tmp_path):
    code, out = run_cli("profile", "--engine", "transformers", "--model", "meta-llama/Llama-3.1-8B-Instruct",
                        "--batch", 1, "--input-tokens", 16, "--output-tokens", 4, "-o", tmp_path / "r.csv")
    assert code == 2 and "GPU" in out and "Traceback" not in out


def test_bad_grid_option(run_cli, tmp_path):
    code, out = run_cli("profile", "--engine", "transformers", "--model", "x", "--batch", "1,two", "--allow-cpu",
                        "-o", tmp_path / "r.csv")
    assert code == 2 and "--batch" in out


TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
        "max_position_embeddings": 512}


def test_transformers_engine_on_cpu_with_a_tiny_config(tmp_path, run_cli):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(TINY))
    out = tmp_path / "runs.csv"
    code, text = run_cli("profile", "--engine", "transformers", "--model", cfg, "--batch", "1,2,1", "--input-tokens", "8,8",
                         "--output-tokens", 3, "--repeats", 1, "--allow-cpu", "-o", out)
    assert code == 0 and "2 measured" in text, text  # repeated grid values are measured once
    df = pd.read_csv(out)
    assert len(df) == 2 and df["energy_request_j"].isna().all() and (df["itl_s"] > 0).all()
    code, text = run_cli("profile", "--engine", "transformers", "--model", cfg, "--batch", "1,2,4", "--input-tokens", 8,
                         "--output-tokens", 3, "--repeats", 1, "--allow-cpu", "-o", out)
    assert code == 0 and "1 measured, 2 already" in text
    assert len(pd.read_csv(out)) == 3


def test_planner_picks_informative_distinct_configurations(tmp_path, run_cli):
    from energylens.model.default import default_model
    from energylens.profile.plan import greedy_d_optimal, plan_sweep, sensitivity_blocks
    from energylens.recommendation.search import enumerate_candidates

    sweep = plan_sweep("meta-llama/Llama-3.1-8B", ["H100"], 4, 20)
    assert len(sweep) == 20 and not sweep.duplicated().any()
    assert sweep["tp"].nunique() > 1 and sweep["batch_size"].nunique() > 2
    cand = enumerate_candidates("meta-llama/Llama-3.1-8B", ["H100"], 4, 512, 128)
    cand = cand[cand["reason"] == ""].reset_index(drop=True)
    blocks = sensitivity_blocks(cand, default_model())
    chosen, _ = greedy_d_optimal(blocks, 15)

    def logdet(idx):
        M = sum(blocks[i].T @ blocks[i] for i in idx) + 1e-3 * np.eye(blocks.shape[2])
        return np.linalg.slogdet(M)[1]

    rng = np.random.default_rng(0)
    randoms = [logdet(rng.choice(len(cand), 15, replace=False)) for _ in range(20)]
    assert logdet(chosen) > max(randoms)
    code, text = run_cli("plan", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", 2,
                         "--budget", 5, "-o", tmp_path / "sweep.csv")
    assert code == 0 and len(pd.read_csv(tmp_path / "sweep.csv")) == 5


def test_zeus_monitor_adapter(monkeypatch):
    """With Zeus installed its windows are used; its Measurement maps onto ours (units kept)."""
    import sys
    import types

    from energylens.profile import monitor as mon_mod

    class FakeZeus:
        def __init__(self, gpu_indices):
            self.idx = gpu_indices

        def begin_window(self, name):
            self.t = time.perf_counter()

        def end_window(self, name):
            dt = time.perf_counter() - self.t
            return types.SimpleNamespace(time=dt, gpu_energy={i: 100.0 * dt for i in self.idx})

    fake = types.ModuleType("zeus.monitor")
    fake.ZeusMonitor = FakeZeus
    monkeypatch.setitem(sys.modules, "zeus", types.ModuleType("zeus"))
    monkeypatch.setitem(sys.modules, "zeus.monitor", fake)
    m = mon_mod.ZeusEnergyMonitor([0, 1])
    m.begin_window("decode")
    time.sleep(0.01)
    out = m.end_window("decode")
    assert out.name == "decode" and set(out.energy_j) == {0, 1}
    assert out.total_energy_j == pytest.approx(200.0 * out.time_s)
    assert isinstance(mon_mod.make_monitor([FakeGpu()]), mon_mod.EnergyMonitor)  # fakes never go through Zeus


# --- retrying failures, duplicates, plan files, exit codes (robustness) ---

def test_retry_failed_reruns_them_and_clears_the_failed_file(tmp_path):
    out = tmp_path / "runs.csv"
    configs = _spec().configurations()
    run_sweep(configs, SleepyEngine(fail_batch=8), [FakeGpu()], out, repeats=1, idle_seconds=0)
    # Still failing: the new failure replaces the old record (no duplicates in the failed file).
    counts = run_sweep(configs, SleepyEngine(fail_batch=8), [FakeGpu()], out, repeats=1, idle_seconds=0, retry_failed=True)
    assert counts == {"measured": 0, "skipped": 2, "failed": 2, "previously_failed": 0}
    failed = pd.read_csv(failed_path(out))
    assert len(failed) == 2 and set(failed["batch_size"]) == {8}
    # Now they succeed: measured once each, gone from the failed file (removed when empty).
    counts = run_sweep(configs, SleepyEngine(), [FakeGpu()], out, repeats=1, idle_seconds=0, retry_failed=True)
    assert counts == {"measured": 2, "skipped": 2, "failed": 0, "previously_failed": 0}
    assert not failed_path(out).exists()
    df = pd.read_csv(out)
    assert len(df) == 4 and not df.duplicated(["batch_size", "input_tokens"]).any()


def test_retry_keeps_only_what_still_fails(tmp_path):
    out = tmp_path / "runs.csv"
    spec = SweepSpec("m", batch=[2, 4], input_tokens=[16], output_tokens=[4])

    class FailSome(SleepyEngine):
        def __init__(self, bad):
            super().__init__()
            self.bad = bad

        def prefill(self, batch, input_tokens):
            if batch in self.bad:
                raise RuntimeError(f"boom {batch}")
            return batch

    run_sweep(spec.configurations(), FailSome({2, 4}), [], out, repeats=1)
    counts = run_sweep(spec.configurations(), FailSome({4}), [], out, repeats=1, retry_failed=True)
    assert counts == {"measured": 1, "skipped": 0, "failed": 1, "previously_failed": 0}
    failed = pd.read_csv(failed_path(out))
    assert failed["batch_size"].tolist() == [4] and failed["reason"].tolist() == ["RuntimeError: boom 4"]
    assert pd.read_csv(out)["batch_size"].tolist() == [2]


def test_repeated_grid_values_are_measured_once(tmp_path):
    spec = SweepSpec("m", tp=[1, 1], batch=[1, 1, 8], input_tokens=[16, 16], output_tokens=[4])
    configs = spec.configurations()
    assert [c["batch_size"] for c in configs] == [1, 8]
    out = tmp_path / "runs.csv"
    counts = run_sweep(configs + configs, SleepyEngine(), [], out, repeats=1)  # duplicates passed in are measured once
    assert counts["measured"] == 2 and len(pd.read_csv(out)) == 2


@pytest.fixture
def fake_engine(monkeypatch):
    """`energylens profile` on the CPU with a SleepyEngine in place of transformers/vLLM."""
    from energylens.profile import engines

    made = {}

    def use(engine):
        made["engine"] = engine
        monkeypatch.setattr(engines, "make_engine", lambda name, device="auto": engine)

    return use


def _error_lines(text):
    return [line for line in text.splitlines() if line.startswith("error:")]


def test_cli_every_configuration_failed_exits_3(run_cli, tmp_path, fake_engine):
    out = tmp_path / "r.csv"
    fake_engine(SleepyEngine(fail_batch=8))
    code, text = run_cli("profile", "--model", "m", "--batch", "8", "--input-tokens", "16,64", "--output-tokens", 4,
                         "--repeats", 1, "--allow-cpu", "-o", out)
    assert code == 3, text
    errors = _error_lines(text)
    assert len(errors) == 1 and "sweep failed" in errors[0] and "0 measured" in errors[0] and "2 failed" in errors[0]
    assert str(failed_path(out)) in errors[0] and "out of memory" in errors[0] and "Traceback" not in text
    # Resumed without --retry-failed: nothing tried, nothing failed now: exit 0 with the earlier failures counted.
    code, text = run_cli("profile", "--model", "m", "--batch", "8", "--input-tokens", "16,64", "--output-tokens", 4,
                         "--repeats", 1, "--allow-cpu", "-o", out)
    assert code == 0 and "2 skipped as failed before" in text and "--retry-failed" in text, text
    fake_engine(SleepyEngine())
    code, text = run_cli("profile", "--model", "m", "--batch", "8", "--input-tokens", "16,64", "--output-tokens", 4,
                         "--repeats", 1, "--allow-cpu", "--retry-failed", "-o", out)
    assert code == 0 and "2 measured" in text and "0 failed" in text, text
    assert len(pd.read_csv(out)) == 2 and not failed_path(out).exists()


def test_cli_partial_failure_says_how_many_and_where(run_cli, tmp_path, fake_engine):
    out = tmp_path / "r.csv"
    fake_engine(SleepyEngine(fail_batch=8))
    code, text = run_cli("profile", "--model", "m", "--batch", "1,8,1", "--input-tokens", 16, "--output-tokens", 4,
                         "--repeats", 1, "--allow-cpu", "-o", out)
    assert code == 0, text
    assert "1 measured" in text and "1 of 2 tried failed" in text and str(failed_path(out)) in " ".join(text.split())
    assert len(pd.read_csv(out)) == 1  # batch 1 given twice, measured once


def test_cli_profile_help_documents_exit_codes(run_cli):
    code, text = run_cli("profile", "--help")
    assert code == 0 and "--retry-failed" in text and "3" in text and "sweep failed" in text


@pytest.mark.parametrize("cell, shown", [("abc", "'abc'"), ("", "an empty cell"), ("0", "0"), ("2.5", "2.5"),
                                         ("-4", "-4"), ("inf", "inf"), ("2000000", "2000000")])
def test_cli_bad_plan_cell_names_file_row_and_column(run_cli, tmp_path, fake_engine, cell, shown):
    fake_engine(SleepyEngine())
    plan = tmp_path / "sweep.csv"
    plan.write_text("model,tp,pp,batch_size,input_tokens,output_tokens\n"
                    "m,1,1,1,16,4\n"
                    f"m,1,1,{cell},16,4\n")
    out = tmp_path / "r.csv"
    code, text = run_cli("profile", "--model", "m", "--plan", plan, "--allow-cpu", "--repeats", 1, "-o", out)
    assert code == 2, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in text, text
    assert str(plan) in lines[0] and "row 2" in lines[0] and "column 'batch_size'" in lines[0] and shown in lines[0], text
    assert not out.exists()  # refused before measuring anything


def test_plan_file_rows_are_validated_and_deduplicated(tmp_path):
    from energylens.errors import DataError
    from energylens.profile.sweep import configurations_from_plan

    plan = tmp_path / "sweep.csv"
    plan.write_text("tp,pp,batch_size,input_tokens,output_tokens\n1,1,8,16,4\n1,1,8.0,16,4\n1,1,2,16,4\n")
    assert [c["batch_size"] for c in configurations_from_plan(plan, "m")] == [8, 2]
    plan.write_text("tp,pp,batch_size,input_tokens,output_tokens\n1,1,8,16,0\n")
    with pytest.raises(DataError, match=r"row 1, column 'output_tokens': expected a whole number between 1 and"):
        configurations_from_plan(plan, "m")
    plan.write_text("tp,pp,batch_size,output_tokens\n1,1,8,4\n")
    with pytest.raises(DataError, match="lacks column 'input_tokens'"):
        configurations_from_plan(plan, "m")
    plan.write_text("tp,pp,batch_size,input_tokens,output_tokens\n")
    with pytest.raises(DataError, match="no configurations"):
        configurations_from_plan(plan, "m")


@pytest.mark.parametrize("args, option", [(["--batch", "0"], "--batch"), (["--tp", "1,x"], "--tp"),
                                          (["--gpus", "a"], "--gpus"), (["--idle-seconds", "nan"], "--idle-seconds"),
                                          (["--input-tokens", "99999999999"], "--input-tokens")])
def test_cli_bad_grid_options_are_one_line(run_cli, tmp_path, fake_engine, args, option):
    fake_engine(SleepyEngine())
    code, text = run_cli("profile", "--model", "m", "--allow-cpu", *args, "-o", tmp_path / "r.csv")
    assert code == 2 and len(text.strip().splitlines()) == 1 and option in text, text


def test_damaged_output_is_a_one_line_error_not_a_crash(tmp_path):
    from energylens.errors import DataError

    out = tmp_path / "runs.csv"
    out.write_text("model,tp,pp,batch_size,input_tokens,output_tokens\nm,1,1,x,16,4\n")
    with pytest.raises(DataError, match=r"row 1, column 'batch_size': cannot resume"):
        run_sweep(SweepSpec("m").configurations(), SleepyEngine(), [], out, repeats=1)
