"""The fast paths give the very numbers of the slow ones: batched reads, rows gathered from
columns with the fitted steps run in place, predictions read and written batch by batch."""

from __future__ import annotations

import os

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.preprocessing import StandardScaler

import oocml.blocks
import oocml.io.partitions
from oocml.blocks import ROW_CHUNK, apply_rows, numeric_arrays, numeric_head, side_by_side, standardized_rows
from oocml.datasets import make_parquet_dataset
from oocml.io.partitions import batches, partitions, whole_partition


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of ~1,000 rows: every partition of the test data is read in several."""
    monkeypatch.setattr(oocml.io.partitions, "BATCH_BYTES", 1)


@pytest.fixture(scope="module")
def holes_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("holes")
    make_parquet_dataset(folder, rows=12_000, features=4, files=3, seed=4)
    for path in sorted(folder.glob("*.parquet")):
        frame = pd.read_parquet(path)
        frame.loc[frame.index % 7 == 0, "x1"] = np.nan
        frame.to_parquet(path)
    return folder


@pytest.mark.parametrize("columns", [["x3", "x0", "y"], None])
def test_batches_are_the_partition_cut_in_order(binary_dir, small_batches, columns):
    frame = dd.read_parquet(binary_dir)
    frame = frame[columns] if columns else frame  # few columns: dask fuses files per partition
    for part, theirs in zip(partitions(frame), frame.to_delayed(), strict=True):
        pieces = list(batches(part))
        assert len(pieces) > 1
        pd.testing.assert_frame_equal(pd.concat(pieces), whole_partition(part), check_column_type=False)
        pd.testing.assert_frame_equal(whole_partition(part), theirs.compute())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("steps", [("standard",), ("minmax",), ("maxabs",), ("mean", "standard"),
                                   ("median", "minmax")])
def test_rows_from_columns_equal_the_pipeline_bit_for_bit(binary_dir, holes_dir, tmp_path,
                                                          dtype, steps):
    folder = holes_dir if steps[0] in ("mean", "median") else binary_dir
    if dtype == "float32":
        source, folder = folder, tmp_path / "f32"
        folder.mkdir()
        for path in sorted(source.glob("*.parquet")):
            frame = pd.read_parquet(path)
            frame.astype({c: "float32" for c in frame.columns if c != "y"}).to_parquet(
                folder / path.name)
    chain = dd.read_parquet(folder).ml
    for step in steps:
        chain = chain.impute(step) if step in ("mean", "median") else chain.scale(step)
    model = chain.fit_incremental(SGDClassifier(loss="log_loss"), target="y")
    assert numeric_head(model.pipeline) is not None
    frame = pd.read_parquet(folder)[model.feature_names]
    prep = model.pipeline[:-1]
    assert len(frame) > ROW_CHUNK and len(frame) % ROW_CHUNK
    for checked in (True, False):  # as training runs: finiteness checked by the statistics pass
        with sklearn.config_context(assume_finite=checked):
            fast = apply_rows(prep, frame, "transform")
        assert fast.flags.c_contiguous and fast.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(fast, prep.transform(frame))
    for method in ("predict", "predict_proba", "decision_function"):
        np.testing.assert_array_equal(apply_rows(model.pipeline, frame, method),
                                      getattr(model.pipeline, method)(frame))


@pytest.mark.parametrize("dtypes", [["float64"] * 3, ["float32"] * 3, ["float32", "float64", "int64"]])
@pytest.mark.parametrize("params", [{}, {"with_mean": False}, {"with_std": False}])
def test_standardized_rows_are_the_scalers_bit_for_bit(dtypes, params):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{j}": (rng.normal(3, 7, 2 * ROW_CHUNK + 5) * 100).astype(dtype)
                          for j, dtype in enumerate(dtypes)})
    if dtypes[0] != "int64":
        frame.loc[::9, "x0"] = np.nan
    arrays = numeric_arrays(frame, list(frame.columns))
    scaler = StandardScaler(**params).fit(side_by_side(arrays))
    fast = standardized_rows(arrays, scaler)
    slow = scaler.transform(side_by_side(arrays))
    assert fast.flags.c_contiguous and fast.dtype == slow.dtype
    np.testing.assert_array_equal(fast, slow)


def test_written_predictions_equal_predict_row_for_row(binary_dir, regression_dir, tmp_path,
                                                       small_batches):
    binary, regression = dd.read_parquet(binary_dir), dd.read_parquet(regression_dir)
    classifier = binary.ml.scale().fit_incremental(SGDClassifier(loss="log_loss"), target="y")
    regressor = regression.ml.scale().fit_incremental(SGDRegressor, target="y")
    cases = [(classifier, binary, False, "prediction", "predict"),
             (classifier, binary, True, "proba_1", "predict_proba"),
             (regressor, regression, False, "prediction", "predict")]
    for i, (model, data, proba, column, method) in enumerate(cases):
        folder = model.write_predictions(data, tmp_path / f"out{i}", proba=proba, keep=["x0"])
        files = sorted(f for f in os.listdir(folder) if f.endswith(".parquet"))
        assert len(files) == data.npartitions
        written = pd.concat([pd.read_parquet(f"{folder}/{name}") for name in files])
        expected = getattr(model, method)(data).compute()
        expected = expected[column] if proba else expected
        np.testing.assert_array_equal(written[column].to_numpy(), expected.to_numpy())
        np.testing.assert_array_equal(written.index.to_numpy(), expected.index.to_numpy())
        np.testing.assert_array_equal(written["x0"].to_numpy(), data["x0"].compute().to_numpy())


def test_the_model_depends_on_neither_prefetch_nor_scheduler(binary, small_batches, monkeypatch):
    # SHUFFLE mixes blocks of BLOCK_BYTES of rows, whatever the batches: small ones too
    monkeypatch.setattr(oocml.blocks, "BLOCK_BYTES", 8_000)
    models = []
    for prefetch, scheduler in [(1, "sync"), (3, "threads"), (2, "threads")]:
        with dask.config.set(scheduler=scheduler):
            models.append(binary.ml.scale().fit_incremental(
                SGDClassifier, target="y", prefetch=prefetch, shuffle=True, epochs=2))
    assert models[0].report.blocks_seen > 2 * 2 * binary.npartitions  # several blocks each
    for other in models[1:]:
        np.testing.assert_array_equal(other.estimator.coef_, models[0].estimator.coef_)
        assert other.report.blocks_seen == models[0].report.blocks_seen
