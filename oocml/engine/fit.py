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
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.dataframe.utils import make_meta
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from ..encoding import TextEncoder, encoder_and_rows, idf, is_categorical, with_defaults
from ..errors import ColumnNotFoundError, DataError, ParameterError
from ..estimators import build, task_of
from ..execution import current_client
from ..io.conditions import check_columns, text_columns, text_compared
from ..io.partitions import where_partitions
from ..io.sources import as_dask
from ..io.storage import check_path
from ..io.text_faults import named_parse_errors
from ..plan import Plan, Step
from ..plan_rules import SPARSE_ENCODINGS, encoding_of, validate
from ..preprocessing import SCALERS
from ..progress import progress_enabled
from ..sketches import fitted_imputer
from .average import check_averageable, default_workers, train_average
from .cache import cache_bytes, open_cache
from .checkpoint import DEFAULT_EVERY, Checkpoint, fingerprint
from .parsed import open_parsed_copy
from .search import candidate_estimators, start_search, trial_records
from .stats import Summary, statistics_pass
from .stream import BlockRecipe, TrainingLog, TrainOptions, train
from .validation import HoldoutMonitor

log = logging.getLogger("oocml")

def resolve_columns(plan: Plan, columns: list[str]) -> list[str]:
    """The feature columns of ``plan`` on data with ``columns``; every name checked."""
    if plan.target is not None and plan.target not in columns:
        raise ColumnNotFoundError(plan.target, columns, role="target column")
    for name in plan.exclude:
        if name not in columns:
            raise ColumnNotFoundError(name, columns, role="excluded column")
    if plan.features is not None:
        for name in plan.features:
            if name not in columns:
                raise ColumnNotFoundError(name, columns, role="feature column")
        if plan.target in plan.features:
            raise ParameterError(f"the target {plan.target!r} cannot also be a feature")
        features = [c for c in plan.features if c not in plan.exclude]
    else:
        features = [c for c in columns if c != plan.target and c not in plan.exclude]
    if not features:
        raise ParameterError("no feature columns are left to train on")
    if len(set(features)) != len(features):
        raise ParameterError(f"feature columns are listed twice: {features}")
    return features


def split_features(meta: pd.DataFrame, features: list[str],
                   steps: tuple[Step, ...]) -> tuple[list[str], list[str]]:
    """(numeric, encoded) features: the non-numeric ones and those an encoding names; a
    non-numeric column no encoding covers is refused."""
    named = {c for s in steps if s.kind == "encode" for c in dict(s.params).get("columns", ())}
    for column in sorted(named - set(features)):
        raise ColumnNotFoundError(column, features, role="encoded column")
    categorical = [c for c in features if is_categorical(meta[c].dtype) or c in named]
    uncovered = [c for c in categorical if c not in encoding_of(steps, categorical)]
    if uncovered:
        details = ", ".join(f"{c!r} ({meta[c].dtype})" for c in uncovered)
        raise DataError(
            f"non-numeric feature column(s) {details}: add an encoder (.encode('onehot') / "
            "ENCODE onehot, or per column: ENCODE text(review), onehot(country)) or leave "
            "them out (FEATURES * EXCLUDE (...) / .select(exclude=[...]))"
        )
    return [c for c in features if c not in categorical], categorical


def preprocessing(plan: Plan, summary: Summary, numeric: list[str], categorical: list[str],
                  meta: pd.DataFrame) -> list[tuple[str, Any]]:
    """The fitted pipeline steps before the estimator, all from the one statistics pass.

    Without encoded features: select -> each numeric step, flat. With them, the
    scikit-learn idiom: a ColumnTransformer with the numeric steps on the numeric
    columns and each encoder on its columns (encoded columns are not scaled).
    """
    numeric_steps = tuple(s for s in plan.steps if s.kind not in ("encode", "reduce"))
    fitted = fit_steps(numeric_steps, summary, numeric) if numeric else []
    if not categorical:
        select = ColumnTransformer([("features", "passthrough", numeric)], remainder="drop",
                                   verbose_feature_names_out=False).fit(meta[numeric])
        return [("select", select), *fitted]
    groups = encoding_groups(plan.steps, categorical)
    encoders, synthetic = [], [pd.DataFrame(0.0, index=[0], columns=numeric)]
    for step, columns in groups:
        encoder, rows = encoder_and_rows(step.method, encoder_params(step), columns,
                                         summary.categories)
        encoders.append((step.method if len(groups) == 1 else f"{step.method}_{len(encoders)}",
                         encoder, columns))
        synthetic.append(rows)
    rows = _side_by_side(synthetic)
    # Fit with the numeric part passed through, then put the numeric steps fitted out-of-core
    # in its place: same columns in, same width out.
    sparse_out = any(step.method in SPARSE_ENCODINGS for step, _ in groups)
    features = ColumnTransformer(
        [("numeric", "passthrough", numeric), *encoders],
        remainder="drop", sparse_threshold=1.0 if sparse_out else 0.0,
        verbose_feature_names_out=False).fit(rows[numeric + categorical])
    for _, encoder, columns in features.transformers_:
        if isinstance(encoder, TextEncoder) and encoder.tfidf:  # weights from the pass's counts
            encoder.idf_ = np.stack([idf(*summary.documents[c]) for c in columns])
    if fitted:
        fitted[0][1].feature_names_in_ = np.asarray(numeric, dtype=object)
        position = [name for name, *_ in features.transformers_].index("numeric")
        features.transformers_[position] = ("numeric", Pipeline(fitted), numeric)
        # Shown by repr and get_params: the steps that really run, not the placeholder.
        features.transformers = [t for t in features.transformers_ if t[0] != "remainder"]
    return [("features", features)]


def encoding_groups(steps: tuple[Step, ...], categorical: list[str]) -> list[tuple[Step, list]]:
    """Each encoding step with the encoded columns it gets, in the plan's order."""
    chosen = encoding_of(steps, categorical)
    groups = [(s, [c for c in categorical if chosen.get(c) is s])
              for s in steps if s.kind == "encode"]
    return [(s, columns) for s, columns in groups if columns]


def encoder_params(step: Step) -> dict[str, Any]:
    """An encoding step's parameters for its encoder: all but the columns it names."""
    return {k: v for k, v in step.params if k != "columns"}


def _side_by_side(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The synthetic rows of each encoder side by side, each padded with its first row to
    the longest (a repeated row never turns an infrequent value frequent: it is the first,
    a frequent one)."""
    length = max(len(f) for f in frames)
    padded = [f.iloc[[*range(len(f)), *[0] * (length - len(f))]].reset_index(drop=True)
              for f in frames]
    return pd.concat(padded, axis=1)


def check_summary(summary: Summary, features: list[str], plan: Plan, task: str) -> None:
    """Refuse data the estimator cannot learn from, naming the culprit columns."""
    if summary.rows == 0:
        raise DataError("the data has no rows (after WHERE, if any)")
    moments = summary.moments
    if not any(s.kind == "impute" for s in plan.steps):
        nan = moments.nan_count - summary.infinite  # infinities are left out of the moments too
        missing = {c: int(k) for c, k in zip(features, nan) if k}
        if missing:
            raise DataError(
                f"missing values (NaN) in feature column(s) {missing}: add an imputer "
                "(.impute('mean') / IMPUTE mean) or drop those rows first"
            )
    infinite = {c: int(k) for c, k in zip(features, summary.infinite) if k}
    if infinite:
        raise DataError(f"infinite values in feature column(s) {infinite}; clean or clip them first")
    if plan.target is not None and summary.target_missing:
        raise DataError(
            f"the target column {plan.target!r} has {summary.target_missing} missing value(s); "
            "drop those rows first (e.g. WHERE "
            f"{plan.target} IS NOT NULL / ddf.dropna(subset=[{plan.target!r}]))"
        )
    if plan.target is not None and summary.target_infinite:
        raise DataError(
            f"the target column {plan.target!r} has {summary.target_infinite} infinite "
            f"value(s), which no model can learn; drop or clip those rows first (e.g. WHERE "
            f"{plan.target} BETWEEN -1e300 AND 1e300 / ddf[ddf[{plan.target!r}].abs() < 1e300])"
        )
    if task == "classification" and summary.labels is not None and len(summary.labels) < 2:
        raise DataError(
            f"the target column {plan.target!r} holds a single class "
            f"({summary.labels.tolist()}); a classifier needs at least two"
        )


def fit_steps(steps: tuple[Step, ...], summary: Summary,
              features: list[str]) -> list[tuple[str, Any]]:
    """Each preprocessing step fitted from the statistics of its input, as scikit-learn objects.

    Steps are affine or fill missing values, so the moments each step hands the next are
    derived exactly from the one statistics pass.
    """
    fitted, moments, names = [], summary.moments, set()
    for step in steps:
        if step.kind == "impute":
            empty = [c for c, k in zip(features, moments.count) if k == 0]
            if empty:
                raise DataError(f"feature column(s) {empty} hold no values at all: nothing to "
                                "impute from; leave them out")
            imputer = fitted_imputer(step.method, moments, summary.quantiles)
            moments = moments.filled(imputer.statistics_)
            transformer = imputer
        elif step.kind == "scale":
            scaler = SCALERS[step.method](**dict(step.params)).fit_moments(moments)
            moments = moments.affine(*scaler.affine())
            transformer = scaler.to_sklearn()
        else:
            raise ParameterError(f"the {step.kind} step ({step.method}) is not available yet")
        name = step.kind if step.kind not in names else f"{step.kind}_{len(fitted)}"
        names.add(name)
        fitted.append((name, transformer))
    return fitted


def fit_reduction(step: Step, parts: list, steps: list[tuple[str, Any]], plan: Plan,
                  progress: bool) -> Any:
    """``REDUCE pca n``: IncrementalPCA fitted by its own ``partial_fit`` pass over the
    preprocessed blocks (a projection needs the scaled data, so it cannot join the
    statistics pass)."""
    from sklearn.decomposition import IncrementalPCA

    pca = IncrementalPCA(**dict(step.params))
    recipe = BlockRecipe(prep=Pipeline(steps), target=None, labels=None,
                         block_rows=plan.stream.block_rows, holdout=plan.stream.holdout,
                         finite=True)
    train(pca, parts, recipe, TrainOptions(prefetch=plan.stream.prefetch, progress=progress,
                                                 name="reduce"))
    return pca


@dataclass(frozen=True)
class Fitted:
    """What a fit produced: the fitted pipeline and what the engine learned about it. The
    faces hand it to :class:`oocml.Model`; the engine knows nothing of the product."""

    pipeline: Pipeline
    features: list[str]
    target: str | None
    task: str
    classes: list | None
    plan: dict
    info: dict


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


@dataclass(frozen=True)
class Training:
    """The outcome of the training passes."""

    estimator: Any
    record: TrainingLog
    monitor: HoldoutMonitor | None
    workers: int
    cached: bool = False  # epochs after the first read every partition from the block cache
    search: Any = None  # TUNE: the SearchMonitor, which knows every candidate's story


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


def check_sparse_input(plan: Plan, estimator: Any) -> None:
    """ENCODE hash and text make sparse blocks: refuse an estimator that cannot take them
    (GaussianNB) by name, before any read, rather than with its own error mid-training."""
    from sklearn.utils import get_tags

    hashed = [s.method for s in plan.steps if s.kind == "encode" and s.method in SPARSE_ENCODINGS]
    if hashed and not get_tags(estimator).input_tags.sparse:
        raise ParameterError(f"{type(estimator).__name__} needs dense rows, but ENCODE "
                             f"{hashed[0]} makes sparse ones: train multinomial_nb, bernoulli_nb, "
                             "sgd or another algorithm that takes them (SHOW ALGORITHMS), or "
                             "encode with onehot / ordinal")


def check_numeric_target(frame: dd.DataFrame, target: str) -> None:
    """A regressor learns numbers: refuse a target column of strings or categories by name."""
    dtype = make_meta(frame)[target].dtype
    if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
        raise DataError(f"the target column {target!r} holds {dtype} values, but a regressor "
                        "needs a numeric target; convert it, or train a classifier")


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
                                  copy=copy, texts=texts or None)
    check_summary(summary, prepared.numeric, plan, prepared.task)
    seconds = time.perf_counter() - start
    log.info("statistics pass: %d rows, %d partitions, %.2fs", summary.rows,
             len(summary.partition_rows), seconds)
    classes = np.asarray(plan.classes) if plan.classes is not None else summary.labels
    return summary, classes, seconds


def preprocess(prepared: Prepared, summary: Summary) -> list[tuple[str, Any]]:
    """The fitted steps before the estimator (a reduction by its own pass, if planned)."""
    plan = prepared.plan
    steps = preprocessing(plan, summary, prepared.numeric, prepared.categorical,
                          make_meta(prepared.frame))
    reduction = next((s for s in plan.steps if s.kind == "reduce"), None)
    if reduction is not None:
        steps.append(("reduce", fit_reduction(reduction, prepared.parts, steps, plan,
                                              prepared.progress)))
    return steps


def train_estimator(prepared: Prepared, summary: Summary, steps: list[tuple[str, Any]],
                    classes: np.ndarray | None, storage_options: dict | None = None) -> Training:
    """Stream the prepared blocks to ``partial_fit``, epoch by epoch (with holdout scoring,
    checkpoints, averaging or TUNE's candidates, as planned)."""
    plan, task, estimator = prepared.plan, prepared.task, prepared.estimator
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
        cache=cache, epochs=stream.epochs, shuffle=stream.shuffle, seed=plan.random_state,
        prefetch=stream.prefetch, fit_params={"classes": classes} if labels is not None else {},
        progress=prepared.progress,
        progressive=task if monitor is not None and task != "clustering" else None,
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
    """The :class:`Fitted` result: the whole pipeline, and what the fit did (``info``)."""
    plan, record, monitor = prepared.plan, training.record, training.monitor
    reduced = any(s.kind == "reduce" for s in plan.steps)
    info = {"rows_seen": record.rows_seen, "epochs": record.epochs,
            "blocks_seen": record.blocks_seen, "partitions": len(summary.partition_rows),
            "rows": summary.rows, "strategy": plan.stream.strategy,
            "workers": training.workers,
            "passes": 1 if prepared.parsed else (
                1 + reduced + (1 if training.cached else record.epochs)
                + (record.epochs if monitor or training.search else 0)),
            "parsed_once": prepared.parsed,
            "cached_epochs": record.epochs - 1 if training.cached else 0,
            "stats_seconds": round(stats_seconds, 6),
            "train_seconds": round(record.seconds, 6), "history": record.history}
    if monitor is not None:
        info.update(holdout=plan.stream.holdout, best_epoch=monitor.best_epoch,
                    holdout_score=round(monitor.best_score, 6),
                    stopped_early=monitor.stopped_early)
    if training.search is not None:
        searched = training.search
        winner = searched.winner()
        best = searched.trials[winner]
        info.update(holdout=plan.stream.holdout, best_epoch=best.best_epoch,
                    holdout_score=round(best.best_score, 6), best_candidate=winner,
                    best_params=best.params, search=trial_records(searched))
    return Fitted(Pipeline([*steps, ("model", training.estimator)]), features=prepared.features,
                  target=plan.target, task=prepared.task,
                  classes=None if classes is None else classes.tolist(), plan=plan.as_dict(),
                  info=info)
