"""UPDATE: continue training a fitted model on new data, its preprocessing kept as fitted.

The estimator continues from its state (SGD's ``t_`` and averages, an MLP's optimizer, naive
Bayes' counts); the fitted steps stay, since the weights are in their units, so a category
the encoder never saw goes where it already sends unknown values. One statistics pass over
the new data checks its columns, values and labels before any training: a label the model
does not know is refused by name. The training pass predicts each block before training on
it (test-then-train), and that score of the first epoch is the update's score. Fit on A,
then update on B, gives the model of one stream over A then B, bit for bit.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from ..errors import ParameterError, UnseenLabelError
from ..estimators import is_boosted
from ..io.lineage import seen_files, unseen_parts
from ..plan import Condition, Plan, Source, conjunction
from ..report import LineageStep
from .fit import Fitted, fit_result, prepare, statistics, train_estimator


@dataclass(frozen=True)
class Start:
    """What an update continues from: a fitted model's parts (the engine knows no Model)."""

    pipeline: Pipeline
    features: list[str]
    target: str | None
    task: str
    classes: list | None
    plan: Plan | None
    searched: bool  # chosen by a TUNE search
    lineage: tuple[LineageStep, ...]


def update_fit(start: Start, data: Any, *, source: Source | None = None,
               where: Condition | None = None, epochs: int = 1, shuffle: bool = False,
               shuffle_window: int | None = None, seed: int | None = None, new: bool = False,
               include_changed: bool = False, progress: bool | None = None) -> Fitted | None:
    """Train ``start``'s estimator further on ``data`` (a copy: ``start`` is not changed), on
    the rows its own WHERE and ``where`` keep; with ``new``, only on the partitions whose files
    its lineage does not hold (None when there is none). ``source`` is what the lineage
    records (None: a DataFrame); ``seed`` seeds SHUFFLE (None: the model's own seed)."""
    plan = _update_plan(start, source, where, epochs, shuffle, shuffle_window, seed)
    prepared = prepare(plan, data, progress)  # validates the plan: epochs, window, seed
    if new:
        fresh = unseen_parts(prepared.parts, seen_files(start.lineage), include_changed)
        if not fresh:
            return None
        prepared = replace(prepared, parts=[prepared.parts[i] for i in fresh])
    prepared = replace(prepared, estimator=copy.deepcopy(start.pipeline[-1]), warm=True)
    summary, labels, stats_seconds = statistics(prepared)
    classes = None if start.classes is None else np.asarray(start.classes)
    if classes is not None and labels is not None:
        unseen = np.setdiff1d(labels, classes)
        if unseen.size:
            raise UnseenLabelError(
                f"the target column {start.target!r} holds value(s) {unseen.tolist()[:10]} the "
                f"model does not know (its classes: {classes.tolist()[:20]}); nothing was trained. "
                "A new class needs a new model: TRAIN OR REPLACE ... on all the data")
    steps = list(start.pipeline.steps[:-1])
    training = train_estimator(prepared, summary, steps, classes)
    return fit_result(prepared, summary, steps, classes, training, stats_seconds)


def _update_plan(start: Start, source: Source | None, where: Condition | None, epochs: int,
                 shuffle: bool, shuffle_window: int | None, seed: int | None) -> Plan:
    """The model's plan, to continue: its columns as fitted, the new source, the update's
    rows, epochs and shuffling (``seed``: None keeps the model's), every row trained on (no
    holdout, checkpoint or search)."""
    check_continuable(start)
    plan = start.plan
    stream = replace(plan.stream, epochs=epochs, shuffle=bool(shuffle),
                     shuffle_window=shuffle_window, holdout=None, patience=None,
                     checkpoint=None, checkpoint_every=None, resume=False, strategy="sequential")
    return replace(plan, source=source, name=None, features=tuple(start.features), exclude=(),
                   classes=None, stream=stream, search=None, where=conjunction(plan.where, where),
                   random_state=plan.random_state if seed is None else seed)


def check_continuable(start: Start) -> None:
    """Refuse, saying what to do instead, a model whose training cannot continue."""
    estimator = start.pipeline[-1]
    name = type(estimator).__name__
    retrain = "train a new model on all the data with TRAIN OR REPLACE (fit_incremental)"
    if start.plan is None:
        raise ParameterError(f"this {name} model keeps no training plan (it was loaded from a "
                             f"file of an older oocml, or built by hand); {retrain}")
    if start.searched:
        raise ParameterError(
            "this model was chosen by TUNE, whose other candidates were not kept; train the "
            "chosen parameters as a model of their own (TRAIN ... WITH (...), see SHOW TRIALS) "
            "and UPDATE that one")
    if is_boosted(estimator):
        raise ParameterError(f"boosted trees ({name}) grow from the whole data and cannot continue "
                             f"from new rows alone; {retrain}")
    if not hasattr(estimator, "partial_fit"):
        raise ParameterError(f"{name} has no partial_fit, so its training cannot continue; "
                             f"{retrain}")
