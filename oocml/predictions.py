"""What runs on each partition when a model predicts or samples: the fitted pipeline applied to
one partition's rows, a batch at a time, its output shaped as the model's lazy result says
(plain values describe it, so that dask never takes an argument for a collection)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .blocks import applied
from .io.partitions import batches, whole_partition


def apply_block(frame: pd.DataFrame, pipeline: Pipeline, features: list, method: str,
                 shape: tuple, keep: tuple = ()) -> Any:
    """``pipeline.method`` on one partition; ``shape`` is (column names or series name, dtype)."""
    names, dtype = shape
    as_numpy = dtype if isinstance(dtype, np.dtype) else np.dtype(object)  # string labels
    if len(frame) == 0:
        out = np.empty((0, len(names)) if isinstance(names, tuple) else 0, dtype=as_numpy)
    else:
        out = np.asarray(applied(pipeline, frame[features], method)).astype(as_numpy, copy=False)
    if isinstance(names, tuple):
        result = pd.DataFrame(out.reshape(len(frame), len(names)), index=frame.index,
                              columns=list(names))
    else:
        result = pd.Series(out, index=frame.index, name=names, dtype=dtype)
    if not keep:
        return result
    return pd.concat([result.to_frame() if isinstance(result, pd.Series) else result,
                      frame[list(keep)]], axis=1)


def apply_part(part: Any, *args: Any) -> Any:
    """:func:`apply_block` on a partition, a batch at a time (``args`` as there)."""
    return pd.concat([apply_block(frame, *args) for frame in batches(part)])


def sample_rows(part: Any, n: int, seed: int) -> pd.DataFrame:
    """Up to ``n`` rows of a partition, the same ones on every run."""
    frame = whole_partition(part)
    if len(frame) <= n:
        return frame
    rows = np.sort(np.random.default_rng([seed, len(frame)]).choice(len(frame), n, replace=False))
    return frame.iloc[rows]
