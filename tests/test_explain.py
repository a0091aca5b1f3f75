"""EXPLAIN's equivalent Python is Python that runs and plans the statement's Plan, whatever the
column names (spaces, quotes, words of the language)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import equivalent_python

import oocml
from oocml.dsl.parser import parse_condition
from oocml.io.conditions import to_text

NAMES = ["my col", "and", 'say "hi"', "x-1"]


@pytest.fixture(scope="module")
def odd_names(tmp_path_factory):
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("odd")
    for i in range(3):
        X = rng.normal(size=(2_000, len(NAMES)))
        frame = pd.DataFrame(X, columns=NAMES)
        frame["y"] = (X[:, 0] + X[:, 3] > 0).astype(int)
        frame.to_parquet(folder / f"part-{i}.parquet")
    return folder


@pytest.mark.parametrize("clauses", [
    'WHERE "my col" > -1 AND "and" IS NOT NULL SCALE standard',
    'FEATURES "my col", "say ""hi""", "x-1" WHERE "x-1" BETWEEN -2 AND 2 EPOCHS 2 SHUFFLE SEED 4',
    'FEATURES * EXCLUDE ("and") WHERE NOT ("say ""hi""" IN (0.5, 1.5)) SCALE minmax HOLDOUT 0.2',
    "SCALE standard WITH (penalty = 'elasticnet') TUNE (alpha LOGUNIFORM(1e-6, 1e-2), "
    "l1_ratio UNIFORM(0.1, 0.9), eta0 RANDINT(1, 3), loss IN ('hinge', 'log_loss')) TRIALS 4 "
    "HALVING 2 EPOCHS 2 SHUFFLE",
    "TUNE (alpha IN (1e-4, 1e-3)) HOLDOUT 0.3 EARLY STOP PATIENCE 1 EPOCHS 3",
])
def test_equivalent_python_with_quoted_names(odd_names, clauses):
    statement = f"TRAIN sgd ON '{odd_names}' PREDICT y {clauses}"
    session = oocml.Session()
    namespace: dict = {}
    exec(equivalent_python(session.sql(f"EXPLAIN {statement}")), namespace)
    trained = session.sql(statement)
    np.testing.assert_array_equal(namespace["model"].estimator.coef_, trained.estimator.coef_)
    if "TUNE" in statement:
        assert namespace["model"].report.search == trained.report.search


@pytest.mark.parametrize("text", ['"my col" > 0', '"and" = 1 OR x IN (1, 2)',
                                  '"say ""hi""" IS NULL', 'NOT ("a-b" BETWEEN 1 AND 2)', "x0 >= 3"])
def test_conditions_print_as_they_parse(text):
    condition = parse_condition(text)
    assert parse_condition(to_text(condition)) == condition


@pytest.mark.parametrize("with_clause", ["", "WITH (alpha = 0.0001)", "WITH (alpha = 0.001, loss = 'hinge')",
                                         "WITH (loss = 'log_loss', average = TRUE)"])
def test_explain_and_describe_name_the_same_parameters(binary_dir, with_clause):
    """One rule (estimators.changed_params) says which parameters differ from the defaults:
    the equivalent Python passes exactly those, and DESCRIBE lists exactly those."""
    import re

    session = oocml.Session()
    statement = f"TRAIN sgd ON '{binary_dir}' PREDICT y {with_clause} AS m"
    python = equivalent_python(session.sql("EXPLAIN " + statement))
    called = re.search(r"SGDClassifier\((.*?)\)", python)
    explained = set(re.findall(r"(\w+)=", called.group(1))) if called else set()
    session.sql(statement)
    table = session.sql("DESCRIBE m").set_index("property")["value"]
    described = set(re.findall(r"(\w+)=", table["parameters"]))
    assert explained - {"random_state"} == described - {"random_state"}
    assert ("alpha" in described) == ("0.001" in with_clause)
