"""What dask planned for a DataFrame, read so that oocml can read the same partitions itself.

For a plain parquet read (local or remote, hive-partitioned, with or without ``filters``,
after column projection): per partition, the files and row groups dask would read and
concatenate (:func:`parquet_pieces`). For a frame made with ``dd.from_map``: its items
(:func:`mapped_items`). dask's plans are internals, read only through :mod:`oocml._compat`.

Invariant: anything else, or a plan that cannot be read, gives None, and the reason is logged
at debug level on the "oocml" logger: the caller then lets dask compute the partitions,
which is always right, only slower.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pandas as pd

from .._compat import (
    ARROW_STRING_CONVERSION,
    PARQUET_OPERANDS_MUST_BE_EMPTY,
    PARQUET_READ,
    PROJECTION,
    expr_kind,
    from_map_call,
    fused_buckets,
    operand,
    optimized_expr,
    parquet_plan,
    unwrap,
)
from .conditions import from_filters

log = logging.getLogger("oocml")

# (path, row groups or None for all, hive partition keys as ((column, value), ...))
Piece = tuple[str, "list[int] | None", tuple]


@dataclass(frozen=True)
class ParquetRead:
    """What dask planned for a plain parquet read: per partition the pieces it would read and
    concatenate, their filesystem, the row condition of the read's ``filters`` (None: all
    rows), and the empty frame of every column of the data set."""

    pieces: list[list[Piece]]
    fs: Any
    condition: Any
    meta: pd.DataFrame


def parquet_pieces(frame: Any) -> ParquetRead | None:
    """dask's plan for ``frame`` when it is a plain parquet read (local or remote,
    hive-partitioned or not, projected on some columns); None otherwise, the reason logged."""
    try:
        expr, expected = optimized_expr(frame)  # as to_delayed() sees it
        expr = unwrap(expr, (PROJECTION,))  # column choice/order: we read frame.columns
        buckets, expr = fused_buckets(expr)  # FusedIO: dask reads several parts per partition
        if expr_kind(expr) != PARQUET_READ:
            return _generic("the frame is not a plain parquet read (its plan ends in %s)",
                            expr_kind(expr))
        if any(operand(expr, name) for name in PARQUET_OPERANDS_MUST_BE_EMPTY):
            return _generic("the read has %s", [
                n for n in PARQUET_OPERANDS_MUST_BE_EMPTY if operand(expr, n)])
        extra = {k: v for k, v in (operand(expr, "kwargs") or {}).items() if v is not None}
        if set(extra.get("dataset") or {}) <= {"partition_base_dir"}:  # hive keys from paths
            extra.pop("dataset", None)
        if operand(expr, "filesystem") not in (None, "fsspec") or extra:
            return _generic("filesystem or options %s", extra)
        plan = parquet_plan(expr)
        filters = operand(expr, "filters")
        condition = from_filters(filters) if filters else None
        if plan.empty:
            return _generic("dask planned no part (the filters keep no row group, or no data)")
        if filters and condition is None:
            return _generic("the filters %r use an operator oocml cannot apply", filters)
        parts = [[(path, groups, keys or hive_keys(path, plan.hive)) for path, groups, keys in part]
                 for part in plan.parts]
        grouped = ([[p for i in bucket for p in parts[i]] for bucket in buckets] if buckets
                   else parts)
    except Exception as exc:  # an internal detail of dask changed: the generic path is always right
        return _generic("its plan could not be read (%r)", exc)
    if len(grouped) != expected:
        return _generic("its plan has %d partitions where the frame has %d", len(grouped), expected)
    return ParquetRead(grouped, plan.fs, condition, plan.meta)


def _generic(reason: str, *args: Any) -> None:
    """Log why oocml's parquet reader does not read the frame (dask's plan will); None."""
    log.debug("oocml's parquet reader is not used: " + reason, *args)


def hive_keys(path: str, names: list[str]) -> tuple:
    """The ``(column, value text)`` pairs that ``name=value`` folders in ``path`` give."""
    if not names:
        return ()
    found = dict(part.split("=", 1) for part in path.split("/")[:-1] if "=" in part)
    return tuple((name, unquote(found[name])) for name in names if name in found)


def mapped_items(frame: Any, func: Any) -> list | None:
    """The items of a frame made with ``dd.from_map(func, items)`` (then projected, or its
    strings converted) that its partitions read, in order; None for any other frame."""
    try:
        expr, _ = optimized_expr(frame)
        call = from_map_call(unwrap(expr, (PROJECTION, ARROW_STRING_CONVERSION)))
        if call is None or call[0] is not func:
            return None
        (items,) = call[1]
        chosen = call[2]
    except Exception as exc:  # an internal detail of dask changed: the generic path is right
        log.debug("dask's from_map plan could not be read (%r)", exc)
        return None
    return [items[i] for i in chosen] if chosen is not None else list(items)
