"""Profiling sweeps on Ray and parallel evaluation: a local Ray on the CPU with fake GPU resources.

The Ray tests are marked `ray` and skip with a reason when Ray is not installed (`pip install
".[cluster]"`; the `test` extra installs it, so CI runs them)."""
import functools
import json
import os
import socket
import sys

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from energylens.profile.sweep import SweepSpec, failed_path

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
        "max_position_embeddings": 512}
FAKE_GPUS = 2  # declared to Ray, not present: tasks are scheduled by num_gpus and measure on the CPU
KEY = ["tp", "batch_size", "input_tokens"]

try:
    import ray
except ImportError:
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install '.[cluster]')")


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        pytest.skip("a Ray runtime is already running in this process")
    ray.init(num_cpus=2, num_gpus=FAKE_GPUS, include_dashboard=False, log_to_driver=False)
    # The test engine below travels to the workers by value (tests/ is not importable there).
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


class KillingEngine:
    """The transformers engine on a tiny config that notes each attempt (with the GPU ids Ray assigned) in
    `marks`, and makes its worker process exit mid-measurement for the configurations in `kill_once`
    (first attempt only) and `kill_always`: a worker lost mid-sweep. tp is Ray's business here (the
    GPUs it reserves); the model itself runs at tp = 1 on the CPU."""

    name = "transformers"
    decode_includes_prefill = False

    def __init__(self, marks, kill_once=(), kill_always=(), device="cpu"):
        from energylens.profile.engines import TransformersEngine

        self.inner, self.marks = TransformersEngine(device=device), marks
        self.kill_once, self.kill_always = set(kill_once), set(kill_always)
        self.sync = self.inner.sync

    def load(self, model, tp=1, pp=1):
        self.tp = tp
        self.inner.load(model, 1, 1)

    def prefill(self, batch, input_tokens):
        key = f"{self.tp}-{batch}-{input_tokens}"
        if not hasattr(self, "noted"):  # once per measurement, before its warm-up
            self.noted = True
            before = [p for p in os.listdir(self.marks) if p.startswith(key + "_")]
            with open(os.path.join(self.marks, f"{key}_{len(before)}_{os.getpid()}"), "w") as f:
                json.dump([str(i) for i in ray.get_gpu_ids()], f)
            if key in self.kill_always or (key in self.kill_once and not before):
                os._exit(1)  # the worker process dies mid-measurement, as on a lost node
        return self.inner.prefill(batch, input_tokens)

    def decode(self, state, output_tokens):
        return self.inner.decode(state, output_tokens)

    def release(self):
        self.inner.release()


def _attempts(marks) -> dict:
    out = {}
    for name in os.listdir(marks):
        key = name.split("_")[0]
        out.setdefault(key, []).append(json.loads(open(os.path.join(marks, name)).read()))
    return out


@pytest.fixture
def tiny(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(TINY))
    return str(cfg)


@needs_ray
@pytest.mark.ray
def test_lost_workers_are_retried_and_every_configuration_recorded_once(local_ray, tmp_path, tiny):
    from energylens.profile.cluster import run_ray_sweep

    marks = tmp_path / "marks"
    marks.mkdir()
    configs = SweepSpec(tiny, tp=[1, 2], batch=[1, 2], input_tokens=[8, 16], output_tokens=[3]).configurations()
    assert len(configs) == 8
    out = tmp_path / "runs.csv"
    killer = functools.partial(KillingEngine, str(marks), kill_once={"2-1-8"}, kill_always={"1-2-16"})
    counts = run_ray_sweep(configs, killer, out, repeats=1, warmup=1, retries=1, allow_cpu=True)
    assert counts == {"measured": 7, "skipped": 0, "failed": 1, "previously_failed": 0}
    attempts = _attempts(marks)
    assert len(attempts["2-1-8"]) == 2  # killed once, retried, measured
    assert len(attempts["1-2-16"]) == 2  # killed on every try: 1 retry, then recorded as failed
    assert len(attempts) == 8 and all(len(a) == 1 for k, a in attempts.items() if k not in ("2-1-8", "1-2-16"))
    # Ray scheduled by num_gpus = tp x pp: every attempt held that many (fake) GPUs.
    for key, tries in attempts.items():
        assert all(len(ids) == int(key.split("-")[0]) for ids in tries), (key, tries)
    df = pd.read_csv(out)
    assert len(df) == 7 and not df.duplicated(KEY).any()
    assert (df["node"] == socket.gethostname()).all() and df["gpu_uuids"].isna().all()  # CPU: no GPU measured
    assert (df["raw_repeats"] == 1).all() and df["energy_request_j"].isna().all() and (df["itl_s"] > 0).all()
    failed = pd.read_csv(failed_path(out))
    assert failed[KEY].values.tolist() == [[1, 2, 16]]
    assert failed["reason"].iloc[0].startswith("worker or node lost, 1 retries spent"), failed["reason"].iloc[0]

    # Resumed: nothing measured twice, the failed configuration skipped...
    counts = run_ray_sweep(configs, killer, out, repeats=1, retries=1, allow_cpu=True)
    assert counts == {"measured": 0, "skipped": 7, "failed": 0, "previously_failed": 1}
    assert _attempts(marks) == attempts
    # ...until retried: it alone runs, and leaves the failed file.
    healthy = functools.partial(KillingEngine, str(marks))
    counts = run_ray_sweep(configs, healthy, out, repeats=1, retries=1, allow_cpu=True, retry_failed=True)
    assert counts == {"measured": 1, "skipped": 7, "failed": 0, "previously_failed": 0}
    assert {k: len(v) for k, v in _attempts(marks).items() if len(v) != len(attempts[k])} == {"1-2-16": 3}
    df = pd.read_csv(out)
    assert len(df) == 8 and not df.duplicated(KEY).any() and not failed_path(out).exists()


@needs_ray
@pytest.mark.ray
def test_configuration_larger_than_any_node_is_recorded_not_queued(local_ray, tmp_path, tiny):
    from energylens.profile.cluster import run_ray_sweep
    from energylens.profile.engines import make_engine

    configs = SweepSpec(tiny, tp=[FAKE_GPUS + 1], batch=[1], input_tokens=[8], output_tokens=[2]).configurations()
    out = tmp_path / "runs.csv"
    counts = run_ray_sweep(configs, functools.partial(make_engine, "transformers"), out, repeats=1, allow_cpu=True)
    assert counts["failed"] == 1 and not out.exists()
    reason = pd.read_csv(failed_path(out))["reason"].iloc[0]
    assert reason == f"needs {FAKE_GPUS + 1} GPUs on one node; the largest node of the Ray cluster has {FAKE_GPUS}"


@needs_ray
@pytest.mark.ray
def test_cli_profile_on_ray_matches_the_local_sweep_rows(local_ray, run_cli, tmp_path, tiny):
    out_ray, out_local = tmp_path / "ray.csv", tmp_path / "local.csv"
    grid = ["--model", tiny, "--engine", "transformers", "--batch", "1,2", "--input-tokens", 8, "--output-tokens", 3,
            "--repeats", 2, "--allow-cpu"]
    code, text = run_cli("profile", *grid, "--cluster", "ray", "-o", out_ray)
    assert code == 0 and "2 measured, 0 already" in text, text
    code, text = run_cli("profile", *grid, "-o", out_local)
    assert code == 0 and "2 measured" in text, text
    ray_rows, local_rows = pd.read_csv(out_ray), pd.read_csv(out_local)
    assert list(ray_rows.columns) == list(local_rows.columns)
    assert ray_rows[["batch_size", "raw_repeats", "node"]].values.tolist() == \
        local_rows[["batch_size", "raw_repeats", "node"]].values.tolist()
    code, text = run_cli("profile", *grid, "--cluster", "ray", "-o", out_ray)
    assert code == 0 and "0 measured, 2 already" in text, text


def test_cluster_option_without_ray_names_the_extra(run_cli, tmp_path, monkeypatch, tiny):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    code, text = run_cli("profile", "--model", tiny, "--engine", "transformers", "--batch", 1, "--input-tokens", 8,
                         "--output-tokens", 2, "--allow-cpu", "--cluster", "ray", "-o", tmp_path / "r.csv")
    lines = text.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "pip install 'energylens[cluster]'" in lines[0], text
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("text", ["slurm", "ray=", "", "ray:head"])
def test_bad_cluster_option_is_one_line(run_cli, tmp_path, text, tiny):
    code, out = run_cli("profile", "--model", tiny, "--engine", "transformers", "--allow-cpu", "--cluster", text,
                        "-o", tmp_path / "r.csv")
    assert code == 2 and len(out.strip().splitlines()) == 1 and "--cluster" in out, out


def test_cluster_address_parsing():
    from energylens.profile.cluster import parse_cluster

    assert parse_cluster("ray") is None and parse_cluster(" RAY ") is None
    assert parse_cluster("ray=head:6379") == "head:6379" and parse_cluster("ray=ray://10.0.0.1:10001") == "ray://10.0.0.1:10001"


@given(st.text(max_size=40))
def test_cluster_option_parses_or_says_what_it_expects(text):
    from energylens.errors import EnergyLensError
    from energylens.profile.cluster import parse_cluster

    try:
        address = parse_cluster(text)
    except EnergyLensError as exc:
        assert str(exc).startswith("--cluster expects ray or ray=ADDRESS") and "\n" not in str(exc)
        return
    kind, _, rest = text.strip().partition("=")
    assert kind.strip().lower() == "ray" and address == (rest.strip() or None)


def test_gpus_with_cluster_is_refused(run_cli, tmp_path, tiny):
    code, out = run_cli("profile", "--model", tiny, "--allow-cpu", "--cluster", "ray", "--gpus", "0", "-o", tmp_path / "r.csv")
    assert code == 2 and len(out.strip().splitlines()) == 1 and "--gpus" in out and "--cluster" in out, out


# --- evaluate --jobs / --cluster ray: the same results as a serial run ---

def _small_evaluation(**kwargs) -> str:
    """A small evaluation (two selection seeds, two GPU pairs) on synthetic rows, as JSON text without
    its run time: equal text means equal results, NaNs and failure log included."""
    import warnings

    from energylens.evaluation.runner import Plan, run_evaluation
    from energylens.evaluation.synthetic import synthetic_profiles

    df = synthetic_profiles(n=200, seed=3)
    df = df[df["gpu"].isin(sorted(df["gpu"].unique())[:2])].reset_index(drop=True)
    plan = Plan(seeds=(0, 1), kinds=("deployment",), datasets=("synthetic",), curve_sizes=(20,), curve_seeds=(0,),
                hardware_seeds=(0,), extras=False)
    steps = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_evaluation(plan=plan, sets={"synthetic": df}, progress=lambda i, n, label: steps.append((i, n)),
                             **kwargs)
    assert steps and steps[-1][0] == steps[-1][1] and [i for i, _ in steps] == list(range(1, len(steps) + 1))
    res.pop("elapsed_s")
    assert len({r["seed"] for r in res["selection"]}) == 2 and res["unseen_hardware"]
    assert res["failures"]["per_method"]["energylens"]["attempts"] > 0
    return json.dumps(res, default=str)


@pytest.fixture(scope="module")
def serial_evaluation():
    return _small_evaluation()


def test_evaluation_over_processes_equals_the_serial_run(serial_evaluation):
    assert _small_evaluation(jobs=2) == serial_evaluation


@needs_ray
@pytest.mark.ray
def test_evaluation_over_ray_equals_the_serial_run(local_ray, serial_evaluation):
    assert _small_evaluation(cluster="") == serial_evaluation


def test_evaluate_cluster_without_ray_names_the_extra(run_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    code, text = run_cli("evaluate", "--data", tmp_path, "--out", tmp_path / "report", "--cluster", "ray")
    lines = text.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "pip install 'energylens[cluster]'" in lines[0], text
