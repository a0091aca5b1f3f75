"""oocml-sql's parts without a terminal, on a real Shell and Session (tests/test_repl.py drives
them through a pseudo-terminal)."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

import oocml
from oocml.cli import meta, render
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


def help_text(topic: str) -> str:
    sh, out, err = shell()
    assert sh.run(f"\\help {topic}".rstrip()) and err.getvalue() == ""
    return out.getvalue()


def test_general_help_lists_every_meta_command_of_the_registry():
    text = help_text("")
    for command in meta.commands():
        assert re.search(rf"^  {re.escape(command.usage)} +{re.escape(command.help)}", text, re.M)
        assert all(alias in text for alias in command.aliases)
    assert help_text("SELECT") == text  # an unknown topic: the general help


# -- the registry ---------------------------------------------------------------------------------

def test_registry_names_each_command_once_with_syntax_and_help():
    commands = meta.commands()
    names = [c.name for c in commands]
    assert len(names) == len(set(names)) >= 10
    for required in ("\\help", "\\models", "\\tables", "\\table", "\\algorithms", "\\describe",
                     "\\format", "\\timing", "\\pager", "\\quit"):
        assert required in names
    for command in commands:
        assert command.help and "\n" not in command.help and command.name.startswith("\\")
        assert all(meta.lookup(alias) is command for alias in command.aliases)
    with pytest.raises(ValueError, match="registered twice"):
        meta.command("\\models", "", "again")(lambda shell, argument: True)


def test_completion_of_meta_commands_comes_from_the_registry():
    session = oocml.Session()
    assert suggestions("\\", session)[0] == [c.name for c in meta.commands()]
    assert suggestions("\\ti", session)[0] == ["\\timing"]
    assert suggestions("\\format c", session) == (["csv"], "c")
    assert suggestions("\\timing ", session)[0] == ["on", "off"]
    assert suggestions("\\help TR", session)[0] == ["TRAIN"]
    assert suggestions("\\models ", session)[0] == []


def test_meta_command_help_usage_and_settings():
    sh, out, err = shell()
    assert sh.run("\\help \\timing") and "\\timing [on|off]" in out.getvalue()
    assert not sh.run("\\describe")
    assert err.getvalue() == "usage: \\describe name  -- " + meta.lookup("\\describe").help + "\n"
    assert not sh.run("\\format xml") and "usage: \\format table|csv|json" in err.getvalue()
    assert not sh.run("\\timing maybe") and sh.timing is False
    assert sh.run("\\format csv") and sh.fmt == "csv"
    assert sh.run("\\format") and out.getvalue().endswith("format is csv\n")
    assert sh.run("\\timing") and sh.timing is True and sh.run("\\timing off") and not sh.timing
    assert not sh.run("\\bogus") and "unknown meta command '\\bogus'" in err.getvalue()
    with pytest.raises(EOFError):
        sh.run("\\q")
