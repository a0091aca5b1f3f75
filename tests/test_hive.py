"""Hive-partitioned folders (``region=asia/year=2021/...``), as Spark, dask and pyarrow write them:
partition columns as features, in WHERE with partition pruning, and in outputs."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import oocml
from oocml.errors import OocmlError
from oocml.io.partitions import ParquetPart, partitions, whole_partition

REGIONS = np.array(["asia", "europe", "america"])


def _table(rows: int = 24_000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    region = REGIONS[rng.integers(0, 3, rows)]
    year = rng.integers(2020, 2023, rows)
    x0, x1 = rng.normal(size=rows), rng.normal(10, 3, size=rows)
    y = (x0 + (region == "asia") * 1.5 - (year == 2022) + (x1 - 10) / 3 > 0).astype(np.int64)
    return pa.table({"x0": x0, "x1": x1, "region": region, "year": year, "y": y})


@pytest.fixture(scope="module")
def hive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hive") / "sales"
    pq.write_to_dataset(_table(), folder, partition_cols=["region", "year"])
    return folder


def test_partition_columns_are_read_as_dask_reads_them(hive):
    frame = dd.read_parquet(hive)
    parts = partitions(frame)
    assert all(isinstance(p, ParquetPart) for p in parts)
    for ours, theirs in zip([whole_partition(p) for p in parts], dask.compute(*frame.to_delayed())):
        pd.testing.assert_frame_equal(ours, theirs)


def test_partition_columns_are_features_and_kept_in_outputs(hive, tmp_path):
    session = oocml.Session()
    model = session.sql(f"TRAIN sgd ON '{hive}' PREDICT y ENCODE onehot SCALE standard AS m")
    assert set(model.features) == {"x0", "x1", "region", "year"}
    flat = _table().to_pandas()
    without = oocml.Session().sql(f"TRAIN sgd ON '{hive}' PREDICT y FEATURES x0, x1 SCALE standard")
    test = dd.read_parquet(hive)
    assert model.score(test) > without.score(test) + 0.03  # region and year carry signal
    out = model.predictions(test, keep=["region", "year"]).compute()
    assert len(out) == len(flat) and set(out["region"].astype(str)) == set(REGIONS)
    session.sql(f"PREDICT USING m ON '{hive}' INTO '{tmp_path / 'out'}'")
    assert len(pd.read_parquet(tmp_path / "out")) == len(flat)


def test_where_on_a_partition_column_opens_only_matching_folders(tmp_path):
    """Every file outside region=asia is spoiled, except the first one, from which dask reads
    the data set's schema: opening any other would fail."""
    folder = tmp_path / "sales"
    pq.write_to_dataset(_table(), folder, partition_cols=["region", "year"])
    first, *rest = sorted(folder.rglob("*.parquet"))
    assert "region=america" in str(first)
    for path in rest:
        if "region=asia" not in str(path):
            path.write_bytes(b"not parquet: opening this file is a bug")
    session = oocml.Session()
    statement = (f"TRAIN sgd ON '{folder}' PREDICT y WHERE region = 'asia' AND x0 > -1 "
                 "FEATURES x0, x1, year ENCODE onehot SCALE standard AS asia")
    model = session.sql(statement)
    flat = _table().to_pandas()
    assert model.report.rows == int(((flat.region == "asia") & (flat.x0 > -1)).sum())
    assert "pushed down to parquet" in session.sql(f"EXPLAIN {statement}")
    with pytest.raises(OocmlError, match="not a readable parquet file"):  # without WHERE
        oocml.Session().sql(f"TRAIN sgd ON '{folder}' PREDICT y FEATURES x0, x1")


def test_remote_hive_dataset_is_the_local_one(hive, bucket, s3):
    s3.put(f"{hive}/", f"{bucket[5:]}/sales/", recursive=True)
    statement = "TRAIN sgd ON '{}' PREDICT y ENCODE onehot SCALE standard EPOCHS 2 SHUFFLE"
    remote = oocml.Session().sql(statement.format(f"{bucket}/sales"))
    local = oocml.Session().sql(statement.format(hive))
    np.testing.assert_array_equal(remote.estimator.coef_, local.estimator.coef_)
    pruned = oocml.Session().sql(f"TRAIN sgd ON '{bucket}/sales' PREDICT y WHERE year = 2021 "
                                 "FEATURES x0, x1 SCALE standard")
    assert pruned.report.rows == int((_table().to_pandas().year == 2021).sum())


def test_a_file_outside_the_partition_folders_is_named(tmp_path):
    folder = tmp_path / "sales"
    pq.write_to_dataset(_table(), folder, partition_cols=["region"])
    pq.write_table(_table().drop(["region"]), folder / "stray.parquet")
    with pytest.raises(OocmlError, match="stray.parquet|region"):
        oocml.Session().sql(f"TRAIN sgd ON '{folder}' PREDICT y ENCODE onehot SCALE standard")
