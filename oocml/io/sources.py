"""Open data sources as dask DataFrames: local paths and any fsspec URL, in three formats.

A source is a glob, folder, file or URL of parquet, CSV or newline-delimited JSON files
(CSV and JSON plain or compressed: ``.gz``, ``.bz2``, ``.zst``, ``.xz``), or a table
registered by name. Rules:
- Names starting with ``.`` or ``_`` are skipped at any depth below the folder (markers,
  staging folders, ``_SUCCESS``), as dask, pyarrow and Spark skip them.
- A folder oocml wrote (it holds :data:`outputs.MANIFEST`) is read as its manifest says:
  the files of the last complete write, never the parts of an interrupted one.
- Hive-style folders (``region=asia/``) give their partition columns, as dask reads them.
- Compressed text cannot be split, so each such file is one partition read a batch at a time
  (:class:`~oocml.io.partitions.TextPart`): memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

import dask.dataframe as dd
import pandas as pd

from ..errors import OocmlError, ParameterError, SourceError, did_you_mean, listing
from ..plan import Source
from ..redaction import redact_url
from .conditions import columns_of, from_filters, parquet_filters, text_compared
from .lineage import file_name
from .outputs import manifest_files
from .partitions import TextPart, whole_partition
from .storage import filesystem, is_url, translated

FORMATS = {".parquet": "parquet", ".parq": "parquet", ".pq": "parquet", ".csv": "csv",
           ".jsonl": "json", ".ndjson": "json"}  # a .json file may be one document: FORMAT json
COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd",
                ".xz": "xz"}
CSV_BLOCKSIZE = "64MB"  # uncompressed text is split into partitions of this many bytes
_GLOB = set("*?[")


def split_name(name: str) -> tuple[str | None, str | None]:
    """(format, compression) that a file name's extensions say, e.g. ``a.csv.gz`` -> (csv, gzip)."""
    base = name.rsplit("/", 1)[-1].lower()
    stem, dot, last = base.rpartition(".")
    compression = COMPRESSIONS.get(f".{last}") if dot else None
    if compression is not None:
        base = stem
    _, dot, ext = base.rpartition(".")
    return (FORMATS.get(f".{ext}") if dot else None), compression


def _hidden(relative: str) -> bool:
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


@dataclass(frozen=True)
class Listing:
    """The data files a source names, their filesystem, and the folder they were found in
    (``hive``: below ``name=value`` folders, which dask must see as a folder)."""

    fs: Any
    root: str
    files: list[str]
    hive: bool = False


def list_files(path: str, options: Mapping[str, Any] | None = None) -> Listing:
    """The data files that a glob, folder, file or URL names, sorted."""
    fs, inner = filesystem(path, options)
    with translated(path, "list"):
        fs.invalidate_cache()  # another process or client may have written since the last look
        if _GLOB & set(inner):
            found = [f for f in fs.glob(inner) if fs.isfile(f)]
            root = inner[:min(inner.index(c) for c in _GLOB & set(inner))].rsplit("/", 1)[0]
        elif fs.isdir(inner):
            listed = manifest_files(fs, inner)
            if listed is not None:
                return Listing(fs, inner, listed)
            found, root = fs.find(inner), inner
        elif fs.isfile(inner):
            return Listing(fs, inner, [inner])
        else:
            found, root = [], inner
    root = root.rstrip("/")
    relative = {f: f[len(root):] if f.startswith(root) else f for f in found}
    files = sorted(f for f, below in relative.items() if not _hidden(below))
    hive = root == inner.rstrip("/") and any(
        "=" in part for f in files for part in relative[f].split("/")[:-1])
    return Listing(fs, root, files, hive)


def source_files(source: Source, options: Mapping[str, Any] | None = None) -> Listing:
    """The data files a path source names: those a glob, folder or file lists, or those of the
    Delta table's version."""
    if source.format == "delta":
        from .delta import snapshot

        snap = snapshot(str(source.path), source.version, options)
        return Listing(snap.fs, snap.root, snap.files, bool(snap.partition_columns))
    return list_files(str(source.path), options)


def delta_version(source: Source, options: Mapping[str, Any] | None = None) -> Source:
    """A Delta source pinned to its version (the latest, read now, when it names none), so that
    every read of a statement, and the model's lineage, see that one version."""
    if source.format != "delta" or source.version is not None:
        return source
    from .delta import latest_version

    return replace(source, version=latest_version(str(source.path), source.options_over(options)))


def detect_format(source: Source, files: list[str]) -> str:
    """``FORMAT`` if given, else from the files' extensions (parquet when they say nothing)."""
    if source.format:
        fmt = source.format.lower()
        if fmt == "delta":  # a Delta table's files are parquet
            return "parquet"
        if fmt not in ("parquet", "csv", "json"):
            raise SourceError(f"unknown format {source.format!r}; choose parquet, csv or json")
        return fmt
    kinds = {split_name(f)[0] for f in files}
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is not None:
            return kind
    known = kinds - {None}
    if len(known) > 1:
        raise SourceError(f"{source.path!r} mixes {' and '.join(sorted(known))} files; name one "
                          "with a narrower glob or add FORMAT parquet|csv|json")
    unknown = [f for f in files if split_name(f)[0] is None]
    if known or any("." in f.rsplit("/", 1)[-1] for f in unknown):
        raise SourceError(f"{unknown[0]!r} has an unknown or unsupported format; oocml reads "
                          "parquet, csv and json lines (compressed .gz/.bz2/.zst/.xz too): "
                          "add FORMAT parquet|csv|json or leave the file out")
    return "parquet"


def open_source(source: Source, tables: Mapping[str, Any] | None = None,
                filters: list | None = None,
                storage_options: Mapping[str, Any] | None = None,
                only: Collection[str] | None = None) -> dd.DataFrame:
    """A lazy dask DataFrame over ``source``; nothing but metadata is read.

    ``filters`` (pyarrow DNF) let parquet skip partition folders and row groups; callers
    still filter rows. ``storage_options`` (overridden by the source's own OPTIONS) reach
    the filesystem of a URL. ``only``: the files to read, as lineage names them (see
    :func:`~oocml.io.lineage.file_name`); the others are never opened.
    """
    if source.table is not None:
        tables = tables or {}
        if source.table not in tables:
            raise SourceError(f"no table named {source.table!r}{did_you_mean(source.table, tables)}; "
                              f"registered tables: {listing(tables) or '(none)'}")
        table = tables[source.table]
        return table if isinstance(table, dd.DataFrame) else dd.from_pandas(table, chunksize=100_000)
    path = str(source.path)
    options = source.options_over(storage_options)
    found = source_files(source, options)
    if only is not None:
        found = replace(found, files=[f for f in found.files if file_name(found.fs, f) in only])
    fs, files = found.fs, found.files
    if not files:
        where = "" if is_url(path) else f" (as a glob or folder, from {os.getcwd()!r})"
        raise SourceError(f"no data files match {redact_url(path)!r}{where}")
    fmt = detect_format(source, files)
    urls = [fs.unstrip_protocol(f) for f in files] if is_url(path) else files
    try:
        with translated(path, f"open as {fmt}"):
            if fmt == "parquet":  # a hive folder as such, for dask to find its partition columns
                if filters and found.hive:
                    filters = typed_filters(filters, hive_text_columns(found))
                if found.hive and (only is not None or source.format == "delta"):
                    # some files of a hive folder (or a Delta table's), keys kept
                    return dd.read_parquet(urls, filters=filters, storage_options=options or None,
                                           dataset={"partition_base_dir": found.root})
                return dd.read_parquet(path if found.hive else urls, filters=filters,
                                       storage_options=options or None)
            compressions = {split_name(f)[1] for f in files}
            if compressions != {None}:
                return _open_compressed(fs, files, fmt)
            if fmt == "csv":
                return dd.read_csv(urls, blocksize=CSV_BLOCKSIZE, storage_options=options or None)
            return dd.read_json(urls, lines=True, blocksize=2**26, storage_options=options or None)
    except OocmlError:  # already says what is wrong
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise SourceError(f"cannot open {redact_url(path)!r} as {fmt}: {exc}") from None


def read_delta(uri: str | os.PathLike, version: int | None = None,
               storage_options: Mapping[str, Any] | None = None) -> dd.DataFrame:
    """Version ``version`` (None: the latest) of the Delta Lake table at ``uri`` (a folder or
    any fsspec URL) as a lazy dask DataFrame, its partition columns included: the language's
    ``ON delta 'uri' VERSION n``. Needs the ``delta`` extra."""
    return open_source(Source(path=os.fspath(uri), format="delta", version=version),
                       storage_options=storage_options)


def hive_text_columns(found: Listing) -> set[str]:
    """The partition columns of a hive folder whose values are not all whole numbers: pyarrow
    (and so dask) types them as text, and a filter must compare them with text."""
    values: dict[str, set[str]] = {}
    for file in found.files:
        for part in file[len(found.root):].split("/")[:-1]:
            name, equal, value = part.partition("=")
            if equal:
                values.setdefault(name, set()).add(value)
    return {name for name, seen in values.items()
            if not all(v.lstrip("-").isdigit() for v in seen)}


def typed_filters(filters: list, text: set[str]) -> list:
    """pyarrow ``filters`` comparing the ``text`` columns with text (see
    :func:`~oocml.io.conditions.text_compared`)."""
    condition = from_filters(filters)
    if condition is None or not text & set(columns_of(condition)):
        return filters
    return parquet_filters(text_compared(condition, text)) or filters


def _open_compressed(fs: Any, files: list[str], fmt: str) -> dd.DataFrame:
    """Compressed CSV/JSON lines: one :class:`TextPart` partition per file."""
    parts = [TextPart(f, fs, fmt, split_name(f)[1]) for f in files]
    meta = parts[0].sample_meta()
    parts = [replace(p, columns=tuple(meta.columns), meta=meta) for p in parts]
    return dd.from_map(whole_partition, parts, meta=meta, enforce_metadata=False, label=f"read-{fmt}")


def describe_files(source: Source, storage_options: Mapping[str, Any] | None = None) -> str:
    """' (parquet, 20 files, 10,000,000 rows)' from metadata alone ('' for tables)."""
    facts = file_facts(source, storage_options)
    if facts is None:
        return ""
    fmt, files, rows = facts
    return f" ({fmt}, {files} files" + (f", {rows:,} rows)" if rows is not None else ")")


def file_facts(source: Source, storage_options: Mapping[str, Any] | None = None,
               ) -> tuple[str, int, int | None] | None:
    """(format, number of files, rows or None) of a path source, from metadata alone: the
    rows of parquet files from their footers; None for a table or a path that lists nothing."""
    import pyarrow.parquet as pq

    if source.path is None:
        return None
    try:
        found = source_files(source, source.options_over(storage_options))
        fs, files = found.fs, found.files
        fmt = detect_format(source, files)
    except SourceError:
        return None
    try:
        with translated(source.path, "read the metadata of"):
            rows = (sum(pq.ParquetFile(f, filesystem=_arrow_fs(fs)).metadata.num_rows
                        for f in files) if fmt == "parquet" else None)
    except (OSError, ValueError, SourceError):
        rows = None
    return fmt, len(files), rows


def _arrow_fs(fs: Any) -> Any:
    """A pyarrow filesystem over an fsspec one."""
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return PyFileSystem(FSSpecHandler(fs))


DEFAULT_PANDAS_BLOCK_ROWS = 100_000


def as_dask(data: Any, block_rows: int | None = None) -> dd.DataFrame:
    """A dask DataFrame for dask or pandas input (pandas split into blocks of rows)."""
    if isinstance(data, dd.DataFrame):
        return data
    if isinstance(data, pd.DataFrame):
        return dd.from_pandas(data, chunksize=block_rows or DEFAULT_PANDAS_BLOCK_ROWS, sort=False)
    raise ParameterError(f"expected a dask or pandas DataFrame, got {type(data).__name__}")
