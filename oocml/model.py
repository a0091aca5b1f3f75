"""The fitted Model: a plain scikit-learn Pipeline plus what oocml knows about it.

Prediction and scoring run block-wise in parallel: one per-partition function
selects the features and the target of the same partition, so X and y can
never be misaligned, and predictions keep the input's partitions and index.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import asdict
from types import MappingProxyType
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.dataframe.utils import make_meta
from sklearn.pipeline import Pipeline
from sklearn.utils.metaestimators import available_if

from .errors import ColumnNotFoundError, ParameterError
from .evaluation.drift import DataProfile
from .evaluation.metrics import (
    class_report,
    confusion_frame,
    curve_table,
    data_totals,
    metrics_rows,
    residual_table,
    score_from_totals,
    scored,
)
from .execution import compute
from .io.partitions import FilePart, partitions
from .io.text_faults import named_parse_errors
from .modelfile import is_onnx_path, read_model, write_model, write_onnx
from .plan import Plan
from .predictions import apply_block, apply_part, sample_rows
from .report import FitReport, LineageStep

SILHOUETTE_SAMPLE = 10_000
log = logging.getLogger("oocml")


class Model:
    """A fitted model: ``predict``/``score``/``evaluate`` on dask or pandas data, ``save``, ``pipeline``."""

    def __init__(self, pipeline: Pipeline, *, features: list[str], target: str | None,
                 task: str, classes: list | None = None, plan: Plan | None = None,
                 report: FitReport | None = None, lineage: tuple[LineageStep, ...] = (),
                 training_profile: DataProfile | None = None):
        self.pipeline = pipeline
        self.features = list(features)
        self.target = target
        self.task = task
        self.classes = None if classes is None else list(classes)
        self.plan = plan  # the plan it was fitted by (secrets masked); None if not known
        self.report = report if report is not None else FitReport.from_dict({})
        self.lineage = tuple(lineage)  # every fit that made it: the TRAIN, then each UPDATE
        self.training_profile = training_profile  # its training data's histograms (VALIDATE)
        self.last_evaluation: pd.DataFrame | None = None  # evaluate()'s last table (display)

    @classmethod
    def from_fit(cls, fitted: Any, before: Model | None = None) -> Model:
        """The Model of an engine fit (:class:`oocml.engine.fit.Fitted`); of an update when
        ``before`` is the model it continued (whose plan and lineage it carries on)."""
        lineage = (before.lineage if before is not None else ()) + \
            ((fitted.step,) if fitted.step is not None else ())
        return cls(fitted.pipeline, features=fitted.features, target=fitted.target,
                   task=fitted.task, classes=fitted.classes,
                   plan=before.plan if before is not None else fitted.plan,
                   report=fitted.report, lineage=lineage,
                   training_profile=(before.training_profile if before is not None
                                     else fitted.profile))

    @property
    def files_seen(self) -> pd.DataFrame:
        """One row per file its fits read (the TRAIN's, then each UPDATE's): fit (0 for the
        TRAIN), kind, path, size, etag, mtime and the rows trained on."""
        rows = [{"fit": i, "kind": step.kind, **asdict(file)}
                for i, step in enumerate(self.lineage) for file in step.files or ()]
        return pd.DataFrame(rows, columns=["fit", "kind", "path", "size", "etag", "mtime", "rows"])

    @property
    def info(self) -> Mapping[str, Any]:
        """:attr:`report` as a read-only mapping (``info["rows_seen"]``), for code written
        for oocml 0.1, whose models kept a dict; read ``report.rows_seen`` instead."""
        return MappingProxyType(self.report.as_dict())

    # -- what it is -------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """The input columns the model reads, in order."""
        return list(self.features)

    @property
    def estimator(self) -> Any:
        """The fitted scikit-learn estimator at the end of the pipeline."""
        return self.pipeline[-1]

    @property
    def history_(self) -> pd.DataFrame:
        """One row per epoch: rows trained on, seconds, and the progressive and holdout
        scores when the fit had a holdout."""
        return pd.DataFrame(list(self.report.history))

    @property
    def search_results_(self) -> pd.DataFrame:
        """After a search (TUNE / ``search=``): one row per candidate, as scikit-learn's
        ``cv_results_``: ``param_<name>``, ``params``, the holdout score after each epoch,
        ``best_score``, ``rank``, ``rows_seen``, and when (``dropped_after_epoch``) and why
        (``stopped``: halved or patience) it stopped; the model is the best candidate's."""
        if self.report.search is None:
            raise AttributeError("search_results_ is only set by a search (TUNE / search=)")
        from .evaluation.trials import trials_table

        return trials_table(list(self.report.search))

    def _repr_html_(self) -> str:
        """What a notebook shows: see :func:`oocml.evaluation.display.model_html`."""
        from .evaluation.display import model_html

        return model_html(self)

    def __repr__(self) -> str:
        steps = " -> ".join(name for name, _ in self.pipeline.steps)
        return (f"<oocml.Model {type(self.estimator).__name__} target={self.target!r} "
                f"features={len(self.features)} steps={steps}>")

    def describe(self) -> pd.DataFrame:
        """A two-column table (property, value) describing the model and its training: see
        :func:`oocml.evaluation.description.describe_model`."""
        from .evaluation.description import describe_model

        return describe_model(self)

    def validate(self, data: Any, threshold: float = 0.3, *,
                 progress: bool | None = None) -> pd.DataFrame:
        """Skew: ``data``'s features against the training data's, in one parallel pass (the
        rows the model's WHERE keeps): one row per feature with its metric (Jensen-Shannon
        divergence for numeric features, L-infinity for categorical ones), value, threshold
        and is_anomaly; see :mod:`oocml.evaluation.drift`."""
        from .evaluation.drift import validate_against
        from .io.sources import as_dask
        from .progress import progress_enabled

        if self.training_profile is None:
            raise ParameterError(
                "this model keeps no profile of its training data (it was trained by an older "
                "oocml, or built by hand): retrain it, or compare two sources with "
                "VALIDATE DRIFT 'new' AGAINST 'old' (oocml.evaluation.drift.drift)")
        frame = as_dask(data)
        self.check_columns(frame)
        with named_parse_errors(frame):
            return validate_against(self.training_profile, frame,
                                    None if self.plan is None else self.plan.where, threshold,
                                    progress_enabled(progress))

    # -- prediction -------------------------------------------------------------------------
    def predict(self, data: Any) -> Any:
        """Predicted target per row: a lazy dask Series aligned with ``data``'s partitions
        (pandas in, pandas out)."""
        return self._apply(data, "predict")

    @available_if(lambda self: hasattr(self.pipeline, "predict_proba"))
    def predict_proba(self, data: Any) -> Any:
        """Class probabilities per row, one column per class (lazy for dask input)."""
        return self._apply(data, "predict_proba")

    @available_if(lambda self: hasattr(self.pipeline, "decision_function"))
    def decision_function(self, data: Any) -> Any:
        """Confidence scores per row (lazy for dask input)."""
        return self._apply(data, "decision_function")

    def predictions(self, data: Any, proba: bool = False, keep: list[str] | tuple = ()) -> Any:
        """A frame of predictions (``prediction`` or ``proba_<class>`` columns) plus ``keep`` columns."""
        missing = [c for c in keep if c not in data.columns]
        if missing:
            raise ColumnNotFoundError(missing[0], list(data.columns), role="kept column")
        method = "predict_proba" if proba else "predict"
        out = self._read_and_apply(data, method, tuple(keep))
        if out is None:
            out = self._apply(data, method, tuple(keep))
        return out.to_frame() if isinstance(out, dd.Series | pd.Series) else out

    def explain(self, data: Any, top: int = 3, keep: list[str] | tuple = ()) -> Any:
        """Each row's prediction explained (``PREDICT EXPLAIN``): columns ``prediction``,
        ``baseline``, then ``feature_i`` and ``contribution_i`` for i in 1..``top`` (the i-th
        largest contribution by absolute value, named as :meth:`weights` names features), then
        the ``keep`` columns; lazy, one partition at a time, for dask input (pandas in, pandas
        out). Contributions are in the model's margin, not in probabilities: the log-odds of the
        positive class for a binary classifier, the predicted class's raw score for a multiclass
        one, the value for a regressor; ``baseline`` plus every contribution is that margin.
        Boosted trees: XGBoost's TreeSHAP (exact, slow); linear models: ``coef_i * (x_i -
        mean_i)`` in scaled units (see :mod:`oocml.evaluation.explanations` for the means)."""
        from .evaluation.explanations import explain

        return explain(self, data, top, keep, self._meta("predict").dtype)

    def write_predictions(self, data: Any, folder: str | os.PathLike, *, proba: bool = False,
                          keep: list[str] | tuple = (), overwrite: bool = False,
                          storage_options: dict | None = None) -> str:
        """Predict and write parquet files into ``folder`` (a path or any fsspec URL) in
        parallel, committed by a manifest written last (see :mod:`oocml.io.outputs`); returns it."""
        from .io.outputs import write_parquet

        with named_parse_errors(data):
            return write_parquet(self.predictions(data, proba, keep), str(folder),
                                 overwrite=overwrite, storage_options=storage_options)

    def _apply(self, data: Any, method: str, keep: tuple = ()) -> Any:
        """``pipeline.method`` per partition (plus ``keep`` columns of the same partition)."""
        if not hasattr(self.pipeline, method):
            raise ParameterError(f"{type(self.estimator).__name__} has no {method}"
                                 + ("; PREDICT PROBA needs a probabilistic model (e.g. "
                                    "WITH (loss = 'log_loss'))" if method == "predict_proba" else ""))
        self.check_columns(data)
        args = self._block_args(method, keep)
        if isinstance(data, dd.DataFrame):
            meta = apply_block(make_meta(data), *args)
            return data.map_partitions(apply_block, *args, meta=meta, align_dataframes=False)
        return apply_block(data, *args)

    def _read_and_apply(self, data: Any, method: str, keep: tuple) -> dd.DataFrame | None:
        """``_apply`` on a plain parquet read, with oocml's reader: each partition read and
        predicted a batch at a time (the same rows, index and numbers, about twice as fast).
        None when ``data`` is anything else. The result is not derived from ``data``, so it
        is for writing out, not for aligning with ``data``: ``predict`` keeps ``_apply``."""
        if not isinstance(data, dd.DataFrame):
            return None
        self.check_columns(data)
        needed = self.features + [c for c in keep if c not in self.features]
        parts = partitions(data[needed])
        if not parts or not isinstance(parts[0], FilePart):
            return None
        args = self._block_args(method, keep)
        return dd.from_map(apply_part, parts, args=args, meta=apply_block(make_meta(data), *args),
                           enforce_metadata=False)

    def _block_args(self, method: str, keep: tuple) -> tuple:
        """The arguments of :func:`apply_block` after the frame. The output is described with
        plain values: a pandas argument would be taken for a collection."""
        meta = self._meta(method)
        shape = (tuple(meta.columns) if isinstance(meta, pd.DataFrame) else meta.name,
                 meta.dtypes.iloc[0] if isinstance(meta, pd.DataFrame) else meta.dtype)
        return self.pipeline, self.features, method, shape, keep

    def _meta(self, method: str) -> pd.Series | pd.DataFrame:
        if method == "predict":
            dtype = np.dtype(np.asarray(self.classes).dtype if self.task == "classification"
                             else np.int32 if self.task == "clustering" else np.float64)
            if dtype.kind in "USO":  # string labels: pandas' string dtype (parquet-friendly)
                return pd.Series(pd.array([], dtype="string"), name="prediction")
            return pd.Series(np.empty(0, dtype=dtype), name="prediction")
        if method == "predict_proba" or (method == "decision_function" and len(self.classes or []) > 2):
            columns = [f"{'proba' if method == 'predict_proba' else 'score'}_{c}" for c in self.classes]
            return pd.DataFrame(np.empty((0, len(columns))), columns=columns)
        return pd.Series(np.empty(0), name="score")

    def check_columns(self, data: Any, target: bool = False) -> None:
        """Refuse ``data`` lacking a feature column the model reads (or, with ``target``, the
        target), naming it: a :class:`~oocml.errors.ColumnNotFoundError`."""
        columns = list(getattr(data, "columns", []))
        wanted = self.features + ([self.target] if target and self.target else [])
        for column in wanted:
            if column not in columns:
                role = "target" if column == self.target and column not in self.features else "feature"
                raise ColumnNotFoundError(column, columns, role=f"{role} column")

    # -- scoring ----------------------------------------------------------------------------
    def score(self, data: Any) -> float:
        """Accuracy (classifiers), R^2 (regressors) or minus inertia (clustering), block-wise in parallel."""
        totals = self._totals(data, scores=False)  # accuracy needs no scores
        return score_from_totals(totals, self.task, self.classes)

    def evaluate(self, data: Any, by_class: bool = False) -> pd.DataFrame:
        """A metrics table (metric, value): accuracy, precision, recall, f1, log_loss, roc_auc
        and average_precision for classifiers; r2, rmse and mae for regressors; inertia and
        a sampled silhouette for clustering; and the rows scored. ``by_class``: one row per
        class instead (precision, recall, f1, support, roc_auc, average_precision). One
        parallel pass either way."""
        if by_class:
            return class_report(self._totals(data, "BY CLASS"), self.classes)
        totals = self._totals(data)
        rows = metrics_rows(totals, self.task, self.classes)
        if self.task == "clustering":
            rows.append((f"silhouette (sample of {SILHOUETTE_SAMPLE:,})", self._silhouette(data)))
        rows.append(("rows", int(totals["n"])))
        # counts stay whole numbers beside the metrics (an object column keeps each one's type)
        self.last_evaluation = pd.DataFrame({
            "metric": [k for k, _ in rows],
            "value": pd.Series([v if isinstance(v, int) else float(v) for _, v in rows],
                               dtype=object)})
        return self.last_evaluation

    def confusion(self, data: Any) -> pd.DataFrame:
        """The confusion matrix on ``data``: true classes by row, predicted by column."""
        return confusion_frame(self._totals(data, "CONFUSION"), self.classes)

    def curve(self, data: Any) -> pd.DataFrame:
        """ROC and precision-recall curves on ``data`` (class, threshold, tpr, fpr, precision,
        recall; one-vs-rest per class beyond two), with each class's roc_auc and
        average_precision in ``attrs``."""
        self._classifier_only("CURVE")
        method = scored(self.pipeline)
        if method is None:
            raise ParameterError(f"{type(self.estimator).__name__} gives no scores to draw a "
                                 "curve from (neither predict_proba nor decision_function)")
        return curve_table(self._totals(data, "CURVE"), self.classes, method == "predict_proba")

    def residuals(self, data: Any) -> pd.DataFrame:
        """Quantiles of the residuals (target minus prediction) of a regressor on ``data``."""
        if self.task != "regression":
            raise ParameterError(f"residuals are a regressor's; {type(self.estimator).__name__} "
                                 f"is a {self.task} model: EVALUATE CONFUSION / BY CLASS / CURVE")
        return residual_table(self._totals(data, residuals=True))

    def _silhouette(self, data: Any) -> float:
        """Silhouette score on a seeded sample of rows drawn evenly from every partition
        (exact silhouette costs O(n^2): a sample is the only out-of-core option)."""
        from sklearn.metrics import silhouette_score

        if isinstance(data, dd.DataFrame):
            parts = partitions(data[self.features])
            each = -(-SILHOUETTE_SAMPLE // len(parts))
            (samples,) = compute([dask.delayed(sample_rows)(p, each, i)
                                  for i, p in enumerate(parts)])
            sample = pd.concat(samples)
        else:
            sample = sample_rows(data[self.features], SILHOUETTE_SAMPLE, 0)
        X = self.pipeline[:-1].transform(sample)
        labels = self.estimator.predict(X)
        if len(np.unique(labels)) < 2:
            return float("nan")  # silhouette is undefined for a single cluster
        return float(silhouette_score(X, labels))

    def _classifier_only(self, view: str) -> None:
        if self.task != "classification":
            instead = ("EVALUATE RESIDUALS / model.residuals(data)" if self.task == "regression"
                       else "EVALUATE (inertia, silhouette)")
            raise ParameterError(f"EVALUATE {view} is for classifiers; "
                                 f"{type(self.estimator).__name__} is a {self.task} model: "
                                 f"{instead}")

    def _totals(self, data: Any, view: str | None = None, **what: bool) -> dict:
        """The summed block totals of ``data`` (``what``: :func:`~oocml.evaluation.metrics.data_totals`'s
        ``scores`` and ``residuals``); a ``view`` (a classifier's) is checked first."""
        if view is not None:
            self._classifier_only(view)
        self.check_columns(data, target=self.task != "clustering")
        with named_parse_errors(data):
            return data_totals(data, self.pipeline, self.features, self.target, self.task,
                               self.classes, **what)

    # -- inspection: evaluation.inspection computes, evaluation.plots draws (the "plot" extra) ----------
    def weights(self, original_units: bool = False) -> pd.DataFrame:
        """Coefficients and intercepts by feature name, in scaled or original units."""
        from .evaluation.inspection import weights

        return weights(self, original_units)

    def plot_weights(self, top: int = 20) -> Any:
        """A Figure of the ``top`` largest weights."""
        from .evaluation.plots import plot_weights

        return plot_weights(self.weights(), top)

    def plot_roc(self, data: Any) -> Any:
        """A Figure of the ROC curve(s) on ``data``."""
        from .evaluation.plots import plot_roc

        return plot_roc(self.curve(data))

    def plot_pr(self, data: Any) -> Any:
        """A Figure of the precision-recall curve(s) on ``data``."""
        from .evaluation.plots import plot_pr

        return plot_pr(self.curve(data))

    def plot_confusion(self, data: Any) -> Any:
        """A Figure of the confusion matrix on ``data``."""
        from .evaluation.plots import plot_confusion

        return plot_confusion(self.confusion(data))

    def plot_history(self) -> Any:
        """A Figure of the progressive and holdout scores per epoch."""
        from .evaluation.plots import plot_history

        return plot_history(self.history_)

    def plot_search(self) -> Any:
        """A Figure of each search candidate's holdout score per epoch, its stop and the winner."""
        if self.report.search is None:
            raise ParameterError("this model was not searched, so there is no search to plot: "
                                 "train it with TUNE (...) or fit_incremental(search={...})")
        from .evaluation.plots import plot_search

        return plot_search(self.search_results_, self.report.best_candidate)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, storage_options: dict | None = None, *,
             overwrite: bool = False) -> str:
        """Write the model to ``path`` (a path or any fsspec URL; skops format, no pickle; ONNX,
        :meth:`to_onnx`, when it ends in ``.onnx``), whole or not at all; an existing file is
        replaced only with ``overwrite=True``."""
        if is_onnx_path(path):
            return write_onnx(path, self.to_onnx(), storage_options=storage_options,
                              overwrite=overwrite)
        meta = {"features": self.features, "target": self.target, "task": self.task,
                "classes": _jsonable(self.classes),
                "plan": None if self.plan is None else self.plan.as_dict(),
                "report": self.report.as_dict(),
                "lineage": [step.as_dict() for step in self.lineage],
                "profile": (None if self.training_profile is None
                            else self.training_profile.as_dict())}
        return write_model(path, self.pipeline, meta, storage_options=storage_options,
                           overwrite=overwrite)

    def to_onnx(self, target_opset: int | None = None) -> Any:
        """The model as an ONNX graph (``onnx.ModelProto``) for onnxruntime: see
        :func:`oocml.export.to_onnx` (the "onnx" extra); ``oocml.export.opset(graph)`` is
        the operator set it uses."""
        from .export import to_onnx

        return to_onnx(self, target_opset)


def load_model(path: str | os.PathLike, storage_options: dict | None = None) -> Model:
    """Read a model written by :meth:`Model.save` (by this oocml or an earlier one) from a path
    or any fsspec URL; refuses files holding types oocml does not write."""
    pipeline, meta = read_model(path, storage_options)
    return Model(pipeline, features=meta["features"], target=meta["target"], task=meta["task"],
                 classes=meta["classes"], plan=_plan(meta.get("plan"), path),
                 report=FitReport.from_dict(meta.get("report") or meta.get("info") or {}),
                 lineage=tuple(LineageStep.from_dict(s) for s in meta.get("lineage") or ()),
                 training_profile=(DataProfile.from_dict(meta["profile"])
                                   if meta.get("profile") else None))


def _plan(data: dict | None, path: Any) -> Plan | None:
    """The plan a model file holds; None (with a warning) where it cannot be read back whole:
    oocml 0.1 wrote a WHERE that mixes AND and OR so that the two cannot be told apart."""
    if not data:
        return None
    try:
        return Plan.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("the plan kept in %s cannot be read back (%s); the model is whole, and "
                    "its plan is left out (Model.plan is None)", path, exc)
        return None


def _jsonable(values: list | None) -> list | None:
    return None if values is None else np.asarray(values).tolist()
