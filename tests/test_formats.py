"""CSV and JSON lines, plain and compressed (gzip, bz2, zstd, xz), by extension or FORMAT."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import oocml
from oocml.errors import SourceError
from oocml.io.partitions import TextPart, partitions
from oocml.io.sources import open_source, split_name
from oocml.plan import Source

TRAIN = "TRAIN sgd ON {} PREDICT y SCALE standard EPOCHS 2"


@pytest.fixture(scope="module")
def rows(binary_dir):
    frame = pd.read_parquet(binary_dir)
    frame.loc[frame.index[::97], "x3"] = np.nan  # missing values survive every format
    return frame


@pytest.mark.parametrize("name, expected", [
    ("a.csv", ("csv", None)), ("a.CSV.GZ", ("csv", "gzip")), ("a.csv.bz2", ("csv", "bz2")),
    ("a.csv.zst", ("csv", "zstd")), ("a.csv.xz", ("csv", "xz")), ("a.jsonl", ("json", None)),
    ("a.ndjson.gz", ("json", "gzip")), ("a.parquet", ("parquet", None)), ("a.txt", (None, None)),
])
def test_extensions_name_format_and_compression(name, expected):
    assert split_name(name) == expected


def test_every_compression_gives_the_same_model(rows, tmp_path):
    models = {}
    for suffix in ["csv", "csv.gz", "csv.bz2", "csv.zst", "csv.xz", "jsonl.gz"]:
        folder = tmp_path / suffix
        folder.mkdir()
        for i, start in enumerate(range(0, len(rows), 10_000)):
            chunk = rows.iloc[start:start + 10_000]
            path = folder / f"part-{i}.{suffix}"
            if suffix.startswith("csv"):
                chunk.to_csv(path, index=False)
            else:
                chunk.to_json(path, orient="records", lines=True)
        if suffix != "csv":  # compressed: one streamed partition per file
            assert all(isinstance(p, TextPart) for p in partitions(open_source(Source(str(folder)))))
        models[suffix] = oocml.Session().sql(TRAIN.format(f"'{folder}'") + " IMPUTE mean")
        assert models[suffix].report.rows == len(rows)
    for suffix in ["csv.bz2", "csv.zst", "csv.xz"]:
        np.testing.assert_array_equal(models[suffix].estimator.coef_, models["csv.gz"].estimator.coef_)
    np.testing.assert_allclose(models["csv"].estimator.coef_, models["csv.gz"].estimator.coef_,
                               rtol=1e-9)


def test_compressed_parts_are_read_a_batch_at_a_time(rows, tmp_path, monkeypatch):
    from oocml.io import partitions as parts_module
    from oocml.io.partitions import batches

    rows.to_csv(tmp_path / "one.csv.gz", index=False)
    monkeypatch.setattr(parts_module, "BATCH_BYTES", 8 * 7 * 2_000)
    (part,) = partitions(open_source(Source(str(tmp_path / "one.csv.gz")))[["x0", "y"]])
    got = list(batches(part))
    assert [len(b) for b in got[:-1]] == [2_000] * (len(got) - 1)
    pd.testing.assert_frame_equal(pd.concat(got), rows[["x0", "y"]].reset_index(drop=True),
                                  check_exact=False, rtol=1e-12)


def test_json_lines_by_extension_or_format(rows, tmp_path):
    rows.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    (tmp_path / "b").mkdir()
    rows.to_json(tmp_path / "b" / "data.log", orient="records", lines=True)
    by_extension = oocml.Session().sql(TRAIN.format(f"'{tmp_path}/a.jsonl'") + " IMPUTE mean")
    by_format = oocml.Session().sql(TRAIN.format(f"'{tmp_path}/b' FORMAT json") + " IMPUTE mean")
    np.testing.assert_array_equal(by_extension.estimator.coef_, by_format.estimator.coef_)


def test_unknown_and_mixed_formats_are_named(rows, tmp_path):
    rows.head(10).to_csv(tmp_path / "a.txt", index=False)
    with pytest.raises(SourceError, match=r"a\.txt' has an unknown or unsupported format.*FORMAT"):
        open_source(Source(str(tmp_path / "a.txt")))
    assert len(open_source(Source(str(tmp_path / "a.txt"), format="csv"))) == 10
    rows.head(10).to_csv(tmp_path / "b.csv", index=False)
    rows.head(10).to_json(tmp_path / "c.jsonl", orient="records", lines=True)
    with pytest.raises(SourceError, match="mixes csv and json files"):
        open_source(Source(str(tmp_path / "[bc].*")))
    with pytest.raises(SourceError, match="unknown format 'avro'"):
        open_source(Source(str(tmp_path / "b.csv"), format="avro"))
    (tmp_path / "broken.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(SourceError, match=r"broken\.csv\.gz' is not readable gzip csv"):
        oocml.Session().sql(TRAIN.format(f"'{tmp_path}/broken.csv.gz'"))
