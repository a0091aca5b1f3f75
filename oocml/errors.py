"""The error hierarchy: everything a user can cause is an :class:`OocmlError`.

Each message names the culprit (column, file, parameter, position) and, where
it can, suggests the fix; :func:`did_you_mean` builds the suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """A ' (did you mean X?)' suffix naming the closest valid choices, or ''."""
    choices = [str(c) for c in choices]
    lowered = {c.lower(): c for c in choices}
    matches = difflib.get_close_matches(str(name).lower(), list(lowered), n=n, cutoff=0.6)
    if not matches:
        return ""
    names = " or ".join(repr(lowered[m]) for m in matches)
    return f" (did you mean {names}?)"


def listing(choices: Iterable[str], limit: int = 20) -> str:
    """A short, readable listing of valid names for an error message."""
    choices = [str(c) for c in choices]
    shown = ", ".join(repr(c) for c in choices[:limit])
    more = len(choices) - limit
    return shown + (f", ... ({more} more)" if more > 0 else "")


class OocmlError(Exception):
    """Root of every error oocml raises for something the user can fix."""


class ColumnNotFoundError(OocmlError, KeyError):
    """A named column (target, feature, excluded) is not in the data."""

    def __init__(self, column: str, available: Iterable[str], role: str = "column"):
        available = list(available)
        self.column, self.available, self.role = column, available, role
        super().__init__(
            f"{role} {column!r} is not in the data{did_you_mean(column, available)}; "
            f"available columns: {listing(available)}"
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class DataError(OocmlError, ValueError):
    """The data itself cannot be used as it is (NaN, wrong type, empty, ...)."""


class UnseenLabelError(DataError):
    """A target value appeared that the statistics pass (or ``classes=``) did not know."""


class ParameterError(OocmlError, ValueError):
    """A parameter of an estimator, step or option has a bad name or value."""


class UnknownAlgorithmError(OocmlError, ValueError):
    """An algorithm name that the registry does not know."""


class UnknownModelError(OocmlError, KeyError):
    """A model name the session (and its store) does not hold."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class ModelExistsError(OocmlError):
    """A model name (or model file) that is taken, where the statement did not say to replace."""


class ModelFileError(OocmlError):
    """A model file cannot be read, is not an oocml model, or holds untrusted types."""


class SourceError(OocmlError):
    """A data source (glob, folder, URL, table) cannot be opened."""


class MissingPackageError(OocmlError, ImportError):
    """A feature needs a package that is not installed; the message names the extra."""


class StorageError(SourceError):
    """A path or URL cannot be read or written: unknown scheme, missing package, credentials,
    endpoint, bucket or key."""


class SortedDataWarning(UserWarning):
    """The partitions hold differently distributed rows and the plan does not SHUFFLE: a
    model that learns block by block ends biased towards the last partitions it sees."""


class TrainingInterrupted(OocmlError):
    """Training was stopped (Ctrl-C) between two blocks; nothing was saved as complete."""


class OocmlSyntaxError(OocmlError):
    """A statement that does not parse: the message shows the line, a caret and what was expected."""

    def __init__(self, message: str, line: int = 1, column: int = 1, statement_text: str = "",
                 expected: list[str] | None = None):
        self.line, self.column = line, column
        self.statement_text, self.expected = statement_text, expected or []
        super().__init__(message)
