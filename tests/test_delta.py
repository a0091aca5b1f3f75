"""Delta Lake tables as sources (``ON delta 'uri' [VERSION n]``, ``oocml.read_delta``), written by
``deltalake.write_deltalake`` here and on the test S3 server.

Held here: a version's files and only they are read, partition columns included; both faces
give one model; lineage records the version, and UPDATE ... NEW trains on the files added
since; a missing version, a vacuumed one and deletion vectors are refused by name.
"""

from __future__ import annotations

import json

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import oocml
from oocml.errors import SourceError

deltalake = pytest.importorskip("deltalake")


def _day(day: str, rows: int = 2_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng([seed, int(day[1:])])
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    frame["y"] = (frame.a + 0.5 * frame.b > 0).astype(int)
    frame["day"] = day
    return frame


def _append(uri: str, day: str, **options) -> None:
    deltalake.write_deltalake(uri, _day(day), partition_by=["day"], mode="append",
                              storage_options=options or None)


def test_a_version_is_read_whole_and_alone_in_both_faces(tmp_path):
    uri = str(tmp_path / "events")
    for day in ("d1", "d2", "d3"):
        _append(uri, day)
    session = oocml.Session(progress=False)
    model = session.sql(f"TRAIN sgd ON delta '{uri}' VERSION 1 PREDICT y FEATURES a, b, c, day "
                        "ENCODE onehot SCALE standard")
    assert model.report.rows_seen == 4_000  # versions 0 and 1: days 1 and 2
    by_python = oocml.read_delta(uri, version=1).ml.encode("onehot").scale().fit_incremental(
        "sgd", target="y", features=["a", "b", "c", "day"])
    np.testing.assert_array_equal(model.estimator.coef_, by_python.estimator.coef_)
    frame = oocml.read_delta(uri)
    assert sorted(frame["day"].unique().compute()) == ["d1", "d2", "d3"] and len(frame) == 6_000
    step = session.sql(f"TRAIN sgd ON delta '{uri}' PREDICT y FEATURES a, b, c").lineage[-1]
    assert step.table_version == 2 and step.source == f"delta '{uri}' VERSION 2"
    assert len(step.files) == 3 and step.rows == 6_000


def test_update_new_trains_on_the_files_added_since(tmp_path):
    uri = str(tmp_path / "events")
    _append(uri, "d1")
    session = oocml.Session(tmp_path / "store", progress=False)
    session.sql(f"TRAIN sgd ON delta '{uri}' PREDICT y FEATURES a, b, c SCALE standard AS m")
    _append(uri, "d2")
    _append(uri, "d3")
    updated = session.sql(f"UPDATE m ON delta '{uri}' NEW")
    step = updated.lineage[-1]
    assert step.table_version == 2 and [f.rows for f in step.files] == [2_000, 2_000]
    assert sorted(f.path.split("/")[-2] for f in step.files) == ["day=d2", "day=d3"]
    assert session.sql(f"UPDATE m ON delta '{uri}' NEW").startswith("model m: no file of")
    described = session.sql("DESCRIBE m").set_index("property").value
    assert f"delta '{uri}' VERSION 2" in described["fit 1"]


def test_missing_and_vacuumed_versions_and_deletion_vectors_are_refused(tmp_path):
    uri = str(tmp_path / "events")
    _append(uri, "d1")
    deltalake.write_deltalake(uri, _day("d2"), partition_by=["day"], mode="overwrite")
    with pytest.raises(SourceError, match="has no version 5: its versions go up to 1"):
        oocml.sql(f"TRAIN sgd ON delta '{uri}' VERSION 5 PREDICT y")
    deltalake.DeltaTable(uri).vacuum(retention_hours=0, enforce_retention_duration=False,
                                     dry_run=False)
    with pytest.raises(SourceError, match="version 0 of the Delta table .* VACUUM removed them"):
        oocml.read_delta(uri, version=0)
    assert len(oocml.read_delta(uri)) == 2_000  # the latest version is whole
    with pytest.raises(SourceError, match="no Delta table at"):
        oocml.read_delta(tmp_path / "nothing")
    # a commit that puts a deletion vector on a file, as Spark's DELETE does
    log = tmp_path / "events" / "_delta_log"
    add = next(json.loads(line)["add"] for line in (log / "00000000000000000001.json").open()
               if '"add"' in line)
    vector = {"storageType": "u", "pathOrInlineDv": "ab^-aqEH.-t@S}K{vb[*k^", "offset": 1,
              "sizeInBytes": 36, "cardinality": 2}
    commit = [{"protocol": {"minReaderVersion": 3, "minWriterVersion": 7,
                            "readerFeatures": ["deletionVectors"],
                            "writerFeatures": ["deletionVectors"]}},
              {"remove": {"path": add["path"], "deletionTimestamp": 1, "dataChange": True}},
              {"add": {**add, "deletionVector": vector}},
              {"commitInfo": {"timestamp": 2, "operation": "DELETE"}}]
    (log / "00000000000000000002.json").write_text("\n".join(map(json.dumps, commit)) + "\n")
    with pytest.raises(SourceError, match="deletion vectors .* would train on the rows they delete"):
        oocml.sql(f"TRAIN sgd ON delta '{uri}' PREDICT y")
    assert len(oocml.read_delta(uri, version=1)) == 2_000  # before the vector: readable


def test_a_delta_table_on_the_object_store(bucket, s3, monkeypatch):
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    monkeypatch.setenv("AWS_S3_ALLOW_UNSAFE_RENAME", "true")  # one writer: no lock needed
    uri = f"{bucket}/events"
    for day in ("d1", "d2"):
        _append(uri, day)
    session = oocml.Session(f"{bucket}/models", progress=False)
    model = session.sql(f"TRAIN sgd ON delta '{uri}' PREDICT y FEATURES a, b, c AS m")
    step = model.lineage[-1]
    assert step.table_version == 1 and step.rows == 4_000
    assert all(f.path.startswith(uri) and f.etag for f in step.files)
    _append(uri, "d3")
    updated = session.sql(f"UPDATE m ON delta '{uri}' NEW")
    assert updated.lineage[-1].rows == 2_000 and updated.lineage[-1].table_version == 2
    local = dd.from_pandas(pd.concat([_day(d) for d in ("d1", "d2", "d3")]), npartitions=1)
    assert len(oocml.read_delta(uri)) == len(local)
