"""WHERE conditions: evaluated per block with pandas, pushed down to parquet where they can be.

Pushdown only ever narrows what is read (row groups); the per-block mask is
always applied too, so a condition that cannot be pushed down is still exact.
"""

from __future__ import annotations

import operator
import re
from typing import Any

import pandas as pd

from ..errors import ColumnNotFoundError, DataError
from ..plan import And, Compare, Condition, In, IsNull, Not, Or

_OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}
_ARROW_OPS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def columns_of(condition: Condition) -> list[str]:
    """Every column a condition reads, in first-seen order."""
    if isinstance(condition, And | Or):
        seen: list[str] = []
        for item in condition.items:
            seen += [c for c in columns_of(item) if c not in seen]
        return seen
    if isinstance(condition, Not):
        return columns_of(condition.item)
    return [condition.column]


def check_columns(condition: Condition, available: list[str]) -> None:
    for column in columns_of(condition):
        if column not in available:
            raise ColumnNotFoundError(column, available, role="WHERE column")


def mask(frame: pd.DataFrame, condition: Condition) -> pd.Series:
    """The boolean row mask of ``condition`` on one block (NULL compares false, as in SQL)."""
    if isinstance(condition, Compare):
        column = frame[condition.column]
        if condition.value is None:
            return pd.Series(False, index=frame.index)
        try:
            result = _OPS[condition.op](column, condition.value)
        except TypeError as exc:
            raise DataError(f"WHERE {condition.column} {condition.op} {condition.value!r}: "
                            f"column {condition.column!r} is {column.dtype} ({exc})") from None
        return result.fillna(False).astype(bool) & column.notna()
    if isinstance(condition, In):
        found = frame[condition.column].isin(list(condition.values))
        return ~found & frame[condition.column].notna() if condition.negated else found
    if isinstance(condition, IsNull):
        missing = frame[condition.column].isna()
        return ~missing if condition.negated else missing
    if isinstance(condition, And):
        result = pd.Series(True, index=frame.index)
        for item in condition.items:
            result &= mask(frame, item)
        return result
    if isinstance(condition, Or):
        result = pd.Series(False, index=frame.index)
        for item in condition.items:
            result |= mask(frame, item)
        return result
    if isinstance(condition, Not):
        return ~mask(frame, condition.item)
    raise TypeError(f"not a condition: {condition!r}")


def filter_block(frame: pd.DataFrame, condition: Condition) -> pd.DataFrame:
    """The rows of one block that satisfy ``condition``."""
    return frame[mask(frame, condition)]


def _conjunction(condition: Condition) -> list[tuple] | None:
    """A list of pyarrow filter tuples ANDed together, or None if not expressible."""
    if isinstance(condition, Compare) and condition.value is not None:
        return [(condition.column, _ARROW_OPS[condition.op], condition.value)]
    if isinstance(condition, In):
        return [(condition.column, "not in" if condition.negated else "in", list(condition.values))]
    if isinstance(condition, And):
        parts = [_conjunction(item) for item in condition.items]
        return None if any(p is None for p in parts) else [t for p in parts for t in p]
    return None


def parquet_filters(condition: Condition) -> list[list[tuple]] | None:
    """pyarrow DNF filters implied by ``condition`` (possibly looser), or None."""
    if isinstance(condition, Or):
        terms = [_conjunction(item) for item in condition.items]
        return None if any(t is None for t in terms) else terms
    exact = _conjunction(condition)
    if exact is not None:
        return [exact]
    if isinstance(condition, And):  # push down the parts that can be
        loose = [t for item in condition.items for t in (_conjunction(item) or [])]
        return [loose] if loose else None
    return None


def text_compared(condition: Condition, text: set[str]) -> Condition:
    """``condition`` with the numbers it compares a column of text with (``text``: those
    columns) turned into text, as partition columns are compared: on folders ``year=2021/``
    beside ``year=abc/``, ``year = 2021`` means ``year = '2021'``. Ordering text by a number
    would compare text, so it is refused by name."""
    if isinstance(condition, And | Or):
        return type(condition)(tuple(text_compared(item, text) for item in condition.items))
    if isinstance(condition, Not):
        return Not(text_compared(condition.item, text))
    if isinstance(condition, Compare) and condition.column in text and _is_number(condition.value):
        if condition.op not in ("=", "!="):
            raise DataError(
                f"WHERE {to_text(condition)}: column {condition.column!r} holds text (for a "
                "partition column: not every folder's value is a number), so ordering it by a "
                f"number would compare text; compare with a quoted value ({condition.column} "
                f"{condition.op} '{condition.value}', which orders as text), or make every value "
                "a number")
        return Compare(condition.column, condition.op, _as_text(condition.value))
    if isinstance(condition, In) and condition.column in text:
        values = tuple(_as_text(v) if _is_number(v) else v for v in condition.values)
        return In(condition.column, values, condition.negated)
    return condition


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_text(value: int | float) -> str:
    """A number as a folder name writes it: ``2021``, ``1.5``."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def text_columns(meta: pd.DataFrame) -> set[str]:
    """The columns of ``meta`` that hold text: strings, objects, categoricals of text."""
    found = set()
    for column, dtype in meta.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            dtype = dtype.categories.dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
                or pd.api.types.is_datetime64_any_dtype(dtype)):
            found.add(str(column))
    return found


def from_filters(filters: list) -> Condition | None:
    """The condition that pyarrow DNF ``filters`` (a list of ANDed tuples, or a list of such
    lists ORed) state, for filtering rows as dask does; None if an operator is not known."""
    terms = filters if filters and isinstance(filters[0], list) else [filters]
    ors = []
    for term in terms:
        ands = []
        for column, op, value in term:
            op = "=" if op == "==" else op
            if op in _OPS:
                ands.append(Compare(column, op, value))
            elif op in ("in", "not in"):
                ands.append(In(column, tuple(value), negated=op == "not in"))
            else:
                return None
        ors.append(ands[0] if len(ands) == 1 else And(tuple(ands)))
    return ors[0] if len(ors) == 1 else Or(tuple(ors))


def to_text(condition: Condition) -> str:
    """The condition in the language's syntax (for EXPLAIN and DESCRIBE); it parses back to
    the same condition."""
    if isinstance(condition, Compare):
        return f"{quoted(condition.column)} {condition.op} {_literal(condition.value)}"
    if isinstance(condition, In):
        values = ", ".join(_literal(v) for v in condition.values)
        return f"{quoted(condition.column)} {'NOT IN' if condition.negated else 'IN'} ({values})"
    if isinstance(condition, IsNull):
        return f"{quoted(condition.column)} IS {'NOT NULL' if condition.negated else 'NULL'}"
    if isinstance(condition, And | Or):
        joiner = " AND " if isinstance(condition, And) else " OR "
        return joiner.join(f"({to_text(i)})" if isinstance(i, And | Or) else to_text(i)
                           for i in condition.items)
    return f"NOT ({to_text(condition.item)})"


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONDITION_WORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "BETWEEN", "TRUE", "FALSE"}


def quoted(name: str) -> str:
    """A column name as the language reads it: bare when it is a plain identifier that is not
    a word of conditions, else in double quotes (``"my col"``; a quote inside is doubled)."""
    if _PLAIN_NAME.fullmatch(name) and name.upper() not in _CONDITION_WORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)
