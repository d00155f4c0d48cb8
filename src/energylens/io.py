"""Reading and writing tables and files atomically, so an interrupted write never loses data.

Every write goes to a temporary file beside the target (`.<name>.<pid>.<random>.tmp`), which is
renamed over the target once complete, so a reader sees the old file or the new one, never a mix.
Rules of every write:

* The folder must exist: a missing folder is refused (EnergyLensError naming it), never created.
* A new file gets the mode `open()` would give it (0666 minus the umask); a replaced file keeps its
  mode. A symbolic link is followed: the file it points to is replaced, the link stays.
* SIGTERM, SIGINT or SIGHUP during a write removes the temporary file before the process ends (with the
  signal's conventional exit status; main thread only, where Python can handle signals). Temporary
  files of this exact pattern left beside the target by a writer that died (SIGKILL, power loss)
  are removed by the next write to that target.
* Two processes writing one target at the same time: each writes its own temporary file and the
  last rename wins; the target is always one writer's complete output, never a mix of both.
"""
from __future__ import annotations

import contextlib
import csv
import io as _io
import json
import os
import re
import signal
import stat
import sys
import tempfile
import threading
import time
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from .errors import DataError, EnergyLensError

STALE_TEMP_AGE_S = 3600.0  # a temporary file this old is abandoned, whoever wrote it
DEAD_WRITER_GRACE_S = 60.0  # a dead writer's temporary file is removed once it is this old
MAX_ECHO = 60  # longest user value echoed back in an error message
MAX_COLUMNS = 10_000  # columns of a table file: the schema has about 60; a million-column header is refused at once


def clip(value, limit: int = MAX_ECHO) -> str:
    """`value` as text for one error line: control characters escaped, at most `limit` characters + '…'."""
    text = str(value)[: limit + 1]
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[:limit] + "…"


def visible(text) -> str:
    """`text` with its control characters (ESC, BEL, newlines, ...) written as escapes, whole: what any text
    read from a file becomes before a terminal or a page shows it (a raw ESC would drive the terminal)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


# ---------------------------------------------------------------- checks of a file to read

# Compressed data by its first bytes: read as text it would be noise (a .csv may be gzip whatever its name).
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"PK\x03\x04", "zip"),
               (b"\x28\xb5\x2f\xfd", "zstd"), (b"\x04\x22\x4d\x18", "lz4"))
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
SNIFF_BYTES = 1 << 16  # the head of a file whose encoding is judged


def input_problem(path) -> str | None:
    """Why `path` cannot be read as an input file, or None: missing, a folder, a named pipe (FIFO), a device
    or a socket (reading one would hang or never end), a symbolic link loop. Nothing is opened."""
    try:
        st = os.stat(path)  # follows links; a FIFO is not opened (opening one blocks until a writer comes)
    except FileNotFoundError:
        return "not found"
    except NotADirectoryError:
        return "a part of the path is a file, not a folder"
    except PermissionError:
        return "permission denied"
    except (OSError, ValueError) as exc:
        if getattr(exc, "errno", None) == 40:  # ELOOP
            return "is a symbolic link loop"
        return f"cannot be read ({getattr(exc, 'strerror', None) or clip(exc, 100)})"
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is not a regular file"


def require_file(path, what: str = "file", error=EnergyLensError, only_special: bool = False) -> None:
    """Raise `error` in one line naming `path` unless it is a regular file that can be opened for reading
    (`only_special`: refuse only what exists and is not a regular file, leaving a missing or unreadable one
    to the open that follows, whose error the caller words)."""
    problem = input_problem(path)
    if only_special and problem in ("not found", "permission denied", "a part of the path is a file, not a folder"):
        return
    if problem is not None:
        if problem == "not found":
            raise error(f"{clip(path, 200)}: {what} not found")
        raise error(f"{clip(path, 200)}: {problem}; expected a {what}")


def text_encoding(path, what: str = "CSV file") -> str:
    """The encoding to read a text table with: UTF-8 (with or without BOM), or UTF-16/32 with a BOM or, for
    UTF-16, NUL bytes in every other place. Compressed, binary or other text (Latin-1, cp1252) raises a
    DataError naming the file and the encoding expected."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    for magic, kind in _COMPRESSED:
        if head.startswith(magic):
            raise DataError(f"is {kind}-compressed data; expected a plain-text {what} in UTF-8: decompress it first",
                            path=clip(path, 200))
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return enc
    if b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.1 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.1 * len(odd):
            return "utf-16-be"  # other NUL bytes are text's business (the schema names their cell)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not a character cut at the end of the sample
            raise DataError(not_utf8(exc, what), path=clip(path, 200)) from None
    return "utf-8"


def not_utf8(exc: UnicodeDecodeError, what: str = "CSV file") -> str:
    """The message for text that is not UTF-8 (Latin-1, cp1252, ...): where, and what to do."""
    return (f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start:,}); expected a {what} in "
            "UTF-8 (or UTF-16 with a BOM): save it as UTF-8")


# ---------------------------------------------------------------- checks of a place to write


def _exists(p: Path) -> bool:
    try:
        return os.path.lexists(p) and p.exists()
    except OSError:
        return False


def _write_target(path) -> Path:
    """The file that a write to `path` replaces: the file a symbolic link points to, or `path`."""
    p = Path(path)
    try:
        if p.is_symlink():
            return Path(os.path.realpath(p))
    except (OSError, ValueError):
        pass
    return p


def _probe_folder(folder: Path, name: str = "energylens-probe") -> str | None:
    """Create and remove a temporary file in `folder`: the only sure test that it takes new files
    (as root, os.access says yes to /proc and /sys). Named like a write's temp file of `name`; a signal
    meanwhile (SIGTERM, SIGINT, SIGHUP) removes it before the process ends, as a write's."""
    probe = None
    try:
        with _SignalCleanup() as guard:
            try:
                with guard.masked():
                    fd, probe = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=folder)
                os.close(fd)
            finally:
                if probe is not None:
                    try:
                        os.unlink(probe)
                    except OSError:
                        pass
    except _Terminated as t:
        os.kill(os.getpid(), t.signum)
        raise SystemExit(128 + t.signum)
    except (OSError, ValueError) as exc:
        return f"cannot create files in folder {clip(folder, 200)} ({getattr(exc, 'strerror', None) or clip(exc, 100)})"
    return None


def _folder_problem(folder: Path) -> str | None:
    """Why files cannot be created in `folder` (missing, a file, read-only), or None."""
    folder = folder if str(folder) else Path(".")
    try:
        if folder.is_dir():
            return None
        if _exists(folder):
            return f"{clip(folder, 200)} is a file, not a folder"
    except OSError as exc:
        return f"cannot use folder {clip(folder, 200)} ({exc.strerror or type(exc).__name__})"
    for up in folder.parents:
        try:
            if up.is_dir():
                break
            if _exists(up):
                return f"{clip(up, 200)} is a file, not a folder"
        except OSError:
            break
    return f"folder {clip(folder, 200)} does not exist; create it first (outputs never create folders)"


def output_problem(path, *, folder: bool = False, probe: bool = True) -> str | None:
    """Why `path` cannot be written as an output file (or, with `folder`, an output folder); None if it can.

    Checks: not a folder (or, with `folder`, not a file), not a device/pipe/socket, its folder exists
    and is a folder, and (with `probe`) a file can be created there. Nothing is left behind.
    """
    p = _write_target(path)
    if not str(path):
        return "empty path; expected a file name"
    if os.path.islink(path) and input_problem(path) == "is a symbolic link loop":
        return "is a symbolic link loop (a link that leads back to itself); expected a file name"
    try:
        if _exists(p):
            st = os.stat(p)
            if folder:
                if not stat.S_ISDIR(st.st_mode):
                    return "is a file; expected a folder (or a name for a new one)"
                return _probe_folder(p) if probe else None
            if stat.S_ISDIR(st.st_mode):
                return "is a folder; expected a file name"
            if not stat.S_ISREG(st.st_mode):
                return "is not a regular file (a device, pipe or socket); expected a file name"
    except (OSError, ValueError) as exc:
        return f"cannot be used ({getattr(exc, 'strerror', None) or clip(exc, 100)})"
    parent = p.parent
    problem = _folder_problem(parent)
    if problem is None and probe:
        problem = _probe_folder(parent if str(parent) else Path("."), p.name)
    return problem


# ---------------------------------------------------------------- atomic writes


def _umask() -> int:
    """The process umask, read without changing it where /proc tells it (Linux >= 4.7)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _new_mode(target: Path) -> int:
    """Mode of the written file: the replaced file's, else what open() gives a new file."""
    try:
        st = os.stat(target)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode) & 0o777
    except OSError:
        pass
    return 0o666 & ~_umask()


def _temp_pattern(name: str) -> re.Pattern:
    # Ours: .<name>.<pid>.<8 mkstemp characters>.tmp; earlier versions wrote .<name>.<8 characters>.tmp
    return re.compile(rf"\.{re.escape(name)}\.(?:(\d{{1,10}})\.)?[a-z0-9_]{{8}}\.tmp")


def _pid_dead(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError, ValueError):
        return False  # alive under another user, or unknown: not ours to judge
    return False


def remove_stale_temps(target) -> list[Path]:
    """Remove temporary files of our own pattern beside `target` left by writers that died.

    Only regular files owned by this user, named exactly `.<name>.<pid>.<random>.tmp`, are
    considered; one is removed when its writer's process is gone (and it is over a minute old) or
    when it is over an hour old. Returns the removed paths.
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    pattern = _temp_pattern(target.name)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        m = pattern.fullmatch(name)
        if not m:
            continue
        p = folder / name
        try:
            st = os.lstat(p)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                continue
            age = now - st.st_mtime
            pid = int(m.group(1)) if m.group(1) else 0
            if age > STALE_TEMP_AGE_S or (age > DEAD_WRITER_GRACE_S and _pid_dead(pid)):
                os.unlink(p)
                removed.append(p)
        except OSError:
            continue
    return removed


class _Terminated(BaseException):
    """Raised by our signal handler to unwind a write; the signal is re-delivered afterwards."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _SignalCleanup:
    """While a write runs (main thread only): SIGTERM/SIGINT/SIGHUP unwind it so its temp file is removed.

    A Python handler installed before (e.g. SIGINT's KeyboardInterrupt) is called as it would have
    been; a default action (terminate) becomes an exception, and the caller re-delivers the signal
    once the temp file is gone and the previous handlers are back. Ignored signals stay ignored.
    """

    SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGINT", None),
                                getattr(signal, "SIGHUP", None)) if s is not None)

    def __enter__(self):
        self.prev, self.to_restore, self.fired, self.exiting, self.late = {}, {}, None, False, None
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in self.SIGNALS:
            try:
                prev = signal.getsignal(sig)
                if prev is None or prev == signal.SIG_IGN:
                    continue
                self.prev[sig] = self.to_restore[sig] = prev
                signal.signal(sig, self._handler)
            except (ValueError, OSError):  # not the main interpreter, or not allowed
                self.to_restore.pop(sig, None)
        return self

    def _handler(self, signum, frame):
        prev = self.prev.get(signum)
        if callable(prev) and prev not in (signal.SIG_DFL, signal.SIG_IGN):
            return prev(signum, frame)
        if self.exiting:  # the write is over (renamed or cleaned up): terminate once the handlers are back
            self.late = signum
        elif self.fired is None:  # a second signal while unwinding must not interrupt the clean-up
            self.fired = signum
            raise _Terminated(signum)

    @contextlib.contextmanager
    def masked(self):
        """Hold our signals at the OS level (where possible) for a few statements that must not be cut:
        the creation of the temp file and its name's assignment; the restoration of the handlers.
        Signals the caller had blocked stay blocked."""
        sigs = set(self.prev)
        to_unblock = set()
        try:
            if sigs and hasattr(signal, "pthread_sigmask"):
                to_unblock = sigs - signal.pthread_sigmask(signal.SIG_BLOCK, [])
                signal.pthread_sigmask(signal.SIG_BLOCK, to_unblock)
            yield
        finally:
            if to_unblock:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, to_unblock)

    def _restore(self):
        while self.to_restore:
            sig, prev = self.to_restore.popitem()
            try:
                signal.signal(sig, prev)
            except (ValueError, OSError):
                pass

    def __exit__(self, *exc):
        self.exiting = True
        try:
            with self.masked():  # a signal arriving now waits, then meets the restored handler
                self._restore()
        finally:
            self._restore()
        if self.late is not None and self.fired is None:
            os.kill(os.getpid(), self.late)  # the default action, delivered late
        return False


@contextlib.contextmanager
def atomic_output(path) -> Iterator[Path]:
    """A temporary file beside `path`, renamed over it when the block ends without error (removed
    otherwise, also on SIGTERM/SIGINT); the same guarantees as io.atomic_write_bytes, for a file written
    in pieces."""
    target = _write_target(path)
    problem = output_problem(target, probe=False)
    if problem:
        raise EnergyLensError(f"{clip(path, 200)}: {problem}")
    remove_stale_temps(target)
    mode = _new_mode(target)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        with _SignalCleanup() as guard:
            tmp = None
            try:
                with guard.masked():
                    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
                os.close(fd)
                os.chmod(tmp, mode)
                yield Path(tmp)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, target)
                tmp = None
            finally:
                if tmp is not None:
                    try:
                        os.unlink(tmp)
                    except OSError:
                        pass
    except _Terminated as t:
        os.kill(os.getpid(), t.signum)
        raise SystemExit(128 + t.signum)
    except OSError as exc:
        raise EnergyLensError(f"{clip(path, 200)}: cannot be written ({exc.strerror or type(exc).__name__})")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file renamed over it (see the module docstring).

    The folder must exist; a folder, device or unwritable place raises EnergyLensError naming it.
    Concurrent writers to one path: the last rename wins; the file is always one complete write.
    """
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


# ---------------------------------------------------------------- tables


def _csv_rows(path: Path, encoding: str = "utf-8"):
    """Non-blank CSV records of `path` (the csv module, no limit on a field's size)."""
    old = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        with open(path, newline="", encoding="utf-8-sig" if encoding == "utf-8" else encoding) as f:
            for rec in csv.reader(f):
                if rec:
                    yield rec
    except UnicodeDecodeError as exc:
        raise DataError(not_utf8(exc), path=path) from None
    finally:
        csv.field_size_limit(old)


def check_columns(n: int, path) -> None:
    if n > MAX_COLUMNS:
        raise DataError(f"{n:,} columns; at most {MAX_COLUMNS:,} are read (the profiling schema has about 60)",
                        path=path)


def _check_csv_header(path: Path, encoding: str = "utf-8") -> None:
    """Refuse a header that names a column twice (pandas would silently rename the copy to 'x.1'), or has
    more than MAX_COLUMNS columns (pandas would take minutes over a million)."""
    rows = _csv_rows(path, encoding)
    try:
        header = next(rows, None)
    finally:
        rows.close()
    if header is None:
        return
    check_columns(len(header), path)
    seen = set()
    for name in header:
        if name in seen and name.strip():
            raise DataError("column appears twice in the header; rename or remove one", path=path, column=clip(name))
        seen.add(name)


def _first_ragged_row(path: Path, encoding: str = "utf-8"):
    """(1-based data row, its field count, the header's) of the first row with a non-empty field
    beyond the header, or None. Empty trailing fields (a trailing delimiter) hold no data and pass."""
    rows = _csv_rows(path, encoding)
    try:
        header = next(rows, None)
        if header is None:
            return None
        for i, rec in enumerate(rows, start=1):
            if len(rec) > len(header) and any(v.strip() for v in rec[len(header):]):
                return i, len(rec), len(header)
    finally:
        rows.close()
    return None


def _ragged_error(path: Path, found) -> DataError:
    row, n, k = found
    return DataError(f"{n} fields but the header has {k}; a value would land in the wrong column "
                     "(quote values that contain commas)", path=path, row=row)


def _read_csv(path: Path) -> pd.DataFrame:
    encoding = text_encoding(path)
    _check_csv_header(path, encoding)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            # index_col=False: extra fields never turn the first column into the index (shifting every value).
            df = pd.read_csv(path, low_memory=False, index_col=False, encoding=encoding)
        except pd.errors.ParserError:
            found = _first_ragged_row(path, encoding)
            if found:
                raise _ragged_error(path, found)
            raise
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        found = _first_ragged_row(path, encoding)
        if found:
            raise _ragged_error(path, found)
    return df


def parquet_columns(path) -> int:
    """The column count of a Parquet file, from its footer (nothing else is read)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_columns


def plain_strings(df: pd.DataFrame) -> pd.DataFrame:
    """Categorical (dictionary-encoded) columns as plain values: what pandas and Spark write for text
    columns comes back categorical, which the schema's text checks must see as text."""
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df


def check_table_input(path: Path) -> None:
    """Refuse, naming the file, a path that is not a file a table can be read from (a FIFO or a device would
    hang the reader: refused before it is opened)."""
    problem = input_problem(path)
    if problem == "not found":
        raise DataError("file not found", path=path)
    if problem == "is a folder":
        raise DataError("expected a CSV or Parquet file, got a folder", path=path)
    if problem is not None:
        raise DataError(f"{problem}; expected a CSV or Parquet file", path=path)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet file; any failure is one DataError naming the file.

    A CSV row with more (non-empty) fields than the header, or a header naming a column twice, is
    refused naming the row (1-based data row, as the schema's errors count) or the column.
    """
    path = Path(path)
    check_table_input(path)
    suffix = path.suffix.lower()
    kind = "Parquet" if suffix in (".parquet", ".pq") else "CSV"
    try:
        if kind == "Parquet":
            check_columns(parquet_columns(path), path)
            return plain_strings(pd.read_parquet(path))
        if path.stat().st_size == 0:
            raise DataError("file is empty; expected a header row and at least one data row", path=path)
        return _read_csv(path)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError("file is empty; expected a header row and at least one data row", path=path)
    except UnicodeDecodeError as exc:
        raise DataError(not_utf8(exc), path=path)
    except (pd.errors.ParserError, csv.Error, ValueError, OSError, MemoryError, RecursionError) as exc:
        lines = str(exc).strip().splitlines()
        msg = lines[0] if lines else type(exc).__name__
        raise DataError(f"cannot be read as {kind}: {clip(msg, 200)}", path=path)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write CSV or Parquet (by suffix) atomically."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        buf = _io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(path, buf.getvalue())
    else:
        atomic_write_text(path, df.to_csv(index=False))


# ---------------------------------------------------------------- JSON and TOML


def _read_error(exc: BaseException, path: Path, error, what: str):
    """The one-line `error` for an exception raised while reading `path`, or None if not ours to map."""
    if isinstance(exc, FileNotFoundError):
        return error(f"{path}: {what} not found")
    if isinstance(exc, IsADirectoryError):
        return error(f"{path}: is a folder, expected a {what}")
    if isinstance(exc, NotADirectoryError):
        return error(f"{path}: a part of the path is a file, not a folder; expected a {what}")
    if isinstance(exc, PermissionError):
        return error(f"{path}: permission denied reading the {what}")
    if isinstance(exc, UnicodeDecodeError):
        return error(f"{path}: not a UTF-8 text file (byte {exc.start}); expected a {what}")
    if isinstance(exc, RecursionError):
        return error(f"{path}: nested too deeply to be a {what}")
    if isinstance(exc, MemoryError):
        return error(f"{path}: too large to read as a {what}")
    if isinstance(exc, OSError):
        return error(f"{path}: cannot read the {what} ({exc.strerror or type(exc).__name__})")
    return None


def read_json(path, error=EnergyLensError, what: str = "file"):
    """Parsed JSON of `path`; a missing or unreadable file raises `error` with one line naming it."""
    path = Path(path)
    require_file(path, what, error, only_special=True)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); the file may be truncated")
    except (OSError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
        raise _read_error(exc, path, error, what) from None


def read_toml(path, error=EnergyLensError, what: str = "file"):
    """Parsed TOML of `path`, with the same one-line errors as read_json."""
    path = Path(path)
    require_file(path, what, error, only_special=True)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({clip(exc, 200)})")
    except (OSError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
        raise _read_error(exc, path, error, what) from None
