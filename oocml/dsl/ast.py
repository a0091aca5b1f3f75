"""The language's syntax tree: one frozen dataclass per statement.

Nodes hold plain values (and the Plan's ``Source`` and condition classes);
``position`` (line, column) is kept for messages and never compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..plan import Condition, Search, Source

Position = tuple[int, int]


def _position() -> Any:
    return field(default=(1, 1), compare=False, repr=False)


@dataclass(frozen=True)
class Encoding:
    """One ENCODE item: a method, the columns it names (none: every categorical column no
    other item names), its number (onehot: categories kept; hash, text: hashed columns) and
    its USING (...) parameters."""

    method: str
    columns: tuple[str, ...] = ()
    size: int | None = None
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Train:
    algorithm: str
    source: Source
    target: str | None = None
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    where: Condition | None = None
    encodings: tuple[Encoding, ...] = ()  # ENCODE onehot | ENCODE text(review), hash(id) n
    impute: str | None = None
    scale: str | None = None
    reduce: str | None = None
    reduce_size: int | None = None  # REDUCE pca n
    params: tuple[tuple[str, Any], ...] = ()
    epochs: int | None = None
    block_rows: int | None = None
    shuffle: bool = False
    shuffle_window: int | None = None  # SHUFFLE WINDOW n: partitions mixed at once
    seed: int | None = None
    holdout: float | None = None
    patience: int | None = None
    parallel: bool = False
    checkpoint: str | None = None
    checkpoint_every: int | None = None
    resume: bool = False
    cache: bool | str | None = None  # CACHE ['folder'] | CACHE OFF; None: the default
    precision: str | None = None  # PRECISION float32
    search: Search | None = None  # TUNE (...) [TRIALS n] [HALVING n]
    name: str | None = None
    replace: bool = False  # TRAIN OR REPLACE: the model may replace one of the same name
    position: Position = _position()


@dataclass(frozen=True)
class Predict:
    model: str
    source: Source
    proba: bool = False
    into: str | None = None
    overwrite: bool = False
    into_options: tuple[tuple[str, Any], ...] = ()  # INTO '...' OPTIONS (...)
    top: int | None = None  # PREDICT EXPLAIN ... [TOP k]: k contributions per row; None: not EXPLAIN
    position: Position = _position()


@dataclass(frozen=True)
class Evaluate:
    model: str
    source: Source
    view: str | None = None  # "confusion" | "curve" | "residuals"; None: the metrics table
    by_class: bool = False
    position: Position = _position()


@dataclass(frozen=True)
class ShowModels:
    position: Position = _position()


@dataclass(frozen=True)
class ShowAlgorithms:
    position: Position = _position()


@dataclass(frozen=True)
class Describe:
    model: str
    position: Position = _position()


@dataclass(frozen=True)
class DescribeData:
    source: Source
    position: Position = _position()


@dataclass(frozen=True)
class ShowWeights:
    model: str
    position: Position = _position()


@dataclass(frozen=True)
class ShowTrials:
    model: str
    position: Position = _position()


@dataclass(frozen=True)
class Update:
    """UPDATE name ON source [NEW [INCLUDING CHANGED]] [WHERE ...] [EPOCHS n] [SHUFFLE ...]."""

    model: str
    source: Source
    new: bool = False
    include_changed: bool = False
    where: Condition | None = None
    epochs: int = 1
    shuffle: bool = False
    shuffle_window: int | None = None
    seed: int | None = None
    position: Position = _position()


@dataclass(frozen=True)
class Validate:
    """VALIDATE name ON source [THRESHOLD x]: skew against the model's training profile."""

    model: str
    source: Source
    threshold: float = 0.3
    position: Position = _position()


@dataclass(frozen=True)
class ValidateDrift:
    """VALIDATE DRIFT source AGAINST reference [THRESHOLD x]."""

    source: Source
    reference: Source
    threshold: float = 0.3
    position: Position = _position()


@dataclass(frozen=True)
class ShowHistory:
    model: str
    position: Position = _position()


@dataclass(frozen=True)
class ShowVersions:
    model: str
    position: Position = _position()


@dataclass(frozen=True)
class RollbackModel:
    model: str
    version: int
    position: Position = _position()


@dataclass(frozen=True)
class DropModel:
    model: str
    position: Position = _position()


@dataclass(frozen=True)
class SaveModel:
    model: str
    path: str
    options: tuple[tuple[str, Any], ...] = ()  # TO '...' OPTIONS (...)
    overwrite: bool = False  # the file may replace an existing one
    position: Position = _position()


@dataclass(frozen=True)
class LoadModel:
    model: str
    path: str
    options: tuple[tuple[str, Any], ...] = ()  # FROM '...' OPTIONS (...)
    replace: bool = False  # LOAD OR REPLACE MODEL
    position: Position = _position()


@dataclass(frozen=True)
class Explain:
    statement: Statement
    position: Position = _position()


Statement = (Train | Update | Validate | ValidateDrift | Predict | Evaluate | ShowModels
             | ShowAlgorithms | ShowWeights | ShowTrials | Describe
             | DescribeData | DropModel | SaveModel | LoadModel | ShowVersions | ShowHistory | RollbackModel
             | Explain)
