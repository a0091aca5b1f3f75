"""Dask-native scalers with scikit-learn's API (``oocml.preprocessing``, public).

Their statistics are :class:`~oocml.sketches.Moments` (count, mean, sum of squared
deviations, min, max per column) computed block by block in parallel and merged exactly
(Chan et al.). The fitted state is scikit-learn's own, so :meth:`to_sklearn` returns the
plain equivalent and ``transform`` is scikit-learn's per block.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.dataframe.utils import make_meta
from sklearn import preprocessing as skp
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._compat import handle_zeros_in_scale as _handle_zeros_in_scale  # scikit-learn's own rules
from ._compat import is_constant_feature as _is_constant_feature
from .errors import DataError
from .execution import tree_reduce
from .sketches import Moments


def moments_of(X: Any) -> Moments:
    """Moments of a dask DataFrame/Array or in-memory data, one parallel pass for dask input."""
    if isinstance(X, dd.DataFrame):
        parts = [dask.delayed(_frame_moments)(p) for p in X.to_delayed()]
    elif isinstance(X, da.Array):
        X = X.rechunk({1: -1}) if X.ndim == 2 else X
        parts = [dask.delayed(Moments.of)(b) for b in X.to_delayed().ravel()]
    else:
        return Moments.of(_numeric_array(X))
    return dask.compute(tree_reduce(parts, _merge))[0]


def _frame_moments(frame: pd.DataFrame) -> Moments:
    return Moments.of(_numeric_array(frame))


def _merge(a: Moments, b: Moments) -> Moments:
    return a.merge(b)


def _numeric_array(X: Any) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        bad = [c for c, t in X.dtypes.items() if not (pd.api.types.is_numeric_dtype(t)
                                                      or pd.api.types.is_bool_dtype(t))]
        if bad:
            raise DataError(f"non-numeric column(s) {bad} cannot be scaled; encode them first")
        return X.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(X, dtype=np.float64)


class _DaskScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Shared machinery: fit from Moments, transform with the scikit-learn twin per block."""

    _sklearn_class: type

    def fit(self, X: Any, y: Any = None) -> _DaskScaler:
        """Compute the statistics out-of-core (one parallel pass for dask input)."""
        self._reset()
        names = getattr(X, "columns", None)
        return self.fit_moments(moments_of(X), None if names is None else list(names))

    def _reset(self) -> None:
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)

    def fit_moments(self, moments: Moments, feature_names: list[str] | None = None) -> _DaskScaler:
        """Set the fitted state from already computed moments (used by the fused pass)."""
        twin = self._fit_twin(moments)
        for name, value in vars(twin).items():
            if name.endswith("_") and not name.startswith("_"):
                setattr(self, name, value)
        self.n_features_in_ = moments.count.shape[0]
        if feature_names is not None:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        return self

    def _fit_twin(self, moments: Moments) -> BaseEstimator:
        """The scikit-learn twin fitted as the data would fit it: for range scalers, on a
        two-row array holding each column's min and max (enough to fit them exactly)."""
        twin = self._sklearn_class(**self.get_params()).fit(_ends(moments))
        twin.n_samples_seen_ = int(moments.rows)
        return twin

    def to_sklearn(self) -> BaseEstimator:
        """The fitted scikit-learn equivalent, for plain pipelines on pandas or numpy."""
        check_is_fitted(self)
        twin = self._sklearn_class(**self.get_params())
        for name, value in vars(self).items():
            if name.endswith("_") and not name.startswith("_"):
                setattr(twin, name, value)
        return twin

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, offset) such that transform(x) == x * scale + offset, per column."""
        raise NotImplementedError

    def transform(self, X: Any) -> Any:
        """Scale lazily, block by block, keeping partitions and index of dask input."""
        twin = self.to_sklearn()
        if isinstance(X, dd.DataFrame):
            meta = make_meta(X).astype(_float_dtype(make_meta(X)))
            return X.map_partitions(_transform_frame, twin, meta=meta)
        if isinstance(X, da.Array):
            X = X.rechunk({1: -1})
            return X.map_blocks(twin.transform, dtype=np.result_type(X.dtype, np.float32))
        if isinstance(X, pd.DataFrame):
            return _transform_frame(X, twin)
        return twin.transform(X)

    def inverse_transform(self, X: Any) -> Any:
        twin = self.to_sklearn()
        if isinstance(X, dd.DataFrame):
            return X.map_partitions(_inverse_frame, twin, meta=make_meta(X))
        if isinstance(X, da.Array):
            return X.map_blocks(twin.inverse_transform, dtype=X.dtype)
        return twin.inverse_transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _float_dtype(frame: pd.DataFrame) -> Any:
    kinds = {np.dtype(t) for t in frame.dtypes}
    return np.float32 if kinds == {np.dtype(np.float32)} else np.float64


def _transform_frame(frame: pd.DataFrame, twin: BaseEstimator) -> pd.DataFrame:
    out = twin.transform(frame)
    return pd.DataFrame(out, index=frame.index, columns=frame.columns)


def _inverse_frame(frame: pd.DataFrame, twin: BaseEstimator) -> pd.DataFrame:
    out = twin.inverse_transform(frame.to_numpy())
    return pd.DataFrame(out, index=frame.index, columns=frame.columns)


def _ends(moments: Moments) -> np.ndarray:
    """A two-row array whose column min/max are the data's: enough to fit range scalers exactly."""
    lo = np.where(moments.count > 0, moments.min, np.nan)
    hi = np.where(moments.count > 0, moments.max, np.nan)
    return np.stack([lo, hi])


class StandardScaler(_DaskScaler):
    """Standardize features by removing the mean and scaling to unit variance, out-of-core."""

    _sklearn_class = skp.StandardScaler

    def __init__(self, *, copy: bool = True, with_mean: bool = True, with_std: bool = True):
        self.copy = copy
        self.with_mean = with_mean
        self.with_std = with_std

    def _fit_twin(self, moments: Moments) -> BaseEstimator:
        twin = self._sklearn_class(**self.get_params())
        nan_free = bool((moments.count == moments.rows).all())
        twin.n_samples_seen_ = int(moments.rows) if nan_free else moments.count.copy()
        twin.mean_ = moments.mean.copy() if (self.with_mean or self.with_std) else None
        twin.var_ = moments.var.copy() if self.with_std else None
        if self.with_std:
            constant = _is_constant_feature(twin.var_, twin.mean_, twin.n_samples_seen_)
            twin.scale_ = _handle_zeros_in_scale(np.sqrt(twin.var_), copy=False,
                                                 constant_mask=constant)
        else:
            twin.scale_ = None
        return twin

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.n_features_in_
        scale = 1.0 / self.scale_ if self.scale_ is not None else np.ones(n)
        offset = -self.mean_ * scale if self.with_mean else np.zeros(n)
        return scale, offset


class MinMaxScaler(_DaskScaler):
    """Scale each feature to ``feature_range`` from its out-of-core min and max."""

    _sklearn_class = skp.MinMaxScaler

    def __init__(self, feature_range: tuple[float, float] = (0, 1), *, copy: bool = True,
                 clip: bool = False):
        self.feature_range = feature_range
        self.copy = copy
        self.clip = clip

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        return self.scale_, self.min_


class MaxAbsScaler(_DaskScaler):
    """Scale each feature by its out-of-core maximum absolute value."""

    _sklearn_class = skp.MaxAbsScaler

    def __init__(self, *, copy: bool = True):
        self.copy = copy

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        return 1.0 / self.scale_, np.zeros(self.n_features_in_)


SCALERS: dict[str, type[_DaskScaler]] = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "maxabs": MaxAbsScaler,
}
