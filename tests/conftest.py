"""Shared fixtures: small parquet data sets generated on disk by oocml's own generator."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import pytest

import oocml  # noqa: F401  (registers the .ml accessor)
from oocml.datasets import make_parquet_dataset


@pytest.fixture(autouse=True)
def _synchronous_default():
    """Tests run on the threaded scheduler unless they choose another."""
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture(scope="session")
def binary_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("binary")
    make_parquet_dataset(folder, rows=30_000, features=6, files=6, seed=1)
    return folder


@pytest.fixture(scope="session")
def multiclass_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multiclass")
    make_parquet_dataset(folder, rows=24_000, features=5, files=4, n_classes=3, seed=2)
    return folder


@pytest.fixture(scope="session")
def regression_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("regression")
    make_parquet_dataset(folder, rows=20_000, features=4, files=4, task="regression", seed=3,
                         noise=0.1)
    return folder


@pytest.fixture
def binary(binary_dir):
    return dd.read_parquet(binary_dir)


@pytest.fixture
def multiclass(multiclass_dir):
    return dd.read_parquet(multiclass_dir)


@pytest.fixture
def regression(regression_dir):
    return dd.read_parquet(regression_dir)


@pytest.fixture(scope="module")
def client():
    """A real LocalCluster of two single-threaded worker processes, with a client on it."""
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client
