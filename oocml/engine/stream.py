"""The block-streaming loop: feed blocks to ``partial_fit`` while the next ones load.

On this machine, each partition is read by a loader thread a batch at a time,
through the fitted preprocessing, into blocks of about ``BLOCK_BYTES`` that wait
in a small queue (a :class:`Feed`); ``prefetch`` partitions load at once. Memory
thus holds a few blocks, whatever the size of the data or of its partitions, and
reading, decoding and scaling overlap with training. On a ``distributed``
cluster, each partition is one task that prepares its blocks where the data is.
Block order and the row permutation inside a block depend only on the random seed,
never on the scheduler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import dask
import numpy as np
import pandas as pd
import sklearn
from dask.delayed import Delayed

from ..blocks import apply_rows, block_step, stack_rows, take_rows
from ..errors import DataError, TrainingInterrupted, UnseenLabelError
from ..execution import Submitter, compute_here, data_pass
from ..io.partitions import FilePart, batches
from ..progress import BlockProgress
from .loading import Feed, prefetched
from .mixing import mixed, window_recipe, window_size
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
    finite: bool = False  # every feature value was checked finite (the statistics pass did)
    dtype: str | None = None  # "float32": dense blocks cast to it (PRECISION float32)
    heldout: bool = False  # the held-out rows instead of the training rows (a validation matrix)
    batch_bytes: int | None = None  # rows read at a time (None: BATCH_BYTES; see mixing.py)


def partition_blocks(part: Any, recipe: BlockRecipe, index: int,
                     row_seed: Sequence[int] | None) -> list[Block]:
    """Partition -> list of (X, y) blocks (see :func:`blocks_of`): what a dask task returns."""
    return list(_local_blocks(part, recipe, index, row_seed))


def finiteness_checks(recipe: BlockRecipe) -> Any:
    """scikit-learn's finiteness checks on this thread: skipped when the statistics pass has
    already checked every value (NaN and infinities are refused or imputed), since they only
    read each block once more (benchmarks/README.md, "Measurements behind the rules")."""
    return sklearn.config_context(assume_finite=True) if recipe.finite else nullcontext()


def blocks_of(part: Any, recipe: BlockRecipe, index: int,
              row_seed: Sequence[int] | None) -> Iterator[Block]:
    """A partition's (X, y) blocks, in order: transformed, optionally permuted, C-ordered if dense.

    A block is about ``BLOCK_BYTES`` of consecutive rows of a batch as read: small enough
    for ``partial_fit`` to visit its rows in cache (benchmarks/README.md, "Measurements
    behind the rules"), made a batch at a time, so a partition is never held whole.
    ``block_rows`` cuts the partition's rows into blocks of that many rows instead.
    """
    if isinstance(part, tuple) or recipe.block_rows is not None:
        yield from _cut(part, recipe, index, row_seed)
        return
    for k, (X, y) in enumerate(raw_blocks(part, recipe, index)):
        yield _permuted(X, y, row_seed, k)


def raw_blocks(part: Any, recipe: BlockRecipe, index: int) -> Iterator[Block]:
    """A partition's blocks before the epoch's row permutation: what the cache stores."""
    for frame in batches(part, recipe.batch_bytes):
        X, y = _batch_block(frame, recipe, index)
        for rows in _block_slices(X):  # none for an empty batch (empty file, WHERE, holdout)
            yield take_rows(X, rows), take_rows(y, rows)


def _cut(part: Any, recipe: BlockRecipe, index: int, row_seed: Sequence[int] | None) -> list[Block]:
    """The whole partition's rows, permuted, in blocks of ``block_rows`` (default: one block)."""
    if isinstance(part, tuple):  # (X, y) already split, from oocml.Incremental
        X, y = part
        if X.shape[0] == 0:
            return []
        pieces = [(recipe.prep.transform(X) if recipe.prep is not None else X, y)]
    else:
        pieces = [_batch_block(frame, recipe, index) for frame in batches(part)]
        pieces = [(X, y) for X, y in pieces if X.shape[0]]
        if not pieces:
            return []
    X, y = _permuted(stack_rows([X for X, _ in pieces]), stack_rows([y for _, y in pieces]),
                     row_seed, None)
    n = X.shape[0]
    step = recipe.block_rows or max(n, 1)
    return [(take_rows(X, slice(i, i + step)), take_rows(y, slice(i, i + step)))
            for i in range(0, n, step)]


def _batch_block(frame: pd.DataFrame, recipe: BlockRecipe, index: int) -> Block:
    """One batch of a partition as a training block: training rows only (or, for a validation
    matrix, the held-out ones), labels checked."""
    frame = training_rows(frame, recipe.holdout, recipe.heldout)
    y = frame[recipe.target].to_numpy() if recipe.target is not None else None
    if len(frame) == 0:  # an empty file, or no row of the batch passes WHERE or the holdout
        return np.empty((0, 0)), y
    if recipe.labels is not None and y is not None:
        unseen = np.setdiff1d(pd.unique(y), recipe.labels)
        if unseen.size:
            raise UnseenLabelError(
                f"partition {index} holds target value(s) {unseen.tolist()[:10]} that are not among "
                f"the classes {recipe.labels.tolist()[:20]}; pass classes= with every label, or check "
                "that the data did not change since the statistics pass"
            )
    X = apply_rows(recipe.prep, frame, "transform") if recipe.prep is not None else frame
    if recipe.dtype is not None and isinstance(X, np.ndarray) and X.dtype != recipe.dtype:
        X = X.astype(recipe.dtype)
    return X, y


def _block_slices(X: Any) -> list[slice]:
    """Consecutive row ranges of about ``BLOCK_BYTES`` of ``X`` each."""
    n, step = X.shape[0], block_step(X)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _permuted(X: Any, y: Any, row_seed: Sequence[int] | None, k: int | None) -> Block:
    """The block's rows in a random order seeded by ``row_seed`` (+ the block number ``k``);
    dense blocks C-ordered, as ``partial_fit`` and SHUFFLE's gather want them (in the same copy
    as the permutation, when the prepared rows come column by column)."""
    dense = isinstance(X, np.ndarray)
    if row_seed is not None and X.shape[0] > 1:
        order = np.random.default_rng([*row_seed, *([] if k is None else [k])]).permutation(X.shape[0])
        if dense:
            out = np.empty(X.shape, dtype=X.dtype)
            return np.take(X, order, axis=0, out=out, mode="clip"), take_rows(y, order)  # no buffer
        X, y = take_rows(X, order), take_rows(y, order)
    return (np.ascontiguousarray(X) if dense else X), y


def epoch_order(n: int, epoch: int, shuffle: bool, seed: int | None) -> list[int]:
    """Partition order of one epoch: in order, or a permutation seeded by (seed, epoch)."""
    if not shuffle:
        return list(range(n))
    return np.random.default_rng([seed or 0, epoch]).permutation(n).tolist()


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


@dataclass(frozen=True)
class TrainOptions:
    """How :func:`train` and :func:`~oocml.engine.average.train_average` stream the blocks.

    ``progressive`` (the task: "classification" or "regression") scores each block before
    training on it; ``after_epoch(epoch, estimator, history_entry)`` runs after each epoch
    and returns True to stop early; ``checkpoint(estimator, position, log)`` runs every
    ``checkpoint_every`` partitions (sequential training only); ``workers`` is the number of
    partitions trained at once per round when averaging (None: one per core or worker).
    """

    epochs: int = 1
    shuffle: bool = False
    seed: int | None = 0
    prefetch: int = 2
    fit_params: dict[str, Any] = field(default_factory=dict)
    progress: bool = False
    progressive: str | None = None
    after_epoch: Callable[[int, Any, dict], bool] | None = None
    checkpoint: Callable[[Any, Position, TrainingLog], None] | None = None
    checkpoint_every: int = 1
    workers: int | None = None
    name: str | Callable[[], str] = "train"  # the pass, as the progress line shows it
    cache: Any = None  # a BlockCache (oocml.engine.cache): sequential training on this machine
    window: int | None = None  # SHUFFLE: partitions mixed at once (oocml.engine.mixing)
    sizes: tuple[int, ...] | None = None  # each partition's training rows, to mix in proportion
    warm: bool = False  # the estimator has trained before (UPDATE): progressive scoring starts
    # with the first block, not after it


def train(estimator: Any, parts: Sequence[Any], recipe: BlockRecipe,
          options: TrainOptions | None = None,
          resume: tuple[Position, TrainingLog] | None = None) -> TrainingLog:
    """Stream ``parts`` (delayed partitions, or in-memory parts) through ``partial_fit``,
    ``options.epochs`` times; ``resume`` continues from a checkpoint's saved state."""
    opts = options or TrainOptions()
    position, record = resume if resume is not None else (Position(), TrainingLog())
    if resume is None and opts.progressive:
        position.scored = ProgressiveScore(opts.progressive)
    done_before = position.epoch * len(parts) + position.done
    # the pass is named for what it fits: a model that cannot predict is REDUCE's projection
    bar = BlockProgress(len(parts), opts.epochs, opts.progress, opts.name, done_before)
    start, seconds_before = time.perf_counter(), record.seconds
    elapsed = lambda: seconds_before + time.perf_counter() - start  # noqa: E731
    try:
        # a loader for each partition loading ahead, or for each of a SHUFFLE window
        window = window_size(opts.window, opts.shuffle, len(parts))
        threads = opts.prefetch if window is None else window + 1  # + the mixer
        with Submitter(threads) as submitter, data_pass(), finiteness_checks(recipe):
            stream = _Stream(estimator, parts, recipe, opts, submitter, bar, record, elapsed)
            for epoch in range(position.epoch, opts.epochs):
                if epoch != position.epoch:
                    position = Position(epoch, scored=ProgressiveScore(opts.progressive)
                                        if opts.progressive else None)
                stream.epoch(position)
                if end_epoch(record, epoch, position.epoch_rows, position.scored, estimator,
                             opts.after_epoch, elapsed):
                    break
    except KeyboardInterrupt:
        kept = ("; continue from the last checkpoint with RESUME / resume=True"
                if opts.checkpoint is not None else "; the model was not kept")
        raise TrainingInterrupted(f"training interrupted after {bar.done} of {bar.total} "
                                  f"partitions{kept}") from None
    finally:
        bar.close()
    record.seconds = elapsed()
    return record


@dataclass
class _Stream:
    """One sequential training run: each epoch, the partitions in the epoch's order, loaded
    ``prefetch`` ahead, their blocks fed to ``partial_fit`` as they come."""

    estimator: Any
    parts: Sequence[Any]
    recipe: BlockRecipe
    opts: TrainOptions
    submitter: Submitter
    bar: BlockProgress
    record: TrainingLog
    elapsed: Callable[[], float]
    trained: int = 0  # partitions trained on in this run (for the checkpoint's rhythm)

    def epoch(self, position: Position) -> None:
        """Train on the partitions of ``position.epoch`` not done yet, moving ``position``."""
        opts, epoch = self.opts, position.epoch
        todo = epoch_order(len(self.parts), epoch, opts.shuffle, opts.seed)[position.done:]
        window = window_size(opts.window, opts.shuffle, len(self.parts))
        recipe = self.recipe if window is None else window_recipe(self.recipe, window)
        recipe_task = dask.delayed(recipe)
        tasks = (_load_task(self.parts[i], recipe, recipe_task, i,
                            (opts.seed or 0, epoch, i) if opts.shuffle and window is None else None,
                            self.submitter, opts.cache, room=2 if window is None else 1)
                 for i in todo)
        self.bar.start(epoch, position.done)
        # A window's partitions load together, and the next window's one by one as this
        # window's loaders finish: each partition read at once holds its reader's buffers
        # (about 2 MB a column), so a window is what memory affords, not a window plus what
        # loads ahead.
        ahead = opts.prefetch if window is None else 1
        # closed on any exit, so no loader thread is left waiting for a taker
        with closing(prefetched(self.submitter, tasks, ahead)) as loaded:
            if window is not None:
                self.windows(todo, loaded, window, position)
                return
            for index, blocks in zip(todo, loaded):
                self.done([index], [self.partition(index, blocks, position)], position)

    def windows(self, todo: list[int], loaded: Iterator[Any], window: int,
                position: Position) -> None:
        """SHUFFLE across partitions: ``window`` partitions at a time, their rows mixed into
        every block (:mod:`.mixing`); a window's partitions are done together. A loader of
        the next window starts each time one of this window's has read its partition to the
        end, so that the next window's first blocks are made while this one's last spans are
        drawn, and no more partitions are read at once than a window."""
        first = position.done  # windows start at multiples of ``window`` of the epoch's order
        groups = [todo[start:start + window] for start in range(0, len(todo), window)]
        ahead: list[Any] = []  # the next window's loaders started so far
        try:
            for g, group in enumerate(groups):
                streams = ahead + [next(loaded) for _ in range(len(group) - len(ahead))]
                ahead = []
                try:
                    rows = [0] * len(group)
                    seed = (self.opts.seed or 0, position.epoch, (first + g * window) // window)
                    sizes = None if self.opts.sizes is None else [self.opts.sizes[i] for i in group]
                    # mixed on a thread of its own, a block ahead, while partial_fit runs here
                    streams.insert(0, Feed(partial(mixed, streams[:], seed, rows, sizes,
                                                   self.recipe.block_rows),
                                           room=1, niced=False))
                    self.submitter.submit(streams[0].run)
                    start_ahead = partial(_start_ahead, loaded, streams[1:], ahead,
                                          len(groups[g + 1]) if g + 1 < len(groups) else 0)
                    self.partition(group[0], streams[0], position, start_ahead)
                finally:  # on any exit: a loader of the window left waiting would never end
                    _cancel(streams)  # the mixer first
                self.done(group, rows, position)
        finally:
            _cancel(ahead)  # started for a window that an error or Ctrl-C stopped

    def done(self, indices: list[int], rows: list[int], position: Position) -> None:
        """Book partitions trained on: the position, the progress line, a checkpoint when
        one falls due."""
        opts, before = self.opts, self.trained
        for n in rows:
            position.epoch_rows += n
            position.done += 1
            self.bar.update(n)
            self.trained += 1
        if opts.checkpoint is not None and \
                self.trained // opts.checkpoint_every > before // opts.checkpoint_every:
            self.record.seconds = self.elapsed()
            opts.checkpoint(self.estimator, position, self.record)

    def partition(self, index: int, blocks: Iterable[Block], position: Position,
                  after_block: Callable[[], None] | None = None) -> int:
        """``partial_fit`` on one partition's blocks (each scored first, if asked), calling
        ``after_block()`` after each; its rows."""
        rows = 0
        for X, y in blocks:
            trained_before = (self.opts.warm
                              or self.record.rows_seen + position.epoch_rows + rows > 0)
            if position.scored is not None and trained_before and X.shape[0]:
                position.scored.add(self.estimator, X, y)
            _partial_fit(self.estimator, X, y, self.opts.fit_params, index)
            rows += X.shape[0]
            self.record.blocks_seen += 1
            if after_block is not None:
                after_block()
        return rows


def _cancel(streams: list[Any]) -> None:
    """Stop the loaders among ``streams`` (a cluster's partitions are lists of blocks)."""
    for stream in streams:
        if isinstance(stream, Feed):
            stream.cancel()


def _start_ahead(loaded: Iterator[Any], loaders: list[Any], ahead: list[Any], wanted: int) -> None:
    """Start as many of the next window's ``wanted`` loaders (into ``ahead``) as this window's
    ``loaders`` have ended; a cluster's partitions (lists of blocks) are never started early."""
    ended = sum(isinstance(s, Feed) and s.ended for s in loaders)
    ahead.extend(next(loaded) for _ in range(min(ended, wanted) - len(ahead)))


def pass_blocks(parts: Sequence[Any], recipe: BlockRecipe, submitter: Submitter, prefetch: int,
                cache: Any = None, done: Callable[[int], None] | None = None) -> Iterator[Block]:
    """One pass over every partition's blocks, in partition order and unshuffled, loaded
    ``prefetch`` partitions ahead (by a cluster's workers when there is one); ``done(rows)``
    after each partition. For consumers that take the blocks as they come (boosted trees)."""
    recipe_task = dask.delayed(recipe)
    tasks = (_load_task(part, recipe, recipe_task, i, None, submitter, cache)
             for i, part in enumerate(parts))
    with closing(prefetched(submitter, tasks, prefetch)) as loaded:
        for blocks in loaded:
            rows = 0
            for X, y in blocks:
                rows += X.shape[0]
                yield X, y
            if done is not None:
                done(rows)


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
               row_seed: tuple | None, submitter: Submitter, cache: Any = None,
               room: int = 2) -> Any:
    """A dask task returning a partition's blocks, on a cluster (read where the task runs); on
    this machine, a :class:`Feed` that makes them a batch at a time on a loader thread, with at
    most ``room`` blocks made and not yet taken."""
    if submitter.client is not None and isinstance(part, Delayed | FilePart):
        return dask.delayed(partition_blocks)(part, recipe_task, index, row_seed)
    return Feed(partial(_local_blocks, part, recipe, index, row_seed, cache), room)


def _local_blocks(part: Any, recipe: BlockRecipe, index: int, row_seed: Sequence[int] | None,
                  cache: Any = None) -> Iterator[Block]:
    """:func:`blocks_of`, with the recipe's finiteness checks on the thread that iterates it
    (a loader thread, or a dask task's); with a cache, the raw blocks come from it when it
    holds the partition, and are written to it when it does not."""
    with finiteness_checks(recipe):
        if cache is None:
            if isinstance(part, Delayed):  # a partition dask computes: here, no nested pool
                part = compute_here(part)
            yield from blocks_of(part, recipe, index, row_seed)
            return

        def source() -> Iterator[Block]:
            whole = compute_here(part) if isinstance(part, Delayed) else part
            return raw_blocks(whole, recipe, index)

        raw = cache.blocks(index, source) if cache.has(index) else cache.tee(index, source())
        for k, (X, y) in enumerate(raw):
            yield _permuted(X, y, row_seed, k)


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
