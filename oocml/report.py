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
