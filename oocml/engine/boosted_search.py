"""TUNE for boosted trees: every candidate trains on the same two matrices, built once, and the
candidates are halved by holdout score at rungs of boosting rounds (successive halving on the
number of trees, as scikit-learn's ``HalvingGridSearchCV`` does with ``resource``).

Rules:
- With ``R`` rungs (one per halving, and a last one), rung ``r`` (0-based) trains each live
  candidate up to ``ceil(n_estimators * eta**(r - R + 1))`` rounds of its own
  ``n_estimators``; after it, the best ``1/eta`` by the holdout score of their last round go
  on, and the last rung trains the survivors to all their rounds.
- Each candidate keeps its own ``Booster`` between rungs and grows it with ``update``, as
  ``xgboost.train`` does: its trees are, bit for bit, those it would grow alone (continuing
  from a saved model would reseed its sampling).
- The holdout score is that of every oocml model (accuracy, R^2), after every round; with a
  patience, a candidate whose holdout loss (XGBoost's early-stopping metric, the last one) has
  not improved for ``patience`` rounds stops, its predictions cut at its best round.
- Memory: each live candidate holds XGBoost's per-row state (predictions, gradients) for the
  two matrices; halving frees the dropped ones' state at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..boosting import xgboost
from ..errors import TrainingInterrupted
from ..progress import PassLine
from .search import Trial, search_choice, survivors, winner


def rung_count(candidates: int, eta: int) -> int:
    """Rungs of a search over ``candidates``: one per halving, and the last."""
    rungs, live = 1, candidates
    while live > 1:
        live, rungs = survivors(live, eta), rungs + 1
    return rungs


def rung_rounds(rounds: int, rung: int, rungs: int, eta: int) -> int:
    """The rounds a candidate of ``rounds`` has grown by the end of ``rung``."""
    return max(1, math.ceil(rounds * eta ** (rung - rungs + 1)))


@dataclass
class _Candidate:
    """One candidate under training: its estimator (parameters), booster and story."""

    estimator: Any
    booster: Any
    trial: Trial
    metrics: dict[str, list[float]] = field(default_factory=dict)
    best_loss: float = math.inf
    best_round: int = 0
    stopped: bool = False


@dataclass(frozen=True)
class BoostedSearch:
    """What the search returns: the winner's estimator and booster, its rounds' metrics, and
    every trial (with :func:`choice` the report's record of it)."""

    estimator: Any
    booster: Any
    metrics: dict[str, list[float]]
    trials: list[Trial]

    def choice(self, holdout: float) -> dict[str, Any]:
        return search_choice(self.trials, holdout)


def tune_boosted(candidates: tuple[list[dict], list[Any]], train: Any, valid: Any, params_of: Any,
                 eta: int, patience: int | None, score: Any, progress: bool) -> BoostedSearch:
    """Successive halving of the candidates (``(params, estimators)``) on the matrices;
    ``params_of(estimator)`` gives ``xgboost.train``'s parameters, ``score(metrics, round)``
    a round's holdout score."""
    params, estimators = candidates
    rungs = rung_count(len(estimators), eta)
    live = [_Candidate(e, xgboost.Booster(params_of(e), [train, valid]), Trial(p))
            for p, e in zip(params, estimators, strict=True)]
    pool = list(live)
    line = PassLine(f"tune ({len(pool)} candidates, {rungs} rungs of rounds)",
                    _planned(estimators, rungs, eta), progress, unit="rounds")
    try:
        for rung in range(rungs):
            for candidate in live:
                target = rung_rounds(candidate.estimator.rounds, rung, rungs, eta)
                _grow(candidate, train, valid, target, patience, score, line)
            live = _halve(live, rung, rungs, eta)
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"tuning interrupted after {line.done} boosting rounds; the "
                                  "model was not kept") from None
    finally:
        line.close()
    best = pool[winner([c.trial for c in pool])]
    if patience is not None:  # as xgboost.train's early stopping leaves it: cut at the best
        best.booster.set_attr(best_iteration=str(best.best_round),
                              best_score=str(best.best_loss))
    best.booster.set_attr(rounds_planned=str(best.estimator.rounds))
    return BoostedSearch(best.estimator, best.booster, best.metrics, [c.trial for c in pool])


def _planned(estimators: list[Any], rungs: int, eta: int) -> int:
    """The rounds the schedule trains if no candidate stops early (the progress line's total):
    candidates are dropped in order of their rounds as the worst case."""
    alive = sorted(estimators, key=lambda e: -e.rounds)
    total, grown = 0, [0] * len(alive)
    for rung in range(rungs):
        for k, estimator in enumerate(alive):
            target = rung_rounds(estimator.rounds, rung, rungs, eta)
            total, grown[k] = total + target - grown[k], target
        keep = survivors(len(alive), eta)
        alive, grown = alive[:keep], grown[:keep]
    return total


def _grow(candidate: _Candidate, train: Any, valid: Any, target: int, patience: int | None,
          score: Any, line: PassLine) -> None:
    """Boost ``candidate`` up to ``target`` rounds, scoring each on the holdout, unless its
    patience runs out first; then its score is that of the round it would predict with (its
    best with a patience, else its last)."""
    booster, trial = candidate.booster, candidate.trial
    while not candidate.stopped and booster.num_boosted_rounds() < target:
        k = booster.num_boosted_rounds()
        booster.update(train, k)
        for metric, value in _parsed(booster.eval_set([(valid, "holdout")], k)):
            candidate.metrics.setdefault(metric, []).append(value)
        trial.rows_seen = int(train.num_row())  # every round sees every training row
        line.advance()
        loss = next(reversed(candidate.metrics.values()))[-1]
        if loss < candidate.best_loss:
            candidate.best_loss, candidate.best_round = loss, k
        elif patience is not None and k - candidate.best_round >= patience:
            candidate.stopped = True
            trial.dropped_after, trial.reason = k + 1, "patience"
    chosen = candidate.best_round if patience is not None else booster.num_boosted_rounds() - 1
    trial.best_epoch, trial.best_score = chosen + 1, score(candidate.metrics, chosen)
    trial.scores.append(round(trial.best_score, 6))


def _parsed(evaluation: str) -> list[tuple[str, float]]:
    """``[k]\\tholdout-error:0.1\\tholdout-logloss:0.3`` as [(error, 0.1), (logloss, 0.3)]."""
    pairs = []
    for item in evaluation.split()[1:]:
        name, value = item.rsplit(":", 1)
        pairs.append((name.split("-", 1)[1], float(value)))
    return pairs


def _halve(live: list[_Candidate], rung: int, rungs: int, eta: int) -> list[_Candidate]:
    """The candidates that go on after ``rung``: the best ``1/eta`` by their last score (ties:
    the first), less those stopped by patience; the others' boosters are freed."""
    if rung == rungs - 1:
        return live
    keep = survivors(len(live), eta)
    ranked = sorted(live, key=lambda c: -c.trial.scores[-1])
    going = [c for c in ranked[:keep] if not c.stopped]
    for candidate in ranked[keep:]:
        if not candidate.stopped:
            candidate.trial.dropped_after = candidate.booster.num_boosted_rounds()
            candidate.trial.reason = "halved"
        candidate.booster = _frozen(candidate.booster)
    return [c for c in live if c in going]


def _frozen(booster: Any) -> Any:
    """A copy of a dropped candidate's trees without its per-row state (freed with it)."""
    return xgboost.Booster(model_file=bytearray(booster.save_raw("ubj")))
