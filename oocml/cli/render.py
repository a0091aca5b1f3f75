"""Turning results into text: aligned tables, csv or json, and one-line summaries."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "csv", "json")
PREVIEW_ROWS = 10
_EXACT = 2.0 ** 53  # floats below this hold every integer exactly; beyond, keep the exponent


def table(frame: pd.DataFrame, fmt: str = "table") -> str:
    """A pandas DataFrame as an aligned table (psql style), csv or json lines."""
    if fmt == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        return "\n".join(json.dumps(row, default=str) for row in frame.to_dict(orient="records"))
    cells = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    headers = [str(c) for c in frame.columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    from pandas.api.types import is_numeric_dtype

    numeric = [is_numeric_dtype(t) or (t.kind == "O" and _numbers(frame.iloc[:, i]))
               for i, t in enumerate(frame.dtypes)]

    def line(values: list[str]) -> str:
        return " | ".join(v.rjust(w) if num else v.ljust(w)
                          for v, w, num in zip(values, widths, numeric)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    rows = [line(headers), rule, *(line(r) for r in cells)]
    rows.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return "\n".join(rows)


def _numbers(column: pd.Series) -> bool:
    """A column of mixed numbers (EVALUATE's metrics and whole counts): aligned as numbers."""
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in column)


def _cell(value: Any) -> str:
    """A float with an integral value (a count, such as EVALUATE's ``rows``) prints as the
    integer it is, never as ``2e+06``; other floats keep 6 significant digits."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("\n", " ")


def result(value: Any, fmt: str = "table") -> str:
    """Text for any statement's result."""
    if value is None:
        return ""
    model = sys.modules.get("oocml.model")  # a Model exists only once its module is loaded
    if model is not None and isinstance(value, model.Model):
        report = value.report
        seconds = report.stats_seconds + report.train_seconds
        return (f"trained {type(value.estimator).__name__} on {report.rows_seen:,} rows "
                f"({report.epochs} epoch{'s' if report.epochs != 1 else ''}, "
                f"{report.passes} passes over the data, {seconds:.2f}s); "
                f"features: {', '.join(value.features)}")
    import dask.dataframe as dd
    import pandas as pd

    if isinstance(value, dd.DataFrame):
        head = value.head(PREVIEW_ROWS, npartitions=-1)
        return (table(head.reset_index(drop=True), fmt)
                + f"\n(first {len(head)} rows of a lazy result with {value.npartitions} partitions;"
                " add INTO 'folder/' to write every row)")
    if isinstance(value, pd.DataFrame):
        return table(value, fmt)
    return str(value)
