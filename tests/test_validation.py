"""Validation while training: HOLDOUT split, score per epoch, EARLY STOP, progressive validation."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.preprocessing import StandardScaler
from test_engine import READS, counted_frame  # tests/ is on sys.path (rootdir conftest)

import oocml
from oocml.engine.validation import holdout_mask
from oocml.errors import ParameterError


def _split(folder) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.read_parquet(folder)
    held = holdout_mask(frame, 0.2)
    return frame[~held], frame[held]


def test_the_split_depends_on_the_rows_only(binary_dir):
    frame = pd.read_parquet(binary_dir)
    held = holdout_mask(frame, 0.2)
    assert abs(held.mean() - 0.2) < 0.01
    # Reordered and cut into other pieces, every row keeps its side.
    shuffled = frame.sample(frac=1.0, random_state=3)
    pieces = np.array_split(np.arange(len(shuffled)), 7)
    again = np.concatenate([holdout_mask(shuffled.iloc[p], 0.2) for p in pieces])
    assert (pd.Series(again, index=shuffled.index).sort_index().to_numpy() == held).all()


def test_holdout_scores_every_epoch_and_keeps_statistics_to_training_rows(binary_dir):
    model = dd.read_parquet(binary_dir).ml.scale().fit_incremental(
        SGDClassifier, target="y", epochs=3, holdout=0.2)
    history = model.history_
    assert list(history["epoch"]) == [1, 2, 3]
    train_rows, held_rows = _split(binary_dir)
    assert (history["rows"] == len(train_rows)).all()
    assert (history["holdout_rows"] == len(held_rows)).all()
    assert history["holdout_score"].between(0.8, 1.0).all()
    assert history["progressive_score"].between(0.7, 1.0).all()
    # The scaler saw the training rows only.
    expected = StandardScaler().fit(train_rows[model.feature_names])
    np.testing.assert_allclose(model.pipeline.named_steps["scale"].mean_, expected.mean_, rtol=1e-10)
    # The last epoch's holdout score is the model's score on exactly the held-out rows.
    assert history["holdout_score"].iloc[-1] == pytest.approx(
        (model.pipeline.predict(held_rows) == held_rows["y"]).mean(), abs=1e-6)
    assert model.report.passes == 1 + 1 + 3 and model.report.cached_epochs == 2  # the cache


def test_holdout_reads_once_more_per_epoch(binary_dir):
    frame = counted_frame(binary_dir)
    frame.ml.scale().fit_incremental(SGDClassifier, target="y", epochs=2, holdout=0.1,
                                     cache=False)
    assert len(READS) == 6 * (1 + 2 * 2)
    READS.clear()  # the cache serves epoch 2; the holdout is still scored from the source
    frame.ml.scale().fit_incremental(SGDClassifier, target="y", epochs=2, holdout=0.1)
    assert len(READS) == 6 * (1 + 1 + 2)


def test_early_stopping_keeps_the_best_epoch(binary_dir):
    model = dd.read_parquet(binary_dir).ml.scale().fit_incremental(
        SGDClassifier, target="y", epochs=40, holdout=0.2, patience=2,
        learning_rate="constant", eta0=0.5)  # a noisy learner: its holdout score wanders
    history = model.history_
    assert model.report.stopped_early and len(history) < 40
    best = history["holdout_score"].idxmax()
    assert model.report.best_epoch == history["epoch"][best]
    assert (history["holdout_score"].iloc[best + 1:] <= history["holdout_score"][best]).all()
    assert len(history) == model.report.best_epoch + 2
    _, held_rows = _split(binary_dir)
    assert (model.pipeline.predict(held_rows) == held_rows["y"]).mean() == pytest.approx(
        history["holdout_score"][best], abs=1e-6)


def test_regression_holdout_is_r2(regression_dir):
    model = dd.read_parquet(regression_dir).ml.scale().fit_incremental(
        SGDRegressor, target="y", epochs=2, holdout=0.25)
    held = pd.read_parquet(regression_dir)
    held = held[holdout_mask(held, 0.25)]
    expected = model.pipeline.score(held[model.feature_names], held["y"])
    assert model.history_["holdout_score"].iloc[-1] == pytest.approx(expected, abs=1e-6)
    assert model.history_["progressive_score"].iloc[-1] > 0.5


def test_language_and_accessor_agree_and_describe_shows_scores(binary_dir):
    session = oocml.Session()
    via_sql = session.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard EPOCHS 5 "
                          "HOLDOUT 0.2 EARLY STOP PATIENCE 2 AS m")
    via_accessor = dd.read_parquet(binary_dir).ml.scale().fit_incremental(
        SGDClassifier, target="y", epochs=5, holdout=0.2, patience=2)
    np.testing.assert_array_equal(via_sql.estimator.coef_, via_accessor.estimator.coef_)
    pd.testing.assert_frame_equal(via_sql.history_.drop(columns="seconds"),
                                  via_accessor.history_.drop(columns="seconds"))
    described = session.sql("DESCRIBE m").set_index("property")["value"]
    assert "holdout_score" in described["epoch 1"]
    assert "progressive_score" in described["epoch 1"]
    explained = session.sql(f"EXPLAIN TRAIN sgd ON '{binary_dir}' PREDICT y EPOCHS 2 HOLDOUT 0.2")
    assert "holdout score after epoch 2" in explained and "held out by a hash" in explained
    assert "statistics from the 80% training rows" in explained


def test_bad_holdout_options_fail_before_reading(binary):
    with pytest.raises(ParameterError, match="between 0 and 1"):
        binary.ml.fit_incremental(SGDClassifier, target="y", holdout=1.5)
    with pytest.raises(ParameterError, match="needs a holdout"):
        binary.ml.fit_incremental(SGDClassifier, target="y", patience=2)
    with pytest.raises(oocml.OocmlError, match="HOLDOUT"):
        oocml.Session().sql("TRAIN sgd ON t PREDICT y HOLDOUT 2", t=binary)
