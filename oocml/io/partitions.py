"""The partitions of a dask DataFrame, read as fast as this machine allows, a batch at a time.

When a frame is a plain parquet read (local or remote, hive-partitioned, with or without
``filters``, after column projection), each partition becomes a :class:`ParquetPart`: the
very files and row groups dask planned for it (found by :mod:`oocml.io.dask_plans`), on
dask's filesystem, read straight with pyarrow (:mod:`oocml.io.parquet`) inside the task that
uses them (the same rows in the same partitions, so the same model). Compressed CSV and
JSON-lines files that oocml opened are :class:`TextPart` s. Consumers take the rows in
batches of ``BATCH_BYTES`` (see benchmarks/README.md for why 16 MB): no partition-sized
table is ever decoded at once, so memory does not grow with the size of the files or their
row groups. Anything else (computed frames) falls back to ``frame.to_delayed()``, whose
in-memory partitions are cut into the same batches; the reason is logged at debug level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd
from dask.dataframe.utils import make_meta

from ..errors import OocmlError, SourceError, StorageError
from ..plan import conjunction
from ..redaction import redact_url
from .conditions import columns_of, filter_block
from .dask_plans import Piece, mapped_items, parquet_pieces
from .parquet import as_dask_dtypes, is_local, read_batches, read_piece
from .storage import describe_error

log = logging.getLogger("oocml")

BATCH_BYTES = 16 << 20  # rows per batch: this many bytes of the columns read (at least 1,024 rows)


class FilePart:
    """A partition read from files where it is used, a batch of rows at a time, with the rows a
    WHERE ``condition`` rejects left out of each batch. Subclasses say how to read."""

    columns: tuple[str, ...]
    condition: Any
    keep: tuple[str, ...] | None

    def raw_batches(self, nbytes: int = BATCH_BYTES) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def batches(self, nbytes: int = BATCH_BYTES) -> Iterator[pd.DataFrame]:
        """The partition's rows, about ``nbytes`` at a time, in file order."""
        for frame in self.raw_batches(nbytes):
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

    def raw_batches(self, nbytes: int = BATCH_BYTES) -> Iterator[pd.DataFrame]:
        rows = batch_rows(len(self.columns), nbytes)
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

    def raw_batches(self, nbytes: int = BATCH_BYTES) -> Iterator[pd.DataFrame]:
        start, columns = 0, list(self.columns)
        with self._reader(batch_rows(len(self.meta.columns), nbytes)) as reader:
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


def batch_rows(n_columns: int, nbytes: int = BATCH_BYTES) -> int:
    """Rows in a batch of about ``nbytes`` of ``n_columns`` columns."""
    return max(1024, nbytes // (8 * max(n_columns, 1)))


def batches(part: Any, nbytes: int | None = None) -> Iterator[pd.DataFrame]:
    """The rows of a partition (a :class:`ParquetPart` or an in-memory frame) in batches of about
    ``nbytes`` (default ``BATCH_BYTES``): the same batches whichever way the partition was
    read. At least one batch, empty for an empty partition."""
    nbytes = nbytes or BATCH_BYTES
    if isinstance(part, FilePart):
        empty = True
        for frame in part.batches(nbytes):
            empty = False
            yield frame
        if empty:
            yield part._filtered(part.meta)
        return
    step = batch_rows(part.shape[1], nbytes)
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
    return [replace(p, condition=conjunction(p.condition, condition), keep=tuple(columns))
            if isinstance(p, FilePart) else dask.delayed(_filtered, pure=True)(p, condition, columns)
            for p in partitions(frame[needed])]


def _filtered(part: pd.DataFrame, condition: Any, columns: list[str]) -> pd.DataFrame:
    return filter_block(part, condition)[columns]
