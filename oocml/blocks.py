"""Training blocks: how many rows one holds, and the numeric columns of a batch turned into
the row-major arrays scikit-learn wants, fast.

A batch read from parquet holds one array per column; scikit-learn's estimators
want C-ordered rows. Going through ``ColumnTransformer`` and ``Pipeline`` costs a
copy per step and checks that take longer than the arithmetic; here the rows are
gathered once and the fitted steps transform that fresh array in place, each
with its own ``transform``: the same numbers, faster (benchmarks/README.md,
"Measurements behind the rules").
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn import get_config
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .errors import DataError

BLOCK_BYTES = 8 << 20  # rows per partial_fit call, by default: this many bytes of prepared rows
ROW_CHUNK = 4096  # rows gathered and scaled at a time: the fastest of 1,024 to 8,192 here (640 KB
# of 20 float64 columns stays in cache; smaller chunks cost more numpy calls)


def block_step(X: Any) -> int:
    """Rows in ``BLOCK_BYTES`` of rows like those of ``X``: small enough for ``partial_fit``
    to visit its rows in cache (benchmarks/README.md, "Measurements behind the rules")."""
    n, width = X.shape[0], X.shape[1] if X.ndim == 2 else 1
    if sparse.issparse(X):  # the bytes a sparse row holds, not its width (2**20 for text)
        row_bytes = (X.data.nbytes + X.indices.nbytes) // max(n, 1)
    else:
        row_bytes = width * getattr(getattr(X, "dtype", None), "itemsize", 8)  # a frame: 8
    return max(256, BLOCK_BYTES // max(row_bytes, 1))


def numeric_arrays(frame: pd.DataFrame, columns: list[str]) -> list[np.ndarray]:
    """Each column as a 1-D float array: without a copy for float columns, else converted
    with missing values as NaN (integers, booleans, nullable and arrow-backed numbers)."""
    arrays = []
    for name in columns:
        series = frame[name]
        if isinstance(series.dtype, np.dtype) and series.dtype.kind == "f":
            arrays.append(series.to_numpy())
        else:
            arrays.append(series.to_numpy(dtype=np.float64, na_value=np.nan))
    return arrays


def float_dtype(arrays: list[np.ndarray]) -> np.dtype:
    """float32 when every column is float32 (scikit-learn keeps it), else float64."""
    return np.dtype(np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64)


def side_by_side(arrays: list[np.ndarray], order: str = "C") -> np.ndarray:
    """The columns side by side as one 2-D array (float32 if they all are): C-ordered rows,
    as ``partial_fit`` wants them, or Fortran-ordered, as pandas hands a frame's values to
    scikit-learn (the same layout gives the same rounding in the BLAS products of predict)."""
    dtype = float_dtype(arrays)
    columns = np.stack(arrays, axis=0, dtype=dtype)  # each column written whole: fast
    if order == "F":
        return columns.T
    # One transposing copy writes rows faster than stacking columns along axis 1, which
    # writes every value with a stride (benchmarks/README.md, "Measurements behind the rules").
    return np.ascontiguousarray(columns.T)


def numeric_head(pipeline: Pipeline) -> tuple[list[str], Pipeline] | None:
    """``(columns, rest)`` when ``pipeline`` starts by selecting numeric columns as they are
    (oocml's ``select`` step), so that ``rest`` can run on rows gathered from those columns;
    None otherwise (a ColumnTransformer with encoders, which take the frame)."""
    if not isinstance(pipeline, Pipeline) or not pipeline.steps:
        return None
    head = pipeline.steps[0][1]
    if (not isinstance(head, ColumnTransformer) or not hasattr(head, "transformers_")
            or head.remainder != "drop" or len(head.transformers) != 1):
        return None
    _, how, columns = head.transformers[0]
    if how != "passthrough" or not isinstance(columns, list):
        return None
    return columns, pipeline[1:]


def apply_rows(pipeline: Pipeline, frame: pd.DataFrame, method: str) -> Any:
    """``pipeline.method(frame)`` (transform, predict, predict_proba, ...): the same numbers,
    computed on rows gathered straight from the columns when the pipeline allows it
    (``transform`` returns C-ordered rows, ready for ``partial_fit``).

    The gathered rows are a fresh array, so the transformers work on it in place (each
    one's own ``transform``, told not to copy); the steps run one after the other rather
    than through ``Pipeline``, whose checks cost more than scaling a batch.
    """
    if numeric_head(pipeline) is None:
        return getattr(pipeline, method)(frame)  # dense, or sparse from a hashing encoder
    if method == "transform":
        return prepared_rows(pipeline, frame, "C")
    return np.asarray(getattr(pipeline.steps[-1][1], method)(prepared_rows(pipeline[:-1], frame)))


def prepared_rows(prep: Pipeline, frame: pd.DataFrame, order: str = "F") -> Any:
    """``prep.transform(frame)``: for a model's prediction, rows laid out as pandas hands
    them to scikit-learn (``order="F"``: the same rounding in predict's BLAS products), or
    C-ordered for ``partial_fit``."""
    split = numeric_head(prep)
    if split is None:
        return prep.transform(frame)
    columns, rest = split
    arrays = numeric_arrays(frame, columns)
    steps = [step for _, step in rest.steps if step is not None and step != "passthrough"]
    if order == "C" and len(steps) == 1 and _standardizes(steps[0]) and arrays:
        return standardized_rows(arrays, steps[0])
    X = side_by_side(arrays, order)
    for step in steps:
        X = in_place(step).transform(X)
    return X


def _standardizes(step: Any) -> bool:
    """Whether ``step`` is a fitted StandardScaler that :func:`standardized_rows` can stand in
    for: its input need not be checked finite (the statistics pass did it)."""
    return type(step) is StandardScaler and get_config()["assume_finite"]


def standardized_rows(arrays: list[np.ndarray], scaler: StandardScaler) -> np.ndarray:
    """``scaler.transform(side_by_side(arrays))`` in one pass: C-ordered rows gathered
    ``ROW_CHUNK`` at a time and scaled while in cache, with the very operations of
    ``StandardScaler.transform`` (the same numbers, bit for bit), instead of a stack, a
    transposing copy and two passes over memory (benchmarks/README.md, "Measurements
    behind the rules")."""
    dtype = float_dtype(arrays)
    out = np.empty((len(arrays[0]), len(arrays)), dtype=dtype)
    mean = scaler.mean_.astype(dtype) if scaler.with_mean else None
    scale = scaler.scale_.astype(dtype) if scaler.with_std else None
    for start in range(0, out.shape[0], ROW_CHUNK):
        rows = out[start:start + ROW_CHUNK]
        for j, column in enumerate(arrays):
            piece = column[start:start + ROW_CHUNK]
            if mean is None:
                rows[:, j] = piece
            else:
                np.subtract(piece, mean[j], out=rows[:, j])
        if scale is not None:
            rows /= scale
    return out


def in_place(step: Any) -> Any:
    """``step``, or a shallow copy of it that transforms without copying its input."""
    if getattr(step, "copy", None) is not True:
        return step
    step = copy.copy(step)
    step.copy = False
    return step


def applied(pipeline: Pipeline, frame: pd.DataFrame, method: str) -> Any:
    """:func:`apply_rows` for scoring and prediction: data the model cannot take (missing or
    infinite values it has no imputer for) is refused by a :class:`DataError` naming the
    columns, not scikit-learn's bare message. The check runs only when the model fails."""
    try:
        return apply_rows(pipeline, frame, method)
    except ValueError as exc:
        raise unusable(frame, exc) from exc


def unusable(frame: pd.DataFrame, exc: Exception) -> Exception:
    """The error to raise for ``frame``, which a model refused with ``exc``."""
    numeric = frame.select_dtypes("number")
    missing = {c: int(k) for c, k in numeric.isna().sum().items() if k}
    if missing:
        return DataError(f"missing values (NaN) in feature column(s) {missing}, and the model "
                         "has no imputer: drop those rows first, or train with one "
                         "(IMPUTE mean / .impute('mean'))")
    infinite = {c: int(k) for c, k in np.isinf(numeric.astype(float)).sum().items() if k}
    if infinite:
        return DataError(f"infinite values in feature column(s) {infinite}; clean or clip "
                         "them first")
    return DataError(f"the model cannot use this data: {exc}")


def stack_rows(pieces: list[Any]) -> Any:
    """Blocks of rows, one after the other (arrays, sparse matrices, pandas objects or None)."""
    if len(pieces) == 1 or pieces[0] is None:
        return pieces[0]
    if isinstance(pieces[0], pd.DataFrame | pd.Series):
        return pd.concat(pieces)
    if sparse.issparse(pieces[0]):
        return sparse.vstack(pieces, format=pieces[0].format)
    return np.concatenate(pieces)


def take_rows(data: Any, rows: Any) -> Any:
    """Rows of an array, sparse matrix, pandas object (by position), or None."""
    if data is None:
        return None
    if isinstance(data, pd.DataFrame | pd.Series):
        return data.iloc[rows]
    return data[rows]
