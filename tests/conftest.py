import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path | None:
    env = os.environ.get("ENERGYLENS_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


TEST_COLUMNS = "250"  # wide enough that no checked line wraps, whatever the user's terminal


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Tests do not depend on the user's terminal: $COLUMNS is TEST_COLUMNS unless a test sets its own
    (monkeypatch.setenv("COLUMNS", ...) or CliRunner's env) to check a width."""
    monkeypatch.setenv("COLUMNS", TEST_COLUMNS)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if root is None:
        pytest.skip("real data folder not found: set ENERGYLENS_DATA or place shared/data beside the repository")
    return root


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout + stderr)."""
    from energylens.cli.main import main

    def run(*args):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return code, out.out + out.err

    return run


def config_rows(n=8, seed=0, model="meta-llama/Llama-3.1-8B", gpu="H100"):
    """Configurations of one model on one GPU with varied batch and lengths (no measurements)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "model": model, "gpu": gpu, "num_gpus": 1, "tp": 1, "pp": 1,
        "batch_size": rng.choice([1, 4, 16, 64, 128], n),
        "input_tokens": rng.choice([128, 512, 2048], n).astype(float),
        "output_tokens": rng.choice([64, 256, 512], n).astype(float),
    })


@pytest.fixture
def good_rows():
    df = config_rows(5)
    df["energy_request_j"] = [10.0, 20.0, 30.0, 40.0, 50.0]
    return df


def temp_files(folder: Path) -> list[str]:
    """Names of the temporary files an atomic write leaves in `folder` while it is under way."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


def default_signals() -> None:
    """preexec_fn of a child whose signal tests must not depend on how the suite was started: a wrapper such as
    nohup or a background job leaves SIGHUP or SIGINT ignored, which a child inherits (and rightly keeps)."""
    import signal

    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def interrupt_mid_write(proc, folder: Path, sig: int, start_timeout_s: float = 60) -> None:
    """Send `sig` to `proc` once a temporary file appears in `folder` (a write under way), then reap it."""
    import time

    try:
        deadline = time.monotonic() + start_timeout_s
        while not temp_files(folder):
            assert proc.poll() is None and time.monotonic() < deadline, "the process never started a write"
            time.sleep(0.002)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
