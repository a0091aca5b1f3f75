"""Data and outputs in an object store: a real S3-compatible server on 127.0.0.1 (moto's server
mode) with s3fs as the client, through both faces, compared with local copies bit for bit."""

from __future__ import annotations

import json

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from helpers import killed_when, slow_predict_script
from sklearn.linear_model import SGDClassifier

import oocml
from oocml.errors import ModelFileError, OocmlError, SourceError, StorageError
from oocml.io.outputs import MANIFEST
from oocml.io.partitions import ParquetPart, partitions

TRAIN = ("TRAIN sgd ON {src} PREDICT y SCALE standard WITH (loss = 'log_loss') EPOCHS 2 SHUFFLE "
         "AS m")


@pytest.fixture
def remote_binary(binary_dir, bucket, s3):
    """The binary data set uploaded to the bucket: (its URL, the local folder)."""
    s3.put(f"{binary_dir}/", f"{bucket[5:]}/data/", recursive=True)
    return f"{bucket}/data", binary_dir


def _coef(model):
    return model.estimator.coef_.copy(), model.estimator.intercept_.copy()


def test_remote_parquet_trains_the_same_model_as_a_local_copy(remote_binary):
    url, local = remote_binary
    remote_model = oocml.Session().sql(TRAIN.format(src=f"'{url}/*.parquet'"))
    local_model = oocml.Session().sql(TRAIN.format(src=f"'{local}/*.parquet'"))
    for a, b in zip(_coef(remote_model), _coef(local_model)):
        np.testing.assert_array_equal(a, b)
    # The accessor on dask's own remote read: the direct reader, with its filesystem.
    frame = dd.read_parquet(f"{url}/")
    parts = partitions(frame)
    assert all(isinstance(p, ParquetPart) and p.fs is not None for p in parts)
    chained = frame.ml.scale().fit_incremental("sgd", target="y", epochs=2, shuffle=True,
                                               loss="log_loss")
    for a, b in zip(_coef(chained), _coef(local_model)):
        np.testing.assert_array_equal(a, b)


def test_remote_row_groups_stream_or_are_fetched_alike(tmp_path, bucket, s3, monkeypatch):
    """Row groups over the fetch budget stream through a buffer; smaller runs are fetched in
    merged requests: the same batches as the local file either way."""
    from oocml.datasets import make_parquet_dataset
    from oocml.io import parquet as parquet_module
    from oocml.io import partitions as parts_module
    from oocml.io.partitions import batches

    make_parquet_dataset(tmp_path, rows=60_000, features=4, files=1, row_group_rows=7_000)
    s3.put(f"{tmp_path}/part-00000.parquet", f"{bucket[5:]}/rg/part-00000.parquet")
    monkeypatch.setattr(parts_module, "BATCH_BYTES", 8 * 5 * 2_500)  # 2,500-row batches
    local = pd.concat(batches(partitions(dd.read_parquet(tmp_path))[0]))
    for budget in (10**9, 100_000):  # runs of row groups fetched; each row group streamed
        monkeypatch.setattr(parquet_module, "REMOTE_FETCH_BYTES", budget)
        (part,) = partitions(dd.read_parquet(f"{bucket}/rg/"))
        remote = list(batches(part))
        assert [len(b) for b in remote[:-1]] == [2_500] * (len(remote) - 1)
        pd.testing.assert_frame_equal(pd.concat(remote), local)


def test_a_fetched_file_streams_its_column_chunks(tmp_path, bucket, s3, monkeypatch):
    """A run of row groups fetched into memory is read through small buffers: memory holds
    the fetched bytes and a batch, not a second, whole copy of every column chunk (what
    pyarrow's unbuffered reads made, and what took the S3 layout's peak past 800 MB)."""
    import tracemalloc

    from oocml.datasets import make_parquet_dataset
    from oocml.io import partitions as parts_module
    from oocml.io.partitions import batches

    make_parquet_dataset(tmp_path, rows=400_000, features=9, files=1)  # 32 MB, one row group
    s3.put(f"{tmp_path}/part-00000.parquet", f"{bucket[5:]}/big/part-00000.parquet")
    size = s3.size(f"{bucket[5:]}/big/part-00000.parquet")
    monkeypatch.setattr(parts_module, "BATCH_BYTES", 8 * 10 * 10_000)  # 10,000-row batches
    (part,) = partitions(dd.read_parquet(f"{bucket}/big/"))
    read = batches(part)
    tracemalloc.start()
    try:
        rows = len(next(read))  # the fetch (its transient copies are the filesystem's) is done
        tracemalloc.reset_peak()
        rows += sum(len(batch) for batch in read)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == 400_000
    assert peak < 1.5 * size, (peak / 2**20, size / 2**20)  # a whole copy would add 1x


def test_remote_evaluate_predict_and_predict_into(remote_binary, bucket, s3, tmp_path):
    url, local = remote_binary
    session = oocml.Session()
    session.sql(TRAIN.format(src=f"'{url}'"))
    remote_metrics = session.sql(f"EVALUATE m ON '{url}/'")
    local_metrics = session.sql(f"EVALUATE m ON '{local}'")
    pd.testing.assert_frame_equal(remote_metrics, local_metrics)
    shown = session.sql(f"PREDICT USING m ON '{url}'").compute()
    assert len(shown) == 30_000
    out = f"{bucket}/out"
    assert session.sql(f"PREDICT PROBA USING m ON '{url}' INTO '{out}/'") == out
    session.sql(f"PREDICT PROBA USING m ON '{local}' INTO '{tmp_path / 'out'}'")
    listing = s3.ls(f"{bucket[5:]}/out", refresh=True)
    assert f"{bucket[5:]}/out/{MANIFEST}" in listing
    assert not any("_oocml_staging" in p for p in listing)
    from oocml.io.sources import open_source
    from oocml.plan import Source

    written = open_source(Source(path=out)).compute()
    expected = open_source(Source(path=str(tmp_path / "out"))).compute()
    pd.testing.assert_frame_equal(written.reset_index(drop=True), expected.reset_index(drop=True))
    with pytest.raises(SourceError, match="already holds files.*OVERWRITE"):
        session.sql(f"PREDICT USING m ON '{url}' INTO '{out}'")


def test_overwrite_keeps_foreign_objects_and_replaces_its_own(remote_binary, bucket, s3):
    url, _ = remote_binary
    session = oocml.Session()
    session.sql(TRAIN.format(src=f"'{url}'"))
    out = f"{bucket}/out"
    session.sql(f"PREDICT USING m ON '{url}' INTO '{out}'")
    first = json.loads(s3.cat(f"{out}/{MANIFEST}"))["files"]
    s3.pipe(f"{out}/notes.txt", b"mine")
    s3.pipe(f"{out}/theirs.parquet", b"not ours")
    session.sql(f"PREDICT USING m ON '{url}/part-0000[01].parquet' INTO '{out}' OVERWRITE")
    second = json.loads(s3.cat(f"{out}/{MANIFEST}"))["files"]
    names = {p.rsplit("/", 1)[-1] for p in s3.ls(out, refresh=True)}
    assert names == {"notes.txt", "theirs.parquet", MANIFEST, *second}
    assert not set(first) & names and len(second) == 2
    assert s3.cat(f"{out}/notes.txt") == b"mine"
    from oocml.io.sources import open_source
    from oocml.plan import Source

    assert len(open_source(Source(path=out))) == 10_000  # the manifest's files only


def test_models_and_checkpoints_in_the_bucket(remote_binary, bucket, s3):
    url, local = remote_binary
    session = oocml.Session()
    model = session.sql(TRAIN.format(src=f"'{url}'"))
    assert session.sql(f"SAVE MODEL m TO '{bucket}/models/m.oocml'") == f"{bucket}/models/m.oocml"
    loaded = session.sql(f"LOAD MODEL back FROM '{bucket}/models/m.oocml'")
    np.testing.assert_array_equal(loaded.estimator.coef_, model.estimator.coef_)
    with pytest.raises(ModelFileError, match="cannot read model file.*nothing.oocml.*not found"):
        session.sql(f"LOAD MODEL x FROM '{bucket}/models/nothing.oocml'")
    # A session store in the bucket: models persist across sessions.
    store = f"{bucket}/store/"
    oocml.Session(store).sql(TRAIN.format(src=f"'{local}'"))
    again = oocml.Session(store)
    assert again.catalog.names() == ["m"]
    pd.testing.assert_frame_equal(again.sql(f"EVALUATE m ON '{local}'"),
                                  session.sql(f"EVALUATE m ON '{local}'"))
    again.sql("DROP MODEL m")
    assert oocml.Session(store).catalog.names() == []
    # A checkpoint in the bucket: written during training, removed when it completes.
    frame = dd.read_parquet(local)
    checkpointed = frame.ml.scale().fit_incremental(
        SGDClassifier, target="y", checkpoint=f"{bucket}/ck/run.ckpt", checkpoint_every=1)
    plain = frame.ml.scale().fit_incremental(SGDClassifier, target="y")
    np.testing.assert_array_equal(checkpointed.estimator.coef_, plain.estimator.coef_)
    assert not s3.exists(f"{bucket}/ck/run.ckpt")


def test_remote_csv_json_and_compressed_text(binary_dir, bucket, s3, tmp_path):
    frame = pd.read_parquet(binary_dir)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_csv(tmp_path / "a.csv.gz", index=False)
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    s3.put(str(tmp_path / "a.csv"), f"{bucket[5:]}/csv/a.csv")
    s3.put(str(tmp_path / "a.csv.gz"), f"{bucket[5:]}/gz/a.csv.gz")
    models = {}
    for name, src in [("csv", f"'{bucket}/csv/*.csv'"), ("gz", f"'{bucket}/gz/'"),
                      ("local_gz", f"'{tmp_path}/a.csv.gz'"), ("jsonl", f"'{tmp_path}/a.jsonl'"),
                      ("json", f"'{tmp_path}/a.jsonl' FORMAT json")]:
        models[name] = oocml.Session().sql(TRAIN.format(src=src))
        assert models[name].report.rows == 30_000
    # The same parser (pandas') reads plain and compressed text: the same model.
    np.testing.assert_array_equal(models["gz"].estimator.coef_, models["local_gz"].estimator.coef_)
    np.testing.assert_array_equal(models["jsonl"].estimator.coef_, models["json"].estimator.coef_)
    assert models["csv"].score(dd.read_parquet(binary_dir)) > 0.85


@pytest.mark.parametrize("statement, message", [
    ("TRAIN sgd ON 's3://no-such-bucket-oocml/data/' PREDICT y", r"no data files match 's3://no-such"),
    ("TRAIN sgd ON '{bucket}/nothing/*.parquet' PREDICT y", r"no data files match"),
    ("TRAIN sgd ON 'gs://b/data/' PREDICT y", r'needs gcsfs.*pip install "oocml\[gcs\]"'),
    ("TRAIN sgd ON 'nosuchscheme://b/data/' PREDICT y", r"unknown URL scheme 'nosuchscheme'"),
    ("TRAIN sgd ON 's3:bucket/data' PREDICT y", r"looks like a 's3' URL without '//'"),
    ("TRAIN sgd ON '{bucket}/data/' OPTIONS (endpoint_url = 'http://127.0.0.1:9', "
     "key = 'k', secret = 'SUPERSECRET') PREDICT y", r"does not answer.*check the endpoint"),
    ("TRAIN sgd ON '{bucket}/data/' OPTIONS (secret = 'SUPERSECRET') PREDICT y",
     r"Partial credentials.*set credentials"),
    ("TRAIN sgd ON '{bucket}/data/' OPTIONS (no_such_option = 1) PREDICT y",
     r"storage option the filesystem does not take.*no_such_option"),
])
def test_bad_remote_sources_name_the_url_and_the_fix(bucket, statement, message):
    with pytest.raises(StorageError if "files match" not in message else SourceError,
                       match=message) as caught:
        oocml.Session().sql(statement.format(bucket=bucket))
    assert "SUPERSECRET" not in str(caught.value)


def test_outputs_never_become_a_local_folder_named_like_a_scheme(binary, binary_dir, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = binary.ml.scale().fit_incremental("sgd", target="y")
    session = oocml.Session()
    session.catalog.put("m", model)
    for statement in [f"PREDICT USING m ON '{binary_dir}' INTO 's3:bucket/out'",
                      "SAVE MODEL m TO 's3:b/m.oocml'", "LOAD MODEL m FROM 's3:/b/m.oocml'"]:
        with pytest.raises(StorageError, match="without '//'"):
            session.sql(statement)
    with pytest.raises(StorageError, match="without '//'"):
        model.write_predictions(binary, "gs:bucket/out")
    assert list(tmp_path.iterdir()) == []


def test_secrets_stay_out_of_explain_describe_errors_and_model_files(remote_binary, tmp_path):
    url, _ = remote_binary
    secret = "SUPERSECRET-9f2"
    session = oocml.Session()
    options = f"OPTIONS (key = 'testing', secret = '{secret}', not_an_option = 'x')"
    statement = TRAIN.format(src=f"'{url}' {options}").replace(" AS m", "")
    with pytest.raises(StorageError) as caught:  # an option s3fs does not take
        session.sql(statement)
    assert secret not in str(caught.value)
    good = f"'{url}' OPTIONS (key = 'testing', secret = '{secret}')"
    explained = session.sql(f"EXPLAIN {TRAIN.format(src=good)}")
    assert "secret = '***'" in explained and secret not in explained
    model = session.sql(TRAIN.format(src=good))
    assert secret not in session.sql("DESCRIBE m").to_string()
    model.save(tmp_path / "m.oocml")
    assert secret.encode() not in (tmp_path / "m.oocml").read_bytes()
    from oocml.redaction import redact_statement

    assert secret not in redact_statement(statement) and "secret = '***'" in redact_statement(statement)


def test_session_storage_options_reach_every_url(remote_binary, s3_server, monkeypatch):
    url, _ = remote_binary
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    with pytest.raises(OocmlError):  # no endpoint: the real AWS, which this machine cannot reach
        oocml.Session(storage_options={"endpoint_url": "http://127.0.0.1:9"}).sql(
            TRAIN.format(src=f"'{url}'"))
    session = oocml.Session(storage_options={"endpoint_url": s3_server})
    assert session.sql(TRAIN.format(src=f"'{url}'")).report.rows == 30_000


def test_predict_into_a_bucket_killed_midway_leaves_the_previous_output(remote_binary, bucket, s3,
                                                                       tmp_path):
    """SIGKILL while the parts are being written: the previous output and its manifest stay
    whole, nothing new looks complete, and the next write removes what the killed one left;
    objects oocml did not write are never deleted."""
    url, local = remote_binary
    store = f"{bucket}/store"
    session = oocml.Session(store)
    session.sql(TRAIN.format(src=f"'{local}'"))
    out = f"{bucket}/out"
    session.sql(f"PREDICT USING m ON '{url}' INTO '{out}'")
    s3.pipe(f"{out}/README.txt", b"theirs")
    before = {p: s3.cat(p) for p in s3.find(out)}
    script = slow_predict_script(local, store, out)
    staged = lambda: bool(s3.glob(f"{out}/_oocml_staging/*/*.staged", refresh=True))  # noqa: E731
    killed_when(script, staged)
    s3.invalidate_cache()
    after = {p: s3.cat(p) for p in s3.find(out) if "/_oocml_staging/" not in p}
    assert after == before
    from oocml.io.sources import open_source
    from oocml.plan import Source

    assert len(open_source(Source(path=out))) == 30_000
    session.sql(f"PREDICT USING m ON '{local}/part-00000.parquet' INTO '{out}' OVERWRITE")
    s3.invalidate_cache()
    left = {p.rsplit("/", 1)[-1] for p in s3.find(out)}
    assert "README.txt" in left and not any("_oocml_staging" in p for p in s3.find(out))
    assert len(open_source(Source(path=out))) == 5_000


def test_memory_and_file_urls_read_and_write_like_paths(binary_dir, tmp_path):
    """Two more fsspec filesystems the README names: memory:// (no server) and file://."""
    import fsspec

    memory = fsspec.filesystem("memory")
    memory.put(f"{binary_dir}/", "/oocml-test/data/", recursive=True)
    session = oocml.Session("memory://oocml-test/models/")
    in_memory = session.sql(TRAIN.format(src="'memory://oocml-test/data/'"))
    as_file_url = oocml.Session().sql(TRAIN.format(src=f"'file://{binary_dir}'"))
    local = oocml.Session().sql(TRAIN.format(src=f"'{binary_dir}'"))
    for model in (in_memory, as_file_url):
        np.testing.assert_array_equal(model.estimator.coef_, local.estimator.coef_)
    session.sql("PREDICT USING m ON 'memory://oocml-test/data/' INTO 'memory://oocml-test/out/'")
    assert memory.exists(f"/oocml-test/out/{MANIFEST}")
    assert oocml.Session("memory://oocml-test/models/").catalog.names() == ["m"]
