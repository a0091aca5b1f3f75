"""The Session: runs statements of the language against tables and a model catalog.

``oocml.sql`` and the ``oocml-sql`` REPL both delegate here. Parsing and
compiling read no data; only executing a statement does.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import dask.dataframe as dd
import pandas as pd

from .catalog import KEEP_VERSIONS, Catalog, check_name, parse_reference
from .dsl import ast
from .dsl.compile import compile_train
from .dsl.explain import explain_apply, explain_train, explain_update
from .dsl.parser import parse
from .errors import ParameterError
from .execution import progress_bar
from .io.conditions import parquet_filters
from .io.lineage import fresh_files, identify, seen_files
from .io.sources import delta_version, describe_files, file_facts, open_source, source_files
from .io.storage import check_path
from .plan import Plan, Source, conjunction
from .progress import progress_enabled
from .tracking import log_fit, tracker

if TYPE_CHECKING:
    from .model import Model


class Session:
    """Tables and models that live across statements; ``store`` (a folder or URL) persists
    models; ``storage_options`` reach the filesystem of every URL a statement names (a
    source's own ``OPTIONS (...)`` take precedence); ``tracking="mlflow"`` logs every TRAIN
    and UPDATE as an MLflow run (see :mod:`oocml.tracking`; default: ``OOCML_TRACKING``)."""

    def __init__(self, store: str | os.PathLike | None = None, *, progress: bool | None = None,
                 storage_options: dict[str, Any] | None = None,
                 keep_versions: int = KEEP_VERSIONS, tracking: str | None = None,
                 **tables: Any):
        self.storage_options = dict(storage_options or {})
        self.tracking = tracker(tracking)  # "mlflow": every TRAIN and UPDATE is logged
        self.catalog = Catalog(store, self.storage_options, keep_versions=keep_versions)
        self.progress = progress
        self.tables: dict[str, Any] = {}
        for name, frame in tables.items():
            self.register(name, frame)

    def versions(self, name: str) -> pd.DataFrame:
        """The versions of model ``name`` (what ``SHOW VERSIONS name`` returns)."""
        return self.catalog.versions_table(name)

    def model(self, reference: str) -> Model:
        """Model ``name`` (its current version) or ``name@N`` (version N) of the catalog."""
        return self.catalog.get(reference)

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
        plan = replace(plan, source=delta_version(plan.source, self.storage_options))
        if plan.name is not None:
            check_name(plan.name)
            if not stmt.replace:
                self.catalog.check_free(plan.name)  # before the training, not after it
        from .engine.fit import fit_plan
        from .model import Model

        model = Model.from_fit(fit_plan(plan, self._open(plan.source, plan),
                                        progress=self.progress,
                                        storage_options=self.storage_options))
        version = (self.catalog.put(plan.name, model, replace=stmt.replace)
                   if plan.name is not None else None)
        if self.tracking is not None:
            log_fit(model, plan.name, version)
        return model

    def _run_update(self, stmt: ast.Update) -> Model | str:
        name = check_name(stmt.model)
        current, model = self.catalog.current(name)  # the version the new one must follow
        stmt = replace(stmt, source=delta_version(stmt.source, self.storage_options))
        nothing_new = (f"model {name}: no file of {stmt.source} is new to it; nothing was "
                       f"trained, and version {current} stays current")
        only = self._fresh_files(model, stmt) if stmt.new else None
        if only is not None and not only:
            return nothing_new
        from .accessor import start_of
        from .engine.update import update_fit
        from .model import Model

        where = conjunction(model.plan.where if model.plan is not None else None, stmt.where)
        filters = parquet_filters(where) if where is not None else None
        frame = open_source(stmt.source, self.tables, filters=filters,
                            storage_options=self.storage_options, only=only)
        fitted = update_fit(start_of(model), frame, source=stmt.source, where=stmt.where,
                            epochs=stmt.epochs, shuffle=stmt.shuffle,
                            shuffle_window=stmt.shuffle_window, seed=stmt.seed,
                            new=stmt.new and only is None,  # a listed source: filtered above
                            include_changed=stmt.include_changed, progress=self.progress)
        if fitted is None:
            return nothing_new
        updated = Model.from_fit(fitted, before=model)
        version = self.catalog.put(name, updated, replace=True, verb="UPDATE", after=current)
        if self.tracking is not None:
            log_fit(updated, name, version)
        return updated

    def _fresh_files(self, model: Model, stmt: ast.Update) -> set[str] | None:
        """The files of UPDATE ... NEW's source its model has not seen (None: a table, whose
        partitions the engine sorts out), so that no other file is ever opened."""
        if stmt.source.path is None:
            return None
        found = source_files(stmt.source, stmt.source.options_over(self.storage_options))
        return fresh_files([identify(found.fs, f) for f in found.files],
                           seen_files(model.lineage), stmt.include_changed)

    def _run_validate(self, stmt: ast.Validate) -> pd.DataFrame:
        model = self.catalog.get(stmt.model)
        return model.validate(self._open(stmt.source), stmt.threshold, progress=self.progress)

    def _run_validatedrift(self, stmt: ast.ValidateDrift) -> pd.DataFrame:
        from .evaluation.drift import drift

        return drift(self._open(stmt.source), self._open(stmt.reference), stmt.threshold,
                     progress=progress_enabled(self.progress))

    def _run_predict(self, stmt: ast.Predict) -> Any:
        model = self.catalog.get(stmt.model)
        frame = self._open(stmt.source)
        if stmt.top is not None:  # PREDICT EXPLAIN: lazy, or written with a progress line
            explained = model.explain(frame, top=stmt.top)
            if stmt.into is None:
                return explained
            from .io.outputs import write_parquet
            from .io.text_faults import named_parse_errors

            with progress_bar(progress_enabled(self.progress), "explain"), \
                    named_parse_errors(frame):
                return write_parquet(explained, stmt.into, overwrite=stmt.overwrite,
                                     storage_options=self._options(stmt.into_options))
        if stmt.into is not None:
            with progress_bar(progress_enabled(self.progress), "predict"):
                return model.write_predictions(frame, stmt.into, proba=stmt.proba,
                                               overwrite=stmt.overwrite,
                                               storage_options=self._options(stmt.into_options))
        return model.predictions(frame, proba=stmt.proba)

    def _run_evaluate(self, stmt: ast.Evaluate) -> pd.DataFrame:
        model = self.catalog.get(stmt.model)
        if stmt.by_class and stmt.view is not None:
            raise ParameterError(f"EVALUATE {stmt.view.upper()} ... BY CLASS: choose one view")
        with progress_bar(progress_enabled(self.progress), "evaluate"):
            data = self._open(stmt.source)
            if stmt.view == "confusion":  # as a table: the true class in the first column
                matrix = model.confusion(data)
                return matrix.rename_axis(index="true \\ predicted", columns=None).reset_index()
            if stmt.view == "curve":
                return model.curve(data)
            if stmt.view == "residuals":
                return model.residuals(data)
            return model.evaluate(data, by_class=stmt.by_class)

    def _run_showweights(self, stmt: ast.ShowWeights) -> pd.DataFrame:
        weights = self.catalog.get(stmt.model).weights()
        return weights.rename_axis("feature").reset_index()

    def _run_showtrials(self, stmt: ast.ShowTrials) -> pd.DataFrame:
        model = self.catalog.get(stmt.model)
        if model.report.search is None:
            raise ParameterError(f"model {stmt.model!r} was not trained with TUNE: it has no "
                                 "trials to show")
        table = model.search_results_.drop(columns="params").sort_values("rank")
        return table.rename(columns=lambda c: c.removeprefix("param_")).reset_index(
            names="candidate")

    def _run_describedata(self, stmt: ast.DescribeData) -> pd.DataFrame:
        from .evaluation.profile import profile

        return profile(self._open(stmt.source), progress=progress_enabled(self.progress))

    def _run_showmodels(self, stmt: ast.ShowModels) -> pd.DataFrame:
        return self.catalog.table()

    def _run_showalgorithms(self, stmt: ast.ShowAlgorithms) -> pd.DataFrame:
        from .estimators import algorithms_table

        return pd.DataFrame(algorithms_table())

    def _run_describe(self, stmt: ast.Describe) -> pd.DataFrame:
        table = self.catalog.get(stmt.model).describe()
        return pd.concat([pd.DataFrame([("name", stmt.model)], columns=table.columns), table],
                         ignore_index=True)

    def _run_dropmodel(self, stmt: ast.DropModel) -> str:
        self.catalog.drop(stmt.model)
        name, version = parse_reference(stmt.model)
        return f"dropped model {name}" if version is None else f"dropped version {version} of model {name}"

    def _run_showhistory(self, stmt: ast.ShowHistory) -> pd.DataFrame:
        return self.catalog.get(stmt.model).history_

    def _run_showversions(self, stmt: ast.ShowVersions) -> pd.DataFrame:
        return self.catalog.versions_table(stmt.model)

    def _run_rollbackmodel(self, stmt: ast.RollbackModel) -> str:
        version = self.catalog.rollback(stmt.model, stmt.version)
        return (f"model {stmt.model}: version {stmt.version} is current again, as version "
                f"{version}")

    def _run_savemodel(self, stmt: ast.SaveModel) -> str:
        return self.catalog.get(stmt.model).save(stmt.path, self._options(stmt.options),
                                                 overwrite=stmt.overwrite)

    def _run_loadmodel(self, stmt: ast.LoadModel) -> Model:
        check_name(stmt.model)
        check_path(stmt.path)
        if not stmt.replace:
            self.catalog.check_free(stmt.model, "LOAD")
        from .model import load_model

        model = load_model(stmt.path, storage_options=self._options(stmt.options))
        self.catalog.put(stmt.model, model, replace=stmt.replace, verb="LOAD")
        return model

    def _run_explain(self, stmt: ast.Explain) -> str:
        return self.explain(stmt.statement)

    # -- EXPLAIN ----------------------------------------------------------------------------
    def explain(self, statement: ast.Statement) -> str:
        """What a statement would do, pass by pass, reading only metadata."""
        if isinstance(statement, ast.Train):
            plan = compile_train(statement)
            facts = file_facts(plan.source, self.storage_options)
            return explain_train(plan, self._open(plan.source, plan), self._files(plan.source),
                                 rows=None if facts is None else facts[2])
        if isinstance(statement, ast.Update):
            version, model = self.catalog.current(statement.model)
            fresh = self._fresh_files(model, statement) if statement.new else None
            return explain_update(statement, model, version, self._files(statement.source),
                                  None if fresh is None else len(fresh))
        if isinstance(statement, ast.Predict | ast.Evaluate):
            return explain_apply(statement, self.catalog.get(statement.model),
                                 self._open(statement.source), self._files(statement.source))
        return f"{type(statement).__name__}: no data is read"

    def _files(self, source: Source) -> str:
        return describe_files(source, self.storage_options)


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
