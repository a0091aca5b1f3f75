"""Result folders written to any filesystem, so that nothing half-written ever looks complete.

Object stores have no atomic rename, so a folder is committed by a manifest written last,
as Spark's ``_SUCCESS`` and the logs of Delta Lake and Iceberg do:

1. the parts are written as ``<folder>/_oocml_staging/<run>/<name>.staged``, which every
   dataset reader skips (pyarrow and Spark skip the leading ``_``, dask reads only the parquet
   extensions), beside an intent record ``<run>.json`` naming their final names;
2. they move to ``<folder>/part-<run>-<i>.parquet``, names no earlier write used;
3. the manifest :data:`MANIFEST` is written in one atomic step (rename, or one PUT): the commit;
4. the previous write's files and the staging folder are deleted.

A write killed before step 3 leaves the previous output and its manifest whole, and oocml
reads a folder as its manifest says. The next write deletes what an interrupted one left,
as its intent record names it; a file that neither a manifest nor an intent record names
was not written by oocml and is never deleted, with or without OVERWRITE.
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

from .errors import SourceError
from .execution import data_pass
from .storage import filesystem, is_url, redact_url, translated, write_bytes

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
        previous = check_writable(fs, root, folder, overwrite)
        _remove_interrupted(fs, root, previous)
        run = uuid.uuid4().hex[:12]
        staging = f"{root}/{STAGING}/{run}"
        names = _write_parts(frame, fs, staging, folder, run, storage_options)
        fs.pipe_file(f"{root}/{STAGING}/{run}.json", json.dumps({"files": names}).encode())
        for name in names:
            fs.mv(f"{staging}/{name}{STAGED}", f"{root}/{name}")
        fs.invalidate_cache(root)
        write_bytes(f"{folder}/{MANIFEST}", json.dumps({"files": names, "run": run}).encode(),
                    storage_options)
        for path in previous:
            if path.rsplit("/", 1)[-1] not in names and fs.exists(path):
                fs.rm_file(path)
        _remove_staging(fs, root, run)
    return folder


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
    """Delete what interrupted writes published (as their intent records name it, unless the
    manifest's ``committed`` files do) and staged."""
    area = f"{root}/{STAGING}"
    if not fs.isdir(area):
        return
    committed = {p.rsplit("/", 1)[-1] for p in committed}
    for record in fs.glob(f"{area}/*.json"):
        names = json.loads(fs.cat_file(record)).get("files", [])
        for name in names:
            if name not in committed and fs.exists(f"{root}/{name}"):
                log.info("removing %s/%s, left by an interrupted write", root, name)
                fs.rm_file(f"{root}/{name}")
    fs.rm(area, recursive=True)
    fs.invalidate_cache(root)


def _remove_staging(fs: Any, root: str, run: str) -> None:
    area = f"{root}/{STAGING}"
    for path in (f"{area}/{run}", f"{area}/{run}.json"):
        if fs.exists(path):
            fs.rm(path, recursive=True)
    if fs.isdir(area) and not fs.ls(area, detail=False):
        with contextlib.suppress(OSError):  # object stores have no empty folders to remove
            fs.rmdir(area)
    fs.invalidate_cache(root)
