"""Per-row explanations (``PREDICT EXPLAIN`` / :meth:`oocml.Model.explain`): each row's
prediction split into a baseline and one contribution per prepared feature, of which the
``top`` largest by absolute value are kept, as BigQuery ML's ``ML.EXPLAIN_PREDICT`` does.

Rules:
- Everything is in the model's *margin*, the number before any link function: the log-odds of
  the second (positive) class for a binary classifier, the explained class's raw score (the
  input of the softmax, or of the argmax) for a multiclass one, the value for a regressor
  (XGBoost: before its objective's link, e.g. the log of a Poisson rate). Row by row,
  ``baseline + sum of every contribution == margin``; ``top`` keeps only the largest.
- A binary classifier explains its positive class whatever it predicts; a multiclass one
  explains the class it predicts (``prediction``).
- Boosted trees: XGBoost's exact TreeSHAP (``pred_contribs``), on the trees the model predicts
  with (up to its best round after early stopping); ``baseline`` is XGBoost's bias column, the
  expected margin as the trees' covers weigh the training rows. Sums hold to float32 rounding.
- Linear models: ``contribution_i = coef_i * (x_i - m_i)`` on the prepared (scaled) row ``x``,
  ``baseline = intercept + coef . m``: ``m`` is the reference point of :func:`reference`, the
  training mean of each prepared column where it is known exactly (a standard-scaled column
  and a PCA component average 0 over the training rows; so do the means a fit records) and 0
  elsewhere, where a contribution is then measured from zero in prepared units.
- Other estimators are refused by name, with what they offer instead.
- Memory is bounded whatever the data: a partition is read a batch at a time, and each batch
  explained at most ``EXPLAIN_ROWS`` rows at a time, fewer when a row's contributions are
  wide, so that one step's contributions stay under ``EXPLAIN_BYTES``; only the top ``k``
  of each row are kept. TreeSHAP is slow (400-800 us a row for 100 trees of depth 6).
- Order: largest ``|contribution|`` first, ties in feature order (beyond ``SORT_LIMIT``
  features, which of several tied at the k-th place are kept is arbitrary but fixed);
  ``top`` is capped at the number of prepared features.
"""

from __future__ import annotations

from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from dask.dataframe.utils import make_meta
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ..blocks import prepared_rows, unusable
from ..errors import ColumnNotFoundError, ParameterError
from ..estimators import is_boosted
from ..io.partitions import FilePart, batches, partitions
from ..plan_rules import whole_number
from .inspection import ALTERNATIVES, feature_names

__all__ = ["explain", "explain_block", "explain_part", "reference", "method_text"]

EXPLAIN_ROWS = 10_000  # rows explained in one step (TreeSHAP: several seconds of work)
EXPLAIN_BYTES = 64 << 20  # at most this many bytes of contributions in one step
SORT_LIMIT = 4096  # up to this many features, a stable sort orders every row's contributions
LINEAR = "linear models (sgd, sgd_regressor, perceptron, passive_aggressive*)"
TREES = "boosted trees (xgboost, xgboost_regressor)"


class Explainer:
    """What every partition needs to explain its rows. A plain class, not a dataclass, so that
    dask hands it to each task as it is (it looks inside dataclasses for collections)."""

    def __init__(self, model: Any, top: int, keep: tuple, dtype: Any):
        self.pipeline, self.features = model.pipeline, list(model.features)
        self.names = np.asarray(feature_names(model), dtype=object)
        self.trees = is_boosted(model.estimator)
        self.top, self.keep, self.dtype = min(top, len(self.names)), keep, dtype
        self.means = None if self.trees else reference(model)["value"].to_numpy(np.float64)

    @property
    def columns(self) -> list[str]:
        """The output's columns, before the kept ones."""
        pairs = [[f"feature_{i}", f"contribution_{i}"] for i in range(1, self.top + 1)]
        return ["prediction", "baseline", *[c for pair in pairs for c in pair]]


# -- the entry point -------------------------------------------------------------------------------

def explain(model: Any, data: Any, top: int = 3, keep: list[str] | tuple = (),
            dtype: Any = None) -> Any:
    """Each row's prediction, baseline and ``top`` largest contributions (see the module), plus
    ``keep`` columns: lazy, one partition at a time, for dask input; pandas in, pandas out.
    ``dtype`` is the prediction column's (the model's ``predict``)."""
    check_explainable(model)
    top = whole_number("top", top, 1)
    keep = tuple(keep)
    missing = [c for c in keep if c not in data.columns]
    if missing:
        raise ColumnNotFoundError(missing[0], list(data.columns), role="kept column")
    model.check_columns(data)
    explainer = Explainer(model, top, keep, np.dtype(np.float64) if dtype is None else dtype)
    taken = [c for c in keep if c in explainer.columns]
    if taken:
        raise ParameterError(f"kept column {taken[0]!r} has the name of an output column; "
                             "rename it first")
    if not isinstance(data, dd.DataFrame):
        return explain_block(data, explainer)
    meta = explain_block(make_meta(data), explainer)
    needed = model.features + [c for c in keep if c not in model.features]
    parts = partitions(data[needed])
    if parts and isinstance(parts[0], FilePart):  # read and explained a batch at a time
        return dd.from_map(explain_part, parts, args=(explainer,), meta=meta,
                           enforce_metadata=False)
    return data.map_partitions(explain_block, explainer, meta=meta, align_dataframes=False)


def check_explainable(model: Any) -> None:
    """Refuse a model without per-row contributions, naming what it offers instead."""
    estimator = model.estimator
    if is_boosted(estimator) or _is_linear(estimator):
        return
    name = type(estimator).__name__
    offer = next((text for attribute, text in ALTERNATIVES if hasattr(estimator, attribute)),
                 "its predictions")
    proba = "; PREDICT PROBA gives its class probabilities" if hasattr(
        estimator, "predict_proba") else ""
    raise ParameterError(f"{name} gives no per-row contributions: PREDICT EXPLAIN "
                         f"(model.explain) is for {TREES} and {LINEAR}; {name} offers {offer}"
                         f"{proba}")


def _is_linear(estimator: Any) -> bool:
    """A fitted linear model whose margin is ``X @ coef_.T + intercept_``."""
    return hasattr(estimator, "coef_") and hasattr(estimator, "intercept_")


# -- one partition ---------------------------------------------------------------------------------

def explain_part(part: Any, explainer: Explainer) -> pd.DataFrame:
    """:func:`explain_block` on a partition, a batch at a time."""
    return pd.concat([explain_block(frame, explainer) for frame in batches(part)])


def explain_block(frame: pd.DataFrame, explainer: Explainer) -> pd.DataFrame:
    """The explanations of ``frame``'s rows (its index kept), ``EXPLAIN_ROWS`` at a time."""
    n, k = len(frame), explainer.top
    prediction = np.empty(n, dtype=object)
    baseline, values = np.empty(n), np.empty((n, k))
    chosen = np.empty((n, k), dtype=np.int64)
    if n:
        try:  # data the model cannot take (missing values and no imputer) refused by name
            _explain_rows(explainer, frame, prediction, baseline, chosen, values)
        except ValueError as exc:
            raise unusable(frame[explainer.features], exc) from exc
    return _frame(frame, explainer, prediction, baseline, chosen, values)


def _explain_rows(explainer: Explainer, frame: pd.DataFrame, *out: np.ndarray) -> None:
    """Fill ``out`` (prediction, baseline, chosen, values), one step of rows at a time."""
    X = prepared_rows(explainer.pipeline[:-1], frame[explainer.features])
    X = X.tocsr() if sp.issparse(X) else X  # sliced by rows
    step = _step_rows(explainer, X.shape[1])
    for start in range(0, len(frame), step):
        rows = slice(start, min(start + step, len(frame)))
        for array, part in zip(out, _explained(explainer, X[rows])):
            array[rows] = part


def _step_rows(explainer: Explainer, width: int) -> int:
    """Rows per step: ``EXPLAIN_ROWS``, fewer when their contributions would pass
    ``EXPLAIN_BYTES``: float32 per class and feature for trees; for linear models, three
    float64 arrays of the rows' width (the dense rows, their weights, the products)."""
    estimator = explainer.pipeline[-1]
    classes = len(getattr(estimator, "classes_", ())) if explainer.trees else 1
    per_row = (width + 1) * (4 * max(classes, 1) if explainer.trees else 3 * 8)
    return int(max(1, min(EXPLAIN_ROWS, EXPLAIN_BYTES // per_row)))


def _explained(explainer: Explainer, X: Any) -> tuple:
    """(prediction, baseline, top feature positions, their contributions) of rows ``X``."""
    estimator = explainer.pipeline[-1]
    prediction = np.asarray(estimator.predict(X))
    explained = _explained_class(estimator, prediction)
    if explainer.trees:
        baseline, contributions = _tree_contributions(estimator, X, explained)
    else:
        baseline, contributions = _linear_contributions(estimator, X, explained,
                                                        explainer.means)
    chosen, values = top_features(contributions, explainer.top)
    return prediction, baseline, chosen, values


def _explained_class(estimator: Any, prediction: np.ndarray) -> np.ndarray | None:
    """The position of each row's predicted class among ``classes_`` for a multiclass model;
    None for a regressor or a binary classifier, whose one margin is explained."""
    classes = getattr(estimator, "classes_", None)
    if classes is None or len(classes) <= 2:
        return None
    return pd.Index(np.asarray(classes)).get_indexer(prediction)


def _frame(frame: pd.DataFrame, explainer: Explainer, prediction: np.ndarray,
           baseline: np.ndarray, chosen: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """The output frame: prediction, baseline, then each feature and its contribution."""
    dtype = explainer.dtype
    as_numpy = dtype if isinstance(dtype, np.dtype) else np.dtype(object)  # string labels
    columns: dict[str, Any] = {
        "prediction": pd.Series(prediction.astype(as_numpy), index=frame.index, dtype=dtype),
        "baseline": pd.Series(baseline, index=frame.index)}
    for i in range(explainer.top):
        columns[f"feature_{i + 1}"] = pd.Series(explainer.names[chosen[:, i]], index=frame.index,
                                                dtype="string")
        columns[f"contribution_{i + 1}"] = pd.Series(values[:, i], index=frame.index)
    out = pd.DataFrame(columns, index=frame.index)
    return pd.concat([out, frame[list(explainer.keep)]], axis=1) if explainer.keep else out


# -- the two methods -------------------------------------------------------------------------------

def _tree_contributions(estimator: Any, X: Any,
                        explained: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(baseline, contributions) from XGBoost's TreeSHAP, on the rounds ``predict`` uses."""
    import xgboost

    booster = estimator.get_booster()
    matrix = xgboost.DMatrix(X, missing=estimator.missing, feature_names=booster.feature_names,
                             feature_types=booster.feature_types)
    raw = booster.predict(matrix, pred_contribs=True, iteration_range=_rounds(estimator))
    if raw.ndim == 3:  # (rows, classes, features + bias): the explained class's
        raw = raw[np.arange(len(raw)), explained]
    raw = raw.astype(np.float64)
    return raw[:, -1], raw[:, :-1]


def _rounds(estimator: Any) -> tuple[int, int]:
    """The trees ``predict`` uses, as XGBoost's estimators choose them: up to the best round
    after early stopping, else all."""
    try:
        return 0, int(estimator.best_iteration) + 1
    except AttributeError:
        return 0, 0


def _linear_contributions(estimator: Any, X: Any, explained: np.ndarray | None,
                          means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(baseline, contributions): ``intercept + coef . m`` and ``coef * (x - m)``."""
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    intercept = np.broadcast_to(np.asarray(estimator.intercept_, np.float64),
                                (coef.shape[0],))
    rows = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    which = np.zeros(len(rows), dtype=np.int64) if explained is None else explained
    weights = coef[which]
    return intercept[which] + weights @ means, weights * (rows - means)


# -- ordering --------------------------------------------------------------------------------------

def top_features(contributions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, values) of each row's ``k`` largest contributions by absolute value, the
    largest first, ties in feature order (see the module for wide rows)."""
    size = np.abs(contributions)
    if contributions.shape[1] <= SORT_LIMIT:
        chosen = np.argsort(-size, axis=1, kind="stable")[:, :k]
    else:
        chosen = np.sort(np.argpartition(-size, k - 1, axis=1)[:, :k], axis=1)
        order = np.argsort(-np.take_along_axis(size, chosen, axis=1), axis=1, kind="stable")
        chosen = np.take_along_axis(chosen, order, axis=1)
    return chosen, np.take_along_axis(contributions, chosen, axis=1)


# -- the reference point of a linear model ---------------------------------------------------------

def reference(model: Any) -> pd.DataFrame:
    """The point a linear model's contributions are measured from, one row per prepared
    feature: ``value`` and ``training_mean`` (whether ``value`` is that column's mean over the
    training rows). A fit that records the prepared means (``report.prepared_means``) gives
    every one; otherwise the fitted steps give those of standard-scaled columns and PCA
    components (0), and the rest are 0, not their mean (min-max and max-abs scalers, encoded
    and unscaled columns: their means are not kept)."""
    names = feature_names(model)
    recorded = getattr(model.report, "prepared_means", None)
    if recorded is not None and len(recorded) == len(names):
        values, exact = np.asarray(recorded, dtype=np.float64), np.ones(len(names), dtype=bool)
    else:
        values, exact = np.zeros(len(names)), _centred(model, len(names))
    return pd.DataFrame({"value": values, "training_mean": exact},
                        index=pd.Index(names, name="feature"))


def _centred(model: Any, width: int) -> np.ndarray:
    """Whether each prepared column averages 0 over the training rows, from the fitted steps."""
    centred = np.zeros(len(model.features), dtype=bool)
    for _, step in model.pipeline.steps[:-1]:
        if isinstance(step, ColumnTransformer):
            centred = _columns_centred(step)
        else:
            centred = _step_centred(step, centred)
    return centred if len(centred) == width else np.zeros(width, dtype=bool)


def _columns_centred(transformer: ColumnTransformer) -> np.ndarray:
    centred = np.zeros(len(transformer.get_feature_names_out()), dtype=bool)
    for name, step, _ in transformer.transformers_:
        if name not in transformer.output_indices_ or isinstance(step, str):
            continue  # dropped or passed through: not centred
        where = transformer.output_indices_[name]
        part = np.zeros(where.stop - where.start, dtype=bool)
        for _, inner in (step.steps if isinstance(step, Pipeline) else [(name, step)]):
            part = _step_centred(inner, part)
        centred[where] = part if len(part) == where.stop - where.start else False
    return centred


def _step_centred(step: Any, centred: np.ndarray) -> np.ndarray:
    """Which columns average 0 after ``step``, given which did before it. The engine fits a
    standard scaler's ``mean_`` from the training rows' moments after any imputation, and
    IncrementalPCA subtracts the mean of the rows it was fitted on: both give 0 exactly."""
    if isinstance(step, StandardScaler):
        return np.full(len(centred), bool(step.with_mean))
    if hasattr(step, "components_") and hasattr(step, "mean_"):
        return np.ones(len(step.components_), dtype=bool)
    if step is None or step == "passthrough" or (
            isinstance(step, FunctionTransformer) and step.func is None):
        return centred
    if isinstance(step, SimpleImputer) and step.strategy == "mean":
        return centred  # filling with the mean keeps it
    return np.zeros(len(centred), dtype=bool)


# -- EXPLAIN ---------------------------------------------------------------------------------------

def method_text(model: Any, top: int) -> str:
    """How EXPLAIN PREDICT EXPLAIN describes the work per row (refusing what cannot explain)."""
    check_explainable(model)
    k = f"the top {top} by |contribution|"
    if is_boosted(model.estimator):
        first, last = _rounds(model.estimator)
        rounds = (last - first) if last else model.estimator.get_booster().num_boosted_rounds()
        return (f"TreeSHAP per row over {rounds} boosting rounds (XGBoost pred_contribs, exact; "
                f"slow: about 0.4-0.8 ms a row for 100 trees of depth 6), at most "
                f"{EXPLAIN_ROWS:,} rows at a time; {k}")
    known = reference(model)["training_mean"]
    where = ("training means" if known.all() else "zero" if not known.any()
             else f"training means for {int(known.sum())} of {len(known)} features, else zero")
    return f"coef * (x - reference) per row, reference = {where}; {k}"
