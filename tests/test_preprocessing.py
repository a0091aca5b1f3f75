"""oocml.preprocessing: the same fitted state as scikit-learn, computed out-of-core."""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn import preprocessing as skp

from oocml import preprocessing as oop

PAIRS = [(oop.StandardScaler, skp.StandardScaler), (oop.MinMaxScaler, skp.MinMaxScaler),
         (oop.MaxAbsScaler, skp.MaxAbsScaler)]


@pytest.mark.parametrize("ours, theirs", PAIRS)
def test_fitted_state_matches_sklearn(binary, binary_dir, ours, theirs):
    frame = pd.read_parquet(binary_dir)
    scaler = ours().fit(binary)
    reference = theirs().fit(frame)
    for name, value in vars(reference).items():
        if name == "feature_names_in_":
            np.testing.assert_array_equal(scaler.feature_names_in_, value)
        elif name.endswith("_") and not name.startswith("_"):
            np.testing.assert_allclose(getattr(scaler, name), value, rtol=1e-12, atol=1e-12,
                                       err_msg=name)
    out = scaler.transform(binary)
    assert isinstance(out, dd.DataFrame) and out.npartitions == binary.npartitions
    np.testing.assert_allclose(out.compute().to_numpy(), reference.transform(frame), atol=1e-12)
    assert type(scaler.to_sklearn()) is theirs
    assert list(scaler.get_feature_names_out()) == list(frame.columns)
    np.testing.assert_allclose(scaler.inverse_transform(out).compute().to_numpy(),
                               frame.to_numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("ours, theirs", PAIRS)
def test_nan_is_ignored_like_sklearn(ours, theirs):
    rng = np.random.default_rng(0)
    data = rng.normal(3, 2, size=(1000, 3))
    data[rng.random((1000, 3)) < 0.1] = np.nan
    scaler = ours().fit(da.from_array(data, chunks=(128, 3)))
    reference = theirs().fit(data)
    np.testing.assert_allclose(scaler.to_sklearn().transform(data), reference.transform(data),
                               atol=1e-12)
    np.testing.assert_array_equal(scaler.n_samples_seen_, reference.n_samples_seen_)


def test_constant_column_is_not_divided_by_zero(binary):
    scaler = oop.StandardScaler().fit(binary.assign(c=3.0))
    assert scaler.scale_[-1] == 1.0


def test_in_memory_and_array_input():
    data = np.arange(12.0).reshape(6, 2)
    scaler = oop.StandardScaler().fit(data)
    np.testing.assert_allclose(scaler.transform(data), skp.StandardScaler().fit_transform(data))
    lazy = scaler.transform(da.from_array(data, chunks=(2, 2)))
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), scaler.transform(data))
