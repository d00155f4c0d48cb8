"""Commands agree with each other: explain's prefill is predict's, 'default' names the shipped model
everywhere, importers count what they drop, summary reads a folder of schema files, a CPU profile gets a
one-line verdict from validate, and coefficients the data did not identify are said to be so."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from energylens.model.terms import GROUPS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import config_rows
from energylens.model.identification import MAX_INTERVAL_RATIO, NOT_FITTED, NOT_IDENTIFIED, judge


@pytest.fixture
def configs(tmp_path):
    """Configurations two GPUs and several lengths apart: rows that differ in one field only."""
    df = pd.concat([config_rows(6, seed=1, gpu="H100"), config_rows(6, seed=1, gpu="A100 80GB")], ignore_index=True)
    df.loc[len(df)] = df.loc[0]
    df.loc[len(df) - 1, "output_tokens"] = df.loc[0, "output_tokens"] * 2
    path = tmp_path / "cfg.csv"
    df.to_csv(path, index=False)
    return path, df


# -- 1. explain's prefill is predict's ---------------------------------------------------------

def _explain_json(run_cli, model, cfg, rows=100):
    code, out = run_cli("explain", model, cfg, "--json", "--rows", rows)
    assert code == 0, out
    return json.loads(out)


def test_explain_prefill_equals_predict(configs, run_cli, tmp_path):
    cfg, df = configs
    code, out = run_cli("predict", "default", cfg, "-o", tmp_path / "p.csv")
    assert code == 0, out
    pred = pd.read_csv(tmp_path / "p.csv")
    rows = _explain_json(run_cli, "default", cfg)
    assert len(rows) == len(pred) == len(df)
    got = np.array([r["pred_prefill_energy_j"] for r in rows])
    np.testing.assert_allclose(got, pred["pred_prefill_energy_j"], rtol=1e-9)
    np.testing.assert_allclose([r["pred_decode_energy_j"] for r in rows], pred["pred_decode_energy_j"], rtol=1e-9)
    # the phase share on screen is the same figure over the total
    np.testing.assert_allclose([r["prefill_share_pct"] / 100 * r["total_j"] for r in rows], got, rtol=1e-9)
    # the groups (where the energy goes) add up to the same total as the two phases
    np.testing.assert_allclose([sum(r[f"{g}_j"] for g in GROUPS) for r in rows],
                               [r["pred_prefill_energy_j"] + r["pred_decode_energy_j"] for r in rows], rtol=1e-9)


def test_explain_rows_are_identifiable(configs, run_cli):
    cfg, df = configs
    rows = _explain_json(run_cli, "default", cfg)
    ids = [tuple(r[k] for k in ("model", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "precision", "batch_size",
                                "input_tokens", "output_tokens")) for r in rows]
    assert len(set(ids)) == len(df), "two rows of explain cannot be told apart"
    assert [r["row"] for r in rows] == list(range(1, len(df) + 1))
    assert len({r["gpu"] for r in rows}) == 2
    code, out = run_cli("explain", "default", cfg, "--rows", 20)
    assert code == 0 and "configuration" in out and "pf J" in out
    labels = [re.match(r"^\s*\d+\s+(.+?\d+→\d+ tok)", ln).group(1) for ln in out.splitlines()
              if re.match(r"^\s*\d+\s+\S+ x\d", ln)]
    assert len(labels) == len(df) and len(set(labels)) == len(df), labels  # every row told apart by its label
    code, out = run_cli("explain", "default", cfg, "--rows", 20, "--verbose")
    assert "pred_prefill_energy_j" in out  # the definitions name what pf J is


def test_explain_prefill_equals_predict_on_measured_split(data_dir, run_cli, tmp_path):
    path = data_dir / "gpu-prefill-decode" / "h100.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    code, out = run_cli("predict", "default", path, "-o", tmp_path / "p.csv")
    assert code == 0, out
    pred = pd.read_csv(tmp_path / "p.csv")
    rows = _explain_json(run_cli, "default", path, rows=len(pred))
    np.testing.assert_allclose([r["pred_prefill_energy_j"] for r in rows], pred["pred_prefill_energy_j"], rtol=1e-9)


# -- 2. 'default' names the shipped model --------------------------------------------------------

def test_default_is_accepted_by_predict_explain_show(configs, run_cli, tmp_path, monkeypatch):
    cfg, df = configs
    monkeypatch.chdir(tmp_path)  # no file called 'default' here
    code, out = run_cli("predict", "default", cfg, "-o", tmp_path / "p.csv")
    assert code == 0 and len(pd.read_csv(tmp_path / "p.csv")) == len(df), out
    code, out = run_cli("explain", "default", cfg, "--json")
    assert code == 0 and len(json.loads(out)) == 10, out
    code, out = run_cli("show", "default")
    assert code == 0 and out.startswith("default (schema") and "tau_mem" in out, out
    for command in ("predict", "explain", "show"):
        code, out = run_cli(command, "--help")
        assert code == 0 and "'default'" in out, command


# -- 6. identification ----------------------------------------------------------------------------

def test_rule_interval_ratio_threshold():
    at = lambda ratio: judge(1.0, 1 / np.sqrt(ratio), np.sqrt(ratio), True, exponent=False, lower=1e-6, upper=1e4)
    assert at(MAX_INTERVAL_RATIO * 0.99).identified
    v = at(MAX_INTERVAL_RATIO * 1.01)
    assert v.status == NOT_IDENTIFIED and "101x" in v.reason
    assert judge(1.0, 0.0, np.inf, True, exponent=False, lower=1e-6, upper=1e4).status == NOT_IDENTIFIED


def test_rule_bounds_prior_and_exponents():
    assert judge(0.5, 0.5, 0.5, False, exponent=False, lower=0.1, upper=1).status == NOT_FITTED
    v = judge(1.0, 0.9, 1.1, True, exponent=False, lower=1.0, upper=1e4)
    assert v.status == NOT_IDENTIFIED and "lower bound 1" in v.reason
    assert judge(3.0, 2.9, 3.1, True, exponent=False, lower=1.0, upper=3.0).status == NOT_IDENTIFIED
    assert judge(1.0001, 0.9, 1.1, True, exponent=False, lower=1.0, upper=1e4).identified
    assert judge(-1.6, -1.9, -1.3, True, exponent=True, lower=-5, upper=5).identified
    assert judge(5.0, 4.0, 6.0, True, exponent=True, lower=-5, upper=5).status == NOT_IDENTIFIED
    assert judge(0.0, -3.0, 3.0, True, exponent=True, lower=-5, upper=5).status == NOT_IDENTIFIED  # e^6 > 100


@pytest.fixture
def weak_model(tmp_path):
    """The shipped model with tau_comm's variance inflated until its interval spans 1e4x."""
    from energylens.model.default import default_model
    from energylens.model.modelfile import save_model

    m = default_model(estimator=True)
    j = m.structure_.names.index("tau_comm")
    m.fitted_.shared.cov_log = m.cov_log_.copy()
    m.fitted_.shared.cov_log[j, j] = (np.log(1e4) / 3.92) ** 2
    path = tmp_path / "weak.json"
    save_model(m, path, {"note": "test"})
    return path


def test_show_file_and_fit_say_not_identified(weak_model, run_cli):
    d = json.loads(weak_model.read_text())
    comm = d["coefficients"]["tau_comm"]
    assert comm["identified"] is False and comm["lo95"] is None and comm["hi95"] is None
    assert comm["identification"].startswith("NOT IDENTIFIED") and "10,000x" in comm["identification"]
    ok = d["coefficients"]["tau_compute"]
    assert ok["identified"] is True and ok["lo95"] < ok["value"] < ok["hi95"]
    code, out = run_cli("show", weak_model)
    assert code == 0, out
    line = next(ln for ln in out.splitlines() if "tau_comm" in ln and "│" in ln)
    assert "NOT IDENTIFIED" in line and "10,000x" in line
    unidentified = {n for n, e in d["coefficients"].items() if e["fitted"] and not e["identified"]}
    summary = next(ln for ln in out.splitlines() if ln.startswith("not identified by the training rows"))
    assert set(summary.split(": ", 1)[1].split(";")[0].split(", ")) == unidentified


def test_explain_flags_shares_resting_on_unidentified_terms(weak_model, run_cli, tmp_path):
    df = config_rows(4, seed=3)
    df["num_gpus"] = df["tp"] = [1, 2, 4, 8]
    cfg = tmp_path / "tp.csv"
    df.to_csv(cfg, index=False)
    rows = _explain_json(run_cli, weak_model, cfg)
    for r in rows:
        assert ("tp_comm" in r["shares_not_identified"]) == (r["tp"] > 1), r
    code, out = run_cli("explain", weak_model, cfg)
    assert code == 0 and "tau_comm" in out
    rows = [ln.split() for ln in out.splitlines() if re.match(r"^\s*\d+\s+\S+ x\d", ln)]
    assert sum(any(c.endswith("*") for c in cells) for cells in rows) >= 3
    code, out = run_cli("explain", weak_model, cfg, "--verbose")
    assert code == 0 and "tau_comm (NOT IDENTIFIED" in out


def test_fit_prints_unidentified(run_cli, tmp_path):
    from energylens.evaluation.synthetic import synthetic_profiles

    from energylens.model.modelfile import load_model

    train = tmp_path / "train.csv"
    for noise, any_weak in ((0.03, False), (0.5, True)):  # 12 rows: precise ones pin every term, noisy ones cannot
        synthetic_profiles(n=12, seed=5, noise=noise).to_csv(train, index=False)
        code, out = run_cli("fit", train, "-o", tmp_path / "m.json", "--structure", "physics")
        assert code == 0, out
        coefs = load_model(tmp_path / "m.json").coefficients()
        weak = coefs.loc[coefs["fitted"] & ~coefs["identified"], "name"].tolist()
        assert bool(weak) == any_weak, weak
        assert ("NOT IDENTIFIED by these rows: " + ", ".join(weak) + " (" in " ".join(out.split())) == any_weak


def test_50_rows_of_mlenergy_v3_hold_the_unidentified_at_their_prior(data_dir):
    """At n = 50 the dynamic power of collectives is not identified (few rows run them and it trades off with the
    other power coefficients): its fitted interval spans orders of magnitude, so the fit is redone with it at its
    prior and no prediction rests on it; the memory-time coefficient, which every row's decode steps pin, is
    identified."""
    from energylens.data.importers import import_dataset
    from energylens.model.estimator import EnergyLensRegressor
    from energylens.model.terms import PHYSICS_COEFFICIENTS

    folder = data_dir / "mlenergy-v3"
    if not folder.exists():
        pytest.skip(f"{folder} not found")
    df = import_dataset("mlenergy-v3", folder).sample(n=50, random_state=0).reset_index(drop=True)
    model = EnergyLensRegressor(structure="physics", random_state=0, cv_folds=0).fit(df)
    coefs = model.coefficients().set_index("name")
    prior = {c.name: c.prior for c in PHYSICS_COEFFICIENTS}
    assert coefs.loc["a_comm", "status"] == "not fitted" and coefs.loc["a_comm", "value"] == prior["a_comm"]
    assert np.isnan(coefs.loc["a_comm", "lo95"])
    assert any(n.text.startswith("a_comm: kept at prior") and "interval" in n.text for n in model.fitted_.notes)
    assert coefs.loc["tau_mem", "identified"]
    # every coefficient that is fitted has an interval under the limit: nothing fitted is left unidentified
    fitted = coefs[coefs["fitted"]]
    assert (fitted["hi95"] / fitted["lo95"] <= 100).all() or fitted["status"].eq("NOT IDENTIFIED").any()


# -- 3. importers count what they drop ----------------------------------------------------------

def _splitwise(folder, powers):
    folder.mkdir(parents=True, exist_ok=True)
    n = len(powers)
    pd.DataFrame({"model": "llama2-70b", "hardware": "a100-80gb", "prompt_size": 512, "batch_size": 1,
                  "token_size": [128 + i for i in range(n)], "peak_power": 1.0, "average_power": powers,
                  "prompt_time": 196.0, "token_time": 55.0, "e2e_time": 7169.0, "tensor_parallel": 2}
                 ).to_csv(folder / "perf_model.csv", index=False)
    return folder


def _inference_bench(folder, powers, latencies):
    (folder / "power").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"Hardware": "Nvidia A100 GPU", "Num of Hardware": 1, "Framework": "vLLM",
                  "Model": "meta-llama/Llama-2-7b-hf", "Input Output Length": 1024,
                  "Batch Size": [1 + i for i in range(len(powers))], "Latency": latencies, "Throughput": 150.0,
                  "avg_power": powers}).to_csv(folder / "power" / "All_results.csv", index=False)
    return folder


def _v3(folder, energies):
    (folder / "models").mkdir(parents=True, exist_ok=True)
    (folder / "index.json").write_text("{}")
    configs = [{"gpu_model": "H100", "num_gpus": 1, "max_num_seqs": 8 * (k + 1), "avg_output_len": 500.0,
                "parallelization": {"tensor_parallel": 1, "expert_parallel": 1, "data_parallel": 1},
                "energy_per_request_joules": e, "energy_per_token_joules": None if e is None else e / 500,
                "median_itl_ms": 20.0} for k, e in enumerate(energies)]
    (folder / "models" / "Qwen__Qwen3-14B__gpqa.json").write_text(json.dumps(
        {"model_id": "Qwen/Qwen3-14B", "task": "gpqa", "architecture": "Dense Transformer",
         "weight_precision": "bfloat16", "total_params_billions": 14.0, "activated_params_billions": 14.0,
         "configurations": configs}))
    return folder


def _v2(folder, energies):
    for k, e in enumerate(energies):
        d = folder / "llm_text_generation" / "chat" / "H100 80GB HBM3" / "meta-llama" / "Llama-3.1-8B"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"bs{8 * (k + 1)}+tp1+pp1.json").write_text(json.dumps(
            {"Model": "meta-llama/Llama-3.1-8B", "GPU": "NVIDIA H100 80GB HBM3", "TP": 1, "PP": 1,
             "Energy/req (J)": e, "Avg TPOT (s)": 0.03, "Token tput (tok/s)": 700.0, "Avg Output Tokens": 150.0,
             "Avg BS (reqs)": 7.5, "Max BS (reqs)": 8 * (k + 1)}))
    return folder


@pytest.mark.parametrize("kind, build, kept, dropped", [
    ("splitwise", lambda d: _splitwise(d, [0.7, 0.0, 0.6, None, 0.0]), 2,
     {"without power (average_power 0 or empty: no energy)": 3}),
    ("llm-inference-bench", lambda d: _inference_bench(d, [230000.0, None, 250000.0, 240000.0], [13.0, 14.0, None, 15.0]), 2,
     {"without avg_power or Latency (no energy)": 2}),
    ("mlenergy-v3", lambda d: _v3(d, [900.0, None, 800.0]), 2, {"without energy (listed without a measurement)": 1}),
    ("mlenergy-v2", lambda d: _v2(d, [90.0, 80.0, None, None]), 2, {"without energy (listed without a measurement)": 2}),
])
def test_importers_count_dropped_rows(tmp_path, run_cli, kind, build, kept, dropped):
    from energylens.data.importers import detect_kind, drop_summary, import_dataset

    folder = build(tmp_path / kind)
    assert detect_kind(folder) == kind
    df = import_dataset(kind, folder)
    assert len(df) == kept and df.attrs["dropped"] == dropped
    assert df.attrs["rows_read"] == kept + sum(dropped.values())
    reason, n = next(iter(dropped.items()))
    line = f"dropped {n} of {kept + n} rows: {n} {reason}"
    assert drop_summary(df) == line
    code, out = run_cli("data", "import", kind, folder, "-o", tmp_path / "out.csv")
    assert code == 0 and line in " ".join(out.split()), out
    assert len(pd.read_csv(tmp_path / "out.csv")) == kept


def test_importer_that_drops_nothing_says_so(tmp_path, run_cli):
    folder = _v3(tmp_path / "v3", [900.0, 800.0])
    code, out = run_cli("data", "import", "mlenergy-v3", folder, "-o", tmp_path / "out.csv")
    assert code == 0 and "wrote 2 rows" in out and "dropped none of 2 rows" in out, out


def test_importer_that_drops_everything_says_why(tmp_path, run_cli):
    folder = _splitwise(tmp_path / "sw", [0.0, 0.0])
    code, out = run_cli("data", "import", "splitwise", folder, "-o", tmp_path / "out.csv")
    assert code == 2 and "no splitwise measurements found (dropped 2 of 2 rows" in out, out
    assert not (tmp_path / "out.csv").exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(powers=st.lists(st.one_of(st.none(), st.just(0.0), st.floats(0.05, 1.0)), min_size=1, max_size=12))
def test_splitwise_drop_count_matches_rows_without_power(tmp_path_factory, powers):
    from energylens.data.importers import import_dataset
    from energylens.errors import DataError

    folder = _splitwise(tmp_path_factory.mktemp("sw"), powers)
    bad = sum(p is None or p <= 0 for p in powers)
    if bad == len(powers):
        with pytest.raises(DataError, match=f"dropped {bad} of {bad} rows"):
            import_dataset("splitwise", folder)
        return
    df = import_dataset("splitwise", folder)
    assert len(df) == len(powers) - bad and sum(df.attrs["dropped"].values()) == bad


# -- 4. summary of a folder of schema files ---------------------------------------------------------

def test_summary_reads_a_folder_of_schema_files(tmp_path, run_cli, good_rows):
    folder = tmp_path / "runs"
    folder.mkdir()
    good_rows.to_csv(folder / "a.csv", index=False)
    other = good_rows.assign(gpu="A100 80GB")
    other.to_parquet(folder / "b.parquet", index=False)
    (folder / "README.md").write_text("# notes, not data\n")
    code, out = run_cli("data", "summary", folder)
    assert code == 0, out
    assert f"{folder}: 10 rows, 1 model, 2 GPUs (2 schema files: a.csv, b.parquet)" in " ".join(out.split())


def test_summary_of_a_folder_without_data_is_one_line(tmp_path, run_cli):
    (tmp_path / "README.md").write_text("nothing here\n")
    code, out = run_cli("data", "summary", tmp_path)
    assert code == 2 and len(out.strip().splitlines()) == 1 and "--kind" in out, out


def test_summary_of_gpu_prefill_decode(data_dir, run_cli):
    folder = data_dir / "gpu-prefill-decode"
    if not folder.exists():
        pytest.skip(f"{folder} not found")
    code, out = run_cli("data", "summary", folder)
    assert code == 0 and "66 rows, 3 models, 1 GPU (" in out and "prefill_energy_j" in out, out


# -- 5. a CPU-only profile gets one line from validate -------------------------------------------------

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
        "max_position_embeddings": 512}
CPU_LINE = "a CPU-only profile (energylens profile --allow-cpu): 2 rows of timings without energy or a GPU to describe"


def _one_error_line(code, out, path):
    lines = out.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in out, out
    assert lines[0].startswith(f"error: {path}"), out
    return lines[0]


def test_cpu_profile_then_validate_end_to_end(tmp_path, run_cli):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(TINY))
    out = tmp_path / "runs.csv"
    code, text = run_cli("profile", "--engine", "transformers", "--model", cfg, "--batch", "1,2", "--input-tokens", 8,
                         "--output-tokens", 3, "--repeats", 1, "--allow-cpu", "-o", out)
    assert code == 0 and "2 measured" in text, text
    assert pd.read_csv(out)["energy_request_j"].isna().all()
    for args in ((), ("--configs",)):
        code, text = run_cli("data", "validate", out, *args)
        assert CPU_LINE in _one_error_line(code, text, out)
    code, text = run_cli("fit", out, "-o", tmp_path / "m.json")
    assert CPU_LINE in _one_error_line(code, text, out) and not (tmp_path / "m.json").exists()


def test_cpu_rows_from_the_sweep_are_refused_with_their_reason(tmp_path, run_cli):
    """The same without torch: the sweep driven by a stand-in engine with no GPU."""
    from energylens.profile.devices import FakeGpu
    from energylens.profile.sweep import SweepSpec, run_sweep
    from test_profile import SleepyEngine

    spec = SweepSpec("meta-llama/Llama-3.2-1B", batch=[1, 2], input_tokens=[16], output_tokens=[4])
    cpu = tmp_path / "cpu.csv"
    assert run_sweep(spec.configurations(), SleepyEngine(), [], cpu, repeats=1, idle_seconds=0)["measured"] == 2
    code, text = run_cli("data", "validate", cpu)
    assert CPU_LINE in _one_error_line(code, text, cpu)
    # a GPU sweep's rows validate; a CPU row among them is named by its row
    gpu = tmp_path / "gpu.csv"
    run_sweep(spec.configurations(), SleepyEngine(), [FakeGpu(name="NVIDIA H100 80GB HBM3")], gpu, repeats=1,
              idle_seconds=0.01)
    code, text = run_cli("data", "validate", gpu)
    assert code == 0 and "2 rows valid" in text, text
    mixed = tmp_path / "mixed.csv"
    pd.concat([pd.read_csv(gpu), pd.read_csv(cpu).head(1)]).to_csv(mixed, index=False)
    line = _one_error_line(*run_cli("data", "validate", mixed), mixed)
    assert "row 3, column 'gpu': measured on the CPU" in line


def test_recalibrated_model_holds_base_values_without_flagging_them(tmp_path, run_cli):
    from energylens.evaluation.synthetic import synthetic_profiles
    from energylens.model.identification import HELD, UNSUPPORTED
    from energylens.model.modelfile import load_model

    rows = synthetic_profiles(n=6, seed=4).drop(columns=["prefill_energy_j", "decode_energy_j"])
    rows.to_csv(tmp_path / "few.csv", index=False)
    code, out = run_cli("fit", tmp_path / "few.csv", "--from", "default", "--choose", "recalibrate", "-o",
                        tmp_path / "tuned.json")
    assert code == 0, out
    model = load_model(tmp_path / "tuned.json")
    coefs = model.coefficients().set_index("name")
    held = set(model.fixed)
    assert held and (coefs.loc[sorted(held), "status"] == HELD).all()
    assert coefs.loc[sorted(held), "lo95"].isna().all()
    unsupported = {g for c in model.structure_.coefficients if coefs.loc[c.name, "status"] in UNSUPPORTED
                   for g in c.groups}
    for r in _explain_json(run_cli, tmp_path / "tuned.json", tmp_path / "few.csv"):
        assert set(r["shares_not_identified"]) <= unsupported, r


def test_summary_of_a_folder_of_several_datasets_names_them(tmp_path, run_cli):
    (tmp_path / "a" / "power").mkdir(parents=True)
    (tmp_path / "a" / "power" / "All_results.csv").write_text("x\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "perf_model.csv").write_text("x\n")
    code, out = run_cli("data", "summary", tmp_path)
    assert code == 2 and "several datasets" in out and "a: llm-inference-bench" in out and "b: splitwise" in out
    assert len(out.strip().splitlines()) == 1


def test_catalog_model_config_shows_warnings_plainly(run_cli):
    from pathlib import Path

    cfg = Path(__file__).parent / "data" / "hf_configs" / "llama-3.1-8b" / "config.json"
    code, out = run_cli("catalog", "--model-config", cfg, "--json")
    assert code == 0 and '"warnings": []' in out
    code, out = run_cli("catalog", "--model-config", cfg)
    assert code == 0 and "()" not in out and "none" in out


def test_recommend_needs_a_model_or_a_config_and_names_the_config(run_cli):
    from pathlib import Path

    code, out = run_cli("recommend", "--gpu", "H200")
    assert code == 2 and "--model" in out and len(out.strip().splitlines()) == 1
    cfg = Path(__file__).parent / "data" / "hf_configs" / "llama-3.1-8b" / "config.json"
    code, out = run_cli("recommend", "--model-config", cfg, "--gpu", "H100", "--max-gpus", "1", "--json")
    assert code == 0
    import json

    assert json.loads(out)["model"] == "llama-3.1-8b"
