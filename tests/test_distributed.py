"""On a real dask.distributed cluster (2 worker processes): the same model, bit for bit."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

import oocml
from oocml.engine.checkpoint import Checkpoint
from oocml.errors import TrainingInterrupted

pytestmark = pytest.mark.slow  # real LocalClusters

distributed = pytest.importorskip("distributed")


@pytest.fixture(autouse=True)
def _synchronous_default():
    """Overrides the suite's default scheduler, which would take precedence over the client."""
    yield


def test_fit_on_a_cluster_equals_local(binary_dir, client):
    with dask.config.set(scheduler="threads"):  # the local reference, while the client exists
        local = dd.read_parquet(binary_dir).ml.scale().fit_incremental(
            SGDClassifier, target="y", shuffle=True, epochs=2)
    with distributed.get_task_stream(client) as tasks:
        remote = dd.read_parquet(binary_dir).ml.scale().fit_incremental(
            SGDClassifier, target="y", shuffle=True, epochs=2)
    assert len(tasks.data) >= 6 * 3  # every partition read on the workers: statistics + 2 epochs
    np.testing.assert_array_equal(remote.estimator.coef_, local.estimator.coef_)
    np.testing.assert_array_equal(remote.estimator.intercept_, local.estimator.intercept_)
    assert remote.score(dd.read_parquet(binary_dir)) == local.score(dd.read_parquet(binary_dir))


def test_sql_on_a_cluster(binary_dir, client, tmp_path):
    session = oocml.Session()
    with distributed.get_task_stream(client) as tasks:
        session.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard AS m")
        out = session.sql(f"PREDICT USING m ON '{binary_dir}' INTO '{tmp_path}/out'")
    assert len(tasks.data) >= 6 * 3
    assert len(dd.read_parquet(out)) == 30_000
    assert session.sql(f"EVALUATE m ON '{binary_dir}'").iloc[0, 1] > 0.85


def test_checkpoint_and_resume_on_a_cluster(binary_dir, client, tmp_path, monkeypatch):
    """Interrupted after its 2nd checkpoint, then resumed, on the cluster: the local model."""
    options = dict(target="y", shuffle=True, epochs=2, checkpoint=tmp_path / "c.ckpt",
                   checkpoint_every=2)
    original, calls = Checkpoint.__call__, []

    def interrupted_after_two(self, *args):
        original(self, *args)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoint, "__call__", interrupted_after_two)
    with pytest.raises(TrainingInterrupted, match="RESUME"):
        dd.read_parquet(binary_dir).ml.scale().fit_incremental(SGDClassifier, **options)
    monkeypatch.setattr(Checkpoint, "__call__", original)
    with distributed.get_task_stream(client) as tasks:
        resumed = dd.read_parquet(binary_dir).ml.scale().fit_incremental(
            SGDClassifier, **options, resume=True)
    assert len(tasks.data) >= 6 + 8  # statistics, then the 8 partitions left, on the workers
    with dask.config.set(scheduler="threads"):
        local = dd.read_parquet(binary_dir).ml.scale().fit_incremental(
            SGDClassifier, target="y", shuffle=True, epochs=2)
    np.testing.assert_array_equal(resumed.estimator.coef_, local.estimator.coef_)
    np.testing.assert_array_equal(resumed.estimator.intercept_, local.estimator.intercept_)
