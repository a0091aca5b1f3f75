"""Text -> AST: the Lark grammar (``grammar/oocml.lark``), a Transformer, and clear syntax errors.

Parsing never reads data or executes anything, and imports no ML library. Every failure,
for any input, is an :class:`~oocml.errors.OocmlError`.
"""

from __future__ import annotations

from typing import Any

from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from ..errors import OocmlError, OocmlSyntaxError, did_you_mean
from ..plan import Condition
from ..redaction import MASK, secret_spans
from . import ast
from .grammar import KEYWORDS, keywords, lark_parser
from .transform import ToAst

__all__ = ["KEYWORDS", "OocmlSyntaxError", "parse", "parse_condition"]

_READABLE = {"NAME": "a name", "QUOTED_NAME": None, "STRING": "a quoted string",
             "NUMBER": "a number", "EQUAL": "'='", "LESSTHAN": "'<'", "MORETHAN": "'>'",
             "LPAR": "'('", "RPAR": "')'", "COMMA": "','", "SEMICOLON": "';'", "STAR": "'*'",
             "LSQB": "'['", "RSQB": "']'", "DOT": "'.'", "$END": "the end"}


def _readable(terminals: set[str]) -> list[str]:
    out = []
    for name in sorted(terminals):
        word = _READABLE.get(name, name if name in keywords() else name.lower())
        if word and word not in out:
            out.append(word)
    return out


def _masked(text: str, line: int, column: int) -> tuple[str, int, int]:
    """``text`` with the literals of secret-looking options masked (as EXPLAIN masks them), and
    ``line``, ``column`` moved to the same place in it (inside a literal: to its start)."""
    lines = text.splitlines(keepends=True)
    offset = sum(len(piece) for piece in lines[:line - 1]) + column - 1
    pieces, last, moved = [], 0, offset
    for start, end in secret_spans(text):
        pieces.append(text[last:start])
        at = sum(map(len, pieces))  # where the masked literal starts in the masked text
        if start < offset < end:
            moved = at
        elif offset >= end:
            moved += len(MASK) + 2 - (end - start)
        pieces.append(f"'{MASK}'")
        last = end
    masked = "".join(pieces) + text[last:]
    before = masked[:moved].split("\n")
    return masked, len(before), len(before[-1]) + 1


def _inside_secret(text: str, offset: int | None) -> bool:
    return offset is not None and any(start <= offset < end for start, end in secret_spans(text))


def _caret(text: str, line: int, column: int) -> str:
    """The line at ``line`` (secrets masked) and a caret under ``column``."""
    text, line, column = _masked(text, line, column)
    lines = text.splitlines() or [""]
    source = lines[min(line, len(lines)) - 1].replace("\t", " ")
    shown = source if len(source) <= 160 else source[max(0, column - 80):column + 80]
    offset = column - 1 if len(source) <= 160 else min(column - 1, 79)
    return f"  {shown}\n  {' ' * offset}^"


def _syntax_error(text: str, error: UnexpectedInput) -> OocmlSyntaxError:
    line, column = max(getattr(error, "line", 1) or 1, 1), max(getattr(error, "column", 1) or 1, 1)
    expected = _readable(set(getattr(error, "expected", None) or getattr(error, "allowed", None) or ()))
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
        shown = MASK if char not in "'\"" and _inside_secret(text, error.pos_in_stream) else char
        what = f"unexpected character {shown!r}"
        if char in "'\"":
            what += " (is a quote left open?)"
        elif char == "/" and text[error.pos_in_stream:].startswith("/*"):
            what += " (is a /* comment left open?)"
    elif isinstance(error, UnexpectedEOF) or getattr(error, "token", None) is None or \
            error.token.type == "$END":
        what = "the statement ends too early"
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    elif _inside_secret(text, getattr(error.token, "start_pos", None)):
        what = f"unexpected {MASK!r}"
    else:
        what = f"unexpected {str(error.token)!r}"
    message = f"syntax error at line {line}, column {column}: {what}"
    if expected:
        shown = expected[:12] + (["..."] if len(expected) > 12 else [])
        message += f"; expected {', '.join(shown)}"
    message += "\n" + _caret(text, line, column)
    word = str(getattr(error, "token", "") or "")
    if word.isidentifier():
        wanted = [w for w in expected if w in keywords()] or list(keywords())
        hint = did_you_mean(word, wanted)
        if hint:
            message += "\n" + hint.strip(" ()")
    return OocmlSyntaxError(message, line=line, column=column, statement_text=_line(text, line),
                            expected=expected)


def _line(text: str, line: int) -> str:
    """The statement's line ``line``, secrets masked."""
    text, line, _ = _masked(text, line, 1)
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


def parse(text: str) -> list[ast.Statement]:
    """Parse one or more ``;``-separated statements (empty ones are skipped)."""
    return _parse(text, "start")


def parse_condition(text: str) -> Condition:
    """Parse a WHERE condition alone, e.g. ``"x0 > 1 AND city IN ('paris', 'rome')"``."""
    return _parse(text, "condition")


def _parse(text: str, start: str) -> Any:
    if not isinstance(text, str):
        raise OocmlSyntaxError(f"a statement must be text, not {type(text).__name__}")
    try:
        tree = lark_parser().parse(text, start=start)
        return ToAst().transform(tree)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, OocmlSyntaxError):
            error = exc.orig_exc
            raise OocmlSyntaxError(f"{error}\n{_caret(text, error.line, error.column)}",
                                   error.line, error.column, _line(text, error.line)) from None
        if isinstance(exc.orig_exc, OocmlError):
            raise exc.orig_exc from None
        raise OocmlSyntaxError(f"cannot read the statement: {exc.orig_exc}") from None
    except (LarkError, RecursionError) as exc:
        raise OocmlSyntaxError(f"cannot read the statement: {type(exc).__name__}: {exc}") from None
