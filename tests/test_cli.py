"""oocml-sql's parts without a terminal, on a real Shell and Session (tests/test_repl.py drives
them through a pseudo-terminal)."""

from __future__ import annotations

import io
import re
from collections import defaultdict

import pandas as pd
import pytest
from helpers import generated

import oocml
from oocml.cli import meta, render
from oocml.cli.complete import suggestions
from oocml.cli.repl import Shell
from oocml.dsl.grammar import keywords, lark_parser


def shell(session: oocml.Session | None = None) -> tuple[Shell, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Shell(session or oocml.Session(), out, err), out, err


# -- rendering ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def million_dir(tmp_path_factory):
    return generated(tmp_path_factory, "million", rows=1_200_000, features=2, files=4, seed=5)


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
    return generated(tmp_path_factory, "wide", rows=2_000, features=12, files=2, seed=4)


def test_columns_complete_in_the_order_of_the_data(wide_dir):
    session = oocml.Session()
    columns, word = suggestions(f"TRAIN sgd ON '{wide_dir}' PREDICT y FEATURES x", session)
    assert columns == [f"x{i}" for i in range(12)] and word == "x"
    columns, _ = suggestions(f"TRAIN sgd ON '{wide_dir}' PREDICT y FEATURES x1", session)
    assert columns == ["x1", "x10", "x11"]  # the exact match first, then the data's order
    target, _ = suggestions(f"TRAIN sgd ON '{wide_dir}' PREDICT ", session)
    assert target == [*(f"x{i}" for i in range(12)), "y"]


# -- the grammar, read through the parser's own Lark object --------------------------------------

RULES = defaultdict(list)  # rule name -> the symbol names of each of its expansions
for _rule in lark_parser().rules:
    RULES[_rule.origin.name].append([symbol.name for symbol in _rule.expansion])
# not followed: EXPLAIN's statement; sources and literal values (WITH's, OPTIONS') are in the
# general help
NOT_FOLLOWED = {"statement", "source", "value"}


def keywords_of(rule: str, seen: set | None = None) -> set[str]:
    """Every keyword reachable from ``rule``: its clauses, options and conditions."""
    seen = set() if seen is None else seen
    seen.add(rule)
    found = set()
    for expansion in RULES[rule]:
        for symbol in expansion:
            if symbol in keywords():
                found.add(symbol)
            elif symbol in RULES and symbol not in seen and symbol not in NOT_FOLLOWED:
                found |= keywords_of(symbol, seen)
    return found


def statement_rules() -> dict[str, list[str]]:
    """First keyword of a statement -> the grammar rules of the statements it starts."""
    by_keyword = defaultdict(list)
    for (rule,) in RULES["statement"]:
        by_keyword[RULES[rule][0][0]].append(rule)
    return by_keyword


TRAIN_CLAUSES = [expansion[0] for expansion in RULES["_train_clause"]]


def help_text(topic: str) -> str:
    sh, out, err = shell()
    assert sh.run(f"\\help {topic}".rstrip()) and err.getvalue() == ""
    return out.getvalue()


def has_word(text: str, keyword: str) -> bool:
    return re.search(rf"(?<![\w-]){keyword}(?![\w-])", text) is not None


def test_the_grammar_has_the_train_clauses_this_test_reads():
    assert len(TRAIN_CLAUSES) >= 16 and "holdout_clause" in TRAIN_CLAUSES


@pytest.mark.parametrize("clause", TRAIN_CLAUSES)
def test_train_help_names_every_clause_of_the_grammar(clause):
    text = help_text("TRAIN")
    missing = sorted(k for k in keywords_of(clause) if not has_word(text, k))
    assert not missing, f"\\help TRAIN does not mention {missing} of {clause} (grammar/oocml.lark)"


def test_every_statement_has_help_naming_all_its_keywords():
    rules = statement_rules()
    assert set(rules) == set(meta.STATEMENT_HELP), "a statement without help, or help without one"
    missing = {}
    for keyword, statements in rules.items():
        text = help_text(keyword.lower())  # topics are case-insensitive
        needed = set().union(*(keywords_of(rule) for rule in statements))
        missing[keyword] = sorted(k for k in needed if not has_word(text, k))
    missing = {keyword: words for keyword, words in missing.items() if words}
    assert not missing, f"statement help (\\help KEYWORD) misses grammar keywords: {missing}"


def test_general_help_lists_statements_sources_and_every_meta_command():
    text = help_text("")
    for keyword in statement_rules():
        assert has_word(text, keyword)
    shared = keywords_of("source") | keywords_of("value")
    assert shared >= {"FORMAT", "OPTIONS", "TRUE", "NULL"}
    assert [k for k in shared if not has_word(text, k)] == []
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
