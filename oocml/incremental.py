"""``oocml.Incremental``: any ``partial_fit`` estimator, fitted block-wise on dask (or in-memory) data.

dask-ml's style: ``make_pipeline(StandardScaler(), Incremental(SGDClassifier(), classes=[0, 1]))``.
Blocks stream through the same engine as ``.ml.fit_incremental`` (bounded
prefetch, epochs, seeded shuffling); prediction and scoring are block-wise and
lazy for dask input. It follows scikit-learn's estimator conventions and passes
``check_estimator``.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .engine.stream import BlockRecipe, TrainOptions, train
from .errors import DataError, ParameterError
from .estimators import task_of
from .model import Model

TARGET = "__oocml_target__"


def _inner_has(method: str):
    def check(self: Incremental) -> bool:
        inner = getattr(self, "estimator_", self.estimator)
        return hasattr(inner, method)

    return check


class Incremental(MetaEstimatorMixin, BaseEstimator):
    """Fit ``estimator`` with ``partial_fit`` over the blocks of X (partitions, chunks, or rows).

    Parameters
    ----------
    estimator : estimator with ``partial_fit``; cloned in ``fit``.
    classes : all target labels (classifiers). None: found with one extra pass over ``y``.
    epochs : passes over the data.
    shuffle : visit blocks, and rows inside each block, in a seeded random order.
    random_state : seeds shuffling, and the estimator when its own ``random_state`` is None.
    block_size : rows per ``partial_fit`` call (None: one call per partition or chunk;
        in-memory data is then a single block).
    prefetch : partitions (or chunks) loaded ahead of training, at most.
    """

    def __init__(self, estimator: Any = None, *, classes: Any = None, epochs: int = 1,
                 shuffle: bool = False, random_state: int | None = 0,
                 block_size: int | None = None, prefetch: int = 2):
        self.estimator = estimator
        self.classes = classes
        self.epochs = epochs
        self.shuffle = shuffle
        self.random_state = random_state
        self.block_size = block_size
        self.prefetch = prefetch

    # -- fitting --------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> Incremental:
        """Fit a clone of ``estimator`` on all blocks, ``epochs`` times."""
        estimator = self._fresh_estimator()
        self._fit(estimator, X, y, self.epochs, fit_params)
        return self

    def partial_fit(self, X: Any, y: Any = None, **fit_params: Any) -> Incremental:
        """One more pass of ``partial_fit`` over X's blocks, continuing from the current state."""
        estimator = getattr(self, "estimator_", None) or self._fresh_estimator()
        self._fit(estimator, X, y, 1, fit_params)
        return self

    def _fresh_estimator(self) -> Any:
        if self.estimator is None or not hasattr(self.estimator, "partial_fit"):
            raise ParameterError(
                f"Incremental needs an estimator with partial_fit, got {self.estimator!r}")
        estimator = clone(self.estimator)
        params = estimator.get_params(deep=False)
        if self.random_state is not None and params.get("random_state", 0) is None:
            estimator.set_params(random_state=self.random_state)
        return estimator

    def _fit(self, estimator: Any, X: Any, y: Any, epochs: int, fit_params: dict) -> None:
        classifier = is_classifier(estimator)
        if y is None and task_of(estimator) != "clustering":
            raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None")
        parts = _blocks(X, y, self.block_size)
        if classifier:
            classes = fit_params.pop("classes", None)
            if classes is None:
                classes = getattr(self, "classes_", None)
            if classes is None:
                classes = self.classes if self.classes is not None else _discover_classes(y)
            fit_params["classes"] = np.asarray(classes)
        recipe = BlockRecipe(prep=None, target=None, labels=None, block_rows=self.block_size)
        record = train(estimator, parts, recipe,
                       TrainOptions(epochs=epochs, shuffle=self.shuffle, seed=self.random_state,
                                    prefetch=self.prefetch, fit_params=fit_params))
        if record.rows_seen == 0:
            raise DataError("Found array with 0 sample(s) while a minimum of 1 is required")
        self.estimator_ = estimator
        if classifier:
            self.classes_ = estimator.classes_
        self.n_features_in_ = estimator.n_features_in_
        self.rows_seen_ = getattr(self, "rows_seen_", 0) + record.rows_seen

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "estimator_")

    @property
    def feature_names_in_(self) -> np.ndarray:
        """Column names seen in fit, when X was a DataFrame."""
        check_is_fitted(self)
        return self.estimator_.feature_names_in_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator) if self.estimator is not None else tags
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.transformer_tags = inner.transformer_tags
        tags.target_tags = inner.target_tags
        tags.input_tags = inner.input_tags
        return tags

    # -- block-wise prediction --------------------------------------------------------------
    @available_if(_inner_has("predict"))
    def predict(self, X: Any) -> Any:
        """Predictions per row; lazy (dask Series/Array) for dask input."""
        return self._apply(X, "predict")

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities per row; lazy for dask input."""
        return self._apply(X, "predict_proba")

    @available_if(_inner_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """Log class probabilities per row; lazy for dask input."""
        return self._apply(X, "predict_log_proba")

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """Confidence scores per row; lazy for dask input."""
        return self._apply(X, "decision_function")

    @available_if(_inner_has("transform"))
    def transform(self, X: Any) -> Any:
        """The inner estimator's transform, block-wise; lazy for dask input."""
        return self._apply(X, "transform")

    @available_if(_inner_has("transform"))
    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit, then transform the same data."""
        return self.fit(X, y, **fit_params).transform(X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The inner estimator's default score, computed exactly block-wise for dask input."""
        check_is_fitted(self)
        if not _is_dask(X):
            return self.estimator_.score(X, y, sample_weight=sample_weight)
        if sample_weight is not None:
            raise ParameterError("sample_weight is not supported with dask input")
        frame = _frame(X).assign(**{TARGET: _series(y, _frame(X))})
        return self._as_model(frame).score(frame)

    def _as_model(self, frame: dd.DataFrame) -> Model:
        features = [c for c in frame.columns if c != TARGET]
        classes = getattr(self, "classes_", None)
        return Model(Pipeline([("model", self.estimator_)]), features=features, target=TARGET,
                     task=task_of(self.estimator_),
                     classes=None if classes is None else list(classes))

    def _apply(self, X: Any, method: str) -> Any:
        check_is_fitted(self)
        if isinstance(X, dd.DataFrame):
            model = self._as_model(X)
            if hasattr(model, method):
                return getattr(model, method)(X)
            X = X.to_dask_array()
        if isinstance(X, da.Array):
            X = X.rechunk({1: -1})
            fn = getattr(self.estimator_, method)
            binary = len(getattr(self, "classes_", [])) <= 2
            if method == "predict" or (method == "decision_function" and binary):
                return X.map_blocks(fn, drop_axis=1, dtype=self._predict_dtype(method))
            return X.map_blocks(fn, chunks=(X.chunks[0], (self._width(method),)), dtype=np.float64)
        return getattr(self.estimator_, method)(X)

    def _predict_dtype(self, method: str) -> Any:
        if method == "predict" and hasattr(self, "classes_"):
            return self.classes_.dtype
        return np.float64

    def _width(self, method: str) -> int:
        if method == "transform":
            return int(getattr(self.estimator_, "n_components", getattr(self.estimator_, "n_clusters", 1)))
        return len(self.classes_)


# -- blocks of the input ----------------------------------------------------------------------

def _is_dask(obj: Any) -> bool:
    return isinstance(obj, dd.DataFrame | dd.Series | da.Array)


def _frame(X: Any) -> dd.DataFrame:
    return X if isinstance(X, dd.DataFrame) else dd.from_dask_array(X.rechunk({1: -1}))


def _series(y: Any, like: dd.DataFrame) -> dd.Series:
    if isinstance(y, dd.DataFrame):
        y = y[y.columns[0]]
    if isinstance(y, da.Array):
        y = dd.from_dask_array(y.rechunk({0: tuple(like.map_partitions(len).compute())}),
                               index=like.index)
    return y


def _blocks(X: Any, y: Any, block_size: int | None) -> list[Any]:
    """The training blocks: one lazy (X, y) per partition/chunk, or in-memory row ranges."""
    if isinstance(X, dd.DataFrame):
        if y is None:
            return [dask.delayed(_with_y)(p, None) for p in X.to_delayed()]
        if isinstance(y, da.Array):
            y = _series(y, X)
        # One partition function selects X and y together: their partitioning cannot diverge,
        # and the shared read happens once.
        frame = X.assign(**{TARGET: y[y.columns[0]] if isinstance(y, dd.DataFrame) else y})
        return [dask.delayed(_split_target)(p) for p in frame.to_delayed()]
    if isinstance(X, da.Array):
        X = X.rechunk({1: -1}) if X.ndim == 2 else X
        xs = X.to_delayed().ravel().tolist()
        if y is None:
            return [dask.delayed(_with_y)(x, None) for x in xs]
        y = _as_dask_array(y).rechunk({0: X.chunks[0]})
        ys = y.to_delayed().ravel().tolist()
        return [dask.delayed(_with_y)(x, t) for x, t in zip(xs, ys)]
    if isinstance(y, dd.Series | dd.DataFrame | da.Array):
        raise ParameterError("X is in memory but y is a dask collection: pass both as dask or neither")
    X = X.tocsr() if hasattr(X, "tocsr") else X if isinstance(X, pd.DataFrame) else np.asarray(X)
    if y is not None and not isinstance(y, pd.Series | pd.DataFrame):
        y = np.asarray(y)
    n = X.shape[0]
    step = block_size or max(n, 1)
    return [(_rows(X, slice(i, i + step)), None if y is None else _rows(y, slice(i, i + step)))
            for i in range(0, n, step)] or [(X, y)]


def _rows(data: Any, rows: slice) -> Any:
    if isinstance(data, pd.DataFrame | pd.Series):
        return data.iloc[rows]
    if isinstance(data, list):
        return np.asarray(data)[rows]
    return data[rows]


def _as_dask_array(y: Any) -> da.Array:
    if isinstance(y, dd.Series):
        return y.to_dask_array(lengths=True)
    return y if isinstance(y, da.Array) else da.from_array(np.asarray(y))


def _with_y(x: Any, y: Any) -> tuple:
    return (x, y)


def _split_target(frame: pd.DataFrame) -> tuple:
    return frame.drop(columns=[TARGET]), frame[TARGET]


def _discover_classes(y: Any) -> np.ndarray:
    """All target labels: one pass over y (checked to be classification targets)."""
    if isinstance(y, dd.DataFrame):
        y = y[y.columns[0]]
    if isinstance(y, dd.Series):
        y = y.to_dask_array()
    if isinstance(y, da.Array):
        (labels,) = dask.compute(da.unique(y))
    else:
        check_classification_targets(y)
        labels = np.unique(np.asarray(y))
    check_classification_targets(labels)
    return labels
