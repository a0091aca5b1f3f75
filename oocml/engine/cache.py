"""The prepared-block cache: the first epoch writes each partition's prepared blocks to a
local binary file; every later epoch reads them instead of reading, decoding and
preprocessing the source again (as Vowpal Wabbit's ``--cache_file`` does for its passes).

What is cached is a partition's blocks *before* the epoch's row permutation, in order, so
an epoch read from the cache permutes them exactly as one read from the source does: the
model is the same bit for bit. Blocks are stored uncompressed in their own dtype (labels as
their index among the known classes), one file per partition, committed by an index
written last; a partition whose index is missing is read from the source.

Memory: a cached block is read into a fresh array with ``np.fromfile`` (no memory map
whose pages would count against the fit's resident memory), one block at a time.

Faults never change the model: a write that fails (a full disk, a size budget reached)
stops caching with a warning, and a cache file that is missing or damaged when read is
read from the source instead, with a warning, resuming at the same block.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("oocml")

MARGIN_BYTES = 1 << 30  # free disk space the cache always leaves
INDEX = "p{index}.json"
DATA = "p{index}.bin"


class CacheWarning(UserWarning):
    """The cache could not be written or read; the source was used instead."""


class BlockCache:
    """Prepared blocks per partition under ``folder``; ``labels`` maps class labels to codes.

    ``budget`` caps the bytes written (default: the free space less ``MARGIN_BYTES``).
    ``keep``: leave the files when the fit ends (a cache folder the user named).
    """

    def __init__(self, folder: str | os.PathLike | None = None, *, labels: Any = None,
                 budget: int | None = None, keep: bool = False):
        self.keep = keep
        self.folder = Path(folder) if folder is not None else Path(
            tempfile.mkdtemp(prefix="oocml-cache-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.labels = None if labels is None else np.asarray(labels)
        free = shutil.disk_usage(self.folder).free
        self.budget = max(free - MARGIN_BYTES, 0) if budget is None else budget
        self.written = 0
        self.writing = True
        self._lock = threading.RLock()  # _write stops the cache while holding it

    # -- writing ------------------------------------------------------------------------------
    def tee(self, index: int, blocks: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
        """``blocks`` passed on unchanged, and written to partition ``index``'s file."""
        entries: list[dict] | None = [] if self.writing else None
        path = self.folder / DATA.format(index=index)
        out = open(path, "wb") if entries is not None else None  # noqa: SIM115
        try:
            for X, y in blocks:
                if out is not None and not self._write(out, entries, X, y):
                    out.close()
                    out, entries = None, None
                    path.unlink(missing_ok=True)
                yield X, y
            if out is not None:
                out.close()
                out = None
                self._commit(index, entries)
        finally:
            if out is not None:  # stopped early (an error, Ctrl-C): the partition is not cached
                out.close()
                path.unlink(missing_ok=True)

    def _write(self, out: Any, entries: list[dict], X: Any, y: Any) -> bool:
        if not isinstance(X, np.ndarray) or X.dtype.kind != "f" or X.ndim != 2:
            self._stop("its blocks are not dense float arrays (sparse, from ENCODE hash)",
                       warn=False)
            return False
        codes = self._codes(y)
        size = X.nbytes + (0 if codes is None else codes.nbytes)
        with self._lock:
            if not self.writing:
                return False
            if self.written + size > self.budget:
                self._stop(f"it would pass its budget of {self.budget / 2**20:,.0f} MB (the "
                           f"free disk less a margin of {MARGIN_BYTES >> 20} MB)")
                return False
            self.written += size
        try:
            np.ascontiguousarray(X).tofile(out)
            if codes is not None:
                codes.tofile(out)
        except OSError as exc:
            self._stop(f"writing it failed ({exc})")
            return False
        entries.append({"rows": X.shape[0], "width": X.shape[1], "dtype": X.dtype.str,
                        "y": None if codes is None else codes.dtype.str,
                        "labels": self.labels is not None and y is not None})
        return True

    def _codes(self, y: Any) -> np.ndarray | None:
        """The labels as their index among the classes; numbers as they are."""
        if y is None:
            return None
        if self.labels is not None:
            return np.searchsorted(self.labels, y).astype(np.int32)
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"a target of dtype {y.dtype} needs the classes to be cached")
        return np.ascontiguousarray(y)

    def _commit(self, index: int, entries: list[dict]) -> None:
        target = self.folder / INDEX.format(index=index)
        temporary = target.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(entries))
            os.replace(temporary, target)
        except OSError as exc:
            self._stop(f"writing its index failed ({exc})")

    def _stop(self, reason: str, warn: bool = True) -> None:
        """Write nothing more; partitions already cached stay usable."""
        with self._lock:
            if not self.writing:
                return
            self.writing = False
        message = f"the prepared-block cache in {str(self.folder)!r} stops: {reason}; the " \
                  "partitions not cached are read from the source each epoch"
        if warn:
            warnings.warn(message, CacheWarning, stacklevel=2)
        log.info(message)

    # -- reading ------------------------------------------------------------------------------
    def has(self, index: int) -> bool:
        return (self.folder / INDEX.format(index=index)).is_file()

    def blocks(self, index: int, source: Callable[[], Iterable[tuple[Any, Any]]],
               ) -> Iterator[tuple[Any, Any]]:
        """Partition ``index``'s blocks from the cache; on any fault, from ``source()`` (the
        same blocks), from the first block not yet given."""
        given = 0
        try:
            entries = json.loads((self.folder / INDEX.format(index=index)).read_text())
            with open(self.folder / DATA.format(index=index), "rb") as data:
                for entry in entries:
                    block = self._read(data, entry)
                    given += 1
                    yield block
            return
        except (OSError, ValueError, KeyError) as exc:
            warnings.warn(f"the prepared-block cache of partition {index} cannot be read "
                          f"({exc}); reading the source instead", CacheWarning, stacklevel=2)
        for k, block in enumerate(source()):
            if k >= given:
                yield block

    def _read(self, data: Any, entry: dict) -> tuple[np.ndarray, Any]:
        rows, width = entry["rows"], entry["width"]
        X = np.fromfile(data, dtype=np.dtype(entry["dtype"]), count=rows * width)
        if X.size != rows * width:
            raise ValueError("the file is shorter than its index says")
        X = X.reshape(rows, width)
        if entry["y"] is None:
            return X, None
        y = np.fromfile(data, dtype=np.dtype(entry["y"]), count=rows)
        if y.size != rows:
            raise ValueError("the file is shorter than its index says")
        return X, (self.labels[y] if entry["labels"] else y)

    def remove(self) -> None:
        """Delete the cache, unless it is to be kept."""
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)


def cache_key(plan: Any, summary: Any) -> str:
    """What the prepared blocks depend on: the plan's preparation (not its estimator, epochs
    or how the source was named: the language and the accessor share a cache) and the
    data's own statistics from this fit's statistics pass, a fingerprint of the content
    itself (any changed value changes the moments and the rows per partition). SHUFFLE's
    window too: a window's partitions are read in smaller batches, so cut in smaller blocks."""
    import dataclasses
    import hashlib

    from ..plan import EstimatorSpec, StreamOptions

    stream = StreamOptions(holdout=plan.stream.holdout, shuffle=plan.stream.shuffle,
                           shuffle_window=plan.stream.shuffle_window)
    prepared = dataclasses.replace(plan.without_source(), estimator=EstimatorSpec(""),
                                   random_state=None, search=None, stream=stream)
    digest = hashlib.sha256(repr(prepared).encode())
    digest.update(repr(summary.partition_rows).encode())
    for array in (summary.moments.mean, summary.moments.m2, summary.moments.count,
                  summary.labels if summary.labels is not None else np.zeros(0)):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:24]


def disk_room(folder: str | os.PathLike | None, size: int) -> tuple[bool, int]:
    """Whether ``size`` bytes fit in ``folder`` (default: the temporary folder) leaving
    ``MARGIN_BYTES`` free, and the free bytes there."""
    where = Path(folder) if folder is not None else Path(tempfile.gettempdir())
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    return size <= free - MARGIN_BYTES, free


def cache_bytes(steps: list[tuple[str, Any]], rows: int, precision: str | None) -> int | None:
    """About how many bytes the cache of ``rows`` rows prepared by ``steps`` holds (None:
    unknown, when a step cannot name its output columns)."""
    from sklearn.pipeline import Pipeline

    try:
        width = len(Pipeline(steps).get_feature_names_out())
    except (AttributeError, ValueError, TypeError):
        return None
    return int(rows * width * np.dtype(precision).itemsize)


def cache_off(plan: Any, passes: int | None = None) -> str | None:
    """Why ``plan`` streams without the cache whatever the machine, or None (EXPLAIN says it;
    :func:`open_cache` obeys it). ``passes``: how many times the blocks are read (default: the
    plan's epochs; an external-memory matrix reads them three times)."""
    from ..plan_rules import SPARSE_ENCODINGS

    stream, wanted = plan.stream, plan.stream.cache
    if wanted is False:
        return "CACHE OFF"
    if wanted is None and (passes or stream.epochs) < 2:
        return "one epoch reads the data once"
    if stream.strategy == "average" or stream.block_rows is not None:
        return "PARALLEL and BLOCKSIZE read the source each epoch"
    if any(s.kind == "encode" and s.method in SPARSE_ENCODINGS for s in plan.steps):
        return "ENCODE hash and text make sparse blocks, prepared again each epoch"
    return None


def open_cache(plan: Any, summary: Any, labels: Any, on_cluster: bool,
               size: int | None = None, passes: int | None = None) -> BlockCache | None:
    """The cache this fit uses, or None: off for the reasons of :func:`cache_off`, on a
    cluster (its workers prepare the blocks), and by default when its ``size`` (estimated
    bytes, if known) would not fit on the disk."""
    wanted = plan.stream.cache
    reason = (cache_off(plan, passes)
              or ("a cluster's workers prepare the blocks" if on_cluster else None))
    if reason is None and wanted is None and size is not None:
        fits, free = disk_room(None, size)
        if not fits:
            reason = (f"{size >> 20} MB would not fit in the {free >> 20} MB free (less a "
                      f"margin of {MARGIN_BYTES >> 20} MB)")
    if reason is not None:
        log.info("the prepared-block cache is not used: %s", reason)
        return None
    if isinstance(wanted, str):
        from ..io.storage import is_url

        if is_url(wanted):
            from ..errors import ParameterError

            raise ParameterError(f"the prepared-block cache is local: {wanted!r} is a URL; "
                                 "name a local folder (CACHE 'folder' / cache='folder')")
        return BlockCache(Path(wanted) / cache_key(plan, summary), labels=labels, keep=True)
    return BlockCache(labels=labels)
