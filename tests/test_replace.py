"""Stored models are never replaced without a word: TRAIN/LOAD OR REPLACE, SAVE ... OVERWRITE,
Model.save(overwrite=), on a local store and on S3 (the test server)."""

from __future__ import annotations

import threading

import pytest
from helpers import at_once

import oocml
from oocml.errors import ModelExistsError, ModelFileError

TRAIN = "TRAIN {algo} ON '{folder}' PREDICT y {more}"


def _algorithm(session: oocml.Session, name: str) -> str:
    table = session.sql(f"DESCRIBE {name}").set_index("property")
    return table.loc["algorithm", "value"]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_stored_model_is_replaced_only_when_the_statement_says_so(where, binary_dir, tmp_path,
                                                                    request):
    store = tmp_path / "models" if where == "local" else request.getfixturevalue("bucket") + "/m"
    first = oocml.Session(store=store)
    first.sql(TRAIN.format(algo="sgd", folder=binary_dir, more="SCALE standard AS shared"))
    other = oocml.Session(store=store)  # another session (or process) on the same store
    with pytest.raises(ModelExistsError, match=r"'shared' exists already in the store.*"
                                               r"TRAIN OR REPLACE"):
        other.sql(TRAIN.format(algo="naive_bayes", folder=binary_dir, more="AS shared"))
    assert _algorithm(oocml.Session(store=store), "shared") == "SGDClassifier"  # untouched
    with pytest.raises(ModelExistsError, match="LOAD OR REPLACE"):
        other.sql(f"LOAD MODEL shared FROM '{tmp_path}/absent.oocml'")  # refused before reading
    other.sql(TRAIN.format(algo="OR REPLACE naive_bayes", folder=binary_dir, more="AS shared"))
    assert _algorithm(oocml.Session(store=store), "shared") == "GaussianNB"


def test_save_and_load_say_when_they_would_replace(binary_dir, tmp_path):
    session = oocml.Session()
    session.sql(TRAIN.format(algo="sgd", folder=binary_dir, more="AS a"))
    session.sql(TRAIN.format(algo="naive_bayes", folder=binary_dir, more="AS b"))
    path = tmp_path / "m.oocml"
    session.sql(f"SAVE MODEL a TO '{path}'")
    with pytest.raises(ModelFileError, match="already exists.*OVERWRITE"):
        session.sql(f"SAVE MODEL b TO '{path}'")
    assert oocml.load_model(path).estimator.__class__.__name__ == "SGDClassifier"
    session.sql(f"SAVE MODEL b TO '{path}' OVERWRITE")
    assert oocml.load_model(path).estimator.__class__.__name__ == "GaussianNB"
    with pytest.raises(ModelExistsError):
        session.sql(f"LOAD MODEL a FROM '{path}'")
    session.sql(f"LOAD OR REPLACE MODEL a FROM '{path}'")
    assert _algorithm(session, "a") == "GaussianNB"
    with pytest.raises(ModelFileError, match="overwrite=True"):
        session.catalog.get("a").save(path)
    assert session.catalog.get("a").save(path, overwrite=True) == str(path)


def test_or_replace_needs_a_name():
    with pytest.raises(oocml.OocmlError, match="OR REPLACE replaces a named model: add AS name"):
        oocml.sql("TRAIN OR REPLACE sgd ON t PREDICT y")


@pytest.mark.parametrize("where", ["local", "s3"])
def test_concurrent_saves_of_one_new_name_leave_one_whole_model(where, binary, tmp_path, request):
    target = (str(tmp_path / "m.oocml") if where == "local"
              else request.getfixturevalue("bucket") + "/m.oocml")
    models = [binary.ml.fit_incremental("sgd", target="y", alpha=alpha)
              for alpha in (1e-4, 1e-2, 1.0)]
    outcomes: list = []
    start = threading.Barrier(len(models))

    def save(model):
        start.wait()
        try:
            outcomes.append(model.save(target))
        except ModelFileError as exc:
            outcomes.append(exc)

    at_once(save, [(m,) for m in models])
    saved = [o for o in outcomes if isinstance(o, str)]
    assert len(saved) == 1 and len(outcomes) == 3, outcomes  # one wins, two are refused
    assert all("already exists" in str(o) for o in outcomes if not isinstance(o, str))
    assert oocml.load_model(target).estimator.alpha in (1e-4, 1e-2, 1.0)  # whole
