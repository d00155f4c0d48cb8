"""Output paths and hostile input files: one-line errors (exit code 2) before any work, atomic writes
that keep the umask's mode and leave no temporary file behind, readers that never shift a value."""
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import default_signals, interrupt_mid_write, temp_files

from energylens.errors import EnergyLensError
from energylens.io import (atomic_write_bytes, atomic_write_text, read_json, read_table, read_toml,
                           remove_stale_temps, write_table)


def _one_line_error(code, out):
    lines = out.strip().splitlines()
    return code == 2 and "Traceback" not in out and len(lines) == 1 and lines[0].startswith("error: ")


@pytest.fixture
def data(tmp_path, good_rows):
    p = tmp_path / "data.csv"
    good_rows.to_csv(p, index=False)
    return p


def _commands(tmp_path, data, out):
    """Every command that writes a file, with `out` as that file (each fails fast, before its work)."""
    model = tmp_path / "m.json"
    model.write_text("{}")  # never read: the output check comes first
    return {
        "fit": ("fit", data, "-o", out),
        "predict": ("predict", model, data, "-o", out),
        "data import": ("data", "import", "mlenergy-v2", tmp_path, "-o", out),
        "plan": ("plan", "--model", "Qwen/Qwen3-8B", "--gpu", "H100", "--budget", 3, "-o", out),
        "discover": ("discover", data, "-o", out),
        "discover --front": ("discover", data, "--front", out),
        "recommend --plot": ("recommend", "--model", "Qwen/Qwen3-8B", "--gpu", "H100", "--plot", out),
    }


@pytest.mark.parametrize("cmd", ["fit", "predict", "data import", "plan", "discover", "discover --front",
                                 "recommend --plot"])
def test_output_is_a_folder(tmp_path, data, run_cli, cmd):
    target = tmp_path / "out"
    target.mkdir()
    code, out = run_cli(*_commands(tmp_path, data, target)[cmd])
    assert _one_line_error(code, out), out
    assert "is a folder" in out and str(target) in out
    assert list(target.iterdir()) == [] and temp_files(tmp_path) == []


@pytest.mark.parametrize("cmd", ["fit", "predict", "data import", "recommend --plot"])
def test_output_under_a_regular_file(tmp_path, data, run_cli, cmd):
    code, out = run_cli(*_commands(tmp_path, data, data / "x.out")[cmd])
    assert _one_line_error(code, out), out
    assert f"{data} is a file, not a folder" in out
    assert data.is_file()


def test_output_equal_to_an_input_is_refused(tmp_path, data, run_cli):
    before = data.read_bytes()
    code, out = run_cli("fit", data, "-o", data)
    assert _one_line_error(code, out) and "is also an input" in out, out
    model = tmp_path / "m.json"
    model.write_text('{"keep": 1}')
    code, out = run_cli("predict", model, data, "-o", model)
    assert _one_line_error(code, out) and "is also an input" in out, out
    # the same file by another name: a symbolic link, a hard link, a path with '..'
    (tmp_path / "link.json").symlink_to(model)
    os.link(data, tmp_path / "hard.csv")
    for args in (("predict", model, data, "-o", tmp_path / "link.json"),
                 ("predict", model, data, "-o", tmp_path / "hard.csv"),
                 ("fit", data, "-o", tmp_path / "sub" / ".." / "data.csv"),
                 ("fit", data, "--from", model, "-o", model)):
        (tmp_path / "sub").mkdir(exist_ok=True)
        code, out = run_cli(*args)
        assert _one_line_error(code, out) and "is also an input" in out, (args, out)
    assert data.read_bytes() == before and model.read_text() == '{"keep": 1}'
    # two outputs of one command on one path
    code, out = run_cli("discover", data, "-o", tmp_path / "same", "--front", tmp_path / "same")
    assert _one_line_error(code, out) and "another output" in out and not (tmp_path / "same").exists(), out


@pytest.mark.parametrize("cmd", ["fit", "predict", "recommend --plot"])
def test_missing_output_folder_is_refused_not_created(tmp_path, data, run_cli, cmd):
    target = tmp_path / "no" / "such" / "out.x"
    code, out = run_cli(*_commands(tmp_path, data, target)[cmd])
    assert _one_line_error(code, out), out
    assert f"folder {tmp_path / 'no' / 'such'} does not exist" in out
    assert not (tmp_path / "no").exists()
    with pytest.raises(EnergyLensError, match="does not exist"):  # the library refuses too
        atomic_write_text(target, "x")
    assert not (tmp_path / "no").exists()


def test_evaluate_out_folder_checks(tmp_path, data, run_cli):
    code, out = run_cli("evaluate", "--out", data, "--quick")
    assert _one_line_error(code, out) and "expected a folder" in out, out
    code, out = run_cli("evaluate", "--out", tmp_path / "a" / "b", "--quick")
    assert _one_line_error(code, out) and "does not exist" in out and not (tmp_path / "a").exists(), out


def test_written_files_follow_the_umask(tmp_path, good_rows):
    old = os.umask(0o027)
    try:
        write_table(good_rows, tmp_path / "a.csv")
        atomic_write_text(tmp_path / "b.json", "{}")
        os.umask(0o002)
        atomic_write_text(tmp_path / "c.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.csv").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "c.txt").stat().st_mode) == 0o664
    # a replaced file keeps its mode, as open() would; a symbolic link stays a link to the new content
    os.chmod(tmp_path / "c.txt", 0o600)
    atomic_write_text(tmp_path / "c.txt", "y")
    assert stat.S_IMODE((tmp_path / "c.txt").stat().st_mode) == 0o600
    (tmp_path / "l.txt").symlink_to("c.txt")
    atomic_write_text(tmp_path / "l.txt", "z")
    assert (tmp_path / "l.txt").is_symlink() and (tmp_path / "c.txt").read_text() == "z"
    assert temp_files(tmp_path) == []


_WRITER = """
import sys
from energylens.io import atomic_write_bytes
data = b"x" * (48 << 20)
while True:
    atomic_write_bytes(sys.argv[1], data)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_during_a_write_leaves_no_temp_file(tmp_path, sig):
    target = tmp_path / "big.bin"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stderr=subprocess.DEVNULL,
                            preexec_fn=default_signals)
    interrupt_mid_write(proc, tmp_path, sig, start_timeout_s=30)
    assert proc.returncode in (-sig, 128 + sig, 130, 1), proc.returncode
    assert temp_files(tmp_path) == []
    assert not target.exists() or target.stat().st_size == 48 << 20  # the old file or a complete new one


def test_a_write_restores_signal_handlers_and_mask(tmp_path):
    import threading

    def custom(signum, frame):
        pass

    old_term = signal.signal(signal.SIGTERM, custom)
    try:
        before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT),
                  signal.pthread_sigmask(signal.SIG_BLOCK, []))
        atomic_write_text(tmp_path / "a.txt", "x")
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT),
                signal.pthread_sigmask(signal.SIG_BLOCK, [])) == before
        errors = []
        th = threading.Thread(target=lambda: _catch(errors, atomic_write_text, tmp_path / "b.txt", "y"))
        th.start()
        th.join()
        assert errors == [] and (tmp_path / "b.txt").read_text() == "y"  # no handlers outside the main thread
    finally:
        signal.signal(signal.SIGTERM, old_term)
    assert temp_files(tmp_path) == []


def _catch(errors, fn, *args):
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        errors.append(exc)


def test_stale_temp_files_of_our_pattern_are_removed(tmp_path):
    target = tmp_path / "out.csv"
    old = time.time() - 2 * 3600
    dead_pid = 4_194_304 + 12_345  # above Linux's largest pid: no such process
    files = {
        f".out.csv.{dead_pid}.abcd1234.tmp": (time.time() - 120, False),  # dead writer, past the grace
        f".out.csv.{os.getpid()}.abcd1234.tmp": (old, False),  # alive but an hour old
        ".out.csv.zz_9ab12.tmp": (old, False),  # an earlier version's name, an hour old
        f".out.csv.{os.getpid()}.fresh123.tmp": (time.time(), True),  # a live writer's
        f".out.csv.{dead_pid}.justnow1.tmp": (time.time(), True),  # dead, but within the grace
        ".out.csv.abc.tmp": (old, True),  # not our pattern
        ".other.csv.abcd1234.tmp": (old, True),  # another target's
        "out.csv.abcd1234.tmp": (old, True),  # not hidden: not ours
        ".out.csv.abcd1234.tmp.keep": (old, True),
    }
    for name, (mtime, _) in files.items():
        (tmp_path / name).write_text("partial")
        os.utime(tmp_path / name, (mtime, mtime))
    (tmp_path / f".out.csv.{dead_pid}.folder12.tmp").mkdir()  # not a regular file
    os.utime(tmp_path / f".out.csv.{dead_pid}.folder12.tmp", (old, old))
    atomic_write_text(target, "a,b\n1,2\n")
    for name, (_, kept) in files.items():
        assert (tmp_path / name).exists() == kept, name
    assert (tmp_path / f".out.csv.{dead_pid}.folder12.tmp").is_dir()
    assert remove_stale_temps(target) == [] and target.read_text() == "a,b\n1,2\n"


@pytest.mark.parametrize("where", ["folder", "proc", "sys"])
def test_plot_path_checked_before_the_ranking(tmp_path, run_cli, where):
    plot = {"folder": tmp_path, "proc": Path("/proc/energylens-test.png"), "sys": Path("/sys/energylens-test.png")}[where]
    if where != "folder" and not plot.parent.is_dir():
        pytest.skip(f"no {plot.parent} here")
    code, out = run_cli("recommend", "--model", "Qwen/Qwen3-8B", "--gpu", "H100", "--max-gpus", 2, "--plot", plot)
    assert _one_line_error(code, out), out  # one line: the ranking was never printed
    assert f"--plot {plot}" in out and not plot.is_file()


def _hostile(tmp_path, kind, suffix):
    p = tmp_path / f"{kind}{suffix}"
    if kind == "folder":
        p.mkdir()
    elif kind == "latin1":
        p.write_bytes(b'{"caf\xe9": 1}\n' if suffix == ".json" else b'name = "caf\xe9"\n')
    elif kind == "deep":
        p.write_text("[" * 200_000 if suffix == ".json" else "a = " + "[" * 200_000)
    elif kind == "under_file":
        (tmp_path / "plain").write_text("x")
        p = tmp_path / "plain" / f"x{suffix}"
    return p


@pytest.mark.parametrize("reader, suffix", [(read_json, ".json"), (read_toml, ".toml")])
@pytest.mark.parametrize("kind, expect", [("folder", "is a folder"), ("latin1", "not a UTF-8"),
                                          ("deep", "nested too deeply"), ("under_file", "not a folder")])
def test_read_json_and_toml_hostile_files(tmp_path, reader, suffix, kind, expect):
    p = _hostile(tmp_path, kind, suffix)
    with pytest.raises(EnergyLensError) as err:
        reader(p, what="catalog file")
    msg = str(err.value)
    assert expect in msg and str(p) in msg and len(msg.splitlines()) == 1 and len(msg) < 300


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
@pytest.mark.parametrize("reader, suffix", [(read_json, ".json"), (read_toml, ".toml")])
def test_read_json_and_toml_permission_denied(tmp_path, reader, suffix):
    p = tmp_path / f"secret{suffix}"
    p.write_text("{}" if suffix == ".json" else "a = 1")
    p.chmod(0)
    with pytest.raises(EnergyLensError, match="permission denied"):
        reader(p)


@pytest.mark.parametrize("reader, suffix", [(read_json, ".json"), (read_toml, ".toml")])
def test_read_json_and_toml_permission_error_mapped(tmp_path, monkeypatch, reader, suffix):
    """The same as above where the tests run as root: the reader's open raises PermissionError."""
    import energylens.io as eio

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    monkeypatch.setattr(eio, "open", denied, raising=False)
    p = tmp_path / f"secret{suffix}"
    with pytest.raises(EnergyLensError, match="permission denied") as err:
        reader(p)
    assert str(p) in str(err.value) and len(str(err.value).splitlines()) == 1


def test_hostile_model_and_catalog_files_from_the_cli(tmp_path, run_cli):
    deep = _hostile(tmp_path, "deep", ".json")
    code, out = run_cli("show", deep)
    assert _one_line_error(code, out) and "nested too deeply" in out, out
    toml = _hostile(tmp_path, "latin1", ".toml")
    code, out = run_cli("recommend", "--model", "Qwen/Qwen3-8B", "--gpu", "H100", "--hardware-catalog", toml)
    assert _one_line_error(code, out) and "not a UTF-8" in out, out


def test_ragged_csv_row_is_refused_naming_the_row(tmp_path, data, run_cli):
    lines = data.read_text().splitlines()
    lines[3] += ",7"  # data row 3 gets a field the header lacks
    bad = tmp_path / "ragged.csv"
    bad.write_text("\n".join(lines) + "\n")
    code, out = run_cli("data", "validate", bad)
    assert _one_line_error(code, out), out
    assert f"{bad}, row 3: 10 fields but the header has 9" in out
    # every row longer than the header: pandas would make the first column the index and shift the rest
    every = tmp_path / "every.csv"
    every.write_text("a,b\n1,2,3\n4,5,6\n")
    with pytest.raises(EnergyLensError, match="row 1: 3 fields"):
        read_table(every)
    # row numbers count data rows as the schema does (blank lines skipped)
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("a,b\n\n1,2\n\n3,4\n5,6,x\n")
    with pytest.raises(EnergyLensError, match="row 3: 3 fields"):
        read_table(gaps)
    # the schema numbers the same row of the same file as row 3
    df = pd.read_csv(data)
    df["batch_size"] = df["batch_size"].astype(object)
    df.loc[2, "batch_size"] = "lots"
    df.to_csv(tmp_path / "schema_bad.csv", index=False)
    code, out = run_cli("data", "validate", tmp_path / "schema_bad.csv")
    assert code == 2 and "row 3, column 'batch_size'" in out, out


def test_trailing_delimiters_are_not_ragged(tmp_path):
    p = tmp_path / "trailing.csv"
    p.write_text("a,b\n1,2,\n3,4,\n")
    df = read_table(p)
    assert list(df.columns) == ["a", "b"] and df["a"].tolist() == [1, 3] and df["b"].tolist() == [2, 4]


def test_duplicated_header_is_refused_naming_the_column(tmp_path, data, run_cli):
    lines = data.read_text().splitlines()
    lines[0] = lines[0].replace("pp", "tp")
    bad = tmp_path / "dup.csv"
    bad.write_text("\n".join(lines) + "\n")
    code, out = run_cli("data", "validate", bad)
    assert _one_line_error(code, out), out
    assert "column 'tp': column appears twice in the header" in out


def test_echoed_values_are_truncated(tmp_path):
    huge = "n" * 1_000_000
    p = tmp_path / "huge.csv"
    p.write_text(f"{huge},a,{huge}\n1,2,3\n")
    with pytest.raises(EnergyLensError) as err:
        read_table(p)
    msg = str(err.value)
    assert len(msg) < 300 and "n" * 60 + "…" in msg and "n" * 61 not in msg
    p.write_text(f"a,b\n1,2,{huge}\n")
    with pytest.raises(EnergyLensError) as err:
        read_table(p)
    assert "row 1" in str(err.value) and len(str(err.value)) < 300
    p.write_text(f'"line\nbreak{huge}",a,"line\nbreak{huge}"\n1,2,3\n')
    with pytest.raises(EnergyLensError) as err:
        read_table(p)
    assert len(str(err.value).splitlines()) == 1 and len(str(err.value)) < 300


def test_library_writes_refuse_a_folder_target(tmp_path):
    with pytest.raises(EnergyLensError, match="is a folder"):
        atomic_write_bytes(tmp_path, b"x")
    (tmp_path / "f").write_text("x")
    with pytest.raises(EnergyLensError, match="not a folder"):
        atomic_write_bytes(tmp_path / "f" / "x", b"x")
    assert temp_files(tmp_path) == []


_CSVISH = st.lists(st.sampled_from(['a', 'b', 'tp', ',', '"', '\n', '\r', ' ', '1', '2.5', '\x00', 'é', '\xff',
                                    '[', '{', '}', ']', ':', '=', 'x' * 80]), max_size=60).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=200), _CSVISH.map(lambda s: s.encode("utf-8", "surrogatepass")),
                     _CSVISH.map(lambda s: s.encode("latin-1", "replace"))))
def test_random_bytes_load_or_give_one_short_line(tmp_path, raw):
    for name, reader in (("r.csv", read_table), ("r.json", read_json), ("r.toml", read_toml)):
        p = tmp_path / name
        p.write_bytes(raw)
        try:
            reader(p)
        except EnergyLensError as exc:
            msg = str(exc)
            assert len(msg.splitlines()) == 1 and len(msg) <= 300, (name, raw, msg)
