"""AST -> Plan: the very Plan the ``.ml`` accessor builds for the same request.

``TRAIN sgd ON 'd/*.parquet' PREDICT y SCALE standard`` compiles to what
``dd.read_parquet('d/*.parquet').ml.scale().fit_incremental(SGDClassifier, target='y')``
plans, so both give the same model bit for bit. Compiling reads no data.
"""

from __future__ import annotations

from typing import Any

from ..conditions import to_text
from ..estimators import ALGORITHMS, import_class, spec_for
from ..plan import Plan, Source, Step, StreamOptions, freeze_params
from . import ast

def compile_train(stmt: ast.Train) -> Plan:
    """The Plan of a TRAIN statement; estimator parameters are validated here, before any read."""
    seed = stmt.seed if stmt.seed is not None else 0
    steps = []
    if stmt.impute:
        steps.append(Step("impute", stmt.impute))
    if stmt.encode:
        size = ({} if stmt.encode_size is None
                else {"n_features" if stmt.encode == "hash" else "max_categories": stmt.encode_size})
        steps.append(Step("encode", stmt.encode, freeze_params(size)))
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
                             shuffle=stmt.shuffle,
                             strategy="average" if stmt.parallel else "sequential",
                             holdout=stmt.holdout, patience=stmt.patience,
                             checkpoint=stmt.checkpoint, checkpoint_every=stmt.checkpoint_every,
                             resume=stmt.resume),
        random_state=seed,
        source=stmt.source,
        name=stmt.name,
    )


# -- the equivalent Python, for EXPLAIN ---------------------------------------------------------

def _reader(source: Source | None) -> str:
    if source is None:
        return "ddf"
    if source.table is not None:
        return source.table
    fmt = source.format or ("csv" if source.path.lower().endswith(".csv") else "parquet")
    return f"dd.read_{fmt}({source.path!r})"


def _estimator_text(plan: Plan) -> tuple[str, str]:
    """('from module import Class', 'Class(param=...)' or 'Class')."""
    cls = import_class(plan.estimator.qualname)
    module = plan.estimator.qualname.rsplit(".", 1)[0]
    defaults = cls().get_params(deep=False)
    shown = {k: v for k, v in plan.estimator.params
             if not (k == "random_state" and v == plan.random_state) and _differs(v, defaults.get(k))}
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(shown.items()))
    return f"from {module} import {cls.__name__}", f"{cls.__name__}({args})" if args else cls.__name__


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b) or type(a) is not type(b)
    except Exception:
        return True


def format_plan_as_accessor(plan: Plan) -> str:
    """The Python ``.ml`` chain that plans exactly ``plan``."""
    import_line, estimator = _estimator_text(plan)
    chain = [_reader(plan.source), ".ml"]
    if plan.where is not None:
        chain.append(f".where({to_text(plan.where)!r})")
    if plan.features is not None or plan.exclude:
        args = []
        if plan.features is not None:
            args.append(f"features={list(plan.features)!r}")
        if plan.exclude:
            args.append(f"exclude={list(plan.exclude)!r}")
        chain.append(f".select({', '.join(args)})")
    for step in plan.steps:
        params = "".join(f", {k}={v!r}" for k, v in step.params)
        chain.append(f".{step.kind}({step.method!r}{params})")
    options = [f"target={plan.target!r}"] if plan.target is not None else []
    stream, default = plan.stream, StreamOptions()
    for key in ("epochs", "block_rows", "shuffle", "strategy", "holdout", "patience",
                "checkpoint", "checkpoint_every", "resume"):
        if getattr(stream, key) != getattr(default, key):
            options.append(f"{key}={getattr(stream, key)!r}")
    if plan.classes is not None:
        options.append(f"classes={list(plan.classes)!r}")
    if plan.random_state != 0:
        options.append(f"random_state={plan.random_state!r}")
    chain.append(f".fit_incremental({', '.join([estimator, *options])})")
    head = ["import dask.dataframe as dd", "import oocml", import_line, ""]
    return "\n".join(head) + "model = " + "".join(chain)


def algorithms_table() -> list[dict[str, Any]]:
    """One row per registry algorithm: name, task, estimator, summary, parameters."""
    rows = []
    for algo in ALGORITHMS.values():
        cls = import_class(algo.qualname)
        fixed = dict(algo.defaults)
        params = [p for p in cls().get_params(deep=False) if p not in fixed]
        rows.append({"name": algo.name, "task": algo.task, "estimator": cls.__name__,
                     "summary": algo.summary, "parameters": ", ".join(params)})
    return rows
