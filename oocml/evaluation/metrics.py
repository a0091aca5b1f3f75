"""Metrics out-of-core: additive per-block totals, summed by a tree, from which every metric
is derived exactly.

A block's totals are a dict of numbers and arrays: rows, the confusion matrix, the
log-loss sum and per-class histograms of the scores (:mod:`oocml.evaluation.curves`) for a
classifier; residual sums (and, when asked, a residual sketch) for a regressor; inertia
for clustering. Totals of any blocks add up, so the sum over a partition, a holdout or a
whole data set gives the same metrics whatever the partitioning, in one parallel pass.
The reduction has a fixed shape (:func:`oocml.execution.tree_reduce`), so the bits are
the same on every scheduler.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from ..blocks import applied
from ..errors import DataError
from ..execution import compute, tree_reduce
from ..io.partitions import batches, partitions
from .curves import BINS, average_precision, curves, histograms, roc_auc

Totals = dict[str, Any]
RESIDUAL_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def block_totals(frame: pd.DataFrame, pipeline: Any, features: list, target: str | None,
                 task: str, classes: list | None, residuals: bool = False,
                 scores: bool = True) -> Totals:
    """Additive sums of one block, from which every metric is derived exactly; ``scores``:
    a classifier's log-loss and score histograms too (not needed for accuracy alone);
    ``residuals``: a regressor's residual sketch."""
    if task != "clustering" and frame[target].hasnans:  # a boolean index copies every column
        frame = frame[frame[target].notna()]
    n, X = len(frame), frame[features]
    if task == "classification":
        return _classification(frame[target].to_numpy(), X, pipeline, classes, scores)
    if task == "regression":
        y = frame[target].to_numpy(dtype=np.float64)
        residual = y - applied(pipeline, X, "predict") if n else y
        totals = {"n": n, "sum_y": y.sum(), "sum_y2": (y * y).sum(),
                  "sse": (residual ** 2).sum(), "sae": np.abs(residual).sum()}
        if residuals:
            from ..sketches import QuantileSketch

            totals["residuals"] = QuantileSketch.of_columns([residual])
        return totals
    return {"n": n, "inertia": -pipeline.score(X) if n else 0.0}


def _classification(y: np.ndarray, X: pd.DataFrame, pipeline: Any, classes: list,
                    scores: bool) -> Totals:
    n, k = len(y), len(classes)
    method = scored(pipeline) if scores else None
    if not n:
        totals = {"n": 0, "cm": np.zeros((k, k), np.int64)}
        if method == "predict_proba":
            totals["log_loss"] = 0.0
        if method is not None:
            totals["hist"] = np.zeros((1 if k == 2 else k, 2, BINS), np.int64)
        return totals
    totals = {"n": n, "cm": confusion_counts(y, applied(pipeline, X, "predict"), classes)}
    if method is not None:
        scores = applied(pipeline, X, method)
        totals["hist"] = histograms(y, scores, classes, method == "predict_proba")
        if method == "predict_proba":
            totals["log_loss"] = log_loss_sum(y, scores, classes)
    return totals


def log_loss_sum(y: np.ndarray, proba: np.ndarray, classes: list) -> float:
    """``sklearn.metrics.log_loss(y, proba, labels=classes, normalize=False)``, without its
    input checks, which cost six times the rest of a block's scoring (benchmarks/README.md,
    "evaluate.py"); rows whose label is not in ``classes`` are left out, as the confusion
    counts leave them."""
    labels = np.asarray(classes)
    at = np.clip(np.searchsorted(labels, y), 0, len(labels) - 1)
    known = labels[at] == y
    eps = np.finfo(proba.dtype).eps
    picked = np.clip(proba[np.flatnonzero(known), at[known]], eps, 1 - eps)
    return float(-np.log(picked).sum())


def scored(pipeline: Any) -> str | None:
    """The method giving a classifier's scores for curves: probabilities where it has them,
    else its decision function; None for neither."""
    for method in ("predict_proba", "decision_function"):
        if hasattr(pipeline, method):
            return method
    return None


def add(a: Totals, b: Totals) -> Totals:
    """Two blocks' totals as one (sketches merged, everything else added)."""
    return {key: a[key].merge(b[key]) if hasattr(a[key], "merge") else a[key] + b[key]
            for key in a}


def add_all(rows: list[Totals]) -> Totals:
    return reduce(add, rows)


def part_totals(part: Any, *args: Any) -> Totals:
    """:func:`block_totals` of a partition, batch by batch (``args`` as there)."""
    return add_all([block_totals(frame, *args) for frame in batches(part)])


def sum_totals(sums: list[Any], progress: bool | str = False) -> Totals:
    """Delayed per-partition :func:`block_totals`, summed by a parallel tree reduction
    (``progress``: the pass's name on the progress line, or True)."""
    (totals,) = compute(tree_reduce(sums, add), progress=progress)
    return totals


def data_totals(data: Any, pipeline: Any, features: list, target: str | None, task: str,
                classes: list | None, residuals: bool = False, scores: bool = True) -> Totals:
    """The summed totals of a dask DataFrame (one parallel pass) or a pandas one."""
    args = (pipeline, features, target, task, classes, residuals, scores)
    if isinstance(data, dd.DataFrame):
        needed = features + [c for c in [target] if c and c not in features]
        totals = sum_totals([dask.delayed(part_totals)(part, *args)
                             for part in partitions(data[needed])])
    else:
        totals = block_totals(data, *args)
    if totals["n"] == 0:
        raise DataError("no rows to score (the data is empty or every target value is missing)")
    return totals


def score_from_totals(totals: Totals, task: str, classes: list | None) -> float:
    """``estimator.score`` from summed :func:`block_totals`: accuracy, R^2 or minus inertia."""
    if task == "classification":
        return float(np.trace(totals["cm"]) / totals["n"])
    if task == "regression":
        return float(1.0 - totals["sse"] / total_sum_of_squares(totals))
    return float(-totals["inertia"])


def metrics_rows(totals: Totals, task: str, classes: list | None) -> list[tuple[str, float]]:
    """(metric, value) pairs: accuracy/precision/recall/f1 (binary for two classes, else macro
    averages), log_loss, roc_auc and average_precision (one-vs-rest macro averages for more
    classes) for classifiers; r2/rmse/mae for regressors; inertia for clustering."""
    n = totals["n"]
    if task == "classification":
        report = class_report(totals, classes)
        average = "binary" if len(classes) == 2 else "macro"
        pick = ((lambda c: report[c].iloc[1]) if average == "binary"
                else (lambda c: report[c].mean()))
        rows = [("accuracy", np.trace(totals["cm"]) / n)]
        rows += [(f"{name} ({average})", pick(name)) for name in ("precision", "recall", "f1")]
        if "log_loss" in totals:
            rows.append(("log_loss", totals["log_loss"] / n))
        if "hist" in totals:  # the report's: the positive class's, or the mean over the classes
            rows += [(name, pick(name)) for name in ("roc_auc", "average_precision")]
        return rows
    if task == "regression":
        return [("r2", 1.0 - totals["sse"] / total_sum_of_squares(totals)),
                ("rmse", np.sqrt(totals["sse"] / n)), ("mae", totals["sae"] / n)]
    return [("inertia", totals["inertia"]), ("mean inertia", totals["inertia"] / n)]


def class_report(totals: Totals, classes: list) -> pd.DataFrame:
    """Per class: precision, recall, f1, support (true rows), predicted rows, and, where the
    model scores, the class's one-vs-rest roc_auc and average_precision."""
    cm = np.asarray(totals["cm"], dtype=np.float64)
    predicted, actual, right = cm.sum(axis=0), cm.sum(axis=1), np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, right / np.where(predicted > 0, predicted, 1), 0.0)
        recall = np.where(actual > 0, right / np.where(actual > 0, actual, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    report = pd.DataFrame({"class": list(classes), "precision": precision, "recall": recall,
                           "f1": f1, "support": actual.astype(np.int64),
                           "predicted": predicted.astype(np.int64)})
    if "hist" in totals:
        hists = totals["hist"]
        if len(classes) == 2:  # one curve, for the positive class; the other's mirrors it
            hists = np.stack([hists[0][::-1, ::-1], hists[0]])
        report["roc_auc"] = [roc_auc(h) for h in hists]
        report["average_precision"] = [average_precision(h) for h in hists]
    return report


def confusion_frame(totals: Totals, classes: list) -> pd.DataFrame:
    """The confusion matrix: one row per true class, one column per predicted class."""
    return pd.DataFrame(np.asarray(totals["cm"], dtype=np.int64),
                        index=pd.Index(list(classes), name="true"),
                        columns=pd.Index(list(classes), name="predicted"))


def curve_table(totals: Totals, classes: list, probabilities: bool) -> pd.DataFrame:
    """ROC and precision-recall curves (one-vs-rest per class beyond two)."""
    return curves(totals["hist"], classes, probabilities)


def residual_table(totals: Totals) -> pd.DataFrame:
    """Quantiles of the residuals (target minus prediction), from the merged sketch."""
    sketch = totals["residuals"]
    return pd.DataFrame({"quantile": RESIDUAL_QUANTILES,
                         "residual": [float(sketch.quantile(q)[0]) for q in RESIDUAL_QUANTILES]})


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


def total_sum_of_squares(totals: Totals) -> float:
    """sum((y - mean(y))**2) from the sums of y and y**2 (NaN when y is constant)."""
    sst = totals["sum_y2"] - totals["sum_y"] ** 2 / totals["n"]
    return sst if sst > 0 else np.nan
