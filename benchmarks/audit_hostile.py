"""Count how many hostile inputs of each kind EnergyLens handles: a before/after measure of robustness.

usage: python benchmarks/audit_hostile.py [--src DIR] [--only KIND ...] [--json OUT] [--verbose]

`--src DIR` runs the energylens package found in DIR (e.g. another checkout's src/) instead of the
installed one, so that two versions can be compared with the same cases. Each case runs the CLI in a
fresh process (or sends one request to a real `energylens serve` on 127.0.0.1) and checks what a
hostile input must get: one line `error: ...` and exit code 2 (HTTP 4xx with a JSON error on the web),
within a time limit, nothing overwritten and nothing left behind; or, where the input is valid but
unusual (UTF-16, a 5 MB field), a correct answer. Every file a case uses is generated here, in a
temporary folder; nothing is read from the real data sets.

Kinds: web-security, web-dos, web-types, fifo, overwrite, encoding, parquet, escapes, options, signals.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLI_TIMEOUT = 25.0  # a command on a hostile file that has not ended by then hangs
WEB_TIMEOUT = 10.0  # seconds a request may take
MODEL = "meta-llama/Llama-3.1-8B"


@dataclass
class Result:
    kind: str
    name: str
    ok: bool
    why: str = ""


@dataclass
class Audit:
    src: str | None
    tmp: Path
    verbose: bool = False
    results: list[Result] = field(default_factory=list)

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYLENS_")}
        env["COLUMNS"] = "200"
        if self.src:
            env["PYTHONPATH"] = self.src + os.pathsep + env.get("PYTHONPATH", "")
        env.update(extra)
        return env

    def record(self, kind: str, name: str, ok: bool, why: str = "") -> None:
        self.results.append(Result(kind, name, bool(ok), "" if ok else why))
        if self.verbose:
            print(f"  {'ok  ' if ok else 'FAIL'} {kind:13} {name}{'' if ok else ': ' + why}", flush=True)

    def cli(self, *args, env=None, timeout=CLI_TIMEOUT):
        """(exit code or None when it hung, stdout, stderr, seconds)."""
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "energylens", *map(str, args)], cwd=self.tmp,
                                env=env or self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            code = None
        return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), time.monotonic() - t0

    def expect_error(self, kind, name, args, words=(), env=None, timeout=CLI_TIMEOUT, check=None):
        """A one-line error with exit code 2 (mentioning one of `words`, if given) in time."""
        code, out, err, _ = self.cli(*args, env=env, timeout=timeout)
        lines = (out + err).strip().splitlines()
        if code is None:
            return self.record(kind, name, False, f"no answer in {timeout:g} s")
        why = ""
        if code != 2:
            why = f"exit {code}: {(err or out).strip()[-160:]}"
        elif len(lines) != 1 or not lines[0].startswith("error: "):
            why = f"not one error line: {(out + err)[:160]!r}"
        elif words and not any(w.lower() in lines[0].lower() for w in words):
            why = f"message lacks {words}: {lines[0][:160]}"
        elif "\x1b" in out + err:
            why = "a raw escape character in the output"
        elif check is not None:
            why = check() or ""
        self.record(kind, name, not why, why)

    def expect_ok(self, kind, name, args, env=None, check=None, timeout=CLI_TIMEOUT):
        code, out, err, _ = self.cli(*args, env=env, timeout=timeout)
        why = ""
        if code != 0:
            why = f"exit {code}: {(err or out).strip()[-200:]}"
        elif check is not None:
            why = check(out, err) or ""
        self.record(kind, name, not why, why)


# ---------------------------------------------------------------- files


def _profiles(audit: Audit):
    from energylens.evaluation.synthetic import synthetic_profiles

    df = synthetic_profiles(60, seed=1)
    keep = ["model", "gpu", "num_gpus", "tp", "pp", "ep", "batch_size", "input_tokens", "output_tokens",
            "energy_request_j"]
    return df[keep]


def _configs(n=6):
    import pandas as pd

    return pd.DataFrame({"model": MODEL, "gpu": "H100", "num_gpus": 1, "tp": 1, "pp": 1,
                         "batch_size": [1, 4, 16, 64, 128, 256][:n] * (n // 6 or 1),
                         "input_tokens": 512.0, "output_tokens": 128.0})


def _fifo(path: Path) -> Path:
    if not path.exists():
        os.mkfifo(path)
    return path


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".energylens"))


# ---------------------------------------------------------------- CLI kinds


def fifo_cases(a: Audit):
    d = a.tmp / "fifo"
    d.mkdir()
    configs, data = d / "configs.csv", d / "data.csv"
    _configs().to_csv(configs, index=False)
    _profiles(a).to_csv(data, index=False)
    j, c, t, p = _fifo(d / "p.json"), _fifo(d / "p.csv"), _fifo(d / "p.toml"), _fifo(d / "p.parquet")
    words = ("regular file", "fifo", "pipe", "device", "not a file")
    rec = ["recommend", "--model", MODEL, "--gpu", "H100", "--max-gpus", "2"]
    cases = {
        "show FIFO": ["show", j],
        "predict MODEL=FIFO": ["predict", j, configs, "-o", d / "o1.csv"],
        "predict CONFIGS=FIFO.csv": ["predict", "default", c, "-o", d / "o2.csv"],
        "predict CONFIGS=FIFO.parquet": ["predict", "default", p, "-o", d / "o3.csv"],
        "explain CONFIGS=FIFO": ["explain", "default", c],
        "fit DATA=FIFO": ["fit", c, "-o", d / "m1.json"],
        "fit --from FIFO": ["fit", data, "--from", j, "-o", d / "m2.json"],
        "fit --structure FIFO": ["fit", data, "--structure", j, "-o", d / "m3.json"],
        "data validate FIFO": ["data", "validate", c],
        "data summary FIFO": ["data", "summary", c],
        "recommend --model-config FIFO": ["recommend", "--model", "x", "--model-config", j, "--gpu", "H100"],
        "recommend --model FIFO.json": ["recommend", "--model", j, "--gpu", "H100"],
        "recommend --model-file FIFO": [*rec, "--model-file", j],
        "recommend --hardware-catalog FIFO": [*rec, "--hardware-catalog", t],
        "recommend --model-catalog FIFO": [*rec, "--model-catalog", t],
        "recommend --gpu-hour-usd FIFO": [*rec, "--gpu-hour-usd", t, "--objective", "cost"],
        "catalog --hardware-catalog FIFO": ["catalog", "gpus", "--hardware-catalog", t],
        "catalog --model-config FIFO": ["catalog", "models", "--model-config", j],
        "serve --model-file FIFO": ["serve", "--model-file", j, "--port", "1"],
        "plan --model-file FIFO": ["plan", "--model", MODEL, "--gpu", "H100", "--model-file", j, "-o", d / "plan.csv"],
        "discover DATA=FIFO": ["discover", c, "--time-budget", "1"],
        "predict CONFIGS=/dev/zero": ["predict", "default", "/dev/zero", "-o", d / "o4.csv"],
        "show /dev/zero": ["show", "/dev/zero"],
        "data validate FOLDER": ["data", "validate", d],
        "recommend --hardware-catalog FOLDER": [*rec, "--hardware-catalog", d],
    }
    env = a.env(ENERGYLENS_HARDWARE_CATALOG=str(t))
    for name, args in cases.items():
        a.expect_error("fifo", name, args, words=words + (("folder", "directory") if "FOLDER" in name else ()),
                       timeout=20)
    a.expect_error("fifo", "ENERGYLENS_HARDWARE_CATALOG=FIFO", rec, env=env, words=words, timeout=20)


def overwrite_cases(a: Audit):
    d = a.tmp / "overwrite"
    d.mkdir()
    data = d / "data.csv"
    _profiles(a).to_csv(data, index=False)
    prices = d / "prices.toml"
    prices.write_text('H100 = 2.5\n')
    hw = d / "hw.toml"
    hw.write_text('')
    models = d / "models.toml"
    models.write_text('')
    rec = ["recommend", "--model", MODEL, "--gpu", "H100", "--max-gpus", "2"]

    def case(name, path, args, env=None):
        before = path.read_bytes()
        a.expect_error("overwrite", name, args, env=env, words=("input",),
                       check=lambda: None if path.read_bytes() == before else f"{path.name} was overwritten")

    case("recommend --plot onto --gpu-hour-usd file", prices, [*rec, "--objective", "cost", "--gpu-hour-usd", prices,
                                                              "--plot", prices])
    case("recommend --plot onto ENERGYLENS_HARDWARE_CATALOG", hw, [*rec, "--plot", hw],
         env=a.env(ENERGYLENS_HARDWARE_CATALOG=str(hw)))
    case("recommend --plot onto ENERGYLENS_MODEL_CATALOG", models, [*rec, "--plot", models],
         env=a.env(ENERGYLENS_MODEL_CATALOG=str(models)))
    case("recommend --plot onto --hardware-catalog", hw, [*rec, "--hardware-catalog", hw, "--plot", hw])
    raw = d / "v2" / "llm_text_generation" / "chat" / "H100" / "org" / "m"
    raw.mkdir(parents=True)
    bench = raw / "bs8+tp1+pp1.json"
    bench.write_text(json.dumps({"TP": 1, "PP": 1, "Energy/req (J)": 100.0, "Avg Output Tokens": 200,
                                 "Avg TPOT (s)": 0.02, "Avg TTFT (s)": 0.1, "Avg Input Tokens": 300,
                                 "Model": "meta-llama/Llama-3.1-8B", "GPU": "H100"}))
    case("data import -o onto the dataset's raw file", bench, ["data", "import", "mlenergy-v2", d / "v2", "-o", bench])
    case("fit -o onto its data", data, ["fit", data, "-o", data])
    link = d / "link.csv"
    link.symlink_to(data)
    case("predict -o a link to its configs", data, ["predict", "default", data, "-o", link])
    loop_a, loop_b = d / "loop_a.csv", d / "loop_b.csv"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)

    def loop_kept():
        return None if loop_a.is_symlink() and loop_b.is_symlink() else "the link was replaced by a file"

    a.expect_error("overwrite", "-o a link of a symlink loop", ["predict", "default", data, "-o", loop_a],
                   words=("link", "loop"), check=loop_kept)
    a.expect_error("overwrite", "fit -o a link of a symlink loop", ["fit", data, "-o", loop_b],
                   words=("link", "loop"), check=loop_kept)
    case("fit --from M -o M", data, ["fit", data, "-o", data, "--from", "default"])


def encoding_cases(a: Audit):
    import pandas as pd

    d = a.tmp / "enc"
    d.mkdir()
    df = _configs()
    df["notes"] = "café"
    text = df.to_csv(index=False)
    n = len(df)

    def rows_ok(expected):
        def check(out, err):
            return None if f"{expected} row" in out else f"expected {expected} rows: {out.strip()[:160]}"
        return check

    files = {"latin1.csv": text.encode("latin-1"), "utf16.csv": text.encode("utf-16"),
             "utf16le.csv": text.encode("utf-16-le"), "bom.csv": text.encode("utf-8-sig"),
             "gzip.csv": gzip.compress(text.encode()), "cp1252.csv": text.replace("é", "€").encode("cp1252")}
    import bz2
    import lzma
    files["bz2.csv"] = bz2.compress(text.encode())
    files["xz.csv"] = lzma.compress(text.encode())
    import io as _io
    import zipfile
    buf = _io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("x.csv", text)
    files["zip.csv"] = buf.getvalue()
    files["utf32.csv"] = text.encode("utf-32")
    for name, raw in files.items():
        p = d / name
        p.write_bytes(raw)
        for cmd in (["data", "validate", "--configs", p], ["predict", "default", p, "-o", d / f"out-{name}"]):
            code, out, err, _ = a.cli(*cmd)
            label = f"{cmd[0]} {name}"
            lines = (out + err).strip().splitlines()
            if code == 0:
                if cmd[0] == "data":
                    ok = f"{n} rows" in out
                    a.record("encoding", label, ok, f"read but {out.strip()[:120]}")
                else:
                    got = pd.read_csv(d / f"out-{name}")
                    a.record("encoding", label, len(got) == n, f"{len(got)} rows written of {n}")
            else:
                ok = code == 2 and len(lines) == 1 and str(p.name) in lines[0] and \
                    any(w in lines[0] for w in ("UTF", "encod", "compress", "gzip"))
                a.record("encoding", label, ok, f"exit {code}: {(out + err).strip()[:200]}")
    head = d / "header-only.csv"
    head.write_text(",".join(df.columns) + "\n")
    for cmd in (["data", "validate", "--configs", head], ["predict", "default", head, "-o", d / "h.csv"],
                ["explain", "default", head], ["fit", head, "-o", d / "h.json"]):
        a.expect_error("encoding", f"{cmd[0]} header-only CSV", cmd, words=("no rows", "no data rows", "no row"))
    hexed = d / "hex.csv"
    hexed.write_text(text.replace("\n1,", "\n1,", 1).replace(",64,", ",0x40,"))
    for cmd in (["data", "validate", "--configs", hexed], ["predict", "default", hexed, "-o", d / "x.csv"],
                ["explain", "default", hexed]):
        a.expect_error("encoding", f"{cmd[0]} hexadecimal batch size 0x40", cmd, words=("batch_size",))
    big = d / "bigfield.csv"
    df2 = df.copy()
    df2["notes"] = ["x" * 5_000_000] + ["y"] * (n - 1)
    df2.to_csv(big, index=False)
    a.expect_ok("encoding", "data validate a 5 MB field", ["data", "validate", "--configs", big], check=rows_ok(n))
    a.expect_ok("encoding", "predict a 5 MB field", ["predict", "default", big, "-o", d / "big-out.csv"])
    wide = d / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n" + ",".join("1" for _ in range(1_000_000)) + "\n")
    for cmd in (["data", "validate", wide], ["predict", "default", wide, "-o", d / "w.csv"]):
        a.expect_error("encoding", f"{cmd[0]} 10^6-column header", cmd, timeout=15, words=("column",))


def parquet_cases(a: Audit):
    import pandas as pd

    d = a.tmp / "parquet"
    d.mkdir()
    df = _configs()
    df["gpu"] = ["H100", "A100", "H100", "B200", "H100", "A100"]
    cat = df.copy()
    for c in ("model", "gpu"):
        cat[c] = cat[c].astype("category")
    p = d / "dict.parquet"
    cat.to_parquet(p, index=False)
    a.expect_ok("parquet", "data validate dictionary-encoded gpu", ["data", "validate", "--configs", p],
                check=lambda out, err: None if "3 GPUs" in out else f"not 3 GPUs: {out.strip()[:160]}")
    plain = d / "plain.csv"
    df.to_csv(plain, index=False)
    a.cli("predict", "default", plain, "-o", d / "plain-out.csv")

    def same(out, err):
        try:
            x = pd.read_csv(d / "dict-out.csv")
            y = pd.read_csv(d / "plain-out.csv")
        except Exception as exc:  # noqa: BLE001
            return f"unreadable output: {exc}"
        if list(x["gpu"]) != list(y["gpu"]):
            return f"gpu column became {list(x['gpu'])}, not {list(y['gpu'])}"
        return None if (abs(x["pred_energy_request_j"] / y["pred_energy_request_j"] - 1) < 1e-9).all() else \
            "predictions differ from the same rows in CSV"

    a.expect_ok("parquet", "predict dictionary-encoded gpu", ["predict", "default", p, "-o", d / "dict-out.csv"],
                check=same)
    import pyarrow as pa
    import pyarrow.parquet as pq
    t = pa.Table.from_pandas(df, preserve_index=False)
    t = t.set_column(t.schema.get_field_index("gpu"), "gpu", pa.array(df["gpu"]).dictionary_encode())
    p2 = d / "arrowdict.parquet"
    pq.write_table(t, p2, use_dictionary=True)
    a.expect_ok("parquet", "explain arrow dictionary column", ["explain", "default", p2, "--json"],
                check=lambda out, err: None if len(json.loads(out)) == len(df) else "wrong rows")
    pq.write_table(pa.Table.from_pandas(cat, preserve_index=False), d / "fitcat.parquet")
    prof = _profiles(a)
    prof["gpu"] = prof["gpu"].astype("category")
    prof.to_parquet(d / "prof.parquet", index=False)
    a.expect_ok("parquet", "data validate dictionary-encoded profiles", ["data", "validate", d / "prof.parquet"],
                check=lambda out, err: None if f"{prof['gpu'].nunique()} GPU" in out else out.strip()[:160])


def _escape_model_file(path: Path, name: str, why: str, engine: str):
    from energylens.model.default import default_model_dict
    from energylens.model.modelfile import _checksum

    d = default_model_dict()
    d = json.loads(json.dumps(d))
    d["structure"]["name"] = name
    d["structure"]["why"] = why
    engines = d.get("engines") or {}
    if engines:
        first = next(iter(engines))
        engines = {engine: engines[first], **{k: v for k, v in engines.items() if k != first}}
        d["engines"] = engines
    d.pop("sha256", None)
    d["sha256"] = _checksum(d)
    path.write_text(json.dumps(d))


def escape_cases(a: Audit):
    d = a.tmp / "esc"
    d.mkdir()
    esc = "\x1b[31mRED\x1b]0;title\x07"
    m = d / "esc.json"
    try:
        _escape_model_file(m, f"phys{esc}", f"because{esc}", f"eng{esc}")
    except Exception as exc:  # noqa: BLE001
        a.record("escapes", "build model file", False, str(exc))
        return
    rec = ["recommend", "--model", MODEL, "--gpu", "H100", "--max-gpus", "2", "--model-file", m]

    def clean(out, err):
        return "raw ESC printed" if "\x1b" in out + err or "\x07" in out + err else None

    a.expect_ok("escapes", "recommend: structure name/why from a model file", rec, check=clean)
    a.expect_ok("escapes", "recommend --json: no raw ESC", [*rec, "--json"], check=clean)
    a.expect_ok("escapes", "show: model file texts", ["show", m], check=clean)
    code, out, err, _ = a.cli(*rec, "--engine", "nope")
    a.record("escapes", "--engine error lists engine names", code == 2 and "\x1b" not in out + err,
             f"exit {code}, raw ESC={chr(27) in out + err}")
    code, out, err, _ = a.cli("recommend", "--model", MODEL, "--gpu", "H100", "--engine", f"x{esc}")
    a.record("escapes", "--engine value echoed", code == 2 and "\x1b" not in out + err, f"exit {code}")
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
           "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
           "vocab_size": 128256, "torch_dtype": "bfloat16", "_name_or_path": f"org/tiny{esc}"}
    (d / "config.json").write_text(json.dumps(cfg))
    a.expect_ok("escapes", "recommend --model-config _name_or_path",
                ["recommend", "--model-config", d / "config.json", "--gpu", "H100", "--max-gpus", "2"], check=clean)
    a.expect_ok("escapes", "catalog --model-config _name_or_path",
                ["catalog", "models", "--model-config", d / "config.json"], check=clean)
    csv = d / "c.csv"
    df = _configs()
    df.loc[0, "model"] = f"bad{esc}"
    df.to_csv(csv, index=False)
    code, out, err, _ = a.cli("data", "validate", "--configs", csv)
    a.record("escapes", "data validate: model name echoed", code == 2 and "\x1b" not in out + err, f"exit {code}")
    toml = d / "hw.toml"
    toml.write_text(f'[gpu."X{esc}"]\npeak_tflops = 1\n')
    code, out, err, _ = a.cli("catalog", "gpus", "--hardware-catalog", toml)
    a.record("escapes", "catalog file names echoed", "\x1b" not in out + err and code in (0, 2), f"exit {code}")
    code, out, err, _ = a.cli("recommend", "--model", f"nope{esc}", "--gpu", "H100")
    a.record("escapes", "--model value echoed", code == 2 and "\x1b" not in out + err, f"exit {code}")


def option_cases(a: Audit):
    d = a.tmp / "opt"
    d.mkdir()
    data = d / "data.csv"
    _profiles(a).to_csv(data, index=False)
    for args in (["fit", data, "-o", d / "m.json", "--seed", "-1"],
                 ["fit", data, "-o", d / "m.json", "--seed", "4294967296"],
                 ["fit", data, "-o", d / "m.json", "--seed", "99999999999999999999999"],
                 ["discover", data, "--seed", "-1", "--time-budget", "1"],
                 ["discover", data, "--seed", "4294967296", "--time-budget", "1"],
                 ["fit", data, "-o", d / "m.json", "--samples", "0"],
                 ["recommend", "--model", MODEL, "--gpu", "H100", "--top", "0"],
                 ["recommend", "--model", MODEL, "--gpu", "H100", "--top", "-5"],
                 ["recommend", "--model", MODEL, "--gpu", "H100", "--max-gpus", "0x10"],
                 ["recommend", "--model", MODEL, "--gpu", "H100", "--batch", "0x20"],
                 ["recommend", "--model", MODEL, "--gpu", "H100", "--pue", "nan"],
                 ["serve", "--port", "0"], ["serve", "--port", "70000"],
                 ["plan", "--model", MODEL, "--gpu", "H100", "--budget", "0", "-o", d / "p.csv"]):
        a.expect_error("options", " ".join(str(x) for x in args if not str(x).startswith(str(d)))[:70], args,
                       timeout=30)
    cat = d / "models.toml"
    cat.write_text('["tiny-x"]\narch = "dense"\nparams_total_b = 1.0\nparams_active_b = 1.0\nlayers = 16\n'
                   'hidden_size = 64\nheads = 128\nkv_heads = 8\nhead_dim = 64\n')
    a.expect_error("options", "catalog entry heads > hidden_size",
                   ["recommend", "--model", "tiny-x", "--gpu", "H100", "--model-catalog", cat], words=("heads",))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 256,
           "num_hidden_layers": 2, "num_attention_heads": 128, "num_key_value_heads": 8, "vocab_size": 1000}
    (d / "cfg.json").write_text(json.dumps(cfg))
    a.expect_error("options", "config heads > hidden_size", ["catalog", "models", "--model-config", d / "cfg.json"],
                   words=("heads", "hidden"))
    from energylens.model.default import default_model_dict
    from energylens.model.modelfile import _checksum
    m = json.loads(json.dumps(default_model_dict()))
    terms = m["structure"]["energy_terms"]
    key = "expression" if "expression" in terms[0] else next(k for k, v in terms[0].items() if isinstance(v, str)
                                                             and any(ch in v for ch in "*/+"))
    for label, const in (("1,500-digit constant", "1" * 1500), ("1e400 constant", "1e400"),
                         ("5,000-digit constant", "9" * 5000)):
        mm = json.loads(json.dumps(m))
        mm["structure"]["energy_terms"][0][key] = f"{const} * {terms[0][key]}"
        mm.pop("sha256", None)
        mm["sha256"] = _checksum(mm)
        (d / "big.json").write_text(json.dumps(mm))
        a.expect_error("options", f"model file: {label}", ["show", d / "big.json"])


def signal_cases(a: Audit):
    d = a.tmp / "sig"
    d.mkdir()
    big = d / "big.csv"
    import pandas as pd
    base = _configs()
    pd.concat([base] * 50_000, ignore_index=True).to_csv(big, index=False)  # 300,000 rows
    big_pq = d / "big.parquet"
    pd.concat([base] * 50_000, ignore_index=True).to_parquet(big_pq, index=False)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        for src, out in ((big, "out.csv"), (big_pq, "out.parquet")):
            work = d / f"{sig.name}-{src.suffix[1:]}"
            work.mkdir()
            proc = subprocess.Popen([sys.executable, "-m", "energylens", "predict", "default", src, "-o",
                                     work / out], cwd=work, env=a.env(), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            t0 = time.monotonic()
            while not _temps(work) and proc.poll() is None and time.monotonic() - t0 < 60:
                time.sleep(0.01)
            name = f"{sig.name} during predict {src.suffix[1:]} -> {out.split('.')[1]}"
            if proc.poll() is not None:
                a.record("signals", name, False, "finished before a signal could be sent (make the file larger)")
                continue
            proc.send_signal(sig)
            try:
                proc.wait(timeout=5)
                err = proc.stderr.read().decode("utf-8", "replace")
                left = _temps(work)
                a.record("signals", name, not left and "Traceback" not in err,
                         f"left {left}" if left else f"traceback: {err[-160:]}")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                a.record("signals", name, False, "still running 5 s after the signal")
    for label, args in (("a taken port", ["--port", None]), ("a bad host", ["--host", "no such host..", "--port", "8"])):
        tmpdir = d / f"serve-{label.split()[-1]}"
        tmpdir.mkdir()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            args = [x if x is not None else str(port) for x in args]
            code, out, err, _ = a.cli("serve", *args, env=a.env(TMPDIR=str(tmpdir)))
        left = list(tmpdir.iterdir())
        a.record("signals", f"serve on {label} leaves no temp folder", code == 2 and not left,
                 f"exit {code}, left {[p.name for p in left]}")


# ---------------------------------------------------------------- web kinds


class Server:
    def __init__(self, audit: Audit):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = audit.tmp / "serve.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "energylens", "serve", "--port", str(self.port)],
                                     cwd=audit.tmp, env=audit.env(), stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "wb"), start_new_session=True)
        import httpx
        self.url = f"http://127.0.0.1:{self.port}"
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            try:
                httpx.get(self.url + "/api/options", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("the server did not start: " + self.log.read_text()[-500:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def _post(server, path, *, json_body=None, content=None, headers=None, timeout=WEB_TIMEOUT):
    import httpx
    t0 = time.monotonic()
    try:
        r = httpx.post(server.url + path, json=json_body, content=content, headers=headers, timeout=timeout)
        return r, time.monotonic() - t0
    except httpx.TimeoutException:
        return None, time.monotonic() - t0
    except httpx.HTTPError as exc:
        return exc, time.monotonic() - t0


def _web_check(r, allow_ok: bool) -> str | None:
    import httpx
    if r is None:
        return f"no answer in {WEB_TIMEOUT:g} s"
    if isinstance(r, httpx.HTTPError):
        return f"connection error: {type(r).__name__}"
    if r.status_code >= 500:
        return f"HTTP {r.status_code}: {r.text[:120]}"
    if 200 <= r.status_code < 300:
        return None if allow_ok else f"HTTP {r.status_code} accepted"
    try:
        body = r.json()
    except ValueError:
        return f"HTTP {r.status_code} without a JSON body"
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return f"HTTP {r.status_code} without an 'error' text"
    return None


BASE = {"model": MODEL, "gpus": ["H100"], "max_gpus": 2, "batches": [8, 64]}


def web_cases(a: Audit):

    server = Server(a)
    try:
        _web_security(a, server)
        _web_types(a, server)
        _web_dos(a, server)
    finally:
        time.sleep(0.5)
        log = server.log.read_text(errors="replace")
        a.record("web-dos", "no traceback logged by the server", "Traceback" not in log,
                 f"{log.count('Traceback')} tracebacks logged")
        server.stop()


def _web_security(a: Audit, server):
    import httpx

    d = a.tmp / "websec"
    d.mkdir()
    secret = d / "secret.json"
    secret.write_text(json.dumps({"architectures": ["TOPSECRET-1234"], "model_type": "TOPSECRET-1234",
                                  "num_hidden_layers": "TOPSECRET-1234", "hidden_size": "TOPSECRET-1234"}))
    fifo = _fifo(d / "f.json")
    missing = d / "missing.json"
    toml = d / "secret.toml"
    toml.write_text('H100 = "TOPSECRET-1234"\n')

    def no_leak(name, body, path="/api/recommend"):
        r, _ = _post(server, path, json_body=body)
        why = _web_check(r, allow_ok=False)
        if why is None and "TOPSECRET" in r.text:
            why = "the file's content came back"
        a.record("web-security", name, why is None, why or "")
        return r

    r1 = no_leak("model = server-side .json path", {**BASE, "model": str(secret)})
    r2 = no_leak("model = missing server-side .json path", {**BASE, "model": str(missing)})
    def shape(r, path):  # the answer with the name and the names it suggests (they follow the text) taken out
        import re
        return r.status_code, re.sub(r"; closest known: [^(]*", "", r.text.replace(str(path), "P"))

    same = not isinstance(r1, Exception) and r1 is not None and not isinstance(r2, Exception) and r2 is not None and \
        shape(r1, secret) == shape(r2, missing)
    a.record("web-security", "no file-existence oracle (existing vs missing path)", same,
             f"{getattr(r1, 'text', r1)!s:.100} vs {getattr(r2, 'text', r2)!s:.100}")
    no_leak("model = server-side FIFO path", {**BASE, "model": str(fifo)})
    no_leak("model = /dev/zero", {**BASE, "model": "/dev/zero"})
    no_leak("model_config = path", {**BASE, "model_config": str(secret)})
    no_leak("config_id = path", {**BASE, "config_id": str(secret)})
    no_leak("model_file = path", {**BASE, "model_file": str(secret)})
    no_leak("model_id = path", {**BASE, "model_id": str(secret)})
    no_leak("model_id = ../ path", {**BASE, "model_id": "model-../../" + str(secret)})
    no_leak("gpu_hour_usd = path", {**BASE, "objective": "cost", "gpu_hour_usd": str(toml)})
    no_leak("hardware_catalog_file field", {**BASE, "hardware_catalog_file": str(toml)})
    no_leak("predict configs model = path", {"configs": [{"model": str(secret), "gpu": "H100", "num_gpus": 1, "tp": 1,
                                                          "pp": 1, "batch_size": 1, "input_tokens": 1,
                                                          "output_tokens": 1}]}, "/api/predict")
    no_leak("predict model_id = path", {"configs": [{}], "model_id": str(secret)}, "/api/predict")
    for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1.evil.example", ""):
        try:
            r = httpx.post(server.url + "/api/recommend", json=BASE, headers={"Host": host}, timeout=WEB_TIMEOUT)
            ok = 400 <= r.status_code < 500
            why = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            ok, why = False, type(exc).__name__
        a.record("web-security", f"Host: {host or '(empty)'} refused", ok, why)
        try:
            r = httpx.get(server.url + "/api/options", headers={"Host": host}, timeout=WEB_TIMEOUT)
            ok = 400 <= r.status_code < 500
        except httpx.HTTPError:
            ok = False
        a.record("web-security", f"GET with Host: {host or '(empty)'} refused", ok, f"HTTP {getattr(r, 'status_code', '?')}")
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": ctype} if ctype else {}
        r, _ = _post(server, "/api/recommend", content=json.dumps(BASE).encode(), headers=headers)
        ok = r is not None and not isinstance(r, Exception) and r.status_code in (400, 415)
        a.record("web-security", f"JSON body sent as {ctype or 'no content type'} refused", ok,
                 f"HTTP {getattr(r, 'status_code', r)}")
    r, _ = _post(server, "/api/recommend", json_body=BASE, headers={"Origin": "http://evil.example"})
    ok = r is not None and not isinstance(r, Exception) and 400 <= r.status_code < 500
    a.record("web-security", "cross-origin POST (Origin: evil) refused", ok, f"HTTP {getattr(r, 'status_code', r)}")
    r, _ = _post(server, "/api/recommend", json_body=BASE, headers={"Origin": server.url})
    ok = r is not None and not isinstance(r, Exception) and r.status_code == 200
    a.record("web-security", "same-origin POST still answered", ok, f"HTTP {getattr(r, 'status_code', r)}")


WRONG_TYPES = [
    ("max_gpus", "8.0", True), ("max_gpus", "1e1", True), ("max_gpus", 8.5, False), ("max_gpus", True, False),
    ("max_gpus", [8], False), ("max_gpus", {}, False), ("max_gpus", "0x10", False), ("max_gpus", 10**30, False),
    ("max_gpus", -1, False), ("max_gpus", "abc", False), ("max_gpus", 1e308, False),
    ("batches", "64.0", True), ("batches", ["1e3"], True), ("batches", {"64": 1}, False), ("batches", [True], False),
    ("batches", [64.5], False), ("batches", "0x20", False), ("batches", [[64]], False), ("batches", [None], False),
    ("batches", 64, True), ("batches", [], True), ("batches", [0], False), ("batches", [10**40], False),
    ("engine", ["x"], False), ("engine", {}, False), ("engine", 5, False), ("engine", "x" * 10000, False),
    ("top", "abc", False), ("top", -5, False), ("top", [3], False), ("top", 0, False), ("top", True, False),
    ("top", 1e30, False), ("top", "3", True), ("top", 3.5, False),
    ("input_tokens", "abc", False), ("input_tokens", [], False), ("input_tokens", {}, False),
    ("input_tokens", True, False), ("input_tokens", "1e400", False), ("input_tokens", -1, False),
    ("output_tokens", 0, False), ("output_tokens", "NaN", False), ("visual_tokens", [1], False),
    ("objective", 5, False), ("objective", ["energy"], False), ("objective", "x" * 100000, False),
    ("gpus", 5, False), ("gpus", [5], False), ("gpus", {}, False), ("gpus", "", False), ("gpus", [], False),
    ("gpus", [["H100"]], False), ("gpus", "H100,,B200", True),
    ("model", 5, False), ("model", [], False), ("model", {}, False), ("model", "", False),
    ("model", "x" * 1_000_000, False),
    ("itl_slo_ms", [], False), ("itl_slo_ms", {}, False), ("itl_slo_ms", True, False), ("itl_slo_ms", -1, False),
    ("itl_slo_ms", "none", True), ("ttft_slo_ms", "", True), ("ttft_slo_ms", "abc", False),
    ("gpu_hour_usd", [1], False), ("gpu_hour_usd", 5, False), ("gpu_hour_usd", {"H100": "abc"}, False),
    ("gpu_hour_usd", {"H100": -1}, False), ("gpu_hour_usd", {"H100": {"a": 1}}, False),
    ("gpu_hour_usd", {"x" * 1000: 1}, False),
    ("region", 5, False), ("region", ["world"], False), ("pue", "abc", False), ("pue", -1, False),
    ("pue", [1], False), ("electricity_usd_per_kwh", {}, False), ("grid_gco2_per_kwh", "1e999", False),
    ("config_id", 5, False), ("config_id", [], False), ("model_id", {}, False), ("model_id", True, False),
]


def _web_types(a: Audit, server):
    import httpx

    for fld, value, may_pass in WRONG_TYPES:
        body = {**BASE, fld: value}
        if fld in ("objective",) or "usd" in fld or "gco2" in fld or fld == "region" or fld == "pue":
            body.setdefault("objective", "energy")
        r, _ = _post(server, "/api/recommend", json_body=body)
        why = _web_check(r, allow_ok=may_pass)
        a.record("web-types", f"recommend {fld}={json.dumps(value)[:30]}", why is None, why or "")
    row = {"model": MODEL, "gpu": "H100", "num_gpus": 1, "tp": 1, "pp": 1, "batch_size": 1, "input_tokens": 1,
           "output_tokens": 1}
    for label, body in (("configs text", {"configs": "abc"}), ("configs [1]", {"configs": [1]}),
                        ("configs tp {}", {"configs": [{**row, "tp": {}}]}),
                        ("configs model list", {"configs": [{**row, "model": ["x"]}]}),
                        ("configs tp 0x10", {"configs": [{**row, "tp": "0x10"}]}),
                        ("configs batch 1e400", {"configs": [{**row, "batch_size": "1e400"}]}),
                        ("configs nested", {"configs": [{**row, "notes": {"a": [1, {"b": 2}]}}]}),
                        ("configs 10,000 rows", {"configs": [row] * 10_000}),
                        ("configs empty object", {"configs": [{}]}), ("body null", None), ("body 5", 5),
                        ("body string", "x"), ("configs 5,000 columns", {"configs": [{f"c{i}": 1 for i in range(5000)}]})):
        for route in ("/api/predict", "/api/explain"):
            if body is None:
                r, _ = _post(server, route, content=b"null", headers={"Content-Type": "application/json"})
            else:
                r, _ = _post(server, route, json_body=body)
            why = _web_check(r, allow_ok=False)
            a.record("web-types", f"{route.split('/')[-1]} {label}", why is None, why or "")
    for mode in ("guess", "", "x" * 10000):
        try:
            r = httpx.post(server.url + "/api/upload/profile", files={"file": ("r.csv", b"a,b\n1,2\n", "text/csv")},
                           data={"mode": mode}, timeout=WEB_TIMEOUT)
        except httpx.HTTPError as exc:
            r = exc
        why = _web_check(r, allow_ok=False)
        a.record("web-types", f"upload/profile mode={mode[:10]!r}", why is None, why or "")
    for label, files in (("config not JSON", ("c.json", b"\xff\xfe", "application/json")),
                         ("config deep", ("c.json", b"[" * 100_000, "application/json")),
                         ("config huge ints", ("c.json", b'{"hidden_size": 1' + b"0" * 4000 + b"}", "application/json"))):
        try:
            r = httpx.post(server.url + "/api/upload/config", files={"file": files}, timeout=WEB_TIMEOUT)
        except httpx.HTTPError as exc:
            r = exc
        why = _web_check(r, allow_ok=False)
        a.record("web-types", f"upload/config {label}", why is None, why or "")


def _web_dos(a: Audit, server):
    import httpx

    def bounded(name, body=None, content=None, headers=None, path="/api/recommend", limit=WEB_TIMEOUT):
        r, t = _post(server, path, json_body=body, content=content, headers=headers, timeout=limit)
        why = _web_check(r, allow_ok=False)
        a.record("web-dos", name, why is None, why or "")

    half = threading.Thread(target=_half_sent, args=(a, server), daemon=True)
    half.start()
    heads = threading.Thread(target=_half_sent, args=(a, server), kwargs={"head_only": True}, daemon=True)
    heads.start()
    bounded("20,000 batch sizes x max_gpus 4096", {**BASE, "max_gpus": 4096, "batches": list(range(1, 20001))})
    bounded("200 batch sizes x max_gpus 100,000 x all GPUs",
            {**BASE, "max_gpus": 100_000, "batches": list(range(1, 201)),
             "gpus": httpx.get(server.url + "/api/options").json()["gpus"]})
    bounded("100,000 GPU names", {**BASE, "gpus": ["H100"] * 100_000})
    bounded("batches text of 20,000 values", {**BASE, "batches": ",".join(map(str, range(1, 20001)))})
    deep = b'{"model": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    bounded("100,000-deep nested JSON", content=deep, headers={"Content-Type": "application/json"})
    bounded("1,000-deep nested JSON", content=b"[" * 1000 + b"]" * 1000, headers={"Content-Type": "application/json"})
    deep_obj = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    bounded("50,000-deep nested objects", content=deep_obj, headers={"Content-Type": "application/json"})
    bounded("predict: 100,000-deep nesting", content=b'{"configs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            headers={"Content-Type": "application/json"}, path="/api/predict")

    def chunks(total):
        piece = b" " * 65536
        sent = 0
        yield b'{"model": "'
        while sent < total:
            yield piece
            sent += len(piece)
        yield b'"}'

    for size in (20_000_000,):
        try:
            r = httpx.post(server.url + "/api/recommend", content=chunks(size),
                           headers={"Content-Type": "application/json"}, timeout=WEB_TIMEOUT)
            ok = r.status_code == 413
            why = f"HTTP {r.status_code}: {r.text[:80]}"
        except httpx.HTTPError as exc:
            ok, why = False, type(exc).__name__
        a.record("web-dos", "20 MB chunked body (no Content-Length) gets 413", ok, why)
    r, _ = _post(server, "/api/recommend", content=b" " * 20_000_000, headers={"Content-Type": "application/json"})
    a.record("web-dos", "20 MB body with Content-Length gets 413",
             r is not None and not isinstance(r, Exception) and r.status_code == 413, f"{getattr(r, 'status_code', r)}")
    bounded("1 MB model name", {**BASE, "model": "x" * 1_000_000})
    bounded("100,000 unknown fields", {**BASE, **{f"f{i}": i for i in range(100_000)}})
    bounded("10,000-key gpu_hour_usd object", {**BASE, "objective": "cost",
                                               "gpu_hour_usd": {f"G{i}": 1.0 for i in range(10_000)}})
    bounded("1e6-digit number", content=b'{"model": "x", "gpus": ["H100"], "max_gpus": ' + b"9" * 1_000_000 + b"}",
            headers={"Content-Type": "application/json"})
    bounded("NaN literal", content=b'{"model": "%s", "gpus": ["H100"], "input_tokens": NaN}' % MODEL.encode(),
            headers={"Content-Type": "application/json"})
    # a client that goes away in the middle of its body, and one that leaves during a long request
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(f"POST /api/recommend HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: "
                      f"application/json\r\nContent-Length: 5000\r\n\r\n{{\"model\":".encode())
            time.sleep(0.05)
    for _ in range(3):
        body = json.dumps({**BASE, "max_gpus": 64, "batches": list(range(1, 257))}).encode()
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(f"POST /api/recommend HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: "
                      f"application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            time.sleep(0.05)
    half.join(timeout=40)
    heads.join(timeout=40)
    a.record("web-dos", "server alive after all cases", server.alive(), "the server died")


def _half_sent(a: Audit, server, n=40, wait=16.0, head_only=False):
    """n connections that send headers and part of a body (or part of the headers), then nothing: the server
    must close them."""
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", server.port), timeout=2)
            if head_only:
                s.sendall(f"POST /api/recommend HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
            else:
                s.sendall(f"POST /api/recommend HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: "
                          f"application/json\r\nContent-Length: 1000\r\n\r\n{{\"model\"".encode())
            socks.append(s)
        except OSError:
            pass
    time.sleep(wait)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            data = s.recv(65536)
            closed += 1 if data == b"" or data.startswith((b"HTTP/1.1 4", b"HTTP/1.1 5")) else 0
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    a.record("web-dos", f"{n} half-sent {'request heads' if head_only else 'bodies'} closed within {wait:g} s",
             closed == len(socks) and socks,
             f"{len(socks) - closed} of {len(socks)} still open")


KINDS = {"fifo": fifo_cases, "overwrite": overwrite_cases, "encoding": encoding_cases, "parquet": parquet_cases,
         "escapes": escape_cases, "options": option_cases, "signals": signal_cases, "web": web_cases}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", help="run the energylens package of this src/ folder")
    ap.add_argument("--only", nargs="*", choices=sorted(KINDS))
    ap.add_argument("--json")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.src:
        sys.path.insert(0, str(Path(args.src).resolve()))
        args.src = str(Path(args.src).resolve())
    import energylens
    print(f"energylens from {Path(energylens.__file__).parent}", flush=True)
    with tempfile.TemporaryDirectory(prefix="energylens-audit-") as tmp:
        audit = Audit(args.src, Path(tmp), args.verbose)
        for kind in args.only or KINDS:
            t0 = time.monotonic()
            try:
                KINDS[kind](audit)
            except Exception as exc:  # noqa: BLE001 - a broken case is reported, the others still run
                audit.record(kind, "the case set itself", False, f"{type(exc).__name__}: {exc}")
            print(f"{kind}: {time.monotonic() - t0:.0f} s", flush=True)
    by_kind: dict[str, list[Result]] = {}
    for r in audit.results:
        by_kind.setdefault(r.kind, []).append(r)
    print(f"\n{'kind':14} handled / cases")
    for kind, rs in by_kind.items():
        print(f"{kind:14} {sum(r.ok for r in rs):4d} / {len(rs)}")
    total = len(audit.results)
    print(f"{'all':14} {sum(r.ok for r in audit.results):4d} / {total}")
    print("\nmishandled:")
    for r in audit.results:
        if not r.ok:
            print(f"  [{r.kind}] {r.name}: {r.why[:200]}")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in audit.results], indent=1))


if __name__ == "__main__":
    main()
