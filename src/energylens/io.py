"""Reading and writing tables and files atomically, so an interrupted write never loses data."""
from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path

import pandas as pd

from .errors import DataError, EnergyLensError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet file; any failure is one DataError naming the file."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=path)
    if path.is_dir():
        raise DataError("expected a CSV or Parquet file, got a folder", path=path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.stat().st_size == 0:
            raise DataError("file is empty; expected a header row and at least one data row", path=path)
        return pd.read_csv(path, low_memory=False)
    except DataError:
        raise
    except ImportError as exc:
        raise EnergyLensError(f"{path}: reading Parquet needs pyarrow (pip install 'energylens[parquet]'): {exc}")
    except pd.errors.EmptyDataError:
        raise DataError("file is empty; expected a header row and at least one data row", path=path)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot be read as {'Parquet' if suffix in ('.parquet', '.pq') else 'CSV'}: {msg}", path=path)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write CSV or Parquet (by suffix) atomically."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        import io as _io

        buf = _io.BytesIO()
        try:
            df.to_parquet(buf, index=False)
        except ImportError as exc:
            raise EnergyLensError(f"{path}: writing Parquet needs pyarrow (pip install 'energylens[parquet]'): {exc}")
        atomic_write_bytes(path, buf.getvalue())
    else:
        atomic_write_text(path, df.to_csv(index=False))


def read_json(path, error=EnergyLensError, what: str = "file"):
    """Parsed JSON of `path`; a missing or unreadable file raises `error` with one line naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: {what} not found")
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); the file may be truncated")
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text file")
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a {what}")
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply to be a {what}")


def read_toml(path, error=EnergyLensError, what: str = "file"):
    """Parsed TOML of `path`, with the same one-line errors as read_json."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found")
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({exc})")
