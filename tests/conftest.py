"""Shared fixtures: small parquet data sets generated on disk by oocml's own generator."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import pytest

import oocml  # noqa: F401  (registers the .ml accessor)
from oocml.datasets import make_parquet_dataset


def pytest_collection_modifyitems(config, items):
    """``slow`` is set one way, where the test is: ``pytestmark = pytest.mark.slow`` for a module
    (clusters, killed workers, benchmark smoke runs), ``@pytest.mark.slow`` for a test (memory
    peaks in child processes, real corpora). ``pytest -m "not slow"`` is the quick loop; CI runs
    everything. A test on a real cluster (the ``client`` fixture) is marked ``cluster`` here,
    and must be marked slow: collection fails, naming it, if it is not."""
    unmarked = []
    for item in items:
        if "client" in item.fixturenames:
            item.add_marker(pytest.mark.cluster)
            if item.get_closest_marker("slow") is None:
                unmarked.append(item.nodeid)
    if unmarked:
        raise pytest.UsageError(f"tests on a real cluster must be marked slow: {unmarked}")


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


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto's server mode) on 127.0.0.1, with the environment that
    points s3fs, dask and pandas at it: no traffic leaves this machine. Yields its URL."""
    from oocml.testing import local_s3_server

    with local_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_server):
    """A new, empty bucket on the test server: ``s3://<name>``."""
    import uuid

    import s3fs

    name = f"oocml-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"


@pytest.fixture
def s3(s3_server):
    """An s3fs client of the test server (for arranging and inspecting objects)."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.invalidate_cache()
    return fs
