"""What a fit did, as one frozen record: the engine writes it, the Model keeps it (and its model
file), DESCRIBE, SHOW MODELS and the REPL show it.

It replaces the dict of string keys that the engine, ONNX export, DESCRIBE, the catalog and the
REPL each read and wrote their own way: a field that is not here cannot be read or written.
``history`` and ``search`` stay rows of records (one per epoch, one per TUNE candidate), as
the tables built from them (``history_``, ``search_results_``) are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class FitReport:
    """Rows, passes and seconds of a fit, its scores per epoch, and what a holdout or a search
    chose. The fields after ``history`` are None where the fit had no holdout or no search."""

    rows: int  # training rows the statistics pass counted (after WHERE, less any holdout)
    partitions: int
    rows_seen: int  # rows partial_fit saw, over every epoch
    epochs: int  # epochs run (fewer than planned after an early stop)
    blocks_seen: int
    strategy: str = "sequential"
    workers: int = 1
    passes: int = 0  # reads of the source (a text source parsed once: 1)
    parsed_once: bool = False
    cached_epochs: int = 0  # epochs (boosted trees: matrix passes) read from the block cache
    stats_seconds: float = 0.0
    train_seconds: float = 0.0
    history: tuple[dict, ...] = ()  # per epoch: epoch, rows, scores, seconds
    holdout: float | None = None
    best_epoch: int | None = None
    holdout_score: float | None = None
    stopped_early: bool | None = None
    best_candidate: int | None = None  # TUNE: the winner's index among the candidates
    best_params: dict | None = None
    search: tuple[dict, ...] | None = None  # TUNE: one record per candidate

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-friendly values (for model files), fields that are None left out."""
        data = {k: v for k, v in asdict(self).items() if v is not None}
        data["history"] = list(self.history)
        if self.search is not None:
            data["search"] = list(self.search)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitReport:
        """The report :meth:`as_dict` wrote, or the ``info`` dict of a model file written by
        oocml 0.1 (what it held beyond these fields, such as ``onnx_opset``, is left out)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["history"] = tuple(values.get("history") or ())
        if values.get("search") is not None:
            values["search"] = tuple(values["search"])
        defaults = {"rows": 0, "partitions": 0, "rows_seen": 0, "epochs": 0, "blocks_seen": 0}
        return cls(**{**defaults, **values})


@dataclass(frozen=True)
class FileRead:
    """One file a fit read: its URL or absolute path, its identity (size, and ETag on an object
    store or mtime on a disk), and the rows it gave (after WHERE and any holdout; None where
    a partition spanned several files)."""

    path: str
    size: int | None
    etag: str | None
    mtime: float | None
    rows: int | None = None

    def same_file(self, other: FileRead) -> bool:
        """Whether ``other`` is this file unchanged: the same size, and the same ETag where both
        have one, else the same mtime."""
        if self.size != other.size:
            return False
        if self.etag is not None and other.etag is not None:
            return self.etag == other.etag
        return self.mtime == other.mtime


@dataclass(frozen=True)
class LineageStep:
    """One fit of a model's lineage: a TRAIN (``kind`` "train") or an UPDATE ("update"), what it
    read, and how it scored: a TRAIN's holdout score, an UPDATE's test-then-train score (each
    new row predicted before the model trained on it)."""

    kind: str
    at: str  # when the fit ended, ISO 8601 in UTC
    source: str | None  # as the statement wrote it (secrets masked); None: a DataFrame
    where: str | None
    files: tuple[FileRead, ...] | None  # None: the partitions were not read from files
    rows: int  # rows trained on in an epoch
    epochs: int
    score: float | None = None
    score_kind: str | None = None  # "holdout" | "progressive"
    table_version: int | None = None  # the Delta table version read, where the source is one

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # its files too, each a dict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LineageStep:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        files = values.get("files")
        values["files"] = None if files is None else tuple(FileRead(**f) for f in files)
        return cls(**values)
