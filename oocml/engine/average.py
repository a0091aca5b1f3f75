"""Parallel training by iterative parameter mixing (``strategy="average"``, ``PARALLEL``).

Each epoch's partitions (in :func:`~oocml.engine.stream.epoch_order`) are dealt into
rounds of ``workers``. In a round, every task takes a copy of the current model,
reads and prepares its partition and runs ``partial_fit`` on it, all on the worker
that reads the data: only the model travels. The round's models are then averaged,
weighted by the rows each one saw, in the order of the partitions (never in order of
completion), so the model is the same on every scheduler; with one worker it is the
sequential model, bit for bit. At most ``workers`` partitions are in memory at once.

Only linear models whose whole learned state is ``coef_`` and ``intercept_`` (plus
SGD's step counter ``t_`` and its averaged-SGD copies) can be mixed this way.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import dask
import numpy as np
from dask.delayed import Delayed
from dask.system import CPU_COUNT

from .._compat import SGD_STATE, adopt_state, is_sgd_family, set_sgd_steps, settle_sgd_average, sgd_steps
from ..errors import ParameterError, TrainingInterrupted
from ..estimators import ALGORITHMS, import_class
from ..execution import Submitter, current_client, data_pass
from ..io.partitions import FilePart
from ..progress import BlockProgress
from .mixing import mixed, window_recipe, window_size
from .stream import (
    BlockRecipe,
    TrainingLog,
    TrainOptions,
    _partial_fit,
    blocks_of,
    end_epoch,
    epoch_order,
    finiteness_checks,
)
from .validation import ProgressiveScore


def check_averageable(estimator: Any) -> None:
    """Refuse, naming the algorithms that can, an estimator whose models cannot be averaged:
    only the SGD family's whole state between two partial_fit calls is arrays a mean of models
    keeps a model (:func:`oocml._compat.is_sgd_family`)."""
    if is_sgd_family(type(estimator)):
        return
    names = [a.name for a in ALGORITHMS.values() if is_sgd_family(import_class(a.qualname))]
    raise ParameterError(
        f"strategy='average' (PARALLEL) trains copies of a linear model in parallel and "
        f"averages their coef_ and intercept_; {type(estimator).__name__} cannot be averaged "
        f"that way. The SGD family can: algorithms {', '.join(names)} (SGDClassifier, "
        f"SGDRegressor, Perceptron); train {type(estimator).__name__} with "
        "strategy='sequential' (leave out PARALLEL)")


def default_workers() -> int:
    """Tasks per round: the threads of the active ``distributed.Client``, else this machine's cores."""
    client = current_client()
    if client is not None:
        return max(sum(client.nthreads().values()), 1)
    return max(int(dask.config.get("num_workers", None) or CPU_COUNT), 1)


@dataclass
class Trained:
    """What one task sends back: its model and what it saw."""

    model: Any
    rows: int
    blocks: int
    scored: ProgressiveScore | None


def train_average(estimator: Any, parts: Sequence[Any], recipe: BlockRecipe,
                  options: TrainOptions | None = None) -> TrainingLog:
    """Train ``estimator`` in place on ``parts`` by iterative parameter mixing,
    ``options.epochs`` times; ``options.workers`` (default: :func:`default_workers`)
    partitions are trained in parallel per round. Options as for :func:`train`
    (``prefetch`` and ``checkpoint`` do not apply).
    """
    options = options or TrainOptions()
    fit_params, epochs, shuffle, seed = (options.fit_params, options.epochs, options.shuffle,
                                         options.seed)
    progressive, workers = options.progressive, options.workers
    check_averageable(estimator)
    window = window_size(options.window, shuffle, len(parts))  # each task mixes its window
    workers = default_workers() if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be a positive integer, not {workers!r}")
    record = TrainingLog()
    bar = BlockProgress(len(parts), epochs, options.progress)
    start = time.perf_counter()
    futures: list = []
    try:
        with Submitter(workers) as submitter, data_pass():
            for epoch in range(epochs):
                places = _places(submitter.client)  # again each epoch: workers come and go
                order = epoch_order(len(parts), epoch, shuffle, seed)
                size = window or 1
                groups = [order[k:k + size] for k in range(0, len(order), size)]
                scored = ProgressiveScore(progressive) if progressive else None
                rows = rounds = 0
                bar.start(epoch)
                for first in range(0, len(groups), workers):
                    dealt = groups[first:first + workers]
                    trained_before = record.rows_seen + rows > 0
                    futures = [_submit(submitter, places, slot, _fit_task(
                        estimator, [parts[i] for i in group], recipe, group,
                        _seeds(shuffle, window, seed, epoch, group, first + slot),
                        None if options.sizes is None else [options.sizes[i] for i in group],
                        fit_params, progressive, trained_before))
                        for slot, group in enumerate(dealt)]
                    results = [future.result() for future in futures]  # partition order
                    futures = []
                    mixed = mix([r.model for r in results], [r.rows for r in results])
                    if mixed is not None:
                        _adopt(estimator, mixed)
                    for r in results:
                        rows += r.rows
                        record.blocks_seen += r.blocks
                        if scored is not None and r.scored is not None:
                            scored = _merge(scored, r.scored)
                        bar.update(r.rows)
                    rounds += 1
                if end_epoch(record, epoch, rows, scored, estimator, options.after_epoch,
                             lambda: time.perf_counter() - start, rounds=rounds):
                    break
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"training interrupted after {bar.done} of {bar.total} "
                                  "partitions; the model was not kept") from None
    finally:
        for future in futures:
            future.cancel()
        bar.close()
    record.seconds = time.perf_counter() - start
    return record


def mix(models: Sequence[Any], rows: Sequence[int]) -> Any | None:
    """The models trained in one round from the same start, averaged weighted by ``rows``.

    Learned arrays are averaged in the given order; ``t_`` (SGD's step counter, which sets
    the learning rate) becomes the rows-weighted mean of the workers' counters, i.e. it
    advances by the rows of one worker's share, as in mini-batch SGD whose schedule
    counts steps, not rows. Everything else comes from the first model that saw rows.
    None when no model saw a row; the only model that saw rows itself; else a new model
    (the inputs are left as they are).
    """
    kept = [(model, n) for model, n in zip(models, rows) if n > 0]
    if not kept:
        return None
    if len(kept) == 1:
        return kept[0][0]
    base, total = copy.copy(kept[0][0]), sum(n for _, n in kept)
    for name in SGD_STATE:
        if getattr(base, name, None) is not None:
            setattr(base, name, _weighted([getattr(model, name) for model, _ in kept],
                                          [n / total for _, n in kept]))
    set_sgd_steps(base, sum(n * sgd_steps(model) for model, n in kept) / total)
    settle_sgd_average(base)  # coef_/intercept_ as partial_fit would leave them
    return base


def _weighted(arrays: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """sum(w * a), accumulated in list order (so the same on every scheduler), dtype kept."""
    out = arrays[0] * weights[0]
    for array, weight in zip(arrays[1:], weights[1:]):
        out += array * weight
    return out


def _adopt(estimator: Any, trained: Any) -> None:
    """Make the caller's estimator object hold ``trained``'s state (``train`` trains in place)."""
    if trained is not estimator:
        adopt_state(estimator, trained)


def _merge(a: ProgressiveScore, b: ProgressiveScore) -> ProgressiveScore:
    return ProgressiveScore(a.task, **{f.name: getattr(a, f.name) + getattr(b, f.name)
                                       for f in fields(a) if f.name != "task"})


def _places(client: Any) -> list[str]:
    """Worker addresses, one per thread, interleaved: round slot j runs on ``places[j % n]``."""
    if client is None:
        return []
    threads = client.nthreads()
    return [address for k in range(max(threads.values(), default=0))
            for address in sorted(threads) if threads[address] > k]


def _submit(submitter: Submitter, places: list[str], slot: int, task: Any) -> Any:
    """Start one task; on a cluster, on its slot's worker: the scheduler left alone may put two
    reads of a round on one worker, whose fits then wait for each other (the data stays put)."""
    if places and dask.is_dask_collection(task):
        return submitter.client.compute(task, workers=[places[slot % len(places)]],
                                        allow_other_workers=True)  # elsewhere if that one is gone
    return submitter.submit(task)


def _seeds(shuffle: bool, window: int | None, seed: int | None, epoch: int, group: list[int],
           number: int) -> tuple[tuple | None, tuple | None]:
    """(the row permutation's seed, the mixing's seed) of one task, as sequential training
    seeds its partition (no window) or its window (the ``number``-th of the epoch)."""
    if not shuffle:
        return None, None
    if window is None:
        return (seed or 0, epoch, group[0]), None
    return None, (seed or 0, epoch, number)


def _fit_task(model: Any, parts: list[Any], recipe: BlockRecipe, indices: list[int],
              seeds: tuple, sizes: list[int] | None, fit_params: dict, progressive: str | None,
              trained_before: bool) -> Any:
    """One worker's share of a round, a partition or a SHUFFLE window of them: a dask task
    when they are lazy (read where it runs), a plain callable when they are in memory."""
    if any(isinstance(part, Delayed | FilePart) for part in parts):
        return dask.delayed(_fit_parts, pure=False)(model, parts, recipe, indices, seeds, sizes,
                                                    fit_params, progressive, trained_before)
    return partial(_fit_parts, model, parts, recipe, indices, seeds, sizes, fit_params,
                   progressive, trained_before)


def _fit_parts(model: Any, parts: list[Any], recipe: BlockRecipe, indices: list[int],
               seeds: tuple, sizes: list[int] | None, fit_params: dict, progressive: str | None,
               trained_before: bool) -> Trained:
    """``partial_fit`` a private copy of ``model`` on the blocks of its partition (or of its
    window, mixed), each trained on as soon as it is made (while it is in cache; a partition
    is never held whole)."""
    model = copy.deepcopy(model)  # local schedulers hand every task the same object
    scored = ProgressiveScore(progressive) if progressive else None
    row_seed, mix_seed = seeds
    rows = blocks = 0
    with finiteness_checks(recipe):
        if mix_seed is None:
            stream = blocks_of(parts[0], recipe, indices[0], row_seed)
        else:
            read = window_recipe(recipe, len(parts))
            stream = mixed([blocks_of(p, read, i, None) for p, i in zip(parts, indices)],
                           mix_seed, [0] * len(parts), sizes, recipe.block_rows)
        for X, y in stream:
            if scored is not None and X.shape[0] and (trained_before or rows):
                scored.add(model, X, y)
            _partial_fit(model, X, y, fit_params, indices[0])
            rows += X.shape[0]
            blocks += 1
    return Trained(model, rows, blocks, scored)
