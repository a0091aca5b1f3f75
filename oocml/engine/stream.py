"""The block-streaming loop: feed blocks to ``partial_fit`` while the next ones load.

Each partition becomes one dask task that reads it, applies the fitted
preprocessing and returns ready numpy blocks. At most ``prefetch`` tasks are in
flight, so memory holds a bounded number of blocks whatever the data's size,
and reading, decoding and scaling overlap with training. Block order and the
row permutation inside a block depend only on the seed, never on the scheduler.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import dask
from dask.delayed import Delayed
import numpy as np
import pandas as pd

from ..errors import DataError, TrainingInterrupted, UnseenLabelError
from ..execution import Submitter
from ..progress import BlockProgress
from .validation import ProgressiveScore, training_rows

log = logging.getLogger("oocml")

Block = tuple[np.ndarray, np.ndarray | None]


@dataclass(frozen=True)
class BlockRecipe:
    """How a partition turns into training blocks (shipped with every load task)."""

    prep: Any  # fitted transformer (e.g. Pipeline slice) applied to the partition, or None
    target: str | None
    labels: np.ndarray | None  # allowed target values, None: unchecked
    block_rows: int | None
    holdout: float | None = None  # fraction of rows held out of training (see validation.py)


def prepare(part: Any, recipe: BlockRecipe, index: int, row_seed: Sequence[int] | None) -> list[Block]:
    """Partition -> list of (X, y) blocks: transformed, optionally permuted, C-ordered if dense."""
    if isinstance(part, tuple):
        X, y = part
        if X.shape[0] == 0:
            return []
        X = recipe.prep.transform(X) if recipe.prep is not None else X
    else:
        part = training_rows(part, recipe.holdout)
        if len(part) == 0:  # an empty file, a WHERE that keeps nothing here, a holdout-only partition
            return []
        y = part[recipe.target].to_numpy() if recipe.target is not None else None
        X = recipe.prep.transform(part) if recipe.prep is not None else part
    if recipe.labels is not None and y is not None:
        unseen = np.setdiff1d(np.unique(y), recipe.labels)
        if unseen.size:
            raise UnseenLabelError(
                f"partition {index} holds target value(s) {unseen.tolist()[:10]} that are not among "
                f"the classes {recipe.labels.tolist()[:20]}; pass classes= with every label, or check "
                "that the data did not change since the statistics pass"
            )
    n = X.shape[0]
    if row_seed is not None and n > 1:
        order = np.random.default_rng(list(row_seed)).permutation(n)
        X, y = take_rows(X, order), take_rows(y, order)
    if isinstance(X, np.ndarray):
        X = np.ascontiguousarray(X)
    step = recipe.block_rows or max(n, 1)
    return [(take_rows(X, slice(i, i + step)), take_rows(y, slice(i, i + step)))
            for i in range(0, n, step)]


def take_rows(data: Any, rows: Any) -> Any:
    """Rows of an array, sparse matrix, pandas object (by position), or None."""
    if data is None:
        return None
    if isinstance(data, pd.DataFrame | pd.Series):
        return data.iloc[rows]
    return data[rows]


def epoch_order(n: int, epoch: int, shuffle: bool, seed: int | None) -> list[int]:
    """Partition order of one epoch: in order, or a permutation seeded by (seed, epoch)."""
    if not shuffle:
        return list(range(n))
    return np.random.default_rng([seed or 0, epoch]).permutation(n).tolist()


def prefetched(submitter: Submitter, tasks: Iterable[Any], depth: int) -> Iterator[Any]:
    """Results of ``tasks`` in order, keeping at most ``depth`` computations in flight."""
    pending: deque = deque()
    tasks = iter(tasks)
    try:
        for task in tasks:
            pending.append(submitter.submit(task))
            if len(pending) >= depth:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(tasks, None)
            if nxt is not None:
                pending.append(submitter.submit(nxt))
            yield result
    finally:
        for future in pending:
            future.cancel()


@dataclass
class TrainingLog:
    """What the loop did: rows and blocks seen, epochs run, seconds spent."""

    rows_seen: int = 0
    blocks_seen: int = 0
    epochs: int = 0
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)


@dataclass
class Position:
    """Where the stream is: the epoch (0-based), how many partitions of its order are done,
    and that epoch's running totals. With the log, what a checkpoint must save."""

    epoch: int = 0
    done: int = 0
    epoch_rows: int = 0
    scored: ProgressiveScore | None = None


def train(
    estimator: Any,
    parts: Sequence[Any],
    recipe: BlockRecipe,
    *,
    epochs: int = 1,
    shuffle: bool = False,
    seed: int | None = 0,
    prefetch: int = 2,
    fit_params: dict[str, Any] | None = None,
    progress: bool = False,
    progressive: str | None = None,
    after_epoch: Callable[[int, Any, dict], bool] | None = None,
    resume: tuple[Position, TrainingLog] | None = None,
    checkpoint: Callable[[Any, Position, TrainingLog], None] | None = None,
    checkpoint_every: int = 1,
) -> TrainingLog:
    """Stream ``parts`` (delayed partitions, or in-memory parts) through ``partial_fit``, ``epochs`` times.

    ``progressive`` (the task: "classification" or "regression") scores each block before
    training on it; ``after_epoch(epoch, estimator, history_entry)`` runs after each epoch
    and returns True to stop early; ``checkpoint(estimator, position, log)`` runs every
    ``checkpoint_every`` partitions, and ``resume`` continues from such a saved state.
    """
    fit_params = fit_params or {}
    position, record = resume if resume is not None else (Position(), TrainingLog())
    if resume is None and progressive:
        position.scored = ProgressiveScore(progressive)
    done_before = position.epoch * len(parts) + position.done
    bar = BlockProgress(len(parts) * epochs - done_before, progress)
    start, seconds_before, trained = time.perf_counter(), record.seconds, 0
    recipe_task = dask.delayed(recipe)
    try:
        with Submitter(prefetch) as submitter:
            for epoch in range(position.epoch, epochs):
                if epoch != position.epoch:
                    position = Position(epoch, scored=ProgressiveScore(progressive) if progressive else None)
                todo = epoch_order(len(parts), epoch, shuffle, seed)[position.done:]
                tasks = (_load_task(parts[i], recipe, recipe_task, i,
                                    (seed or 0, epoch, i) if shuffle else None) for i in todo)
                for index, blocks in zip(todo, prefetched(submitter, tasks, prefetch)):
                    rows = 0
                    for X, y in blocks:
                        trained_before = record.rows_seen + position.epoch_rows + rows > 0
                        if position.scored is not None and trained_before and X.shape[0]:
                            position.scored.add(estimator, X, y)
                        _partial_fit(estimator, X, y, fit_params, index)
                        rows += X.shape[0]
                    record.blocks_seen += len(blocks)
                    position.epoch_rows += rows
                    position.done += 1
                    bar.update(rows, epoch, epochs)
                    trained += 1
                    if checkpoint is not None and trained % checkpoint_every == 0:
                        record.seconds = seconds_before + time.perf_counter() - start
                        checkpoint(estimator, position, record)
                if end_epoch(record, epoch, position.epoch_rows, position.scored, estimator,
                             after_epoch, lambda: seconds_before + time.perf_counter() - start):
                    break
    except KeyboardInterrupt:
        kept = ("; continue from the last checkpoint with RESUME / resume=True"
                if checkpoint is not None else "; the model was not kept")
        raise TrainingInterrupted(f"training interrupted after {record.blocks_seen} blocks{kept}") from None
    finally:
        bar.close()
    record.seconds = seconds_before + time.perf_counter() - start
    return record


def end_epoch(record: TrainingLog, epoch: int, rows: int, scored: ProgressiveScore | None,
              estimator: Any, after_epoch: Callable[[int, Any, dict], bool] | None,
              elapsed: Callable[[], float], **extra: Any) -> bool:
    """Book epoch ``epoch``'s totals and history entry in ``record``, after running
    ``after_epoch`` (holdout score, early stopping); True when it asks to stop."""
    record.rows_seen += rows
    record.epochs = epoch + 1
    entry = {"epoch": epoch + 1, "rows": rows, **extra}
    if scored is not None and scored.score() is not None:
        entry["progressive_score"] = round(scored.score(), 6)
    stop = after_epoch is not None and after_epoch(epoch + 1, estimator, entry)
    entry["seconds"] = round(elapsed(), 6)
    record.history.append(entry)
    log.info("epoch %d: %s", epoch + 1, entry)
    return bool(stop)


def _load_task(part: Any, recipe: BlockRecipe, recipe_task: Any, index: int,
               row_seed: tuple | None) -> Any:
    """A dask task for a lazy partition; a plain callable for one already in memory."""
    if isinstance(part, Delayed):
        return dask.delayed(prepare)(part, recipe_task, index, row_seed)
    return partial(prepare, part, recipe, index, row_seed)


def _partial_fit(estimator: Any, X: np.ndarray, y: np.ndarray | None, fit_params: dict,
                 index: int) -> None:
    if X.shape[0] == 0:
        return
    try:
        if y is None:
            estimator.partial_fit(X, **fit_params)
        else:
            estimator.partial_fit(X, y, **fit_params)
    except ValueError as exc:
        raise DataError(f"{type(estimator).__name__}.partial_fit failed on partition {index}: {exc}") from exc
