"""A plan checked against the data before any read (its columns, their dtypes, what the
estimator takes), and the statistics pass's summary checked before training (no rows,
missing or infinite values, a single class): each refusal names the culprit and the fix."""

from __future__ import annotations

import warnings
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.dataframe.utils import make_meta

from ..encoding import is_categorical
from ..errors import ColumnNotFoundError, DataError, ParameterError, SortedDataWarning
from ..plan import Plan, Step
from ..plan_rules import SPARSE_ENCODINGS, encoding_of
from .mixing import WINDOW, partition_bytes, window_size
from .stats import Summary


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


def check_summary(summary: Summary, features: list[str], plan: Plan, task: str,
                  missing_ok: bool = False, classes_known: bool = False) -> None:
    """Refuse data the estimator cannot learn from, naming the culprit columns
    (``classes_known``: a model's classes are known, so one label value is enough)."""
    if summary.rows == 0:
        raise DataError("the data has no rows (after WHERE, if any)")
    moments = summary.moments
    if not missing_ok and not any(s.kind == "impute" for s in plan.steps):
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
    if task == "classification" and summary.labels is not None and len(summary.labels) < 2 \
            and not classes_known:
        raise DataError(
            f"the target column {plan.target!r} holds a single class "
            f"({summary.labels.tolist()}); a classifier needs at least two"
        )


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


# -- partitions that hold differently distributed rows ---------------------------------------------

LABEL_SPREAD = 0.25  # a class's share of the rows differs by this much between two partitions
MEAN_SPREAD = 1.0  # a feature's mean differs by this many of its standard deviations
LAYOUT_ROWS = 100  # partitions with fewer training rows are left out of the comparison


def sorted_layout(summary: Summary, features: list[str]) -> str | None:
    """What makes the partitions differ, when they differ strongly in their label mix (by
    ``LABEL_SPREAD``) or in a feature's mean (by ``MEAN_SPREAD`` standard deviations); None
    when they look alike. Measured in the statistics pass, at no extra cost."""
    kept = [shape for shape, rows in zip(summary.layout, summary.partition_rows)
            if rows >= LAYOUT_ROWS]
    if len(kept) < 2:
        return None
    counts = [c for _, c in kept if c is not None]
    if len(counts) == len(kept):
        shares = pd.DataFrame([c / c.sum() for c in counts]).fillna(0.0)
        spread = shares.max() - shares.min()
        label = spread.idxmax()
        if spread[label] >= LABEL_SPREAD:
            name = label.item() if isinstance(label, np.generic) else label
            return (f"the share of class {name!r} ranges from {shares[label].min():.0%} to "
                    f"{shares[label].max():.0%} across the {len(kept)} partitions")
    means = np.vstack([m for m, _ in kept])
    std = np.sqrt(summary.moments.var)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(std > 0, (means.max(axis=0) - means.min(axis=0)) / std, 0.0)
    worst = int(np.argmax(spread)) if spread.size else 0
    if spread.size and spread[worst] >= MEAN_SPREAD:
        return (f"the mean of feature {features[worst]!r} ranges over {spread[worst]:.1f} "
                f"standard deviations across the {len(kept)} partitions")
    return None


def warn_if_sorted(summary: Summary, features: list[str], columns: int, shuffle: bool = False,
                   window: int | None = None) -> None:
    """A :class:`SortedDataWarning` when :func:`sorted_layout` finds the partitions unlike and
    the stream keeps them apart: without SHUFFLE, or with a SHUFFLE ``window`` (None: the
    default) that mixes fewer partitions at a time than there are, so that the model ends
    biased towards the last window's (``benchmarks/mixing.py``'s by_label, 4 partitions: one
    epoch scored 0.95 mixing all 4, 0.75 mixing 3 at a time). ``columns``: the columns read,
    for the memory a larger window costs."""
    partitions = len(summary.partition_rows)
    mixed = (window_size(window, True, partitions) or 1) if shuffle else 1
    if mixed >= partitions:
        return
    why = sorted_layout(summary, features)
    if why is None:
        return
    if not shuffle:
        advice = ("without SHUFFLE the model learns partition after partition and ends biased "
                  "towards the last ones; add SHUFFLE (shuffle=True), which mixes rows across "
                  f"partitions, {WINDOW} at a time unless WINDOW n says how many")
    else:
        cost = partition_bytes(columns, max(summary.partition_rows), partitions) * partitions >> 20
        advice = (f"SHUFFLE mixes {mixed} of the {partitions} partitions at a time, so the "
                  "model ends biased towards the last ones it mixes; mix more at once with "
                  "SHUFFLE WINDOW n (shuffle_window=n), each partition holding its reader's "
                  f"buffers (about 2 MB a column) and a few blocks while it is read: all "
                  f"{partitions} would hold about {max(cost, 1):,} MB. Or write the rows once in a "
                  "random order")
    warnings.warn(SortedDataWarning(f"{why}: {advice}"), stacklevel=2)
