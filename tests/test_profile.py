"""``profile()`` / ``ddf.ml.profile()``: one row per column from one parallel pass, with the
numbers pandas' ``describe()`` and ``value_counts()`` give on the same rows in memory; on real
parquet files (several files, strings with None, categoricals, nullable ints, NaN, hive
folders), pandas input, a WHERE and a select(), and a real LocalCluster."""

from __future__ import annotations

import re
import warnings

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from oocml.errors import ColumnNotFoundError, DataError, ParameterError
from oocml.evaluation import profile as profile_module
from oocml.evaluation.profile import COLUMNS, profile

CITIES = np.array(["paris", "rome", "oslo", "lima", "kyiv", "rabat", "quito", "hanoi"])
WEIGHTS = np.array([30, 20, 14, 10, 9, 8, 5, 4]) / 100  # distinct counts: no ties at the top


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = CITIES[rng.choice(len(CITIES), rows, p=WEIGHTS)].astype(object)
    city[rng.random(rows) < 0.1] = None
    x = rng.normal(5, 2, rows)
    x[rng.random(rows) < 0.05] = np.nan
    count = pd.array(rng.integers(-3, 100, rows), dtype="Int64")
    count[rng.random(rows) < 0.07] = pd.NA
    return pd.DataFrame({
        "city": city,
        "size": pd.Categorical(rng.choice(["S", "M", "L"], rows, p=[0.5, 0.3, 0.2]),
                               categories=["S", "M", "L", "XL"]),  # XL never occurs
        "n": rng.integers(0, 1_000, rows),
        "count": count,
        "x": x,
        "flag": rng.random(rows) < 0.3,
    })


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Four parquet files of different lengths, several row groups each."""
    path = tmp_path_factory.mktemp("profile")
    for i, rows in enumerate((3_000, 5_000, 1_500, 4_200)):
        _frame(rows, seed=i).to_parquet(path / f"part-{i}.parquet", row_group_size=1_000)
    return path


@pytest.fixture(scope="module")
def hive(tmp_path_factory):
    path = tmp_path_factory.mktemp("hive") / "sales"
    rng = np.random.default_rng(5)
    rows = 6_000
    table = pa.table({"x": rng.normal(size=rows),
                      "region": np.array(["asia", "europe", "america"])[
                          rng.choice(3, rows, p=[0.5, 0.3, 0.2])],
                      "year": rng.choice([2020, 2021, 2022], rows, p=[0.2, 0.3, 0.5])})
    pq.write_to_dataset(table, path, partition_cols=["region", "year"])
    return path


def expected_top(values: pd.Series, n: int = 5) -> str:
    """pandas' value counts, most frequent first (ties by text), as the profile writes them."""
    counts = values.value_counts(dropna=True)
    counts = counts[counts > 0]
    ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))[:n]
    return ", ".join(f"{value} ({count})" for value, count in ranked)


def assert_matches_pandas(result: pd.DataFrame, data: pd.DataFrame) -> None:
    """Every row of ``result`` holds pandas' numbers for that column of ``data`` in memory."""
    assert list(result.columns) == list(COLUMNS)
    assert list(result["column"]) == list(data.columns)
    for _, row in result.iterrows():
        values = data[row["column"]]
        assert row["missing"] == values.isna().sum(), row["column"]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            described = values.astype("Float64" if values.dtype == "boolean" else float).describe()
            assert row["rows"] == described["count"], row["column"]
            assert np.isclose(row["mean"], described["mean"], equal_nan=True)
            assert np.isclose(row["std"], described["std"], equal_nan=True)
            assert row["min"] == described["min"] and row["max"] == described["max"]
            assert row["distinct"] is None and row["top"] is None
        else:
            assert row["rows"] == values.notna().sum(), row["column"]
            counts = values.value_counts()
            assert row["distinct"] == (counts > 0).sum(), row["column"]
            assert row["top"] == expected_top(values), row["column"]
            assert np.isnan([row["mean"], row["std"], row["min"], row["max"]]).all()


def test_profile_of_parquet_files_matches_pandas(folder):
    ddf = dd.read_parquet(folder)
    assert ddf.npartitions > 1
    result = ddf.ml.profile()
    assert_matches_pandas(result, pd.read_parquet(folder))
    assert result["rows"].sum() + result["missing"].sum() == 6 * len(pd.read_parquet(folder))
    assert list(result["dtype"]) == [str(t) for t in ddf.dtypes]  # from the metadata
    by = result.set_index("column")
    assert by.loc["size", "distinct"] == 3  # the unused category is no value
    assert by.loc["flag", "dtype"] == "bool" and 0 < by.loc["flag", "mean"] < 1
    assert by.loc["count", "missing"] > 0 and by.loc["count", "min"] == -3


def test_profile_function_and_accessor_agree_on_any_scheduler(folder):
    ddf = dd.read_parquet(folder)
    threaded = profile(ddf)
    with dask.config.set(scheduler="sync"):
        pd.testing.assert_frame_equal(ddf.ml.profile(), threaded)  # bit for bit
    pd.testing.assert_frame_equal(ddf.ml.scale().profile(), threaded)  # steps are not applied


def test_top_values_are_written_as_text():
    data = pd.DataFrame({"city": ["paris"] * 120 + ["rome"] * 80 + ["oslo"] * 3 + [None] * 7})
    row = data.ml.profile().iloc[0]
    assert row["top"] == "paris (120), rome (80), oslo (3)"
    assert (row["rows"], row["missing"], row["distinct"]) == (203, 7, 3)


def test_where_and_select_profile_the_chosen_rows_and_columns(folder):
    ddf = dd.read_parquet(folder)
    data = pd.read_parquet(folder)
    kept = data[(data["x"] > 5) & data["x"].notna()]
    chosen = ddf.ml.where("x > 5").select(["x", "city", "size"]).profile()
    assert_matches_pandas(chosen, kept[["city", "size", "x"]])  # in the data's column order
    rest = ddf.ml.select(exclude=["n", "flag"]).where("city = 'rome'").profile()
    assert_matches_pandas(rest, data[data["city"] == "rome"].drop(columns=["n", "flag"]))


def test_hive_partition_columns(hive):
    ddf = dd.read_parquet(hive)
    result = ddf.ml.profile()
    data = pd.read_parquet(hive)
    assert_matches_pandas(result, data[list(ddf.columns)])
    by = result.set_index("column")
    assert by.loc["region", "top"] == expected_top(data["region"])
    assert by.loc["year", "distinct"] == 3 and by.loc["year", "top"].startswith("2022 (")
    only = ddf.ml.where("region = 'asia'").profile()
    assert_matches_pandas(only, data[data["region"] == "asia"][list(ddf.columns)])


def test_pandas_input(folder):
    data = pd.read_parquet(folder)
    result = data.ml.profile()
    assert_matches_pandas(result, data)
    assert list(result["dtype"]) == [str(t) for t in data.dtypes]  # pandas' own dtypes
    assert list(profile(data, columns=["n", "x"])["column"]) == ["n", "x"]


def test_infinities_are_values_as_in_pandas():
    data = pd.DataFrame({"up": [1.0, np.inf, np.nan], "down": [-np.inf, 2.0, 3.0],
                         "both": [np.inf, -np.inf, 1.0], "only": [np.inf, np.inf, np.nan]})
    with warnings.catch_warnings(), dask.config.set(scheduler="sync"):
        warnings.simplefilter("error")  # the profile computes quietly
        result = dd.from_pandas(data, npartitions=2).ml.profile()
    with np.errstate(invalid="ignore"):  # pandas' describe() warns about inf - inf
        assert_matches_pandas(result, data)
    assert list(result["max"]) == [np.inf, 3.0, np.inf, np.inf]
    assert list(result["min"]) == [1.0, -np.inf, -np.inf, np.inf]


def test_nullable_booleans_and_mixed_objects():
    data = pd.DataFrame({"ok": pd.array([True, None, False, True], dtype="boolean"),
                         "mixed": pd.Series([1, "a", None, 1], dtype=object),
                         "text": pd.array(["u", pd.NA, "v", "u"], dtype="string")})
    result = dd.from_pandas(data, npartitions=2).ml.profile()
    assert_matches_pandas(result, data)
    assert list(result["top"]) == [None, "1 (2), a (1)", "u (2), v (1)"]


def test_empty_data_gives_zero_rows(folder, tmp_path):
    data = pd.read_parquet(folder)
    for result in (profile(data.iloc[:0]),
                   dd.read_parquet(folder).ml.where("n > 5000").profile()):
        assert list(result["column"]) == list(data.columns)
        assert (result["rows"] == 0).all() and (result["missing"] == 0).all()
        assert result["mean"].isna().all() and result["std"].isna().all()
        assert result.set_index("column").loc["city", "distinct"] == 0
    data.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    assert (dd.read_parquet(tmp_path / "empty.parquet").ml.profile()["rows"] == 0).all()


def test_bad_input_is_refused_by_name(folder):
    for bad in ([1, 2], np.zeros((3, 2)), pd.Series([1.0, 2.0]), "data.parquet"):
        with pytest.raises(ParameterError, match="expected a dask or pandas DataFrame"):
            profile(bad)
    ddf = dd.read_parquet(folder)
    with pytest.raises(ColumnNotFoundError, match="'cty'.*did you mean 'city'"):
        ddf.ml.select(["cty"]).profile()
    with pytest.raises(ParameterError, match="lists of column names"):
        profile(ddf, columns="city")
    with pytest.raises(ColumnNotFoundError, match="WHERE column 'z'"):
        ddf.ml.where("z > 1").profile()


def test_too_many_distinct_values_keep_memory_bounded(monkeypatch):
    """Past the cap, ``distinct`` says so and the top values come from the counts kept: here
    the frequent values are frequent in every partition, so their counts stay exact."""
    monkeypatch.setattr(profile_module, "MAX_DISTINCT", 50)
    rng = np.random.default_rng(0)
    rare = [f"id{i}" for i in range(400)]  # each once
    common = ["a"] * 400 + ["b"] * 300 + ["c"] * 200 + ["d"] * 100 + ["e"] * 60 + ["f"] * 50
    values = np.array(rare + common, dtype=object)
    rng.shuffle(values)
    data = pd.DataFrame({"key": values, "few": np.array(list("xy"), dtype=object)[
        rng.integers(0, 2, len(values))]})
    result = dd.from_pandas(data, npartitions=4).ml.profile().set_index("column")
    assert result.loc["key", "distinct"] == ">50"
    assert result.loc["key", "top"] == "a (400), b (300), c (200), d (100), e (60)"
    assert result.loc["key", "rows"] == len(values)  # rows and missing stay exact
    assert result.loc["few", "distinct"] == 2  # under the cap: exact


def test_each_partition_is_read_once():
    reads = []

    def load(i: int) -> pd.DataFrame:
        reads.append(i)
        return _frame(500, seed=i)

    ddf = dd.from_map(load, list(range(5)), meta=_frame(1, 0).iloc[:0])
    result = ddf.ml.profile()
    assert sorted(reads) == [0, 1, 2, 3, 4]
    assert_matches_pandas(result, pd.concat([_frame(500, seed=i) for i in range(5)]))


def test_progress_draws_the_profile_line(folder, capsys):
    n = dd.read_parquet(folder).npartitions
    dd.read_parquet(folder).ml.profile(progress=True)
    err = capsys.readouterr().err
    assert re.search(rf"\rprofile \[#+\] {n}/{n} partitions(  [\d.]+[kM]? rows/s)?  in \d+:\d\d\n$",
                     err), err
    dd.read_parquet(folder).ml.profile()
    assert capsys.readouterr().err == ""  # stderr is no terminal here: quiet by default


def test_where_of_the_wrong_type_names_the_column(folder):
    with pytest.raises(DataError, match="city"):
        dd.read_parquet(folder).ml.where("city > 3").profile()


@pytest.mark.slow
def test_profile_on_a_local_cluster(folder, client):
    import distributed

    ddf = dd.read_parquet(folder)
    local = ddf.ml.where("x > 5").profile()  # the suite's threaded scheduler
    with dask.config.set(scheduler=client), distributed.get_task_stream(client) as tasks:
        result = ddf.ml.where("x > 5").profile()
    assert len(tasks.data) >= ddf.npartitions  # every partition read on the workers
    pd.testing.assert_frame_equal(result, local)  # the same tree of merges: the same bits
    data = pd.read_parquet(folder)
    assert_matches_pandas(result, data[data["x"] > 5])
