"""One validator for a Plan: the same rules, worded the same way, from the accessor, the
language and a Plan built by hand; and the step registries match the validator's names."""

from __future__ import annotations

import pytest

import oocml
from oocml.engine.fit import fit_plan
from oocml.errors import OocmlSyntaxError, ParameterError
from oocml.plan import EstimatorSpec, Plan, Step, StreamOptions
from oocml.plan_rules import ENCODINGS, SCALINGS, STEP_PARAMETERS, validate

SGD = EstimatorSpec("sklearn.linear_model.SGDClassifier")

# (accessor options or chain, statement clause, the words every face must say)
RULES = [
    ({"holdout": 1.5}, "HOLDOUT 1.5", "takes a fraction between 0 and 1, not 1.5"),
    ({"epochs": 0}, "EPOCHS 0", "takes a whole number >= 1, not 0"),
    ({"block_rows": -5}, "BLOCKSIZE -5 ROWS", "takes a whole number >= 1, not -5"),
    ({"strategy": "avrage"}, None, "unknown strategy 'avrage' (did you mean 'average'?)"),
    ({"checkpoint_every": 3}, None, "RESUME and EVERY n PARTITIONS need a checkpoint path"),
    ({"patience": 2}, None, "early stopping (patience) needs a holdout fraction"),
    ({"strategy": "average", "checkpoint": "ck"}, "PARALLEL CHECKPOINT 'ck'",
     "CHECKPOINT works with sequential training"),
]


@pytest.mark.parametrize("options, clause, words", RULES)
def test_every_face_says_the_same(binary, binary_dir, options, clause, words):
    with pytest.raises(ParameterError, match=_re(words)):
        binary.ml.fit_incremental("sgd", target="y", **options)
    stream = {k: v for k, v in options.items()}
    with pytest.raises(ParameterError, match=_re(words)):
        fit_plan(Plan(SGD, "y", stream=StreamOptions(**stream)), binary)  # built by hand
    if clause is not None:
        with pytest.raises((ParameterError, OocmlSyntaxError), match=_re(words)):
            oocml.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y {clause}")


@pytest.mark.parametrize("steps, words", [
    ((Step("scale", "standrd"),), "unknown scaling 'standrd' (did you mean 'standard'?)"),
    ((Step("encode", "onehot", (("n_features", 8),)),), "ENCODE onehot takes no parameter "
                                                         "'n_features'"),
    ((Step("encode", "hash", (("n_features", 0),)),), "ENCODE hash n_features takes a whole "
                                                       "number >= 1"),
    ((Step("reduce", "pca", (("n_components", 2),)), Step("scale", "standard")),
     "must be the last step"),
    ((Step("scale", "standard"), Step("impute", "median")), "IMPUTE median must come before"),
    ((Step("encode", "hash"), Step("encode", "onehot")),
     "only one encoding can apply to every categorical column"),
    ((Step("encode", "text", (("columns", ("a",)),)), Step("encode", "hash", (("columns", ("a",)),))),
     "column 'a' is encoded twice (text and hash)"),
    ((Step("scale", "minmax", (("feature_range", (1, 0)),)),), "low < high"),
])
def test_steps_are_checked_by_the_validator(binary, steps, words):
    with pytest.raises(ParameterError, match=_re(words)):
        validate(Plan(SGD, "y", steps=steps))
    chain = binary.ml
    with pytest.raises(ParameterError, match=_re(words)):
        for step in steps:  # the accessor checks each step as it is added, then the order
            chain = getattr(chain, step.kind)(step.method, **dict(step.params))
        chain.plan("sgd", target="y")


def test_the_step_registries_match_the_validators_names():
    from oocml.encoding import DEFAULTS
    from oocml.preprocessing import SCALERS

    assert tuple(SCALERS) == SCALINGS
    assert tuple(DEFAULTS) == ENCODINGS
    for method, defaults in DEFAULTS.items():
        assert set(defaults) | {"columns"} == set(STEP_PARAMETERS["encode", method])
    for method, scaler in SCALERS.items():
        assert set(STEP_PARAMETERS["scale", method]) <= set(scaler().get_params())


def test_parsing_imports_no_ml_library():
    import subprocess
    import sys

    code = ("import sys; from oocml.dsl.parser import parse; "
            "parse(\"TRAIN sgd ON 'd' PREDICT y SCALE standard HOLDOUT 0.2 AS m\"); "
            "print([m for m in ('sklearn', 'dask', 'pandas', 'oocml.encoding', "
            "'oocml.preprocessing') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _re(words: str) -> str:
    import re

    return re.escape(words)
