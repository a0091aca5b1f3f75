"""Messy folders of data: each fault is an OocmlError that names the file and column, through
Python, the language and ``oocml-sql``; and a long session leaks nothing."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import killed_when, slow_predict_script
from sklearn.linear_model import SGDClassifier

import oocml
from oocml.errors import DataError, OocmlError, SourceError

TRAIN = "TRAIN sgd ON '{folder}' PREDICT y SCALE standard"


@pytest.fixture
def folder(binary_dir, tmp_path):
    """A private copy of the six good files, to spoil one of."""
    copy = tmp_path / "data"
    shutil.copytree(binary_dir, copy)
    return copy


def _fit_both_faces(folder: Path, error: type[OocmlError], match: str) -> None:
    with pytest.raises(error, match=match):
        oocml.Session().sql(TRAIN.format(folder=folder))
    with pytest.raises(error, match=match):
        dd.read_parquet(folder).ml.scale().fit_incremental(SGDClassifier, target="y")


OOCML_SQL = shutil.which("oocml-sql", path=str(Path(sys.executable).parent)) or "oocml-sql"


def _cli(*statements: str) -> subprocess.CompletedProcess:
    return subprocess.run([OOCML_SQL, "-c", "; ".join(statements)], capture_output=True,
                          text=True, timeout=300)


def test_a_truncated_file_among_good_ones(folder):
    spoiled = folder / "part-00003.parquet"
    spoiled.write_bytes(spoiled.read_bytes()[: spoiled.stat().st_size // 2])
    _fit_both_faces(folder, SourceError, r"part-00003\.parquet.*not a readable parquet file")
    with pytest.raises(SourceError, match=r"part-00003\.parquet"):  # WHERE: dask's reader
        oocml.Session().sql(TRAIN.format(folder=folder) + " WHERE x0 > 0")
    run = _cli(TRAIN.format(folder=folder))
    assert run.returncode == 1 and "part-00003.parquet" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_file_that_is_not_parquet(folder):
    (folder / "part-00002.parquet").write_text("id,name\n1,notes someone saved here\n")
    _fit_both_faces(folder, SourceError, r"part-00002\.parquet.*not a readable parquet file")


def _rewrite(path: Path, change) -> None:
    pq.write_table(pa.Table.from_pandas(change(pd.read_parquet(path)), preserve_index=False), path)


def test_a_column_missing_from_one_file(folder):
    _rewrite(folder / "part-00004.parquet", lambda f: f.drop(columns="x2"))
    _fit_both_faces(folder, SourceError, r"part-00004\.parquet.*'x2'")


def test_a_column_of_another_type_in_one_file(folder):
    _rewrite(folder / "part-00001.parquet", lambda f: f.assign(x1=f.x1.map("{:.3f}".format)))
    _fit_both_faces(folder, SourceError, r"part-00001\.parquet.*'x1'.*(string|large_string)")


def test_an_empty_file_is_skipped_and_an_empty_folder_of_them_refused(folder, tmp_path):
    _rewrite(folder / "part-00005.parquet", lambda f: f.iloc[:0])
    model = oocml.Session().sql(TRAIN.format(folder=folder))
    assert model.report.rows == 25_000  # five files of 5,000 rows
    empty = tmp_path / "empty"
    empty.mkdir()
    _rewrite_to = empty / "part-0.parquet"
    shutil.copy(folder / "part-00005.parquet", _rewrite_to)
    _fit_both_faces(empty, DataError, "no rows")


def test_a_glob_that_matches_nothing(tmp_path):
    with pytest.raises(SourceError, match=r"no data files match .*nothing-here"):
        oocml.sql(f"TRAIN sgd ON '{tmp_path}/nothing-here/*.parquet' PREDICT y")
    run = _cli(f"EVALUATE m ON '{tmp_path}/nothing-here'")
    assert run.returncode == 1 and "Traceback" not in run.stderr


def test_nan_in_the_target_is_refused_with_a_count(folder):
    _rewrite(folder / "part-00000.parquet",
             lambda f: f.assign(y=f.y.astype("float64").where(f.index % 100 != 0)))
    _fit_both_faces(folder, DataError, r"target column 'y' has 50 missing value\(s\)")
    model = oocml.Session().sql(TRAIN.format(folder=folder) + " WHERE y IS NOT NULL")
    assert model.report.rows == 30_000 - 50


def test_a_string_feature_without_encode_then_with_it(folder):
    for path in sorted(folder.glob("*.parquet")):
        _rewrite(path, lambda f: f.assign(city=np.where(f.x0 > 0, "paris", "lyon")))
    _fit_both_faces(folder, DataError, r"'city'.*ENCODE")
    model = oocml.Session().sql(TRAIN.format(folder=folder) + " ENCODE onehot")
    assert "city_paris" in model.pipeline[:-1].get_feature_names_out()


def test_a_long_session_leaks_no_memory_threads_or_files(tmp_path):
    """Hundreds of mixed statements: RSS, threads and open files stay flat after warming up."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(2_000, 4)), columns=["a", "b", "c", "d"])
    table["y"] = (table.a + table.b > 0).astype(int)
    session = oocml.Session(store=tmp_path / "store")
    statements = ["TRAIN sgd ON t PREDICT y SCALE standard AS m{i}",
                  "EVALUATE m{i} ON t",
                  "PREDICT USING m{i} ON t INTO '{out}/p{i}'",
                  "DESCRIBE m{i}",
                  "DROP MODEL m{i}"]

    def run(rounds: range) -> None:
        for i in rounds:
            for statement in statements:
                result = session.sql(statement.format(i=i % 3, out=tmp_path), t=table)
                if isinstance(result, str) and os.path.isdir(result):
                    shutil.rmtree(result)

    def usage() -> tuple[float, int, int]:
        gc.collect()
        rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return rss / 2**20, threading.active_count(), len(os.listdir("/proc/self/fd"))

    run(range(20))  # warm up: imports, thread pools, caches
    before = usage()
    run(range(20, 80))  # 300 statements
    after = usage()
    assert after[0] - before[0] < 40, (before, after)  # MB
    assert after[1] <= before[1] + 1, (before, after)  # threads
    assert after[2] <= before[2] + 2, (before, after)  # open file descriptors
    assert session.sql("SHOW MODELS").empty


# -- nothing lost when the process is killed -------------------------------------------------

def test_a_save_killed_midway_leaves_the_previous_model(binary_dir, tmp_path):
    path = tmp_path / "m.oocml"
    before = dd.read_parquet(binary_dir).ml.fit_incremental(SGDClassifier, target="y")
    before.save(path)
    started = tmp_path / "started"
    script = f"""
import pathlib, oocml, dask.dataframe as dd
from sklearn.linear_model import SGDClassifier
model = dd.read_parquet({str(binary_dir)!r}).ml.fit_incremental(SGDClassifier(alpha=0.01),
                                                                 target="y")
pathlib.Path({str(started)!r}).touch()
while True:
    model.save({str(path)!r}, overwrite=True)
"""
    killed_when(script, started.exists)
    loaded = oocml.load_model(path)  # a whole model, the old one or the new one, never half
    assert loaded.estimator.alpha in (before.estimator.alpha, 0.01)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "m.oocml", "started"]


def test_predict_into_killed_midway_leaves_the_previous_output(binary_dir, tmp_path):
    session = oocml.Session(store=tmp_path / "store")
    session.sql(TRAIN.format(folder=binary_dir) + " AS m")
    out = tmp_path / "out"
    session.sql(f"PREDICT USING m ON '{binary_dir}' INTO '{out}'")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    script = slow_predict_script(binary_dir, str(tmp_path / "store"), str(out))
    staging = lambda: any((out / "_oocml_staging").glob("*/*.staged"))  # noqa: E731
    killed_when(script, staging)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert len(dd.read_parquet(out)) == 30_000  # the staged parts are hidden ('_' prefix)
    session.sql(f"PREDICT USING m ON '{binary_dir}/part-00000.parquet' INTO '{out}' OVERWRITE")
    assert not (out / "_oocml_staging").exists()  # the next write cleans up after the killed one
    assert len(dd.read_parquet(out)) == 5_000
