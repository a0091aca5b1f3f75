"""The grammar (``grammar/oocml.lark``, shipped as the package ``oocml.grammar``) and its
keywords, read from the grammar's terminals so that the REPL's completer and lexer never
list a keyword by hand."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from lark import Lark
from lark.lexer import PatternStr


@cache
def lark_parser() -> Lark:
    options = dict(parser="lalr", propagate_positions=True, maybe_placeholders=True,
                   start=["start", "condition"])
    try:  # installed, the grammar ships as the package oocml.grammar
        installed = resources.files("oocml.grammar").joinpath("oocml.lark").is_file()
    except ModuleNotFoundError:  # imported from a source checkout
        installed = False
    if installed:
        return Lark.open_from_package("oocml.grammar", "oocml.lark", **options)
    return Lark.open(str(Path(__file__).parents[2] / "grammar" / "oocml.lark"), **options)


@cache
def keywords() -> tuple[str, ...]:
    return tuple(sorted(t.name for t in lark_parser().terminals
                        if isinstance(t.pattern, PatternStr) and t.pattern.value.isalpha()))


class _Keywords:
    """The grammar's keywords, read from its terminals (for the REPL's completer and lexer)."""

    def __iter__(self):
        return iter(keywords())

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.upper() in keywords()

    def __len__(self) -> int:
        return len(keywords())


KEYWORDS = _Keywords()
