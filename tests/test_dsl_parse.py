"""The language's parser and compiler: every statement and clause, and its error messages."""

from __future__ import annotations

import pytest
from sklearn.linear_model import SGDClassifier

from oocml.cli.statements import split_statements, statement_complete
from oocml.dsl import ast
from oocml.dsl.ast import Encoding
from oocml.dsl.compile import compile_train
from oocml.dsl.explain import format_plan_as_accessor
from oocml.dsl.parser import KEYWORDS, parse, parse_condition
from oocml.errors import OocmlSyntaxError, ParameterError, UnknownAlgorithmError
from oocml.estimators import spec_for
from oocml.plan import And, Compare, In, IsNull, Not, Or, Plan, Source, Step, freeze_params

BASE = "TRAIN sgd ON 'data/*.parquet' PREDICT y"

TRAIN_CLAUSES = [
    ("", {}),
    ("FEATURES a, \"b c\"", {"features": ("a", "b c")}),
    ("FEATURES *", {"features": None, "exclude": ()}),
    ("FEATURES * EXCLUDE (a, b)", {"exclude": ("a", "b")}),
    ("WHERE a > 1", {"where": Compare("a", ">", 1)}),
    ("WHERE 1 < a", {"where": Compare("a", ">", 1)}),
    ("WHERE a <> 'x' AND b IS NOT NULL", {"where": And((Compare("a", "!=", "x"), IsNull("b", True)))}),
    ("WHERE a IN (1, 2) OR NOT b NOT IN ('u')", {"where": Or((In("a", (1, 2)), Not(In("b", ("u",), True))))}),
    ("WHERE a BETWEEN 1 AND 2.5", {"where": And((Compare("a", ">=", 1), Compare("a", "<=", 2.5)))}),
    ("WHERE (a = 1 OR a = 2) AND b IS NULL",
     {"where": And((Or((Compare("a", "=", 1), Compare("a", "=", 2))), IsNull("b")))}),
    ("ENCODE onehot", {"encodings": (Encoding("onehot"),)}),
    ("ENCODE hash 64", {"encodings": (Encoding("hash", size=64),)}),
    ("ENCODE onehot 8", {"encodings": (Encoding("onehot", size=8),)}),
    ("ENCODE text(review, title) 1024 USING (ngram_range = (1, 2)), Onehot(country), ordinal",
     {"encodings": (Encoding("text", ("review", "title"), 1024, (("ngram_range", (1, 2)),)),
                    Encoding("onehot", ("country",)), Encoding("ordinal"))}),
    ("IMPUTE median", {"impute": "median"}),
    ("SCALE MinMax", {"scale": "minmax"}),
    ("REDUCE pca 3", {"reduce": "pca", "reduce_size": 3}),
    ("WITH (alpha = 1e-4, loss = 'log_loss', fit_intercept = FALSE, class_weight = NULL)",
     {"params": (("alpha", 1e-4), ("loss", "log_loss"), ("fit_intercept", False),
                 ("class_weight", None))}),
    ("EPOCHS 3", {"epochs": 3}),
    ("BLOCKSIZE 1000 ROWS", {"block_rows": 1000}),
    ("BLOCKSIZE 1000", {"block_rows": 1000}),
    ("SHUFFLE", {"shuffle": True, "seed": None}),
    ("SHUFFLE SEED 7", {"shuffle": True, "seed": 7}),
    ("HOLDOUT 0.2", {"holdout": 0.2}),
    ("HOLDOUT 0.2 EARLY STOP PATIENCE 3", {"holdout": 0.2, "patience": 3}),
    ("PARALLEL", {"parallel": True}),
    ("CHECKPOINT 'ck.oocml'", {"checkpoint": "ck.oocml"}),
    ("CHECKPOINT 'ck' EVERY 5 PARTITIONS", {"checkpoint": "ck", "checkpoint_every": 5}),
    ("RESUME", {"resume": True}),
    ("AS my_model", {"name": "my_model"}),
]


@pytest.mark.parametrize("clause, fields", TRAIN_CLAUSES)
def test_every_train_clause(clause, fields):
    (stmt,) = parse(f"{BASE} {clause}")
    expected = ast.Train("sgd", Source(path="data/*.parquet"), target="y", **fields)
    assert stmt == expected


def test_clauses_in_any_order_and_case_insensitive():
    a = parse(f"{BASE} SCALE standard EPOCHS 2 AS m")
    b = parse("train SGD on 'data/*.parquet' as m epochs 2 Scale standard predict y")
    assert a[0] == ast.Train("sgd", Source(path="data/*.parquet"), target="y", scale="standard",
                             epochs=2, name="m")
    assert b[0] == ast.Train("SGD", Source(path="data/*.parquet"), target="y", scale="standard",
                             epochs=2, name="m")


STATEMENTS = [
    ("PREDICT USING m ON 'new/'", ast.Predict("m", Source(path="new/"))),
    ("PREDICT PROBA USING m ON t", ast.Predict("m", Source(table="t"), proba=True)),
    ("PREDICT USING m ON 'a.csv' FORMAT csv INTO 'out/' OVERWRITE",
     ast.Predict("m", Source(path="a.csv", format="csv"), into="out/", overwrite=True)),
    ("PREDICT USING m ON t INTO 'out/'", ast.Predict("m", Source(table="t"), into="out/")),
    ("EVALUATE m ON 'test/*.parquet'", ast.Evaluate("m", Source(path="test/*.parquet"))),
    ("SHOW MODELS", ast.ShowModels()),
    ("show algorithms", ast.ShowAlgorithms()),
    ("DESCRIBE m", ast.Describe("m")),
    ("DROP MODEL m", ast.DropModel("m")),
    ("SAVE MODEL m TO 'm.oocml'", ast.SaveModel("m", "m.oocml")),
    ("LOAD MODEL m FROM 'it''s.oocml'", ast.LoadModel("m", "it's.oocml")),
    ("EXPLAIN SHOW MODELS", ast.Explain(ast.ShowModels())),
    ("EXPLAIN TRAIN sgd ON t", ast.Explain(ast.Train("sgd", Source(table="t")))),
    ("TRAIN sklearn.linear_model.SGDRegressor ON \"my table\"",
     ast.Train("sklearn.linear_model.SGDRegressor", Source(table="my table"))),
]


@pytest.mark.parametrize("text, expected", STATEMENTS)
def test_every_statement(text, expected):
    assert parse(text) == [expected]


def test_several_statements_comments_and_empty_ones():
    text = '''-- a comment ; with a semicolon
    SHOW MODELS; ;
    /* block ; comment */ DESCRIBE "odd ""name""";
    '''
    assert parse(text) == [ast.ShowModels(), ast.Describe('odd "name"')]
    assert parse("") == [] and parse(" ; -- nothing\n") == []


def test_keyword_words_can_still_be_columns():
    (stmt,) = parse("TRAIN sgd ON t PREDICT train FEATURES model, show WHERE epochs > 1")
    assert stmt.target == "train" and stmt.features == ("model", "show")
    assert stmt.where == Compare("epochs", ">", 1)


def test_positions_are_kept():
    stmts = parse("SHOW MODELS;\n  DESCRIBE m")
    assert [s.position for s in stmts] == [(1, 1), (2, 3)]


def test_with_literals_are_values_never_code():
    (stmt,) = parse(f"{BASE} WITH (hidden_layer_sizes = (10, 5), x = [1, -2.5, 'a'], e = [], "
                    "s = '__import__(''os'')')")
    assert dict(stmt.params) == {"hidden_layer_sizes": (10, 5), "x": [1, -2.5, "a"], "e": [],
                                 "s": "__import__('os')"}


@pytest.mark.parametrize("text, fragments", [
    ("TRIAN sgd ON 'x'", ["line 1, column 1", "unexpected 'TRIAN'", "did you mean 'TRAIN'",
                          "  TRIAN sgd ON 'x'\n  ^"]),
    ("TRAIN sgd PREDICT y", ["column 11", "expected", "ON", "            ^"]),
    ("TRAIN sgd ON 'x' PREDCT y", ["did you mean 'PREDICT'"]),
    ("TRAIN sgd ON 'x", ["quote left open"]),
    ("TRAIN sgd ON 'x' /* never closed", ["comment left open"]),
    ("SHOW MODELS;\nTRAIN sgd ON\n", ["line 2", "ends too early"]),
    ("TRAIN sgd ON 'x' EPOCHS 0", ["EPOCHS takes a whole number >= 1", "^"]),
    ("TRAIN sgd ON 'x' EPOCHS 1.5", ["EPOCHS takes a whole number"]),
    ("TRAIN sgd ON 'x' EPOCHS 2 EPOCHS 3", ["EPOCHS clause is given twice", "column 27"]),
    ("TRAIN sgd ON 'x' SCALE standrd", ["unknown scaling 'standrd'", "did you mean 'standard'"]),
    ("TRAIN sgd ON 'x' ENCODE onehto", ["did you mean 'onehot'"]),
    ("TRAIN sgd ON 'x' ENCODE ordinal 5", ["ENCODE ordinal takes no number"]),
    ("TRAIN sgd ON 'x' HOLDOUT 1.5", ["HOLDOUT takes a fraction"]),
    ("TRAIN sgd ON 'x' WITH (a = 1, a = 2)", ["'a' is given twice"]),
    ("TRAIN sgd ON 'x' WHERE 1 = 2", ["needs a column"]),
    ("TRAIN sgd ON 'x' WHERE a = b", ["comparing two columns"]),
    ("\x00", ["unexpected character"]),
])
def test_syntax_errors_say_where_and_what(text, fragments):
    with pytest.raises(OocmlSyntaxError) as info:
        parse(text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_syntax_error_attributes():
    with pytest.raises(OocmlSyntaxError) as info:
        parse("SHOW MODELS;\nDESCRIBE")
    error = info.value
    assert (error.line, error.column) == (2, 9) and error.expected == ["DATA", "a name"]
    assert error.statement_text == "DESCRIBE"


def test_split_and_complete_for_the_repl():
    assert split_statements("SHOW MODELS; DESCRIBE 'a;b' ; -- x;\n") == ["SHOW MODELS", "DESCRIBE 'a;b'"]
    assert statement_complete("SHOW MODELS;") and statement_complete("SHOW MODELS; -- done")
    assert not statement_complete("TRAIN sgd ON 'a;")
    assert not statement_complete("TRAIN sgd ON t /* ; */")
    assert {"TRAIN", "PREDICT", "EXPLAIN", "WHERE"} <= set(KEYWORDS) and "train" in KEYWORDS


def test_parse_condition():
    assert parse_condition("x > 1 and y in ('a')") == And((Compare("x", ">", 1), In("y", ("a",))))


# -- compiling ---------------------------------------------------------------------------------

def test_compiles_to_the_accessors_plan():
    (stmt,) = parse("TRAIN sgd ON 'x' PREDICT y SCALE standard")
    expected = Plan(estimator=spec_for(SGDClassifier, None, 0), target="y",
                    steps=(Step("scale", "standard"),))
    assert compile_train(stmt).without_source() == expected


def test_compiles_every_clause():
    (stmt,) = parse("TRAIN sgd ON 't.csv' PREDICT y FEATURES a, b WHERE a > 0 ENCODE hash 32 "
                    "IMPUTE zero SCALE maxabs REDUCE pca 2 WITH (alpha=0.01) EPOCHS 2 "
                    "BLOCKSIZE 100 SHUFFLE SEED 5 HOLDOUT 0.1 EARLY STOP PATIENCE 2 "
                    "CHECKPOINT 'c' EVERY 4 PARTITIONS RESUME AS m")
    plan = compile_train(stmt)
    assert plan.steps == (Step("impute", "zero"), Step("encode", "hash", freeze_params({"n_features": 32})),
                          Step("scale", "maxabs"), Step("reduce", "pca", freeze_params({"n_components": 2})))
    assert dict(plan.estimator.params) == {"alpha": 0.01, "random_state": 5}
    assert plan.random_state == 5 and plan.name == "m" and plan.where == Compare("a", ">", 0)
    s = plan.stream
    assert (s.epochs, s.block_rows, s.shuffle, s.holdout, s.patience, s.strategy, s.checkpoint,
            s.checkpoint_every, s.resume) == (2, 100, True, 0.1, 2, "sequential", "c", 4, True)
    assert plan.source == Source(path="t.csv")
    (parallel,) = parse("TRAIN sgd ON 't.csv' PREDICT y PARALLEL")
    assert compile_train(parallel).stream.strategy == "average"
    (both,) = parse("TRAIN sgd ON 't.csv' PREDICT y PARALLEL CHECKPOINT 'c'")
    with pytest.raises(ParameterError, match="at line 1, column 1: CHECKPOINT works with "
                                             "sequential training"):
        compile_train(both)  # refused before any read


def test_scale_none_adds_no_step():
    (stmt,) = parse("TRAIN sgd ON t PREDICT y SCALE none")
    assert compile_train(stmt).steps == ()


def test_passive_aggressive_maps_to_sgd_without_deprecation(recwarn):
    (stmt,) = parse("TRAIN passive_aggressive ON t PREDICT y")
    plan = compile_train(stmt)
    assert plan.estimator.qualname == "sklearn.linear_model.SGDClassifier"
    assert dict(plan.estimator.params)["learning_rate"] == "pa1"
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning | FutureWarning)]


@pytest.mark.parametrize("text, error, fragment", [
    ("TRAIN sdg ON t", UnknownAlgorithmError, "did you mean 'sgd'"),
    ("TRAIN os.system ON t", UnknownAlgorithmError, "only scikit-learn classes"),
    ("TRAIN sklearn.linear_model.LogisticRegression ON t", UnknownAlgorithmError, "partial_fit"),
    ("TRAIN sgd ON t WITH (alpah = 0.1)", ParameterError, "did you mean 'alpha'"),
    ("TRAIN sgd ON t WITH (alpha = 'x')", ParameterError, "alpha"),
    ("TRAIN sgd ON t WITH (loss = 'nope')", ParameterError, "loss"),
])
def test_compile_errors_before_reading(text, error, fragment):
    (stmt,) = parse(text)
    with pytest.raises(error, match=fragment):
        compile_train(stmt)


def test_accessor_rendering_is_runnable_python():
    (stmt,) = parse("TRAIN mlp ON 'd/*.parquet' PREDICT y WHERE a > 1 FEATURES a, b SCALE minmax "
                    "WITH (hidden_layer_sizes = (8,)) EPOCHS 2 SHUFFLE SEED 3")
    code = format_plan_as_accessor(compile_train(stmt))
    compile(code, "<explain>", "exec")
    assert ".ml.where('a > 1').select(features=['a', 'b']).scale('minmax')" in code
    assert "MLPClassifier(hidden_layer_sizes=(8,))" in code
    assert "epochs=2, shuffle=True, random_state=3" in code


def test_the_installed_package_carries_the_grammar():
    from importlib import resources

    assert resources.files("oocml.grammar").joinpath("oocml.lark").is_file()


def test_options_belong_to_the_path_they_follow():
    (train,) = parse("TRAIN sgd ON 's3://b/d/' FORMAT csv OPTIONS (anon = TRUE, "
                     "endpoint_url = 'http://127.0.0.1:9000') PREDICT y")
    assert train.source == Source(path="s3://b/d/", format="csv",
                                  options=(("anon", True), ("endpoint_url", "http://127.0.0.1:9000")))
    (predict,) = parse("PREDICT USING m ON 'a' OPTIONS (x = 1) INTO 'gs://o/' OPTIONS (token = 'T') "
                       "OVERWRITE")
    assert predict.source.options == (("x", 1),) and predict.into_options == (("token", "T"),)
    assert predict.overwrite
    save, load = parse("SAVE MODEL m TO 's3://b/m.oocml' OPTIONS (key = 'k'); "
                       "LOAD MODEL n FROM 's3://b/m.oocml' OPTIONS (key = 'k')")
    assert save.options == load.options == (("key", "k"),)
    with pytest.raises(OocmlSyntaxError, match="option 'a' is given twice in OPTIONS"):
        parse("TRAIN sgd ON 'd' OPTIONS (a = 1, a = 2) PREDICT y")
    assert compile_train(train).source == train.source


def test_a_source_prints_its_options_with_secrets_masked():
    source = Source(path="s3://b/d/", options=(("endpoint_url", "http://h"), ("secret", "S3CR3T")))
    assert str(source) == "'s3://b/d/' OPTIONS (endpoint_url = 'http://h', secret = '***')"
    assert "S3CR3T" not in repr(source)
