"""A data profile: one row per column, from one parallel pass over the data.

``profile(frame)`` (or ``ddf.ml.profile()``) gives, for every column in the data's order:
its dtype (from the frame's metadata, before any read), ``rows`` (values present) and
``missing`` (NaN/None); for numeric and bool columns ``mean``, ``std`` (sample, ddof=1),
``min`` and ``max``; for string, categorical and other columns ``distinct`` and ``top``,
the ``TOP`` most frequent values with their counts as text: ``"paris (120), rome (80)"``.

Invariants:

- One read. Each partition is read a batch at a time (:func:`oocml.io.partitions.batches`)
  into a small mergeable :class:`Profile`; the partitions' profiles are merged in a fixed
  tree (:func:`oocml.execution.tree_reduce`), so the result is the same on any scheduler.
- The numbers are pandas' on the same rows in memory: ``describe()``'s count, mean, std,
  min and max (infinities are values, as in pandas: a mean may be ``inf``, a std NaN),
  and ``value_counts()``'s counts. Ties among the top values are broken by the value's text.
- Bounded memory. A numeric column costs a few numbers; the value counts of a column keep
  at most ``MAX_DISTINCT`` values (:mod:`oocml.encoding`'s limit). Past it, ``distinct``
  reads ``">100000"`` and the counts are cut, at each batch and merge, to the
  ``MAX_DISTINCT`` most frequent values: the top values are then those of the counts kept,
  and their counts are lower bounds (exact for values frequent in every partition).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import pandas as pd
from dask.dataframe.utils import make_meta

from ..blocks import numeric_arrays
from ..encoding import MAX_DISTINCT, is_categorical
from ..errors import ColumnNotFoundError, ParameterError
from ..execution import compute, tree_reduce
from ..io.conditions import check_columns
from ..io.partitions import batches, read_ahead, where_partitions
from ..io.sources import as_dask
from ..io.text_faults import named_parse_errors
from ..plan import Condition
from ..progress import progress_enabled
from ..sketches import Moments

TOP = 5  # most frequent values shown per column
COLUMNS = ("column", "dtype", "rows", "missing", "mean", "std", "min", "max", "distinct", "top")


@dataclass(frozen=True)
class Profile:
    """Mergeable statistics of some consecutive rows: moments of the numeric columns (finite
    values), their infinities, and value counts of the other columns."""

    moments: Moments  # of the numeric columns, in order; ``rows`` counts every row
    posinf: np.ndarray  # +inf values per numeric column
    neginf: np.ndarray  # -inf values per numeric column
    counts: tuple[pd.Series, ...]  # per other column: value -> count, at most MAX_DISTINCT values
    missing: np.ndarray  # missing values per other column
    cut: np.ndarray  # per other column: more than MAX_DISTINCT values seen, counts cut

    def merge(self, other: Profile) -> Profile:
        counts = [bounded(added(a, b)) for a, b in zip(self.counts, other.counts)]
        return Profile(self.moments.merge(other.moments), self.posinf + other.posinf,
                       self.neginf + other.neginf, tuple(c for c, _ in counts),
                       self.missing + other.missing,
                       self.cut | other.cut | np.array([cut for _, cut in counts], bool))


def added(a: pd.Series, b: pd.Series) -> pd.Series:
    """Two value counts summed, hashed rather than sorted (2.5x faster on 100,000 strings), in
    the order the values first appear: the same order for the same inputs."""
    return pd.concat([a, b]).groupby(level=0, sort=False).sum().astype(np.int64)


def bounded(counts: pd.Series) -> tuple[pd.Series, bool]:
    """``counts`` cut to its ``MAX_DISTINCT`` most frequent values, and whether it was cut."""
    if len(counts) <= MAX_DISTINCT:
        return counts, False
    return counts.nlargest(MAX_DISTINCT, keep="first"), True


def value_counts(values: pd.Series) -> pd.Series:
    """How often each present value occurs (categoricals: only the categories seen, keyed by
    the values themselves, so batches with other categories merge)."""
    counts = values.value_counts(dropna=True, sort=False)
    if isinstance(values.dtype, pd.CategoricalDtype):
        counts = counts[counts > 0]
        counts.index = counts.index.astype(object)
    return counts.astype(np.int64)


def profile_batch(frame: pd.DataFrame, numeric: list[str], other: list[str]) -> Profile:
    """The profile of one batch of rows."""
    columns = numeric_arrays(frame, numeric)
    infinite = np.zeros(len(numeric), np.int64)
    with np.errstate(invalid="ignore"):  # inf and -inf in one column are values here, summed
        moments = Moments.of_columns(columns, len(frame), infinite)
    posinf = np.array([np.isposinf(c).sum() if n else 0 for c, n in zip(columns, infinite)],
                      np.int64)
    counts = [bounded(value_counts(frame[name])) for name in other]
    missing = np.array([frame[name].isna().sum() for name in other], np.int64)
    return Profile(moments, posinf, infinite - posinf, tuple(c for c, _ in counts), missing,
                   np.array([cut for _, cut in counts], bool))


def profile_part(part: Any, numeric: list[str], other: list[str], ahead: bool = False) -> Profile:
    """The profile of one partition, merged from its batches; with ``ahead``, the next batch
    is read while this one is summarized."""
    result = None
    for frame in (read_ahead if ahead else iter)(batches(part)):
        one = profile_batch(frame, numeric, other)
        result = one if result is None else result.merge(one)
    return result


def _merge(a: Profile, b: Profile) -> Profile:
    return a.merge(b)


def profile(frame: Any, *, columns: Sequence[str] | None = None, exclude: Sequence[str] = (),
            where: Condition | None = None, progress: bool | None = False) -> pd.DataFrame:
    """The profile of a dask or pandas DataFrame: one row per column, in one parallel pass.

    ``columns``: profile only these (default: every column), less ``exclude``; ``where``:
    only the rows satisfying this condition. Rows are listed in the data's column order;
    the columns are ``column, dtype, rows, missing, mean, std, min, max, distinct, top``
    (see the module's docstring, also for what happens past ``MAX_DISTINCT`` values).
    ``progress``: oocml's progress line on stderr (None: when stderr is a terminal).
    """
    dtypes = frame.dtypes if isinstance(frame, pd.DataFrame) else None  # pandas' own, as given
    frame = as_dask(frame)
    available = list(frame.columns)
    chosen = chosen_columns(available, columns, exclude)
    meta = make_meta(frame)
    other = [c for c in chosen if is_categorical(meta[c].dtype)]
    numeric = [c for c in chosen if c not in other]
    if where is not None:
        check_columns(where, available)
    parts = where_partitions(frame, where, chosen)
    # Fewer partitions than cores (one big file): each reads its next batch on another thread.
    ahead = len(parts) < int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
    summaries = [dask.delayed(profile_part)(p, numeric, other, ahead) for p in parts]
    if summaries:
        with named_parse_errors(frame):
            (result,) = compute(tree_reduce(summaries, _merge),
                                progress="profile" if progress_enabled(progress) else False)
    else:  # no partitions at all: an empty data set
        result = profile_batch(meta[chosen], numeric, other)
    return table(result, meta.dtypes if dtypes is None else dtypes, chosen, numeric, other)


def chosen_columns(available: list[str], columns: Sequence[str] | None,
                   exclude: Sequence[str]) -> list[str]:
    """The columns to profile, in the data's order; every name checked."""
    if isinstance(columns, str) or isinstance(exclude, str):
        raise ParameterError("columns= and exclude= take lists of column names, not a string")
    for role, names in (("column", columns or ()), ("excluded column", exclude)):
        for name in names:
            if name not in available:
                raise ColumnNotFoundError(name, available, role=role)
    wanted = set(available if columns is None else columns) - set(exclude)
    return [c for c in available if c in wanted]


def table(result: Profile, dtypes: pd.Series, chosen: list[str], numeric: list[str],
          other: list[str]) -> pd.DataFrame:
    """The profile as a DataFrame, one row per column of ``chosen``."""
    numbered = {name: i for i, name in enumerate(numeric)}
    counted = {name: j for j, name in enumerate(other)}
    rows = [_numeric_row(result, numbered[name]) if name in numbered
            else _other_row(result, counted[name]) for name in chosen]
    values = list(zip(*rows)) if rows else [()] * (len(COLUMNS) - 2)
    kinds = (np.int64, np.int64, np.float64, np.float64, np.float64, np.float64, object, object)
    data = {"column": pd.Series(chosen, dtype=object),
            "dtype": pd.Series([str(dtypes[c]) for c in chosen], dtype=object)}
    for name, kind, column in zip(COLUMNS[2:], kinds, values):
        data[name] = pd.Series(column, dtype=kind)  # object: ints, text and None as they are
    return pd.DataFrame(data, columns=list(COLUMNS))


def _numeric_row(result: Profile, i: int) -> tuple:
    """rows, missing, mean, std, min, max, distinct, top of numeric column ``i``, as pandas
    computes them with infinities among the values."""
    m, pos, neg = result.moments, int(result.posinf[i]), int(result.neginf[i])
    present = int(m.count[i]) + pos + neg
    missing = m.rows - present
    if present == 0:
        return present, missing, math.nan, math.nan, math.nan, math.nan, None, None
    mean = math.nan if pos and neg else math.inf if pos else -math.inf if neg else m.mean[i]
    std = math.nan if pos or neg or present < 2 else math.sqrt(m.m2[i] / (present - 1))
    low = -math.inf if neg else m.min[i]  # m.min is +inf when every value is +inf
    high = math.inf if pos else m.max[i]
    return present, missing, mean, std, low, high, None, None


def _other_row(result: Profile, j: int) -> tuple:
    """rows, missing, mean, std, min, max, distinct, top of non-numeric column ``j``."""
    counts, missing = result.counts[j], int(result.missing[j])
    distinct = f">{MAX_DISTINCT}" if result.cut[j] else len(counts)
    return (result.moments.rows - missing, missing, math.nan, math.nan, math.nan, math.nan,
            distinct, top_values(counts))


def top_values(counts: pd.Series, n: int = TOP) -> str:
    """The ``n`` most frequent values with their counts, ``"a (3), b (1)"``; ties in the
    order of the values' text."""
    if counts.empty:
        return ""
    candidates = counts.nlargest(n, keep="all")  # the n largest, and every value tied with them
    ranked = sorted(candidates.items(), key=lambda item: (-item[1], str(item[0])))[:n]
    return ", ".join(f"{value} ({count})" for value, count in ranked)
