"""Model files written by oocml 0.1 (tests/data/oocml-0.1/, made by the release at 248860f from
the data below) still load, predict, describe and save again; and a model's plan and report
round-trip through the current format.

Written then by a store session:
- classifier: TRAIN sgd ... FEATURES x0, x1, city IMPUTE mean ENCODE onehot SCALE standard
  WITH (loss = 'log_loss') EPOCHS 2 HOLDOUT 0.2
- tuned: TRAIN sgd ... FEATURES x0, x1 IMPUTE median SCALE minmax TUNE (alpha IN (1e-4, 1e-3))
  EPOCHS 2
- regressor: TRAIN sgd_regressor ... PREDICT v FEATURES x0 SCALE standard WHERE x0 > -2
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import oocml
from oocml.plan import Compare, Plan
from oocml.report import FitReport

FILES = Path(__file__).parent / "data" / "oocml-0.1"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """The rows the 0.1 models were trained on, made again the way they were made then."""
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"x0": rng.normal(size=n), "x1": rng.normal(size=n),
                          "city": rng.choice(["paris", "rome", "oslo"], n)})
    frame.loc[::17, "x1"] = np.nan
    frame["y"] = (frame["x0"] + (frame["city"] == "rome") > 0.3).astype(int)
    frame["v"] = 2 * frame["x0"] + rng.normal(scale=0.1, size=n)
    return frame


def test_a_classifier_of_oocml_0_1_loads_with_its_report_and_plan(data):
    model = oocml.load_model(FILES / "classifier.oocml")
    assert model.score(data) > 0.9
    report = model.report
    assert report.rows + report.history[0]["holdout_rows"] == 600  # training rows + held out
    assert (report.epochs, report.rows_seen) == (2, 2 * report.rows)
    assert report.holdout == 0.2 and report.best_epoch in (1, 2) and len(report.history) == 2
    assert model.info["rows_seen"] == report.rows_seen  # the 0.1 view, read-only
    with pytest.raises(TypeError):
        model.info["rows_seen"] = 0
    plan = model.plan
    assert isinstance(plan, Plan) and plan.features == ("x0", "x1", "city")
    assert [(s.kind, s.method) for s in plan.steps] == [("impute", "mean"), ("encode", "onehot"),
                                                         ("scale", "standard")]
    assert dict(plan.estimator.params)["loss"] == "log_loss"
    assert model.history_["holdout_score"].notna().all()
    table = model.describe().set_index("property")["value"]
    assert table["rows seen"] == report.rows_seen and "learning curve" in table


def test_a_search_and_a_where_of_oocml_0_1_load(data):
    tuned = oocml.load_model(FILES / "tuned.oocml")
    assert tuned.report.best_params["alpha"] in (1e-4, 1e-3)
    assert len(tuned.search_results_) == 2 and tuned.search_results_["rank"].tolist() in ([1, 2], [2, 1])
    assert tuned.plan.search.space == (("alpha", (1e-4, 1e-3)),)
    regressor = oocml.load_model(FILES / "regressor.oocml")
    assert regressor.plan.where == Compare("x0", ">", -2)
    assert regressor.report.rows == int((data["x0"] > -2).sum())
    assert regressor.score(data) > 0.95


def test_an_old_model_saved_again_is_the_same_model(data, tmp_path):
    old = oocml.load_model(FILES / "classifier.oocml")
    old.save(tmp_path / "again.oocml")
    again = oocml.load_model(tmp_path / "again.oocml")
    assert again.report == old.report and again.plan == old.plan
    np.testing.assert_array_equal(again.predict_proba(data), old.predict_proba(data))


def test_a_store_of_oocml_0_1_models_serves_statements(data, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(FILES, store)
    session = oocml.Session(store)
    assert set(session.sql("SHOW MODELS")["name"]) == {"classifier", "regressor", "tuned"}
    assert len(session.sql("SHOW TRIALS tuned")) == 2
    metrics = session.sql("EVALUATE regressor ON frame", frame=data).set_index("metric")["value"]
    assert metrics["r2"] > 0.95


def test_a_plan_and_a_report_round_trip_through_a_model_file(binary_dir, tmp_path):
    session = oocml.Session(tmp_path / "store")
    model = session.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y WHERE x0 > 0 OR (x1 < 1 AND NOT x2 "
                        "IS NULL) SCALE minmax TUNE (alpha IN (1e-4, 1e-3)) EPOCHS 2 AS m")
    loaded = oocml.load_model(tmp_path / "store" / "m@1.oocml")
    assert loaded.plan == model.plan and loaded.report == model.report
    assert isinstance(loaded.report, FitReport) and loaded.report.search is not None


def test_an_untagged_and_or_of_0_1_loads_the_model_without_its_plan(tmp_path, caplog):
    """oocml 0.1 wrote AND and OR alike: such a plan is left out, with a warning; the model
    itself is whole."""
    from oocml.modelfile import read_model, write_model

    pipeline, meta = read_model(FILES / "regressor.oocml")
    meta["plan"]["where"] = {"items": [meta["plan"]["where"], meta["plan"]["where"]]}
    write_model(tmp_path / "ambiguous.oocml", pipeline, meta)
    model = oocml.load_model(tmp_path / "ambiguous.oocml")
    assert model.plan is None and "cannot be read back" in caplog.text
    assert model.report.rows_seen > 0
