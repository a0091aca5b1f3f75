"""A worker process killed in the middle of training: the fit completes, with the same model."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import cloudpickle
import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier

import oocml  # noqa: F401  (the accessor)
from oocml.datasets import make_parquet_dataset

pytestmark = pytest.mark.slow  # a real LocalCluster whose workers are killed

distributed = pytest.importorskip("distributed")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/


@pytest.fixture(autouse=True)
def _synchronous_default():
    """Overrides the suite's default scheduler, which would take precedence over the client."""
    yield


def slow_read(path: str) -> pd.DataFrame:
    time.sleep(0.2)  # long enough to kill a worker while blocks are still being read
    return pd.read_parquet(path)


def test_training_survives_a_killed_worker(tmp_path):
    make_parquet_dataset(tmp_path, rows=24_000, features=4, files=24, seed=9)
    files = sorted(str(p) for p in tmp_path.glob("*.parquet"))
    meta = pd.read_parquet(files[0]).iloc[:0]

    def fit():
        frame = dd.from_map(slow_read, files, meta=meta)
        return frame.ml.scale().fit_incremental(SGDClassifier, target="y", epochs=2)

    with dask.config.set(scheduler="threads"):
        reference = fit()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        result: dict = {}
        worker = threading.Thread(target=lambda: result.update(model=fit()), daemon=True)
        worker.start()
        # 72 slow reads (statistics + 2 epochs) on 2 workers take over 7 s: at 3 s the fit is
        # past its statistics pass and inside the first epoch.
        time.sleep(3.0)
        assert worker.is_alive()
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        worker.join(timeout=300)  # "nothing hangs": generous, not a speed limit
        assert not worker.is_alive(), "training hung after a worker was killed"
        assert victim not in client.run(os.getpid).values()  # the nanny replaced the worker
    np.testing.assert_array_equal(result["model"].estimator.coef_, reference.estimator.coef_)
