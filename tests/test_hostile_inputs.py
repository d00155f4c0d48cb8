"""Hostile input files and options at the command line, by kind: every one is read correctly or refused in
one line (exit 2) before any work, and nothing is overwritten or left behind.

FIFOs would hang a reader forever: each FIFO case runs under an alarm that turns a hang into a failure."""
import bz2
import contextlib
import gzip
import io
import json
import lzma
import os
import signal
import subprocess
import sys
import zipfile

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import config_rows, default_signals, interrupt_mid_write, temp_files

MODEL = "meta-llama/Llama-3.1-8B"


def _one_line_error(code, out, *words):
    lines = out.strip().splitlines()
    return (code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out
            and all(w.lower() in lines[0].lower() for w in words))


@contextlib.contextmanager
def alarm(seconds=20):
    """A hang becomes a failure: SIGALRM interrupts a blocking open() of a FIFO."""
    def fire(signum, frame):
        raise TimeoutError(f"no answer in {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def files(tmp_path):
    configs = tmp_path / "configs.csv"
    config_rows(6).to_csv(configs, index=False)
    data = tmp_path / "data.csv"
    config_rows(6).assign(energy_request_j=[10.0, 20, 30, 40, 50, 60]).to_csv(data, index=False)
    fifos = {}
    for suffix in (".json", ".csv", ".toml", ".parquet"):
        fifos[suffix] = tmp_path / f"pipe{suffix}"
        os.mkfifo(fifos[suffix])
    return tmp_path, configs, data, fifos


REC = ["recommend", "--model", MODEL, "--gpu", "H100", "--max-gpus", "2"]
FIFO_COMMANDS = {
    "show": lambda t, c, d, f: ["show", f[".json"]],
    "predict model": lambda t, c, d, f: ["predict", f[".json"], c, "-o", t / "o.csv"],
    "predict csv": lambda t, c, d, f: ["predict", "default", f[".csv"], "-o", t / "o.csv"],
    "predict parquet": lambda t, c, d, f: ["predict", "default", f[".parquet"], "-o", t / "o.csv"],
    "explain": lambda t, c, d, f: ["explain", "default", f[".csv"]],
    "fit": lambda t, c, d, f: ["fit", f[".csv"], "-o", t / "m.json"],
    "fit --from": lambda t, c, d, f: ["fit", d, "--from", f[".json"], "-o", t / "m.json"],
    "fit --structure": lambda t, c, d, f: ["fit", d, "--structure", f[".json"], "-o", t / "m.json"],
    "data validate": lambda t, c, d, f: ["data", "validate", f[".csv"]],
    "recommend --model-config": lambda t, c, d, f: ["recommend", "--model", "x", "--model-config", f[".json"],
                                                    "--gpu", "H100"],
    "recommend --model PATH.json": lambda t, c, d, f: ["recommend", "--model", f[".json"], "--gpu", "H100"],
    "recommend --model-file": lambda t, c, d, f: [*REC, "--model-file", f[".json"]],
    "recommend --hardware-catalog": lambda t, c, d, f: [*REC, "--hardware-catalog", f[".toml"]],
    "recommend --model-catalog": lambda t, c, d, f: [*REC, "--model-catalog", f[".toml"]],
    "recommend --gpu-hour-usd": lambda t, c, d, f: [*REC, "--objective", "cost", "--gpu-hour-usd", f[".toml"]],
    "catalog --model-config": lambda t, c, d, f: ["catalog", "models", "--model-config", f[".json"]],
    "plan --model-file": lambda t, c, d, f: ["plan", "--model", MODEL, "--gpu", "H100", "--model-file", f[".json"],
                                             "-o", t / "plan.csv"],
    "serve --model-file": lambda t, c, d, f: ["serve", "--model-file", f[".json"], "--port", "1"],
}


@pytest.mark.parametrize("name", sorted(FIFO_COMMANDS))
def test_a_fifo_is_refused_by_every_command_that_reads_a_path(files, run_cli, name):
    tmp, configs, data, fifos = files
    if name.startswith("serve"):
        pytest.importorskip("fastapi")
    with alarm():
        code, out = run_cli(*FIFO_COMMANDS[name](tmp, configs, data, fifos))
    assert _one_line_error(code, out), out
    assert "named pipe" in out or "regular file" in out or "port" in out, out


def test_devices_and_catalogs_named_by_the_environment_are_refused(files, run_cli, monkeypatch):
    tmp, configs, data, fifos = files
    with alarm():
        code, out = run_cli("predict", "default", "/dev/zero", "-o", tmp / "o.csv")
        assert _one_line_error(code, out, "device"), out
        code, out = run_cli("show", "/dev/null")
        assert _one_line_error(code, out, "device"), out
        monkeypatch.setenv("ENERGYLENS_HARDWARE_CATALOG", str(fifos[".toml"]))
        code, out = run_cli(*REC)
        assert _one_line_error(code, out, "named pipe"), out


# ---------------------------------------------------------------- encodings and compression


def _table():
    df = config_rows(6)
    df["notes"] = "café ü €"
    return df


ENCODED = {  # name -> bytes of the same table; read correctly
    "utf-8": lambda t: t.encode("utf-8"), "utf-8 with BOM": lambda t: t.encode("utf-8-sig"),
    "utf-16 with BOM": lambda t: t.encode("utf-16"), "utf-16-le": lambda t: t.encode("utf-16-le"),
    "utf-16-be": lambda t: t.encode("utf-16-be"), "utf-32 with BOM": lambda t: t.encode("utf-32"),
}


def _zip(text):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("x.csv", text)
    return buf.getvalue()


REFUSED = {  # name -> (bytes, words of the one-line error)
    "latin-1": (lambda t: t.replace("€", "").encode("latin-1"), ("UTF-8",)),
    "cp1252": (lambda t: t.encode("cp1252"), ("UTF-8",)),
    "gzip": (lambda t: gzip.compress(t.encode()), ("gzip", "decompress")),
    "bzip2": (lambda t: bz2.compress(t.encode()), ("bzip2",)),
    "xz": (lambda t: lzma.compress(t.encode()), ("xz",)),
    "zip": (_zip, ("zip",)),
}


@pytest.mark.parametrize("encoding", sorted(ENCODED))
def test_unicode_encodings_are_read(tmp_path, run_cli, encoding):
    df = _table()
    path = tmp_path / "t.csv"
    path.write_bytes(ENCODED[encoding](df.to_csv(index=False)))
    code, out = run_cli("data", "validate", "--configs", path)
    assert code == 0 and "6 rows valid" in out, out
    code, out = run_cli("predict", "default", path, "-o", tmp_path / "p.csv")
    assert code == 0, out
    got = pd.read_csv(tmp_path / "p.csv")
    assert len(got) == 6 and list(got["notes"]) == list(df["notes"]) and got["pred_energy_request_j"].notna().all()


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_other_encodings_and_compressed_files_are_one_line(tmp_path, run_cli, kind):
    make, words = REFUSED[kind]
    path = tmp_path / "t.csv"
    path.write_bytes(make(_table().to_csv(index=False)))
    for cmd in (["data", "validate", "--configs", path], ["predict", "default", path, "-o", tmp_path / "p.csv"],
                ["explain", "default", path]):
        code, out = run_cli(*cmd)
        assert _one_line_error(code, out, *words) and str(path) in out, (cmd, out)
    assert not (tmp_path / "p.csv").exists()


def test_a_late_latin1_byte_is_one_line(tmp_path, run_cli):
    """Beyond the head the encoding is judged on, the readers' own errors say the same."""
    df = pd.concat([config_rows(6)] * 3000, ignore_index=True)
    text = df.to_csv(index=False) + "meta-llama/Llama-3.1-8B,H\xe9100,1,1,1,8,512.0,128.0\n"
    path = tmp_path / "late.csv"
    path.write_bytes(text.encode("latin-1"))
    for cmd in (["data", "validate", "--configs", path], ["predict", "default", path, "-o", tmp_path / "p.csv"]):
        code, out = run_cli(*cmd)
        assert _one_line_error(code, out, "UTF-8"), (cmd, out)


def test_header_only_hex_wide_and_huge_fields(tmp_path, run_cli):
    head = tmp_path / "head.csv"
    head.write_text(",".join(config_rows(1).columns) + "\n")
    for cmd in (["data", "validate", "--configs", head], ["predict", "default", head, "-o", tmp_path / "h.csv"],
                ["explain", "default", head], ["fit", head, "-o", tmp_path / "h.json"]):
        code, out = run_cli(*cmd)
        assert _one_line_error(code, out, "no") and "row" in out, (cmd, out)
    assert not (tmp_path / "h.csv").exists() and not (tmp_path / "h.json").exists()
    hexed = tmp_path / "hex.csv"
    config_rows(6).astype({"batch_size": object}).assign(batch_size=["0x20", 4, 8, 16, 32, 64]).to_csv(hexed, index=False)
    for cmd in (["data", "validate", "--configs", hexed], ["predict", "default", hexed, "-o", tmp_path / "x.csv"],
                ["explain", "default", hexed]):
        code, out = run_cli(*cmd)
        assert _one_line_error(code, out, "batch_size", "0x20"), (cmd, out)
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n" + "1," * 999_999 + "1\n")
    for cmd in (["data", "validate", wide], ["predict", "default", wide, "-o", tmp_path / "w.csv"]):
        code, out = run_cli(*cmd)
        assert _one_line_error(code, out, "1,000,000 columns"), out
    big = tmp_path / "big.csv"
    df = config_rows(6)
    df["notes"] = ["x" * 5_000_000, 'a "quoted"\nline', "", "y", "z", "w"]
    df.to_csv(big, index=False)
    code, out = run_cli("data", "validate", "--configs", big)
    assert code == 0 and "6 rows valid" in out, out
    code, out = run_cli("predict", "default", big, "-o", tmp_path / "b.csv")
    assert code == 0, out
    assert pd.read_csv(tmp_path / "b.csv")["notes"].str.len().iloc[0] == 5_000_000


def test_parquet_dictionary_encoded_text_is_read_as_text(tmp_path, run_cli):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    df = config_rows(6)
    df["gpu"] = ["H100", "A100", "H100", "B200", "H100", "A100"]
    plain = tmp_path / "plain.csv"
    df.to_csv(plain, index=False)
    run_cli("predict", "default", plain, "-o", tmp_path / "plain-out.csv")
    by_pandas = tmp_path / "cat.parquet"
    df.astype({"gpu": "category", "model": "category"}).to_parquet(by_pandas, index=False)
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.set_column(table.schema.get_field_index("gpu"), "gpu", pa.array(df["gpu"]).dictionary_encode())
    by_arrow = tmp_path / "dict.parquet"
    pq.write_table(table, by_arrow)
    want = pd.read_csv(tmp_path / "plain-out.csv")
    for path in (by_pandas, by_arrow):
        code, out = run_cli("data", "validate", "--configs", path)
        assert code == 0 and "3 GPUs" in out, out
        code, out = run_cli("predict", "default", path, "-o", tmp_path / "out.csv")
        got = pd.read_csv(tmp_path / "out.csv")
        assert code == 0 and list(got["gpu"]) == list(want["gpu"]), out
        assert (got["pred_energy_request_j"] == want["pred_energy_request_j"]).all()


# ---------------------------------------------------------------- options and catalog entries


@pytest.mark.parametrize("seed", ["-1", "4294967296", "99999999999999999999999"])
def test_seed_bounds_are_one_line(files, run_cli, seed):
    tmp, configs, data, _ = files
    for cmd in (["fit", data, "-o", tmp / "m.json", "--seed", seed], ["discover", data, "--seed", seed]):
        code, out = run_cli(*cmd)
        assert _one_line_error(code, out, "--seed"), out
    assert not (tmp / "m.json").exists()


def test_catalog_entry_with_more_heads_than_width_is_refused(tmp_path, run_cli):
    cat = tmp_path / "models.toml"
    cat.write_text('["tiny-x"]\narch = "dense"\nparams_total_b = 1.0\nlayers = 16\nhidden_size = 64\nheads = 128\n')
    code, out = run_cli("recommend", "--model", "tiny-x", "--gpu", "H100", "--model-catalog", cat)
    assert _one_line_error(code, out, "heads", "hidden_size"), out


@pytest.mark.parametrize("constant", ["1" * 1500, "1e400", "9" * 4500])
def test_huge_constants_in_a_model_file_are_refused(tmp_path, run_cli, constant):
    from energylens.model.default import default_model_dict
    from energylens.model.modelfile import _checksum

    d = json.loads(json.dumps(default_model_dict()))
    term = next(t for t in d["structure"]["time"] if t["name"] == "t_step")
    term["expression"] = f"{constant} * {term['expression']}"
    d.pop("sha256")
    d["sha256"] = _checksum(d)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(d))
    code, out = run_cli("show", path)
    assert _one_line_error(code, out), out


def _escaped_model(path):
    from energylens.model.default import default_model_dict
    from energylens.model.modelfile import _checksum

    esc = "\x1b[31mRED\x1b]0;title\x07"
    d = json.loads(json.dumps(default_model_dict()))
    d["structure"]["name"] += esc
    d["structure"]["why"] += esc
    first = next(iter(d["engines"]))
    d["engines"] = {f"eng{esc}": d["engines"][first]}
    d.pop("sha256")
    d["sha256"] = _checksum(d)
    path.write_text(json.dumps(d))
    return esc


def test_texts_from_files_are_shown_with_control_characters_visible(tmp_path, run_cli):
    model = tmp_path / "m.json"
    esc = _escaped_model(model)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
           "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
           "_name_or_path": f"org/tiny{esc}"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    runs = [[*REC, "--model-file", model], [*REC, "--model-file", model, "--engine", "nope"],
            ["recommend", "--model", MODEL, "--gpu", "H100", "--engine", f"x{esc}"],
            ["recommend", "--model-config", tmp_path / "config.json", "--gpu", "H100", "--max-gpus", "2"],
            ["recommend", "--model", f"nope{esc}", "--gpu", "H100"], ["show", model]]
    for args in runs:
        code, out = run_cli(*args)
        assert code in (0, 2) and "\x1b" not in out and "\x07" not in out, (args, out)
        assert "\\x1b" in out or code == 2, (args, out)  # the escape is shown, made visible


# ---------------------------------------------------------------- outputs onto inputs


def test_outputs_never_overwrite_an_input(tmp_path, run_cli, monkeypatch):
    prices = tmp_path / "prices.toml"
    prices.write_text("H100 = 2.5\n")
    hw = tmp_path / "hw.toml"
    hw.write_text("")
    before = {p: p.read_bytes() for p in (prices, hw)}
    code, out = run_cli(*REC, "--objective", "cost", "--gpu-hour-usd", prices, "--plot", prices)
    assert _one_line_error(code, out, "input"), out
    monkeypatch.setenv("ENERGYLENS_HARDWARE_CATALOG", str(hw))
    code, out = run_cli(*REC, "--plot", hw)
    assert _one_line_error(code, out, "input"), out
    monkeypatch.delenv("ENERGYLENS_HARDWARE_CATALOG")
    monkeypatch.setenv("ENERGYLENS_MODEL_CATALOG", str(hw))
    code, out = run_cli(*REC, "--plot", hw)
    assert _one_line_error(code, out, "input"), out
    raw = tmp_path / "v2" / "llm_text_generation" / "chat" / "H100" / "org" / "m" / "bs8+tp1+pp1.json"
    raw.parent.mkdir(parents=True)
    raw.write_text('{"TP": 1}')
    code, out = run_cli("data", "import", "mlenergy-v2", tmp_path / "v2", "-o", raw)
    assert _one_line_error(code, out, "input folder"), out
    assert raw.read_text() == '{"TP": 1}' and all(p.read_bytes() == b for p, b in before.items())
    data = tmp_path / "data.csv"
    config_rows(6).to_csv(data, index=False)
    (tmp_path / "loop_a.csv").symlink_to(tmp_path / "loop_b.csv")
    (tmp_path / "loop_b.csv").symlink_to(tmp_path / "loop_a.csv")
    for args in (["predict", "default", data, "-o", tmp_path / "loop_a.csv"],
                 ["fit", data, "-o", tmp_path / "loop_b.csv"]):
        code, out = run_cli(*args)
        assert _one_line_error(code, out, "link loop"), out
    assert (tmp_path / "loop_a.csv").is_symlink() and (tmp_path / "loop_b.csv").is_symlink()


# ---------------------------------------------------------------- signals during writing commands


@pytest.mark.parametrize("sig, fmt", [(signal.SIGHUP, ".csv"), (signal.SIGTERM, ".parquet"),
                                      (signal.SIGINT, ".parquet")])
def test_signals_during_predict_leave_no_temp_file(tmp_path, sig, fmt):
    pytest.importorskip("pyarrow")
    big = tmp_path / f"big{fmt}"
    df = pd.concat([config_rows(6)] * 40_000, ignore_index=True)
    df.to_csv(big, index=False) if fmt == ".csv" else df.to_parquet(big, index=False)
    out = tmp_path / f"out{fmt}"
    proc = subprocess.Popen([sys.executable, "-m", "energylens", "predict", "default", big, "-o", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=default_signals)
    interrupt_mid_write(proc, tmp_path, sig)
    assert temp_files(tmp_path) == [] and not out.exists()
    assert "Traceback" not in proc.stderr.read().decode()


# ---------------------------------------------------------------- any bytes, any command reading a table


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=300),
                     st.sampled_from(list(ENCODED)).flatmap(
                         lambda enc: st.text(max_size=80).map(lambda t, enc=enc: ENCODED[enc](
                             "model,gpu,num_gpus,tp,pp,batch_size,input_tokens,output_tokens\n" + t)))))
def test_any_bytes_are_read_or_one_line(tmp_path, run_cli, raw):
    path = tmp_path / "any.csv"
    path.write_bytes(raw)
    for cmd in (["data", "validate", "--configs", path], ["predict", "default", path, "-o", tmp_path / "o.csv"]):
        code, out = run_cli(*cmd)
        assert code == 0 or _one_line_error(code, out), (cmd, raw, out)
