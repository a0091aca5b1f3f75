"""Metrics out-of-core: additive per-block totals, summed by a tree, from which every metric
is derived exactly.

A block's totals (rows, confusion counts, log-loss sum, residual sums, inertia) are one
row of numbers; totals of any blocks add up, so the sum over a partition, a holdout or
a whole data set gives the same metrics as scikit-learn on the rows in memory, whatever
the partitioning. The reduction has a fixed shape (:func:`oocml.execution.tree_reduce`),
so the bits are the same on every scheduler.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from .blocks import applied
from .errors import DataError
from .execution import compute, tree_reduce
from .partitions import batches, partitions


def block_totals(frame: pd.DataFrame, pipeline: Any, features: list, target: str | None,
                 task: str, classes: list | None) -> pd.DataFrame:
    """Additive sums of one block, from which every metric is derived exactly."""
    if task != "clustering" and frame[target].hasnans:  # a boolean index copies every column
        frame = frame[frame[target].notna()]
    n = len(frame)
    X = frame[features]
    if task == "classification":
        k = len(classes)
        cm = (confusion_counts(frame[target].to_numpy(), applied(pipeline, X, "predict"),
                               classes)
              if n else np.zeros((k, k), np.int64))
        row = {"n": n, **{f"cm_{i}_{j}": int(cm[i, j]) for i in range(k) for j in range(k)}}
        if hasattr(pipeline, "predict_proba"):
            from sklearn.metrics import log_loss

            proba = applied(pipeline, X, "predict_proba") if n else None
            row["log_loss"] = (log_loss(frame[target].to_numpy(), proba, labels=classes,
                                        normalize=False) if n else 0.0)
    elif task == "regression":
        y = frame[target].to_numpy(dtype=np.float64)
        residual = y - applied(pipeline, X, "predict") if n else y
        row = {"n": n, "sum_y": y.sum(), "sum_y2": (y * y).sum(), "sse": (residual ** 2).sum(),
               "sae": np.abs(residual).sum()}
    else:
        row = {"n": n, "inertia": -pipeline.score(X) if n else 0.0}
    return pd.DataFrame([row])


def part_totals(part: Any, *args: Any) -> pd.DataFrame:
    """:func:`block_totals` of a partition, batch by batch (``args`` as there)."""
    return sum_rows([block_totals(frame, *args) for frame in batches(part)])


def sum_rows(rows: list[pd.DataFrame]) -> pd.DataFrame:
    """One-row frames of totals added into one."""
    return rows[0] if len(rows) == 1 else pd.concat(rows).sum().to_frame().T


def _add_totals(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    return sum_rows([a, b])


def sum_totals(sums: list[Any], progress: bool | str = False) -> pd.Series:
    """Delayed per-partition :func:`block_totals`, summed by a parallel tree reduction
    (``progress``: the pass's name on the progress line, or True)."""
    (totals,) = compute(tree_reduce(sums, _add_totals), progress=progress)
    return totals.sum()


def data_totals(data: Any, pipeline: Any, features: list, target: str | None, task: str,
                classes: list | None) -> pd.Series:
    """The summed totals of a dask DataFrame (one parallel pass) or a pandas one."""
    args = (pipeline, features, target, task, classes)
    if isinstance(data, dd.DataFrame):
        needed = features + [c for c in [target] if c and c not in features]
        totals = sum_totals([dask.delayed(part_totals)(part, *args)
                             for part in partitions(data[needed])])
    else:
        totals = block_totals(data, *args).sum()
    if totals["n"] == 0:
        raise DataError("no rows to score (the data is empty or every target value is missing)")
    return totals


def score_from_totals(totals: pd.Series, task: str, classes: list | None) -> float:
    """``estimator.score`` from summed :func:`block_totals`: accuracy, R^2 or minus inertia."""
    if task == "classification":
        return float(np.trace(confusion(totals, classes)) / totals["n"])
    if task == "regression":
        return float(1.0 - totals["sse"] / total_sum_of_squares(totals))
    return float(-totals["inertia"])


def metrics_rows(totals: pd.Series, task: str, classes: list | None) -> list[tuple[str, float]]:
    """(metric, value) pairs: accuracy/precision/recall/f1/log_loss for classifiers (binary
    for two classes, else macro averages), r2/rmse/mae for regressors, inertia for clustering."""
    n = totals["n"]
    if task == "classification":
        cm = confusion(totals, classes)
        predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(predicted > 0, np.diag(cm) / predicted, 0.0)
            recall = np.where(actual > 0, np.diag(cm) / actual, 0.0)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        average = "binary" if len(classes) == 2 else "macro"
        pick = (lambda v: v[1]) if average == "binary" else (lambda v: v.mean())
        rows = [("accuracy", np.trace(cm) / n), (f"precision ({average})", pick(precision)),
                (f"recall ({average})", pick(recall)), (f"f1 ({average})", pick(f1))]
        if "log_loss" in totals:
            rows.append(("log_loss", totals["log_loss"] / n))
        return rows
    if task == "regression":
        return [("r2", 1.0 - totals["sse"] / total_sum_of_squares(totals)),
                ("rmse", np.sqrt(totals["sse"] / n)), ("mae", totals["sae"] / n)]
    return [("inertia", totals["inertia"]), ("mean inertia", totals["inertia"] / n)]


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, classes: list) -> np.ndarray:
    """``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=classes)`` for sorted ``classes``,
    counted with one ``np.bincount`` (benchmarks/README.md, "Measurements behind the rules").
    Rows whose labels are not in ``classes`` are left out, as scikit-learn does."""
    labels = np.asarray(classes)
    k = len(labels)
    true_at = np.clip(np.searchsorted(labels, y_true), 0, k - 1)
    pred_at = np.clip(np.searchsorted(labels, y_pred), 0, k - 1)
    known = (labels[true_at] == y_true) & (labels[pred_at] == y_pred)
    return np.bincount(true_at[known] * k + pred_at[known], minlength=k * k).reshape(k, k)


def confusion(totals: pd.Series, classes: list) -> np.ndarray:
    """The confusion matrix (true class by row, predicted by column) held in ``totals``."""
    k = len(classes)
    return np.array([[totals[f"cm_{i}_{j}"] for j in range(k)] for i in range(k)], dtype=np.float64)


def total_sum_of_squares(totals: pd.Series) -> float:
    """sum((y - mean(y))**2) from the sums of y and y**2 (NaN when y is constant)."""
    sst = totals["sum_y2"] - totals["sum_y"] ** 2 / totals["n"]
    return sst if sst > 0 else np.nan
