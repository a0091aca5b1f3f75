"""oocml.sql and Session: every statement run on parquet files, and the same model as the accessor."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier, SGDRegressor

import oocml
from oocml.errors import ColumnNotFoundError, SourceError, UnknownModelError


@pytest.fixture
def session(tmp_path):
    return oocml.Session()


EQUIVALENT = [
    ("TRAIN sgd ON '{d}' PREDICT y SCALE standard",
     lambda f: f.ml.scale().fit_incremental(SGDClassifier, target="y")),
    ("TRAIN sgd ON '{d}' PREDICT y SCALE minmax EPOCHS 2 SHUFFLE SEED 11 WITH (alpha = 0.001)",
     lambda f: f.ml.scale("minmax").fit_incremental(SGDClassifier(alpha=0.001), target="y", epochs=2,
                                                    shuffle=True, random_state=11)),
    ("TRAIN sgd ON '{d}' PREDICT y FEATURES x0, x2, x4 WHERE x1 > 0 BLOCKSIZE 2000 ROWS",
     lambda f: f.ml.where("x1 > 0").fit_incremental(SGDClassifier, target="y",
                                                    features=["x0", "x2", "x4"], block_rows=2000)),
    ("TRAIN passive_aggressive ON '{d}' PREDICT y FEATURES * EXCLUDE (x5) SCALE maxabs",
     lambda f: f.ml.select(exclude=["x5"]).scale("maxabs").fit_incremental(
         SGDClassifier(loss="hinge", penalty=None, learning_rate="pa1", eta0=1.0), target="y")),
    ("TRAIN sgd ON '{d}' PREDICT y SCALE standard EPOCHS 2 PARALLEL",
     lambda f: f.ml.scale().fit_incremental(SGDClassifier, target="y", epochs=2,
                                            strategy="average")),
]


@pytest.mark.parametrize("statement, chain", EQUIVALENT)
def test_language_and_accessor_give_the_same_model_bit_for_bit(session, binary_dir, statement, chain):
    via_sql = session.sql(statement.format(d=binary_dir))
    via_accessor = chain(dd.read_parquet(binary_dir))
    assert via_sql.plan.without_source() == via_accessor.plan.without_source()
    np.testing.assert_array_equal(via_sql.estimator.coef_, via_accessor.estimator.coef_)
    np.testing.assert_array_equal(via_sql.estimator.intercept_, via_accessor.estimator.intercept_)


def test_train_evaluate_predict_describe_drop(session, binary_dir, binary):
    model = session.sql(f"TRAIN sgd ON '{binary_dir}/*.parquet' PREDICT y SCALE standard "
                        "WITH (loss = 'log_loss') AS clicks")
    assert isinstance(model, oocml.Model)
    metrics = session.sql(f"EVALUATE clicks ON '{binary_dir}'")
    assert isinstance(metrics, pd.DataFrame) and metrics.iloc[0, 0] == "accuracy"
    assert metrics.iloc[0, 1] == pytest.approx(model.score(binary))

    pred = session.sql(f"PREDICT USING clicks ON '{binary_dir}'")
    assert isinstance(pred, dd.DataFrame) and list(pred.columns) == ["prediction"]
    np.testing.assert_array_equal(pred.compute()["prediction"], model.predict(binary).compute())
    proba = session.sql(f"PREDICT PROBA USING clicks ON '{binary_dir}'")
    assert list(proba.columns) == ["proba_0", "proba_1"]

    described = session.sql("DESCRIBE clicks").set_index("property")["value"]
    assert described["name"] == "clicks" and described["target"] == "y"
    assert described["rows seen"] == 30_000 and "mean_" in described["step scale"]

    shown = session.sql("SHOW MODELS")
    assert shown["name"].tolist() == ["clicks"] and shown["rows_seen"].tolist() == [30_000]
    assert session.sql("DROP MODEL clicks") == "dropped model clicks"
    assert session.sql("SHOW MODELS").empty


def test_predict_into_a_folder(session, binary_dir, tmp_path):
    session.sql(f"TRAIN naive_bayes ON '{binary_dir}' PREDICT y AS nb")
    out = tmp_path / "predictions"
    assert session.sql(f"PREDICT USING nb ON '{binary_dir}' INTO '{out}'") == str(out)
    assert len(dd.read_parquet(out)) == 30_000
    with pytest.raises(SourceError, match="already holds files"):
        session.sql(f"PREDICT USING nb ON '{binary_dir}' INTO '{out}'")
    session.sql(f"PREDICT PROBA USING nb ON '{binary_dir}' INTO '{out}' OVERWRITE")
    assert "proba_1" in dd.read_parquet(out).columns


def test_tables_from_keyword_arguments_and_csv(binary_dir, tmp_path):
    frame = pd.read_parquet(binary_dir)
    model = oocml.sql("TRAIN sgd ON data PREDICT y SCALE standard AS from_table", data=frame)
    assert model.report.rows == 30_000
    frame.to_csv(tmp_path / "data.csv", index=False)
    model = oocml.sql(f"TRAIN sgd ON '{tmp_path}/data.csv' PREDICT y SCALE standard")
    assert model.report.rows == 30_000
    # the default session keeps models across calls
    assert oocml.sql("EVALUATE from_table ON data", data=frame).iloc[-1, 1] == 30_000


def test_regression_and_save_load(session, regression_dir, tmp_path):
    session.sql(f"TRAIN sgd_regressor ON '{regression_dir}' PREDICT y SCALE standard EPOCHS 3 AS r")
    path = tmp_path / "r.oocml"
    assert session.sql(f"SAVE MODEL r TO '{path}'") == str(path)
    other = oocml.Session()
    other.sql(f"LOAD MODEL again FROM '{path}'")
    table = other.sql(f"EVALUATE again ON '{regression_dir}'")
    assert table.set_index("metric")["value"]["r2"] > 0.9
    assert isinstance(other.sql("DESCRIBE again"), pd.DataFrame)
    expected = oocml.load_model(path).estimator
    assert isinstance(expected, SGDRegressor)


def test_store_persists_models_across_sessions(binary_dir, tmp_path):
    store = tmp_path / "store"
    oocml.Session(store).sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard AS kept")
    assert (store / "kept@1.oocml").is_file()  # version 1 (tests/test_versions.py)
    later = oocml.Session(store)
    assert later.sql("SHOW MODELS")["name"].tolist() == ["kept"]
    assert later.sql(f"EVALUATE kept ON '{binary_dir}'").iloc[0, 1] > 0.85
    later.sql("DROP MODEL kept")
    assert list(store.iterdir()) == []


def test_explain_reads_only_metadata(session, binary_dir):
    text = session.sql(f"EXPLAIN TRAIN sgd ON '{binary_dir}' PREDICT y WHERE x0 > 0 "
                       "SCALE standard EPOCHS 2 AS m")
    for fragment in ["(parquet, 6 files, 30,000 rows)", "x0 float64", "features:   x0, x1",
                     "target:     y", "pushed down to parquet", "1. statistics, one parallel pass",
                     "class labels of y", "3. training epoch 2/2", "6 partitions",
                     ".ml.where('x0 > 0').scale('standard').fit_incremental(SGDClassifier"]:
        assert fragment in text, text
    assert session.sql("SHOW MODELS").empty  # nothing was trained
    algorithms = session.sql("SHOW ALGORITHMS")
    assert {"sgd", "mlp", "minibatch_kmeans"} <= set(algorithms["name"])
    assert "alpha" in algorithms.set_index("name")["parameters"]["sgd"]


def test_user_errors_are_clear(session, binary_dir):
    with pytest.raises(UnknownModelError, match="did you mean 'clicks'"):
        session.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y AS clicks; EVALUATE clikcs ON '{binary_dir}'")
    with pytest.raises(SourceError, match="no table named 'tabel'"):
        session.sql("TRAIN sgd ON tabel PREDICT y", table=pd.DataFrame({"y": [1]}))
    with pytest.raises(ColumnNotFoundError, match="did you mean 'x1'"):
        session.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y FEATURES x_1")
    with pytest.raises(SourceError, match="no data files match"):
        session.sql("TRAIN sgd ON 'no/such/*.parquet' PREDICT y")
    with pytest.raises(oocml.OocmlError):
        session.sql("TRAIN sgd ON t PREDICT y", t=[1, 2, 3])


def test_progress_bars_on_request(binary_dir, capsys):
    session = oocml.Session(progress=True)
    session.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y AS m")
    assert "partitions" in capsys.readouterr().err  # the training loop's own line
    quiet = oocml.Session()
    quiet.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y AS m; EVALUATE m ON '{binary_dir}'")
    assert capsys.readouterr().err == ""


def test_parallel_trains_every_worker_and_refuses_what_cannot_be_averaged(session, binary_dir):
    with dask.config.set(num_workers=2):
        model = session.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard PARALLEL AS m")
    assert model.report.strategy == "average" and model.report.workers == 2
    sequential = session.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard")
    assert abs(model.score(dd.read_parquet(binary_dir))
               - sequential.score(dd.read_parquet(binary_dir))) < 0.01
    assert "averaged after each round (PARALLEL)" in session.sql(
        f"EXPLAIN TRAIN sgd ON '{binary_dir}' PREDICT y PARALLEL")
    with pytest.raises(oocml.OocmlError, match="MLPClassifier cannot be averaged"):
        session.sql(f"TRAIN mlp ON '{binary_dir}' PREDICT y PARALLEL")
    with pytest.raises(oocml.OocmlError, match="CHECKPOINT"):
        dd.read_parquet(binary_dir).ml.fit_incremental("sgd", target="y", strategy="average",
                                                       checkpoint=str(binary_dir / "x.ckpt"))
