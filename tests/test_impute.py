"""IMPUTE / .impute(): missing values filled from statistics of the one fused pass."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler
from test_engine import READS, counted_frame  # tests/ is on sys.path (rootdir conftest)

import oocml
from oocml.errors import DataError


@pytest.fixture(scope="module")
def holes_dir(tmp_path_factory, binary_dir):
    """The binary data set with about 1 value in 7 missing in x1 and x4, written as parquet."""
    folder = tmp_path_factory.mktemp("holes")
    for i, path in enumerate(sorted(binary_dir.glob("*.parquet"))):
        frame = pd.read_parquet(path)
        frame.loc[frame.index % 7 == i % 7, ["x1", "x4"]] = np.nan
        frame.to_parquet(folder / path.name)
    return folder


@pytest.mark.parametrize("kind", ["mean", "zero"])
def test_impute_then_scale_equals_sklearn_in_memory(holes_dir, kind):
    model = dd.read_parquet(holes_dir).ml.impute(kind).scale().fit_incremental(SGDClassifier, target="y")
    frame = pd.read_parquet(holes_dir)
    features = model.feature_names
    imputer = (SimpleImputer(strategy="mean") if kind == "mean"
               else SimpleImputer(strategy="constant", fill_value=0.0)).fit(frame[features])
    scaler = StandardScaler().fit(imputer.transform(frame[features]))
    steps = model.pipeline.named_steps
    np.testing.assert_allclose(steps["impute"].statistics_, imputer.statistics_.astype(float), rtol=1e-12)
    np.testing.assert_allclose(steps["scale"].mean_, scaler.mean_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(steps["scale"].var_, scaler.var_, rtol=1e-10)
    # The plain pipeline handles NaN on pandas exactly as the model does on dask.
    np.testing.assert_array_equal(model.pipeline.predict(frame),
                                  model.predict(dd.read_parquet(holes_dir)).compute())
    assert model.score(dd.read_parquet(holes_dir)) > 0.8


def test_median_from_the_streaming_sketch(holes_dir):
    model = dd.read_parquet(holes_dir).ml.impute("median").fit_incremental(SGDClassifier, target="y")
    frame = pd.read_parquet(holes_dir)
    medians = model.pipeline.named_steps["impute"].statistics_
    for column, median in zip(model.feature_names, medians):
        values = frame[column].dropna()
        assert abs((values <= median).mean() - 0.5) < 0.005  # documented rank accuracy


def test_impute_keeps_one_statistics_pass(holes_dir):
    frame = counted_frame(holes_dir)
    frame.ml.impute("median").scale().fit_incremental(SGDClassifier, target="y", epochs=2,
                                                      cache=False)
    assert len(READS) == 6 * 3


def test_language_and_accessor_agree(holes_dir):
    via_sql = oocml.Session().sql(f"TRAIN sgd ON '{holes_dir}' PREDICT y IMPUTE median SCALE standard")
    via_accessor = dd.read_parquet(holes_dir).ml.impute("median").scale().fit_incremental(
        SGDClassifier, target="y")
    np.testing.assert_array_equal(via_sql.estimator.coef_, via_accessor.estimator.coef_)


def test_impute_errors(holes_dir, binary):
    with pytest.raises(DataError, match=r"NaN.*'x1'.*IMPUTE"):
        dd.read_parquet(holes_dir).ml.scale().fit_incremental(SGDClassifier, target="y")
    with pytest.raises(DataError, match=r"\['x0'\] hold no values"):
        binary.assign(x0=np.nan).ml.impute().fit_incremental(SGDClassifier, target="y")
    with pytest.raises(oocml.OocmlError, match="did you mean 'median'|choose one of"):
        binary.ml.impute("medain")
