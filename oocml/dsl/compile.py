"""AST -> Plan: the very Plan the ``.ml`` accessor builds for the same request.

``TRAIN sgd ON 'd/*.parquet' PREDICT y SCALE standard`` compiles to what
``dd.read_parquet('d/*.parquet').ml.scale().fit_incremental(SGDClassifier, target='y')``
plans, so both give the same model bit for bit. Compiling reads no data.
"""

from __future__ import annotations

from ..errors import ParameterError
from ..plan import Plan, Step, StreamOptions, freeze_params
from ..plan_rules import SEARCH_HOLDOUT, validate
from . import ast


def compile_train(stmt: ast.Train) -> Plan:
    """The Plan of a TRAIN statement, validated (estimator parameters too) before any read;
    an error names the statement's line and column."""
    try:
        plan = validate(_plan_of(stmt))
        if plan.search is not None:  # every candidate's values, checked by scikit-learn
            from ..engine.search import candidate_estimators

            candidate_estimators(plan)
        return plan
    except ParameterError as exc:
        line, column = stmt.position
        raise type(exc)(f"at line {line}, column {column}: {exc}") from None


def _plan_of(stmt: ast.Train) -> Plan:
    from ..estimators import spec_for

    seed = stmt.seed if stmt.seed is not None else 0
    steps = []
    if stmt.impute:
        steps.append(Step("impute", stmt.impute))
    for encoding in stmt.encodings:
        params = dict(encoding.params)
        if encoding.size is not None:
            params["max_categories" if encoding.method == "onehot" else "n_features"] = encoding.size
        if encoding.columns:
            params["columns"] = encoding.columns
        steps.append(Step("encode", encoding.method, freeze_params(params)))
    if stmt.scale and stmt.scale != "none":
        steps.append(Step("scale", stmt.scale))
    if stmt.reduce:
        steps.append(Step("reduce", stmt.reduce, freeze_params({"n_components": stmt.reduce_size})))
    return Plan(
        estimator=spec_for(stmt.algorithm, dict(stmt.params), seed, sklearn_only=True),
        target=stmt.target,
        features=stmt.features,
        exclude=stmt.exclude,
        where=stmt.where,
        steps=tuple(steps),
        stream=StreamOptions(epochs=stmt.epochs or 1, block_rows=stmt.block_rows,
                             shuffle=stmt.shuffle, shuffle_window=stmt.shuffle_window,
                             strategy="average" if stmt.parallel else "sequential",
                             holdout=SEARCH_HOLDOUT if stmt.search is not None
                             and stmt.holdout is None else stmt.holdout,
                             patience=stmt.patience,
                             checkpoint=stmt.checkpoint, checkpoint_every=stmt.checkpoint_every,
                             resume=stmt.resume, cache=stmt.cache,
                             precision=stmt.precision),
        random_state=seed,
        source=stmt.source,
        name=stmt.name,
        search=stmt.search,
    )
