"""The rules a Plan must meet, each one function that returns the value it accepts, and
:func:`validate`, which applies them all: the valid names, numbers and combinations, in one
place that both faces and the engine trust. The parser applies the same rules clause by
clause, to point at the culprit's line and column. Reads no data, imports no ML library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from .errors import ParameterError, did_you_mean
from .plan import Distribution, Plan, Search, Step, StreamOptions, freeze_params

# -- the valid names ------------------------------------------------------------------------------

SCALINGS = ("standard", "minmax", "maxabs")  # the faces also take "none": no step
IMPUTATIONS = ("mean", "median", "zero")
ENCODINGS = ("onehot", "ordinal", "hash", "text")
REDUCTIONS = ("pca",)
METHODS = {"impute": IMPUTATIONS, "encode": ENCODINGS, "scale": SCALINGS, "reduce": REDUCTIONS}
WHAT = {"impute": "imputation", "encode": "encoding", "scale": "scaling", "reduce": "reduction"}
# How partitions are trained: one after another, or one per worker per round with the models
# averaged (PARALLEL).
STRATEGIES = ("sequential", "average")
PRECISIONS = ("float32", "float64")
SPARSE_ENCODINGS = ("hash", "text")  # stateless, and their blocks are sparse
DISTRIBUTIONS = ("loguniform", "uniform", "randint")
SEARCH_HOLDOUT = 0.2  # the holdout fraction TUNE compares candidates on, unless one is given


# -- the rules, each one function that returns the value it accepts -------------------------------

def whole_number(name: str, value: Any, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParameterError(f"{name} takes a whole number >= {minimum}, not {value!r}")
    return value


def fraction(name: str, value: Any) -> float:
    """A number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ParameterError(f"{name} takes a fraction between 0 and 1, not {value!r}")
    return float(value)


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParameterError(f"{name} takes True or False, not {value!r}")
    return value


def value_range(name: str, value: Any) -> tuple:
    """Two numbers, the first below the second (a scaler's ``feature_range``)."""
    ok = (isinstance(value, tuple | list) and len(value) == 2
          and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
          and value[0] < value[1])
    if not ok:
        raise ParameterError(f"{name} takes two numbers (low, high) with low < high, not {value!r}")
    return tuple(value)


def column_names(name: str, value: Any) -> tuple[str, ...]:
    """One or more column names (an encoding's own columns)."""
    if (not isinstance(value, tuple | list) or not value
            or not all(isinstance(v, str) for v in value)):
        raise ParameterError(f"{name} takes a list of column names, not {value!r}")
    return tuple(value)


def ngrams(name: str, value: Any) -> tuple[int, int]:
    """``(low, high)`` word n-gram lengths, 1 <= low <= high."""
    ok = (isinstance(value, tuple | list) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
          and 1 <= value[0] <= value[1])
    if not ok:
        raise ParameterError(f"{name} takes two whole numbers (low, high) with 1 <= low <= "
                             f"high, not {value!r}")
    return tuple(value)


def one_of(what: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of ``choices``, case-insensitive; the error suggests the closest."""
    if not isinstance(value, str) or value.lower() not in choices:
        raise ParameterError(f"unknown {what} {value!r}{did_you_mean(str(value), choices)}; "
                             f"choose one of {', '.join(choices)}")
    return value.lower()


def _optional(rule: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda name, value: None if value is None else rule(name, value)


def _none_or(*choices: str) -> Callable[[str, Any], Any]:
    return _optional(lambda name, value: one_of(name, value, choices))


# What each step method takes: parameter -> rule. Defaults live with the steps themselves.
STEP_PARAMETERS: dict[tuple[str, str], dict[str, Callable[[str, Any], Any]]] = {
    ("impute", "mean"): {}, ("impute", "median"): {}, ("impute", "zero"): {},
    ("encode", "onehot"): {"max_categories": whole_number, "columns": column_names},
    ("encode", "ordinal"): {"columns": column_names},
    ("encode", "hash"): {"n_features": whole_number, "columns": column_names},
    ("encode", "text"): {"n_features": whole_number, "ngram_range": ngrams, "lowercase": flag,
                         "stop_words": _none_or("english"), "alternate_sign": flag,
                         "norm": _none_or("l1", "l2"), "binary": flag, "tfidf": flag,
                         "columns": column_names},
    ("scale", "standard"): {"with_mean": flag, "with_std": flag, "copy": flag},
    ("scale", "minmax"): {"feature_range": value_range, "clip": flag, "copy": flag},
    ("scale", "maxabs"): {"copy": flag},
    ("reduce", "pca"): {"n_components": whole_number},
}
STREAM_RULES: dict[str, Callable[[str, Any], Any]] = {
    "epochs": whole_number, "block_rows": _optional(whole_number), "shuffle": flag,
    "shuffle_window": _optional(whole_number), "prefetch": whole_number,
    "strategy": lambda name, value: one_of("strategy", value, STRATEGIES),
    "holdout": _optional(fraction), "patience": _optional(whole_number),
    "checkpoint": lambda name, value: value if value is None or isinstance(value, str) else
    _fail(f"checkpoint takes a path, not {value!r}"),
    "checkpoint_every": _optional(whole_number), "resume": flag,
    "precision": lambda name, value: None if value is None else one_of("precision", value,
                                                                        PRECISIONS),
    "cache": lambda name, value: value if value is None or isinstance(value, bool | str) else
    _fail(f"cache takes True, False or a folder, not {value!r}"),
}


def _fail(message: str) -> Any:
    raise ParameterError(message)


def check_step(step: Step) -> Step:
    """One step's kind, method and parameters."""
    if step.kind not in METHODS:
        raise ParameterError(f"unknown step {step.kind!r}; choose one of {', '.join(METHODS)}")
    method = one_of(WHAT[step.kind], step.method, METHODS[step.kind])
    allowed = STEP_PARAMETERS[step.kind, method]
    label = f"{step.kind.upper()} {method}"
    for name, value in step.params:
        if name not in allowed:
            takes = f"; it takes {', '.join(allowed)}" if allowed else ""
            raise ParameterError(f"{label} takes no parameter {name!r}"
                                 f"{did_you_mean(name, allowed)}{takes}")
        allowed[name](f"{label} {name}", value)
    return step


def check_steps(steps: tuple[Step, ...]) -> None:
    """Every step, and their order: one encoding, a reduction last, median imputation first."""
    kinds = [check_step(s).kind for s in steps]
    check_encodings([s for s in steps if s.kind == "encode"])
    if "reduce" in kinds[:-1]:
        raise ParameterError(".reduce() / REDUCE must be the last step (it projects what every "
                             "other step produced)")
    for i, step in enumerate(steps):
        if (step.kind, step.method) == ("impute", "median") and "scale" in kinds[:i]:
            raise ParameterError("IMPUTE median must come before other steps (the median is "
                                 "taken of the data as read)")


def check_encodings(encodes: list[Step]) -> None:
    """Encodings per column: each names its columns, but one may leave them out (it encodes
    every categorical column no other names); no column is encoded twice."""
    default = [s for s in encodes if "columns" not in dict(s.params)]
    if len(default) > 1:
        raise ParameterError("only one encoding can apply to every categorical column; name "
                             "the columns of the others (ENCODE text(review), onehot(country) / "
                             ".encode('text', columns=['review']))")
    seen: dict[str, str] = {}
    for step in encodes:
        for column in dict(step.params).get("columns", ()):
            if column in seen:
                raise ParameterError(f"column {column!r} is encoded twice ({seen[column]} and "
                                     f"{step.method}); give each column one encoding")
            seen[column] = step.method


def encoding_of(steps: tuple[Step, ...], categorical: list[str]) -> dict[str, Step]:
    """Which encoding step each encoded column gets: the step that names it, else the one
    that names no columns (categorical columns only)."""
    encodes = [s for s in steps if s.kind == "encode"]
    chosen = {c: s for s in encodes for c in dict(s.params).get("columns", ())}
    default = next((s for s in encodes if "columns" not in dict(s.params)), None)
    if default is not None:
        chosen.update({c: default for c in categorical if c not in chosen})
    return chosen


def check_stream(stream: StreamOptions) -> None:
    """Each streaming option, then how they combine."""
    for item in fields(stream):
        STREAM_RULES[item.name](item.name, getattr(stream, item.name))
    if stream.patience is not None and stream.holdout is None:
        raise ParameterError("early stopping (patience) needs a holdout fraction to watch")
    if stream.checkpoint is None and (stream.resume or stream.checkpoint_every is not None):
        raise ParameterError("RESUME and EVERY n PARTITIONS need a checkpoint path "
                             "(CHECKPOINT 'path' / checkpoint='path')")
    if stream.strategy == "average" and stream.checkpoint is not None:
        raise ParameterError("CHECKPOINT works with sequential training; PARALLEL (strategy="
                             "'average') cannot checkpoint yet: drop one of the two")


def search_space(space: Any) -> tuple[tuple[str, tuple | Distribution], ...]:
    """``{name: values or distribution}`` (lists, tuples, :class:`Distribution`, or scipy.stats
    ``loguniform``/``uniform``/``randint``) as a Search's frozen space."""
    if not isinstance(space, dict) or not space:
        raise ParameterError("search= takes a dict of parameter name -> list of values or a "
                             f"distribution, with at least one entry, not {space!r}")
    return tuple((str(name), _search_values(str(name), values)) for name, values in space.items())


def _search_values(name: str, values: Any) -> tuple | Distribution:
    if isinstance(values, Distribution):
        return values
    if isinstance(values, list | tuple):
        return freeze_params({"v": list(values)})[0][1]
    frozen = getattr(values, "dist", None)
    kind = getattr(frozen, "name", None)
    kind = "loguniform" if kind == "reciprocal" else kind
    if kind in DISTRIBUTIONS:
        low, high = (float(v) for v in values.support())
        return Distribution(kind, low, high)
    raise ParameterError(f"search parameter {name!r} takes a list of values or a distribution "
                         f"(scipy.stats {', '.join(DISTRIBUTIONS)}), not {values!r}")


def check_search(search: Search, stream: StreamOptions) -> None:
    """TUNE's space, trials and schedule, and the options it works with."""
    if not search.space:
        raise ParameterError("TUNE needs at least one parameter to search")
    names = [name for name, _ in search.space]
    if len(set(names)) != len(names):
        raise ParameterError(f"TUNE names a parameter twice: {names}")
    grid, sampled = 1, False
    for name, values in search.space:
        if isinstance(values, Distribution):
            check_distribution(name, values)
            sampled = True
        elif not values:
            raise ParameterError(f"TUNE parameter {name!r} has no values to try")
        else:
            grid *= len(values)
    if search.trials is not None:
        whole_number("TRIALS", search.trials)
        if not sampled and search.trials > grid:
            raise ParameterError(f"TRIALS {search.trials} asks for more candidates than the "
                                 f"grid's {grid}: drop TRIALS to try every one, or use a "
                                 "distribution (LOGUNIFORM, UNIFORM, RANDINT)")
    elif sampled:
        raise ParameterError("a TUNE distribution needs TRIALS n (n_candidates=): how many "
                             "candidates to draw")
    whole_number("reduction_factor", search.reduction_factor, minimum=2)
    if stream.holdout is None:
        raise ParameterError("TUNE compares candidates on held-out rows: give HOLDOUT "
                             f"(holdout=); the faces default it to {SEARCH_HOLDOUT}")
    if stream.strategy == "average":
        raise ParameterError("TUNE trains its candidates side by side on every core; "
                             "PARALLEL (strategy='average') cannot be combined with it")
    if stream.checkpoint is not None:
        raise ParameterError("TUNE cannot CHECKPOINT or RESUME yet: drop one of the two")


def check_distribution(name: str, distribution: Distribution) -> None:
    kind = one_of("distribution", distribution.kind, DISTRIBUTIONS)
    low, high = distribution.low, distribution.high
    if not (isinstance(low, int | float) and isinstance(high, int | float)) or not low < high:
        raise ParameterError(f"{kind.upper()}({low}, {high}) for {name!r} needs low < high")
    if kind == "loguniform" and low <= 0:
        raise ParameterError(f"LOGUNIFORM({low}, {high}) for {name!r} needs low > 0")
    if kind == "randint" and not (float(low).is_integer() and float(high).is_integer()):
        raise ParameterError(f"RANDINT({low}, {high}) for {name!r} takes whole numbers")


BOOSTED_MODULE = "oocml.boosting."  # estimators the engine boosts from external memory


def check_boosted(plan: Plan) -> None:
    """What boosted trees cannot take: each streaming option that means nothing to them is
    refused by name, with what to do instead."""
    stream, name = plan.stream, plan.estimator.class_name
    refused = [
        (stream.epochs != 1, f"EPOCHS {stream.epochs}: every boosting round reads every row; the "
                             "rounds are n_estimators (WITH (n_estimators = 300))"),
        (stream.shuffle, "SHUFFLE: every boosting round sees every row, so their order changes "
                         "nothing; leave SHUFFLE out"),
        (stream.strategy == "average", "PARALLEL: XGBoost trains its trees on every core "
                                       "already; leave PARALLEL out"),
        (stream.checkpoint is not None, "CHECKPOINT and RESUME: a boosted fit cannot resume "
                                        "yet; leave them out"),
    ]
    for wrong, why in refused:
        if wrong:
            raise ParameterError(f"{name} (boosted trees) does not take {why}")


def validate(plan: Plan) -> Plan:
    """``plan`` if it meets every rule; else a :class:`ParameterError` naming the culprit.

    Reads no data and imports no ML library: what depends on the data (columns, dtypes)
    or on the estimator (its parameters, its task) is checked where those are known.
    """
    check_steps(plan.steps)
    check_stream(plan.stream)
    if plan.estimator.qualname.startswith(BOOSTED_MODULE):
        check_boosted(plan)
    if plan.search is not None:
        check_search(plan.search, plan.stream)
    if isinstance(plan.features, str) or isinstance(plan.exclude, str):
        raise ParameterError("features= and exclude= take lists of column names, not a string")
    if plan.random_state is not None:
        whole_number("random_state", plan.random_state, minimum=0)
    return plan
