"""Usage errors (bad option values, unknown options, missing arguments) are one line and exit code 2 for
every command; --help and --version still print and exit 0."""
import subprocess
import sys

import pytest

from energylens import __version__

CASES = [
    # recommend
    (["recommend", "--model", "m", "--gpu", "H100", "--top", "0"], "--top"),
    (["recommend", "--model", "m", "--gpu", "H100", "--max-gpus", "abc"], "--max-gpus"),
    (["recommend", "--model", "m", "--gpu", "H100", "--input-tokens", "many"], "--input-tokens"),
    (["recommend", "--model", "m", "--gpu", "H100", "--bogus"], "--bogus"),
    (["recommend", "--gpu", "H100"], "--model"),
    (["recommend", "--model", "m"], "--gpu"),
    (["recommend", "--model", "m", "--gpu"], "--gpu"),  # option without its value
    # fit
    (["fit", "d.csv", "-o", "m.json", "--samples", "0"], "--samples"),
    (["fit", "d.csv", "-o", "m.json", "--seed", "abc"], "--seed"),
    (["fit", "d.csv", "-o", "m.json", "--bogus"], "--bogus"),
    (["fit", "d.csv"], "--output"),
    (["fit", "-o", "m.json"], "data"),
    # predict
    (["predict", "m.json", "c.csv", "-o", "p.csv", "--bogus"], "--bogus"),
    (["predict", "m.json", "c.csv"], "--output"),
    (["predict", "m.json", "-o", "p.csv"], "configs"),
    # data validate
    (["data", "validate", "f.csv", "--bogus"], "--bogus"),
    (["data", "validate"], "file"),
    (["data", "validate", "a.csv", "b.csv"], "b.csv"),  # extra argument
    (["data", "nope"], "nope"),
    # other commands
    (["explain", "m.json", "c.csv", "--rows", "0"], "--rows"),
    (["explain", "m.json", "c.csv", "--rows", "abc"], "--rows"),
    (["show"], "model_file"),
    (["plan", "--model", "m", "--gpu", "H100", "-o", "s.csv", "--max-gpus", "abc"], "--max-gpus"),
    (["plan", "--model", "m", "--gpu", "H100", "-o", "s.csv", "--budget", "0"], "--budget"),
    (["profile", "--model", "m", "-o", "r.csv", "--repeats", "0"], "--repeats"),
    (["profile", "--model", "m"], "--output"),
    (["discover", "d.csv", "--population", "5"], "--population"),
    (["evaluate", "--bogus"], "--bogus"),
    (["catalog", "--json", "--bogus"], "--bogus"),
    (["nope"], "nope"),
    (["--bogus"], "--bogus"),
]


@pytest.mark.parametrize("args, name", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_usage_error_is_one_line_exit_2(run_cli, args, name):
    code, out = run_cli(*args)
    assert code == 2, out
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    line = lines[0]
    assert line.startswith("error: ") and name.lower() in line.lower(), out
    assert "Traceback" not in out and "internal error" not in out and "╭" not in out  # no usage box


def test_usage_error_points_to_the_commands_help(run_cli):
    code, out = run_cli("data", "validate", "--bogus")
    assert code == 2 and "energylens data validate --help" in out


@pytest.mark.parametrize("args", [["--help"], ["recommend", "--help"], ["fit", "--help"], ["data", "--help"],
                                  ["data", "validate", "--help"], ["profile", "--help"]])
def test_help_still_works(run_cli, args):
    code, out = run_cli(*args)
    assert code == 0, out
    assert "Usage" in out and "--help" in out and "error:" not in out


def test_version(run_cli):
    code, out = run_cli("--version")
    assert code == 0 and out.strip() == f"energylens {__version__}"


def test_no_arguments_prints_the_help(run_cli):
    code, out = run_cli()
    assert code in (0, 2) and "Usage" in out and "recommend" in out and "error:" not in out
    code, out = run_cli("data")
    assert code in (0, 2) and "validate" in out and "error:" not in out


def test_success_exits_0(run_cli):
    code, out = run_cli("catalog", "gpus", "--json")
    assert code == 0 and out.strip().startswith(("{", "["))


def test_real_process_exit_codes(tmp_path):
    """The installed entry point (python -m energylens), outside pytest's capture: stderr is one line."""
    run = lambda *a: subprocess.run([sys.executable, "-m", "energylens", *a], capture_output=True, text=True,  # noqa: E731
                                    timeout=120, cwd=tmp_path)
    bad = run("recommend", "--model", "m", "--gpu", "H100", "--top", "0")
    assert bad.returncode == 2 and bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert bad.stderr.startswith("error: ") and "--top" in bad.stderr
    ok = run("--help")
    assert ok.returncode == 0 and "recommend" in ok.stdout and ok.stderr == ""
