"""Which files a fit read: each file's identity (size, ETag or mtime) and the rows it gave.

A model keeps this for every fit and update (its lineage), so that ``UPDATE ... NEW`` can
train on the files it has not seen, and refuse a file it has seen whose contents changed.
A file is named by its URL (``s3://bucket/key``) or, on this machine, its absolute path; it
is the same file while its size and its ETag (object stores) or mtime (local disks) are.
Partitions that are not read from files (a pandas or computed dask frame) have no lineage.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import SourceError
from ..report import FileRead
from .parquet import is_local
from .partitions import ParquetPart, TextPart


def file_name(fs: Any, path: str) -> str:
    """How lineage names a file: its URL, or its absolute path on this machine."""
    if fs is None or is_local(fs):
        return os.path.abspath(path.removeprefix("file://"))
    return fs.unstrip_protocol(path)


def identify(fs: Any, path: str, rows: int | None = None) -> FileRead:
    """A file's identity, from the filesystem's listing details (one request on a store)."""
    if fs is None:
        from fsspec.implementations.local import LocalFileSystem

        fs = LocalFileSystem()
    info = fs.info(path)
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
    if mtime is not None and not isinstance(mtime, int | float):
        mtime = _timestamp(mtime)
    return FileRead(file_name(fs, path), info.get("size"),
                    None if etag is None else str(etag).strip('"'), mtime, rows)


def _timestamp(when: Any) -> float | None:
    import pandas as pd

    try:
        return pd.Timestamp(when).timestamp()
    except (TypeError, ValueError):
        return None


def part_files(part: Any) -> tuple[Any, list[str]] | None:
    """(filesystem, paths) a partition reads, or None for one that is not read from files."""
    if isinstance(part, ParquetPart):
        return part.fs, list(dict.fromkeys(path for path, _, _ in part.pieces))
    if isinstance(part, TextPart):
        return part.fs, [part.path]
    return None


def files_read(parts: Sequence[Any], rows: Sequence[int]) -> tuple[FileRead, ...] | None:
    """The files ``parts`` read, in order, each with the rows its partitions gave (``rows``:
    per partition); None when any partition is not read from files."""
    found: dict[str, list] = {}  # name -> [filesystem, path, rows or None]
    for part, n in zip(parts, rows, strict=True):
        located = part_files(part)
        if located is None:
            return None
        fs, paths = located
        for path in paths:
            entry = found.setdefault(file_name(fs, path), [fs, path, 0])
            entry[2] = None if len(paths) > 1 or entry[2] is None else entry[2] + n
    return tuple(identify(fs, path, n) for fs, path, n in found.values())


def seen_files(lineage: Iterable[Any]) -> list[FileRead]:
    """Every file a model's lineage (its :class:`~oocml.report.LineageStep` s) holds."""
    return [file for step in lineage for file in step.files or ()]


def fresh_files(candidates: Iterable[FileRead], seen: Iterable[FileRead],
                include_changed: bool = False) -> set[str]:
    """The names among ``candidates`` that the lineage ``seen`` does not hold unchanged. A seen
    file whose size or ETag/mtime changed is refused by name, unless ``include_changed``
    (then it is fresh: trained on again)."""
    known = {f.path: f for f in seen}
    fresh, changed = set(), []
    for file in candidates:
        before = known.get(file.path)
        if before is None or not before.same_file(file):
            fresh.add(file.path)
            if before is not None:
                changed.append(file.path)
    if changed and not include_changed:
        shown = ", ".join(repr(p) for p in changed[:5]) + (" ..." if len(changed) > 5 else "")
        raise SourceError(f"{len(changed)} file(s) the model was trained on changed since: "
                          f"{shown}; UPDATE ... NEW INCLUDING CHANGED (include_changed=True) "
                          "trains on them again, or restore them")
    return fresh


def unseen_parts(parts: Sequence[Any], seen: Iterable[FileRead],
                 include_changed: bool = False) -> list[int]:
    """The indices of ``parts`` that read a file the lineage ``seen`` does not hold unchanged
    (see :func:`fresh_files`)."""
    located = [part_files(part) for part in parts]
    if any(where is None for where in located):
        raise SourceError("NEW needs data read from files: this DataFrame's partitions are not "
                          "(open it with dd.read_parquet, or name the files in UPDATE ... ON)")
    names = [[file_name(fs, path) for path in paths] for fs, paths in located]
    candidates = {name: identify(fs, path) for (fs, paths), row in zip(located, names)
                  for path, name in zip(paths, row)}
    fresh = fresh_files(candidates.values(), seen, include_changed)
    return [i for i, row in enumerate(names) if fresh & set(row)]
