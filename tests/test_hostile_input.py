"""A hostile but realistic user: model names that try to leave the store, secrets in statements
that do not parse, targets that cannot be learned, and data that breaks the readers. Each case
is refused by an OocmlError that names the culprit and the fix, before any harm is done."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import oocml
from oocml.catalog import MAX_NAME_LENGTH
from oocml.errors import OocmlError, ParameterError

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
    shutil.copy(root / "store" / "victim.oocml", root / "victim.oocml")
    (root / "store" / "sub").mkdir()
    shutil.copy(root / "store" / "victim.oocml", root / "store" / "sub" / "victim.oocml")
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
