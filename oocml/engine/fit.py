"""Run a Plan: resolve columns, one statistics pass, fit the steps, stream to partial_fit.

The data is read exactly ``1 + epochs`` times: once for every statistic the
plan needs (all steps, class labels, row counts), then once per epoch (plus a
holdout pass per epoch and a projection pass, when the plan asks for them).
:func:`fit_plan` runs the steps in order: :func:`prepare`, :func:`statistics`,
:func:`preprocess`, :func:`train_estimator`, :func:`fit_result`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import dask.dataframe as dd
import numpy as np
from dask.dataframe.utils import make_meta
from sklearn.pipeline import Pipeline

from ..encoding import with_defaults
from ..errors import ParameterError
from ..estimators import build, is_boosted, task_of
from ..evaluation.drift import DataProfile, profile_of
from ..execution import current_client
from ..io.conditions import check_columns, text_columns, text_compared, to_text
from ..io.lineage import files_read
from ..io.partitions import where_partitions
from ..io.sources import as_dask
from ..io.storage import check_path
from ..io.text_faults import named_parse_errors
from ..plan import Plan
from ..plan_rules import SPARSE_ENCODINGS, encoding_of, validate
from ..progress import progress_enabled
from ..report import FitReport, LineageStep
from .average import check_averageable, default_workers, train_average
from .cache import cache_bytes, open_cache
from .checkpoint import DEFAULT_EVERY, Checkpoint, fingerprint
from .checks import (
    check_numeric_target,
    check_sparse_input,
    check_summary,
    resolve_columns,
    split_features,
    warn_if_sorted,
)
from .parsed import open_parsed_copy
from .search import candidate_estimators, search_choice, start_search
from .stats import Summary, statistics_pass
from .steps import encoder_params, fit_reduction, preprocessing
from .stream import BlockRecipe, TrainingLog, TrainOptions, train
from .validation import HoldoutMonitor

log = logging.getLogger("oocml")


@dataclass(frozen=True)
class Fitted:
    """What a fit produced: the fitted pipeline and what the engine learned about it. The
    faces hand it to :class:`oocml.Model`; the engine knows nothing of the product."""

    pipeline: Pipeline
    features: list[str]
    target: str | None
    task: str
    classes: list | None
    plan: Plan  # as fitted, secrets masked
    report: FitReport
    step: LineageStep | None = None  # what this fit read and how it scored, for the lineage
    profile: DataProfile | None = None  # what the training data looked like (skew checks)


@dataclass
class Prepared:
    """A plan checked against the data's columns, before any read: what every step needs."""

    plan: Plan
    frame: dd.DataFrame
    features: list[str]
    numeric: list[str]
    categorical: list[str]
    estimator: Any
    task: str
    parts: list
    progress: bool
    candidates: tuple[list[dict], list[Any]] | None = None  # TUNE: parameters, estimators
    parsed: bool = False  # the parts read a copy the statistics pass kept of parsed text
    warm: bool = False  # the estimator was fitted before (UPDATE): every block is scored first


@dataclass(frozen=True)
class Training:
    """The outcome of the training passes."""

    estimator: Any
    record: TrainingLog
    monitor: HoldoutMonitor | None
    workers: int
    cached: bool = False  # epochs after the first read every partition from the block cache
    search: Any = None  # TUNE: the SearchMonitor, which knows every candidate's story
    chosen: dict | None = None  # boosted trees: what the holdout chose (best round, score)
    reads: int | None = None  # boosted trees: reads of the source after the statistics pass
    cached_reads: int = 0  # boosted trees: passes of the matrices read from the block cache


def fit_plan(plan: Plan, data: Any, *, progress: bool | None = None,
             storage_options: dict | None = None) -> Fitted:
    """Fit ``plan`` on a dask (or pandas) DataFrame; ``storage_options`` reach the filesystem
    of a checkpoint URL. Ctrl-C at any step raises TrainingInterrupted saying where (the
    training passes say how far they got)."""
    from ..errors import TrainingInterrupted

    where = "while checking the plan against the data"
    try:
        prepared = prepare(plan, data, progress)
        where = "during the statistics pass"
        copy = open_parsed_copy(plan, prepared.frame, current_client() is not None)
        try:
            summary, classes, stats_seconds = statistics(prepared, copy)
            if copy is not None:  # every later pass reads the parsed copy, not the text
                parts = copy.parts(prepared.parts)
                prepared = replace(prepared, parts=parts, parsed=all(map(copy.holds, parts)))
            where = "while fitting the preprocessing steps"
            steps = preprocess(prepared, summary)
            where = "while starting or ending the training passes"
            training = train_estimator(prepared, summary, steps, classes, storage_options)
        finally:
            if copy is not None:
                copy.remove()
        where = "after the training passes, while describing the fit"
        return fit_result(prepared, summary, steps, classes, training, stats_seconds)
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"training interrupted {where}; the model was not kept") from None


def prepare(plan: Plan, data: Any, progress: bool | None = None) -> Prepared:
    """Check ``plan`` and its columns against the data, build the estimator; nothing is read."""
    validate(plan)
    frame = as_dask(data, plan.stream.block_rows)
    features = resolve_columns(plan, list(frame.columns))
    numeric, categorical = split_features(make_meta(frame), features, plan.steps)
    estimator = build(plan.estimator)
    candidates = candidate_estimators(plan) if plan.search is not None else None
    if plan.stream.strategy == "average":
        check_averageable(estimator)
    task = task_of(estimator)
    if task != "clustering" and plan.target is None:
        raise ParameterError(f"{type(estimator).__name__} needs a target column (target= / PREDICT)")
    if task == "regression":
        check_numeric_target(frame, plan.target)
    check_sparse_input(plan, estimator)
    columns = features + ([plan.target] if plan.target is not None else [])
    if plan.where is not None:
        check_columns(plan.where, list(frame.columns))
        plan = replace(plan, where=text_compared(plan.where, text_columns(make_meta(frame))))
    parts = where_partitions(frame, plan.where, columns)
    return Prepared(plan, frame, features, numeric, categorical, estimator, task, parts,
                    progress_enabled(progress), candidates)


def statistics(prepared: Prepared, copy: Any = None) -> tuple[Summary, np.ndarray | None, float]:
    """The one statistics pass: every statistic the steps need, class labels, row counts; and
    its seconds. With ``copy`` (a ParsedCopy), the parsed rows are kept for the later passes."""
    plan, start = prepared.plan, time.perf_counter()
    discover = prepared.task == "classification" and plan.classes is None
    median = any(s.kind == "impute" and s.method == "median" for s in plan.steps)
    encodings = encoding_of(plan.steps, prepared.categorical)
    counted = tuple(c for c, step in encodings.items()
                    if step.method not in SPARSE_ENCODINGS)  # hash and text count nothing
    texts = {c: with_defaults("text", encoder_params(step)) for c, step in encodings.items()
             if step.method == "text" and dict(step.params).get("tfidf")}  # document counts
    with named_parse_errors(prepared.frame):  # the first pass reads every row: text breaks here
        summary = statistics_pass(prepared.parts, prepared.numeric, plan.target, discover, median,
                                  plan.stream.holdout, counted, progress=prepared.progress,
                                  copy=copy, texts=texts or None, sampled=not prepared.warm)
    check_summary(summary, prepared.numeric, plan, prepared.task,
                  missing_ok=is_boosted(prepared.estimator), classes_known=prepared.warm)
    if not is_boosted(prepared.estimator):  # trees see every row
        warn_if_sorted(summary, prepared.numeric, len(prepared.features) + 1, plan.stream.shuffle,
                       plan.stream.shuffle_window)
    seconds = time.perf_counter() - start
    log.info("statistics pass: %d rows, %d partitions, %.2fs", summary.rows,
             len(summary.partition_rows), seconds)
    classes = np.asarray(plan.classes) if plan.classes is not None else summary.labels
    return summary, classes, seconds


def preprocess(prepared: Prepared, summary: Summary) -> list[tuple[str, Any]]:
    """The fitted steps before the estimator (a reduction by its own pass, if planned)."""
    plan = prepared.plan
    steps = preprocessing(plan, summary, prepared.numeric, prepared.categorical,
                          make_meta(prepared.frame), trees=is_boosted(prepared.estimator))
    reduction = next((s for s in plan.steps if s.kind == "reduce"), None)
    if reduction is not None:
        steps.append(("reduce", fit_reduction(reduction, prepared.parts, steps, plan,
                                              prepared.progress)))
    return steps


def train_estimator(prepared: Prepared, summary: Summary, steps: list[tuple[str, Any]],
                    classes: np.ndarray | None, storage_options: dict | None = None) -> Training:
    """Stream the prepared blocks to ``partial_fit``, epoch by epoch (with holdout scoring,
    checkpoints, averaging or TUNE's candidates, as planned); boosted trees from the
    external-memory matrix of the same blocks."""
    plan, task, estimator = prepared.plan, prepared.task, prepared.estimator
    if is_boosted(estimator):
        from .boosted import train_boosted

        boosted = train_boosted(prepared, summary, steps, classes)
        return Training(boosted.estimator, boosted.record, None, 1, False, chosen=boosted.chosen,
                        reads=boosted.reads, cached_reads=boosted.cached)
    stream = plan.stream
    labels = classes if task == "classification" else None
    recipe = BlockRecipe(prep=Pipeline(steps), target=plan.target, labels=labels,
                         block_rows=stream.block_rows, holdout=stream.holdout, finite=True,
                         dtype=stream.precision)
    search = start_search(prepared, steps, classes) if prepared.candidates is not None else None
    monitor = None
    if search is not None:
        estimator = search.candidates  # every live candidate trains on each block
    elif stream.holdout is not None:
        monitor = HoldoutMonitor(prepared.parts, Pipeline(steps), prepared.features, plan.target,
                                 task, None if classes is None else classes.tolist(),
                                 stream.holdout, stream.patience, progress=prepared.progress)
    checkpoint, resume = None, None
    if stream.checkpoint is not None:
        checkpoint = Checkpoint(check_path(stream.checkpoint), fingerprint(plan, summary),
                                monitor, options=storage_options)
        saved = checkpoint.read() if stream.resume else None
        if saved is not None:
            estimator, resume = saved[0], saved[1:]
    cache = open_cache(plan, summary, labels, current_client() is not None,
                       cache_bytes(steps, summary.rows, stream.precision))
    options = TrainOptions(
        cache=cache, epochs=stream.epochs, shuffle=stream.shuffle, window=stream.shuffle_window,
        sizes=summary.partition_rows,
        seed=plan.random_state,
        prefetch=stream.prefetch, fit_params={"classes": classes} if labels is not None else {},
        progress=prepared.progress,
        progressive=(task if (monitor is not None or prepared.warm) and task != "clustering"
                     else None),
        warm=prepared.warm,
        after_epoch=search if search is not None else monitor, checkpoint=checkpoint,
        checkpoint_every=stream.checkpoint_every or DEFAULT_EVERY,
        workers=(search.candidates.threads if search is not None
                 else default_workers() if stream.strategy == "average" else 1),
        name=search.label if search is not None else "train")
    try:
        if stream.strategy == "average":
            record = train_average(estimator, prepared.parts, recipe, options)
        else:
            record = train(estimator, prepared.parts, recipe, options, resume=resume)
    finally:
        if cache is not None:
            cache.remove()
        if search is not None:
            search.candidates.close()
    if checkpoint is not None:
        checkpoint.remove()
    if search is not None:
        estimator = search.estimator(search.winner())
    elif monitor is not None and stream.patience is not None:
        estimator = monitor.best_estimator  # early stopping keeps the best epoch's model
    cached = cache is not None and cache.writing and record.epochs > 1
    return Training(estimator, record, monitor, options.workers, cached, search=search)


def fit_result(prepared: Prepared, summary: Summary, steps: list[tuple[str, Any]],
               classes: np.ndarray | None, training: Training, stats_seconds: float) -> Fitted:
    """The :class:`Fitted` result: the whole pipeline, what the fit did (its report) and
    what it read (its lineage step)."""
    plan, record, monitor = prepared.plan, training.record, training.monitor
    reduced = any(s.kind == "reduce" for s in plan.steps)
    passes = 1 if prepared.parsed else (1 + reduced + (1 if training.cached else record.epochs)
                                        + (record.epochs if monitor or training.search else 0))
    if training.reads is not None:  # boosted trees: the matrices' reads of the source
        passes = 1 if prepared.parsed else 1 + reduced + training.reads
    report = FitReport(
        rows=summary.rows, partitions=len(summary.partition_rows), rows_seen=record.rows_seen,
        epochs=record.epochs, blocks_seen=record.blocks_seen, strategy=plan.stream.strategy,
        workers=training.workers, passes=passes, parsed_once=prepared.parsed,
        cached_epochs=record.epochs - 1 if training.cached else training.cached_reads,
        stats_seconds=round(stats_seconds, 6), train_seconds=round(record.seconds, 6),
        history=tuple(record.history),
        **(training.chosen if training.chosen is not None
           else _choice(plan, monitor, training.search)))
    return Fitted(Pipeline([*steps, ("model", training.estimator)]), features=prepared.features,
                  target=plan.target, task=prepared.task,
                  classes=None if classes is None else classes.tolist(), plan=plan.masked(),
                  report=report, step=lineage_step(prepared, summary, report),
                  profile=None if prepared.warm else profile_of(
                      summary.sample, prepared.numeric, summary.categories, summary.rows))


def lineage_step(prepared: Prepared, summary: Summary, report: FitReport) -> LineageStep:
    """What this fit read (source, WHERE, files and their rows) and its score: a TRAIN's
    holdout score, an UPDATE's test-then-train score of its first epoch."""
    plan = prepared.plan.masked()
    if prepared.warm:
        first = report.history[0] if report.history else {}
        score, kind = first.get("progressive_score"), "progressive"
    else:
        score, kind = report.holdout_score, "holdout"
    return LineageStep(
        kind="update" if prepared.warm else "train",
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        source=None if plan.source is None else str(plan.source),
        where=None if plan.where is None else to_text(plan.where),
        files=files_read(prepared.parts, summary.partition_rows),
        rows=summary.rows, epochs=report.epochs, score=score,
        score_kind=kind if score is not None else None,
        table_version=None if plan.source is None else plan.source.version)


def _choice(plan: Plan, monitor: HoldoutMonitor | None, search: Any) -> dict[str, Any]:
    """What a holdout (the best epoch) or a search (the best candidate) chose, for the report."""
    if search is not None:
        return search_choice(search.trials, plan.stream.holdout)
    if monitor is not None:
        return dict(holdout=plan.stream.holdout, best_epoch=monitor.best_epoch,
                    holdout_score=round(monitor.best_score, 6), stopped_early=monitor.stopped_early)
    return {}
