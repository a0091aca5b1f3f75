"""Model: exact block-wise metrics, safe and atomic persistence."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn import metrics
from sklearn.linear_model import SGDClassifier

import oocml
from oocml.errors import ColumnNotFoundError, ModelFileError


@pytest.fixture(scope="module")
def model(binary_dir):
    import dask.dataframe as dd

    return dd.read_parquet(binary_dir).ml.scale().fit_incremental(
        SGDClassifier, target="y", loss="log_loss")


def test_evaluate_matches_sklearn_metrics_in_memory(model, binary, binary_dir):
    frame = pd.read_parquet(binary_dir)
    y, pred = frame["y"], model.pipeline.predict(frame)
    table = model.evaluate(binary)
    got = dict(zip(table.metric, table.value))
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred), rel=1e-12)
    assert got["precision (binary)"] == pytest.approx(metrics.precision_score(y, pred), rel=1e-12)
    assert got["recall (binary)"] == pytest.approx(metrics.recall_score(y, pred), rel=1e-12)
    assert got["f1 (binary)"] == pytest.approx(metrics.f1_score(y, pred), rel=1e-12)
    proba = model.pipeline.predict_proba(frame)
    assert got["log_loss"] == pytest.approx(metrics.log_loss(y, proba), rel=1e-9)
    assert got["rows"] == len(frame)


def test_multiclass_evaluate_is_macro(multiclass, multiclass_dir):
    model = multiclass.ml.scale().fit_incremental(SGDClassifier, target="y")
    frame = pd.read_parquet(multiclass_dir)
    pred = model.pipeline.predict(frame)
    got = dict(zip(*model.evaluate(multiclass).T.to_numpy()))
    assert got["f1 (macro)"] == pytest.approx(metrics.f1_score(frame.y, pred, average="macro"))
    assert "log_loss" not in got  # hinge loss has no probabilities


def test_predict_needs_the_feature_columns(model, binary):
    with pytest.raises(ColumnNotFoundError, match="feature column 'x3'"):
        model.predict(binary.drop(columns="x3"))
    with pytest.raises(ColumnNotFoundError, match="target column 'y'"):
        model.score(binary.drop(columns="y"))
    assert model.predict(binary.drop(columns="y")).npartitions == binary.npartitions


def test_save_and_load_round_trip(model, binary, tmp_path):
    path = tmp_path / "models" / "m.oocml"
    assert model.save(path) == str(path)
    assert [p.name for p in path.parent.iterdir()] == ["m.oocml"]  # no temporary left over
    loaded = oocml.load_model(path)
    np.testing.assert_array_equal(loaded.predict(binary).compute(), model.predict(binary).compute())
    assert loaded.features == model.features and loaded.classes == model.classes
    assert loaded.report.rows_seen == 30_000
    assert loaded.describe().set_index("property").loc["algorithm", "value"] == "SGDClassifier"


def test_save_replaces_atomically(model, tmp_path, monkeypatch):
    path = tmp_path / "m.oocml"
    model.save(path)
    before = path.read_bytes()

    def broken(_):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sio, "dumps", broken)
    with pytest.raises(RuntimeError):
        model.save(path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.oocml"]


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["OOCML_TEST_MARKER"]),))


def test_a_pickle_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("OOCML_TEST_MARKER", str(marker))
    evil = tmp_path / "evil.oocml"
    evil.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(ModelFileError, match="not an oocml model"):
        oocml.load_model(evil)
    assert not marker.exists()


def test_a_skops_file_with_foreign_types_is_refused(tmp_path):
    path = tmp_path / "foreign.oocml"
    sio.dump({"format": "oocml.model", "pipeline": _Foreign()}, path)
    with pytest.raises(ModelFileError, match="types oocml never writes"):
        oocml.load_model(path)


class _Foreign:
    pass


def test_a_skops_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "other.oocml"
    sio.dump({"hello": 1}, path)
    with pytest.raises(ModelFileError, match="not an oocml model"):
        oocml.load_model(path)


def test_confusion_counts_equal_sklearn():
    from oocml.evaluation.metrics import confusion_counts

    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 10_000), rng.integers(0, 4, 10_000)
    for classes in ([0, 1, 2, 3], [0, 2, 3]):  # 1 is outside the classes: left out, as sklearn does
        np.testing.assert_array_equal(confusion_counts(y_true, y_pred, classes),
                                      metrics.confusion_matrix(y_true, y_pred, labels=classes))
    strings = np.array(["a", "b", "c"])[y_true % 3]
    np.testing.assert_array_equal(confusion_counts(strings, strings[::-1], ["a", "b", "c"]),
                                  metrics.confusion_matrix(strings, strings[::-1], labels=["a", "b", "c"]))


def test_evaluate_and_predict_name_the_columns_with_missing_values(model, binary_dir, tmp_path):
    """A model without an imputer refuses NaN at scoring time as training does: by column."""
    from oocml.errors import DataError

    frame = pd.read_parquet(binary_dir)
    frame.loc[frame.index[::97], "x3"] = np.nan
    frame.iloc[:9_000].to_parquet(tmp_path / "a.parquet")
    frame.iloc[9_000:].to_parquet(tmp_path / "b.parquet")
    session = oocml.Session()
    session.catalog.put("m", model)
    for statement in [f"EVALUATE m ON '{tmp_path}'", f"PREDICT USING m ON '{tmp_path}'"]:
        with pytest.raises(DataError, match=r"missing values \(NaN\) in feature column\(s\) "
                                            r"\{'x3': \d+\}.*no imputer"):
            result = session.sql(statement)
            result.compute()  # PREDICT is lazy
    with pytest.raises(DataError, match="'x3'"):
        model.evaluate(frame)  # pandas in


def test_a_regressor_refuses_a_text_target_by_name(binary_dir, tmp_path):
    from oocml.errors import DataError

    frame = pd.read_parquet(binary_dir)
    frame["label"] = np.where(frame["y"] == 1, "yes", "no")
    frame.drop(columns="y").to_parquet(tmp_path / "labels.parquet")
    with pytest.raises(DataError, match="the target column 'label' holds .* a regressor needs a "
                                        "numeric target"):
        oocml.sql(f"TRAIN sgd_regressor ON '{tmp_path}' PREDICT label")


@pytest.mark.parametrize("method", ["mean", "median", "zero"])
def test_a_model_with_an_imputer_is_saved_and_loaded(binary, tmp_path, method):
    """scikit-learn 1.9's SimpleImputer keeps numpy dtypes, which skops does not trust by
    default: a model with IMPUTE was written but refused when loaded."""
    import oocml

    model = binary.ml.impute(method).scale().fit_incremental("sgd", target="y")
    model.save(tmp_path / "imputed.oocml")
    loaded = oocml.load_model(tmp_path / "imputed.oocml")
    np.testing.assert_array_equal(loaded.predict(binary).compute(), model.predict(binary).compute())
