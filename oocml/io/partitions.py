"""The partitions of a dask DataFrame, read as fast as this machine allows, a batch at a time.

When a frame is a plain parquet read (local or remote, hive-partitioned, with or without
``filters``, after column projection), each partition becomes a :class:`ParquetPart`: the
very files and row groups dask planned for it (read by :mod:`oocml.io.dask_plans`), on dask's
filesystem, read straight with pyarrow inside the task that uses them (the same rows in the
same partitions, so the same model). Compressed CSV and JSON-lines files that oocml opened
are :class:`TextPart` s. Consumers take the rows in batches of ``BATCH_BYTES`` (see
benchmarks/README.md for why 16 MB): no partition-sized table is ever decoded at once, so
memory does not grow with the size of the files or their row groups. Anything else
(computed frames) falls back to ``frame.to_delayed()``, whose in-memory partitions are cut
into the same batches; the reason is logged at debug level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dask.dataframe.utils import make_meta

from ..errors import OocmlError, SourceError, StorageError
from ..plan import And
from ..redaction import redact_url
from .conditions import columns_of, filter_block
from .dask_plans import Piece, mapped_items, parquet_pieces
from .storage import describe_error

log = logging.getLogger("oocml")

REMOTE_FETCH_BYTES = 64 << 20  # remote row groups are fetched whole up to this many bytes at once
REMOTE_BUFFER_BYTES = 4 << 20  # per column, when a larger remote row group streams
BATCH_BYTES = 16 << 20  # rows per batch: this many bytes of the columns read (at least 1,024 rows)
# With strings: hashing text (ENCODE text, hash) builds several times its size in index
# lists and sparse rows, so batches hold less of it (tests/test_encodings.py, the peak test).
STRING_BATCH_BYTES = 4 << 20


class FilePart:
    """A partition read from files where it is used, a batch of rows at a time, with the rows a
    WHERE ``condition`` rejects left out of each batch. Subclasses say how to read."""

    columns: tuple[str, ...]
    condition: Any
    keep: tuple[str, ...] | None

    def raw_batches(self) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def batches(self) -> Iterator[pd.DataFrame]:
        """The partition's rows, about ``BATCH_BYTES`` at a time, in file order."""
        for frame in self.raw_batches():
            yield self._filtered(frame)

    def frame(self) -> pd.DataFrame:
        """The whole partition in one frame."""
        frames = list(self.batches())
        if not frames:
            return self._filtered(self.meta)
        frame = frames[0] if len(frames) == 1 else pd.concat(frames)
        return frame.set_axis(pd.RangeIndex(len(frame)), axis=0) if self.condition is None else frame

    def _filtered(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.condition is None:
            return frame
        return filter_block(frame, self.condition)[list(self.keep or self.columns)]


@dataclass(frozen=True)
class ParquetPart(FilePart):
    """One partition as the parquet pieces dask planned for it, on filesystem ``fs`` (None:
    local paths), hive partition columns filled in from the pieces' keys."""

    pieces: tuple[Piece, ...]
    columns: tuple[str, ...]  # columns read
    meta: pd.DataFrame  # dask's empty frame of those columns: the dtypes every batch gets
    condition: Any = None
    keep: tuple[str, ...] | None = None  # columns left after the condition (None: all)
    fs: Any = None

    def raw_batches(self) -> Iterator[pd.DataFrame]:
        rows = batch_rows(len(self.columns))
        for path, groups, keys in self.pieces:
            yield from read_batches(path, groups, list(self.columns), self.meta, rows,
                                    fs=self.fs, keys=keys)

    def frame(self) -> pd.DataFrame:
        """The whole partition in one frame, shaped as dask would have read it."""
        frames = [read_piece(path, groups, list(self.columns), self.meta, fs=self.fs, keys=keys)
                  for path, groups, keys in self.pieces]
        return self._filtered(frames[0] if len(frames) == 1 else pd.concat(frames))


@dataclass(frozen=True)
class TextPart(FilePart):
    """One compressed CSV or JSON-lines file: it cannot be split, so it is one partition, parsed
    by pandas a batch at a time from the decompressing stream."""

    path: str
    fs: Any
    format: str  # "csv" | "json"
    compression: str | None
    columns: tuple[str, ...] = ()
    meta: Any = None  # the empty frame of every column: the dtypes every batch gets
    condition: Any = None
    keep: tuple[str, ...] | None = None

    def sample_meta(self, rows: int = 1_000) -> pd.DataFrame:
        """The empty frame of the file's columns and dtypes, from its first rows."""
        with self._reader(rows) as reader:
            return next(iter(reader)).iloc[:0]

    def raw_batches(self) -> Iterator[pd.DataFrame]:
        start, columns = 0, list(self.columns)
        with self._reader(batch_rows(len(self.meta.columns))) as reader:
            for chunk in reader:
                chunk = chunk.reindex(columns=list(self.meta.columns))[columns]
                chunk.index = pd.RangeIndex(start, start + len(chunk))
                start += len(chunk)
                yield as_dask_dtypes(chunk, self.meta[columns], self.path)

    @contextmanager
    def _reader(self, rows: int) -> Iterator[Any]:
        try:
            with self.fs.open(self.path, "rb", compression=self.compression) as stream:
                if self.format == "csv":
                    yield pd.read_csv(stream, chunksize=rows)
                else:
                    yield pd.read_json(stream, lines=True, chunksize=rows)
        except OocmlError:
            raise
        except Exception as exc:
            lost = None if is_local(self.fs) else describe_error(exc)
            if lost is not None:
                url = redact_url(self.fs.unstrip_protocol(self.path))
                raise StorageError(f"cannot read {url!r}: {lost}") from None
            if not isinstance(exc, OSError | ValueError | EOFError):
                raise
            hint = ' (pip install "oocml[zstd]")' if self.compression == "zstd" else ""
            raise SourceError(f"{self.path!r} is not readable {self.compression} {self.format} "
                              f"({exc}){hint}; repair or remove it") from None


def batch_rows(n_columns: int) -> int:
    """Rows in a batch of ``n_columns`` columns."""
    return max(1024, BATCH_BYTES // (8 * max(n_columns, 1)))


def batches(part: Any) -> Iterator[pd.DataFrame]:
    """The rows of a partition (a :class:`ParquetPart` or an in-memory frame) in batches of about
    ``BATCH_BYTES``: the same batches whichever way the partition was read. At least one batch,
    empty for an empty partition."""
    if isinstance(part, FilePart):
        empty = True
        for frame in part.batches():
            empty = False
            yield frame
        if empty:
            yield part._filtered(part.meta)
        return
    step = batch_rows(part.shape[1])
    for start in range(0, max(len(part), 1), step):
        yield part.iloc[start:start + step]


def read_ahead(items: Iterator[Any]) -> Iterator[Any]:
    """``items``, the next one made on another thread while the caller works on this one:
    a partition read alone can use two cores (pyarrow decodes without the GIL)."""
    with ThreadPoolExecutor(1, thread_name_prefix="oocml-ahead") as pool:
        coming = pool.submit(next, items, None)
        while (item := coming.result()) is not None:
            coming = pool.submit(next, items, None)
            yield item


def whole_partition(part: Any) -> pd.DataFrame:
    """A partition in one frame."""
    return part.frame() if isinstance(part, FilePart) else part


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
                source = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
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
            yield from pq.ParquetFile(fetched, pre_buffer=False).iter_batches(
                batch_size=rows, row_groups=run, columns=columns, use_threads=False)


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


def partitions(frame: dd.DataFrame) -> list[Any]:
    """One partition of ``frame`` per item, in order: a :class:`ParquetPart`, or a delayed
    pandas DataFrame. Read them with :func:`batches` or :func:`whole`."""
    found = parquet_pieces(frame)
    if found is not None:
        log.debug("reading %d parquet partitions directly with pyarrow", len(found.pieces))
        fs = None if is_local(found.fs) else found.fs
        columns = list(frame.columns)
        if found.condition is None:
            return [ParquetPart(tuple(group), tuple(columns), make_meta(frame), fs=fs)
                    for group in found.pieces]
        # The rows dask's filters keep, as dask filters them.
        read = columns + [c for c in columns_of(found.condition) if c not in columns]
        meta = pd.concat([make_meta(frame), found.meta[[c for c in read if c not in columns]]],
                         axis=1)
        return [ParquetPart(tuple(group), tuple(read), meta, found.condition, tuple(columns), fs=fs)
                for group in found.pieces]
    parts = file_parts(frame)
    if parts is not None:
        return parts
    log.debug("dask computes the partitions (frame.to_delayed())")
    return frame.to_delayed()


def file_parts(frame: dd.DataFrame) -> list[FilePart] | None:
    """The :class:`FilePart` partitions of a frame oocml opened with ``dd.from_map`` (compressed
    text), projected on ``frame``'s columns; None for any other frame."""
    parts = mapped_items(frame, whole_partition)
    if parts is None or not all(isinstance(p, FilePart) for p in parts):
        return None
    return [replace(p, columns=tuple(frame.columns)) for p in parts]


def where_partitions(frame: dd.DataFrame, condition: Any, columns: list[str]) -> list[Any]:
    """Partitions holding ``columns`` of the rows that satisfy ``condition`` (None: all rows)."""
    if condition is None:
        return partitions(frame[columns])
    needed = columns + [c for c in columns_of(condition) if c not in columns]
    return [replace(p, condition=condition if p.condition is None else And((p.condition, condition)),
                    keep=tuple(columns)) if isinstance(p, FilePart)
            else dask.delayed(_filtered, pure=True)(p, condition, columns)
            for p in partitions(frame[needed])]


def _filtered(part: pd.DataFrame, condition: Any, columns: list[str]) -> pd.DataFrame:
    return filter_block(part, condition)[columns]
