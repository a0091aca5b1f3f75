"""Boosted trees out-of-core: XGBoost's external-memory matrix, fed the prepared blocks.

The statistics pass, the fitted steps, the holdout split and the prepared-block cache are those
of every fit; only the consumer of the blocks differs. XGBoost builds an
``ExtMemQuantileDMatrix`` from a ``DataIter``, reading its input several times (three passes
for the training matrix, two for the validation one): the first pass reads the source and
writes the prepared blocks to the block cache, the later ones read the cache, so the source is
read and decoded once for each matrix. The matrix keeps its quantized pages in a page cache on
disk, in a folder of this fit removed when it ends; in memory XGBoost keeps per training row its
label, gradient pairs and prediction cache (about 40 bytes a row), none of the data. The trees
are trained for ``n_estimators`` rounds, stopped early on the held-out rows (the hashed split
of every other model) when the plan has a patience.

Blocks reach XGBoost as float32 (its own precision), missing values as NaN (it learns which
way they go), the columns ``ENCODE ordinal`` makes as categorical features (native splits on
sets of categories: on the flights, ahead of one-hot early, behind it after 300 rounds of
depth 8, 0.724 against 0.731 AUC: benchmarks/README.md, "boosted.py").
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from ..boosting import MAX_BIN, xgboost, xgboost_message  # sets OpenMP's wait policy first
from ..errors import DataError, ParameterError, TrainingInterrupted
from ..execution import Submitter, current_client, data_pass
from ..progress import PassLine
from .cache import BlockCache, open_cache
from .stream import BlockRecipe, TrainingLog, pass_blocks

BATCH_BYTES = 64 << 20  # handed to XGBoost at once: several prepared blocks, one page each
# The page cache holds each value as a bin index, plus row pointers: 50.6 bytes a row of 20
# dense features (benchmarks/README.md, "boosted.py"); this bound, 96 there, is what EXPLAIN
# and the disk check count (missing values and wide one-hot rows cost more per row).
PAGE_BYTES = (4, 16)  # (per value, per row)
ROW_STATE_BYTES = 45  # XGBoost's memory per training row while it trains (labels, gradients, ...)
LABEL_BYTES = 4  # labels are held whole, as float32


@dataclass(frozen=True)
class BoostedFit:
    """What boosting returned: the estimator holding the booster, the log of its rounds, what
    the holdout chose, how many times the source was read, and whether the cache served."""

    estimator: Any
    record: TrainingLog
    chosen: dict[str, Any]
    reads: int  # of the source
    cached: int  # passes over the blocks read from the block cache


class _Interrupted(Exception):  # noqa: N818  (a KeyboardInterrupt passed through XGBoost)
    """XGBoost catches ``Exception`` raised in a DataIter and raises it again when it returns,
    but swallows ``KeyboardInterrupt``; Ctrl-C travels through it as this."""


def page_cache_bytes(rows: int, width: int) -> int:
    """A bound on the page cache of ``rows`` training rows of ``width`` prepared columns."""
    return rows * (width * PAGE_BYTES[0] + PAGE_BYTES[1])


def feature_types(steps: list[tuple[str, Any]]) -> list[str]:
    """XGBoost's type of each prepared column: ``c`` for what ``ENCODE ordinal`` made (native
    categorical splits), ``q`` for every other number."""
    names = list(Pipeline(steps).get_feature_names_out())
    ordinal: set[str] = set()
    for _, step in steps:
        for _, transformer, columns in getattr(step, "transformers_", ()):
            if isinstance(transformer, OrdinalEncoder):
                ordinal.update(columns)
    return ["c" if name in ordinal else "q" for name in names]


def train_boosted(prepared: Any, summary: Any, steps: list[tuple[str, Any]],
                  classes: np.ndarray | None) -> BoostedFit:
    """Build the external-memory matrices from the prepared blocks (training rows, and the
    held-out rows with a holdout), train the trees, and return the fitted estimator."""
    plan, stream = prepared.plan, prepared.plan.stream
    labels = classes if prepared.task == "classification" else None
    objective = str(prepared.estimator.objective)
    if labels is not None and len(labels) == 2 and objective.startswith("multi:"):
        raise DataError(f"objective {objective!r} needs three classes or more, and "
                        f"{plan.target!r} holds two: leave the objective out "
                        "(binary:logistic)")
    recipe = BlockRecipe(prep=Pipeline(steps), target=plan.target, labels=labels,
                         block_rows=stream.block_rows, holdout=stream.holdout, dtype="float32")
    types = feature_types(steps)
    check_page_room(plan, page_cache_bytes(summary.rows, len(types)))
    folder = Path(tempfile.mkdtemp(prefix="oocml-boost-", dir=_page_folder(plan)))
    caches = [open_cache(plan, summary, labels, current_client() is not None,
                         summary.rows * len(types) * 4, passes=3)]
    if stream.holdout is not None:
        caches.append(None if caches[0] is None else BlockCache(labels=labels))
    start = time.perf_counter()
    try:
        with Submitter(stream.prefetch) as submitter, data_pass():
            feed = _Feed(prepared.parts, submitter, stream.prefetch, labels, types,
                         prepared.progress)
            failure = None
            try:
                estimator, booster, history, rows, chosen = _build_and_train(
                    feed, recipe, caches, folder, prepared, labels)
            except xgboost.core.XGBoostError as exc:  # what only the data shows (labels)
                failure = xgboost_message(exc)
            if failure is not None:  # raised here, so the failed matrices are freed first
                raise DataError(f"XGBoost cannot train {type(prepared.estimator).__name__} on "
                                f"this data: {failure}")
    finally:  # the matrices are freed by now: their pages can go
        for cache in caches:
            if cache is not None:
                cache.remove()
        shutil.rmtree(folder, ignore_errors=True)
    record = TrainingLog(rows_seen=rows, blocks_seen=feed.batches, history=history,
                         epochs=booster.num_boosted_rounds(), seconds=time.perf_counter() - start)
    cached = caches[0] is not None and caches[0].writing
    held = len(caches) > 1
    return BoostedFit(estimator.adopt(booster, labels), record, chosen,
                      reads=(1 if cached else 3) + (0 if not held else 1 if cached else 2),
                      cached=(2 + held) if cached else 0)


def _build_and_train(feed: _Feed, recipe: BlockRecipe, caches: list, folder: Path,
                     prepared: Any, labels: Any) -> tuple[Any, Any, list, int, dict]:
    """The matrices (freed when this returns), and the trees trained on them (TUNE: the
    winner's): (estimator, booster, history, training rows, what the holdout chose)."""
    stream = prepared.plan.stream
    train = feed.matrix(recipe, caches[0], folder / "train", "boost train matrix")
    valid = None
    if len(caches) > 1:
        valid = feed.matrix(replace(recipe, heldout=True), caches[1], folder / "holdout",
                            "boost holdout matrix", ref=train)
    rows = int(train.num_row())
    give_back_memory()  # the reads' buffers, before XGBoost's per-row state takes its place
    if prepared.candidates is not None:
        found, history = _tune(prepared.candidates, train, valid, stream, prepared.plan.search,
                               labels, feed.progress)
        return found.estimator, found.booster, history, rows, found.choice(stream.holdout)
    estimator = prepared.estimator
    booster, history = _train(estimator, train, valid, stream.patience, labels, feed.progress)
    return estimator, booster, history, rows, _chosen(booster, history, stream)


def give_back_memory() -> None:
    """Return to the system what the passes freed but the allocators keep: pyarrow's pool
    and glibc's arenas (the reading threads' batches), so that boosting starts from less."""
    import ctypes
    import ctypes.util
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def check_page_room(plan: Any, size: int) -> None:
    """Refuse, before any pass, a page cache that would not fit on its disk (with the margin
    the block cache leaves), naming the size it needs."""
    from .cache import MARGIN_BYTES, disk_room

    fits, free = disk_room(_page_folder(plan), size)
    if not fits:
        raise ParameterError(
            f"XGBoost's page cache needs about {size / 2**20:,.0f} MB, and its disk has "
            f"{free / 2**20:,.0f} MB free (less a margin of {MARGIN_BYTES >> 20} MB kept free): "
            "name a folder on a larger disk (CACHE 'folder' / cache='folder')")


def _page_folder(plan: Any) -> str | None:
    """Where the page cache goes: beside the block cache when the plan names its folder,
    else in the temporary folder."""
    wanted = plan.stream.cache
    if isinstance(wanted, str):
        Path(wanted).mkdir(parents=True, exist_ok=True)
        return wanted
    return None


def _chosen(booster: Any, history: list[dict], stream: Any) -> dict[str, Any]:
    """What the holdout chose: the best round and its score (None without a holdout)."""
    if stream.holdout is None or not history:
        return {}
    best = int(getattr(booster, "best_iteration", len(history) - 1))
    return {"holdout": stream.holdout, "best_epoch": best + 1,
            "holdout_score": history[best].get("holdout_score"),
            "stopped_early": len(history) < int(booster.attr("rounds_planned") or len(history))}


class _Feed:
    """Makes the matrices of one fit: each pass over the blocks loaded ``prefetch`` partitions
    ahead, batched to about ``BATCH_BYTES``, labels as XGBoost wants them, a progress line."""

    def __init__(self, parts: list, submitter: Submitter, prefetch: int, labels: Any,
                 types: list[str], progress: bool):
        self.parts, self.submitter, self.prefetch = parts, submitter, prefetch
        self.labels, self.types, self.progress = labels, types, progress
        self.batches = 0

    def matrix(self, recipe: BlockRecipe, cache: Any, prefix: Path, name: str,
               ref: Any = None) -> Any:
        """The external-memory matrix of ``recipe``'s blocks (pages under ``prefix``)."""
        passes = iter(range(1, 100))
        source = _BlockIter(lambda: self._batches(recipe, cache, f"{name}, pass {next(passes)}"),
                            self.types, str(prefix))
        try:
            return xgboost.ExtMemQuantileDMatrix(source, max_bin=MAX_BIN, ref=ref,
                                                 missing=np.nan,
                                                 enable_categorical="c" in self.types)
        except _Interrupted:
            raise KeyboardInterrupt from None
        finally:
            source.close()

    def _batches(self, recipe: BlockRecipe, cache: Any, name: str) -> Iterator[tuple]:
        """One pass: batches of (float32 rows, float32 labels)."""
        line = PassLine(name, len(self.parts), self.progress)
        blocks = pass_blocks(self.parts, recipe, self.submitter, self.prefetch, cache,
                             lambda rows: line.advance(rows))
        try:
            for X, y in _batched(blocks):
                self.batches += 1
                yield X, self._codes(y)
        finally:
            line.close()

    def _codes(self, y: np.ndarray) -> np.ndarray:
        """Labels as XGBoost learns them: a class's position among the classes, or the value."""
        if self.labels is not None:
            return np.searchsorted(self.labels, y).astype(np.float32)
        y = np.asarray(y, dtype=np.float32)
        if not np.isfinite(y).all():
            raise DataError("the target holds missing or infinite values; drop those rows first")
        return y


def _batched(blocks: Iterator[tuple]) -> Iterator[tuple]:
    """Consecutive blocks joined into batches of about ``BATCH_BYTES`` of rows."""
    pending, size = [], 0
    for X, y in blocks:
        if X.shape[0] == 0:
            continue
        pending.append((X, y))
        size += X.nbytes
        if size >= BATCH_BYTES:
            yield _joined(pending)
            pending, size = [], 0
    if pending:
        yield _joined(pending)


def _joined(pending: list[tuple]) -> tuple:
    if len(pending) == 1:
        return pending[0]
    return (np.concatenate([X for X, _ in pending]), np.concatenate([y for _, y in pending]))


class _BlockIter(xgboost.DataIter):
    """XGBoost's DataIter over passes of batches: ``make_pass()`` starts one, at XGBoost's
    first ``next`` after each ``reset``."""

    def __init__(self, make_pass: Callable[[], Iterator[tuple]], types: list[str], prefix: str):
        super().__init__(cache_prefix=prefix, release_data=True)
        self._make_pass, self._types, self._pass = make_pass, types, None

    def next(self, input_data: Callable[..., None]) -> bool:
        try:
            if self._pass is None:
                self._pass = self._make_pass()
            batch = next(self._pass, None)
        except KeyboardInterrupt:
            raise _Interrupted from None
        if batch is None:
            return False
        input_data(data=batch[0], label=batch[1], feature_types=self._types)
        return True

    def reset(self) -> None:
        self.close()

    def close(self) -> None:
        """End the pass under way (its loader threads stop)."""
        if self._pass is not None:
            self._pass.close()
            self._pass = None


def _params(estimator: Any, n_classes: int | None) -> dict[str, Any]:
    """``xgboost.train``'s parameters for ``estimator``, scored on the holdout by the error (or
    RMSE) and the loss, the last of which early stopping watches."""
    params = estimator.booster_params(n_classes)
    metrics = (["rmse"] if n_classes is None else ["error", "logloss"] if n_classes == 2
               else ["merror", "mlogloss"])
    params.setdefault("eval_metric", metrics)
    return params


def _train(estimator: Any, train: Any, valid: Any, patience: int | None, labels: Any,
           progress: bool) -> tuple[Any, list[dict]]:
    """``xgboost.train`` for ``estimator.rounds`` rounds, scored on ``valid`` after each; the
    booster and the history of its rounds (the holdout's accuracy or R^2 and loss)."""
    n_classes = None if labels is None else len(labels)
    line = PassLine("boost", estimator.rounds, progress, unit="rounds")
    result: dict = {}
    try:
        booster = xgboost.train(_params(estimator, n_classes), train, estimator.rounds,
                                evals=[(valid, "holdout")] if valid is not None else [],
                                evals_result=result, verbose_eval=False,
                                early_stopping_rounds=patience if valid is not None else None,
                                callbacks=[_Rounds(line)])
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"training interrupted after {line.done} of {line.total} "
                                  "boosting rounds; the model was not kept") from None
    finally:
        line.close()
    booster.set_attr(rounds_planned=str(estimator.rounds))
    return booster, _history(result.get("holdout", {}), _spread(valid, labels), train.num_row())


def _tune(candidates: Any, train: Any, valid: Any, stream: Any, search: Any, labels: Any,
          progress: bool) -> tuple[Any, list[dict]]:
    """TUNE: the candidates halved by rounds on these matrices (:mod:`.boosted_search`); the
    winner's estimator, booster and history, and the search."""
    from .boosted_search import tune_boosted

    n_classes = None if labels is None else len(labels)
    spread = _spread(valid, labels)
    found = tune_boosted(candidates, train, valid, lambda e: _params(e, n_classes),
                         search.reduction_factor, stream.patience,
                         lambda metrics, k: _score(metrics, k, spread), progress)
    return found, _history(found.metrics, spread, train.num_row())


def _spread(valid: Any, labels: Any) -> float | None:
    """The holdout labels' variance, R^2's denominator (regressors)."""
    return None if labels is not None or valid is None else float(np.var(valid.get_label()))


def _score(metrics: dict[str, list[float]], k: int, spread: float | None) -> float | None:
    """Round ``k``'s holdout score: accuracy (1 - error) for a classifier, R^2 for a regressor."""
    error = metrics.get("error") or metrics.get("merror")
    if error is not None:
        return 1.0 - float(error[k])
    if "rmse" in metrics and spread:
        return 1.0 - float(metrics["rmse"][k]) ** 2 / spread
    return None


def _history(scores: dict[str, list[float]], spread: float | None, rows: int) -> list[dict]:
    """One entry per round: the holdout's accuracy (classifiers) or R^2 (regressors) as
    ``holdout_score``, and XGBoost's own metrics."""
    rounds = len(next(iter(scores.values()), []))
    history = []
    for k in range(rounds):
        entry: dict[str, Any] = {"epoch": k + 1, "rows": int(rows)}
        for metric, values in scores.items():
            entry[f"holdout_{metric}"] = round(float(values[k]), 6)
        score = _score(scores, k, spread)
        if score is not None:
            entry["holdout_score"] = round(score, 6)
        history.append(entry)
    return history


class _Rounds(xgboost.callback.TrainingCallback):
    """Advances the progress line after each boosting round."""

    def __init__(self, line: PassLine):
        super().__init__()
        self.line = line

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        self.line.advance()
        return False
