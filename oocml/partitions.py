"""The partitions of a dask DataFrame, read as fast as this machine allows, a batch at a time.

When a frame is a plain local parquet read (after column projection), each
partition becomes a :class:`ParquetPart`: the very files and row groups dask
planned for it, read straight with pyarrow inside the task that uses them (the
same rows in the same partitions, so the same model, at about twice the speed of
dask's fsspec reader on two cores). Consumers take its rows in batches of about
``BATCH_BYTES``: no partition-sized table is ever decoded at once, so memory does
not grow with the size of the files. (Smaller batches cost more: every batch pays
pandas' and scikit-learn's per-call overhead with the GIL held, and two threads
then wait on each other; with 8 MB batches the two-core statistics pass took
1.5-2x as long. Above 16 MB nothing was gained, and the arrays gathered from a
batch would pass glibc's 32 MB threshold, beyond which every allocation maps
fresh pages.) Anything else (filters, remote files, computed frames) falls back
to ``frame.to_delayed()``, whose in-memory partitions are cut into the same batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .conditions import columns_of, filter_block
from .errors import SourceError

log = logging.getLogger("oocml")

BATCH_BYTES = 16 << 20  # rows per batch: this many bytes of the columns read (at least 1,024 rows)
_PLAIN_OPERANDS_MUST_BE_EMPTY = ("filters", "categories", "index", "storage_options", "_partitions")


Piece = tuple[str, "list[int] | None"]


def parquet_pieces(frame: dd.DataFrame) -> list[list[Piece]] | None:
    """Per partition, the ``(path, row_groups)`` pieces dask would read and concatenate, when
    ``frame`` is a plain local parquet read; None otherwise."""
    try:
        expr = frame.expr.optimize(fuse=False)
        expected = expr.npartitions  # after dask's own optimizations, as to_delayed() sees it
        while type(expr).__name__ == "Projection":  # column choice/order: we read frame.columns
            expr = expr.frame
        buckets = None
        if type(expr).__name__ == "FusedIO":  # dask reads several files per partition
            buckets = [list(b) for b in expr._fusion_buckets]
            expr = expr.operand("_expr")
        if type(expr).__name__ != "ReadParquetFSSpec":
            return None
        if any(expr.operand(name) for name in _PLAIN_OPERANDS_MUST_BE_EMPTY):
            return None
        extra = {k: v for k, v in (expr.operand("kwargs") or {}).items() if v is not None}
        if expr.operand("filesystem") not in (None, "fsspec") or extra:
            return None
        pieces = [part["piece"] for part in expr._plan["parts"]]
        if any(len(p) != 3 or p[2] or "://" in str(p[0]) for p in pieces):
            return None
        pieces = [(str(path), None if groups is None else list(groups)) for path, groups, _ in pieces]
        grouped = [[pieces[i] for i in bucket] for bucket in buckets] if buckets else [[p] for p in pieces]
    except Exception:  # an internal detail of dask changed: the generic path is always right
        return None
    return grouped if len(grouped) == expected else None


@dataclass(frozen=True)
class ParquetPart:
    """One partition as the parquet pieces dask planned for it: read where it is used, a batch
    of rows at a time, with the rows a WHERE ``condition`` rejects left out of each batch."""

    pieces: tuple[Piece, ...]
    columns: tuple[str, ...]  # columns read
    meta: pd.DataFrame  # dask's empty frame of those columns: the dtypes every batch gets
    condition: Any = None
    keep: tuple[str, ...] | None = None  # columns left after the condition (None: all)

    def batches(self) -> Iterator[pd.DataFrame]:
        """The partition's rows, about ``BATCH_BYTES`` at a time, in file order."""
        rows = batch_rows(len(self.columns))
        for path, groups in self.pieces:
            for frame in read_batches(path, groups, list(self.columns), self.meta, rows):
                yield self._filtered(frame)

    def frame(self) -> pd.DataFrame:
        """The whole partition in one frame, shaped as dask would have read it."""
        frames = [read_piece(path, groups, list(self.columns), self.meta)
                  for path, groups in self.pieces]
        return self._filtered(frames[0] if len(frames) == 1 else pd.concat(frames))

    def _filtered(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.condition is None:
            return frame
        return filter_block(frame, self.condition)[list(self.keep or self.columns)]


def batch_rows(n_columns: int) -> int:
    """Rows in a batch of ``n_columns`` columns."""
    return max(1024, BATCH_BYTES // (8 * max(n_columns, 1)))


def batches(part: Any) -> Iterator[pd.DataFrame]:
    """The rows of a partition (a :class:`ParquetPart` or an in-memory frame) in batches of about
    ``BATCH_BYTES``: the same batches whichever way the partition was read. At least one batch,
    empty for an empty partition."""
    if isinstance(part, ParquetPart):
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


def whole(part: Any) -> pd.DataFrame:
    """A partition in one frame."""
    return part.frame() if isinstance(part, ParquetPart) else part


def read_batches(path: str, row_groups: list[int] | None, columns: list[str],
                 meta: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    """One file (or some of its row groups) as frames of ``rows`` rows, dtypes of ``meta``;
    their index numbers the rows from the first one read, as dask's partition does.

    pyarrow streams the column chunks through a small buffer (no pre-buffering of the
    whole row group), so memory holds about one batch whatever the row groups' size.
    """
    try:
        source = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
        check_schema(path, source.schema_arrow, columns, meta)
        start = 0
        for batch in source.iter_batches(batch_size=rows, row_groups=row_groups,
                                         columns=columns, use_threads=False):
            frame = batch.to_pandas(use_threads=False, split_blocks=True)
            # Plain object labels: looking a column up is 3.5x faster than in pandas' arrow-backed
            # string index, and the engine looks up every column of every batch.
            frame.columns = pd.Index(columns, dtype=object)
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield as_dask_dtypes(frame, meta)
    except (OSError, pa.ArrowException) as exc:
        raise unreadable(path, exc) from None


def read_piece(path: str, row_groups: list[int] | None, columns: list[str],
               meta: pd.DataFrame) -> pd.DataFrame:
    """One file (or some of its row groups), shaped like dask's partition (dtypes of ``meta``)."""
    try:
        source = pq.ParquetFile(path)
        check_schema(path, source.schema_arrow, columns, meta)
        table = (source.read(columns=columns, use_threads=False) if row_groups is None
                 else source.read_row_groups(row_groups, columns=columns, use_threads=False))
    except (OSError, pa.ArrowException) as exc:
        raise unreadable(path, exc) from None
    # One block per column: numeric columns arrive without a copy (3x faster than one 2D block
    # here), and oocml.blocks gathers the rows scikit-learn needs straight from the columns.
    return as_dask_dtypes(table.to_pandas(use_threads=False, split_blocks=True), meta)


def unreadable(path: str, exc: Exception) -> SourceError:
    """The error for a file pyarrow cannot read, naming it."""
    return SourceError(f"{path!r} is not a readable parquet file ({exc}); repair or remove it, "
                       "or name only the good files")


def as_dask_dtypes(frame: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    """``frame`` cast to dask's dtypes, except categoricals: dask's meta does not know their
    categories (each file has its own dictionary), and casting to it would turn values into NaN.
    """
    wanted = {c: t for c, t in meta.dtypes.items()
              if frame[c].dtype != t and not isinstance(t, pd.CategoricalDtype)}
    return frame.astype(wanted) if wanted else frame


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
    pieces = parquet_pieces(frame)
    if pieces is None:
        return frame.to_delayed()
    log.debug("reading %d parquet pieces directly with pyarrow", len(pieces))
    return [ParquetPart(tuple(group), tuple(frame.columns), frame._meta) for group in pieces]


def where_partitions(frame: dd.DataFrame, condition: Any, columns: list[str]) -> list[Any]:
    """Partitions holding ``columns`` of the rows that satisfy ``condition`` (None: all rows)."""
    if condition is None:
        return partitions(frame[columns])
    needed = columns + [c for c in columns_of(condition) if c not in columns]
    return [replace(p, condition=condition, keep=tuple(columns)) if isinstance(p, ParquetPart)
            else dask.delayed(_filtered, pure=True)(p, condition, columns)
            for p in partitions(frame[needed])]


def _filtered(part: pd.DataFrame, condition: Any, columns: list[str]) -> pd.DataFrame:
    return filter_block(part, condition)[columns]
