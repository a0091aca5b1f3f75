"""Secrets kept out of text: the values of secret-looking options (``key``, ``secret``,
``token``, ``password``, ...) masked in options, URLs and statements.

Everything oocml shows or writes goes through these: EXPLAIN and DESCRIBE, errors and the
caret lines of syntax errors, logs, model files and the REPL's history file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SECRET = re.compile(r"key|secret|token|password|passwd|credential|sas|signature|connection",
                     re.IGNORECASE)
# What a statement gives a secret-looking option: a quoted literal (``secret = '...'``, also
# without the ``=`` or the closing quote, which a statement with a syntax error may lack), or
# a bare word after ``=``.
_SECRET_WORD = r"\b\w*(?:key|secret|token|password|passwd|credential|sas|signature|connection)\w*"
_STATEMENT_SECRETS = (re.compile(rf"{_SECRET_WORD}\s*=?\s*('(?:[^']|'')*(?:'|$))", re.IGNORECASE),
                      re.compile(rf"{_SECRET_WORD}\s*=\s*([^\s,()';]+)", re.IGNORECASE))
MASK = "***"


def redact(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` with the values of secret-looking keys (key, secret, token, ...) masked."""
    return {k: (MASK if _SECRET.search(str(k)) else v) for k, v in dict(options or {}).items()}


def redact_url(url: str) -> str:
    """A URL with any ``user:password@`` and secret query parameters masked."""
    url = re.sub(r"(://)[^/@]+@", rf"\1{MASK}@", url)
    return re.sub(r"([?&][^=&]*(?:key|secret|token|sig|signature|password)[^=&]*=)[^&]*",
                  rf"\1{MASK}", url, flags=re.IGNORECASE)


_OPTIONS_OPEN = re.compile(r"\bOPTIONS\s*\(", re.IGNORECASE)
_OPTION_TOKEN = re.compile(r"'(?:[^']|'')*(?:'|$)|[\w.+\-:/]+|\S")


def _options_spans(text: str) -> list[tuple[int, int]]:
    """Inside each ``OPTIONS (...)``: every value but those of well-formed ``name = value``
    pairs whose name is not secret-looking (a malformed clause may hold a secret anywhere)."""
    spans = []
    for opening in _OPTIONS_OPEN.finditer(text):
        tokens = []
        for token in _OPTION_TOKEN.finditer(text, opening.end()):
            if token.group() == ")":
                break
            tokens.append(token)
        for i, token in enumerate(tokens):
            value = token.group()
            if value in ",=(":
                continue
            named = i >= 2 and tokens[i - 1].group() == "=" and tokens[i - 2].group() not in ",=("
            is_name = i + 1 < len(tokens) and tokens[i + 1].group() == "=" and not value.startswith("'")
            if is_name or (named and not _SECRET.search(tokens[i - 2].group())):
                continue
            spans.append(token.span())
    return spans


def secret_spans(text: str) -> list[tuple[int, int]]:
    """Where a statement holds values given to secret-looking options (and, inside OPTIONS,
    every value not plainly given to another option): (start, end) offsets of each, quotes
    included, in order and not overlapping."""
    found = sorted([m.span(1) for pattern in _STATEMENT_SECRETS for m in pattern.finditer(text)]
                   + _options_spans(text))
    spans: list[tuple[int, int]] = []
    for start, end in found:
        if not spans or start >= spans[-1][1]:
            spans.append((start, end))
    return spans


def redact_statement(text: str) -> str:
    """A statement with the values given to secret-looking options masked (for history files
    and the lines that errors quote)."""
    pieces, last = [], 0
    for start, end in secret_spans(text):
        pieces += [text[last:start], f"'{MASK}'"]
        last = end
    return "".join(pieces) + text[last:]
