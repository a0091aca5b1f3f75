"""Figures of a model and its evaluation: ROC and precision-recall curves, confusion matrix,
weights, training history.

Rules:
- Each function takes a small pandas frame that is already computed (curves, counts, weights,
  history: never the data) and returns a ``matplotlib.figure.Figure``. No pyplot: no global
  state, no backend to choose, safe in threads, servers and tests; show a figure by returning
  it in a notebook, write it with :func:`save`.
- matplotlib is optional and imported on first use; without it, an OocmlError names the extra.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ColumnNotFoundError, OocmlError, ParameterError
from .inspection import INTERCEPT

CURVE_COLUMNS = ("class", "threshold", "tpr", "fpr", "precision", "recall")
SCORES = {"progressive_score": "progressive (each block before training on it)",
          "holdout_score": "holdout"}
PANELS_PER_ROW = 3


def _new_figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise OocmlError('plots need matplotlib, which is not installed: pip install "oocml[plot]"'
                         ) from exc
    _inline_in_notebooks(Figure)
    return Figure(figsize=(width, height), layout="constrained")


def _inline_in_notebooks(figure_class: type) -> None:
    """In a Jupyter kernel, a returned figure shows as a PNG (as matplotlib's inline backend
    shows pyplot's); oocml's figures are not pyplot's, so they never show twice."""
    from ..progress import in_notebook

    if not in_notebook():
        return
    from IPython import get_ipython
    from IPython.core.pylabtools import print_figure

    png = get_ipython().display_formatter.formatters["image/png"]
    if figure_class not in png.type_printers:
        png.for_type(figure_class, lambda figure: print_figure(figure, "png"))


def _require(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], role: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise ColumnNotFoundError(column, list(frame.columns), role=f"{role} column")


# -- curves ---------------------------------------------------------------------------------------

def plot_roc(curve: pd.DataFrame) -> Any:
    """ROC curve per class (false positive rate against true positive rate), one-vs-rest for
    more than one class; the legend gives ``curve.attrs["roc_auc"][class]`` when present."""
    return _curves(curve, x="fpr", y="tpr", score="roc_auc", score_name="AUC",
                   title="ROC curve", labels=("false positive rate", "true positive rate"),
                   diagonal=True)


def plot_pr(curve: pd.DataFrame) -> Any:
    """Precision-recall curve per class, one-vs-rest for more than one class; the legend gives
    ``curve.attrs["average_precision"][class]`` when present."""
    return _curves(curve, x="recall", y="precision", score="average_precision", score_name="AP",
                   title="Precision-recall curve", labels=("recall", "precision"), diagonal=False)


def _curves(curve: pd.DataFrame, *, x: str, y: str, score: str, score_name: str, title: str,
            labels: tuple[str, str], diagonal: bool) -> Any:
    """One line per class, its points in decreasing threshold order (any row order works)."""
    _require(curve, CURVE_COLUMNS, "curve")
    figure = _new_figure(5.5, 5)
    axes = figure.add_subplot()
    scores = curve.attrs.get(score) or {}
    groups = list(curve.groupby("class", sort=False))
    for label, rows in groups:
        rows = rows.sort_values("threshold", ascending=False, kind="mergesort")
        text = str(label)
        if label in scores:
            text += f" ({score_name} = {float(scores[label]):.3f})"
        axes.plot(rows[x].to_numpy(float), rows[y].to_numpy(float), label=text)
    if diagonal:
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    axes.set(xlim=(0, 1), ylim=(0, 1.02), xlabel=labels[0], ylabel=labels[1],
             title=title + (" (one-vs-rest)" if len(groups) > 1 else ""))
    axes.legend(loc="lower right" if diagonal else "lower left", title="class")
    return figure


# -- confusion matrix ------------------------------------------------------------------------------

def plot_confusion(matrix: pd.DataFrame) -> Any:
    """The matrix as an image, true labels down (index), predicted labels across (columns),
    each cell annotated with its count."""
    values = matrix.to_numpy()
    counts = np.issubdtype(values.dtype, np.integer)
    rows, columns = values.shape
    figure = _new_figure(1.2 + 0.8 * max(columns, 4), 1 + 0.7 * max(rows, 4))
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues", vmin=0)
    middle = values.max() / 2 if values.size else 0
    for (i, j), value in np.ndenumerate(values):
        axes.text(j, i, f"{int(value):,}" if counts else f"{value:.2f}", ha="center", va="center",
                  color="white" if value > middle else "black")
    axes.set_xticks(range(columns), labels=[str(c) for c in matrix.columns])
    axes.set_yticks(range(rows), labels=[str(i) for i in matrix.index])
    axes.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    figure.colorbar(image, ax=axes, shrink=0.8)
    return figure


# -- weights --------------------------------------------------------------------------------------

def plot_weights(weights: pd.DataFrame, top: int = 20) -> Any:
    """Horizontal bars of the ``top`` weights by absolute value, largest at the top, one panel
    per column (per class for a multiclass model); the intercept is left out."""
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise ParameterError(f"top must be a whole number >= 1, not {top!r}")
    body = weights.drop(index=INTERCEPT, errors="ignore")
    if body.empty or body.shape[1] == 0:
        raise ParameterError("no weights to plot: the frame holds no feature rows")
    panels = list(body.columns)
    across = min(len(panels), PANELS_PER_ROW)
    down = math.ceil(len(panels) / across)
    shown = min(top, len(body))
    figure = _new_figure(4.5 * across + 1, down * (0.25 * shown + 1.2) + 0.5)
    grid = figure.subplots(down, across, squeeze=False)
    for axes, column in zip(grid.ravel(), panels):
        _weight_bars(axes, body[column], top)
        axes.set_title(str(column) if len(panels) > 1 else "")
    for axes in grid.ravel()[len(panels):]:
        axes.set_visible(False)
    units = weights.attrs.get("units")
    figure.suptitle(f"Top {shown} weights by |weight|" + (f" ({units} units)" if units else ""))
    return figure


def _weight_bars(axes: Any, column: pd.Series, top: int) -> None:
    order = column.abs().sort_values(ascending=False, kind="mergesort").index[:top]
    chosen = column.loc[order][::-1]  # barh draws from the bottom: largest last, at the top
    values = chosen.to_numpy(float)
    axes.barh(np.arange(len(values)), values,
              color=np.where(values >= 0, "tab:blue", "tab:red"))
    axes.set_yticks(np.arange(len(values)), labels=[str(n) for n in chosen.index])
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_xlabel("weight")


# -- training history -----------------------------------------------------------------------------

def plot_history(history: pd.DataFrame) -> Any:
    """The scores per epoch (``Model.history_``): the progressive and holdout scores present."""
    _require(history, ["epoch"], "history")
    scores = [c for c in SCORES if c in history.columns and history[c].notna().any()]
    if not scores:
        raise ParameterError("the history holds no scores to plot: train with a holdout "
                             "(holdout=0.2 / HOLDOUT 0.2) to score every epoch")
    from matplotlib.ticker import MaxNLocator

    figure = _new_figure(6, 4)
    axes = figure.add_subplot()
    epochs = history["epoch"].to_numpy(float)
    for column in scores:
        axes.plot(epochs, history[column].to_numpy(float), marker="o", label=SCORES[column])
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set(xlabel="epoch", ylabel="score", title="Training history")
    axes.legend()
    return figure


# -- skew and drift -------------------------------------------------------------------------------

DRIFT_PANELS = 6  # columns drawn at most, the most drifted first
METRIC_NAMES = {"jensen_shannon_divergence": "JS divergence", "l_infinity": "L-inf distance"}


def plot_drift(validation: pd.DataFrame, everything: bool = False) -> Any:
    """The histograms of a VALIDATE result (``Model.validate`` or ``drift``) overlaid, one panel
    per anomalous column (``everything``: every column), the most drifted first: numeric
    columns over the reference's bins, categorical ones over their most frequent values."""
    profiles = validation.attrs.get("profiles")
    if profiles is None:
        raise ParameterError("this table holds no histograms: pass what VALIDATE, "
                             "Model.validate or oocml.evaluation.drift.drift returned")
    reference, current = profiles
    shown = validation if everything else validation[validation["is_anomaly"]]
    shown = shown.sort_values("value", ascending=False).head(DRIFT_PANELS)
    if shown.empty:
        raise ParameterError("no column drifted beyond the threshold: nothing to draw "
                             "(plot_drift(table, everything=True) draws every column)")
    across = min(len(shown), PANELS_PER_ROW)
    down = math.ceil(len(shown) / across)
    figure = _new_figure(4 * across, 3.2 * down)
    for i, row in enumerate(shown.itertuples()):
        axes = figure.add_subplot(down, across, i + 1)
        if row.input in reference.numeric:
            labels = _bin_labels(reference.numeric[row.input][0])
            before, after = reference.numeric[row.input][1], current.numeric[row.input][1]
        else:
            labels = list(reference.categorical[row.input])[:12]
            before = [reference.categorical[row.input].get(k, 0.0) for k in labels]
            after = [current.categorical[row.input].get(k, 0.0) for k in labels]
        positions = np.arange(len(labels))
        axes.bar(positions, before, width=0.9, alpha=0.5, label="reference")
        axes.bar(positions, after, width=0.9, alpha=0.5, label="current")
        axes.set_xticks(positions[::max(1, len(labels) // 6)],
                        labels[::max(1, len(labels) // 6)], rotation=30, fontsize=7)
        axes.set(title=f"{row.input}: {METRIC_NAMES.get(row.metric, row.metric)} {row.value:.3f}",
                 ylabel="fraction of rows")
        axes.legend(fontsize=7)
    return figure


def _bin_labels(edges: tuple[float, ...]) -> list[str]:
    """'< e1', 'e1..e2', ..., '> ek': the reference's bins."""
    shown = [f"{e:.3g}" for e in edges]
    return ([f"< {shown[0]}"] + [f"{a}..{b}" for a, b in zip(shown, shown[1:])]
            + [f"> {shown[-1]}"]) if edges else ["all"]


# -- search ---------------------------------------------------------------------------------------

LEGEND_CANDIDATES = 10  # more candidates than this: the legend names the winner and the first ones


def plot_search(results: pd.DataFrame, best: int | None = None) -> Any:
    """The holdout score of each candidate after each epoch (``Model.search_results_``), one
    line per candidate labelled by its parameters; an ``x`` marks the last score of a candidate
    that stopped (halved or out of patience); the winner (row ``best``, else the first of rank
    1) is drawn thick and on top."""
    _require(results, ["params", "stopped"], "search results")
    rungs = [c for c in results.columns if c.startswith("score_epoch_")]
    if results.empty or not rungs:
        raise ParameterError("the search results hold no scores to plot")
    if best is None:
        best = int(np.flatnonzero(results["rank"].to_numpy() == 1)[0]) if "rank" in results else 0
    from matplotlib.ticker import MaxNLocator

    figure = _new_figure(10, 4.5)
    axes = figure.add_subplot()
    epochs = np.arange(1, len(rungs) + 1, dtype=float)
    lines, stops = [], {}
    for k, (params, stopped) in enumerate(zip(results["params"], results["stopped"])):
        scores = results.iloc[k][rungs].to_numpy(float)
        seen = np.flatnonzero(~np.isnan(scores))
        winner = k == best
        (line,) = axes.plot(epochs[seen], scores[seen], marker="o", markersize=3,
                            label=search_label(params) + (" (best)" if winner else ""),
                            linewidth=2.5 if winner else 1, alpha=1 if winner else 0.6,
                            zorder=3 if winner else 2)
        lines.append(line)
        if stopped and len(seen):
            stops.setdefault(stopped, []).append((epochs[seen[-1]], scores[seen[-1]]))
    marks = [axes.plot(*zip(*points), marker="x", markersize=8, color="black", linestyle="",
                       zorder=4, label=f"stopped: {reason}")[0]
             for reason, points in sorted(stops.items())]
    shown = [lines[best]] + [line for k, line in enumerate(lines) if k != best]
    more = len(lines) > LEGEND_CANDIDATES
    axes.legend(handles=shown[:LEGEND_CANDIDATES] + marks, fontsize="small", loc="upper left",
                title=f"{LEGEND_CANDIDATES} of {len(lines)} candidates" if more else None,
                bbox_to_anchor=(1.02, 1))  # beside the axes: lines often end where it would sit
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set(xlabel="epoch", ylabel="holdout score",
             title=f"Search: {len(results)} candidates, holdout score per epoch")
    return figure


def search_label(params: dict) -> str:
    """A candidate's parameters in short: ``alpha=1e-05, loss=hinge``."""
    return ", ".join(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in params.items())


# -- files ----------------------------------------------------------------------------------------

def save(figure: Any, path: str | os.PathLike, storage_options: dict | None = None) -> str:
    """Write ``figure`` as a PNG to ``path`` (a path or any fsspec URL), whole or not at all,
    replacing any file there; returns the path."""
    from ..io.storage import write_bytes

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return write_bytes(os.fspath(path), buffer.getvalue(), storage_options)
