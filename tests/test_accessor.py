"""The .ml accessor and fit_incremental, through the public API on parquet files."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler
from sklearn.preprocessing import StandardScaler as SkStandardScaler

import oocml
from oocml.plan import Step


def test_chain_is_immutable_and_accessor_keeps_no_state(binary):
    first = binary.ml.scale()
    second = first.scale("minmax")
    assert first.steps == (Step("scale", "standard"),)
    assert second.steps == (Step("scale", "standard"), Step("scale", "minmax"))
    assert binary.ml.select(["x0"]).features == ("x0",)
    assert binary.ml.scale().features is None  # the previous select did not stick to the accessor


def test_fit_predict_score_on_parquet(binary, binary_dir):
    model = binary.ml.scale().fit_incremental(SGDClassifier, target="y")
    assert isinstance(model, oocml.Model)
    assert model.feature_names == [f"x{i}" for i in range(6)]
    assert model.classes == [0, 1]
    assert model.score(binary) > 0.85

    pred = model.predict(binary)
    assert isinstance(pred, dd.Series)
    assert pred.npartitions == binary.npartitions
    computed = pred.compute()
    frame = pd.read_parquet(binary_dir)
    assert computed.index.equals(binary.index.compute())
    # The plain sklearn pipeline gives the same predictions on pandas.
    assert isinstance(model.pipeline, Pipeline)
    assert isinstance(model.pipeline.named_steps["scale"], SkStandardScaler)
    np.testing.assert_array_equal(model.pipeline.predict(frame), computed.to_numpy())
    np.testing.assert_array_equal(model.predict(frame).to_numpy(), computed.to_numpy())


def test_pandas_accessor_gives_the_dask_model(binary_dir):
    frame = pd.read_parquet(binary_dir)
    model = frame.ml.scale().fit_incremental(SGDClassifier, target="y", block_rows=5_000)
    assert model.report.blocks_seen == 6
    assert model.score(frame) > 0.85


def test_estimator_as_class_instance_or_name(binary):
    by_class = binary.ml.scale().fit_incremental(SGDClassifier, target="y", alpha=1e-3)
    by_instance = binary.ml.scale().fit_incremental(SGDClassifier(alpha=1e-3), target="y")
    by_name = binary.ml.scale().fit_incremental("sgd", target="y", alpha=1e-3)
    for other in (by_instance, by_name):
        np.testing.assert_array_equal(other.estimator.coef_, by_class.estimator.coef_)
    assert by_class.estimator.alpha == 1e-3


def test_features_and_exclude(binary):
    model = binary.ml.fit_incremental(GaussianNB, target="y", features=["x0", "x3"])
    assert model.feature_names == ["x0", "x3"]
    model = binary.ml.select(exclude=["x1"]).fit_incremental(GaussianNB, target="y")
    assert "x1" not in model.feature_names and len(model.feature_names) == 5


def test_classes_discovered_for_multiclass(multiclass):
    model = multiclass.ml.scale().fit_incremental(SGDClassifier, target="y", loss="log_loss")
    assert model.classes == [0, 1, 2]
    proba = model.predict_proba(multiclass)
    assert list(proba.columns) == ["proba_0", "proba_1", "proba_2"]
    np.testing.assert_allclose(proba.compute().sum(axis=1), 1.0)
    assert model.decision_function(multiclass).compute().shape[1] == 3


def test_explicit_classes_are_used(binary):
    model = binary.ml.scale().fit_incremental(SGDClassifier, target="y", classes=[0, 1, 2])
    assert model.classes == [0, 1, 2]
    assert list(model.estimator.classes_) == [0, 1, 2]


def test_epochs_read_each_block_once_per_epoch(binary):
    model = binary.ml.scale().fit_incremental(SGDClassifier, target="y", epochs=3, cache=False)
    assert model.report.epochs == 3
    assert model.report.rows_seen == 3 * 30_000
    assert model.report.passes == 4
    one = binary.ml.scale().fit_incremental(SGDClassifier, target="y")
    assert not np.array_equal(one.estimator.coef_, model.estimator.coef_)


def test_shuffle_is_seeded(binary):
    fit = lambda seed: binary.ml.scale().fit_incremental(  # noqa: E731
        SGDClassifier, target="y", shuffle=True, random_state=seed)
    a, b, c = fit(7), fit(7), fit(8)
    np.testing.assert_array_equal(a.estimator.coef_, b.estimator.coef_)
    assert not np.array_equal(a.estimator.coef_, c.estimator.coef_)
    plain = binary.ml.scale().fit_incremental(SGDClassifier, target="y", random_state=7)
    assert not np.array_equal(a.estimator.coef_, plain.estimator.coef_)


def test_block_rows_splits_partitions(binary):
    model = binary.ml.scale().fit_incremental(SGDClassifier, target="y", block_rows=2_000)
    assert model.report.blocks_seen == 6 * 3  # 5,000-row partitions in 2,000-row blocks


def test_regression_evaluate(regression, regression_dir):
    model = regression.ml.scale().fit_incremental(SGDRegressor, target="y", epochs=3)
    table = model.evaluate(regression)
    metrics = dict(zip(table.metric, table.value))
    assert set(metrics) == {"r2", "rmse", "mae", "rows"}
    assert metrics["r2"] > 0.9 and metrics["rows"] == 20_000
    assert model.score(regression) == pytest.approx(metrics["r2"])
    assert model.predict(regression).dtype == np.float64


@pytest.mark.parametrize("kind, scaler", [("standard", SkStandardScaler),
                                          ("minmax", MinMaxScaler), ("maxabs", MaxAbsScaler)])
def test_chain_equals_sklearn_in_memory(binary, binary_dir, kind, scaler):
    """Out-of-core result == scikit-learn fitted in memory, then partial_fit file by file."""
    model = binary.ml.scale(kind).fit_incremental(SGDClassifier, target="y", epochs=2)
    files = sorted(binary_dir.glob("*.parquet"))
    features = [f"x{i}" for i in range(6)]
    reference = scaler().fit(pd.read_parquet(binary_dir)[features])
    estimator = SGDClassifier(random_state=0)
    for _ in range(2):
        for path in files:
            part = pd.read_parquet(path)
            estimator.partial_fit(reference.transform(part[features]), part["y"],
                                  classes=[0, 1])
    np.testing.assert_allclose(model.estimator.coef_, estimator.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(model.estimator.intercept_, estimator.intercept_, rtol=1e-7)


def test_two_scalers_chain_statistics_through(binary, binary_dir):
    model = binary.ml.scale("minmax").scale("standard").fit_incremental(SGDClassifier, target="y")
    second = model.pipeline.named_steps["scale_1"]
    inner = model.pipeline[:2].transform(pd.read_parquet(binary_dir))
    np.testing.assert_allclose(second.mean_, inner.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(second.var_, inner.var(axis=0), rtol=1e-9)


def test_float32_stays_float32(tmp_path):
    from oocml.datasets import make_parquet_dataset

    make_parquet_dataset(tmp_path, rows=4_000, features=3, files=2, dtype="float32")
    model = dd.read_parquet(tmp_path).ml.scale().fit_incremental(SGDClassifier, target="y")
    assert model.estimator.coef_.dtype == np.float32


def test_column_named_ml_still_reachable(binary):
    frame = binary.assign(ml=binary.x0)
    assert frame["ml"].sum().compute() == pytest.approx(binary.x0.sum().compute())
    assert hasattr(frame.ml, "fit_incremental")


def test_progress_bar_goes_to_stderr(binary, capsys):
    binary.ml.scale().fit_incremental(SGDClassifier, target="y", progress=True)
    err = capsys.readouterr().err
    assert "partitions" in err and "6/6" in err
    binary.ml.scale().fit_incremental(SGDClassifier, target="y")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_same_coefficients_on_every_scheduler(binary_dir, scheduler):
    reference = dd.read_parquet(binary_dir).ml.scale().fit_incremental(
        SGDClassifier, target="y", shuffle=True, epochs=2)
    with dask.config.set(scheduler=scheduler):
        model = dd.read_parquet(binary_dir).ml.scale().fit_incremental(
            SGDClassifier, target="y", shuffle=True, epochs=2)
    np.testing.assert_array_equal(model.estimator.coef_, reference.estimator.coef_)
    np.testing.assert_array_equal(model.estimator.intercept_, reference.estimator.intercept_)
    for ours, theirs in zip(model.pipeline.steps[1][1].__dict__.values(),
                            reference.pipeline.steps[1][1].__dict__.values()):
        np.testing.assert_array_equal(ours, theirs)


def test_the_accessor_starts_a_chain_with_every_method_of_one():
    """``df.ml`` offers each public Chain method, with its signature and docstring, on a new chain."""
    import inspect

    from oocml.accessor import Chain, MLAccessor

    public = {name for name, _ in inspect.getmembers(Chain, inspect.isfunction) if not name.startswith("_")}
    assert set(MLAccessor.STARTERS) == public
    for name in public:
        assert inspect.signature(getattr(MLAccessor, name)) == inspect.signature(getattr(Chain, name))
        assert getattr(MLAccessor, name).__doc__ == getattr(Chain, name).__doc__
