"""Every private API of another library that oocml uses, each behind one name.

A private API may change in any release without notice: dask-ml broke when dask moved to
dask-expr, because it used ``dd._Frame`` and ``obj._name``. oocml touches none outside this
module. Each name below says what it relies on and the versions it was checked against
(:data:`CHECKED_AGAINST`), and ``tests/test_compat.py`` fails, naming the API and those
versions, when a new release changes one.

Invariants: these functions only read or copy what the libraries hold, never patch them;
callers that read dask's plans treat any exception here as "take dask's own path" (always
right, only slower), so a changed internal costs speed, never a wrong result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHECKED_AGAINST = {"dask": "2026.8.0", "distributed": "2026.8.0", "numpy": "2.4.6",
                   "pandas": "3.1.1", "pyarrow": "26.0.1", "scikit-learn": "1.9.1"}


def checked_against(*libraries: str) -> str:
    """``"dask 2026.8.0, ..."``: the versions of ``libraries`` (all if none named) that this
    module was checked against, for messages."""
    names = libraries or tuple(CHECKED_AGAINST)
    return ", ".join(f"{name} {CHECKED_AGAINST[name]}" for name in names)


# --- dask: the expression (dask.dataframe.dask_expr) behind a DataFrame -----------------------
# dask-expr's classes are internal; oocml recognises them by class name (checked: dask 2026.8.0).

PROJECTION = "Projection"  # column selection / reordering: ``expr.frame`` is what it selects from
ARROW_STRING_CONVERSION = "ArrowStringConversion"  # object -> arrow strings: ``expr.frame`` below
FUSED_IO = "FusedIO"  # several read tasks concatenated into one partition (its fusion buckets)
PARQUET_READ = "ReadParquetFSSpec"  # ``dd.read_parquet`` on an fsspec filesystem
FROM_MAP = "FromMap"  # ``dd.from_map(func, items)``

# ReadParquetFSSpec operands that, set, make a read something other than "these files' rows":
# categories=, index=, and ``_partitions`` (partitions selected, e.g. by ``.partitions[...]``).
PARQUET_OPERANDS_MUST_BE_EMPTY = ("categories", "index", "_partitions")


def optimized_expr(frame: Any) -> tuple[Any, int]:
    """``frame``'s expression as ``frame.to_delayed()`` computes it, and its partition count.

    Relies on ``DataFrame.expr`` and ``Expr.optimize(fuse=False)`` (dask-expr internals, dask
    2026.8.0): after dask's own optimizations, before blockwise fusion.
    """
    expr = frame.expr.optimize(fuse=False)
    return expr, expr.npartitions


def expr_kind(expr: Any) -> str:
    """The dask-expr class name of ``expr`` (compare with the constants above; dask 2026.8.0)."""
    return type(expr).__name__


def unwrap(expr: Any, kinds: tuple[str, ...]) -> Any:
    """``expr`` with the elementwise wrappers named in ``kinds`` (:data:`PROJECTION`,
    :data:`ARROW_STRING_CONVERSION`) taken off the top. Relies on their ``frame`` operand
    (dask 2026.8.0)."""
    while type(expr).__name__ in kinds:
        expr = expr.frame
    return expr


def fused_buckets(expr: Any) -> tuple[list[list[int]] | None, Any]:
    """For a :data:`FUSED_IO` expression, the indices of the inner read's parts concatenated
    into each of its partitions, and the inner read; ``(None, expr)`` for any other.

    Relies on ``FusedIO._fusion_buckets`` and its ``_expr`` operand (dask 2026.8.0).
    """
    if type(expr).__name__ != FUSED_IO:
        return None, expr
    return [list(bucket) for bucket in expr._fusion_buckets], expr.operand("_expr")


def operand(expr: Any, name: str) -> Any:
    """The operand ``name`` of a dask-expr expression (``Expr.operand``; for a
    :data:`PARQUET_READ`: ``filters``, ``filesystem``, ``kwargs`` and those of
    :data:`PARQUET_OPERANDS_MUST_BE_EMPTY`; dask 2026.8.0)."""
    return expr.operand(name)


@dataclass(frozen=True)
class DaskParquetPlan:
    """What a :data:`PARQUET_READ` expression planned, in plain values.

    ``parts``: per part of the plan, the pieces dask reads and concatenates, each ``(path,
    row groups or None for the whole file, hive keys as ((column, value), ...) or ())``;
    ``hive``: the hive partition column names; ``empty``: dask planned no part (its filters
    keep no row group, or there is no data); ``fs``: the fsspec filesystem of the paths (which
    have lost their protocol); ``meta``: the empty frame of every column of the data set.
    """

    parts: list[list[tuple[str, list[int] | None, tuple]]]
    hive: list[str]
    empty: bool
    fs: Any
    meta: Any


def parquet_plan(expr: Any) -> DaskParquetPlan:
    """The plan of a :data:`PARQUET_READ` expression.

    Relies on ``ReadParquetFSSpec._plan`` (``"empty"``, ``"parts"``: each ``{"piece": (path,
    row_groups, partition_keys)}`` or a list of those when dask aggregates row groups, row
    groups ``None`` or ``[None]`` meaning the whole file; ``"common_kwargs"["partitions"]``:
    objects with a ``name``) and ``ReadParquetFSSpec._dataset_info`` (``"fs"``,
    ``"base_meta"``); dask 2026.8.0 with pyarrow 26.0.1 and pandas 3.1.1.
    """
    plan, info = expr._plan, expr._dataset_info
    hive = [p.name for p in plan["common_kwargs"].get("partitions") or []]
    parts = [] if plan["empty"] else [
        [_piece(item["piece"]) for item in (part if isinstance(part, list) else [part])]
        for part in plan["parts"]]
    return DaskParquetPlan(parts, hive, bool(plan["empty"]), info["fs"], info["base_meta"])


def _piece(piece: tuple) -> tuple[str, list[int] | None, tuple]:
    path, groups, keys = piece
    groups = None if groups is None or list(groups) == [None] else list(groups)
    return str(path), groups, tuple(keys) if keys else ()


def from_map_call(expr: Any) -> tuple[Any, list, list[int] | None] | None:
    """For a :data:`FROM_MAP` expression, ``(func, iterables, chosen partitions or None for
    all)`` of its ``dd.from_map`` call; None for any other.

    Relies on the ``func``, ``iterables`` and ``_partitions`` operands of ``FromMap`` (dask
    2026.8.0).
    """
    if type(expr).__name__ != FROM_MAP:
        return None
    return expr.operand("func"), expr.operand("iterables"), expr.operand("_partitions")


# The names dask gives the tasks that parse text (``key_split`` of a graph key): its CSV
# readers (read_csv, read_table, read_fwf) and read_json(lines=True, blocksize=...).
TEXT_TASKS = frozenset({"read-csv", "read-table", "read-fwf", "read_json_chunk"})


def reads_text(frame: Any) -> bool:
    """Whether computing ``frame`` parses text with dask's own readers. Relies on the task
    names above (dask 2026.8.0); a renamed task means text parsed twice, never a wrong model."""
    from dask.utils import key_split

    try:
        return any(key_split(key) in TEXT_TASKS for key in frame.__dask_graph__())
    except Exception:  # a frame whose graph cannot be built here: no copy, dask's own path
        return False


def text_files(frame: Any) -> list[Any]:
    """The ``fsspec.core.OpenFile`` s that computing ``frame`` reads, sorted by path: for dask's
    text readers (read_csv, read_table, read_json with a blocksize), the files behind their
    byte blocks. Relies on the tasks of ``frame.__dask_graph__()`` holding the OpenFile among
    their ``args``/``kwargs``/``value`` (``dask._task_spec``; dask 2026.8.0); a change means a
    parse error that names the source instead of the file, never a wrong result."""
    from fsspec.core import OpenFile

    try:
        pending, seen, found = list(dict(frame.__dask_graph__()).values()), set(), {}
    except Exception:  # a frame whose graph cannot be built here
        return []
    while pending:
        item = pending.pop()
        if isinstance(item, OpenFile):
            found.setdefault(item.path, item)
        elif isinstance(item, list | tuple | set):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
        else:
            for name in ("args", "kwargs", "value"):
                inner = getattr(item, name, None)
                if isinstance(inner, list | tuple | dict | OpenFile) and id(inner) not in seen:
                    seen.add(id(inner))
                    pending.append(inner)
    return [found[path] for path in sorted(found)]


# --- dask: the scheduler and its graphs ---------------------------------------------------------

def scheduler_client() -> Any | None:
    """The ``distributed.Client`` whose ``get`` dask would use now, or None for a local
    scheduler. Relies on ``dask.base.get_scheduler()`` returning the client's bound ``get``
    when one is the default (dask and distributed 2026.8.0). No client exists unless
    distributed was imported, and dask's ``get_scheduler`` imports it to look (0.4 s of a fit
    that needs no cluster), so without it the answer is None at once."""
    import sys

    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    from dask.base import get_scheduler

    owner = getattr(get_scheduler(), "__self__", None)
    if owner is None:
        return None
    return owner if isinstance(owner, distributed.Client) else None


def graph_dependents(graph: Any) -> dict:
    """Each key of a task graph mapped to the keys that depend on it. Relies on
    ``dask.core.get_deps(graph) -> (dependencies, dependents)`` (dask 2026.8.0)."""
    from dask.core import get_deps

    return get_deps(graph)[1]


def literal_keys(state: dict) -> Any:
    """The keys a local scheduler's run holds as data rather than tasks (what its ``start_state``
    callback sees in ``state["cache"]``; dask 2026.8.0)."""
    return state.get("cache", {})


# --- numpy ------------------------------------------------------------------------------------

def _hugepage_switch() -> Any:
    try:  # numpy >= 2.0
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:
        try:  # numpy 1.x
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            return None
    return _set_madvise_hugepage


_HUGEPAGE_SWITCH = _hugepage_switch()


def set_numpy_hugepage(enabled: bool) -> bool | None:
    """Turn numpy's huge-page advice for the arrays it allocates on or off (the switch behind
    ``NUMPY_MADVISE_HUGEPAGE``); the previous setting, or None where numpy has no such switch
    (nothing changed).

    Relies on ``numpy._core.multiarray._set_madvise_hugepage(bool) -> bool`` (numpy 2.4.6;
    ``numpy.core.multiarray`` in numpy 1.x).
    """
    if _HUGEPAGE_SWITCH is None:
        return None
    return _HUGEPAGE_SWITCH(enabled)


# --- scikit-learn -----------------------------------------------------------------------------

def is_constant_feature(var: Any, mean: Any, n_samples: Any) -> Any:
    """``StandardScaler``'s rule for a feature indistinguishable from a constant: a boolean
    mask, from the variance, mean and sample count(s).

    Relies on ``sklearn.preprocessing._data._is_constant_feature`` (scikit-learn 1.9.1).
    """
    from sklearn.preprocessing._data import _is_constant_feature

    return _is_constant_feature(var, mean, n_samples)


def handle_zeros_in_scale(scale: Any, copy: bool = True, constant_mask: Any = None) -> Any:
    """``scale`` with the scales of (near-)constant features set to 1, as scikit-learn's scalers
    set them.

    Relies on ``sklearn.preprocessing._data._handle_zeros_in_scale(scale, copy,
    constant_mask)`` (scikit-learn 1.9.1).
    """
    from sklearn.preprocessing._data import _handle_zeros_in_scale

    return _handle_zeros_in_scale(scale, copy=copy, constant_mask=constant_mask)


# The learned arrays of the SGD family (SGDClassifier, SGDRegressor, Perceptron,
# PassiveAggressive*) between two partial_fit calls: coef_ and intercept_, and with
# ``average`` set the running plain-SGD weights (_standard_*) and their running average
# (_average_*), which partial_fit continues from. scikit-learn 1.9.1.
SGD_STATE = ("coef_", "intercept_", "_standard_coef", "_standard_intercept",
             "_average_coef", "_average_intercept")


def is_sgd_family(cls: type) -> bool:
    """Whether estimators of ``cls`` are trained by scikit-learn's plain SGD (SGDClassifier,
    SGDRegressor, Perceptron, the PassiveAggressive classes), so that their state between two
    ``partial_fit`` calls is :data:`SGD_STATE` and ``t_``. Relies on the private base class
    ``sklearn.linear_model._stochastic_gradient.BaseSGD`` (scikit-learn 1.9.1)."""
    from sklearn.linear_model._stochastic_gradient import BaseSGD

    return isinstance(cls, type) and issubclass(cls, BaseSGD)


def sgd_steps(model: Any) -> float:
    """SGD's step counter ``t_``: 1 + rows seen (times epochs), from which ``partial_fit``
    continues its learning-rate schedule and the start of averaging (scikit-learn 1.9.1)."""
    return model.t_


def set_sgd_steps(model: Any, steps: float) -> None:
    """Set SGD's step counter ``t_`` (see :func:`sgd_steps`; scikit-learn 1.9.1)."""
    model.t_ = steps


def settle_sgd_average(model: Any) -> None:
    """For an averaged SGD model (``average`` set), point ``coef_``/``intercept_`` at the
    weights ``partial_fit`` would leave there: the averaged ones once ``average <= t_ - 1``,
    else the plain ones. No-op without ``average``.

    Relies on ``_average_coef``/``_average_intercept``/``_standard_coef``/
    ``_standard_intercept`` and that rule of ``BaseSGD``'s ``_partial_fit``/``_fit_binary``
    (scikit-learn 1.9.1).
    """
    if getattr(model, "average", 0):
        ready = model.average <= model.t_ - 1
        coef = model._average_coef if ready else model._standard_coef
        model.coef_ = coef.reshape(model.coef_.shape)
        model.intercept_ = model._average_intercept if ready else model._standard_intercept


def adopt_state(estimator: Any, trained: Any) -> None:
    """Make ``estimator`` (the same object) hold all of ``trained``'s parameters and learned
    state. Relies on a scikit-learn estimator keeping all of it in its instance ``__dict__``
    (no ``__slots__``; scikit-learn 1.9.1)."""
    estimator.__dict__.clear()
    estimator.__dict__.update(trained.__dict__)


# --- scikit-learn: parameter validation and the types of a fitted MLP ---------------------------

def validate_params(estimator: Any) -> None:
    """Check ``estimator``'s constructor parameters now, as ``fit`` would, so that a bad value
    is refused before any data is read. Relies on ``BaseEstimator._validate_params`` (its
    ``_parameter_constraints``; scikit-learn 1.9.1); an estimator without it is checked
    when it first trains."""
    check = getattr(estimator, "_validate_params", None)
    if check is not None:
        check()


# Classes a fitted MLP holds (its optimizer, to go on with partial_fit): they live in a private
# module, and skops must be told to trust them by these names (scikit-learn 1.9.1).
SKLEARN_OPTIMIZER_TYPES = ("sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
                           "sklearn.neural_network._stochastic_optimizers.SGDOptimizer")
