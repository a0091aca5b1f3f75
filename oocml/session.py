"""The Session: runs statements of the language against tables and a model catalog.

``oocml.sql`` and the ``oocml-sql`` REPL both delegate here. Parsing and
compiling read no data; only executing a statement does.
"""

from __future__ import annotations

import os
from typing import Any

import dask.dataframe as dd
import pandas as pd

from .catalog import Catalog, check_name
from .conditions import parquet_filters, to_text
from .dsl import ast
from .dsl.compile import algorithms_table, compile_train, format_plan_as_accessor
from .dsl.parser import parse
from .engine.checkpoint import DEFAULT_EVERY
from .engine.fit import fit_plan, resolve_columns
from .errors import ParameterError
from .estimators import build, task_of
from .execution import progress_bar
from .model import Model, load_model
from .plan import Plan, Source
from .progress import progress_enabled
from .sources import describe_files, open_source
from .storage import redact_url


class Session:
    """Tables and models that live across statements; ``store`` (a folder or URL) persists
    models; ``storage_options`` reach the filesystem of every URL a statement names (a
    source's own ``OPTIONS (...)`` take precedence)."""

    def __init__(self, store: str | os.PathLike | None = None, *, progress: bool | None = None,
                 storage_options: dict[str, Any] | None = None, **tables: Any):
        self.storage_options = dict(storage_options or {})
        self.catalog = Catalog(store, self.storage_options)
        self.progress = progress
        self.tables: dict[str, Any] = {}
        for name, frame in tables.items():
            self.register(name, frame)

    def register(self, name: str, frame: Any) -> None:
        """Make a dask or pandas DataFrame available to statements as table ``name``."""
        if not isinstance(frame, dd.DataFrame | pd.DataFrame):
            raise ParameterError(f"table {name!r} must be a dask or pandas DataFrame, "
                                 f"not {type(frame).__name__}")
        self.tables[check_name(name)] = frame

    def sql(self, text: str, **tables: Any) -> Any:
        """Run ``;``-separated statements; return the last one's result."""
        for name, frame in tables.items():
            self.register(name, frame)
        result = None
        for statement in parse(text):
            result = self.execute(statement)
        return result

    def execute(self, statement: ast.Statement) -> Any:
        """Run one parsed statement."""
        method = getattr(self, f"_run_{type(statement).__name__.lower()}")
        return method(statement)

    # -- statements -------------------------------------------------------------------------
    def _open(self, source: Source, plan: Plan | None = None) -> dd.DataFrame:
        filters = parquet_filters(plan.where) if plan is not None and plan.where else None
        return open_source(source, self.tables, filters=filters,
                           storage_options=self.storage_options)

    def _options(self, options: tuple) -> dict[str, Any]:
        """The storage options for one path: the session's, then the statement's own."""
        return {**self.storage_options, **dict(options)}

    def _run_train(self, stmt: ast.Train) -> Model:
        plan = compile_train(stmt)
        if plan.name is not None:
            check_name(plan.name)
        model = fit_plan(plan, self._open(plan.source, plan), progress=self.progress,
                         storage_options=self.storage_options)
        if plan.name is not None:
            self.catalog.put(plan.name, model)
        return model

    def _run_predict(self, stmt: ast.Predict) -> Any:
        model = self.catalog.get(stmt.model)
        frame = self._open(stmt.source)
        if stmt.into is not None:
            with progress_bar(progress_enabled(self.progress)):
                return model.write_predictions(frame, stmt.into, proba=stmt.proba,
                                               overwrite=stmt.overwrite,
                                               storage_options=self._options(stmt.into_options))
        return model.predictions(frame, proba=stmt.proba)

    def _run_evaluate(self, stmt: ast.Evaluate) -> pd.DataFrame:
        with progress_bar(progress_enabled(self.progress)):
            return self.catalog.get(stmt.model).evaluate(self._open(stmt.source))

    def _run_showmodels(self, stmt: ast.ShowModels) -> pd.DataFrame:
        return self.catalog.table()

    def _run_showalgorithms(self, stmt: ast.ShowAlgorithms) -> pd.DataFrame:
        return pd.DataFrame(algorithms_table())

    def _run_describe(self, stmt: ast.Describe) -> pd.DataFrame:
        table = self.catalog.get(stmt.model).describe()
        return pd.concat([pd.DataFrame([("name", stmt.model)], columns=table.columns), table],
                         ignore_index=True)

    def _run_dropmodel(self, stmt: ast.DropModel) -> str:
        self.catalog.drop(stmt.model)
        return f"dropped model {stmt.model}"

    def _run_savemodel(self, stmt: ast.SaveModel) -> str:
        return self.catalog.get(stmt.model).save(stmt.path,
                                                 storage_options=self._options(stmt.options))

    def _run_loadmodel(self, stmt: ast.LoadModel) -> Model:
        model = load_model(stmt.path, storage_options=self._options(stmt.options))
        self.catalog.put(stmt.model, model)
        return model

    def _run_explain(self, stmt: ast.Explain) -> str:
        return self.explain(stmt.statement)

    # -- EXPLAIN ----------------------------------------------------------------------------
    def explain(self, statement: ast.Statement) -> str:
        """What a statement would do, pass by pass, reading only metadata."""
        if isinstance(statement, ast.Train):
            return self._explain_train(compile_train(statement))
        if isinstance(statement, ast.Predict | ast.Evaluate):
            model = self.catalog.get(statement.model)
            frame = self._open(statement.source)
            verb = "PREDICT" if isinstance(statement, ast.Predict) else "EVALUATE"
            lines = [f"{verb} with model {statement.model} ({type(model.estimator).__name__})",
                     f"  source:   {statement.source}{describe_files(statement.source, self.storage_options)}",
                     f"  reads:    {', '.join(model.features)}"
                     + (f", {model.target}" if verb == "EVALUATE" else ""),
                     f"  pass 1:   one parallel pass over {frame.npartitions} partitions, "
                     + ("predicting each block" if verb == "PREDICT" else
                        "summing per-block metric totals (exact)")]
            if isinstance(statement, ast.Predict) and statement.into:
                lines.append(f"  writes:   parquet into {redact_url(statement.into)!r}, one file "
                             "per partition, committed by a manifest written last")
            return "\n".join(lines)
        return f"{type(statement).__name__}: no data is read"

    def _explain_train(self, plan: Plan) -> str:
        frame = self._open(plan.source, plan)
        features = resolve_columns(plan, list(frame.columns))
        estimator = build(plan.estimator)
        task = task_of(estimator)
        stream = plan.stream
        schema = ", ".join(f"{c} {t}" for c, t in frame.dtypes.astype(str).items())
        statistics = ["row counts", "NaN/infinity checks of every feature"]
        what = {"impute": "{m} of each numeric feature", "scale": "{m} scaling moments",
                "encode": "value counts of each categorical feature ({m})"}
        for step in plan.steps:
            if step.kind in what and (step.kind, step.method) != ("encode", "hash"):
                statistics.append(what[step.kind].format(m=step.method))
        if task == "classification" and plan.classes is None:
            statistics.append(f"class labels of {plan.target}")
        order = (f"shuffled (seed {plan.random_state}), rows permuted inside each block"
                 if stream.shuffle else "in order")
        if stream.holdout is not None:
            statistics[0] = f"row counts (statistics from the {1 - stream.holdout:.0%} training rows)"
            order += f", {stream.holdout:.0%} of rows held out by a hash of their values"
        blocks = (f"{frame.npartitions} partitions" + (f", split into blocks of {stream.block_rows:,} rows"
                                                       if stream.block_rows else ""))
        lines = [
            f"TRAIN {plan.name or '(unnamed)'}",
            f"  source:     {plan.source}{describe_files(plan.source, self.storage_options)}",
            f"  schema:     {schema}",
            f"  features:   {', '.join(features)} ({len(features)})",
            f"  target:     {plan.target}",
        ]
        if plan.where is not None:
            pushed = parquet_filters(plan.where)
            lines.append(f"  where:      {to_text(plan.where)}"
                         + (f"  (pushed down to parquet: {pushed})" if pushed else ""))
        steps = " -> ".join(f"{s.kind} {s.method}" for s in plan.steps) or "(none)"
        lines += [f"  steps:      {steps}",
                  f"  estimator:  {type(estimator).__name__}({_pairs(plan.estimator.params)})  [{task}]",
                  f"  blocks:     {blocks}, at most {stream.prefetch} loaded ahead of partial_fit",
                  "  passes over the data:",
                  f"    1. statistics, one parallel pass: {'; '.join(statistics)}"]
        number = 2
        reduction = next((s for s in plan.steps if s.kind == "reduce"), None)
        if reduction is not None:
            lines.append(f"    2. {reduction.method} projection: IncrementalPCA("
                         f"{_pairs(reduction.params)}).partial_fit on the preprocessed blocks")
            number = 3
        for epoch in range(stream.epochs):
            fit = ("score each block (progressive), then partial_fit"
                   if stream.holdout is not None else "partial_fit")
            if stream.strategy == "average":
                fit += (" on every worker at once, one block each; the models averaged "
                        "after each round (PARALLEL)")
            lines.append(f"    {number}. training epoch {epoch + 1}/{stream.epochs}: blocks {order} "
                         f"-> {' -> '.join(['select', *[s.kind for s in plan.steps]])} -> {fit}")
            number += 1
            if stream.holdout is not None:
                stop = (f"; stop after {stream.patience} epoch(s) without gain, keep the best"
                        if stream.patience else "")
                lines.append(f"    {number}. holdout score after epoch {epoch + 1}, one parallel pass{stop}")
                number += 1
        if stream.checkpoint is not None:
            lines.append(f"  checkpoint: '{stream.checkpoint}' every "
                         f"{stream.checkpoint_every or DEFAULT_EVERY} blocks"
                         + (", resumed if it exists" if stream.resume else ""))
        lines += ["  equivalent Python:",
                  *("    " + line for line in format_plan_as_accessor(plan).splitlines())]
        return "\n".join(lines)


def _pairs(params: tuple[tuple[str, Any], ...]) -> str:
    """``k=v, ...`` of a plan's frozen parameters."""
    return ", ".join(f"{k}={v!r}" for k, v in params)


_DEFAULT: Session | None = None


def default_session() -> Session:
    """The session ``oocml.sql`` uses, created on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Session()
    return _DEFAULT


def sql(text: str, **tables: Any) -> Any:
    """Run statements in the default session: TRAIN -> Model, PREDICT -> dask DataFrame (or the
    written folder with INTO), EVALUATE/SHOW/DESCRIBE -> pandas DataFrame, EXPLAIN -> text."""
    return default_session().sql(text, **tables)
