"""CHECKPOINT / RESUME: a killed training resumes and ends with the uninterrupted model."""

from __future__ import annotations

import logging
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier

import oocml
import oocml.engine.checkpoint
from oocml.datasets import make_parquet_dataset
from oocml.errors import ModelFileError, ParameterError

OPTIONS = dict(target="y", epochs=3, shuffle=True, random_state=5)


@pytest.fixture(scope="module")
def many_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    make_parquet_dataset(folder, rows=24_000, features=5, files=24, seed=4)
    return folder


def _uninterrupted(folder, **options):
    return dd.read_parquet(folder).ml.scale().fit_incremental(SGDClassifier, **OPTIONS, **options)


def test_a_killed_run_resumes_to_the_same_model(many_dir, tmp_path, caplog):
    checkpoint = tmp_path / "run.ckpt"
    # The child reads each partition slowly, so it is surely killed in the middle of training.
    script = textwrap.dedent(f"""
        import time
        import dask, dask.dataframe as dd, pandas as pd
        import oocml
        from sklearn.linear_model import SGDClassifier
        files = sorted(str(p) for p in __import__("pathlib").Path({str(many_dir)!r}).glob("*.parquet"))
        def slow(path):
            time.sleep(0.4)  # SHUFFLE reads a window of 4 at once
            return pd.read_parquet(path)
        frame = dd.from_map(slow, files, meta=pd.read_parquet(files[0]).iloc[:0])
        with dask.config.set(scheduler="threads"):
            frame.ml.scale().fit_incremental(SGDClassifier, target="y", epochs=3, shuffle=True,
                                             random_state=5, checkpoint={str(checkpoint)!r},
                                             checkpoint_every=1)
        print("finished")
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a few more blocks
    child.send_signal(signal.SIGKILL)
    out, err = child.communicate()
    assert b"finished" not in out, err.decode()
    assert checkpoint.exists()

    with caplog.at_level(logging.INFO, logger="oocml"):
        resumed = _uninterrupted(many_dir, checkpoint=checkpoint, checkpoint_every=1, resume=True)
    assert "resuming from" in caplog.text
    where = caplog.text.split("resuming from", 1)[1].splitlines()[0]
    assert "epoch 1, 0 partitions done" not in where  # it really skipped work
    reference = _uninterrupted(many_dir)
    np.testing.assert_array_equal(resumed.estimator.coef_, reference.estimator.coef_)
    np.testing.assert_array_equal(resumed.estimator.intercept_, reference.estimator.intercept_)
    assert resumed.report.rows_seen == reference.report.rows_seen == 3 * 24_000
    assert not checkpoint.exists()  # a completed training leaves no checkpoint behind


def test_resume_with_validation_keeps_the_history(many_dir, tmp_path, monkeypatch):
    checkpoint = tmp_path / "v.ckpt"
    options = dict(holdout=0.2, patience=5, checkpoint=checkpoint, checkpoint_every=7)
    calls = {"n": 0}
    original = oocml.engine.checkpoint.Checkpoint.__call__

    def crash_after_four(self, *args):  # the process "dies" right after its 4th checkpoint
        original(self, *args)
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(oocml.engine.checkpoint.Checkpoint, "__call__", crash_after_four)
    with pytest.raises(oocml.errors.TrainingInterrupted, match="RESUME"):
        _uninterrupted(many_dir, **options)
    monkeypatch.setattr(oocml.engine.checkpoint.Checkpoint, "__call__", original)
    resumed = _uninterrupted(many_dir, **options, resume=True)
    reference = _uninterrupted(many_dir, holdout=0.2, patience=5)
    np.testing.assert_array_equal(resumed.estimator.coef_, reference.estimator.coef_)
    pd.testing.assert_frame_equal(resumed.history_.drop(columns="seconds"),
                                  reference.history_.drop(columns="seconds"))


def test_the_language_checkpoints_and_resumes(many_dir, tmp_path):
    path = tmp_path / "sql.ckpt"
    statement = (f"TRAIN sgd ON '{many_dir}' PREDICT y SCALE standard EPOCHS 3 SHUFFLE SEED 5 "
                 f"CHECKPOINT '{path}' EVERY 4 PARTITIONS RESUME")
    via_sql = oocml.Session().sql(statement)  # nothing to resume yet: trains from the start
    np.testing.assert_array_equal(via_sql.estimator.coef_, _uninterrupted(many_dir).estimator.coef_)
    explained = oocml.Session().sql("EXPLAIN " + statement)
    assert f"checkpoint: '{path}' every 4 partitions, resumed if it exists" in explained


def test_a_checkpoint_of_another_training_is_refused(many_dir, tmp_path, monkeypatch):
    path = tmp_path / "other.ckpt"
    monkeypatch.setattr(oocml.engine.checkpoint.Checkpoint, "remove", lambda self: None)
    _uninterrupted(many_dir, checkpoint=path, checkpoint_every=5)
    with pytest.raises(ParameterError, match="different training"):
        _uninterrupted(many_dir, checkpoint=path, resume=True, alpha=1e-3)
    with pytest.raises(ParameterError, match="need a checkpoint path"):
        _uninterrupted(many_dir, resume=True)


def test_a_crafted_checkpoint_runs_nothing(many_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ModelFileError, match="not a readable oocml checkpoint"):
        _uninterrupted(many_dir, checkpoint=path, resume=True)
    assert not marker.exists()


def test_an_mlp_checkpoint_resumes(many_dir, tmp_path, monkeypatch):
    path = tmp_path / "mlp.ckpt"
    monkeypatch.setattr(oocml.engine.checkpoint.Checkpoint, "remove", lambda self: None)
    options = dict(target="y", epochs=2, hidden_layer_sizes=[8])
    first = dd.read_parquet(many_dir).ml.scale().fit_incremental(
        "mlp", checkpoint=path, checkpoint_every=30, **options)
    resumed = dd.read_parquet(many_dir).ml.scale().fit_incremental(
        "mlp", checkpoint=path, resume=True, **options)  # resumes at partition 30 of 48
    for ours, theirs in zip(first.estimator.coefs_, resumed.estimator.coefs_, strict=True):
        np.testing.assert_array_equal(ours, theirs)
