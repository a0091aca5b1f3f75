"""The fused statistics pass: every statistic a plan needs, in one parallel read.

Each partition yields a small :class:`Summary` (moments of the features, the
target's labels, NaN and infinity counts, row count); summaries are merged in
a fixed tree, so the result is the same bit for bit on any scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
from dask.delayed import Delayed
import numpy as np
import pandas as pd

from ..encoding import count_values, merge_counts
from ..preprocessing import Moments, QuantileSketch, tree_reduce
from ..chunks import row_chunks
from ..execution import compute
from .validation import training_rows


@dataclass(frozen=True)
class Summary:
    """Mergeable statistics of one or more consecutive partitions."""

    moments: Moments  # of the feature columns, in order
    infinite: np.ndarray  # count of +-inf per feature
    labels: np.ndarray | None  # sorted distinct target values (classification only)
    target_missing: int
    partition_rows: tuple[int, ...]
    quantiles: QuantileSketch | None = None  # of the features, when a median is needed
    categories: dict[str, pd.Series] | None = None  # value counts of the columns to encode

    @property
    def rows(self) -> int:
        return self.moments.rows

    def merge(self, other: Summary) -> Summary:
        labels = None if self.labels is None else np.union1d(self.labels, other.labels)
        quantiles = None if self.quantiles is None else self.quantiles.merge(other.quantiles)
        categories = (None if self.categories is None
                      else merge_counts(self.categories, other.categories))
        return Summary(self.moments.merge(other.moments), self.infinite + other.infinite, labels,
                       self.target_missing + other.target_missing,
                       self.partition_rows + other.partition_rows, quantiles, categories)


def summarize(frame: pd.DataFrame, features: list[str], target: str | None,
              labels: bool, quantiles: bool = False, holdout: float | None = None,
              categorical: tuple[str, ...] = ()) -> Summary:
    """The summary of one in-memory partition, computed a few megabytes of rows at a time.

    With a ``holdout`` fraction the statistics describe the training rows only; class
    labels come from every row, so a class seen only in the holdout is still known.
    ``categorical`` columns get their value counts, for the encoders.
    """
    found = np.unique(frame[target].dropna().to_numpy()) if labels and target is not None else None
    frame = training_rows(frame, holdout)
    moments, infinite = Moments.empty(len(features)), np.zeros(len(features), np.int64)
    sketch = (QuantileSketch.of(frame[features].to_numpy(dtype=np.float64, na_value=np.nan))
              if quantiles else None)
    for rows in row_chunks(len(frame), len(features)):
        X = frame.iloc[rows][features].to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(X).all():
            inf = np.isinf(X)
            infinite += inf.sum(axis=0)
            X = np.where(inf, np.nan, X)  # reported as an error; keep the moments meaningful
        moments = moments.merge(Moments.of(X))
    missing = int(frame[target].isna().sum()) if target is not None else 0
    counts = count_values(frame, list(categorical)) if categorical else None
    return Summary(moments, infinite, found, missing, (len(frame),), sketch, counts)


def _merge(a: Summary, b: Summary) -> Summary:
    return a.merge(b)


def statistics_pass(parts: list[Delayed], features: list[str], target: str | None,
                    labels: bool, quantiles: bool = False, holdout: float | None = None,
                    categorical: tuple[str, ...] = (), progress: bool = False) -> Summary:
    """One read of every partition, computing their merged :class:`Summary`."""
    summaries = [dask.delayed(summarize)(p, features, target, labels, quantiles, holdout,
                                         categorical)
                 for p in parts]
    (summary,) = compute(tree_reduce(summaries, _merge), progress=progress)
    return summary
