"""Parquet files read a batch at a time, shaped as dask reads them: the same rows, dtypes, index
and hive partition columns, locally or on any fsspec filesystem.

Memory holds about one batch whatever the size of the files or their row groups: pyarrow
streams column chunks through a small buffer locally, and remote row groups are fetched a few
at a time in merged ranged requests (:func:`read_batches`). A file whose schema drifted from
the data's, or whose values do not fit dask's dtypes, is refused by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import OocmlError, SourceError, StorageError
from ..redaction import redact_url
from .storage import describe_error

REMOTE_FETCH_BYTES = 64 << 20  # remote row groups are fetched whole up to this many bytes at once
REMOTE_BUFFER_BYTES = 4 << 20  # per column, when a larger remote row group streams
# With strings: hashing text (ENCODE text, hash) builds several times its size in index
# lists and sparse rows, so batches hold less of it (tests/test_encodings.py, the peak test).
STRING_BATCH_BYTES = 4 << 20
# each column of an open file streams through a buffer of this size: 64 KB reads as fast
# as 1 MB from a local disk, and a file open costs a column as little (SHUFFLE opens several)
LOCAL_BUFFER_BYTES = 64 << 10


def read_batches(path: str, row_groups: list[int] | None, columns: list[str],
                 meta: pd.DataFrame, rows: int, fs: Any = None,
                 keys: tuple = ()) -> Iterator[pd.DataFrame]:
    """One file (or some of its row groups) on ``fs`` (None: local) as frames of exactly
    ``rows`` rows (the last one shorter), dtypes of ``meta``, hive partition columns filled in
    from ``keys``; their index numbers the rows from the first one read, as dask's does.

    Memory holds about one batch whatever the row groups' size: pyarrow streams the column
    chunks through a small buffer (no pre-buffering of a whole row group); remote row groups
    are fetched a few at a time (:func:`_remote_batches`). The batches are the same rows
    wherever the file is, so a model is the same bit for bit.
    """
    physical = [c for c in columns if c not in dict(keys)]
    local = fs is None or is_local(fs)
    try:
        with ExitStack() as opened:
            if local:
                source = pq.ParquetFile(path, buffer_size=LOCAL_BUFFER_BYTES, pre_buffer=False)
            else:
                raw = opened.enter_context(fs.open(path, "rb", cache_type="none"))
                source = pq.ParquetFile(raw, buffer_size=REMOTE_BUFFER_BYTES, pre_buffer=False)
            check_schema(path, source.schema_arrow, physical, meta)
            if any(not pd.api.types.is_numeric_dtype(meta[c].dtype) for c in physical):
                rows = string_batch_rows(source.metadata, row_groups, physical, rows)
            arrow = (source.iter_batches(batch_size=rows, row_groups=row_groups,
                                         columns=physical, use_threads=False) if local
                     else _remote_batches(path, fs, source, row_groups, physical, rows))
            yield from _frames(arrow, rows, physical, keys, columns, meta, path)
    except OocmlError:
        raise
    except Exception as exc:  # filesystems raise OSError, botocore and aiohttp errors alike
        lost = None if local else describe_error(exc)
        if lost is not None:
            raise StorageError(f"cannot read {redact_url(fs.unstrip_protocol(path))!r}: {lost}") from None
        if isinstance(exc, OSError | pa.ArrowException):
            raise unreadable(path, exc) from None
        raise


def _frames(arrow: Iterable[pa.RecordBatch], rows: int, physical: list[str], keys: tuple,
            columns: list[str], meta: pd.DataFrame, path: str) -> Iterator[pd.DataFrame]:
    """The record batches as frames of exactly ``rows`` rows, shaped as :func:`read_batches`
    promises."""
    start = 0
    for batch in exact_batches(arrow, rows):
        frame = batch.to_pandas(use_threads=False, split_blocks=True)
        # Plain object labels: the engine looks up every column of every batch, faster in
        # an object index (benchmarks/README.md, "Measurements behind the rules").
        frame.columns = pd.Index(physical, dtype=object)
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield as_dask_dtypes(with_keys(frame, keys, columns, meta), meta, path)


def string_batch_rows(metadata: Any, row_groups: list[int] | None, columns: list[str],
                      rows: int) -> int:
    """Rows per batch for columns that hold strings (free text): about ``STRING_BATCH_BYTES``
    of their uncompressed size in the file, where ``rows`` counts 8 bytes a column; from the
    file's footer, so the batches are the same wherever the file is."""
    groups = range(metadata.num_row_groups) if row_groups is None else row_groups
    count = sum(metadata.row_group(g).num_rows for g in groups)
    size = sum(_chunk_bytes(metadata, g, columns, "total_uncompressed_size") for g in groups)
    if count == 0 or size == 0:
        return rows
    return max(1024, min(rows, STRING_BATCH_BYTES * count // size))


def is_local(fs: Any) -> bool:
    """Whether an fsspec filesystem is this machine's disk."""
    return "file" in ((fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol)


def _remote_batches(path: str, fs: Any, source: pq.ParquetFile, row_groups: list[int] | None,
                    columns: list[str], rows: int) -> Iterator[pa.RecordBatch]:
    """Record batches of a remote file (``source``, opened on it): runs of row groups whose
    needed column chunks add up to at most ``REMOTE_FETCH_BYTES`` are fetched in a few merged
    ranged requests (``fsspec.parquet``); a larger row group streams through a
    ``REMOTE_BUFFER_BYTES`` buffer per column."""
    from fsspec.parquet import open_parquet_file

    for run in _row_group_runs(source.metadata, row_groups, columns):
        if len(run) == 1 and _chunk_bytes(source.metadata, run[0], columns) > REMOTE_FETCH_BYTES:
            yield from source.iter_batches(batch_size=rows, row_groups=run, columns=columns,
                                           use_threads=False)
            continue
        with open_parquet_file(path, fs=fs, columns=columns, row_groups=run,
                               engine="pyarrow") as fetched:
            # in memory already: its column chunks stream through small buffers, not copied whole
            in_memory = pq.ParquetFile(fetched, pre_buffer=False, buffer_size=LOCAL_BUFFER_BYTES)
            yield from in_memory.iter_batches(batch_size=rows, row_groups=run, columns=columns,
                                              use_threads=False)


def _chunk_bytes(metadata: Any, group: int, columns: list[str],
                 size: str = "total_compressed_size") -> int:
    """The bytes (``size``: stored, or ``total_uncompressed_size``) of ``columns``' chunks in
    row group ``group``."""
    chunks = metadata.row_group(group)
    wanted = set(columns)
    return sum(getattr(chunks.column(i), size) for i in range(chunks.num_columns)
               if chunks.column(i).path_in_schema.split(".")[0] in wanted)


def _row_group_runs(metadata: Any, row_groups: list[int] | None,
                    columns: list[str]) -> Iterator[list[int]]:
    """Consecutive row groups whose needed bytes add up to at most ``REMOTE_FETCH_BYTES``."""
    run, size = [], 0
    for group in range(metadata.num_row_groups) if row_groups is None else row_groups:
        needed = _chunk_bytes(metadata, group, columns)
        if run and size + needed > REMOTE_FETCH_BYTES:
            yield run
            run, size = [], 0
        run.append(group)
        size += needed
    if run:
        yield run


def exact_batches(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """The rows of ``batches`` regrouped into tables of exactly ``rows`` rows (the last shorter),
    whatever sizes they came in."""
    pending, held = [], 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - held, batch.num_rows)
            pending.append(batch.slice(0, take))
            held += take
            batch = batch.slice(take)
            if held == rows:
                yield pa.Table.from_batches(pending)
                pending, held = [], 0
    if held:
        yield pa.Table.from_batches(pending)


def with_keys(frame: pd.DataFrame, keys: tuple, columns: list[str],
              meta: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the hive partition columns of ``keys`` that ``columns`` asks for, as the
    categoricals dask makes of them, in the order of ``columns``."""
    wanted = [(name, value) for name, value in keys if name in columns]
    if not wanted and len(frame.columns) == len(columns):
        return frame
    missing = [c for c in columns if c in meta and isinstance(meta[c].dtype, pd.CategoricalDtype)
               and c not in frame.columns and c not in dict(wanted)]
    if missing:
        raise SourceError(f"a file has no {missing[0]}=value folder above it, which the other "
                          "files' folders have; move it into one, or leave it out")
    for name, value in wanted:
        categories = meta[name].cat.categories
        at = np.flatnonzero(categories.astype(str) == str(value))
        if not len(at):
            raise SourceError(f"the partition folder {name}={value} holds a value that does not "
                              f"parse as the others ({list(categories[:5])}...); rename the folder")
        codes = np.full(len(frame), at[0], dtype=np.int32)
        frame[name] = pd.Categorical.from_codes(codes, dtype=meta[name].dtype)
    return frame[columns]


def read_piece(path: str, row_groups: list[int] | None, columns: list[str],
               meta: pd.DataFrame, fs: Any = None, keys: tuple = ()) -> pd.DataFrame:
    """One file (or some of its row groups), shaped like dask's partition (dtypes of ``meta``)."""
    frames = list(read_batches(path, row_groups, columns, meta, 1 << 62, fs=fs, keys=keys))
    frame = frames[0] if frames else meta.copy()
    frame.columns = pd.Index(columns)  # labels as dask's (the batches' are plain objects)
    return frame


def unreadable(path: str, exc: Exception) -> SourceError:
    """The error for a file pyarrow cannot read, naming it."""
    return SourceError(f"{path!r} is not a readable parquet file ({exc}); repair or remove it, "
                       "or name only the good files")


def as_dask_dtypes(frame: pd.DataFrame, meta: pd.DataFrame, path: str = "") -> pd.DataFrame:
    """``frame`` (of the file ``path``) cast to dask's dtypes, except categoricals: dask's meta
    does not know their categories (each file has its own dictionary), and casting to it would
    turn values into NaN. A column that cannot take dask's dtype here is refused by name."""
    wanted = {c: t for c, t in meta.dtypes.items()
              if frame[c].dtype != t and not isinstance(t, pd.CategoricalDtype)}
    if not wanted:
        return frame
    try:
        return frame.astype(wanted)
    except (ValueError, TypeError):
        raise _uncastable(frame, wanted, path) from None


def _uncastable(frame: pd.DataFrame, wanted: dict, path: str) -> SourceError:
    """The error for the first column of ``frame`` that does not cast to its ``wanted`` dtype."""
    for column, dtype in wanted.items():
        try:
            frame[column].astype(dtype)
        except (ValueError, TypeError):
            missing = int(frame[column].isna().sum())
            found = f"{missing} missing value(s)" if missing else f"{frame[column].dtype} values"
            where = f"{path!r} holds" if path else "a file holds"
            return SourceError(
                f"{where} {found} in column {column!r}, which the other files hold as {dtype}; "
                f"rewrite that file with one type, or (Python) read the column as float: "
                f"dd.read_parquet(...).astype({{{column!r}: 'float64'}}), then drop the missing "
                f"rows with .dropna(subset=[{column!r}])")
    return SourceError(f"{path!r} holds values that do not fit the columns' types {wanted}")


def check_schema(path: str, schema: pa.Schema, columns: list[str], meta: pd.DataFrame) -> None:
    """Refuse a file whose columns drifted from the data's schema (dask takes it from one file)."""
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise SourceError(f"{path!r} has no column(s) {missing}, which the other files have; "
                          "rewrite the file, or leave those columns out (FEATURES / features=)")
    for column in columns:
        kind, found = meta[column].dtype.kind, schema.field(column).type
        if kind in "biuf" and not (pa.types.is_integer(found) or pa.types.is_floating(found)
                                   or pa.types.is_boolean(found) or pa.types.is_null(found)):
            raise SourceError(f"{path!r} holds column {column!r} as {found}, where the other "
                              f"files hold {meta[column].dtype}; rewrite the file with one type")
