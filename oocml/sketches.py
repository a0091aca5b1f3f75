"""Mergeable summaries of numeric columns, computed block by block and merged exactly or within
a stated error: :class:`Moments` (count, mean, sum of squared deviations, min, max; Chan et
al.'s parallel formula) and :class:`QuantileSketch` (weighted quantiles, for the median), and
the imputer that the statistics of the fused pass fill.

The engine's statistics pass, the data profile and the dask-native scalers of
:mod:`oocml.preprocessing` all summarize columns with these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Moments:
    """Mergeable per-column statistics; NaN values are not counted."""

    count: np.ndarray  # non-NaN values per column
    mean: np.ndarray
    m2: np.ndarray  # sum of squared deviations from the mean
    min: np.ndarray
    max: np.ndarray
    rows: int

    @classmethod
    def of(cls, X: np.ndarray) -> Moments:
        """The moments of one in-memory block (rows x columns)."""
        X = np.asarray(X, dtype=np.float64)
        return cls.of_columns(list(X[:, None].T if X.ndim == 1 else X.T), len(X))

    @classmethod
    def of_columns(cls, columns: list[np.ndarray], n_rows: int,
                   infinite: np.ndarray | None = None) -> Moments:
        """The moments of ``n_rows`` rows held as one 1-D float array per column (statistics
        in float64); NaN and infinite values are not counted, and ``infinite``, if given,
        receives the count of infinities per column. A clean column is read four times
        (sum, deviations, min, max), with no 2-D temporary."""
        stats = np.zeros((5, len(columns)))
        for i, column in enumerate(columns):
            total = column.sum(dtype=np.float64)
            present = column
            if not np.isfinite(total):  # NaN or infinities (or an overflow: the exact path too)
                if infinite is not None:
                    infinite[i] = np.isinf(column).sum()
                present = column[np.isfinite(column)]
                total = present.sum(dtype=np.float64)
            if present.size == 0:
                stats[:, i] = 0, 0.0, 0.0, np.inf, -np.inf
                continue
            mean = total / present.size  # what present.mean() computes, without a second sum
            deviation = present - mean  # float64: the deviations of float32 data stay exact
            stats[:, i] = (present.size, mean, np.dot(deviation, deviation), present.min(),
                           present.max())
        return cls(stats[0].astype(np.int64), stats[1], stats[2], stats[3], stats[4], n_rows)

    @classmethod
    def empty(cls, n_cols: int) -> Moments:
        zeros = np.zeros(n_cols)
        return cls(np.zeros(n_cols, np.int64), zeros, zeros, np.full(n_cols, np.inf),
                   np.full(n_cols, -np.inf), 0)

    def merge(self, other: Moments) -> Moments:
        """Combine two blocks' moments exactly (parallel variance formula)."""
        n = self.count + other.count
        safe = np.maximum(n, 1)
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / safe)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / safe)
        return Moments(n, mean, m2, np.minimum(self.min, other.min),
                       np.maximum(self.max, other.max), self.rows + other.rows)

    @property
    def var(self) -> np.ndarray:
        return self.m2 / np.maximum(self.count, 1)

    @property
    def nan_count(self) -> np.ndarray:
        return self.rows - self.count

    def filled(self, value: np.ndarray) -> Moments:
        """The moments after every missing value of a column is replaced by ``value``."""
        missing = self.rows - self.count
        constant = Moments(missing, np.asarray(value, np.float64), np.zeros_like(self.m2),
                           np.where(missing > 0, value, np.inf), np.where(missing > 0, value, -np.inf), 0)
        return self.merge(constant)

    def affine(self, scale: np.ndarray, offset: np.ndarray) -> Moments:
        """The moments of ``x * scale + offset``: what a scaler hands the next step."""
        ends = np.stack([self.min * scale + offset, self.max * scale + offset])
        return Moments(self.count, self.mean * scale + offset, self.m2 * scale**2,
                       ends.min(axis=0), ends.max(axis=0), self.rows)


@dataclass(frozen=True)
class QuantileSketch:
    """Mergeable per-column quantile summaries: ``points`` weighted values per column.

    Each block contributes its quantiles at ``SIZE`` evenly spaced ranks; merging
    concatenates and re-summarizes, so the size stays bounded. A median read from
    it is off by at most about ``levels / SIZE`` of the rank range (levels: depth
    of the merge tree, about 4 for 4,000 partitions): 0.4% of rank at most there.
    """

    values: np.ndarray  # (columns, points)
    weights: np.ndarray  # (columns, points)

    SIZE = 1024

    @classmethod
    def of_columns(cls, arrays: list[np.ndarray]) -> QuantileSketch:
        """The sketch of one block held as one 1-D array per column."""
        columns = []
        for column in arrays:
            present = column[~np.isnan(column)]
            if present.size == 0:
                columns.append((np.zeros(0), np.zeros(0)))
            elif present.size <= cls.SIZE:
                columns.append((np.sort(present), np.ones(present.size)))
            else:
                ranks = (np.arange(cls.SIZE) + 0.5) / cls.SIZE
                columns.append((np.quantile(present, ranks), np.full(cls.SIZE, present.size / cls.SIZE)))
        return cls._pack(columns)

    @classmethod
    def _pack(cls, columns: list[tuple[np.ndarray, np.ndarray]]) -> QuantileSketch:
        width = max([v.size for v, _ in columns] + [0])
        values = np.full((len(columns), width), np.nan)
        weights = np.zeros((len(columns), width))
        for i, (v, w) in enumerate(columns):
            values[i, :v.size], weights[i, :w.size] = v, w
        return cls(values, weights)

    def _columns(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(v[w > 0], w[w > 0]) for v, w in zip(self.values, self.weights)]

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        merged = []
        for (va, wa), (vb, wb) in zip(self._columns(), other._columns()):
            values, weights = np.concatenate([va, vb]), np.concatenate([wa, wb])
            order = np.argsort(values, kind="stable")
            values, weights = values[order], weights[order]
            if values.size > self.SIZE:
                ranks = (np.arange(self.SIZE) + 0.5) / self.SIZE * weights.sum()
                picked = np.searchsorted(np.cumsum(weights), ranks)
                values = values[np.minimum(picked, values.size - 1)]
                weights = np.full(self.SIZE, weights.sum() / self.SIZE)
            merged.append((values, weights))
        return self._pack(merged)

    def quantile(self, q: float) -> np.ndarray:
        """The weighted ``q``-quantile of each column, nearest rank (NaN for no values)."""
        out = []
        for values, weights in self._columns():
            cumulative = np.cumsum(weights)
            at = int(np.searchsorted(cumulative, q * cumulative[-1])) if values.size else -1
            out.append(values[min(at, values.size - 1)] if values.size else np.nan)
        return np.asarray(out)

    def median(self) -> np.ndarray:
        """The weighted median of each column (NaN for a column with no values)."""
        out = []
        for values, weights in self._columns():
            if values.size == 0:
                out.append(np.nan)
                continue
            cumulative = np.cumsum(weights)
            half = cumulative[-1] / 2
            at = int(np.searchsorted(cumulative, half))
            exact_tie = np.isclose(cumulative[at], half) and at + 1 < values.size
            out.append((values[at] + values[at + 1]) / 2 if exact_tie else values[at])
        return np.asarray(out)


def fitted_imputer(method: str, moments: Moments, sketch: QuantileSketch | None) -> Any:
    """scikit-learn's SimpleImputer holding the out-of-core statistic of each column."""
    from sklearn.impute import SimpleImputer

    if method == "zero":
        imputer = SimpleImputer(strategy="constant", fill_value=0.0).fit(np.zeros((1, len(moments.count))))
        imputer.statistics_ = imputer.statistics_.astype(np.float64)  # sklearn keeps object here
        return imputer
    values = moments.mean if method == "mean" else sketch.median()
    # Fitting on the single row of statistics stores exactly those statistics.
    return SimpleImputer(strategy=method).fit(values[None, :])
