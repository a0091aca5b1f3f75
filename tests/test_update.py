"""UPDATE / ``ddf.ml.update``: a stored model trained further on new data, and its lineage.

The claims held here: fit on A then update on B is the model of one stream over A then B, bit
for bit (SGD's averages, an MLP's optimizer and naive Bayes' counts carry on, through a model
file too); both faces give the same model; the update's score is test-then-train; a label the
model does not know is refused before training; NEW trains on unseen files only, never
opening the others, and refuses a seen file that changed; two updates of one version never
lose one; models that cannot continue are refused saying what to do.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from helpers import at_once
from sklearn.linear_model import SGDClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier

import oocml
from oocml.errors import ColumnNotFoundError, ModelExistsError, ParameterError, SourceError, UnseenLabelError

FEATURES = ["a", "b", "c"]


def _day(rows: int, seed: int, labels: tuple = (0, 1)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=FEATURES)
    score = frame.a + 0.5 * frame.b + rng.normal(scale=0.5, size=rows)
    frame["y"] = np.asarray(labels)[np.digitize(score, np.linspace(-1, 1, len(labels) - 1))]
    frame["shop"] = rng.choice(["north", "south"], size=rows)
    return frame


def _write_days(root: Path, days: range, rows: int = 2_000) -> list[Path]:
    """Daily hive folders ``root/day=N/part.parquet``; their files."""
    files = []
    for day in days:
        folder = root / f"day={day}"
        folder.mkdir(parents=True, exist_ok=True)
        _day(rows, day).to_parquet(folder / "part.parquet")
        files.append(folder / "part.parquet")
    return files


def _stream_by_hand(estimator, prep, files: list[Path], classes) -> object:
    """The reference: each file, in order, one block through the fitted preprocessing."""
    for file in files:
        frame = pd.read_parquet(file)
        estimator.partial_fit(prep.transform(frame[FEATURES]), frame.y.to_numpy(), classes=classes)
    return estimator


@pytest.mark.parametrize("estimator", [
    SGDClassifier(average=True, random_state=0),
    MLPClassifier(hidden_layer_sizes=(8,), random_state=0),
    GaussianNB(),
], ids=["sgd-averaged", "mlp-adam", "naive-bayes"])
def test_fit_on_a_then_update_on_b_is_one_stream_over_a_then_b(tmp_path, estimator):
    files = _write_days(tmp_path / "days", range(1, 4))
    first = dd.read_parquet([str(f) for f in files[:2]])
    model = first.ml.scale().fit_incremental(estimator, target="y", features=FEATURES)
    model.save(tmp_path / "a.oocml")  # the optimizer state crosses a model file
    updated = dd.read_parquet(str(files[2])).ml.update(oocml.load_model(tmp_path / "a.oocml"))
    reference = _stream_by_hand(type(estimator)(**estimator.get_params()), model.pipeline[:-1],
                                files, np.array([0, 1]))
    for name, value in vars(reference).items():
        if name.endswith("_") and isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(updated.estimator, name), value, err_msg=name)
    if isinstance(reference, MLPClassifier):
        for got, want in zip(updated.estimator.coefs_, reference.coefs_, strict=True):
            np.testing.assert_array_equal(got, want)
    assert updated.estimator is not model.estimator  # the model updated is left as it was
    assert model.report.rows_seen == 4_000 and updated.report.rows_seen == 2_000


def test_both_faces_update_to_the_same_model_and_record_the_same_lineage(tmp_path):
    files = _write_days(tmp_path / "days", range(1, 3))
    session = oocml.Session(tmp_path / "store", progress=False)
    session.sql(f"TRAIN sgd ON '{files[0]}' PREDICT y FEATURES a, b, c SCALE standard AS m")
    by_sql = session.sql(f"UPDATE m ON '{files[1]}' EPOCHS 2 SHUFFLE")
    by_python = dd.read_parquet(str(files[1])).ml.update(session.model("m@1"), epochs=2,
                                                          shuffle=True)
    np.testing.assert_array_equal(by_sql.estimator.coef_, by_python.estimator.coef_)
    assert [s.kind for s in by_sql.lineage] == ["train", "update"]
    assert by_sql.lineage[1].files == by_python.lineage[1].files
    assert by_sql.lineage[1].source == f"'{files[1]}'" and by_python.lineage[1].source is None
    assert session.versions("m").fit.tolist() == ["train", "update"]


def test_the_update_score_is_test_then_train(tmp_path):
    files = _write_days(tmp_path / "days", range(1, 3))
    model = dd.read_parquet(str(files[0])).ml.scale().fit_incremental(
        SGDClassifier, target="y", features=FEATURES)
    before = model.score(dd.read_parquet(str(files[1])))  # every new row, by the old model
    updated = dd.read_parquet(str(files[1])).ml.update(model)
    assert updated.lineage[-1].score == pytest.approx(before, abs=1e-6)  # one block: scored first
    assert updated.lineage[-1].score_kind == "progressive"
    assert updated.report.history[0]["progressive_score"] == updated.lineage[-1].score


def test_a_label_the_model_does_not_know_is_refused_before_training(tmp_path):
    session = oocml.Session(tmp_path / "store", progress=False)
    _day(2_000, 1).to_parquet(tmp_path / "old.parquet")
    _day(2_000, 2, labels=(0, 1, 7)).to_parquet(tmp_path / "new.parquet")
    session.sql(f"TRAIN sgd ON '{tmp_path / 'old.parquet'}' PREDICT y FEATURES a, b, c AS m")
    with pytest.raises(UnseenLabelError, match=r"\[7\].*nothing was trained"):
        session.sql(f"UPDATE m ON '{tmp_path / 'new.parquet'}'")
    assert session.versions("m").version.tolist() == [1]


def test_one_label_value_and_unseen_categories_are_fine(tmp_path):
    old, new = _day(2_000, 1), _day(1_000, 2)
    new["y"], new["shop"] = 1, "east"  # a category the encoder never saw, one label value
    model = dd.from_pandas(old, npartitions=2).ml.encode("onehot").fit_incremental(
        SGDClassifier, target="y", features=[*FEATURES, "shop"])
    updated = dd.from_pandas(new, npartitions=1).ml.update(model)
    assert updated.report.rows_seen == 1_000 and updated.lineage[-1].files is None
    assert not np.array_equal(updated.estimator.coef_, model.estimator.coef_)


def _same_size_garbage(path: Path) -> None:
    """Overwrite ``path`` with bytes no reader can parse, keeping its size and mtime: the file
    is unchanged to lineage, and any attempt to read it fails."""
    stat = path.stat()
    path.write_bytes(b"\0" * stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_update_new_trains_on_unseen_files_and_never_opens_the_others(tmp_path):
    root = tmp_path / "events"
    old = _write_days(root, range(1, 4))
    session = oocml.Session(tmp_path / "store", progress=False)
    session.sql(f"TRAIN sgd ON '{root}' PREDICT y FEATURES a, b, c SCALE standard AS m")
    for path in old:
        _same_size_garbage(path)  # read them, and the update fails
    _write_days(root, range(4, 6))
    updated = session.sql(f"UPDATE m ON '{root}' NEW")
    assert [os.path.basename(os.path.dirname(f.path)) for f in updated.lineage[-1].files] == [
        "day=4", "day=5"]
    assert [f.rows for f in updated.lineage[-1].files] == [2_000, 2_000]
    assert updated.report.rows_seen == 4_000 and len(updated.files_seen) == 5
    assert session.sql(f"UPDATE m ON '{root}' NEW").startswith("model m: no file of")
    assert session.versions("m").version.tolist() == [1, 2]
    describe = session.sql("DESCRIBE m").set_index("property").value
    assert "updated on" in describe["fit 1"] and "day=4/part.parquet" in describe["fit 1"]
    assert "test-then-train score" in describe["fit 1"] and "3 file(s)" in describe["fit 0"]


def test_a_seen_file_that_changed_is_refused_by_name_unless_included(tmp_path):
    root = tmp_path / "events"
    files = _write_days(root, range(1, 3))
    session = oocml.Session(progress=False)
    session.sql(f"TRAIN sgd ON '{root}' PREDICT y FEATURES a, b, c AS m")
    _day(3_000, 9).to_parquet(files[0])  # day 1 rewritten: another size
    with pytest.raises(SourceError, match=r"changed since: '.*day=1/part.parquet'.*INCLUDING CHANGED"):
        session.sql(f"UPDATE m ON '{root}' NEW")
    updated = session.sql(f"UPDATE m ON '{root}' NEW INCLUDING CHANGED")
    assert [f.rows for f in updated.lineage[-1].files] == [3_000]
    # the accessor's NEW reads the same lineage
    with pytest.raises(SourceError, match="changed since"):
        dd.read_parquet(str(root)).ml.update(session.model("m@1"), new=True)


def test_two_updates_of_one_version_never_lose_one(tmp_path):
    files = _write_days(tmp_path / "days", range(1, 4))
    store = tmp_path / "store"
    oocml.Session(store).sql(f"TRAIN sgd ON '{files[0]}' PREDICT y FEATURES a, b, c AS m")
    base = oocml.Session(store).model("m")
    updates = [dd.read_parquet(str(f)).ml.update(base) for f in files[1:]]
    barrier, outcomes = threading.Barrier(2), []

    class SlowToSave:  # both writers choose version 2, then race for its file
        def __init__(self, model):
            self.model, self.tries = model, 0

        def save(self, *args, **kwargs):
            self.tries += 1
            if self.tries == 1:
                barrier.wait(timeout=30)
            return self.model.save(*args, **kwargs)

    def update(model) -> None:
        try:
            oocml.Session(store).catalog.put("m", SlowToSave(model), replace=True,
                                             verb="UPDATE", after=1)
            outcomes.append("kept")
        except ModelExistsError as exc:
            outcomes.append(str(exc))

    at_once(update, [(u,) for u in updates])
    refused = [o for o in outcomes if o != "kept"]
    assert len(outcomes) == 2 and len(refused) == 1 and "changed while this UPDATE ran" in refused[0]
    assert oocml.Session(store).versions("m").version.tolist() == [1, 2]
    # an update of a version that is no longer current is refused, not lost
    with pytest.raises(ModelExistsError, match="continued version 1, and version 2"):
        oocml.Session(store).catalog.put("m", updates[0], replace=True, verb="UPDATE", after=1)


def test_models_that_cannot_continue_and_bad_sources_are_refused_clearly(tmp_path, binary_dir):
    files = _write_days(tmp_path / "days", range(1, 3))
    session = oocml.Session(progress=False)
    session.sql(f"TRAIN sgd ON '{files[0]}' PREDICT y FEATURES a, b, c "
                "TUNE (alpha IN (0.0001, 0.001)) AS tuned")
    with pytest.raises(ParameterError, match="chosen by TUNE.*UPDATE that one"):
        session.sql(f"UPDATE tuned ON '{files[1]}'")
    session.sql(f"TRAIN sgd ON '{files[0]}' PREDICT y FEATURES a, b, c AS m")
    with pytest.raises(ColumnNotFoundError, match="x0"):
        session.sql(f"UPDATE m ON '{binary_dir}'")  # other columns
    with pytest.raises(oocml.OocmlError, match="no model named 'n'"):
        session.sql(f"UPDATE n ON '{files[1]}'")
    with pytest.raises(SourceError, match="NEW needs data read from files"):
        dd.from_pandas(_day(100, 3), npartitions=1).ml.update(session.model("m"), new=True)
    with pytest.raises(ParameterError, match="keeps the model's preprocessing"):
        dd.read_parquet(str(files[1])).ml.scale().update(session.model("m"))
    with pytest.raises(oocml.OocmlError, match="epochs"):
        dd.read_parquet(str(files[1])).ml.update(session.model("m"), epochs=0)


def test_update_where_keeps_the_models_where_too(tmp_path):
    files = _write_days(tmp_path / "days", range(1, 3))
    session = oocml.Session(progress=False)
    session.sql(f"TRAIN sgd ON '{files[0]}' PREDICT y FEATURES a, b, c WHERE shop = 'north' AS m")
    updated = session.sql(f"UPDATE m ON '{files[1]}' WHERE a > 0")
    new = pd.read_parquet(files[1])
    assert updated.report.rows_seen == int(((new.shop == "north") & (new.a > 0)).sum())
    assert updated.lineage[0].where == "shop = 'north'"
    assert updated.lineage[1].where == "shop = 'north' AND a > 0"


def test_update_new_on_an_object_store_records_etags(tmp_path, bucket, s3):
    for day in (1, 2, 3):
        with s3.open(f"{bucket}/events/day={day}/part.parquet", "wb") as out:
            _day(1_000, day).to_parquet(out)
    session = oocml.Session(f"{bucket}/models", progress=False)
    session.sql(f"TRAIN sgd ON '{bucket}/events/day=1/' PREDICT y FEATURES a, b, c AS m")
    updated = session.sql(f"UPDATE m ON '{bucket}/events/' NEW")
    step = updated.lineage[-1]
    assert [f.path.removeprefix(bucket) for f in step.files] == [
        "/events/day=2/part.parquet", "/events/day=3/part.parquet"]
    assert all(f.etag for f in step.files) and step.rows == 2_000
    fresh = oocml.Session(f"{bucket}/models", progress=False)  # the lineage is in the file
    assert fresh.sql(f"UPDATE m ON '{bucket}/events/' NEW").startswith("model m: no file")


def test_explain_update_names_the_new_files_and_reads_no_data(tmp_path):
    root = tmp_path / "events"
    old = _write_days(root, range(1, 3))
    session = oocml.Session(progress=False)
    session.sql(f"TRAIN sgd ON '{root}' PREDICT y FEATURES a, b, c AS m")
    for path in old:
        _same_size_garbage(path)
    _write_days(root, range(3, 4))
    text = session.sql(f"EXPLAIN UPDATE m ON '{root}' NEW EPOCHS 2")
    assert "version 1 (SGDClassifier), into version 2" in text
    assert "1 file(s) the model has not seen (its lineage holds 2)" in text
    assert ".ml.update(model, epochs=2, new=True)" in text
    assert session.versions("m").version.tolist() == [1]
