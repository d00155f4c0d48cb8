"""Large configuration files in chunks: read (pyarrow), validate, predict, write, in bounded memory.

`predict` and `explain` never hold a whole file: CSV is read by `pyarrow.csv.open_csv` and Parquet by
`ParquetFile.iter_batches`, CHUNK_ROWS rows at a time; each chunk is validated by the schema (errors
name the row counted from the start of the file) and predicted; the output is appended chunk by
chunk to a temporary file renamed over the target at the end (as `io.atomic_write_bytes`), so a
failure or a signal leaves no partial output.

A CSV that pyarrow cannot convert (a later block whose cells do not fit the types of the first, text
in a number column, a ragged row, bad UTF-8) is read from that point on by pandas' chunked reader, so
that the schema's own messages name the cell; nothing read before that point is read twice.
"""
from __future__ import annotations

import csv
import mmap
import re
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..io import (
    _check_csv_header,
    _first_ragged_row,
    _ragged_error,
    atomic_output,
    check_columns,
    check_table_input,
    clip,
    not_utf8,
    parquet_columns,
    plain_strings,
    text_encoding,
)
from .schema import validate

CHUNK_ROWS = 25_000  # a 50-column chunk and its copies (validation, predictions) stay far below 500 MB
CSV_BLOCK_BYTES = 1 << 20  # pyarrow reads blocks ahead: 4 MB blocks held ~160 MB, 1 MB ones ~40 MB (same speed)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _check_input(path: Path) -> None:
    check_table_input(path)
    if not _is_parquet(path) and path.stat().st_size == 0:
        raise DataError("file is empty; expected a header row and at least one data row", path=path)


def iter_chunks(path, chunk_rows: int = CHUNK_ROWS, limit: int | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
    """(rows before the chunk, chunk) over the file, at most `chunk_rows` rows each and `limit` in all."""
    path = Path(path)
    _check_input(path)
    batches = _parquet_batches(path, chunk_rows) if _is_parquet(path) else _csv_frames(path, chunk_rows)
    yield from _rechunk(batches, chunk_rows, limit)


def _rechunk(frames, chunk_rows: int, limit: int | None):
    offset, pending, held = 0, [], 0
    for df in frames:
        if limit is not None and offset + held + len(df) >= limit:
            pending.append(df.iloc[:limit - offset - held])
            break
        pending.append(df)
        held += len(df)
        while held >= chunk_rows:
            whole = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0].reset_index(drop=True)
            yield offset, whole.iloc[:chunk_rows].reset_index(drop=True)
            offset += chunk_rows
            rest = whole.iloc[chunk_rows:]
            pending, held = ([rest] if len(rest) else []), len(rest)
    if pending:
        whole = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0].reset_index(drop=True)
        if len(whole) or offset == 0:
            yield offset, whole


def _parquet_batches(path: Path, chunk_rows: int):
    try:
        import pyarrow.parquet as pq

        check_columns(parquet_columns(path), path)
        f = pq.ParquetFile(path)
        batches = f.iter_batches(batch_size=chunk_rows)
        first = True
        for batch in batches:
            first = False
            yield plain_strings(batch.to_pandas())  # dictionary-encoded text (categoricals) as plain text
        if first:  # no row group: the header alone
            yield f.schema_arrow.empty_table().to_pandas()
    except DataError:  # too many columns: its own message
        raise
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot be read as Parquet: {clip(str(exc).splitlines()[0] if str(exc) else exc, 200)}",
                        path=path)


def _has_hex_numbers(path: Path) -> bool:
    """Whether a field of the file starts with a hexadecimal number (0x20): pyarrow would read it as 32 where
    the schema refuses it (pandas keeps it as text). A search over the mapped file, at memory speed."""
    with open(path, "rb") as f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            return False
        with mm:
            if mm.find(b"0x") < 0 and mm.find(b"0X") < 0:
                return False
            return re.search(rb'(?:^|[,\n\r"])[ \t]*[+-]?0[xX][0-9a-fA-F]', mm) is not None


def _csv_frames(path: Path, chunk_rows: int):
    """pyarrow's multi-threaded reader; from the first block it cannot convert, pandas' chunked reader (which
    also reads the whole of a file in another encoding than UTF-8, or with hexadecimal numbers)."""
    encoding = text_encoding(path)
    _check_csv_header(path, encoding)
    if encoding not in ("utf-8", "utf-8-sig") or _has_hex_numbers(path):
        yield from _pandas_frames(path, chunk_rows, skip=0, encoding=encoding)
        return
    import pyarrow as pa
    import pyarrow.csv as pcsv

    done, pending, held, failed = 0, [], 0, False
    try:
        reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                               convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
        for batch in reader:  # blocks gathered into chunks: one conversion to pandas per chunk, not per block
            if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in batch.schema):
                failed = True  # text that is not UTF-8 (pyarrow reads it as bytes): pandas says where
                break
            pending.append(batch)
            held += batch.num_rows
            if held >= chunk_rows:
                yield pa.Table.from_batches(pending).to_pandas()
                done, pending, held = done + held, [], 0
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        failed = True  # the schema (through pandas) says what is wrong, and where
    if pending:
        yield pa.Table.from_batches(pending).to_pandas()
        done += held
    if failed:
        yield from _pandas_frames(path, chunk_rows, skip=done)


def _pandas_frames(path: Path, chunk_rows: int, skip: int, encoding: str = "utf-8"):
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            reader = pd.read_csv(path, chunksize=chunk_rows, index_col=False, low_memory=False, encoding=encoding,
                                 skiprows=range(1, skip + 1) if skip else None)
            for df in reader:
                if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
                    found = _first_ragged_row(path, encoding)
                    if found:
                        raise _ragged_error(path, found)
                yield df
    except DataError:
        raise
    except pd.errors.ParserError:
        found = _first_ragged_row(path, encoding)
        if found:
            raise _ragged_error(path, found) from None
        raise DataError("cannot be read as CSV", path=path) from None
    except pd.errors.EmptyDataError:
        raise DataError("file is empty; expected a header row and at least one data row", path=path) from None
    except UnicodeDecodeError as exc:
        raise DataError(not_utf8(exc), path=path) from None
    except (csv.Error, ValueError, OSError, MemoryError) as exc:
        lines = str(exc).strip().splitlines()
        raise DataError(f"cannot be read as CSV: {clip(lines[0] if lines else type(exc).__name__, 200)}",
                        path=path) from None


def validated(chunk: pd.DataFrame, path, offset: int, **kwargs) -> pd.DataFrame:
    """The schema's validation of one chunk; a row error names the row counted from the file's start."""
    try:
        return validate(chunk, path, **kwargs)
    except DataError as exc:
        if exc.row is None or not offset:
            raise
        # str(exc) is "path, row R, column 'c': message" (DataError's format): keep the message.
        where = [str(exc.path)] if exc.path is not None else []
        where += [f"row {exc.row}"] + ([f"column '{exc.column}'"] if exc.column is not None else [])
        message = str(exc)[len(", ".join(where)) + 2:]
        raise DataError(message, path=exc.path, row=exc.row + offset, column=exc.column) from None


def read_head(path, rows: int, **kwargs) -> pd.DataFrame:
    """The first `rows` validated rows of a file, reading no further than they reach."""
    for offset, chunk in iter_chunks(path, chunk_rows=rows, limit=rows):
        return validated(chunk, path, offset, require_energy=False, **kwargs)
    raise DataError("no data rows; expected at least one configuration", path=path)


# ---------------------------------------------------------------- output, appended then renamed


class TableWriter:
    """Appends DataFrames to a CSV (one header) or Parquet file (the first chunk's column types)."""

    def __init__(self, path: Path, parquet: bool, shown=None):
        self.path, self.parquet, self.schema, self._pq, self._file = path, parquet, None, None, None
        self.shown = shown or path  # the name errors give (the target, not its temporary file)

    def write(self, df: pd.DataFrame, extra: dict | None = None) -> None:
        """Append `df`, with the columns of `extra` (name -> array) replacing or following its own."""
        import pyarrow as pa

        table = pa.Table.from_pandas(df, preserve_index=False)
        for name, values in (extra or {}).items():  # arrays straight into Arrow: no pandas column inserts
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, pa.array(values)) if i >= 0 else table.append_column(name, pa.array(values))
        if self.schema is None:
            self.schema = table.schema.remove_metadata()
        elif not self.parquet and table.column_names == self.schema.names:
            pass  # CSV is text: a column may be typed differently from chunk to chunk (empty, then text)
        elif table.schema.remove_metadata() != self.schema:
            try:
                table = table.cast(self.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                raise DataError(f"a later chunk's column types do not fit the first chunk's ({clip(exc, 160)}); "
                                "write CSV instead", path=self.shown) from None
        if self.parquet:
            import pyarrow.parquet as pq

            if self._pq is None:
                self._pq = pq.ParquetWriter(self.path, self.schema)
            self._pq.write_table(table)
        else:
            import pyarrow.csv as pcsv

            if self._file is None:
                self._file = open(self.path, "wb")
            pcsv.write_csv(table, self._file, write_options=pcsv.WriteOptions(include_header=self._file.tell() == 0))

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
        if self._file is not None:
            self._file.close()


def predict_file(model, configs, output, chunk_rows: int = CHUNK_ROWS, counts: dict | None = None) -> int:
    """Write every configuration of `configs` with its predictions to `output`; the number of rows. `counts`, when
    given, gets 'extrapolating': how many rows' predictions leave the model's training domain."""
    configs, output = Path(configs), Path(output)
    rows = 0
    with atomic_output(output) as tmp:
        writer = TableWriter(tmp, _is_parquet(output), shown=output)
        # A chunk is written (Arrow, mostly without the GIL) while the next is read, validated and predicted;
        # at most one chunk waits for the writer, so memory stays bounded.
        pool, pending = ThreadPoolExecutor(max_workers=1, thread_name_prefix="energylens-write"), None
        try:
            for offset, chunk in iter_chunks(configs, chunk_rows):
                df = validated(chunk, configs, offset, require_energy=False)
                pred = model.predict_arrays(df)  # predict_frame's columns, without the frame
                if counts is not None:
                    flags = pd.Series(pred["extrapolation"], dtype=object).fillna("").astype(str).str.strip()
                    counts["extrapolating"] = counts.get("extrapolating", 0) + int((flags != "").sum())
                if pending is not None:
                    pending.result()  # in order, and a write error surfaces here
                pending = pool.submit(writer.write, df, pred)
                rows += len(df)
            if pending is not None:
                pending.result()
            if rows == 0:  # a header alone: nothing to predict, nothing written
                raise DataError("no rows; expected a header and at least one configuration", path=configs)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            writer.close()
    return rows
