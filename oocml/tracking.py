"""Experiment tracking: every TRAIN (TUNE included) and UPDATE logged as an MLflow run.

Asked for with ``oocml.Session(tracking="mlflow")``, or for every session and fit with the
environment variable ``OOCML_TRACKING=mlflow`` (the ``mlflow`` extra). A run is named after
the model and logs: the estimator's parameters and the plan's (steps, epochs, shuffling,
holdout; TUNE's chosen parameters), per-epoch and final metrics, the plan, the lineage and,
after a search, every candidate as JSON, and the model file itself. Where runs go is MLflow's
own setting (``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``; the experiment "oocml"
otherwise). Logging runs after the model is kept: a tracking server that fails is reported by
a :class:`TrackingWarning`, and the model stays.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from typing import TYPE_CHECKING, Any

from .errors import MissingPackageError, ParameterError

if TYPE_CHECKING:
    from .model import Model

TRACKERS = ("mlflow",)
EXPERIMENT = "oocml"  # MLflow's experiment when MLFLOW_EXPERIMENT_NAME names none


class TrackingWarning(UserWarning):
    """A fit's run could not be logged; the model itself is kept."""


def tracker(tracking: str | None) -> str | None:
    """The tracker asked for (``tracking``, else ``OOCML_TRACKING``), checked to be importable;
    None for none."""
    chosen = tracking if tracking is not None else os.environ.get("OOCML_TRACKING") or None
    if chosen is None or chosen in ("", "none", "off"):
        return None
    if chosen not in TRACKERS:
        raise ParameterError(f"unknown tracking {chosen!r}: choose one of {', '.join(TRACKERS)} "
                             "(or none)")
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise MissingPackageError('tracking="mlflow" needs MLflow: pip install "oocml[mlflow]"') \
            from None
    return chosen


def log_fit(model: Model, name: str | None = None, version: int | None = None) -> str | None:
    """Log ``model``'s last fit (its TRAIN, or an UPDATE) as one MLflow run; its run id, or None
    (with a :class:`TrackingWarning`) when logging failed."""
    import mlflow

    step = model.lineage[-1] if model.lineage else None
    kind = step.kind if step is not None else "train"
    try:
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        found = mlflow.get_experiment_by_name(experiment)
        with mlflow.start_run(run_name=f"{kind} {name or 'unnamed'}",
                              experiment_id=(found.experiment_id if found is not None
                                             else mlflow.create_experiment(experiment)),
                              tags=_tags(model, kind, name, version)) as run:
            mlflow.log_params(_params(model))
            _log_metrics(mlflow, model)
            _log_documents(mlflow, model)
            return run.info.run_id
    except Exception as exc:  # noqa: BLE001  (a tracking fault must not lose the model)
        warnings.warn(f"the {kind} of model {name or '(unnamed)'} was kept but not logged to "
                      f"MLflow: {exc}", TrackingWarning, stacklevel=3)
        return None


def _tags(model: Model, kind: str, name: str | None, version: int | None) -> dict[str, str]:
    tags = {"oocml.fit": kind, "oocml.algorithm": type(model.estimator).__name__,
            "oocml.task": model.task}
    if name is not None:
        tags["oocml.model"] = name
    if version is not None:
        tags["oocml.version"] = str(version)
    if model.lineage and model.lineage[-1].source is not None:
        tags["oocml.source"] = model.lineage[-1].source
    return tags


def _params(model: Model) -> dict[str, Any]:
    """The estimator's parameters that differ from its defaults, then the plan's."""
    from .estimators import changed_params

    estimator = model.estimator
    params = {f"estimator.{k}": v for k, v in sorted(changed_params(
        type(estimator), estimator.get_params(deep=False)).items())}
    plan = model.plan
    if plan is not None:
        stream = plan.stream
        params.update({"target": plan.target, "features": len(model.features),
                       "steps": ", ".join(f"{s.kind} {s.method}" for s in plan.steps) or "none",
                       "epochs": stream.epochs, "shuffle": stream.shuffle,
                       "holdout": stream.holdout, "random_state": plan.random_state})
    if model.report.best_params is not None:
        params.update({f"chosen.{k}": v for k, v in model.report.best_params.items()})
    return {k: ("None" if v is None else v) for k, v in params.items()}


def _log_metrics(mlflow: Any, model: Model) -> None:
    """Each epoch's scores and rows (step = epoch), then the fit's totals."""
    for entry in model.report.history:
        scores = {k: float(v) for k, v in entry.items()
                  if k != "epoch" and isinstance(v, int | float) and not isinstance(v, bool)}
        mlflow.log_metrics({f"epoch.{k}": v for k, v in scores.items()}, step=int(entry["epoch"]))
    report = model.report
    final = {"rows_seen": report.rows_seen, "epochs": report.epochs,
             "train_seconds": report.train_seconds, "stats_seconds": report.stats_seconds,
             "holdout_score": report.holdout_score}
    if model.lineage and model.lineage[-1].score is not None:
        final[f"{model.lineage[-1].score_kind}_score"] = model.lineage[-1].score
    mlflow.log_metrics({k: float(v) for k, v in final.items() if v is not None})


def _log_documents(mlflow: Any, model: Model) -> None:
    """The plan, the lineage, a search's candidates, and the model file, as artifacts."""
    if model.plan is not None:
        mlflow.log_dict(model.plan.as_dict(), "plan.json")
    mlflow.log_dict({"lineage": [step.as_dict() for step in model.lineage]}, "lineage.json")
    if model.report.search is not None:
        mlflow.log_text(json.dumps(list(model.report.search), default=repr, indent=1),
                        "search.json")
    with tempfile.TemporaryDirectory(prefix="oocml-mlflow-") as folder:
        path = os.path.join(folder, "model.oocml")
        model.save(path)
        mlflow.log_artifact(path)
