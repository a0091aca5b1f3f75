"""oocml.Incremental: scikit-learn's own estimator checks, and the scaled-SGD pipeline on dask data."""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import MiniBatchKMeans
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from oocml import Incremental
from oocml.preprocessing import StandardScaler


@parametrize_with_checks([Incremental(SGDClassifier()), Incremental(SGDRegressor()),
                          Incremental(GaussianNB()),
                          Incremental(MiniBatchKMeans(n_clusters=3, n_init=1))])
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


def test_seed_pipeline_on_dask_dataframe(binary, binary_dir):
    X, y = binary.drop(columns="y"), binary["y"]
    pipe = make_pipeline(StandardScaler(), Incremental(SGDClassifier(random_state=2), classes=[0, 1]))
    pipe.fit(X, y)
    pred = pipe.predict(X)
    assert isinstance(pred, dd.Series) and pred.npartitions == X.npartitions
    frame = pd.read_parquet(binary_dir)
    accuracy = float((pred.compute().to_numpy() == frame["y"].to_numpy()).mean())
    assert pipe.score(X, y) == pytest.approx(accuracy)
    assert accuracy > 0.85
    assert list(pipe[-1].feature_names_in_) == [f"x{i}" for i in range(6)]


def test_seed_pipeline_on_dask_arrays_matches_dataframes(binary, binary_dir):
    frame = pd.read_parquet(binary_dir)
    X = da.from_array(frame.drop(columns="y").to_numpy(), chunks=(5_000, 6))
    y = da.from_array(frame["y"].to_numpy(), chunks=5_000)
    pipe = make_pipeline(StandardScaler(), Incremental(SGDClassifier(random_state=2)))
    pipe.fit(X, y)
    assert list(pipe.classes_) == [0, 1]  # discovered
    pred = pipe.predict(X)
    assert isinstance(pred, da.Array)
    frames = make_pipeline(StandardScaler(), Incremental(SGDClassifier(random_state=2), classes=[0, 1]))
    frames.fit(binary.drop(columns="y"), binary["y"])
    np.testing.assert_allclose(pipe[-1].estimator_.coef_, frames[-1].estimator_.coef_, rtol=1e-9)
    assert pipe.score(X, y) == pytest.approx(frames.score(binary.drop(columns="y"), binary["y"]))


def test_epochs_shuffle_and_partial_fit(binary):
    X, y = binary.drop(columns="y"), binary["y"]
    inc = Incremental(GaussianNB(), epochs=2, shuffle=True, random_state=3).fit(X, y)
    assert inc.rows_seen_ == 60_000
    inc.partial_fit(X, y)
    assert inc.rows_seen_ == 90_000
    again = Incremental(GaussianNB(), epochs=2, shuffle=True, random_state=3).fit(X, y)
    np.testing.assert_array_equal(again.estimator_.theta_,
                                  Incremental(GaussianNB(), epochs=2, shuffle=True,
                                              random_state=3).fit(X, y).estimator_.theta_)


def test_regressor_scores_exactly_block_wise(regression, regression_dir):
    X, y = regression.drop(columns="y"), regression["y"]
    inc = Incremental(SGDRegressor(random_state=0), epochs=2).fit(StandardScaler().fit_transform(X), y)
    Xs = StandardScaler().fit_transform(X)
    in_memory = inc.estimator_.score(Xs.compute(), y.compute())
    assert inc.score(Xs, y) == pytest.approx(in_memory, rel=1e-12)
