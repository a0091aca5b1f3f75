"""Parallel training by iterative parameter mixing (strategy="average"): same model on every
scheduler, the sequential model with one worker, close to it with more."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass

import cloudpickle
import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.cluster import MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Perceptron, SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import oocml.engine.average as average
from oocml.engine.average import check_averageable, default_workers, mix, train_average
from oocml.engine.stream import BlockRecipe, TrainOptions, train
from oocml.errors import OocmlError, ParameterError, TrainingInterrupted
from oocml.io.partitions import partitions, whole_partition

distributed = pytest.importorskip("distributed")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/


@pytest.fixture(autouse=True)
def _synchronous_default():
    """Overrides the suite's default scheduler (it would hide the client); every local run
    below names its scheduler."""
    yield


@dataclass
class Data:
    parts: list
    prep: ColumnTransformer
    target: str
    labels: np.ndarray | None
    X: np.ndarray
    y: np.ndarray

    def recipe(self, block_rows: int | None = None) -> BlockRecipe:
        return BlockRecipe(prep=self.prep, target=self.target, labels=self.labels,
                           block_rows=block_rows)

    def fit_params(self) -> dict:
        return {} if self.labels is None else {"classes": self.labels}


def _data(folder, classification: bool = True) -> Data:
    frame = dd.read_parquet(folder)
    features = [c for c in frame.columns if c != "y"]
    with dask.config.set(scheduler="sync"):
        full = frame.compute()
    prep = ColumnTransformer([("scale", StandardScaler(), features)], remainder="drop").fit(full)
    y = full["y"].to_numpy()
    return Data(partitions(frame[features + ["y"]]), prep, "y",
                np.unique(y) if classification else None, prep.transform(full), y)


@pytest.fixture(scope="module")
def binary_data(binary_dir):
    return _data(binary_dir)


@pytest.fixture(scope="module")
def multiclass_data(multiclass_dir):
    return _data(multiclass_dir)


@pytest.fixture(scope="module")
def regression_data(regression_dir):
    return _data(regression_dir, classification=False)


def _fit(data: Data, estimator, workers: int | None, *, scheduler: str | None = "threads",
         block_rows: int | None = None, **options):
    """(estimator, log): sequential ``train`` when workers == 0, else ``train_average``."""
    with dask.config.set(scheduler=scheduler) if scheduler else contextlib.nullcontext():
        if workers == 0:
            log = train(estimator, data.parts, data.recipe(block_rows),
                        TrainOptions(fit_params=data.fit_params(), **options))
        else:
            log = train_average(estimator, data.parts, data.recipe(block_rows),
                                TrainOptions(fit_params=data.fit_params(), workers=workers,
                                             **options))
    return estimator, log


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)
    assert a.t_ == b.t_


@pytest.mark.parametrize("estimator", [SGDClassifier(random_state=0),
                                       SGDClassifier(loss="log_loss", average=True, random_state=0),
                                       Perceptron(random_state=0)], ids=repr)
def test_one_worker_is_the_sequential_model_bit_for_bit(binary_data, estimator):
    options = dict(epochs=2, shuffle=True, seed=3, block_rows=1_700)  # several blocks a partition
    sequential, seq_log = _fit(binary_data, clone(estimator), 0, **options)
    averaged, avg_log = _fit(binary_data, clone(estimator), 1, **options)
    _same(averaged, sequential)
    assert vars(averaged).keys() == vars(sequential).keys()
    assert (avg_log.rows_seen, avg_log.blocks_seen, avg_log.epochs) == \
           (seq_log.rows_seen, seq_log.blocks_seen, seq_log.epochs)
    assert (seq_log.rows_seen, seq_log.epochs) == (60_000, 2)


@pytest.mark.parametrize("name,estimator", [
    ("binary", SGDClassifier(random_state=0)),
    ("binary", SGDClassifier(loss="log_loss", average=True, random_state=0)),
    ("multiclass", SGDClassifier(random_state=0)),
    ("binary", Perceptron(random_state=0)),
])
def test_two_workers_are_as_accurate_as_sequential(request, name, estimator):
    data = request.getfixturevalue(f"{name}_data")
    sequential, _ = _fit(data, clone(estimator), 0, epochs=2)
    averaged, log = _fit(data, clone(estimator), 2, epochs=2)
    assert abs(averaged.score(data.X, data.y) - sequential.score(data.X, data.y)) < 0.01
    assert averaged.score(data.X, data.y) > 0.8
    assert not np.array_equal(averaged.coef_, sequential.coef_)  # really mixed
    assert log.rows_seen == 2 * len(data.y)
    assert [e["rounds"] for e in log.history] == [(len(data.parts) + 1) // 2] * 2


def test_a_regressor(regression_data):
    data = regression_data
    sequential, _ = _fit(data, SGDRegressor(random_state=0), 0, epochs=2, shuffle=True)
    one, _ = _fit(data, SGDRegressor(random_state=0), 1, epochs=2, shuffle=True)
    two, _ = _fit(data, SGDRegressor(random_state=0), 2, epochs=2, shuffle=True)
    _same(one, sequential)
    assert abs(two.score(data.X, data.y) - sequential.score(data.X, data.y)) < 0.01
    assert two.score(data.X, data.y) > 0.9


def test_t_advances_by_one_workers_share_per_round(binary_data):
    # 6 partitions of 5,000 rows, 2 workers: 3 rounds an epoch, each adds one share to t_.
    model, _ = _fit(binary_data, SGDClassifier(random_state=0), 2, epochs=2)
    assert model.t_ == 1 + 2 * 3 * 5_000
    assert model.n_iter_ == 1
    wide, log = _fit(binary_data, SGDClassifier(random_state=0), 10)  # more workers than parts
    assert wide.t_ == 1 + 5_000 and log.history[0]["rounds"] == 1 and log.rows_seen == 30_000


def test_mix_weights_by_rows_and_keeps_the_rest_from_the_first():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, 3)), rng.integers(0, 2, 400)
    a = SGDClassifier(random_state=0).partial_fit(X[:100], y[:100], classes=[0, 1])
    b = SGDClassifier(random_state=0).partial_fit(X[100:], y[100:], classes=[0, 1])
    expected = 0.25 * a.coef_ + 0.75 * b.coef_
    intercept = 0.25 * a.intercept_ + 0.75 * b.intercept_
    mixed = mix([a, b], [100, 300])
    np.testing.assert_allclose(mixed.coef_, expected, rtol=1e-15)
    np.testing.assert_allclose(mixed.intercept_, intercept, rtol=1e-15)
    assert mixed.t_ == (100 * 101 + 300 * 301) / 400  # rows-weighted mean of the counters
    assert mixed.classes_.tolist() == [0, 1] and mixed.coef_.shape == (1, 3)
    assert mix([a, b], [0, 0]) is None
    assert mix([b, a], [0, 100]) is a  # a model that saw no rows has no say


def test_mix_of_averaged_sgd_keeps_scikit_learns_invariants():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(300, 4)), rng.normal(size=300)
    a = SGDRegressor(average=True, random_state=0).partial_fit(X[:150], y[:150])
    b = SGDRegressor(average=True, random_state=0).partial_fit(X[150:], y[150:])
    mixed = mix([a, b], [150, 150])
    assert mixed is not a and mixed is not b
    np.testing.assert_array_equal(mixed.coef_, mixed._average_coef)  # t_ - 1 >= average
    np.testing.assert_array_equal(mixed.intercept_, mixed._average_intercept)
    for name in ("_standard_coef", "_standard_intercept", "_average_coef", "_average_intercept"):
        np.testing.assert_allclose(getattr(mixed, name),
                                   (getattr(a, name) + getattr(b, name)) / 2, rtol=1e-15)
    mixed.partial_fit(X, y)  # and it trains on


@pytest.mark.parametrize("estimator", [MLPClassifier(), GaussianNB(), MiniBatchKMeans()], ids=repr)
def test_estimators_that_cannot_be_averaged_are_refused(binary_data, estimator):
    with pytest.raises(ParameterError) as info:
        train_average(estimator, binary_data.parts, binary_data.recipe(), TrainOptions(workers=2))
    message = str(info.value)
    assert type(estimator).__name__ in message
    assert "SGDClassifier" in message and "SGDRegressor" in message and "sequential" in message
    assert isinstance(info.value, OocmlError)
    check_averageable(SGDClassifier())  # supported: no error


def test_workers(binary_data):
    with pytest.raises(ParameterError, match="workers"):
        train_average(SGDClassifier(), binary_data.parts, binary_data.recipe(),
                      TrainOptions(workers=0))
    with dask.config.set(scheduler="threads", num_workers=3):
        assert default_workers() == 3
        _, log = _fit(binary_data, SGDClassifier(random_state=0), None, scheduler=None)
    assert log.history[0]["rounds"] == 2  # 6 partitions, 3 at a time


def test_the_same_model_on_sync_and_threads(binary_data):
    options = dict(epochs=2, shuffle=True, seed=5)
    sync, _ = _fit(binary_data, SGDClassifier(random_state=0), 3, scheduler="sync", **options)
    threads, _ = _fit(binary_data, SGDClassifier(random_state=0), 3, scheduler="threads",
                      **options)
    _same(sync, threads)
    in_memory = [(whole_partition(p).drop(columns="y"),
                  whole_partition(p)["y"].to_numpy()) for p in binary_data.parts]
    from_memory = SGDClassifier(random_state=0)
    train_average(from_memory, in_memory, binary_data.recipe(),
                  TrainOptions(workers=3, epochs=2, shuffle=True, seed=5,
                               fit_params=binary_data.fit_params()))
    _same(from_memory, sync)


def test_at_most_workers_partitions_are_loaded_at_once(binary_data):
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def slow(part):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return part

    parts = [dask.delayed(slow)(p) for p in binary_data.parts]
    with dask.config.set(scheduler="threads"):
        train_average(SGDClassifier(random_state=0), parts, binary_data.recipe(),
                      TrainOptions(workers=2, fit_params=binary_data.fit_params()))
    assert state["peak"] == 2


def test_empty_partitions_have_no_say(binary_data):
    # Ready (already scaled) in-memory parts: scikit-learn's scalers refuse 0 rows.
    data = binary_data
    bounds = np.linspace(0, len(data.y), 7).astype(int)
    parts = [(data.X[a:b], data.y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    empty = (data.X[:0], data.y[:0])
    recipe = BlockRecipe(prep=None, target=None, labels=data.labels, block_rows=None)
    a, b = SGDClassifier(random_state=0), SGDClassifier(random_state=0)
    options = TrainOptions(workers=2, fit_params=data.fit_params())
    log = train_average(a, [empty, empty] + parts, recipe, options)  # round 1 trains nothing
    train_average(b, parts, recipe, options)
    _same(a, b)
    assert log.rows_seen == 30_000


def test_progressive_score_and_early_stop(binary_data):
    seen = []

    def after_epoch(epoch, estimator, entry):
        seen.append((epoch, estimator.t_))
        return epoch == 2

    one, one_log = _fit(binary_data, SGDClassifier(random_state=0), 1, epochs=5,
                        progressive="classification", after_epoch=after_epoch)
    sequential, seq_log = _fit(binary_data, SGDClassifier(random_state=0), 0, epochs=5,
                               progressive="classification")
    assert one_log.epochs == 2 and [e for e, _ in seen] == [1, 2]
    assert one_log.history[0]["progressive_score"] == seq_log.history[0]["progressive_score"]
    two, two_log = _fit(binary_data, SGDClassifier(random_state=0), 2, epochs=1,
                        progressive="classification")
    assert 0.8 < two_log.history[0]["progressive_score"] < 1


def test_ctrl_c_raises_training_interrupted(binary_data, monkeypatch):
    calls = {"n": 0}
    original = average.mix

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(average, "mix", interrupted)
    with pytest.raises(TrainingInterrupted, match=r"interrupted after 2 of \d+ partitions"):
        _fit(binary_data, SGDClassifier(random_state=0), 2)


@pytest.mark.slow
def test_on_a_cluster_the_same_model_runs_on_the_workers(binary_data, client):
    options = dict(epochs=2, shuffle=True, seed=5, window=1)  # a task per partition
    local, _ = _fit(binary_data, SGDClassifier(random_state=0), 2, scheduler="threads", **options)
    one, _ = _fit(binary_data, SGDClassifier(random_state=0), 1, scheduler=None, **options)
    sequential, _ = _fit(binary_data, SGDClassifier(random_state=0), 0, scheduler="sync", **options)
    _same(one, sequential)
    assert default_workers() == 2  # the cluster's threads
    with distributed.get_task_stream(client) as tasks:
        remote, log = _fit(binary_data, SGDClassifier(random_state=0), None, scheduler=None,
                           **options)
    _same(remote, local)
    fits = [t for t in tasks.data if "_fit_part" in str(t["key"])]
    assert len(fits) == 2 * 6  # every partition, each epoch, read and trained on a worker
    assert sorted(Counter(t["worker"] for t in fits).values()) == [6, 6]  # one slot per worker
    assert not any(s["action"] == "transfer" for t in fits for s in t["startstops"])  # data stays
    assert [e["rounds"] for e in log.history] == [3, 3]


def _slow_read(path: str) -> pd.DataFrame:
    time.sleep(0.1)  # long enough to kill a worker while partitions are being trained on
    return pd.read_parquet(path)


@pytest.mark.slow
def test_a_killed_worker_changes_nothing(binary_data, tmp_path, client):
    files = []
    for i, part in enumerate(binary_data.parts):  # 12 files: 24 reads over 2 epochs
        frame = whole_partition(part)
        for j, half in enumerate((frame.iloc[:2_500], frame.iloc[2_500:])):
            files.append(str(tmp_path / f"part-{i:02d}-{j}.parquet"))
            half.to_parquet(files[-1])
    parts = partitions(dd.from_map(_slow_read, files, meta=whole_partition(binary_data.parts[0]).iloc[:0]))
    data = Data(parts, binary_data.prep, "y", binary_data.labels, binary_data.X, binary_data.y)
    options = dict(epochs=2, shuffle=True, seed=5)
    reference, _ = _fit(data, SGDClassifier(random_state=0), 2, scheduler="sync", **options)
    result: dict = {}
    thread = threading.Thread(daemon=True, target=lambda: result.update(
        fit=_fit(data, SGDClassifier(random_state=0), 2, scheduler=None, **options)))
    thread.start()
    time.sleep(0.6)  # 12 rounds of >= 0.1 s: inside the first epoch
    assert thread.is_alive()
    victim = sorted(client.run(os.getpid).values())[0]
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=120)  # "nothing hangs": generous, not a speed limit
    assert not thread.is_alive(), "training hung after a worker was killed"
    model, log = result["fit"]
    _same(model, reference)
    assert log.rows_seen == 60_000
    client.wait_for_workers(2, timeout=60)  # the nanny replaced it
