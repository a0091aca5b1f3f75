"""The fused statistics pass: every statistic a plan needs, in one parallel read.

Each partition yields a small :class:`Summary` (moments of the features, the
target's labels, NaN and infinity counts, row count); summaries are merged in
a fixed tree, so the result is the same bit for bit on any scheduler.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import dask
import numpy as np
import pandas as pd

from ..blocks import numeric_arrays
from ..encoding import count_values, document_counts, merge_counts, merge_documents
from ..evaluation.drift import Sample
from ..execution import compute, tree_reduce
from ..io.partitions import batches, read_ahead
from ..sketches import Moments, QuantileSketch
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
    documents: dict[str, tuple] | None = None  # TF-IDF text columns: (documents, frequencies)
    target_infinite: int = 0  # +-inf in a numeric target
    label_counts: pd.Series | None = None  # training rows per class (classification)
    # per partition: (feature means, label counts or None), for the warning on sorted data
    layout: tuple[tuple[np.ndarray, pd.Series | None], ...] = ()
    sample: Sample | None = None  # weighted rows of the features, for the model's data profile

    @property
    def rows(self) -> int:
        return self.moments.rows

    def merge(self, other: Summary) -> Summary:
        labels = None if self.labels is None else np.union1d(self.labels, other.labels)
        quantiles = None if self.quantiles is None else self.quantiles.merge(other.quantiles)
        categories = (None if self.categories is None
                      else merge_counts(self.categories, other.categories))
        documents = (None if self.documents is None
                     else merge_documents(self.documents, other.documents))
        counts = (None if self.label_counts is None
                  else self.label_counts.add(other.label_counts, fill_value=0).sort_index())
        sample = None if self.sample is None else self.sample.merge(other.sample)
        return Summary(self.moments.merge(other.moments), self.infinite + other.infinite, labels,
                       self.target_missing + other.target_missing,
                       self.partition_rows + other.partition_rows, quantiles, categories,
                       documents, self.target_infinite + other.target_infinite, counts,
                       self.layout + other.layout, sample)


def summarize_batch(frame: pd.DataFrame, training: pd.DataFrame, features: list[str],
              target: str | None, labels: bool, categorical: tuple[str, ...] = (),
              texts: dict[str, dict] | None = None, sampled: bool = False) -> Summary:
    """The summary of one batch of rows, computed column by column.

    The statistics describe the ``training`` rows (the batch less its holdout rows, if
    any); class labels, and the target's missing and infinite values, come from every row
    of ``frame``, so a class seen only in the holdout is still known and a holdout row is as
    clean as a training one. ``categorical`` columns get their value counts, for the
    encoders; ``texts`` (column: its text encoder's parameters) their document frequencies,
    for TF-IDF. With ``sampled``, a weighted sample of the training rows' features is kept,
    for the model's data profile (:mod:`oocml.evaluation.drift`).
    """
    found = labels_of(frame[target]) if labels and target is not None else None
    columns = numeric_arrays(training, features)
    infinite = np.zeros(len(features), np.int64)
    moments = Moments.of_columns(columns, len(training), infinite)
    missing, endless = target_faults(frame[target]) if target is not None else (0, 0)
    counts = count_values(training, list(categorical)) if categorical else None
    documents = document_counts(training, texts) if texts else None
    label_counts = (training[target].value_counts().sort_index()
                    if labels and target is not None else None)
    return Summary(moments, infinite, found, missing, (len(training),), None, counts, documents,
                   endless, label_counts, sample=Sample.of_columns(columns) if sampled else None)


def target_faults(target: pd.Series) -> tuple[int, int]:
    """(missing, infinite) values of a target column; a target of strings has no infinities."""
    missing = int(target.isna().sum())
    if not pd.api.types.is_float_dtype(target.dtype):
        return missing, 0
    return missing, int(np.isinf(target.to_numpy(dtype=float, na_value=np.nan)).sum())


def labels_of(target: pd.Series) -> np.ndarray:
    """The sorted distinct values of a target column, missing values left out (hashing, not
    sorting, the whole column)."""
    return np.sort(pd.unique(target.dropna().to_numpy()))


def _merge(a: Summary, b: Summary) -> Summary:
    return a.merge(b)


def summarize_part(part: Any, features: list[str], target: str | None, labels: bool,
                   quantiles: bool = False, holdout: float | None = None,
                   categorical: tuple[str, ...] = (), ahead: bool = False,
                   copy: Any = None, index: int = 0,
                   texts: dict[str, dict] | None = None, sampled: bool = False) -> Summary:
    """The summary of one partition, merged from its batches (see :func:`summarize_batch`); with
    ``ahead``, the next batch is read while this one is summarized; with ``copy`` (a
    :class:`~oocml.engine.parsed.ParsedCopy`), the parsed batches are kept as partition
    ``index``."""
    summary, columns = None, []
    frames = batches(part) if copy is None else copy.tee(index, batches(part))
    for frame in (read_ahead if ahead else iter)(frames):
        training = training_rows(frame, holdout)
        one = summarize_batch(frame, training, features, target, labels, categorical, texts,
                              sampled)
        summary = one if summary is None else summary.merge(one)
        if quantiles:  # one sketch of the whole partition: merging per batch would widen its error
            columns.append(numeric_arrays(training, features))
    sketch = (QuantileSketch.of_columns([np.concatenate(c) for c in zip(*columns)])
              if quantiles else None)
    return replace(summary, partition_rows=(summary.rows,), quantiles=sketch,
                   layout=((summary.moments.mean.copy(), summary.label_counts),))


def statistics_pass(parts: list[Any], features: list[str], target: str | None,
                    labels: bool, quantiles: bool = False, holdout: float | None = None,
                    categorical: tuple[str, ...] = (), progress: bool = False,
                    copy: Any = None, texts: dict[str, dict] | None = None,
                    sampled: bool = False) -> Summary:
    """One read of every partition, computing their merged :class:`Summary` (and keeping the
    parsed rows in ``copy``, if given; with ``sampled``, a sample for the data profile)."""
    # Fewer partitions than cores (one big file): each reads its next batch on another thread.
    ahead = len(parts) < int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
    summaries = [dask.delayed(summarize_part)(p, features, target, labels, quantiles, holdout,
                                              categorical, ahead, copy, i, texts, sampled)
                 for i, p in enumerate(parts)]
    (summary,) = compute(tree_reduce(summaries, _merge),
                         progress="statistics" if progress else False)
    return summary
