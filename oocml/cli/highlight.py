"""Syntax highlighting for the language: a pygments lexer whose keywords come from the grammar."""

from __future__ import annotations

from pygments.lexer import RegexLexer, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text

from ..dsl.parser import KEYWORDS
from ..estimators import ALGORITHMS


class OocmlLexer(RegexLexer):
    """Keywords, algorithm names, strings, numbers, comments and operators of oocml's language."""

    name = "oocml"
    aliases = ["oocml"]
    flags = 2  # re.IGNORECASE

    tokens = {
        "root": [
            (r"\s+", Text),
            (r"--[^\n]*", Comment.Single),
            (r"/\*[\s\S]*?(\*/|$)", Comment.Multiline),
            (r"'(?:[^']|'')*'?", String.Single),
            (r'"(?:[^"]|"")*"?', Name.Variable),
            (words(tuple(KEYWORDS), suffix=r"\b"), Keyword),
            (words(tuple(ALGORITHMS), suffix=r"\b"), Name.Builtin),
            (r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", Number),
            (r"<=|>=|<>|!=|=|<|>|\*", Operator),
            (r"[(),;\[\].]", Punctuation),
            (r"\\\w+", Keyword.Pseudo),
            (r"\w+", Name),
            (r".", Text),
        ]
    }
