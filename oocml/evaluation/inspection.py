"""Reading a fitted Model: weights by feature name, cluster centers, class means; a sparkline.

Rules:
- Rows (weights) and columns (centers, class means) are the columns the estimator sees, in its
  order: the outputs of ``pipeline[:-1]``, named by that pipeline (``x0``; ``hash_17``;
  ``incrementalpca0``) except one-hot columns, named ``column=value`` and ``column=(other)`` for
  the bucket of rare, unseen and missing values.
- ``original_units=True`` undoes the per-feature affine steps (the standard, minmax and maxabs
  scalers; imputers change no units, encoded columns are never scaled): then
  ``decision_function(raw) == raw @ weights + (intercept)`` on rows without missing values.
  A projection (PCA) mixes the features and cannot be undone per feature: refused.
- Nothing here reads data or changes the model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from ..encoding import OTHER, HashEncoder
from ..errors import ParameterError
from ..estimators import is_boosted

__all__ = ["feature_names", "weights", "importances", "centers", "class_means", "class_variances",
           "sparkline"]

INTERCEPT = "(intercept)"
SPARKS = "▁▂▃▄▅▆▇█"
ENCODERS = (OneHotEncoder, OrdinalEncoder, HashEncoder)  # their outputs are never scaled

# What an estimator without coef_ offers instead, by the fitted attribute that shows it.
ALTERNATIVES = (
    ("theta_", "class means and variances (theta_, var_): oocml.evaluation.inspection.class_means(model) "
               "and class_variances(model)"),
    ("feature_log_prob_", "per-class feature log-probabilities (feature_log_prob_)"),
    ("cluster_centers_", "cluster centers (cluster_centers_): oocml.evaluation.inspection.centers(model)"),
    ("coefs_", "one weight matrix per layer (coefs_, intercepts_), which mix every feature: "
               "there is no per-feature weight"),
)


# -- names ----------------------------------------------------------------------------------------

def feature_names(model: Any) -> list[str]:
    """The names of the columns the estimator sees, in order (see the module's rules)."""
    names = list(model.features)
    for _, step in _preprocessing(model.pipeline):
        if isinstance(step, ColumnTransformer):
            names = _column_names(step)
        elif hasattr(step, "get_feature_names_out"):
            names = [str(n) for n in step.get_feature_names_out(names)]
    return names


def _column_names(transformer: ColumnTransformer) -> list[str]:
    names = [str(n) for n in transformer.get_feature_names_out()]
    for name, step, columns in transformer.transformers_:
        if isinstance(step, OneHotEncoder) and name in transformer.output_indices_:
            where = transformer.output_indices_[name]
            readable = _onehot_names(step, list(columns))
            if len(readable) == where.stop - where.start:
                names[where] = readable
    return names


def _onehot_names(encoder: OneHotEncoder, columns: list[str]) -> list[str]:
    """``column=value`` for each kept value, then ``column=(other)`` for the infrequent bucket."""
    infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(columns)
    names = []
    for column, values, rare in zip(columns, encoder.categories_, infrequent):
        rare = set() if rare is None else set(rare.tolist())
        names += [f"{column}={v}" for v in values.tolist() if v not in rare]
        names += [f"{column}={OTHER}"] if rare else []
    return names


def _preprocessing(pipeline: Pipeline) -> list[tuple[str, Any]]:
    return list(pipeline.steps[:-1])


# -- weights --------------------------------------------------------------------------------------

def weights(model: Any, original_units: bool = False) -> pd.DataFrame:
    """Coefficients by feature name, then the intercept in a last ``(intercept)`` row.

    One column ``weight`` for regressors and binary classifiers (``attrs["positive_class"]``
    names the class a positive score points to), one column per class label otherwise.
    ``attrs["units"]`` is ``"scaled"`` (the weights apply to the preprocessed columns) or,
    with ``original_units=True``, ``"original"`` (they apply to the raw columns).
    """
    estimator = model.pipeline[-1]
    if is_boosted(estimator):
        if original_units:
            raise ParameterError("boosted trees have no per-feature weights in the data's units: "
                                 "their weights are importances (model.weights())")
        return importances(model)
    if not hasattr(estimator, "coef_"):
        raise ParameterError(_no_coef_message(estimator))
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    intercept = np.broadcast_to(np.asarray(getattr(estimator, "intercept_", 0.0), np.float64),
                                (coef.shape[0],)).copy()
    if original_units:
        scale, offset = _affine(model)
        intercept = intercept + coef @ offset
        coef = coef * scale
    classes = getattr(estimator, "classes_", None)
    columns = ["weight"] if coef.shape[0] == 1 else [_plain(c) for c in classes]
    frame = pd.DataFrame(np.vstack([coef.T, intercept[None, :]]), columns=columns,
                         index=pd.Index([*feature_names(model), INTERCEPT], name="feature"))
    frame.attrs["units"] = "original" if original_units else "scaled"
    if classes is not None and len(classes) == 2:
        frame.attrs["positive_class"] = _plain(classes[1])
    return frame


IMPORTANCES = ("gain", "cover", "weight")  # XGBoost's: mean gain and cover of a feature's splits, their count


def importances(model: Any) -> pd.DataFrame:
    """Boosted trees' feature importances by feature name (the columns the encoders make), most
    gain first: ``gain`` and ``cover`` (means over the feature's splits) and ``weight`` (how many
    splits use it; 0 for a feature no tree splits on), of the trees up to the best round."""
    estimator = model.pipeline[-1]
    booster = estimator.get_booster()
    best = getattr(booster, "best_iteration", None)
    if best is not None:
        booster = booster[: best + 1]
    names = feature_names(model)
    table = {kind: booster.get_score(importance_type=kind) for kind in IMPORTANCES}
    keys = booster.feature_names or [f"f{i}" for i in range(len(names))]
    frame = pd.DataFrame({kind: [float(table[kind].get(key, 0.0)) for key in keys]
                          for kind in IMPORTANCES},
                         index=pd.Index(names, name="feature"))
    frame.attrs["units"] = "importance"
    return frame.sort_values("gain", ascending=False, kind="stable")


def _no_coef_message(estimator: Any) -> str:
    name = type(estimator).__name__
    for attribute, offer in ALTERNATIVES:
        if hasattr(estimator, attribute):
            return f"{name} has no per-feature weights (coef_); it offers {offer}"
    return (f"{name} has no per-feature weights (coef_): weights are for linear models "
            "(sgd, sgd_regressor, perceptron, passive_aggressive)")


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (frame columns and attrs that print plainly)."""
    return value.item() if isinstance(value, np.generic) else value


# -- centers and class statistics -----------------------------------------------------------------

def centers(model: Any, original_units: bool = False) -> pd.DataFrame:
    """k-means cluster centers: one row per cluster (index ``cluster``), one column per feature."""
    estimator = model.pipeline[-1]
    if not hasattr(estimator, "cluster_centers_"):
        raise ParameterError(f"{type(estimator).__name__} has no cluster centers "
                             "(cluster_centers_): centers are for minibatch_kmeans")
    values = np.asarray(estimator.cluster_centers_, dtype=np.float64)
    index = pd.RangeIndex(len(values), name="cluster")
    return _per_feature(model, values, index, original_units)


def class_means(model: Any, original_units: bool = False) -> pd.DataFrame:
    """Gaussian naive Bayes class means (``theta_``): one row per class, one column per feature."""
    return _class_statistic(model, "theta_", original_units)


def class_variances(model: Any, original_units: bool = False) -> pd.DataFrame:
    """Gaussian naive Bayes class variances (``var_``): one row per class, one column per feature."""
    return _class_statistic(model, "var_", original_units)


def _class_statistic(model: Any, attribute: str, original_units: bool) -> pd.DataFrame:
    estimator = model.pipeline[-1]
    if not hasattr(estimator, attribute):
        raise ParameterError(f"{type(estimator).__name__} has no class means and variances "
                             "(theta_, var_): they are for naive_bayes (GaussianNB)")
    values = np.asarray(getattr(estimator, attribute), dtype=np.float64)
    index = pd.Index([_plain(c) for c in estimator.classes_], name="class")
    return _per_feature(model, values, index, original_units, squared=attribute == "var_")


def _per_feature(model: Any, values: np.ndarray, index: pd.Index, original_units: bool,
                 squared: bool = False) -> pd.DataFrame:
    """Points (or, ``squared``, variances) in the estimator's space, in raw units if asked."""
    if original_units:
        scale, offset = _affine(model)
        values = values / scale**2 if squared else (values - offset) / scale
    frame = pd.DataFrame(values, index=index,
                         columns=pd.Index(feature_names(model), name="feature"))
    frame.attrs["units"] = "original" if original_units else "scaled"
    return frame


# -- the affine map from raw columns to the estimator's columns ------------------------------------

def _affine(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) per estimator column: column = raw * scale + offset (identity for
    encoded columns). Raises ParameterError where no such per-feature map exists."""
    width = len(model.features)
    scale, offset = np.ones(width), np.zeros(width)
    for position, (name, step) in enumerate(_preprocessing(model.pipeline)):
        if isinstance(step, ColumnTransformer):
            if position:
                raise ParameterError(f"step {name!r} (a ColumnTransformer) comes after another "
                                     "step: original units are not available")
            scale, offset = _columns_affine(step)
        else:
            scale, offset = _step_affine(name, step, scale, offset)
    return scale, offset


def _columns_affine(transformer: ColumnTransformer) -> tuple[np.ndarray, np.ndarray]:
    width = len(transformer.get_feature_names_out())
    scale, offset = np.ones(width), np.zeros(width)
    for name, step, _ in transformer.transformers_:
        if name not in transformer.output_indices_ or isinstance(step, (str, *ENCODERS)):
            continue  # dropped, passed through, or encoded: unscaled
        where = transformer.output_indices_[name]
        inner = step.steps if isinstance(step, Pipeline) else [(name, step)]
        part = (np.ones(where.stop - where.start), np.zeros(where.stop - where.start))
        for inner_name, inner_step in inner:
            part = _step_affine(inner_name, inner_step, *part)
        scale[where], offset[where] = part
    return scale, offset


def _step_affine(name: str, step: Any, scale: np.ndarray,
                 offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The map after ``step``, given the map before it."""
    if isinstance(step, (SimpleImputer, *ENCODERS)) or (
            isinstance(step, FunctionTransformer) and step.func is None):
        return scale, offset  # fills missing values or passes through: same units
    width = len(scale)
    if isinstance(step, StandardScaler):
        a = 1.0 / step.scale_ if step.scale_ is not None else np.ones(width)
        c = -step.mean_ * a if step.with_mean else np.zeros(width)
    elif isinstance(step, MinMaxScaler) and not step.clip:
        a, c = step.scale_, step.min_
    elif isinstance(step, MaxAbsScaler):
        a, c = 1.0 / step.scale_, np.zeros(width)
    elif hasattr(step, "components_"):
        raise ParameterError(
            f"step {name!r} ({type(step).__name__}) projects every feature onto each component: "
            "a PCA reduction cannot be undone per feature, so there are no original units; "
            "use original_units=False for the weights of the components")
    else:
        raise ParameterError(f"step {name!r} ({type(step).__name__}) is not an affine map per "
                             "feature: original units are not available; use original_units=False")
    return scale * a, offset * a + c


# -- sparkline ------------------------------------------------------------------------------------

def sparkline(values: Iterable[Any]) -> str:
    """One character per value, ``▁`` (lowest) to ``█`` (highest); a blank for a missing value;
    a flat ``▄`` line when every value is the same; ``""`` when no value is a number."""
    numbers = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce")
    numbers = numbers.astype(np.float64).to_numpy()
    present = numbers[np.isfinite(numbers)]
    if present.size == 0:
        return ""
    low, high = present.min(), present.max()
    chars = []
    for value in numbers:
        if not math.isfinite(value):
            chars.append(" ")
        elif high == low:
            chars.append(SPARKS[3])
        else:
            chars.append(SPARKS[round((value - low) / (high - low) * (len(SPARKS) - 1))])
    return "".join(chars)
