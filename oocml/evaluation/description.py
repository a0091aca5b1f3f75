"""DESCRIBE: what a fitted model is and how it was trained, as a (property, value) table.

Read from the fitted pipeline and the fit's ``info`` alone: nothing is recomputed, no data
is read. The holdout scores per epoch also show as a one-line sparkline.
"""

from __future__ import annotations

import posixpath
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from .inspection import sparkline


def describe_model(model: Any) -> pd.DataFrame:
    """The DESCRIBE table of an :class:`oocml.Model`."""
    est = model.estimator
    rows = [("algorithm", type(est).__name__), ("task", model.task),
            ("parameters", _params_text(est)), ("target", model.target),
            ("features", ", ".join(model.features)),
            ("classes", None if model.classes is None else ", ".join(map(str, model.classes)))]
    for name, step in _fitted_steps(model.pipeline):
        rows.append((f"step {name}", _step_text(step)))
    report = model.report
    for key in ("rows_seen", "epochs", "blocks_seen", "strategy", "workers", "train_seconds",
                "stats_seconds", "passes"):
        rows.append((key.replace("_", " "), getattr(report, key)))
    history = report.history
    for entry in _shown_epochs(history, report.best_epoch):
        rows.append((f"epoch {entry['epoch']}", _epoch_text(entry)))
    scores = [e["holdout_score"] for e in history if e.get("holdout_score") is not None]
    if scores:
        rows.append(("learning curve", f"{sparkline(scores)}  holdout score per epoch, "
                                       f"{min(scores):.4g} .. {max(scores):.4g}"))
    if report.search is not None:
        rows += _leaderboard(list(report.search))
    rows += _lineage(model.lineage)
    return pd.DataFrame(rows, columns=["property", "value"]).astype({"value": object})


def _epoch_text(entry: dict) -> str:
    """'rows 30,000; progressive_score 0.9123; holdout_score 0.9200; seconds 0.41': one
    epoch's record as text (SHOW HISTORY name and ``Model.history_`` give it as a table)."""
    parts = []
    for key, value in entry.items():
        if key == "epoch":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            parts.append(f"{key} {value}")
        elif isinstance(value, int):
            parts.append(f"{key} {value:,}")
        else:
            parts.append(f"{key} {value:.4g}" if key == "seconds" else f"{key} {value:.4f}")
    return "; ".join(parts)


SHOWN_EPOCHS = 12  # beyond this (boosting rounds), the first, the best and the last are shown


def _shown_epochs(history: tuple, best: int | None) -> list[dict]:
    """Every epoch's entry, or for a long history (boosting rounds) the first, the best and the
    last: the learning curve below shows them all."""
    if len(history) <= SHOWN_EPOCHS:
        return list(history)
    keep = {1, len(history)} | ({best} if best else set())
    return [entry for entry in history if entry["epoch"] in keep]


def _leaderboard(trials: list[dict], shown: int = 5) -> list[tuple[str, str]]:
    """TUNE's leaderboard: the candidates in the order the halving ranked them, and how far
    each went (a rung is an epoch, or boosted trees' rung of rounds)."""
    from .trials import trials_table

    table = trials_table(trials).sort_values("rank")
    rows = [("search", f"{len(table)} candidates, successive halving on the holdout score; "
                       "SHOW TRIALS name lists them all")]
    for _, row in table.head(shown).iterrows():
        params = ", ".join(f"{k}={v!r}" for k, v in row["params"].items())
        epochs = len([t for t in row.index if t.startswith("score_epoch_")
                      and pd.notna(row[t])])
        rows.append((f"rank {row['rank']}", f"{params}: best holdout {row['best_score']:.4f}, "
                                            f"reached rung {epochs}"))
    return rows


SHOWN_FILES = 3  # a fit's first files named in DESCRIBE; Model.files_seen lists them all


def _lineage(lineage: tuple) -> list[tuple[str, str]]:
    """The data each fit read: one row per TRAIN and UPDATE, oldest first."""
    rows = []
    for i, step in enumerate(lineage):
        head = f"{'trained' if step.kind == 'train' else 'updated'} on {step.source or 'a DataFrame'}"
        parts = [head + (f" WHERE {step.where}" if step.where else "") + f" at {step.at}",
                 f"{step.rows:,} rows, {step.epochs} epoch(s)"]
        if step.files is not None:
            names = ", ".join(_short([f.path for f in step.files])[:SHOWN_FILES])
            more = f", ... ({len(step.files)} in all)" if len(step.files) > SHOWN_FILES else ""
            parts.append(f"{len(step.files)} file(s): {names}{more}")
        if step.score is not None:
            label = "holdout" if step.score_kind == "holdout" else "test-then-train"
            parts.append(f"{label} score {step.score:.4f}")
        rows.append((f"fit {i}", "; ".join(parts)))
    return rows


def _short(paths: list[str]) -> list[str]:
    """``paths`` below the folder they share (a lone file: its name)."""
    shared = posixpath.commonprefix(paths) if len(paths) > 1 else paths[0] if paths else ""
    cut = shared.rfind("/") + 1
    return [p[cut:] for p in paths]


def _params_text(estimator: Any) -> str:
    from ..estimators import changed_params

    changed = changed_params(type(estimator), estimator.get_params(deep=False))
    return ", ".join(f"{k}={v!r}" for k, v in sorted(changed.items())) or "(defaults)"


def _fitted_steps(pipeline: Pipeline) -> list[tuple[str, Any]]:
    """The preprocessing steps that learned something, looking inside ColumnTransformers."""
    found = []
    for name, step in pipeline.steps[:-1]:
        if isinstance(step, ColumnTransformer):
            for inner_name, inner, _ in step.transformers_:
                if isinstance(inner, Pipeline):
                    found += [(n, s) for n, s in inner.steps]
                elif not isinstance(inner, str | FunctionTransformer):
                    found.append((inner_name, inner))
        else:
            found.append((name, step))
    return found


def _step_text(step: Any) -> str:
    fitted = {k: v for k, v in vars(step).items() if k.endswith("_") and not k.startswith("_")}
    parts = [type(step).__name__]
    for key in ("mean_", "scale_", "data_min_", "data_max_", "max_abs_", "n_samples_seen_"):
        if fitted.get(key) is not None:
            value = np.round(np.asarray(fitted[key], dtype=float), 4)
            parts.append(f"{key}={value.tolist() if value.size <= 8 else str(value.size) + ' values'}")
    if fitted.get("categories_") is not None:
        columns = getattr(step, "feature_names_in_", range(len(step.categories_)))
        parts.append("categories=" + ", ".join(f"{c}: {len(k)}"
                                              for c, k in zip(columns, step.categories_)))
    if hasattr(step, "n_features") and not fitted.get("categories_"):
        columns = getattr(step, "feature_names_in_", None)  # the columns this encoder takes
        parts.append((f"of {', '.join(map(str, columns))}: " if columns is not None else "")
                     + f"n_features={step.n_features}")
    if hasattr(step, "ngram_range"):
        parts.append(f"ngram_range={tuple(step.ngram_range)}")
    return " ".join(parts)
