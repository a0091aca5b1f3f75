"""Skew and drift: does this data still look like the data a model was trained on?

A model keeps a profile of its training data, built by the statistics pass at no extra read:
for each numeric feature, ``BINS`` bins of equal training mass (their edges are quantiles of
a sample of the training rows) and the training fractions in them; for each categorical
feature the training encoders counted, the frequency of its most common values. ``VALIDATE``
profiles new data in one parallel pass and compares, column by column, as BigQuery ML's
``ML.VALIDATE_DATA_SKEW`` does: numeric columns by the Jensen-Shannon divergence (base 2, 0 to
1) of their histograms over the model's bins, categorical ones by the L-infinity distance of
their value frequencies; a value above the threshold (0.3 by default, as BigQuery's) is an
anomaly. ``VALIDATE DRIFT`` compares two sources the same way, the second as the reference.

Histograms come from a sample of every batch (``BATCH_SAMPLE`` rows, evenly spaced, each
weighted by the rows it stands for), thinned to ``SAMPLE_ROWS`` by systematic weighted
resampling: deterministic, unbiased, and a few MB whatever the size of the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..blocks import numeric_arrays
from ..encoding import count_values, merge_counts
from ..errors import ColumnNotFoundError, ParameterError
from ..execution import compute, tree_reduce
from ..io.partitions import batches, where_partitions

BINS = 20
BATCH_SAMPLE = 1_024  # rows of each batch in the sample
SAMPLE_ROWS = 65_536  # sample rows kept at most, after merging
TOP_VALUES = 50  # values of a categorical column whose frequency a profile keeps
THRESHOLD = 0.3  # BigQuery ML's default for both metrics
OTHER = "(other)"  # the values of a categorical column beyond the kept ones


@dataclass(frozen=True)
class Sample:
    """Rows of numeric columns (NaN kept), each weighted by the rows it stands for."""

    values: np.ndarray  # rows x columns, float64
    weights: np.ndarray  # per row

    @classmethod
    def of_columns(cls, columns: list[np.ndarray]) -> Sample:
        """About ``BATCH_SAMPLE`` evenly spaced rows of a batch held as one array per column."""
        n = len(columns[0]) if columns else 0
        step = max(1, -(-n // BATCH_SAMPLE))
        values = (np.column_stack([np.asarray(c[::step], dtype=np.float64) for c in columns])
                  if columns else np.empty((len(range(0, n, step)), 0)))
        weights = np.full(len(values), float(step))
        if len(weights):  # the last sampled row stands for the rows left at the batch's end
            weights[-1] = n - step * (len(weights) - 1)
        return cls(values, weights)

    def merge(self, other: Sample) -> Sample:
        """Both samples, thinned to ``SAMPLE_ROWS`` rows (systematic weighted resampling)."""
        values = np.concatenate([self.values, other.values])
        weights = np.concatenate([self.weights, other.weights])
        if len(weights) <= SAMPLE_ROWS:
            return Sample(values, weights)
        cumulative = np.cumsum(weights)
        total = cumulative[-1]
        points = (np.arange(SAMPLE_ROWS) + 0.5) * (total / SAMPLE_ROWS)
        chosen = np.minimum(np.searchsorted(cumulative, points, side="right"), len(weights) - 1)
        return Sample(values[chosen], np.full(SAMPLE_ROWS, total / SAMPLE_ROWS))


@dataclass(frozen=True)
class DataProfile:
    """What a data set looks like, column by column: numeric histograms over bins (their
    interior edges; the outer bins are open) and categorical value frequencies."""

    rows: int
    numeric: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]  # edges, fractions
    categorical: dict[str, dict[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows,
                "numeric": {c: {"edges": list(e), "fractions": list(f)}
                            for c, (e, f) in self.numeric.items()},
                "categorical": {c: dict(v) for c, v in self.categorical.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataProfile:
        return cls(int(data.get("rows", 0)),
                   {c: (tuple(v["edges"]), tuple(v["fractions"]))
                    for c, v in data.get("numeric", {}).items()},
                   {c: dict(v) for c, v in data.get("categorical", {}).items()})


def profile_of(sample: Sample | None, numeric: list[str], counts: dict[str, pd.Series] | None,
               rows: int, edges: dict[str, tuple[float, ...]] | None = None) -> DataProfile:
    """The profile of a data set from its sample (of the ``numeric`` columns, in order) and
    the value counts of its categorical columns; bins from the sample's quantiles, or the
    given ``edges`` (a reference profile's, to compare with)."""
    histograms = {}
    for j, column in enumerate(numeric if sample is not None else ()):
        present = ~np.isnan(sample.values[:, j])
        values, weights = sample.values[present, j], sample.weights[present]
        if not values.size:
            continue
        cut = edges[column] if edges is not None else _equal_mass_edges(values, weights)
        bins = np.searchsorted(np.asarray(cut, dtype=float), values, side="left")
        mass = np.bincount(bins, weights=weights, minlength=len(cut) + 1)
        histograms[column] = (tuple(map(float, cut)), tuple(map(float, mass / mass.sum())))
    frequencies = {}
    for column, series in (counts or {}).items():
        total = float(series.sum())
        if total:
            top = series.sort_values(ascending=False, kind="stable").head(TOP_VALUES)
            kept = {str(k): float(v) / total for k, v in top.items()}
            if len(series) > TOP_VALUES:
                kept[OTHER] = 1.0 - sum(kept.values())
            frequencies[column] = kept
    return DataProfile(int(rows), histograms, frequencies)


def _equal_mass_edges(values: np.ndarray, weights: np.ndarray) -> tuple[float, ...]:
    """The interior edges of ``BINS`` bins of equal weighted mass (fewer where values repeat)."""
    # Not a stable sort: ties share one value, so their order cannot move an edge (the mass
    # before and after a run of ties is the same), and this sort is 4x faster on the sample.
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    targets = cumulative[-1] * np.arange(1, BINS) / BINS
    cut = values[order][np.minimum(np.searchsorted(cumulative, targets), len(values) - 1)]
    return tuple(np.unique(cut))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """The Jensen-Shannon divergence of two distributions, base 2 (0: equal, 1: disjoint)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        inside = a > 0
        return float(np.sum(a[inside] * np.log2(a[inside] / m[inside])))

    return max(0.0, (kl(p) + kl(q)) / 2)


def l_infinity(p: dict[str, float], q: dict[str, float]) -> float:
    """The largest difference in frequency of any value."""
    return max((abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q)), default=0.0)


def compare(reference: DataProfile, current: DataProfile,
            threshold: float = THRESHOLD) -> pd.DataFrame:
    """One row per column both profiles hold: input, metric, value, threshold, is_anomaly
    (numeric: Jensen-Shannon divergence; categorical: L-infinity distance)."""
    rows = []
    for column, (_, fractions) in reference.numeric.items():
        if column in current.numeric:
            value = jensen_shannon(fractions, current.numeric[column][1])
            rows.append((column, "jensen_shannon_divergence", value))
    for column, frequencies in reference.categorical.items():
        if column in current.categorical:
            rows.append((column, "l_infinity", l_infinity(frequencies, current.categorical[column])))
    table = pd.DataFrame(rows, columns=["input", "metric", "value"])
    table["value"] = table["value"].round(6)
    table["threshold"] = float(threshold)
    table["is_anomaly"] = table["value"] > threshold
    return table


@dataclass(frozen=True)
class Observation:
    """What one pass saw of a data set: its rows, a sample of its numeric columns and the value
    counts of its categorical ones."""

    rows: int
    sample: Sample
    counts: dict[str, pd.Series]

    def merge(self, other: Observation) -> Observation:
        return Observation(self.rows + other.rows, self.sample.merge(other.sample),
                           merge_counts(self.counts, other.counts))


def _observe_part(part: Any, numeric: list[str], categorical: list[str]) -> Observation:
    seen = None
    for frame in batches(part):
        one = Observation(len(frame), Sample.of_columns(numeric_arrays(frame, numeric)),
                          count_values(frame, categorical))
        seen = one if seen is None else seen.merge(one)
    return seen


def _merged(a: Observation, b: Observation) -> Observation:
    return a.merge(b)


def observations(frames: list[Any], numeric: list[str], categorical: list[str],
                 where: Any = None, progress: bool = False) -> list[Observation]:
    """One parallel pass over each of ``frames`` (dask DataFrames, read at once): the rows
    ``where`` keeps, a sample of the ``numeric`` columns, counts of the ``categorical`` ones."""
    import dask

    columns = [*numeric, *categorical]
    graphs = [tree_reduce([dask.delayed(_observe_part)(part, numeric, categorical)
                           for part in where_partitions(frame, where, columns)], _merged)
              for frame in frames]
    return list(compute(*graphs, progress="validate" if progress else False))


def validate_against(reference: DataProfile, frame: Any, where: Any = None,
                     threshold: float = THRESHOLD, progress: bool = False) -> pd.DataFrame:
    """The columns of ``frame`` compared with a model's training profile (see :func:`compare`),
    in one parallel pass; the two profiles are in ``table.attrs["profiles"]``."""
    check_threshold(threshold)
    numeric, categorical = list(reference.numeric), list(reference.categorical)
    (seen,) = observations([frame], numeric, categorical, where, progress)
    edges = {column: cut for column, (cut, _) in reference.numeric.items()}
    current = profile_of(seen.sample, numeric, seen.counts, seen.rows, edges)
    return _with_profiles(compare(reference, current, threshold), reference, current)


def drift(frame: Any, reference_frame: Any, threshold: float = THRESHOLD,
          progress: bool = False) -> pd.DataFrame:
    """The columns ``frame`` shares with ``reference_frame`` compared (the reference's bins), in
    one parallel pass over each, read at once."""
    check_threshold(threshold)
    shared = [c for c in reference_frame.columns if c in set(frame.columns)]
    if not shared:
        raise ColumnNotFoundError("the two sources share no column to compare: "
                                  f"{list(frame.columns)[:10]} and {list(reference_frame.columns)[:10]}")
    numeric = [c for c in shared if _is_numeric(reference_frame.dtypes[c])]
    categorical = [c for c in shared if c not in numeric]
    current_seen, reference_seen = observations([frame, reference_frame], numeric, categorical,
                                                progress=progress)
    reference = profile_of(reference_seen.sample, numeric, reference_seen.counts,
                           reference_seen.rows)
    edges = {column: cut for column, (cut, _) in reference.numeric.items()}
    current = profile_of(current_seen.sample, numeric, current_seen.counts, current_seen.rows,
                         edges)
    return _with_profiles(compare(reference, current, threshold), reference, current)


def _is_numeric(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)


def _with_profiles(table: pd.DataFrame, reference: DataProfile,
                   current: DataProfile) -> pd.DataFrame:
    table.attrs["profiles"] = (reference, current)
    return table


def check_threshold(threshold: Any) -> float:
    """A threshold is a number from 0 to 1, as both metrics are."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
            or not 0 <= threshold <= 1:
        raise ParameterError(f"the threshold must be a number from 0 to 1, not {threshold!r}")
    return float(threshold)
