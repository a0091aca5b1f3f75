"""Text that does not parse, named: the file and the line where a CSV or JSON-lines source breaks.

dask's text readers parse blocks of 64 MB in tasks that know neither the file nor the line, so
a ragged row, a byte that is not UTF-8 or a column whose type drifts between files surfaced as
pandas' ``ParserError``, ``UnicodeDecodeError`` or dask's "Mismatched dtypes" from deep inside
a pass. :func:`named_parse_errors` turns such an error into a
:class:`~oocml.errors.SourceError` naming the culprit, found as a person would find it: the
files behind the frame are read again, in order, up to the first line at fault. That second
read happens only on the error path.
"""

from __future__ import annotations

import codecs
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
from dask.dataframe.utils import make_meta

from .._compat import text_files
from ..errors import SourceError
from ..redaction import redact_url
from .parquet import is_local
from .sources import split_name

CHUNK_ROWS = 100_000  # rows parsed at once while looking for the bad line
CHUNK_BYTES = 8 << 20  # bytes decoded at once while looking for a byte that is not UTF-8
_PARSERS = ("pandas/io/parsers", "pandas/io/json", "pandas\\io\\parsers", "pandas\\io\\json")


def is_type_drift(exc: BaseException) -> bool:
    """Whether ``exc`` is dask finding a column of another type in one block of text than the
    first file gave it (its own message says neither the file nor the line)."""
    return type(exc) is ValueError and str(exc).startswith(("Mismatched dtypes found",
                                                            "Metadata mismatch found"))


def is_parse_error(exc: BaseException) -> bool:
    """Whether ``exc`` is pandas failing to parse text (not any other ValueError)."""
    if isinstance(exc, pd.errors.ParserError | UnicodeDecodeError):
        return True
    if type(exc) is not ValueError:
        return False
    tb = exc.__traceback__
    while tb is not None:
        if any(p in tb.tb_frame.f_code.co_filename for p in _PARSERS):
            return True
        tb = tb.tb_next
    return False


@contextlib.contextmanager
def named_parse_errors(frame: Any) -> Iterator[None]:
    """Inside, a parse error of ``frame``'s text becomes a :class:`SourceError` naming the
    file and line (see the module)."""
    try:
        yield
    except Exception as exc:
        if is_parse_error(exc):
            raise parse_error(frame, exc) from None
        if is_type_drift(exc):
            raise drift_error(frame, exc) from None
        raise


def parse_error(frame: Any, exc: BaseException) -> SourceError:
    """The error for ``exc``, raised while parsing ``frame``'s text, naming the bad file and line
    where they can be found."""
    found = [(opened, first_bad_line(opened)) for opened in text_files(frame)]
    for opened, bad in found:
        if bad is not None:
            line, what = bad
            return SourceError(f"{_shown(opened)!r} does not parse at line {line:,}: {what}; repair or "
                               "remove that line (or the file), or leave the file out of the source")
    return SourceError(f"the text data does not parse ({type(exc).__name__}: {exc}); a file of the "
                       "source has a malformed line: repair or remove it")


def drift_error(frame: Any, exc: BaseException) -> SourceError:
    """The error for a column whose type drifts between the text files of ``frame``: the first
    file and line holding a value that the type of the first file cannot hold."""
    expected = make_meta(frame).dtypes
    columns = [c for c in _drifted_columns(str(exc)) if c in expected.index] or list(expected.index)
    for opened in text_files(frame):
        for column in columns:
            line = _first_foreign_value(opened, column, expected[column])
            if line is not None:
                return SourceError(
                    f"{_shown(opened)!r} holds a value in column {column!r} at line {line:,} "
                    f"that its type in the first file ({expected[column]}) cannot hold; give the "
                    f"column one type in every file, or leave it out (FEATURES * EXCLUDE "
                    f"({column}) / .select(exclude=[{column!r}]))")
    return SourceError(f"a column holds values of another type in some files than in the first "
                       f"({str(exc).splitlines()[0]} {columns}); give each column one type")


def _drifted_columns(message: str) -> list[str]:
    """The column names in the table of dask's type-mismatch message."""
    rows = [line.split("|") for line in message.splitlines() if line.startswith("|")]
    names = [row[1].strip().strip("'") for row in rows if len(row) > 3]
    return [n for n in names if n and n != "Column"]


def _first_foreign_value(opened: Any, column: str, dtype: Any) -> int | None:
    """The line of the first value of ``column`` in a text file that ``dtype`` cannot hold (a
    word where numbers are, a missing value where whole numbers are); None if there is none."""
    if not (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)):
        return None
    json_lines = split_name(opened.path)[0] == "json"
    start = 2 if not json_lines else 1  # the first row of a CSV file is on line 2
    with opened.fs.open(opened.path, "rb", compression=opened.compression) as stream:
        chunks = (pd.read_json(stream, lines=True, chunksize=CHUNK_ROWS) if json_lines
                  else pd.read_csv(stream, chunksize=CHUNK_ROWS, usecols=[column]))
        for chunk in chunks:
            values = chunk[column]
            numbers = pd.to_numeric(values, errors="coerce")
            foreign = numbers.isna() & (values.notna() | pd.api.types.is_integer_dtype(dtype))
            if foreign.any():
                return start + int(foreign.to_numpy().argmax())
            start += len(chunk)
    return None


def _shown(opened: Any) -> str:
    """An opened file's path as the user wrote it: plain locally, a URL elsewhere."""
    return opened.path if is_local(opened.fs) else redact_url(opened.fs.unstrip_protocol(opened.path))


def first_bad_line(opened: Any) -> tuple[int, str] | None:
    """(line number, what is wrong) of the first line of a CSV or JSON-lines file that does not
    parse, or None: bytes that are not UTF-8 first, then the rows."""
    bad = _first_undecodable_line(opened)
    if bad is not None:
        return bad
    json_lines = split_name(opened.path)[0] == "json"
    try:
        with opened.fs.open(opened.path, "rb", compression=opened.compression) as stream:
            if json_lines:
                return _first_bad_json_line(stream)
            for _ in pd.read_csv(stream, chunksize=CHUNK_ROWS):
                pass
    except pd.errors.ParserError as exc:
        message = str(exc).strip().removeprefix("Error tokenizing data. C error: ")
        line = _line_in(message)
        return (line, message) if line is not None else (0, message)
    except (OSError, ValueError):
        return None
    return None


def _first_undecodable_line(opened: Any) -> tuple[int, str] | None:
    """The first line holding bytes that are not UTF-8, and the first such byte."""
    decoder, lines = codecs.getincrementaldecoder("utf-8")(), 1
    with opened.fs.open(opened.path, "rb", compression=opened.compression) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk.count(b"\n", 0, exc.start)
                return line, (f"byte 0x{chunk[exc.start]:02x} is not UTF-8 text (re-encode the "
                              "file as UTF-8, e.g. iconv -f latin1 -t utf-8)")
            lines += chunk.count(b"\n")
    return None


def _first_bad_json_line(stream: Any) -> tuple[int, str] | None:
    """The first line of a JSON-lines stream that is not one JSON object."""
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as exc:
            return number, f"not a JSON object ({exc})"
        if not isinstance(value, dict):
            return number, f"a JSON {type(value).__name__}, not an object of named values"
    return None


def _line_in(message: str) -> int | None:
    """The line number a pandas parser message gives (``... in line 501, saw 6``)."""
    words = message.replace(",", " ").split()
    for word, following in zip(words, words[1:]):
        if word == "line" and following.isdigit():
            return int(following)
    return None
