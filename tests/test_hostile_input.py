"""A hostile but realistic user: model names that try to leave the store, secrets in statements
that do not parse, targets that cannot be learned, and data that breaks the readers. Each case
is refused by an OocmlError that names the culprit and the fix, before any harm is done."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import oocml
from oocml.catalog import MAX_NAME_LENGTH
from oocml.errors import DataError, OocmlError, ParameterError, SourceError, StorageError

TRAIN = "TRAIN sgd ON '{folder}' PREDICT y SCALE standard"


# -- model names never leave the store -----------------------------------------------------------

ESCAPES = ['"../victim"', '"sub/victim"', '"..\\victim"', '"a\tb"', '"nul\x00"',
           '"' + "m" * (MAX_NAME_LENGTH + 1) + '"']
STATEMENTS = ["DROP MODEL {name}", "DESCRIBE {name}", "SHOW WEIGHTS {name}", "SHOW TRIALS {name}",
              "PREDICT USING {name} ON '{data}'", "PREDICT USING {name} ON '{data}' INTO '{out}'",
              "EVALUATE {name} ON '{data}'", "EVALUATE CONFUSION {name} ON '{data}'",
              "EXPLAIN PREDICT USING {name} ON '{data}'", "SAVE MODEL {name} TO '{out}.oocml'",
              "LOAD MODEL {name} FROM '{victim}'", "LOAD OR REPLACE MODEL {name} FROM '{victim}'",
              "TRAIN sgd ON '{missing}' PREDICT y AS {name}",
              "TRAIN OR REPLACE sgd ON '{missing}' PREDICT y AS {name}"]


@pytest.fixture(scope="module")
def beside_the_store(binary_dir, tmp_path_factory):
    """A store, and a model file ``victim.oocml`` beside it (outside), as an attacker finds it."""
    root = tmp_path_factory.mktemp("hostile")
    session = oocml.Session(root / "store")
    session.sql(TRAIN.format(folder=binary_dir) + " AS victim")
    shutil.copy(root / "store" / "victim@1.oocml", root / "victim.oocml")
    (root / "store" / "sub").mkdir()
    shutil.copy(root / "store" / "victim@1.oocml", root / "store" / "sub" / "victim.oocml")
    return root


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("statement", STATEMENTS)
@pytest.mark.parametrize("name", ESCAPES, ids=["parent", "slash", "backslash", "tab", "nul", "long"])
def test_a_model_name_cannot_leave_the_store(beside_the_store, binary_dir, statement, name):
    root = beside_the_store
    before = _files(root)
    text = statement.format(name=name, data=binary_dir, out=root / "out", victim=root / "victim.oocml",
                            missing=root / "no-such-data")
    session = oocml.Session(root / "store")
    with pytest.raises(ParameterError, match="model name"):  # not a SourceError: checked first
        session.sql(text)
    assert _files(root) == before  # nothing outside (or inside) the store written or deleted
    assert session.catalog._models == {}  # and nothing read into the session


def test_the_python_store_checks_names_too(beside_the_store):
    catalog = oocml.Session(beside_the_store / "store").catalog
    for call in (catalog.get, catalog.drop, lambda n: n in catalog):
        with pytest.raises(ParameterError, match="invalid model name"):
            call("../victim")
    assert (beside_the_store / "victim.oocml").exists()
    assert catalog.names() == ["victim"]


def test_a_long_name_is_refused_before_any_read_and_the_longest_allowed_one_works(binary_dir, tmp_path):
    session = oocml.Session(tmp_path / "store")
    longest = "m" * MAX_NAME_LENGTH
    session.sql(TRAIN.format(folder=binary_dir) + f" AS {longest}")
    assert oocml.Session(tmp_path / "store").sql(f"DESCRIBE {longest}") is not None
    with pytest.raises(ParameterError, match=f"{MAX_NAME_LENGTH + 1} characters; the limit is"):
        session.sql(f"TRAIN sgd ON '{tmp_path / 'nothing'}' PREDICT y AS {longest}m")


# -- secrets never appear in an error --------------------------------------------------------------

KEY, SECRET = "AKIAHOSTILEKEY0001", "hostile/SECRET+value=9"
OPTIONS = f"OPTIONS (key = '{KEY}', secret = '{SECRET}')"
BAD = [
    f"TRAIN sgd ON 's3://b/d/' {OPTIONS} PREDICT y SCALE standrd",              # bad value
    f"TRAIN sgd ON 's3://b/d/' {OPTIONS} PREDICT y EPOCHS 0",                   # bad number
    f"TRAIN sgd ON 's3://b/d/' {OPTIONS[:-1]}, key = 'again') PREDICT y",        # option twice
    f"TRAIN sgd ON 's3://b/d/' {OPTIONS} PREDICT y AS",                         # ends too early
    f"TRAIN sgd ON 's3://b/d/' {OPTIONS} PREDICT y WIHT (alpha = 1)",           # unexpected word
    f"TRAIN sgd ON 's3://b/d/' OPTIONS (key = '{KEY}' '{SECRET}') PREDICT y",   # a lost '='
    f"TRAIN sgd ON 's3://b/d/' OPTIONS ('{KEY}', '{SECRET}') PREDICT y",         # no names at all
    f"TRAIN sgd ON 's3://b/d/' OPTIONS (key = {KEY}, secret = {SECRET}) PREDICT y",  # unquoted
    f"TRAIN sgd ON 's3://b/d/' OPTIONS (key = '{KEY}', secret = '{SECRET}",     # left open
    f"TRAIN sgd ON 's3://b/d/'\n  {OPTIONS}\n  PREDICT y SCALE standard EPOCHS -1",  # line 3
    f"PREDICT USING m ON 's3://b/d/' INTO 's3://b/o/' {OPTIONS} OVRWRITE",
    f"SAVE MODEL m TO 's3://b/m.oocml' {OPTIONS[:-1]}, secret = 'x')",
    f"EXPLAIN TRAIN sgd ON 's3://b/d/' {OPTIONS} PREDICT y TUNE (alpha IN ())",
]


@pytest.mark.parametrize("statement", BAD)
def test_a_statement_that_does_not_parse_masks_its_secrets(statement):
    with pytest.raises(OocmlError) as caught:
        oocml.Session().sql(statement)
    shown = f"{caught.value}\n{getattr(caught.value, 'statement_text', '')}"
    assert KEY not in shown and SECRET not in shown and SECRET[:8] not in shown, shown
    assert "^" in shown or "given twice" in shown  # the caret is still drawn


def test_the_caret_still_points_at_the_culprit_after_masking():
    with pytest.raises(OocmlError) as caught:
        oocml.Session().sql(f"TRAIN sgd ON 's3://b/d/' {OPTIONS} PREDICT y SCALE standrd")
    line, caret = str(caught.value).splitlines()[-2:]
    assert line.strip().startswith("TRAIN") and "secret = '***'" in line
    assert line[caret.index("^"):].startswith("SCALE standrd")  # the clause, as unmasked


def test_an_unknown_storage_option_masks_the_secrets(s3_server, bucket):
    with pytest.raises(OocmlError) as caught:
        oocml.Session().sql(f"TRAIN sgd ON '{bucket}/d/' OPTIONS (key = '{KEY}', secret = "
                            f"'{SECRET}', not_an_option = 1) PREDICT y")
    assert KEY not in str(caught.value) and SECRET not in str(caught.value)


# -- targets a model cannot learn are refused by name ----------------------------------------------

def _spoil(folder: Path, file: str, change) -> None:
    path = folder / file
    frame = pd.read_parquet(path)
    change(frame)
    frame.to_parquet(path)


@pytest.fixture
def regression_copy(regression_dir, tmp_path):
    return Path(shutil.copytree(regression_dir, tmp_path / "regression"))


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_an_infinite_target_is_refused_by_name(regression_copy, value):
    _spoil(regression_copy, "part-00002.parquet", lambda f: f.__setitem__("y", f["y"].where(
        f.index != f.index[7], value)))
    with pytest.raises(DataError, match=r"target column 'y' has 1 infinite value\(s\)"):
        oocml.sql(f"TRAIN sgd_regressor ON '{regression_copy}' PREDICT y HOLDOUT 0.2")
    with pytest.raises(DataError, match="infinite"):
        dd.read_parquet(regression_copy).ml.fit_incremental("sgd_regressor", target="y")
    kept = oocml.sql(f"TRAIN sgd_regressor ON '{regression_copy}' PREDICT y "
                     "WHERE y BETWEEN -1e300 AND 1e300")  # the fix the message gives works
    assert kept.report.rows_seen == 20_000 - 1


def test_an_infinite_target_in_a_holdout_row_is_refused_too(regression_copy):
    frame = pd.read_parquet(regression_copy / "part-00001.parquet")
    from oocml.engine.validation import training_rows

    held = frame.index.difference(training_rows(frame, 0.2).index)[0]
    _spoil(regression_copy, "part-00001.parquet", lambda f: f.__setitem__("y", f["y"].where(
        f.index != held, np.inf)))
    with pytest.raises(DataError, match="infinite"):
        oocml.sql(f"TRAIN sgd_regressor ON '{regression_copy}' PREDICT y HOLDOUT 0.2")


def test_a_missing_target_in_a_file_of_whole_numbers_names_the_file(binary_dir, tmp_path):
    folder = Path(shutil.copytree(binary_dir, tmp_path / "data"))
    _spoil(folder, "part-00003.parquet", lambda f: f.__setitem__(
        "y", f["y"].astype(float).where(f.index > 2)))
    for run in (lambda: oocml.sql(TRAIN.format(folder=folder)),
                lambda: oocml.sql(TRAIN.format(folder=folder) + " WHERE y IS NOT NULL"),
                lambda: dd.read_parquet(folder).ml.fit_incremental("sgd", target="y")):
        with pytest.raises(SourceError, match=r"part-00003\.parquet' holds 3 missing value\(s\) in "
                                              r"column 'y', which the other files hold as int64"):
            run()
    fixed = (dd.read_parquet(folder).astype({"y": "float64"}).dropna(subset=["y"])  # as it says
             .ml.fit_incremental("sgd", target="y"))
    assert fixed.report.rows_seen == 30_000 - 3


# -- data that breaks the readers: named by file, line and fix -------------------------------------

@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(5)
    return pd.DataFrame({"x0": rng.normal(size=3_000), "x1": rng.normal(size=3_000),
                         "y": rng.integers(0, 2, 3_000)})


def _text_folder(root: Path, frame: pd.DataFrame, kind: str) -> Path:
    """Two text files; the second broken at its line 301 (``kind``: ragged, utf8, json)."""
    folder = root / kind
    folder.mkdir()
    suffix = "jsonl" if kind == "json" else "csv"
    for i, part in enumerate((frame.iloc[:1_500], frame.iloc[1_500:])):
        if suffix == "csv":
            text = part.to_csv(index=False)
        else:
            text = part.to_json(orient="records", lines=True)
        lines = text.splitlines()
        if i == 1:
            at = 300  # line 301 of the file
            lines[at] = {"ragged": lines[at] + ",1.5,7", "utf8": lines[at] + "\udcff",
                         "json": lines[at][:-9]}[kind]
        data = "\n".join(lines).encode("utf-8", "surrogateescape") + b"\n"
        (folder / f"part-{i}.{suffix}").write_bytes(data)
    return folder


@pytest.mark.parametrize("kind", ["ragged", "utf8", "json"])
def test_text_that_does_not_parse_is_named_by_file_and_line(frame, tmp_path, kind):
    folder = _text_folder(tmp_path, frame, kind)
    bad = f"{folder / ('part-1.jsonl' if kind == 'json' else 'part-1.csv')}' does not parse at line 301"
    for statement in (f"TRAIN sgd ON '{folder}' PREDICT y", f"TRAIN sgd ON '{folder}' PREDICT y CACHE OFF",
                      f"DESCRIBE DATA '{folder}'"):
        with pytest.raises(SourceError, match=re.escape(bad)):
            oocml.sql(statement)
    read = (dd.read_json(str(folder / "*.jsonl"), lines=True, blocksize=2**26) if kind == "json"
            else dd.read_csv(str(folder / "*.csv")))
    with pytest.raises(SourceError, match=re.escape(bad)):
        read.ml.fit_incremental("sgd", target="y")
    model = oocml.sql(f"TRAIN sgd ON '{folder}/part-0.*' PREDICT y")
    with pytest.raises(SourceError, match=re.escape(bad)):
        model.evaluate(read)


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_a_column_whose_type_drifts_between_text_files_is_named(frame, tmp_path, suffix):
    for i, part in enumerate((frame.iloc[:1_500].copy(), frame.iloc[1_500:].copy())):
        part["c"] = np.arange(len(part)) % 3
        if i == 1:
            part["c"] = part["c"].astype(str).where(part.index != part.index[40], "many")
        if suffix == "csv":
            part.to_csv(tmp_path / f"p{i}.csv", index=False)
        else:
            part.to_json(tmp_path / f"p{i}.jsonl", orient="records", lines=True)
    first = 42 if suffix == "csv" else 41
    with pytest.raises(SourceError, match=rf"p1\.{suffix}' holds a value in column 'c' at line {first}"):
        oocml.sql(f"TRAIN sgd ON '{tmp_path}/*.{suffix}' PREDICT y")


@pytest.fixture(scope="module")
def hive_years(frame, tmp_path_factory):
    """Hive folders year=2021, year=2022 and year=abc: pyarrow types the column as text."""
    root = tmp_path_factory.mktemp("years")
    for i, year in enumerate(["2021", "2022", "abc"]):
        (root / f"year={year}").mkdir()
        frame.iloc[i * 1_000:(i + 1) * 1_000].to_parquet(root / f"year={year}" / "part.parquet")
    return root


@pytest.mark.parametrize("where, rows", [("year = 2021", 1_000), ("year = '2021'", 1_000),
                                         ("year IN (2021, 2022)", 2_000), ("year != 2021", 2_000),
                                         ("year = 2021 OR year = 'abc'", 2_000)])
def test_a_number_compared_with_text_folders_compares_as_text(hive_years, where, rows):
    model = oocml.sql(f"TRAIN sgd ON '{hive_years}' PREDICT y FEATURES x0, x1 WHERE {where}")
    assert model.report.rows_seen == rows
    chain = dd.read_parquet(hive_years).ml.where(where).select(["x0", "x1"])
    assert chain.fit_incremental("sgd", target="y").report.rows_seen == rows


def test_ordering_text_folders_by_a_number_is_refused_by_name(hive_years):
    with pytest.raises(DataError, match=r"WHERE year > 2021: column 'year' holds text.*year > '2021'"):
        oocml.sql(f"TRAIN sgd ON '{hive_years}' PREDICT y FEATURES x0, x1 WHERE year > 2021")
    with pytest.raises(DataError, match="holds text"):
        dd.read_parquet(hive_years).ml.where("year > 2021").select(["x0"]).fit_incremental(
            "sgd", target="y")


def test_an_endpoint_lost_mid_fit_is_a_storage_error_naming_the_url(s3_server, tmp_path):
    """A second S3 server, stopped by the statistics pass's first task: the fit ends with an
    error that names the object and the fix, and keeps no model."""
    import s3fs
    from dask.callbacks import Callback

    from oocml.datasets import make_parquet_dataset
    from oocml.testing import start_moto_server

    make_parquet_dataset(tmp_path / "data", rows=40_000, features=4, files=4)
    server, endpoint = start_moto_server()
    options = {"endpoint_url": endpoint,
               "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2}}
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    fs.mkdir("lost")
    fs.put(str(tmp_path / "data") + "/", "lost/data/", recursive=True)
    stopped = threading.Event()

    class StopTheServer(Callback):
        def _pretask(self, key, dsk, state):
            if "summarize_part" in str(key) and not stopped.is_set():
                stopped.set()
                server.stop()

    session = oocml.Session(tmp_path / "store", storage_options=options)
    try:
        with StopTheServer(), pytest.raises(StorageError) as caught:
            session.sql("TRAIN sgd ON 's3://lost/data/' PREDICT y SCALE standard AS lost")
    finally:
        if not stopped.is_set():
            server.stop()
    assert "s3://lost/data/part-0000" in str(caught.value)
    assert "does not answer" in str(caught.value) and "check the endpoint" in str(caught.value)
    assert session.sql("SHOW MODELS").empty


def test_a_failed_ranged_read_is_described_as_a_lost_endpoint():
    from oocml.io.storage import describe_error

    described = describe_error(TypeError("can't concat EndpointConnectionError to bytes"))
    assert described is not None and "stopped answering mid-read" in described
    assert describe_error(TypeError("unsupported operand")) is None


# -- Ctrl-C at any step of a fit ends in TrainingInterrupted, saying where -------------------------

@pytest.mark.parametrize("step, where", [("statistics", "during the statistics pass"),
                                         ("preprocess", "while fitting the preprocessing steps")])
def test_ctrl_c_before_training_says_where_it_stopped(binary, monkeypatch, step, where):
    from oocml.engine import fit
    from oocml.errors import TrainingInterrupted

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit, step, interrupted)
    with pytest.raises(TrainingInterrupted, match=f"training interrupted {where}; the model was not kept"):
        binary.ml.scale().fit_incremental("sgd", target="y")
