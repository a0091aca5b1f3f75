"""A model store keeps the versions of a name: every TRAIN OR REPLACE, LOAD OR REPLACE and
ROLLBACK writes a new one, ``name@N`` reads an old one, retention bounds how many stay, and two
sessions replacing one name at once keep both versions whole, on disk and on an S3 server."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import at_once

import oocml
from oocml.errors import ModelExistsError, OocmlSyntaxError, ParameterError, UnknownModelError


def _train(session: oocml.Session, data: Path, algorithm: str = "sgd", clauses: str = "") -> None:
    session.sql(f"TRAIN OR REPLACE {algorithm} ON '{data}' PREDICT y SCALE standard {clauses} AS m")


def _predictions(session: oocml.Session, reference: str, data: Path) -> np.ndarray:
    return session.sql(f"PREDICT USING {reference} ON '{data}'").compute().iloc[:, -1].to_numpy()


def test_every_replace_is_a_version_and_old_ones_stay_readable(tmp_path, binary_dir):
    session = oocml.Session(tmp_path / "store")
    _train(session, binary_dir, "sgd", "HOLDOUT 0.2")
    first = _predictions(session, "m", binary_dir)
    _train(session, binary_dir, "naive_bayes")
    versions = session.sql("SHOW VERSIONS m")
    assert versions[["version", "current", "algorithm"]].values.tolist() == [
        [1, False, "SGDClassifier"], [2, True, "GaussianNB"]]
    assert versions.rows_seen.tolist()[1] == 30_000 and 0.5 < versions.score[0] <= 1
    assert versions.score.isna().tolist() == [False, True]  # version 2 kept no rows out
    assert (versions.saved.dt.tz is not None and
            (pd.Timestamp.now(tz="UTC") - versions.saved).max() < pd.Timedelta(minutes=10))
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["m@1.oocml", "m@2.oocml"]
    # the current version answers to the name; version 1 to m@1, in every statement
    assert session.sql("DESCRIBE m").set_index("property").value["algorithm"] == "GaussianNB"
    assert session.sql("DESCRIBE m@1").set_index("property").value["algorithm"] == "SGDClassifier"
    np.testing.assert_array_equal(_predictions(session, "m@1", binary_dir), first)
    assert session.sql(f"EVALUATE m@1 ON '{binary_dir}'").shape[0] > 0
    pd.testing.assert_frame_equal(session.sql("SHOW WEIGHTS m@1").set_index("feature"),
                                  session.model("m@1").weights().rename_axis("feature"))
    # and from a new session, and from Python
    again = oocml.Session(tmp_path / "store")
    np.testing.assert_array_equal(_predictions(again, "m@1", binary_dir), first)
    assert type(again.model("m@1").estimator).__name__ == "SGDClassifier"
    assert again.versions("m").version.tolist() == [1, 2]


def test_rollback_makes_an_old_version_current_as_a_new_one(tmp_path, binary_dir):
    session = oocml.Session(tmp_path / "store")
    _train(session, binary_dir, "sgd")
    first = _predictions(session, "m", binary_dir)
    _train(session, binary_dir, "naive_bayes")
    message = session.sql("ROLLBACK MODEL m TO VERSION 1")
    assert message == "model m: version 1 is current again, as version 3"
    np.testing.assert_array_equal(_predictions(oocml.Session(tmp_path / "store"), "m", binary_dir),
                                  first)
    assert session.sql("SHOW MODELS")[["name", "version", "algorithm"]].values.tolist() == [
        ["m", 3, "SGDClassifier"]]
    with pytest.raises(UnknownModelError, match=r"model 'm' has no version 7; its versions: 1, 2, 3"):
        session.sql("ROLLBACK MODEL m TO VERSION 7")


def test_retention_keeps_the_newest_versions(tmp_path, binary_dir):
    session = oocml.Session(tmp_path / "store", keep_versions=2)
    for _ in range(4):
        _train(session, binary_dir, "naive_bayes")
    assert session.versions("m").version.tolist() == [3, 4]
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["m@3.oocml", "m@4.oocml"]
    with pytest.raises(UnknownModelError, match="no version 1"):
        session.sql("DESCRIBE m@1")
    with pytest.raises(ParameterError, match="keep_versions"):
        oocml.Session(tmp_path / "store", keep_versions=0)


def test_drop_a_version_or_the_whole_model(tmp_path, binary_dir):
    session = oocml.Session(tmp_path / "store")
    for _ in range(3):
        _train(session, binary_dir, "naive_bayes")
    assert session.sql("DROP MODEL m@3") == "dropped version 3 of model m"
    assert session.versions("m").version.tolist() == [1, 2]  # version 2 is current again
    assert session.sql("DROP MODEL m") == "dropped model m"
    assert list((tmp_path / "store").iterdir()) == []


def test_versions_without_a_store_live_in_the_session(binary_dir):
    session = oocml.Session()
    _train(session, binary_dir, "sgd")
    _train(session, binary_dir, "naive_bayes")
    assert session.versions("m")[["version", "algorithm"]].values.tolist() == [
        [1, "SGDClassifier"], [2, "GaussianNB"]]
    assert session.sql("ROLLBACK MODEL m TO VERSION 1").endswith("as version 3")


def test_a_store_of_an_earlier_release_reads_as_version_1(tmp_path, binary_dir):
    """oocml 0.1 stored ``<name>.oocml``: it is version 1 of the name, and stays beside the next."""
    store = tmp_path / "store"
    store.mkdir()
    oocml.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y AS old").save(store / "m.oocml")
    session = oocml.Session(store)
    first = _predictions(session, "m", binary_dir)
    assert session.versions("m").version.tolist() == [1]
    _train(session, binary_dir, "naive_bayes")
    assert sorted(p.name for p in store.iterdir()) == ["m.oocml", "m@2.oocml"]
    np.testing.assert_array_equal(_predictions(session, "m@1", binary_dir), first)


@pytest.mark.parametrize("text, error", [
    ("DESCRIBE m@0", "a model version"), ("DESCRIBE m@1.5", "a model version"),
    ("ROLLBACK MODEL m TO VERSION 0", "VERSION"),
])
def test_bad_versions_are_refused_at_their_place(text, error):
    with pytest.raises(OocmlSyntaxError, match=error):
        oocml.Session().sql(text)


class _SlowToSave:
    """A model whose save waits until both writers have chosen their version number: the two
    sessions then race for the same file, as two real ones do when their saves overlap."""

    def __init__(self, model: oocml.Model, barrier: threading.Barrier):
        self.model, self.barrier, self.tries = model, barrier, 0

    def save(self, *args, **kwargs):
        self.tries += 1
        if self.tries == 1:  # the first try of each writer: together
            self.barrier.wait(timeout=30)
        return self.model.save(*args, **kwargs)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_sessions_replacing_one_name_at_once_keep_both_versions(tmp_path, binary_dir, where,
                                                                     request):
    store = (str(tmp_path / "store") if where == "local"
             else f"{request.getfixturevalue('bucket')}/models")
    trained = {algorithm: oocml.sql(f"TRAIN {algorithm} ON '{binary_dir}' PREDICT y")
               for algorithm in ("sgd", "naive_bayes")}
    oocml.Session(store).catalog.put("m", trained["sgd"])
    barrier, errors = threading.Barrier(2), []

    def replace(algorithm: str) -> None:
        try:
            oocml.Session(store).catalog.put("m", _SlowToSave(trained[algorithm], barrier),
                                             replace=True)
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    at_once(replace, [(a,) for a in trained])
    assert errors == []
    session = oocml.Session(store)
    table = session.versions("m")
    assert table.version.tolist() == [1, 2, 3]
    assert sorted(table.algorithm[1:]) == ["GaussianNB", "SGDClassifier"]  # both whole
    for version in (2, 3):
        assert len(session.sql(f"PREDICT USING m@{version} ON '{binary_dir}'")) == 30_000


def test_two_sessions_creating_one_new_name_at_once_one_is_refused(tmp_path, binary_dir):
    store = tmp_path / "store"
    model = oocml.sql(f"TRAIN naive_bayes ON '{binary_dir}' PREDICT y")
    barrier, outcomes = threading.Barrier(2), []

    def create() -> None:
        try:
            oocml.Session(store).catalog.put("m", _SlowToSave(model, barrier))
            outcomes.append("kept")
        except ModelExistsError as exc:
            outcomes.append(str(exc))

    at_once(create, [(), ()])
    assert sorted(outcomes)[1] == "kept" and "meanwhile, by another session" in sorted(outcomes)[0]
    assert [p.name for p in store.iterdir()] == ["m@1.oocml"]


def test_a_version_file_copied_in_by_hand_is_listed(tmp_path, binary_dir):
    """The store is its files: a version file put there by hand (a restore from backup) is a
    version like any other."""
    session = oocml.Session(tmp_path / "store")
    _train(session, binary_dir, "naive_bayes")
    shutil.copy(tmp_path / "store" / "m@1.oocml", tmp_path / "store" / "m@5.oocml")
    assert session.versions("m").version.tolist() == [1, 5]
