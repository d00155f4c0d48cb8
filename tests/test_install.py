"""The plain install (`pip install .`, no extras) runs every core command, and an optional part that is
missing is one line naming its extra (exit 2). Here a missing extra is simulated by refusing its imports in a
child process; .ci/run also runs the commands on a real plain install (.ci/smoke-core)."""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path


from energylens.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# A child process in which no module of any extra can be found or imported runs the CLI on each argument list
# (JSON on stdin) and prints, as JSON, each run's exit code and what it wrote to stderr.
PLAIN = """
import contextlib, importlib.abc, importlib.util, io, json, sys
OPTIONAL = set(sys.argv[1].split(","))
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in OPTIONAL:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Refuse())
found = importlib.util.find_spec
importlib.util.find_spec = lambda name, package=None: None if name.split(".")[0] in OPTIONAL else found(name, package)
from energylens.cli.main import main
out = []
for args in json.load(sys.stdin):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    out.append([code, err.getvalue()])
print(json.dumps(out))
"""


def _plain(folder, runs):
    optional = ",".join(sorted({m for mods in EXTRAS.values() for m in mods}))
    r = subprocess.run([sys.executable, "-c", PLAIN, optional], input=json.dumps(runs), capture_output=True,
                       text=True, cwd=folder, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.splitlines()[-1])


CORE = [
    ["recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", "2", "--json"],
    ["catalog", "gpus"],
    ["data", "validate", "rows.csv"],
    ["fit", "rows.csv", "-o", "model.json", "--structure", "compact"],
    ["predict", "default", "rows.csv", "-o", "preds.parquet"],
    ["explain", "model.json", "rows.csv", "--rows", "2"],
    ["show", "default"],
]
OPTIONAL = [
    ("web", ["serve", "--port", "8765"]),
    ("discovery", ["discover", "rows.csv", "-o", "d.json"]),
    ("plot", ["recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", "1", "--plot", "f.png"]),
    ("baselines", ["evaluate", "--data", ".", "--out", "report"]),
    ("cluster", ["profile", "--cluster", "ray", "--model", "meta-llama/Llama-3.1-8B", "-o", "runs.csv"]),
]


def test_core_commands_need_no_extra_and_a_missing_extra_is_one_line_naming_it(tmp_path):
    from energylens.evaluation.synthetic import synthetic_profiles

    synthetic_profiles(n=30, seed=1).to_csv(tmp_path / "rows.csv", index=False)  # generated rows, not measurements
    results = _plain(tmp_path, CORE + [args for _, args in OPTIONAL])
    for args, (code, err) in zip(CORE, results):
        assert code == 0, (args, err[-500:])
    for (extra, args), (code, err) in zip(OPTIONAL, results[len(CORE):]):
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
        assert re.search(rf"energylens\[[a-z,]*{extra}", err), (args, err)


def test_every_extra_named_in_messages_exists():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    named = set()
    for path in (ROOT / "src").rglob("*.py"):
        named |= {n for group in re.findall(r"energylens\[([a-z,]+)\]", path.read_text()) for n in group.split(",")}
    assert named and named <= set(extras), named - set(extras)


def test_what_core_commands_read_is_a_core_dependency():
    core = {re.split(r"[<>=!~ ;\[]", d)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    assert "pyarrow" in core  # data/stream.py streams predict's and explain's files with it


def test_ci_runs_the_readme_set_up_and_test_commands_verbatim():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```sh\n(.*?)^```", readme, re.S | re.M)
    first, tests = blocks[0].splitlines(), blocks[1]
    assert first[0] == "python3 -m venv .venv && . .venv/bin/activate"
    assert any(line.startswith("python -m pip install . && energylens recommend") for line in first)
    assert 'pip install ".[test]"' in tests and "pytest" in tests
    run = (ROOT / ".ci" / "run").read_text()
    assert "readme_block 1" in run and "readme_block 2" in run and ".ci/smoke-core" in run
