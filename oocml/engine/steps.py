"""The preprocessing steps of a plan, fitted from the one statistics pass: imputers and scalers
on the numeric columns, each encoder on its columns (scikit-learn's ColumnTransformer idiom),
and a reduction by its own ``partial_fit`` pass. Nothing here reads the data but the
reduction: every other statistic comes from the pass's :class:`~oocml.engine.stats.Summary`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from ..encoding import TextEncoder, encoder_and_rows, idf
from ..errors import DataError, ParameterError
from ..plan import Plan, Step
from ..plan_rules import SPARSE_ENCODINGS, encoding_of
from ..preprocessing import SCALERS
from ..sketches import fitted_imputer
from .stats import Summary
from .stream import BlockRecipe, TrainOptions, train


def preprocessing(plan: Plan, summary: Summary, numeric: list[str], categorical: list[str],
                  meta: pd.DataFrame, trees: bool = False) -> list[tuple[str, Any]]:
    """The fitted pipeline steps before the estimator, all from the one statistics pass.

    Without encoded features: select -> each numeric step, flat. With them, the
    scikit-learn idiom: a ColumnTransformer with the numeric steps on the numeric
    columns and each encoder on its columns (encoded columns are not scaled). For ``trees``
    scaling changes no split, so it is left out, and an ordinal code is NaN where a value is
    missing or unseen (a tree learns which way those go).
    """
    numeric_steps = tuple(s for s in plan.steps if s.kind not in ("encode", "reduce")
                          and not (trees and s.kind == "scale"))
    fitted = fit_steps(numeric_steps, summary, numeric) if numeric else []
    if not categorical:
        select = ColumnTransformer([("features", "passthrough", numeric)], remainder="drop",
                                   verbose_feature_names_out=False).fit(meta[numeric])
        return [("select", select), *fitted]
    groups = encoding_groups(plan.steps, categorical)
    encoders, synthetic = [], [pd.DataFrame(0.0, index=[0], columns=numeric)]
    for step, columns in groups:
        encoder, rows = encoder_and_rows(step.method, encoder_params(step), columns,
                                         summary.categories, np.nan if trees else -1)
        encoders.append((step.method if len(groups) == 1 else f"{step.method}_{len(encoders)}",
                         encoder, columns))
        synthetic.append(rows)
    rows = _side_by_side(synthetic)
    # Fit with the numeric part passed through, then put the numeric steps fitted out-of-core
    # in its place: same columns in, same width out.
    sparse_out = any(step.method in SPARSE_ENCODINGS for step, _ in groups)
    features = ColumnTransformer(
        [("numeric", "passthrough", numeric), *encoders],
        remainder="drop", sparse_threshold=1.0 if sparse_out else 0.0,
        verbose_feature_names_out=False).fit(rows[numeric + categorical])
    for _, encoder, columns in features.transformers_:
        if isinstance(encoder, TextEncoder) and encoder.tfidf:  # weights from the pass's counts
            encoder.idf_ = np.stack([idf(*summary.documents[c]) for c in columns])
    if fitted:
        fitted[0][1].feature_names_in_ = np.asarray(numeric, dtype=object)
        position = [name for name, *_ in features.transformers_].index("numeric")
        features.transformers_[position] = ("numeric", Pipeline(fitted), numeric)
        # Shown by repr and get_params: the steps that really run, not the placeholder.
        features.transformers = [t for t in features.transformers_ if t[0] != "remainder"]
    return [("features", features)]


def encoding_groups(steps: tuple[Step, ...], categorical: list[str]) -> list[tuple[Step, list]]:
    """Each encoding step with the encoded columns it gets, in the plan's order."""
    chosen = encoding_of(steps, categorical)
    groups = [(s, [c for c in categorical if chosen.get(c) is s])
              for s in steps if s.kind == "encode"]
    return [(s, columns) for s, columns in groups if columns]


def encoder_params(step: Step) -> dict[str, Any]:
    """An encoding step's parameters for its encoder: all but the columns it names."""
    return {k: v for k, v in step.params if k != "columns"}


def _side_by_side(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The synthetic rows of each encoder side by side, each padded with its first row to
    the longest (a repeated row never turns an infrequent value frequent: it is the first,
    a frequent one)."""
    length = max(len(f) for f in frames)
    padded = [f.iloc[[*range(len(f)), *[0] * (length - len(f))]].reset_index(drop=True)
              for f in frames]
    return pd.concat(padded, axis=1)


def fit_steps(steps: tuple[Step, ...], summary: Summary,
              features: list[str]) -> list[tuple[str, Any]]:
    """Each preprocessing step fitted from the statistics of its input, as scikit-learn objects.

    Steps are affine or fill missing values, so the moments each step hands the next are
    derived exactly from the one statistics pass.
    """
    fitted, moments, names = [], summary.moments, set()
    for step in steps:
        if step.kind == "impute":
            empty = [c for c, k in zip(features, moments.count) if k == 0]
            if empty:
                raise DataError(f"feature column(s) {empty} hold no values at all: nothing to "
                                "impute from; leave them out")
            imputer = fitted_imputer(step.method, moments, summary.quantiles)
            moments = moments.filled(imputer.statistics_)
            transformer = imputer
        elif step.kind == "scale":
            scaler = SCALERS[step.method](**dict(step.params)).fit_moments(moments)
            moments = moments.affine(*scaler.affine())
            transformer = scaler.to_sklearn()
        else:
            raise ParameterError(f"the {step.kind} step ({step.method}) is not available yet")
        name = step.kind if step.kind not in names else f"{step.kind}_{len(fitted)}"
        names.add(name)
        fitted.append((name, transformer))
    return fitted


def fit_reduction(step: Step, parts: list, steps: list[tuple[str, Any]], plan: Plan,
                  progress: bool) -> Any:
    """``REDUCE pca n``: IncrementalPCA fitted by its own ``partial_fit`` pass over the
    preprocessed blocks (a projection needs the scaled data, so it cannot join the
    statistics pass)."""
    from sklearn.decomposition import IncrementalPCA

    pca = IncrementalPCA(**dict(step.params))
    recipe = BlockRecipe(prep=Pipeline(steps), target=None, labels=None,
                         block_rows=plan.stream.block_rows, holdout=plan.stream.holdout,
                         finite=True)
    train(pca, parts, recipe, TrainOptions(prefetch=plan.stream.prefetch, progress=progress,
                                                 name="reduce"))
    return pca
