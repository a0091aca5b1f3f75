"""The engine's promises: passes over the data, bounded memory, clear errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, SGDClassifier

import oocml
from oocml.errors import (
    ColumnNotFoundError,
    DataError,
    OocmlError,
    ParameterError,
    UnknownAlgorithmError,
    UnseenLabelError,
)

READS: list[int] = []
_LOCK = threading.Lock()


def _counted_read(path: str) -> pd.DataFrame:
    with _LOCK:
        READS.append(int(Path(path).stem.split("-")[-1]))
    return pd.read_parquet(path)


def counted_frame(folder: Path) -> dd.DataFrame:
    """A dask DataFrame whose every partition read is recorded in READS."""
    files = sorted(str(p) for p in folder.glob("*.parquet"))
    READS.clear()
    return dd.from_map(_counted_read, files, meta=pd.read_parquet(files[0]).iloc[:0])


@pytest.mark.parametrize("epochs", [1, 3])
def test_scale_and_sgd_read_the_data_one_plus_epochs_times(binary_dir, epochs):
    frame = counted_frame(binary_dir)
    model = frame.ml.scale().fit_incremental(SGDClassifier, target="y", epochs=epochs,
                                             cache=False)
    assert sorted(READS) == sorted(list(range(6)) * (1 + epochs))
    assert model.report.passes == 1 + epochs
    READS.clear()  # with the prepared-block cache (the default for several epochs): twice
    frame.ml.scale().fit_incremental(SGDClassifier, target="y", epochs=epochs)
    assert sorted(READS) == sorted(list(range(6)) * (1 + min(epochs, 1)))


def test_statistics_are_fused_with_class_discovery(multiclass_dir):
    frame = counted_frame(multiclass_dir)
    model = frame.ml.scale("minmax").scale("standard").fit_incremental(SGDClassifier, target="y")
    assert model.classes == [0, 1, 2]
    assert len(READS) == 2 * 4  # two scalers + classes + counts in one pass, then training


# The child's own high-water mark (VmHWM): ru_maxrss of a child started by vfork starts from
# its parent's peak, which would hide the child's. Two epochs: the second is read from the
# prepared-block cache (its default), so these bounds hold for the cache too. argv[2] "shuffle":
# a SHUFFLE fit (window 4), whose mixer draws each partition's rows from spans of two blocks.
PEAK_RSS_SCRIPT = """
import json, re, sys
import dask, dask.dataframe as dd, oocml
from oocml.io.partitions import ParquetPart, partitions
from sklearn.linear_model import SGDClassifier
with dask.config.set(scheduler="threads"):
    ddf = dd.read_parquet(sys.argv[1])
    direct = all(isinstance(p, ParquetPart) for p in partitions(ddf))
    model = ddf.ml.scale().fit_incremental(SGDClassifier, target="y", epochs=2,
                                           shuffle=sys.argv[2:] == ["shuffle"])
peak = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)
print(json.dumps({"rss_mb": int(peak) / 1024, "rows": model.report.rows, "direct": direct,
                  "cached": model.report.cached_epochs}))
"""


def _peak_rss(folder: Path, *flags: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PEAK_RSS_SCRIPT, str(folder), *flags],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a memory peak in child processes
def test_peak_memory_does_not_grow_with_the_data(tmp_path):
    from oocml.datasets import make_parquet_dataset

    small, large = tmp_path / "small", tmp_path / "large"
    make_parquet_dataset(small, rows=4 * 100_000, features=20, files=4)
    make_parquet_dataset(large, rows=40 * 100_000, features=20, files=40)  # 640 MB as float64
    a, b = _peak_rss(small), _peak_rss(large)
    assert b["rows"] == 10 * a["rows"]
    # Materialising the large set would add >= 640 MB; streaming keeps the peak flat.
    assert b["rss_mb"] < a["rss_mb"] * 1.25 + 40, (a, b)


@pytest.mark.slow  # a memory peak in child processes
def test_peak_memory_does_not_grow_with_the_partition_size(tmp_path):
    """One file of 2M rows (320 MB of float64, one partition per row group) against one of
    200k rows: the engine holds batches and blocks, never a partition."""
    from oocml.datasets import make_parquet_dataset

    small, large = tmp_path / "small", tmp_path / "large"
    make_parquet_dataset(small, rows=200_000, features=20, files=1)
    make_parquet_dataset(large, rows=2_000_000, features=20, files=1, row_group_rows=2_000_000)
    a, b = _peak_rss(small), _peak_rss(large)
    assert b["rows"] == 10 * a["rows"] and a["direct"] and b["direct"]
    assert a["cached"] == b["cached"] == 1  # epoch 2 came from the cache
    # Holding one such partition (or its prepared blocks) would add >= 320 MB.
    assert b["rss_mb"] < a["rss_mb"] + 120, (a, b)


@pytest.mark.slow  # a memory peak in child processes
def test_peak_memory_does_not_grow_when_dask_aggregates_row_groups(tmp_path):
    """One file of 2M rows in 250k-row groups, which dask's plan groups into partitions of
    several row groups: still read directly, a batch at a time."""
    from oocml.datasets import make_parquet_dataset

    small, large = tmp_path / "small", tmp_path / "large"
    make_parquet_dataset(small, rows=250_000, features=20, files=1, row_group_rows=250_000)
    make_parquet_dataset(large, rows=2_000_000, features=20, files=1, row_group_rows=250_000)
    a, b = _peak_rss(small), _peak_rss(large)
    assert b["rows"] == 8 * a["rows"] and a["direct"] and b["direct"]
    assert b["rss_mb"] < a["rss_mb"] + 120, (a, b)


@pytest.mark.slow  # a memory peak in child processes
def test_a_shuffled_fit_holds_its_window_not_its_data(tmp_path):
    """SHUFFLE reads 4 partitions at once and mixes their rows, yet holds spans of blocks, not
    partitions: 40 files peak as 4 do (README, *Sorted data*)."""
    from oocml.datasets import make_parquet_dataset

    small, large = tmp_path / "small", tmp_path / "large"
    make_parquet_dataset(small, rows=4 * 100_000, features=20, files=4)
    make_parquet_dataset(large, rows=40 * 100_000, features=20, files=40)  # 640 MB as float64
    a, b = _peak_rss(small, "shuffle"), _peak_rss(large, "shuffle")
    assert b["rows"] == 10 * a["rows"] and a["cached"] == b["cached"] == 1
    assert b["rss_mb"] < a["rss_mb"] * 1.25 + 40, (a, b)


@pytest.mark.slow  # a memory peak in child processes
def test_a_shuffled_fit_mixes_one_big_file_a_span_at_a_time(tmp_path):
    """The hardest case for the shuffle buffer: one file of 2M rows in one row group (320 MB
    of float64, one partition). Its rows are drawn from 16 MB spans, never the whole partition."""
    from oocml.datasets import make_parquet_dataset

    small, large = tmp_path / "small", tmp_path / "large"
    make_parquet_dataset(small, rows=200_000, features=20, files=1)
    make_parquet_dataset(large, rows=2_000_000, features=20, files=1, row_group_rows=2_000_000)
    a, b = _peak_rss(small, "shuffle"), _peak_rss(large, "shuffle")
    assert b["rows"] == 10 * a["rows"] and a["direct"] and b["direct"]
    assert a["cached"] == b["cached"] == 1  # epoch 2 came from the cache, mixed across it
    # Holding the partition, or permuting it whole, would add >= 320 MB.
    assert b["rss_mb"] < a["rss_mb"] + 120, (a, b)


# -- errors name the culprit -----------------------------------------------------------------

def test_missing_target_lists_columns_and_suggests(binary):
    with pytest.raises(ColumnNotFoundError) as info:
        binary.ml.fit_incremental(SGDClassifier, target="Y")
    message = str(info.value)
    assert "'Y'" in message and "'x0'" in message and "did you mean 'y'" in message


def test_missing_feature_column(binary):
    with pytest.raises(ColumnNotFoundError, match="feature column 'x_1'.*did you mean 'x1'"):
        binary.ml.fit_incremental(SGDClassifier, target="y", features=["x0", "x_1"])


def test_non_numeric_feature_without_encoder(binary):
    frame = binary.assign(city="paris")
    with pytest.raises(DataError, match=r"'city'.*ENCODE"):
        frame.ml.fit_incremental(SGDClassifier, target="y")


def _spoil_first_row(frame: pd.DataFrame, column: str, value: float) -> pd.DataFrame:
    frame = frame.copy()
    frame.iloc[0, frame.columns.get_loc(column)] = value
    return frame


def test_nan_in_a_feature_names_the_column(binary):
    frame = binary.map_partitions(_spoil_first_row, "x2", np.nan)
    with pytest.raises(DataError, match=r"NaN.*'x2'.*IMPUTE"):
        frame.ml.scale().fit_incremental(SGDClassifier, target="y")


def test_infinity_in_a_feature(binary):
    frame = binary.map_partitions(_spoil_first_row, "x1", np.inf)
    with pytest.raises(DataError, match=r"infinite.*'x1'"):
        frame.ml.fit_incremental(SGDClassifier, target="y")


def test_nan_in_target(regression):
    frame = regression.map_partitions(_spoil_first_row, "y", np.nan)
    with pytest.raises(DataError, match=r"target column 'y' has \d+ missing"):
        frame.ml.fit_incremental("sgd_regressor", target="y")


def test_single_class_target(binary):
    frame = binary.assign(y=0)
    with pytest.raises(DataError, match="single class"):
        frame.ml.fit_incremental(SGDClassifier, target="y")


def test_label_unseen_by_the_given_classes(binary):
    with pytest.raises(UnseenLabelError, match=r"target value\(s\) \[1\].*classes \[0, 2\]"):
        binary.ml.fit_incremental(SGDClassifier, target="y", classes=[0, 2])


def test_bad_estimator_parameters_fail_before_reading(binary_dir):
    frame = counted_frame(binary_dir)
    with pytest.raises(ParameterError, match="did you mean 'alpha'"):
        frame.ml.fit_incremental(SGDClassifier, target="y", alpah=0.1)
    with pytest.raises(ParameterError, match="alpha"):
        frame.ml.fit_incremental(SGDClassifier, target="y", alpha="lots")
    with pytest.raises(ParameterError, match="partial_fit"):
        frame.ml.fit_incremental(LogisticRegression, target="y")
    with pytest.raises(UnknownAlgorithmError, match="did you mean 'sgd'"):
        frame.ml.fit_incremental("sdg", target="y")
    with pytest.raises(ParameterError, match="epochs"):
        frame.ml.fit_incremental(SGDClassifier, target="y", epochs=0)
    with pytest.raises(ParameterError, match="scaling 'zscore'"):
        frame.ml.scale("zscore")
    assert READS == []


def test_every_user_error_is_an_oocml_error(binary):
    with pytest.raises(OocmlError):
        binary.ml.fit_incremental(SGDClassifier, target="nope")
    with pytest.raises(OocmlError):
        oocml.load_model("/no/such/model.oocml")


def test_direct_parquet_reads_equal_dasks_partitions(binary_dir):
    import dask

    from oocml.io.partitions import parquet_pieces, partitions, whole_partition

    frame = dd.read_parquet(binary_dir)[["x3", "x0", "y"]]
    assert parquet_pieces(frame) is not None
    assert len(parquet_pieces(frame).pieces) < 6  # dask fuses files when few columns are read
    ours = [whole_partition(p) for p in partitions(frame)]
    theirs = dask.compute(*frame.to_delayed())
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        pd.testing.assert_frame_equal(a, b)
    # Not a plain read: the generic path.
    assert parquet_pieces(frame[frame.x0 > 0]) is None
    assert parquet_pieces(counted_frame(binary_dir)) is None


def test_direct_reads_apply_filters_as_dask_does(binary_dir):
    """A read with ``filters`` (pruned files and row groups, rows filtered) keeps the direct
    reader, and its rows are dask's, even when the filtered column is not selected."""
    import dask

    from oocml.io.partitions import ParquetPart, partitions, whole_partition

    filters = [[("x0", ">", 0), ("y", "in", [1])], [("x1", "<=", -3.0)]]
    frame = dd.read_parquet(binary_dir, filters=filters)[["x2", "y"]]
    parts = partitions(frame)
    assert all(isinstance(p, ParquetPart) for p in parts)
    ours = pd.concat([whole_partition(p) for p in parts])
    theirs = pd.concat(dask.compute(*frame.to_delayed()))
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs.reset_index(drop=True))


def test_direct_reads_split_row_groups_like_dask(tmp_path):
    import dask

    from oocml.datasets import make_parquet_dataset
    from oocml.io.partitions import parquet_pieces, partitions, whole_partition

    make_parquet_dataset(tmp_path, rows=40_000, features=3, files=2, row_group_rows=5_000)
    frame = dd.read_parquet(tmp_path, split_row_groups=True)
    pieces = parquet_pieces(frame).pieces
    assert len(pieces) == frame.npartitions
    assert sum(len(group) for group in pieces) == 8  # 2 files x 4 row groups
    for a, b in zip([whole_partition(p) for p in partitions(frame)], dask.compute(*frame.to_delayed())):
        pd.testing.assert_frame_equal(a, b)


def _empty_odd_partitions(frame: pd.DataFrame, partition_info=None) -> pd.DataFrame:
    return frame.iloc[:0] if partition_info["number"] % 2 else frame


@pytest.mark.parametrize("strategy", ["sequential", "average"])
def test_empty_partitions_are_skipped(binary, strategy):
    """A WHERE that keeps no row of some partitions, or an empty file, trains on the rest."""
    thinned = binary.map_partitions(_empty_odd_partitions, meta=binary._meta)
    model = thinned.ml.scale().fit_incremental(SGDClassifier, target="y", strategy=strategy,
                                               random_state=0)
    assert model.report.rows == len(thinned) < len(binary)
    assert model.score(binary) > 0.85


def test_direct_reads_when_dask_aggregates_row_groups(tmp_path):
    """Above its blocksize dask plans a partition as a list of row-group pieces: still read
    directly, the same frames as dask's."""
    import dask

    from oocml.datasets import make_parquet_dataset
    from oocml.io.partitions import parquet_pieces, partitions, whole_partition

    make_parquet_dataset(tmp_path, rows=40_000, features=3, files=1, row_group_rows=5_000)
    frame = dd.read_parquet(tmp_path, blocksize="300kB")
    assert parquet_pieces(frame) is not None
    for a, b in zip([whole_partition(p) for p in partitions(frame)], dask.compute(*frame.to_delayed())):
        pd.testing.assert_frame_equal(a, b)
