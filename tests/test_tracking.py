"""Experiment tracking with MLflow's local file store: every TRAIN, TUNE and UPDATE is a run with
its parameters, per-epoch metrics, plan, lineage and model file; a failing tracker loses no
model."""

from __future__ import annotations

import json

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import oocml
from oocml.errors import ParameterError
from oocml.tracking import TrackingWarning

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """MLflow's file store in a temporary folder (MLflow 3 asks for the opt-in to use it)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("OOCML_TRACKING", raising=False)
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())

    def found() -> pd.DataFrame:
        table = mlflow.search_runs(experiment_names=["oocml"])
        return table.sort_values("start_time").reset_index(drop=True)

    return found


def _days(folder, count: int = 2):
    for day in range(count):
        rng = np.random.default_rng(day)
        frame = pd.DataFrame(rng.normal(size=(3_000, 3)), columns=["a", "b", "c"])
        frame["y"] = (frame.a + rng.normal(scale=0.5, size=3_000) > 0).astype(int)
        (folder / f"day={day}").mkdir(parents=True)
        frame.to_parquet(folder / f"day={day}" / "part.parquet")
    return folder


def test_train_tune_and_update_are_logged_as_runs(tmp_path, runs):
    data = _days(tmp_path / "events")
    session = oocml.Session(tmp_path / "store", progress=False, tracking="mlflow")
    model = session.sql(f"TRAIN sgd ON '{data / 'day=0'}' PREDICT y FEATURES a, b, c "
                        "SCALE standard EPOCHS 3 HOLDOUT 0.2 AS m")
    session.sql(f"UPDATE m ON '{data}' NEW")
    session.sql(f"TRAIN sgd ON '{data / 'day=0'}' PREDICT y FEATURES a, b, c "
                "TUNE (alpha IN (0.0001, 0.01)) AS t")
    table = runs()
    assert table["tags.mlflow.runName"].tolist() == ["train m", "update m", "train t"]
    assert table["tags.oocml.version"].tolist() == ["1", "2", "1"]
    first, update, tune = (table.iloc[i] for i in range(3))
    assert first["params.epochs"] == "3" and first["params.steps"] == "scale standard"
    assert first["metrics.rows_seen"] == model.report.rows_seen
    assert first["metrics.holdout_score"] == pytest.approx(model.report.holdout_score)
    history = mlflow.MlflowClient().get_metric_history(first.run_id, "epoch.holdout_score")
    assert [m.step for m in history] == [1, 2, 3]
    assert update["metrics.progressive_score"] == pytest.approx(
        session.model("m").lineage[-1].score)
    assert tune["params.chosen.alpha"] in ("0.0001", "0.01")
    folder = mlflow.artifacts.download_artifacts(run_id=update.run_id, dst_path=str(tmp_path / "a"))
    lineage = json.loads((tmp_path / "a" / "lineage.json").read_text())["lineage"]
    assert [s["kind"] for s in lineage] == ["train", "update"]
    logged = oocml.load_model(f"{folder}/model.oocml")
    np.testing.assert_array_equal(logged.estimator.coef_, session.model("m").estimator.coef_)
    assert (tmp_path / "a" / "plan.json").is_file()


def test_the_environment_turns_tracking_on_for_the_accessor(tmp_path, runs, monkeypatch):
    monkeypatch.setenv("OOCML_TRACKING", "mlflow")
    data = _days(tmp_path / "events")
    model = dd.read_parquet(data / "day=0").ml.fit_incremental("sgd", target="y",
                                                                  features=["a", "b", "c"])
    dd.read_parquet(data / "day=1").ml.update(model)
    assert runs()["tags.mlflow.runName"].tolist() == ["train unnamed", "update unnamed"]


def test_a_failing_tracker_warns_and_keeps_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    mlflow.set_tracking_uri("http://127.0.0.1:9")
    data = _days(tmp_path / "events", 1)
    session = oocml.Session(tmp_path / "store", progress=False, tracking="mlflow")
    with pytest.warns(TrackingWarning, match="model m was kept but not logged to MLflow"):
        session.sql(f"TRAIN sgd ON '{data}' PREDICT y FEATURES a, b, c AS m")
    assert oocml.Session(tmp_path / "store").versions("m").version.tolist() == [1]
    with pytest.raises(ParameterError, match="unknown tracking 'wandb'"):
        oocml.Session(tracking="wandb")
