"""Where one statement ends: ``;`` outside strings and comments, for the REPL and scripts.

Text only: nothing is parsed, so an unfinished statement can be told from a wrong one.
"""

from __future__ import annotations

import re

_PIECES = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|--[^\n]*|/\*(?:.|\n)*?(?:\*/|$)|;|[^'\";/-]+|.",
                     re.S)


def split_statements(text: str) -> list[str]:
    """The statements of ``text``, split at ``;`` outside strings and comments (empty ones dropped)."""
    statements, current = [], []
    for piece in _PIECES.findall(text):
        if piece == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(piece)
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(text: str) -> bool:
    return any(p.strip() and not p.startswith(("--", "/*")) for p in _PIECES.findall(text))


def statement_complete(text: str) -> bool:
    """Does ``text`` end with a ``;`` that is not inside a string or comment (or hold no code)?"""
    pieces = [p for p in _PIECES.findall(text) if p.strip() and not p.startswith(("--", "/*"))]
    return not pieces or pieces[-1] == ";"
