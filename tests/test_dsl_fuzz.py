"""Property tests: whatever the text, the language only ever raises OocmlError.

Random text, token soup from the grammar's own keywords, mutations of valid
statements, very long input, NUL bytes and non-ASCII: parsing, compiling and
executing in a session either succeed or raise an OocmlError subclass.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oocml
from oocml.dsl import ast
from oocml.dsl.compile import compile_train
from oocml.dsl.parser import KEYWORDS, parse

VALID = [
    "TRAIN sgd ON t PREDICT y SCALE standard EPOCHS 2 AS m",
    "TRAIN sgd ON t PREDICT y FEATURES a, b WHERE a > 1 AND b IN (1, 2) WITH (alpha = 1e-4)",
    "TRAIN mlp ON t PREDICT y FEATURES * EXCLUDE (b) WITH (hidden_layer_sizes = (4,)) SHUFFLE SEED 1",
    "PREDICT PROBA USING m ON t",
    "EVALUATE m ON t",
    "SHOW MODELS; SHOW ALGORITHMS; DESCRIBE m",
    "EXPLAIN TRAIN naive_bayes ON t PREDICT y",
    "DROP MODEL m",
]
PIECES = list(KEYWORDS) + ["sgd", "t", "m", "y", "a", "b", "'x'", "\"q\"", "(", ")", ",", ";", "=",
                           "<", ">=", "<>", "*", "1", "-2.5e3", "[", "]", "--", "/*", "*/", ".",
                           "NULL", "TRUE", "é", "\x00", "\n"]


def only_oocml_errors(text: str, session: oocml.Session | None = None) -> None:
    try:
        statements = parse(text)
        for statement in statements:
            if isinstance(statement, ast.Train):
                compile_train(statement)
            if session is not None:
                session.execute(statement)
    except oocml.OocmlError:
        pass


@settings(max_examples=2_000, deadline=None)
@given(st.text(max_size=200))
def test_random_text(text):
    only_oocml_errors(text)


@settings(max_examples=2_000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_token_soup(pieces):
    only_oocml_errors(" ".join(pieces))


@st.composite
def mutated(draw):
    text = list(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["insert", "delete", "swap", "replace"]))
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        char = draw(st.sampled_from(list("'\"();,=<>*.-/ \x00é\n") + ["a", "1", "TRAIN", "NOT"]))
        if action == "insert":
            text.insert(at, char)
        elif action == "delete" and text:
            del text[at]
        elif action == "swap" and len(text) > 1:
            j = draw(st.integers(0, len(text) - 1))
            text[at], text[j] = text[j], text[at]
        elif text:
            text[at] = char
    return "".join(text)


@settings(max_examples=3_000, deadline=None)
@given(mutated())
def test_mutated_statements(text):
    only_oocml_errors(text)


@pytest.fixture(scope="module")
def tiny_session():
    frame = pd.DataFrame({"a": [0.0, 1, 2, 3, 4, 5, 6, 7], "b": [1.0, 0, 1, 0, 1, 0, 1, 0],
                          "y": [0, 1, 0, 1, 0, 1, 0, 1]})
    session = oocml.Session(t=frame)
    session.sql("TRAIN sgd ON t PREDICT y AS m")
    return session


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated())
def test_mutated_statements_executed(tiny_session, text):
    only_oocml_errors(text, tiny_session)


@pytest.mark.parametrize("text", [
    "TRAIN sgd ON t " + "PREDICT y " * 2_000,
    "TRAIN sgd ON t WHERE " + " AND ".join(f"a > {i}" for i in range(2_000)),
    "TRAIN sgd ON t WHERE " + "(" * 3_000 + "a > 1" + ")" * 3_000,
    "SHOW MODELS;" * 5_000,
    "x" * 200_000,
    "'" + "a" * 100_000,
    "TRAIN sgd ON t WITH (a = " + "[" * 2_000 + "]" * 2_000 + ")",
    "TRAIN sgd ON t PREDICT \"ü€𝔘\" FEATURES ñ, 中文",
])
def test_very_long_and_odd_input(text):
    only_oocml_errors(text)
