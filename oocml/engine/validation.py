"""Validation while training: a stable holdout split, a holdout score per epoch with early
stopping, and progressive validation (each block scored just before the model trains on it).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ..errors import DataError
from ..evaluation.metrics import add_all, block_totals, score_from_totals, sum_totals
from ..io.partitions import batches

HASH_KEY = "oocml-holdout-v1"  # pandas wants exactly 16 characters
_UNIT = float(2**53)


def holdout_mask(frame: pd.DataFrame, fraction: float) -> np.ndarray:
    """True for the rows held out, chosen by a hash of each row's values.

    The split depends on nothing but the row itself: the same in every epoch and
    every run, whatever the files' order, partitioning or block size.
    """
    if len(frame) == 0:
        return np.zeros(0, dtype=bool)
    hashes = pd.util.hash_pandas_object(frame, index=False, hash_key=HASH_KEY).to_numpy()
    return (hashes >> np.uint64(11)).astype(np.float64) < fraction * _UNIT


def training_rows(frame: pd.DataFrame, fraction: float | None, heldout: bool = False) -> pd.DataFrame:
    """The rows of ``frame`` that are not held out (all of them when ``fraction`` is None), or
    with ``heldout`` those that are."""
    if fraction is None:
        return frame.iloc[:0] if heldout else frame
    held = holdout_mask(frame, fraction)
    return frame[held if heldout else ~held]


def _holdout_totals(part: Any, fraction: float, pipeline: Pipeline, features: list,
                    target: str | None, task: str, classes: list | None) -> dict:
    """The holdout rows' totals: what the holdout score (accuracy, R^2) needs, no more."""
    return add_all([block_totals(frame[holdout_mask(frame, fraction)], pipeline, features,
                                 target, task, classes, scores=False) for frame in batches(part)])


@dataclass
class HoldoutMonitor:
    """Scores the model on the held-out rows after each epoch; keeps the best; says when to stop.

    Scoring reads the data once more per epoch, in parallel on every core (or
    worker), with a frozen copy of the model so training can never race it.
    """

    parts: list[Any]
    prep: Pipeline
    features: list[str]
    target: str | None
    task: str
    classes: list | None
    fraction: float
    patience: int | None = None
    progress: bool = False
    best_score: float = -math.inf
    best_epoch: int = 0
    best_estimator: Any = None
    stopped_early: bool = False
    waited: int = field(default=0, repr=False)

    def __call__(self, epoch: int, estimator: Any, entry: dict) -> bool:
        """Score after ``epoch`` (1-based), note it in ``entry``; True when training should stop."""
        frozen = copy.deepcopy(estimator)
        pipeline = Pipeline([*self.prep.steps, ("model", frozen)])
        totals = sum_totals([dask.delayed(_holdout_totals)(p, self.fraction, pipeline,
                                                           self.features, self.target, self.task,
                                                           self.classes)
                             for p in self.parts],
                            progress="holdout" if self.progress else False)
        if totals["n"] == 0:
            raise DataError(f"HOLDOUT {self.fraction} leaves no rows to validate on; "
                            "hold out a larger fraction")
        score = score_from_totals(totals, self.task, self.classes)
        entry["holdout_rows"] = int(totals["n"])
        entry["holdout_score"] = round(score, 6)
        if score > self.best_score:
            self.best_score, self.best_epoch, self.best_estimator = score, epoch, frozen
            self.waited = 0
        else:
            self.waited += 1
        self.stopped_early = self.patience is not None and self.waited >= self.patience
        return self.stopped_early


@dataclass
class ProgressiveScore:
    """Progressive validation: each block is predicted before ``partial_fit`` sees it.

    Every row is scored by a model that has not trained on it yet, so the running
    score estimates generalisation with no extra read of the data.
    """

    task: str
    n: int = 0
    correct: int = 0
    sum_y: float = 0.0
    sum_y2: float = 0.0
    sse: float = 0.0

    def add(self, estimator: Any, X: Any, y: np.ndarray) -> None:
        predicted = estimator.predict(X)
        self.n += len(y)
        if self.task == "classification":
            self.correct += int(np.count_nonzero(predicted == y))
        else:
            y = np.asarray(y, dtype=np.float64)
            self.sum_y += float(y.sum())
            self.sum_y2 += float((y * y).sum())
            self.sse += float(((y - predicted) ** 2).sum())

    def score(self) -> float | None:
        """Accuracy or R^2 of the rows scored so far (None before any)."""
        if self.n == 0:
            return None
        if self.task == "classification":
            return self.correct / self.n
        total = self.sum_y2 - self.sum_y ** 2 / self.n
        return 1.0 - self.sse / total if total > 0 else None
