"""Result folders written to any filesystem, so that nothing half-written ever looks complete
and nothing a killed write left outlives the next write.

Object stores have no atomic rename, so a folder is committed by a manifest written last,
as Spark's ``_SUCCESS`` and the logs of Delta Lake and Iceberg do. A write, of run ``<run>``:

0. recovers from an interrupted write (below);
1. stages the parts as ``<folder>/_oocml_staging/<run>/<name>.staged``, which every dataset
   reader skips (pyarrow and Spark skip the leading ``_``, dask reads only the parquet extensions);
2. writes the intent record ``<folder>/_oocml_staging/<run>.json`` in one atomic step: the
   parts' final names (``files``) and the files of the previous manifest that this write
   replaces (``supersedes``);
3. moves the parts to ``<folder>/part-<run>-<i>.parquet``, names no earlier write used;
4. writes the manifest :data:`MANIFEST` in one atomic step (rename, or one PUT): the commit;
5. deletes the superseded files, then the staged folder, and the intent record last.

Recovery (step 0 of the next write, with or without OVERWRITE) deletes every file that an intent
record names, as a new part or a superseded one, and the folder's manifest does not name, then
the whole staging area. A write killed
- in step 1 or 2 leaves the previous output whole, and staged files under ``_oocml_staging``;
- in step 3 leaves the previous output, and some new parts that only the intent record names;
- after step 4 leaves the new output, and superseded files that only the intent record names.
oocml reads a folder as its manifest says, so it sees one whole write at every point; a reader
that lists files (pyarrow, Spark, DuckDB) also sees those leftovers until the next write
removes them. Recovery killed in turn is done again by the write after. A file that
neither a manifest nor an intent record names was not written by oocml and is never deleted.
Two writes into one folder at the same time are not supported (each recovers the other's).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import dask.dataframe as dd
import pandas as pd

from ..errors import SourceError
from ..execution import data_pass
from ..redaction import redact_url
from .storage import filesystem, is_url, translated, write_bytes

log = logging.getLogger("oocml")

MANIFEST = "_oocml_written.json"
STAGING = "_oocml_staging"
STAGED = ".staged"


def manifest_files(fs: Any, folder: str) -> list[str] | None:
    """The files of the last complete write into ``folder``, or None if oocml never wrote it."""
    folder = folder.rstrip("/")
    try:
        record = json.loads(fs.cat_file(f"{folder}/{MANIFEST}"))
        return [f"{folder}/{name}" for name in record["files"]]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise SourceError(f"{folder}/{MANIFEST} is not an oocml manifest; remove it or the "
                          "folder's other files") from None


def write_parquet(frame: dd.DataFrame | pd.DataFrame, folder: str, overwrite: bool = False,
                  storage_options: Mapping[str, Any] | None = None) -> str:
    """Write ``frame`` as parquet files (one per partition, in parallel) into ``folder``,
    committed by the manifest (see the module's protocol); returns ``folder``."""
    folder = str(folder).rstrip("/")
    fs, root = filesystem(folder, storage_options)
    with translated(folder, "write to"):
        fs.invalidate_cache(f"{root}/{STAGING}")  # another process may have written since
        previous = [_name(p) for p in check_writable(fs, root, folder, overwrite)]
        _remove_interrupted(fs, root, previous)
        run = uuid.uuid4().hex[:12]
        names = _write_parts(frame, fs, f"{root}/{STAGING}/{run}", folder, run, storage_options)
        _step("staged")
        superseded = [name for name in previous if name not in names]
        write_bytes(f"{folder}/{STAGING}/{run}.json",
                    json.dumps({"files": names, "supersedes": superseded}).encode(), storage_options)
        _step("recorded")
        for name in names:
            fs.mv(f"{root}/{STAGING}/{run}/{name}{STAGED}", f"{root}/{name}")
            _step("moved")
        fs.invalidate_cache(root)
        write_bytes(f"{folder}/{MANIFEST}", json.dumps({"files": names, "run": run}).encode(),
                    storage_options)
        _step("committed")
        for name in superseded:
            _delete(fs, f"{root}/{name}")
            _step("deleted")
        _remove_staging(fs, root, run)
    return folder


def _step(done: str) -> None:
    """Marks the end of a step of the protocol (``recovered`` a file, ``staged``, ``recorded``,
    ``moved`` a part, ``committed``, ``deleted`` a file, ``unstaged``) and does nothing: tests
    replace it to kill the process there (tests/test_commit.py)."""


def check_writable(fs: Any, root: str, folder: str, overwrite: bool) -> list[str]:
    """Refuse a destination that holds files unless ``overwrite``; return the files of the
    previous oocml write there (the only ones an overwrite deletes)."""
    if fs.isfile(root):
        raise SourceError(f"{redact_url(folder)!r} exists and is not a folder")
    if not fs.isdir(root):
        return []
    held = [p for p in fs.ls(root, detail=False) if not p.rstrip("/").endswith(STAGING)]
    if held and not overwrite:
        raise SourceError(f"{redact_url(folder)!r} already holds files; choose an empty folder "
                          "or add OVERWRITE (overwrite=True), which replaces only files oocml wrote")
    return manifest_files(fs, root) or []


def _write_parts(frame: Any, fs: Any, staging: str, folder: str, run: str,
                 options: Mapping[str, Any] | None) -> list[str]:
    """Write the parts into ``staging`` (each name + :data:`STAGED`); their final names, in order."""
    if isinstance(frame, pd.DataFrame):
        name = f"part-{run}-00000.parquet"
        fs.makedirs(staging, exist_ok=True)
        with fs.open(f"{staging}/{name}{STAGED}", "wb") as out:
            frame.to_parquet(out)
        return [name]
    target = f"{folder}/{STAGING}/{run}" if is_url(folder) else staging
    with data_pass():
        frame.to_parquet(target, write_index=True, write_metadata_file=False,
                         storage_options=dict(options or {}) or None,
                         name_function=lambda i: f"part-{run}-{i:05d}.parquet{STAGED}")
    fs.invalidate_cache(staging)
    return sorted(p.rsplit("/", 1)[-1][:-len(STAGED)] for p in fs.ls(staging, detail=False)
                  if p.endswith(STAGED))


def _remove_interrupted(fs: Any, root: str, committed: list[str]) -> None:
    """Step 0: delete every file an intent record names (a new part or a superseded one) that the
    manifest's ``committed`` files do not, then the staging area with its records."""
    area = f"{root}/{STAGING}"
    if not fs.isdir(area):
        return
    keep = set(committed)
    for record in fs.glob(f"{area}/*.json"):
        for name in _intended(fs, record):
            if name not in keep and fs.exists(f"{root}/{name}"):
                log.info("removing %s/%s, left by an interrupted write", root, name)
                _delete(fs, f"{root}/{name}")
                _step("recovered")
    fs.rm(area, recursive=True)
    fs.invalidate_cache(root)


def _intended(fs: Any, record: str) -> list[str]:
    """The files an intent record names: new parts and superseded files, names in the folder
    itself. A record that cannot be read names nothing: it was cut short while being written
    (by an older oocml, which wrote it in place), before anything was moved."""
    try:
        content = json.loads(fs.cat_file(record))
        names = [*content.get("files", []), *content.get("supersedes", [])]
    except (ValueError, AttributeError, TypeError, FileNotFoundError):
        log.warning("ignoring %s: not a whole oocml intent record", record)
        return []
    return [n for n in names if isinstance(n, str) and n and "/" not in n
            and not n.startswith(("_", "."))]


def _remove_staging(fs: Any, root: str, run: str) -> None:
    """Step 5's end: the staged folder (empty by now), then the intent record, then the staging
    area if no other record is left in it."""
    area = f"{root}/{STAGING}"
    if fs.exists(f"{area}/{run}"):
        fs.rm(f"{area}/{run}", recursive=True)
    _step("unstaged")
    _delete(fs, f"{area}/{run}.json")
    fs.invalidate_cache(area)
    if fs.isdir(area) and not fs.ls(area, detail=False):
        with contextlib.suppress(OSError):  # object stores have no empty folders to remove
            fs.rmdir(area)
    fs.invalidate_cache(root)


def _delete(fs: Any, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):  # gone already: deleted before a kill
        fs.rm_file(path)


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]
