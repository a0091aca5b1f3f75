"""Parse text once: the statistics pass keeps a CSV or JSON-lines source's parsed rows, every
later pass reads them, the model is the same bit for bit as when the text is parsed each
time, and a copy that fails is parsed again without changing anything."""

from __future__ import annotations

import gzip
import shutil

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import oocml
from oocml.engine import parsed
from oocml.engine.cache import CacheWarning
from oocml.io.partitions import batches


def _coef(model: oocml.Model) -> np.ndarray:
    return np.concatenate([model.estimator.coef_.ravel(), model.estimator.intercept_.ravel()])


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    """The same rows as CSV files, a gzip-compressed CSV and JSON lines: numbers with missing
    values, a string column with missing values, and string labels."""
    folder = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(5)
    n = 12_000
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"x{i}" for i in range(4)])
    frame.loc[rng.random(n) < 0.05, "x1"] = np.nan
    frame["city"] = rng.choice(["paris", "rome", "oslo", None], size=n)
    frame["y"] = np.where(frame["x0"] + 0.5 * frame["x2"] > 0, "yes", "no")
    for name, part in (("csv/a.csv", frame[:5000]), ("csv/b.csv", frame[5000:])):
        (folder / name).parent.mkdir(exist_ok=True)
        part.to_csv(folder / name, index=False)
    with gzip.open(folder / "all.csv.gz", "wt") as out:
        frame.to_csv(out, index=False)
    frame.to_json(folder / "all.jsonl", orient="records", lines=True)
    return folder


STEPS = "IMPUTE mean SCALE standard ENCODE onehot"


@pytest.mark.parametrize("source", ["csv/*.csv", "all.csv.gz", "all.jsonl"])
def test_text_is_parsed_once_and_the_model_is_the_same(text_dir, source):
    statement = f"TRAIN sgd ON '{text_dir / source}' PREDICT y {STEPS} EPOCHS 2 SHUFFLE"
    twice = oocml.sql(statement + " CACHE OFF")
    once = oocml.sql(statement)
    assert once.report.parsed_once and once.report.passes == 1
    assert not twice.report.parsed_once and twice.report.passes == 3
    np.testing.assert_array_equal(_coef(once), _coef(twice))
    assert once.classes == ["no", "yes"]


def test_with_a_holdout_and_early_stopping(text_dir):
    statement = (f"TRAIN sgd ON '{text_dir / 'csv'}' PREDICT y {STEPS} EPOCHS 3 SHUFFLE "
                 "HOLDOUT 0.2 EARLY STOP PATIENCE 1")
    once, twice = oocml.sql(statement), oocml.sql(statement + " CACHE OFF")
    assert once.report.parsed_once
    np.testing.assert_array_equal(_coef(once), _coef(twice))
    assert once.report.holdout_score == twice.report.holdout_score


def test_the_accessor_on_dask_text_readers(text_dir):
    """``dd.read_csv`` and ``dd.read_json`` frames are recognised as text by the accessor too,
    and give the language's model."""
    data = dd.read_csv(text_dir / "csv" / "*.csv")
    model = data.ml.impute("mean").scale().encode("onehot").fit_incremental(
        "sgd", target="y", epochs=2, shuffle=True)
    assert model.report.parsed_once
    statement = oocml.sql(f"TRAIN sgd ON '{text_dir / 'csv'}' PREDICT y {STEPS} EPOCHS 2 SHUFFLE")
    np.testing.assert_array_equal(_coef(model), _coef(statement))
    lines = dd.read_json(text_dir / "all.jsonl", lines=True, blocksize=2**18)
    assert lines.ml.impute("mean").fit_incremental(
        "sgd", target="y", features=["x0", "x1", "x2"]).report.parsed_once


def test_parquet_and_memory_are_not_copied(binary, text_dir):
    assert not binary.ml.scale().fit_incremental("sgd", target="y").report.parsed_once
    frame = pd.read_csv(text_dir / "csv" / "a.csv")
    assert not dd.from_pandas(frame, npartitions=2).ml.impute("mean").fit_incremental(
        "sgd", target="y", features=["x0", "x1"]).report.parsed_once


def test_the_copy_is_removed_after_the_fit(text_dir, tmp_path):
    folder = tmp_path / "kept"
    oocml.sql(f"TRAIN sgd ON '{text_dir / 'all.csv.gz'}' PREDICT y {STEPS} CACHE '{folder}'")
    assert not [p for p in folder.rglob("*") if "oocml-parsed" in p.name]


@pytest.mark.parametrize("damage", ["deleted", "truncated", "whole folder"])
def test_a_damaged_copy_is_parsed_again(text_dir, monkeypatch, damage):
    """The copy damaged between the statistics pass and training: a warning, the same model."""
    statement = f"TRAIN sgd ON '{text_dir / 'csv'}' PREDICT y {STEPS} EPOCHS 2 SHUFFLE"
    expected = oocml.sql(statement + " CACHE OFF")
    real = parsed.ParsedCopy.parts

    def damaged(self, parts):
        found = real(self, parts)
        files = sorted(self.folder.glob("p*.arrow"))
        assert len(files) == 2 and all(map(self.holds, found))
        if damage == "deleted":
            files[1].unlink()
        elif damage == "truncated":
            files[0].write_bytes(files[0].read_bytes()[:1000])
        else:
            shutil.rmtree(self.folder)
        return found

    monkeypatch.setattr(parsed.ParsedCopy, "parts", damaged)
    with pytest.warns(CacheWarning, match="is parsed again"):
        again = oocml.sql(statement)
    np.testing.assert_array_equal(_coef(again), _coef(expected))


def test_a_partition_arrow_cannot_hold_is_read_from_the_text(tmp_path):
    """Columns of Python objects would come back as strings: that partition is not copied."""
    copy = parsed.ParsedCopy(tmp_path)
    frames = [pd.DataFrame({"a": [1.0, 2.0], "b": pd.Series([1, "x"], dtype=object)})]
    assert [f.equals(frames[0]) for f in copy.tee(0, iter(frames))] == [True]
    numbers = [pd.DataFrame({"a": [1.0, np.nan]}, index=pd.RangeIndex(4, 6)),
               pd.DataFrame({"a": [3.0]}, index=pd.RangeIndex(6, 7))]
    list(copy.tee(1, iter(numbers)))
    parts = copy.parts(["source 0", "source 1"])
    assert parts[0] == "source 0" and copy.holds(parts[1])
    back = list(batches(parts[1]))
    assert len(back) == 2 and all(a.equals(b) for a, b in zip(back, numbers))
    copy.remove()
    assert not copy.folder.exists()


def test_explain_says_how_text_is_parsed(text_dir, binary_dir):
    csv = f"EXPLAIN TRAIN sgd ON '{text_dir / 'csv'}' PREDICT y {STEPS}"
    assert "  text:       parsed once: the statistics pass keeps" in oocml.sql(csv)
    assert "  text:       parsed by every pass (CACHE OFF)" in oocml.sql(csv + " CACHE OFF")
    assert "  text:" not in oocml.sql(f"EXPLAIN TRAIN sgd ON '{binary_dir}' PREDICT y")


@pytest.mark.parametrize("name", ["csv/a.csv", "all.csv.gz", "all.jsonl"])
def test_text_on_an_object_store_is_parsed_once(text_dir, bucket, s3, name):
    """The hardest URL: the text on an S3 server (moto, 127.0.0.1), its parsed copy on this
    machine; the same model as parsing it in every pass."""
    s3.put(str(text_dir / name), f"{bucket}/{name}")
    statement = f"TRAIN sgd ON '{bucket}/{name}' PREDICT y {STEPS} EPOCHS 2 SHUFFLE"
    once, twice = oocml.sql(statement), oocml.sql(statement + " CACHE OFF")
    assert once.report.parsed_once and once.report.passes == 1
    assert not twice.report.parsed_once
    np.testing.assert_array_equal(_coef(once), _coef(twice))


def test_an_interrupted_copy_leaves_nothing_behind(tmp_path):
    """A statistics pass stopped mid-partition (an error, Ctrl-C) commits no copy of it and
    leaves no partial file: that partition is parsed again."""
    copy = parsed.ParsedCopy(tmp_path)
    frames = (pd.DataFrame({"a": [float(i)]}) for i in range(3))
    stream = copy.tee(0, frames)
    next(stream)
    stream.close()  # the consumer stops: GeneratorExit inside tee
    assert list(copy.folder.iterdir()) == []
    assert copy.parts(["source"]) == ["source"]
