"""Sources open globs, folders and tables; writing never loses a file."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier

from oocml.errors import SourceError
from oocml.io.outputs import write_parquet
from oocml.io.sources import open_source
from oocml.plan import Source


def test_glob_folder_and_csv(binary_dir, tmp_path):
    assert open_source(Source(path=str(binary_dir))).npartitions == 6
    assert open_source(Source(path=f"{binary_dir}/part-0000[01].parquet")).npartitions == 2
    pd.read_parquet(binary_dir).head(100).to_csv(tmp_path / "a.csv", index=False)
    assert len(open_source(Source(path=str(tmp_path / "*.csv")))) == 100
    assert len(open_source(Source(path=str(tmp_path / "a.csv"), format="csv"))) == 100


def test_nothing_matches(tmp_path):
    with pytest.raises(SourceError, match=r"no data files match '.*nothing\*.parquet'"):
        open_source(Source(path=str(tmp_path / "nothing*.parquet")))


def test_unknown_table_suggests(binary):
    with pytest.raises(SourceError, match="did you mean 'binary'"):
        open_source(Source(table="binray"), {"binary": binary})
    assert open_source(Source(table="binary"), {"binary": binary}) is binary


def test_write_refuses_a_non_empty_folder_and_keeps_foreign_files(binary, tmp_path):
    model = binary.ml.scale().fit_incremental(SGDClassifier, target="y")
    out = tmp_path / "out"
    model.write_predictions(binary, out, keep=["y"])
    first = sorted(p.name for p in out.iterdir())
    assert len(pd.read_parquet(out)) == 30_000 and "y" in pd.read_parquet(out).columns
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SourceError, match="already holds files.*OVERWRITE"):
        model.write_predictions(binary, out)
    model.write_predictions(binary.partitions[:2], out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert sum(len(pd.read_parquet(p)) for p in out.glob("*.parquet")) == 10_000
    assert len(list(out.glob("*.parquet"))) == 2 < len([f for f in first if f.endswith("parquet")])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_write_pandas(tmp_path):
    write_parquet(pd.DataFrame({"a": [1, 2]}), tmp_path / "p")
    assert pd.read_parquet(tmp_path / "p")["a"].tolist() == [1, 2]


def test_where_filters_rows_before_training(binary, binary_dir):
    from oocml.engine.fit import fit_plan
    from oocml.plan import And, Compare, In, IsNull, Not, Or

    frame = pd.read_parquet(binary_dir)
    cut = float(frame.x0.median())
    where = And((Compare("x0", ">", cut), Not(IsNull("x1")),
                 Or((In("y", (0,)), Compare("x2", "<=", float(frame.x2.max()))))))
    plan = binary.ml.scale().plan(SGDClassifier, target="y")
    import dataclasses

    model = fit_plan(dataclasses.replace(plan, where=where), binary)
    assert model.report.rows == int((frame.x0 > cut).sum())
    from oocml.io.conditions import parquet_filters, to_text

    assert parquet_filters(where) == [[("x0", ">", cut)]]
    assert to_text(where).startswith(f"x0 > {cut!r} AND NOT (x1 IS NULL) AND (y IN (0) OR")
    pushed = open_source(Source(path=str(binary_dir)), filters=parquet_filters(where))
    assert len(pushed) <= len(frame)
