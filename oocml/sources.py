"""Open data sources as dask DataFrames, and write results to parquet without losing anything.

Sources are a glob, folder or fsspec URL of parquet or csv files, or a table
registered by name. Writing goes to a temporary sibling folder first, so an
interrupted write leaves the destination as it was.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd

from .errors import SourceError, did_you_mean, listing
from .execution import data_pass
from .plan import Source

FORMATS = {".parquet": "parquet", ".parq": "parquet", ".pq": "parquet", ".csv": "csv"}
MARKER = "_oocml_written.json"


def _is_url(path: str) -> bool:
    return "://" in path


def local_files(path: str) -> list[str]:
    """The data files a local glob or folder names (hidden and marker files left out)."""
    if os.path.isdir(path):
        found = [str(p) for p in sorted(Path(path).rglob("*")) if p.is_file()]
    else:
        found = sorted(glob.glob(path, recursive=True))
    return [f for f in found if not Path(f).name.startswith((".", "_"))]


def detect_format(source: Source, files: list[str]) -> str:
    """``FORMAT`` if given, else from the files' extension."""
    if source.format:
        fmt = source.format.lower()
        if fmt not in ("parquet", "csv"):
            raise SourceError(f"unknown format {source.format!r}; choose parquet or csv")
        return fmt
    kinds = {FORMATS.get(Path(f).suffix.lower()) for f in files} - {None}
    if len(kinds) == 1:
        return kinds.pop()
    if not kinds:
        return "parquet"
    raise SourceError(f"{source.path!r} mixes parquet and csv files; name one with a narrower "
                      "glob or add FORMAT parquet|csv")


def open_source(source: Source, tables: Mapping[str, Any] | None = None,
                filters: list | None = None) -> dd.DataFrame:
    """A lazy dask DataFrame over ``source``; nothing but metadata is read.

    ``filters`` (pyarrow DNF) let parquet skip row groups; callers still filter rows.
    """
    tables = tables or {}
    if source.table is not None:
        if source.table not in tables:
            raise SourceError(f"no table named {source.table!r}{did_you_mean(source.table, tables)}; "
                              f"registered tables: {listing(tables) or '(none)'}")
        table = tables[source.table]
        return table if isinstance(table, dd.DataFrame) else dd.from_pandas(table, chunksize=100_000)
    path = str(source.path)
    files = [] if _is_url(path) else local_files(path)
    if not _is_url(path) and not files:
        raise SourceError(f"no data files match {path!r} (as a glob or folder, from "
                          f"{os.getcwd()!r})")
    fmt = detect_format(source, files)
    target = files if files else path
    try:
        if fmt == "csv":
            return dd.read_csv(target, blocksize="64MB")
        return dd.read_parquet(target, filters=filters)
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot open {path!r} as {fmt}: {exc}") from None


def check_writable(folder: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse a destination that holds files unless ``overwrite``: nothing is lost by accident."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SourceError(f"{str(folder)!r} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise SourceError(f"{str(folder)!r} already holds files; choose an empty folder or add "
                          "OVERWRITE (overwrite=True), which replaces only files oocml wrote")
    return folder


def write_parquet(frame: dd.DataFrame | pd.DataFrame, folder: str | os.PathLike,
                  overwrite: bool = False) -> str:
    """Write ``frame`` as parquet files (one per partition, in parallel) into ``folder``, atomically.

    The files are written to a temporary sibling folder and moved in only when
    all of them are complete. With ``overwrite``, files a previous oocml write
    left there are replaced; files oocml did not write are never deleted.
    """
    folder = check_writable(folder, overwrite)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        if isinstance(frame, pd.DataFrame):
            frame.to_parquet(staging / "part.0.parquet")
        else:
            with data_pass():
                frame.to_parquet(str(staging), write_index=True, write_metadata_file=False)
        written = sorted(p.name for p in staging.iterdir())
        if not folder.exists():
            (staging / MARKER).write_text(json.dumps({"files": written}))
            os.replace(staging, folder)
            return str(folder)
        previous = _previously_written(folder)
        for name in previous - set(written):
            (folder / name).unlink(missing_ok=True)
        for name in written:
            os.replace(staging / name, folder / name)
        (folder / MARKER).write_text(json.dumps({"files": written}))
        return str(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _previously_written(folder: Path) -> set[str]:
    try:
        return set(json.loads((folder / MARKER).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()
