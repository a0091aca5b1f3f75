"""Parse text once: the statistics pass keeps each partition's parsed rows for the later passes.

A CSV or JSON-lines source is parse-bound: pandas turns text into columns several times
slower than pyarrow decodes parquet. So the statistics pass, which must parse every row
anyway, also writes each partition's parsed batches to a local Arrow IPC file
(uncompressed, one record batch per batch), and every later pass (training, holdout
scoring, a projection) reads those files instead of the text. The batches read back are
the batches written, with the same dtypes and index, so the model is the same bit for bit.

Faults never change the model: a partition whose copy could not be written (a full disk,
a type Arrow cannot hold) is read from the text, and a copy that is missing or damaged
when read is read from the text too, with a warning, from the same batch on.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import pandas as pd
import pyarrow as pa

from .._compat import reads_text
from ..io.partitions import BATCH_BYTES, FilePart, batches, file_parts
from .cache import MARGIN_BYTES, CacheWarning

log = logging.getLogger("oocml")

COPY = "p{index}.arrow"


class ParsedCopy:
    """The parsed partitions of a text source under ``folder`` (a new temporary folder by
    default), removed by :meth:`remove`. Every process of the local scheduler can write it:
    what was written is known from the files alone."""

    def __init__(self, folder: str | os.PathLike | None = None):
        base = None if folder is None else Path(folder)
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="oocml-parsed-", dir=base))

    def tee(self, index: int, frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """``frames`` passed on unchanged, and written to partition ``index``'s copy, which is
        committed (renamed into place) only when every frame was written."""
        final = self.folder / COPY.format(index=index)
        writer = _Writer(final.with_suffix(".tmp"))
        try:
            for frame in frames:
                if writer.ok:
                    try:
                        writer.write(frame)
                    except (OSError, pa.ArrowException, ValueError, TypeError) as exc:
                        log.info("partition %d will be parsed again: %s", index, exc)
                        writer.close(ok=False)
                yield frame
            if writer.ok and writer.close():
                os.replace(writer.path, final)
        finally:
            writer.close(ok=False)
            writer.path.unlink(missing_ok=True)

    def parts(self, parts: list[Any]) -> list[Any]:
        """``parts`` with every partition that has a copy read from it."""
        paths = [self.folder / COPY.format(index=i) for i in range(len(parts))]
        return [ParsedPart(str(path), part) if path.exists() else part
                for part, path in zip(parts, paths)]

    @staticmethod
    def holds(part: Any) -> bool:
        """Whether ``part`` reads a parsed copy."""
        return isinstance(part, ParsedPart)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class _Writer:
    """One partition's Arrow IPC file, a record batch per frame, every frame in the first's
    schema (a frame that does not fit it raises: the partition is then parsed again)."""

    def __init__(self, path: Path):
        self.path, self.ok = path, True
        self.sink: Any = None
        self.writer: Any = None
        self.schema: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.schema is None and any(pd.api.types.is_object_dtype(d) for d in frame.dtypes):
            raise TypeError("an object column would come back as strings")
        batch = pa.RecordBatch.from_pandas(frame, schema=self.schema,
                                           preserve_index=True)  # each batch's own index
        if shutil.disk_usage(self.path.parent).free - batch.nbytes < MARGIN_BYTES:
            raise OSError(f"less than {MARGIN_BYTES >> 20} MB of disk would be left")
        if self.writer is None:
            self.schema = batch.schema
            self.sink = pa.OSFile(str(self.path), "wb")
            self.writer = pa.ipc.new_file(self.sink, self.schema)
        self.writer.write_batch(batch)

    def close(self, ok: bool = True) -> bool:
        """Close the file; True when it was written whole (at least one batch)."""
        whole = ok and self.ok and self.writer is not None
        for thing in (self.writer, self.sink):
            if thing is not None:
                try:
                    thing.close()
                except (OSError, pa.ArrowException):
                    whole = False
        self.writer = self.sink = None
        self.ok = self.ok and ok
        return whole


@dataclass(frozen=True)
class ParsedPart(FilePart):
    """A partition read from its parsed copy, one batch at a time (plain reads into fresh
    buffers: no memory map whose pages would count against the fit's memory); ``source``
    is the partition it copies, read instead should the copy fail."""

    path: str
    source: Any
    columns: tuple[str, ...] = ()
    condition: Any = None
    keep: tuple[str, ...] | None = None

    def raw_batches(self, nbytes: int = BATCH_BYTES) -> Iterator[pd.DataFrame]:
        """The batches as the copy holds them, whatever ``nbytes`` asks."""
        done = 0
        try:
            with pa.OSFile(self.path, "rb") as file:
                reader = pa.ipc.open_file(file)
                for i in range(reader.num_record_batches):
                    frame = reader.get_batch(i).to_pandas()
                    done += 1
                    yield frame
            return
        except (OSError, pa.ArrowException) as exc:
            warnings.warn(CacheWarning(f"the parsed copy {self.path!r} could not be read ({exc}); "
                                       "its partition is parsed again"), stacklevel=2)
        source = self.source  # a FilePart, or a dask task computing the partition (here)
        if dask.is_dask_collection(source):
            source = source.compute(scheduler="sync")
        for i, frame in enumerate(batches(source)):  # as the copy was cut
            if i >= done:
                yield frame

    def frame(self) -> pd.DataFrame:
        frames = list(self.raw_batches())
        return frames[0] if len(frames) == 1 else pd.concat(frames)


def is_text(frame: Any) -> bool:
    """Whether reading ``frame`` parses text: dask's CSV and JSON readers, or the compressed
    CSV and JSON-lines files oocml opens itself."""
    return reads_text(frame) or file_parts(frame) is not None


def open_parsed_copy(plan: Any, frame: Any, on_cluster: bool) -> ParsedCopy | None:
    """The parsed copy this fit keeps, or None: for text sources read on this machine,
    unless the cache is off (``CACHE OFF`` / ``cache=False``)."""
    if plan.stream.cache is False or on_cluster or not is_text(frame):
        return None
    wanted = plan.stream.cache
    return ParsedCopy(wanted if isinstance(wanted, str) else None)
