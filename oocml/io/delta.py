"""Delta Lake tables as sources: a version's files, read by the direct parquet reader.

``deltalake`` (the ``delta`` extra) reads the table's log: which parquet files make up the
version asked for (the latest by default), and their partition values. The files are then
read as any parquet files are, a batch at a time, so memory stays bounded; the partition
columns come from the files' ``name=value`` folders, which the log's values must match.

Refused by name: a version that does not exist, a version whose files were removed (VACUUM),
and a table whose files carry deletion vectors (the parquet reader would return the rows
they delete).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ..errors import MissingPackageError, SourceError
from ..redaction import redact_url
from .storage import filesystem, is_url, translated


@dataclass(frozen=True)
class DeltaSnapshot:
    """One version of a Delta table: its data files (paths inside ``fs``), sorted, and the
    table's folder and partition columns."""

    version: int
    fs: Any
    root: str
    files: list[str]
    partition_columns: list[str]


def snapshot(uri: str, version: int | None = None,
             options: Mapping[str, Any] | None = None) -> DeltaSnapshot:
    """Version ``version`` (None: the latest) of the Delta table at ``uri``, checked."""
    try:
        import deltalake
    except ImportError:
        raise MissingPackageError('reading Delta tables needs deltalake: pip install '
                                  '"oocml[delta]"') from None
    shown = redact_url(uri)
    try:
        table = deltalake.DeltaTable(uri, version=version,
                                     storage_options=delta_options(uri, options) or None)
    except deltalake.exceptions.TableNotFoundError:
        raise SourceError(f"no Delta table at {shown!r} (its _delta_log folder is missing)") from None
    except Exception as exc:  # noqa: BLE001  (deltalake raises one class for every fault)
        latest = latest_version(uri, options)
        if version is not None and latest is not None and version > latest:
            raise SourceError(f"Delta table {shown!r} has no version {version}: its versions "
                              f"go up to {latest}") from None
        raise SourceError(f"cannot read the Delta table {shown!r}: {exc}") from None
    _refuse_deletion_vectors(table, shown)
    fs, root = filesystem(uri, options)
    root = root.rstrip("/") if is_url(uri) else os.path.abspath(root)  # as fs.find names files
    files = sorted(f"{root}/{unquote(str(path))}"
                   for path in _column(table.get_add_actions(flatten=True), "path"))
    snap = DeltaSnapshot(table.version(), fs, root, files, list(table.metadata().partition_columns))
    _refuse_vacuumed(snap, shown)
    _refuse_unfoldered_partitions(snap, shown)
    return snap


def delta_options(uri: str, options: Mapping[str, Any] | None) -> dict[str, str]:
    """fsspec's storage options for ``uri`` as deltalake's object store names them (its own
    names pass through); an ``http://`` endpoint (a test server) is allowed explicitly."""
    options = dict(options or {})
    if not is_url(uri) or not uri.startswith(("s3://", "s3a://")):
        return {k: str(v) for k, v in options.items() if k.isupper()}
    named = {"key": "AWS_ACCESS_KEY_ID", "secret": "AWS_SECRET_ACCESS_KEY",
             "token": "AWS_SESSION_TOKEN", "endpoint_url": "AWS_ENDPOINT_URL"}
    found = {named[k]: str(v) for k, v in options.items() if k in named and v is not None}
    client = options.get("client_kwargs") or {}
    for key, name in (("endpoint_url", "AWS_ENDPOINT_URL"), ("region_name", "AWS_REGION")):
        if client.get(key):
            found[name] = str(client[key])
    found.update({k: str(v) for k, v in options.items() if k.isupper()})
    endpoint = found.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL", "")
    if endpoint.startswith("http://"):
        found.setdefault("AWS_ENDPOINT_URL", endpoint)
        found.setdefault("AWS_ALLOW_HTTP", "true")
    return found


def latest_version(uri: str, options: Mapping[str, Any] | None = None) -> int | None:
    """The table's latest version, from its log alone; None where it cannot be read (reading
    the table then says why)."""
    try:
        import deltalake

        return deltalake.DeltaTable(uri, storage_options=delta_options(uri, options) or None).version()
    except Exception:  # noqa: BLE001
        return None


def _column(table: Any, name: str) -> list:
    """A column of deltalake's Arrow table (arro3 or pyarrow) as a Python list."""
    import pyarrow as pa

    return pa.table(table).column(name).to_pylist()


def _refuse_deletion_vectors(table: Any, shown: str) -> None:
    """A table whose protocol allows deletion vectors is read only when none is in use: the
    parquet files hold the rows they delete."""
    if "deletionVectors" not in (table.protocol().reader_features or []):
        return
    import pyarrow as pa

    try:
        used = pa.table(table.deletion_vectors()).num_rows
    except Exception as exc:  # noqa: BLE001  (a vector that cannot be read is still one)
        used, why = None, f" (reading them failed: {exc})"
    else:
        why = ""
    if used != 0:
        count = f"on {used} file(s)" if used else "that oocml cannot read" + why
        raise SourceError(f"Delta table {shown!r} has deletion vectors {count}: oocml reads the "
                          "parquet files whole and would train on the rows they delete; rewrite "
                          "them first (OPTIMIZE, or REORG TABLE ... APPLY (PURGE))")


def _refuse_vacuumed(snap: DeltaSnapshot, shown: str) -> None:
    with translated(shown, "list the files of"):
        present = set(snap.fs.find(snap.root))
    missing = [f for f in snap.files if f not in present]
    if missing:
        raise SourceError(f"version {snap.version} of the Delta table {shown!r} lists "
                          f"{len(missing)} file(s) that are gone, e.g. {missing[0]!r}: VACUUM "
                          "removed them; read a later version")


def _refuse_unfoldered_partitions(snap: DeltaSnapshot, shown: str) -> None:
    """The partition columns are read from ``name=value`` folders: every file must be in its."""
    for path in snap.files:
        folders = {part.split("=", 1)[0] for part in path[len(snap.root):].split("/")[:-1]
                   if "=" in part}
        if not set(snap.partition_columns) <= folders:
            raise SourceError(f"a file of the Delta table {shown!r} is not in name=value folders "
                              f"of its partition columns {snap.partition_columns}: {path!r}; "
                              "oocml reads partition values from those folders")


def file_urls(snap: DeltaSnapshot, uri: str) -> list[str]:
    """The snapshot's files as dask opens them: URLs for a remote table, else paths."""
    return [snap.fs.unstrip_protocol(f) for f in snap.files] if is_url(uri) else snap.files
