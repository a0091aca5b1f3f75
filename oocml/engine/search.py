"""TUNE: many candidates trained on the same blocks, halved by their holdout score.

Each block is read, decoded and prepared once and every live candidate trains on it
(:class:`Candidates` stands in for the estimator in the ordinary training loop, so the
cache, shuffling, prefetching and progress all apply). After each epoch (a rung) one
parallel pass over the held-out rows scores every live candidate, preparing each batch
once; the best ``1 / reduction_factor`` of them go on (successive halving), and a
candidate whose score has not improved for ``patience`` rungs stops. A candidate's
model is the model it would be trained alone with the same seed on the same rows:
candidates share the blocks, never state.

Candidates train side by side on threads where that is faster: measured per estimator
family by ``benchmarks/gil.py`` (all but the MLPs, whose minibatch loop holds the GIL).
"""

from __future__ import annotations

import copy
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import pandas as pd

from ..blocks import prepared_rows
from ..errors import DataError, ParameterError
from ..estimators import build, spec_for
from ..evaluation.metrics import add, add_all, score_from_totals
from ..execution import compute, tree_reduce
from ..io.partitions import batches
from ..plan import Distribution, Plan, Search
from .validation import holdout_mask


def candidate_params(search: Search, seed: int | None) -> list[dict[str, Any]]:
    """The candidates' parameters: every grid point, or ``search.trials`` samples drawn with
    scikit-learn's ParameterSampler (seeded by the plan's ``random_state``)."""
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    space = {name: list(values) if isinstance(values, tuple) else _scipy(values)
             for name, values in search.space}
    if search.trials is None:
        return [dict(p) for p in ParameterGrid(space)]
    return [_plain(p) for p in ParameterSampler(space, n_iter=search.trials, random_state=seed)]


def _scipy(distribution: Distribution) -> Any:
    from scipy import stats

    low, high = distribution.low, distribution.high
    if distribution.kind == "loguniform":
        return stats.loguniform(low, high)
    if distribution.kind == "uniform":
        return stats.uniform(low, high - low)
    return stats.randint(int(low), int(high) + 1)  # both bounds included, as the language reads


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """numpy scalars from the sampler as Python numbers (they go into plans and model files)."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}


def candidate_estimators(plan: Plan) -> tuple[list[dict[str, Any]], list[Any]]:
    """Every candidate's parameters and a fresh estimator for each, every value checked by
    scikit-learn before any data is read."""
    params = candidate_params(plan.search, plan.random_state)
    base = plan.estimator.param_dict()
    estimators = []
    for p in params:
        try:
            estimators.append(build(spec_for(plan.estimator.qualname, {**base, **p},
                                              plan.random_state)))
        except ParameterError as exc:
            raise type(exc)(f"TUNE candidate {p}: {exc}") from None
    return params, estimators


def survivors(live: int, reduction_factor: int) -> int:
    """How many of ``live`` candidates a rung keeps: the best 1 / ``reduction_factor``, at
    least one (EXPLAIN's schedule and the search itself)."""
    return max(1, math.ceil(live / reduction_factor))


def threads_help(estimator: Any) -> bool:
    """Whether candidates of this kind train faster side by side on threads: measured by
    ``benchmarks/gil.py`` (1.5-2.3x on two cores for the SGD family, Perceptron, naive Bayes
    and MiniBatchKMeans); the MLPs' minibatch loop holds the GIL and is slower on threads."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    return not isinstance(estimator, MLPClassifier | MLPRegressor)


class Candidates:
    """The live candidates as one estimator: ``partial_fit`` trains each on the same block,
    on ``threads`` threads."""

    def __init__(self, estimators: list[Any], threads: int | None = None):
        self.estimators = estimators
        self.live = [True] * len(estimators)
        workers = threads or (os.cpu_count() or 1)
        self.threads = workers if all(map(threads_help, estimators)) else 1
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="oocml-tune") \
            if self.threads > 1 else None

    def partial_fit(self, X: Any, y: Any = None, **fit_params: Any) -> Candidates:
        alive = [e for e, on in zip(self.estimators, self.live) if on]
        fit = (lambda e: e.partial_fit(X, **fit_params)) if y is None else \
            (lambda e: e.partial_fit(X, y, **fit_params))
        if self._pool is None or len(alive) == 1:
            for estimator in alive:
                fit(estimator)
        else:
            list(self._pool.map(fit, alive))
        return self

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


def _add_each(a: list[dict], b: list[dict]) -> list[dict]:
    return [add(x, y) for x, y in zip(a, b)]


def _holdout_totals(part: Any, fraction: float, prep: Any, estimators: list, features: list,
                    target: str | None, task: str, classes: list | None) -> list[dict]:
    """Each estimator's holdout totals on one partition, every batch prepared once."""
    from ..evaluation.metrics import block_totals

    sums: list[list[dict]] = [[] for _ in estimators]
    for frame in batches(part):
        held = frame[holdout_mask(frame, fraction)]
        if task != "clustering" and held[target].hasnans:
            held = held[held[target].notna()]
        rows = prepared_rows(prep, held[features]) if len(held) else None
        for k, estimator in enumerate(estimators):
            sums[k].append(block_totals(held, _Prepared(estimator, rows), features, target,
                                        task, classes, scores=False))
    return [add_all(s) for s in sums]


class _Prepared:
    """An estimator seen through rows already prepared: ``predict(frame)`` predicts them."""

    def __init__(self, estimator: Any, rows: Any):
        self.estimator, self.rows = estimator, rows

    def predict(self, frame: pd.DataFrame) -> Any:
        return self.estimator.predict(self.rows)

    def score(self, frame: pd.DataFrame) -> float:
        return self.estimator.score(self.rows)


@dataclass
class Trial:
    """One candidate's story: its parameters, scores per rung, when it stopped and why."""

    params: dict[str, Any]
    scores: list[float] = field(default_factory=list)
    rows_seen: int = 0
    dropped_after: int | None = None  # the rung (epoch) after which it stopped training
    reason: str | None = None  # "halved" | "patience"
    best_score: float = -math.inf
    best_epoch: int = 0
    best_estimator: Any = None
    waited: int = 0


@dataclass
class SearchMonitor:
    """After each epoch: score every live candidate on the held-out rows (one parallel pass),
    keep the best ``1 / reduction_factor`` of them and those within patience; True (stop)
    when none is left to train."""

    candidates: Candidates
    trials: list[Trial]
    parts: list[Any]
    prep: Any
    features: list[str]
    target: str | None
    task: str
    classes: list | None
    fraction: float
    reduction_factor: int
    patience: int | None = None
    progress: bool = False

    def __call__(self, epoch: int, estimator: Any, entry: dict) -> bool:
        live = [k for k, on in enumerate(self.candidates.live) if on]
        frozen = [copy.deepcopy(self.candidates.estimators[k]) for k in live]
        sums = [dask.delayed(_holdout_totals)(p, self.fraction, self.prep, frozen, self.features,
                                              self.target, self.task, self.classes)
                for p in self.parts]
        (totals,) = compute(tree_reduce(sums, _add_each),
                            progress=f"holdout ({len(live)} candidates)" if self.progress else False)
        if totals[0]["n"] == 0:
            raise DataError(f"HOLDOUT {self.fraction} leaves no rows to validate on; "
                            "hold out a larger fraction")
        for k, model, total in zip(live, frozen, totals):
            self._score(k, epoch, model, score_from_totals(total, self.task, self.classes),
                        entry["rows"])
        self._halve(live, epoch)
        best = max(self.trials, key=lambda t: t.best_score)
        entry.update(holdout_rows=int(totals[0]["n"]), candidates=len(live),
                     holdout_score=round(best.best_score, 6))
        return not any(self.candidates.live)

    def _score(self, k: int, epoch: int, model: Any, score: float, rows: int) -> None:
        trial = self.trials[k]
        trial.scores.append(round(score, 6))
        trial.rows_seen += rows
        if score > trial.best_score:
            trial.best_score, trial.best_epoch, trial.best_estimator = score, epoch, model
            trial.waited = 0
        else:
            trial.waited += 1
            if self.patience is not None and trial.waited >= self.patience:
                self._drop(k, epoch, "patience")

    def _halve(self, scored: list[int], epoch: int) -> None:
        live = [k for k in scored if self.candidates.live[k]]
        keep = survivors(len(scored), self.reduction_factor)
        ranked = sorted(live, key=lambda k: (-self.trials[k].scores[-1], k))  # ties: the first
        for k in ranked[keep:]:
            self._drop(k, epoch, "halved")

    def _drop(self, k: int, epoch: int, reason: str) -> None:
        self.candidates.live[k] = False
        self.trials[k].dropped_after, self.trials[k].reason = epoch, reason

    def label(self) -> str:
        """The progress line's name: the live candidates and the best score so far."""
        live, total = sum(self.candidates.live), len(self.trials)
        best = (f", best holdout {max(t.best_score for t in self.trials):.4f}"
                if self.trials[0].scores else "")
        return f"tune ({live} of {total} candidates live{best})"

    def winner(self) -> int:
        """The candidate that went furthest, best score first (ties: the first candidate)."""
        return winner(self.trials)

    def estimator(self, k: int) -> Any:
        """Candidate ``k``'s model: its best epoch's with patience, else its last."""
        trial = self.trials[k]
        return trial.best_estimator if self.patience is not None else \
            self.candidates.estimators[k]


def winner(trials: list[Trial]) -> int:
    """The trial that went furthest, best score first (ties: the first candidate)."""
    furthest = max(len(t.scores) for t in trials)
    finalists = [k for k, t in enumerate(trials) if len(t.scores) == furthest]
    return max(finalists, key=lambda k: (trials[k].best_score, -k))


def search_choice(trials: list[Trial], holdout: float | None) -> dict[str, Any]:
    """What a search chose, for the report: the winner, its best epoch (round) and score, and
    every trial's record."""
    k = winner(trials)
    best = trials[k]
    return dict(holdout=holdout, best_epoch=best.best_epoch,
                holdout_score=round(best.best_score, 6), best_candidate=k,
                best_params=best.params, search=tuple(trial_records(trials)))


def start_search(prepared: Any, steps: list[tuple[str, Any]], classes: Any) -> SearchMonitor:
    """The monitor of a prepared fit's TUNE (``oocml.engine.fit.Prepared``): its
    ``candidates`` train in place of the estimator, it scores and halves them after each
    epoch, and knows every candidate's story."""
    from sklearn.pipeline import Pipeline

    plan, stream = prepared.plan, prepared.plan.stream
    params, estimators = prepared.candidates
    return SearchMonitor(Candidates(estimators), [Trial(p) for p in params], prepared.parts,
                         Pipeline(steps), prepared.features, plan.target, prepared.task,
                         None if classes is None else classes.tolist(), stream.holdout,
                         plan.search.reduction_factor, stream.patience, prepared.progress)


def trial_records(trials: list[Trial]) -> list[dict]:
    """The trials as plain JSON-friendly records (the model's ``info["search"]``)."""
    return [{"params": t.params, "scores": t.scores, "rows_seen": t.rows_seen,
             "best_score": round(t.best_score, 6) if t.scores else None,
             "best_epoch": t.best_epoch, "dropped_after": t.dropped_after, "reason": t.reason}
            for t in trials]
