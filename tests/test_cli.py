"""oocml-sql's parts without a terminal, on a real Shell and Session (tests/test_repl.py drives
them through a pseudo-terminal)."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

import oocml
from oocml.cli import render
from oocml.cli.complete import suggestions
from oocml.cli.repl import Shell
from oocml.datasets import make_parquet_dataset


def shell(session: oocml.Session | None = None) -> tuple[Shell, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Shell(session or oocml.Session(), out, err), out, err


# -- rendering ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def million_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("million")
    make_parquet_dataset(folder, rows=1_200_000, features=2, files=4, seed=5)
    return folder


def test_evaluate_prints_the_row_count_as_an_integer(million_dir):
    session = oocml.Session()
    sh, out, err = shell(session)
    assert sh.run(f"TRAIN naive_bayes ON '{million_dir}' PREDICT y AS nb; "
                  f"EVALUATE nb ON '{million_dir}';"), err.getvalue()
    text = out.getvalue()
    assert re.search(r"^rows +\| +1200000$", text, re.M), text
    accuracy = float(session.sql(f"EVALUATE nb ON '{million_dir}'").set_index("metric")
                     .loc["accuracy", "value"])
    assert re.search(rf"^accuracy +\| +{re.escape(f'{accuracy:.6g}')}$", text, re.M)


def test_integral_floats_print_as_integers_and_other_floats_keep_six_digits():
    frame = pd.DataFrame({"name": ["a", "b", "c", "d"],
                          "value": [2_000_000.0, 0.953333333, 1e20, float("nan")]})
    lines = render.table(frame).splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:6]] == ["2000000", "0.953333", "1e+20", ""]


# -- completion order -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wide_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wide")
    make_parquet_dataset(folder, rows=2_000, features=12, files=2, seed=4)
    return folder


def test_columns_complete_in_the_order_of_the_data(wide_dir):
    session = oocml.Session()
    columns, word = suggestions(f"TRAIN sgd ON '{wide_dir}' PREDICT y FEATURES x", session)
    assert columns == [f"x{i}" for i in range(12)] and word == "x"
    columns, _ = suggestions(f"TRAIN sgd ON '{wide_dir}' PREDICT y FEATURES x1", session)
    assert columns == ["x1", "x10", "x11"]  # the exact match first, then the data's order
    target, _ = suggestions(f"TRAIN sgd ON '{wide_dir}' PREDICT ", session)
    assert target == [*(f"x{i}" for i in range(12)), "y"]
