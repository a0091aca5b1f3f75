"""Parse tree -> frozen AST nodes (:mod:`oocml.dsl.ast`), with the checks a grammar cannot
make: a clause given twice, and each value against the Plan validator's own rule, the
error placed at the clause's line and column."""

from __future__ import annotations

import re
from typing import Any

from lark import Token, Transformer, v_args

from ..errors import OocmlSyntaxError, ParameterError
from ..plan import (
    REDUCTION_FACTOR,
    And,
    Compare,
    Distribution,
    In,
    IsNull,
    Not,
    Or,
    Search,
    Source,
    freeze_params,
)
from ..plan_rules import (
    DISTRIBUTIONS,
    ENCODINGS,
    IMPUTATIONS,
    PRECISIONS,
    REDUCTIONS,
    SCALINGS,
    check_distribution,
    fraction,
    one_of,
    whole_number,
)
from . import ast
from .grammar import keywords

_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}


def _is_keyword(item: Any) -> bool:
    return isinstance(item, Token) and item.type in keywords()


def _values(children: list) -> list:
    """The meaningful children: keywords and absent optionals dropped, numbers converted."""
    return [_number(c) if isinstance(c, Token) and c.type == "NUMBER" else c
            for c in children if c is not None and not _is_keyword(c)]


def _number(token: Token) -> int | float:
    text = str(token)
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)


def _has(children: list, keyword: str) -> bool:
    return any(isinstance(c, Token) and c.type == keyword for c in children)


class _Clause:
    """One TRAIN or UPDATE clause: its keyword (for duplicate checks), fields, and position."""

    def __init__(self, keyword: str, meta: Any, **fields: Any):
        self.keyword, self.fields = keyword, fields
        self.position = (getattr(meta, "line", 1), getattr(meta, "column", 1))


def _merged(clauses: list[_Clause]) -> dict[str, Any]:
    """The fields of a statement's clauses, each clause at most once."""
    fields: dict[str, Any] = {}
    seen: set[str] = set()
    for clause in clauses:
        if clause.keyword in seen:
            raise _fail(f"the {clause.keyword} clause is given twice", clause.position)
        seen.add(clause.keyword)
        fields.update(clause.fields)
    return fields


def _threshold(values: list, meta: Any) -> tuple[float, ...]:
    """VALIDATE's THRESHOLD, if given: a number from 0 to 1 (both metrics are)."""
    if not values or values[0] is None:
        return ()
    if not 0 <= values[0] <= 1:
        raise _fail(f"THRESHOLD must be from 0 to 1, not {values[0]}", _meta_position(meta))
    return (float(values[0]),)


def _fail(message: str, position: tuple[int, int]) -> OocmlSyntaxError:
    return OocmlSyntaxError(f"at line {position[0]}, column {position[1]}: {message}",
                            line=position[0], column=position[1])


def _checked(position: tuple[int, int], rule: Any, *args: Any) -> Any:
    """``rule(*args)``, one of the Plan validator's rules, its error placed at ``position``."""
    try:
        return rule(*args)
    except ParameterError as exc:
        raise _fail(str(exc), position) from None


def _whole(value: Any, clause: str, position: tuple[int, int], minimum: int = 1) -> int:
    return _checked(position, whole_number, clause, value, minimum)


def _choice(value: str, choices: tuple[str, ...], what: str, position: tuple[int, int]) -> str:
    return _checked(position, one_of, what, value, choices)


def _meta_position(meta: Any) -> tuple[int, int]:
    return (getattr(meta, "line", 1), getattr(meta, "column", 1))


@v_args(meta=True)
class ToAst(Transformer):
    """Builds the frozen AST nodes; checks what the grammar alone cannot (duplicates, ranges)."""

    # -- atoms
    def name(self, meta, children):
        token = children[0]
        return token[1:-1].replace('""', '"') if token.type == "QUOTED_NAME" else str(token)

    def model_ref(self, meta, children):
        """``name`` or ``name@N``, N a version number from 1."""
        name, version = children
        if version is None:
            return name
        return f"{name}@{_whole(_number(version), 'a model version (name@N)', _meta_position(meta))}"

    def algorithm(self, meta, children):
        return ".".join(children)

    def number(self, meta, children):
        return _number(children[0])

    def string(self, meta, children):
        return unquote(children[0])

    def true(self, meta, children):
        return True

    def false(self, meta, children):
        return False

    def null(self, meta, children):
        return None

    def list_value(self, meta, children):
        return _items(children)

    def tuple_value(self, meta, children):
        return tuple(_items(children))

    # -- sources
    def path_source(self, meta, children):
        path, _, fmt, options = children
        return Source(path=unquote(path), format=None if fmt is None else fmt.lower(),
                      options=options.pairs if options is not None else ())

    def options(self, meta, children):
        pairs = _values(children)
        names = [name for name, _ in pairs]
        for name in names:
            if names.count(name) > 1:
                raise _fail(f"option {name!r} is given twice in OPTIONS", _meta_position(meta))
        return _Options(freeze_params(dict(pairs)))

    def delta_source(self, meta, children):
        _, path, _, version, options = children
        return Source(path=unquote(path), format="delta",
                      options=options.pairs if options is not None else (),
                      version=None if version is None else _whole(_number(version), "VERSION",
                                                                  _meta_position(meta), 0))

    def table_source(self, meta, children):
        return Source(table=children[0])

    # -- conditions
    def or_condition(self, meta, children):
        return Or(tuple(_values(children)))

    def and_condition(self, meta, children):
        return And(tuple(_values(children)))

    def negation(self, meta, children):
        return Not(_values(children)[0])

    def compare_op(self, meta, children):
        return str(children[0])

    def column_ref(self, meta, children):
        return _ColumnRef(children[0])

    def comparison(self, meta, children):
        left, op, right = children
        op = "!=" if op == "<>" else str(op)
        if isinstance(left, _ColumnRef) and isinstance(right, _ColumnRef):
            raise _fail("comparing two columns is not supported; compare a column with a value",
                        _meta_position(meta))
        if isinstance(left, _ColumnRef):
            return Compare(left.name, op, right)
        if isinstance(right, _ColumnRef):
            return Compare(right.name, _FLIP[op], left)
        raise _fail("a comparison needs a column on one side", _meta_position(meta))

    def membership(self, meta, children):
        column, *rest = children
        return In(column, tuple(_values(rest)), negated=_has(children, "NOT"))

    def null_test(self, meta, children):
        return IsNull(children[0], negated=_has(children, "NOT"))

    def between(self, meta, children):
        column, low, high = _values(children)
        inside = And((Compare(column, ">=", low), Compare(column, "<=", high)))
        return Not(inside) if _has(children, "NOT") else inside

    # -- TRAIN clauses
    def predict_clause(self, meta, children):
        return _Clause("PREDICT", meta, target=_values(children)[0])

    def features_list(self, meta, children):
        return _Clause("FEATURES", meta, features=tuple(_values(children)))

    def features_all(self, meta, children):
        return _Clause("FEATURES", meta, exclude=tuple(_values(children)))

    def where_clause(self, meta, children):
        return _Clause("WHERE", meta, where=_values(children)[0])

    def encode_item(self, meta, children):
        position = _meta_position(meta)
        values = _values(children)
        method = _choice(values[0], ENCODINGS, "encoding", position)
        columns = tuple(v for v in values[1:] if isinstance(v, str))
        numbers = [v for v in values[1:] if isinstance(v, int | float)]
        params = tuple(v for v in values[1:] if isinstance(v, tuple))
        if numbers and method == "ordinal":
            raise _fail("ENCODE ordinal takes no number (ENCODE onehot n caps the categories per "
                        "column; ENCODE hash n and text n set the hashed columns)", position)
        size = _whole(numbers[0], f"ENCODE {method}", position) if numbers else None
        return ast.Encoding(method, columns, size, params)

    def encode_clause(self, meta, children):
        return _Clause("ENCODE", meta, encodings=tuple(_values(children)))

    def impute_clause(self, meta, children):
        return _Clause("IMPUTE", meta, impute=_choice(_values(children)[0], IMPUTATIONS,
                                                      "imputation", _meta_position(meta)))

    def scale_clause(self, meta, children):
        return _Clause("SCALE", meta, scale=_choice(_values(children)[0], (*SCALINGS, "none"),
                                                    "scaling", _meta_position(meta)))

    def reduce_clause(self, meta, children):
        position = _meta_position(meta)
        method, size = _values(children)
        return _Clause("REDUCE", meta, reduce=_choice(method, REDUCTIONS, "reduction", position),
                       reduce_size=_whole(size, "REDUCE pca", position))

    def param(self, meta, children):
        return (children[0], children[1])

    def with_clause(self, meta, children):
        params = _values(children)
        names = [p[0] for p in params]
        for name in names:
            if names.count(name) > 1:
                raise _fail(f"parameter {name!r} is given twice in WITH", _meta_position(meta))
        return _Clause("WITH", meta, params=tuple(params))

    def epochs_clause(self, meta, children):
        return _Clause("EPOCHS", meta, epochs=_whole(_values(children)[0], "EPOCHS",
                                                     _meta_position(meta)))

    def blocksize_clause(self, meta, children):
        return _Clause("BLOCKSIZE", meta, block_rows=_whole(_values(children)[0], "BLOCKSIZE",
                                                            _meta_position(meta)))

    def shuffle_clause(self, meta, children):
        """SHUFFLE [WINDOW n] [SEED n]: each number known by the keyword before it."""
        position = _meta_position(meta)
        given = {t.type: _number(v) for t, v in zip(children, children[1:])
                 if isinstance(t, Token) and t.type in ("WINDOW", "SEED") and v is not None}
        window = given.get("WINDOW")
        seed = given.get("SEED")
        return _Clause("SHUFFLE", meta, shuffle=True,
                       shuffle_window=None if window is None else _whole(window, "WINDOW", position),
                       seed=None if seed is None else _whole(seed, "SEED", position, 0))

    def holdout_clause(self, meta, children):
        position = _meta_position(meta)
        share, *patience = _values(children)
        return _Clause("HOLDOUT", meta, holdout=_checked(position, fraction, "HOLDOUT", share),
                       patience=_whole(patience[0], "PATIENCE", position) if patience else None)

    def parallel_clause(self, meta, children):
        return _Clause("PARALLEL", meta, parallel=True)

    def checkpoint_clause(self, meta, children):
        path, *every = _values(children)
        return _Clause("CHECKPOINT", meta, checkpoint=unquote(path),
                       checkpoint_every=_whole(every[0], "EVERY", _meta_position(meta)) if every else None)

    def resume_clause(self, meta, children):
        return _Clause("RESUME", meta, resume=True)

    def cache_clause(self, meta, children):
        folder = _values(children)
        if _has(children, "OFF"):
            return _Clause("CACHE", meta, cache=False)
        return _Clause("CACHE", meta, cache=unquote(folder[0]) if folder else True)

    def precision_clause(self, meta, children):
        return _Clause("PRECISION", meta, precision=_choice(_values(children)[0], PRECISIONS,
                                                            "precision", _meta_position(meta)))

    def tune_values(self, meta, children):
        name, *values = _values(children)
        return name, tuple(values)

    def tune_distribution(self, meta, children):
        name, kind, low, high = _values(children)
        kind = _choice(kind, DISTRIBUTIONS, "distribution", _meta_position(meta))
        return name, Distribution(kind, low, high)

    def tune_clause(self, meta, children):
        position = _meta_position(meta)
        params = [c for c in children if isinstance(c, tuple)]
        numbers = [c for c in _values(children) if not isinstance(c, tuple)]
        trials = halving = None
        if _has(children, "TRIALS"):
            trials = _whole(numbers.pop(0), "TRIALS", position)
        if _has(children, "HALVING"):
            halving = _whole(numbers.pop(0), "HALVING", position, minimum=2)
        search = Search(tuple(params), trials, halving or REDUCTION_FACTOR)
        for name, values in search.space:
            if isinstance(values, Distribution):
                _checked(position, check_distribution, name, values)
        return _Clause("TUNE", meta, search=search)

    def as_clause(self, meta, children):
        return _Clause("AS", meta, name=_values(children)[0])

    # -- statements
    def train(self, meta, children):
        algorithm, source, *clauses = _values(children)
        fields = _merged(clauses)
        replace = _has(children, "REPLACE")
        if replace and "name" not in fields:
            raise _fail("TRAIN OR REPLACE replaces a named model: add AS name",
                        _meta_position(meta))
        return ast.Train(algorithm, source, replace=replace, position=_meta_position(meta),
                         **fields)

    def new_clause(self, meta, children):
        return _Clause("NEW", meta, new=True, include_changed=_has(children, "CHANGED"))

    def update(self, meta, children):
        model, source, *clauses = _values(children)
        fields = _merged(clauses)
        return ast.Update(model, source, position=_meta_position(meta), **fields)

    def validate(self, meta, children):
        model, source, *threshold = _values(children)
        return ast.Validate(model, source, *_threshold(threshold, meta),
                            position=_meta_position(meta))

    def validate_drift(self, meta, children):
        source, reference, *threshold = _values(children)
        return ast.ValidateDrift(source, reference, *_threshold(threshold, meta),
                                 position=_meta_position(meta))

    def predict(self, meta, children):
        model, source, *into = _values(children)
        options = into[1].pairs if len(into) > 1 else ()
        return ast.Predict(model, source, proba=_has(children, "PROBA"),
                           into=unquote(into[0]) if into else None, into_options=options,
                           overwrite=_has(children, "OVERWRITE"), position=_meta_position(meta))

    def predict_explain(self, meta, children):
        """PREDICT EXPLAIN ... [TOP k]: k (default 3, as Model.explain's) a whole number >= 1,
        refused at the TOP keyword's position."""
        model, source, *rest = _values(children)
        top = 3
        keyword = next((c for c in children if isinstance(c, Token) and c.type == "TOP"), None)
        if keyword is not None:
            top = _whole(rest.pop(0), "TOP", (keyword.line, keyword.column))
        options = rest[1].pairs if len(rest) > 1 else ()
        return ast.Predict(model, source, into=unquote(rest[0]) if rest else None,
                           into_options=options, overwrite=_has(children, "OVERWRITE"), top=top,
                           position=_meta_position(meta))

    def evaluate(self, meta, children):
        *view, model, source = _values(children)
        return ast.Evaluate(model, source, view=view[0] if view else None,
                            by_class=_has(children, "CLASS"), position=_meta_position(meta))

    def evaluation_view(self, meta, children):
        return str(children[0]).lower()

    def show_weights(self, meta, children):
        return ast.ShowWeights(_values(children)[0], position=_meta_position(meta))

    def show_trials(self, meta, children):
        return ast.ShowTrials(_values(children)[0], position=_meta_position(meta))

    def show_history(self, meta, children):
        return ast.ShowHistory(_values(children)[0], position=_meta_position(meta))

    def show_versions(self, meta, children):
        return ast.ShowVersions(_values(children)[0], position=_meta_position(meta))

    def rollback_model(self, meta, children):
        model, version = _values(children)
        return ast.RollbackModel(model, _whole(version, "ROLLBACK ... TO VERSION",
                                               _meta_position(meta)), position=_meta_position(meta))

    def describe_data(self, meta, children):
        return ast.DescribeData(_values(children)[0], position=_meta_position(meta))

    def show_models(self, meta, children):
        return ast.ShowModels(position=_meta_position(meta))

    def show_algorithms(self, meta, children):
        return ast.ShowAlgorithms(position=_meta_position(meta))

    def describe(self, meta, children):
        return ast.Describe(_values(children)[0], position=_meta_position(meta))

    def drop_model(self, meta, children):
        return ast.DropModel(_values(children)[0], position=_meta_position(meta))

    def save_model(self, meta, children):
        model, path, *options = _values(children)
        return ast.SaveModel(model, unquote(path), options=options[0].pairs if options else (),
                             overwrite=_has(children, "OVERWRITE"), position=_meta_position(meta))

    def load_model(self, meta, children):
        model, path, *options = _values(children)
        return ast.LoadModel(model, unquote(path), options=options[0].pairs if options else (),
                             replace=_has(children, "REPLACE"), position=_meta_position(meta))

    def explain(self, meta, children):
        return ast.Explain(_values(children)[0], position=_meta_position(meta))

    def start(self, meta, children):
        return [c for c in children if c is not None]


class _Options:
    """The pairs of an OPTIONS clause, until the node that owns them takes them."""

    def __init__(self, pairs: tuple):
        self.pairs = pairs


class _ColumnRef:
    """A column on one side of a comparison, as opposed to a literal value."""

    def __init__(self, name: str):
        self.name = name


def _items(children: list) -> list:
    """Elements of a list/tuple literal: the placeholders of an empty one or a trailing comma go."""
    items = list(children)
    while items and items[-1] is None:
        items.pop()
    return items


def unquote(token: Any) -> str:
    text = str(token)
    return text[1:-1].replace("''", "'") if text[:1] == "'" else text
