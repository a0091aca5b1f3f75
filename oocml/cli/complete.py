"""Context-aware completion: keywords, algorithms, models, tables, columns, WITH and TUNE
parameters, TUNE distributions, paths.

:func:`suggestions` is a pure function of the text before the cursor and the
session (so it is tested without a terminal); :class:`OocmlCompleter` wraps it
for prompt_toolkit.

The completer runs inside the prompt, while prompt_toolkit holds the terminal in raw mode
(Ctrl-C is a key there, not a signal), so it never waits for the Session the REPL starts in the
background: until it is there (``session`` is None) only what needs neither the session nor a
heavy import is offered (keywords, algorithms, fixed choices, meta commands, paths); models,
tables, columns and estimator parameters come once it is ready. A heavy import here while the
session's thread imports the same libraries could deadlock (see ``repl.start_session``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import Any

from prompt_toolkit.completion import Completer, Completion

from ..dsl.parser import KEYWORDS
from ..errors import OocmlError
from ..estimators import ALGORITHMS, accepted_params, import_class
from ..plan import Source
from ..plan_rules import DISTRIBUTIONS, ENCODINGS, IMPUTATIONS, REDUCTIONS, SCALINGS
from . import meta

_TOKEN = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|--[^\n]*|/\*[\s\S]*?(?:\*/|$)|[\w.]+|[^\s\w]")
_MODEL_AFTER = {"USING", "DESCRIBE", "EVALUATE", "UPDATE", "VALIDATE"}
_MODEL_AFTER_TWO = {("MODEL", "DROP"), ("MODEL", "SAVE"), ("WEIGHTS", "SHOW"), ("TRIALS", "SHOW"),
                    ("VERSIONS", "SHOW"), ("HISTORY", "SHOW"),
                    ("MODEL", "ROLLBACK")}
_FIXED = {"SCALE": (*SCALINGS, "none"), "IMPUTE": IMPUTATIONS, "ENCODE": ENCODINGS, "REDUCE": REDUCTIONS}
_COLUMN_CLAUSES = {"FEATURES", "EXCLUDE", "WHERE", "PREDICT"}
_PARAM_CLAUSES = {"WITH", "TUNE"}  # a parameter name after their "(" or ","
_TUNE_SPACES = ("IN", *(f"{d.upper()}(" for d in DISTRIBUTIONS))  # what follows a TUNE parameter
_WORDS = set(KEYWORDS) | set(_TUNE_SPACES)  # completed in the case being typed


def _current_statement(text: str) -> str:
    """The text after the last ``;`` that is outside quotes and comments."""
    cut = 0
    for match in _TOKEN.finditer(text):
        if match.group() == ";":
            cut = match.end()
    return text[cut:]


def _open_quote(statement: str) -> str | None:
    """The partial path typed inside an unclosed single quote, or None."""
    tokens = _TOKEN.findall(statement)
    if tokens and tokens[-1].startswith("'") and (len(tokens[-1]) == 1 or not tokens[-1].endswith("'")
                                                  or tokens[-1] == "'"):
        return tokens[-1][1:]
    return None


def path_candidates(partial: str) -> list[str]:
    """Files and folders that complete ``partial`` (folders end with ``/``)."""
    folder, prefix = os.path.split(os.path.expanduser(partial))
    try:
        names = sorted(os.listdir(folder or "."))
    except OSError:
        return []
    out = []
    for name in names:
        if name.startswith(prefix) and not (name.startswith(".") and not prefix.startswith(".")):
            full = os.path.join(os.path.split(partial)[0], name)
            out.append(full + "/" if os.path.isdir(os.path.join(folder or ".", name)) else full)
    return out


def _source_columns(statement: str, session: Any, cache: dict) -> list[str]:
    if session is None:  # opening a source imports dask: not while the session loads
        return []
    match = re.search(r"\bON\s+(?:'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"|(\w+))", statement, re.I)
    if not match:
        return []
    path, quoted, table = match.groups()
    source = Source(path=path.replace("''", "'")) if path is not None else Source(table=quoted or table)
    if source not in cache:
        try:
            from ..io.sources import open_source

            cache[source] = [str(c) for c in open_source(
                source, session.tables, storage_options=session.storage_options).columns]
        except (OocmlError, OSError, ValueError):
            cache[source] = []
    return cache[source]


def _algorithm_params(statement: str, session: Any) -> list[str]:
    """The parameters of the statement's estimator (importing its class: once the session is there)."""
    match = re.search(r"\bTRAIN\s+([\w.]+)", statement, re.I)
    if not match or session is None:
        return []
    name = match.group(1)
    try:
        algo = ALGORITHMS.get(name.lower())  # the registry's own classes (boosted trees) too
        cls = import_class(algo.qualname) if algo else import_class(name, sklearn_only=True)
        return accepted_params(cls)
    except OocmlError:
        return []


def _meta_suggestions(text: str, session: Any) -> tuple[list[str], str]:
    """A meta command's name, then its argument: from the registry in :mod:`oocml.cli.meta`."""
    name, space, argument = text.lstrip().partition(" ")
    if not space:
        return [c.name for c in meta.commands() if c.name.startswith(name)], name
    partial = _open_quote(argument)
    if partial is not None:
        return path_candidates(partial), partial
    entry = meta.lookup(name)
    word = argument.lstrip()
    if entry is None or entry.arguments is None or " " in word:
        return [], word
    return [c for c in entry.arguments(session) if str(c).lower().startswith(word.lower())], word


def suggestions(text: str, session: Any, cache: dict | None = None) -> tuple[list[str], str]:
    """(candidates, the word they replace) for the text before the cursor; ``session`` is None
    while it still loads. Columns keep the order they have in the data; other candidates are
    sorted; an exact match comes first."""
    cache = {} if cache is None else cache
    if text.lstrip().startswith("\\"):
        return _meta_suggestions(text, session)
    statement = _current_statement(text)
    partial = _open_quote(statement)
    if partial is not None:
        return path_candidates(partial), partial
    word = re.search(r"[\w.]*$", statement).group()
    before = [t for t in _TOKEN.findall(statement[:len(statement) - len(word)])
              if not t.startswith(("--", "/*"))]
    candidates, in_order = _candidates(statement, [t.upper() for t in before], session, cache)
    lowered = word.lower()
    matches = list(dict.fromkeys(c for c in candidates if str(c).lower().startswith(lowered)))
    if not in_order:
        matches.sort(key=str)
    return sorted(matches, key=lambda c: str(c).lower() != lowered), word


def _candidates(statement: str, words: list[str], session: Any, cache: dict) -> tuple[Iterable[str], bool]:
    """What may come after ``words`` (the statement's upper-cased tokens), and whether that
    order is meaningful (a source's columns) rather than to be sorted."""
    previous = words[-1] if words else ""
    clause = next((w for w in reversed(words)
                   if w in _COLUMN_CLAUSES | _PARAM_CLAUSES | {"ON"} | set(_FIXED)), "")
    if previous == "TRAIN":
        return list(ALGORITHMS), False
    if clause == "ENCODE" and words[:1] == ["TRAIN"]:
        return _encode_candidates(statement, words, session, cache)
    if previous in _MODEL_AFTER or (len(words) > 1 and (previous, words[-2]) in _MODEL_AFTER_TWO):
        return (session.catalog.names() if session is not None else []), False
    if previous == "ON":
        return (list(session.tables) if session is not None else []), False
    if previous in _FIXED:
        return _FIXED[previous], False
    if clause == "TUNE":
        return _tune_candidates(statement, words, session)
    if clause == "WITH" and previous in ("(", ","):
        return _algorithm_params(statement, session), False
    if (previous == "PREDICT" and words[:1] == ["TRAIN"]) or (
            clause in ("FEATURES", "EXCLUDE", "WHERE") and previous in
            {"FEATURES", "EXCLUDE", "WHERE", ",", "(", "AND", "OR", "NOT"}):
        return _source_columns(statement, session, cache), True
    return list(KEYWORDS), False


def _encode_candidates(statement: str, words: list[str], session: Any,
                       cache: dict) -> tuple[Iterable[str], bool]:
    """Inside ``ENCODE``: a method first and after each top-level ``,``; the source's columns
    inside ``method(``; the method's parameters inside ``USING (``; else keywords."""
    clause = words[len(words) - 1 - words[::-1].index("ENCODE"):]
    openers, method = [], None
    for i, token in enumerate(clause):
        if token == "(":
            openers.append(clause[i - 1])
        elif token == ")" and openers:
            openers.pop()
        elif not openers and token.lower() in ENCODINGS:
            method = token.lower()
    previous = clause[-1]
    if not openers:
        return (ENCODINGS, False) if previous in ("ENCODE", ",") else (list(KEYWORDS), False)
    if len(openers) > 1 or previous not in ("(", ","):
        return [], False
    if openers[-1] == "USING":
        return _encoding_params(method or "onehot", session), False
    return _source_columns(statement, session, cache), True


def _encoding_params(method: str, session: Any) -> list[str]:
    """An encoding's parameters (from :mod:`oocml.encoding`, which imports scikit-learn: not
    before the session is there, nor before the first prompt)."""
    if session is None:
        return []
    from ..encoding import with_defaults

    return list(with_defaults(method, {}))


def _tune_candidates(statement: str, words: list[str], session: Any) -> tuple[Iterable[str], bool]:
    """Inside ``TUNE ( ... )``: a parameter name after its ``(`` or ``,``, then ``IN`` or a
    distribution; nothing inside a value list or a distribution's bounds; after the closing
    ``)``, keywords (TRIALS, HALVING, ...)."""
    clause = words[len(words) - 1 - words[::-1].index("TUNE"):]
    depth = clause.count("(") - clause.count(")")
    if depth <= 0:
        return list(KEYWORDS), False
    if depth > 1:
        return [], False
    if clause[-1] in ("(", ","):
        return _algorithm_params(statement, session), False
    if clause[-2] in ("(", ","):
        return _TUNE_SPACES, False
    return [], False


class OocmlCompleter(Completer):
    """prompt_toolkit completer over :func:`suggestions`; keywords keep the case being typed."""

    def __init__(self, shell: Any):
        self.shell = shell  # a repl.Shell; its session may still be starting
        self.cache: dict = {}

    def get_completions(self, document, complete_event):
        try:  # ready_session never waits: this runs while the terminal is in raw mode
            candidates, word = suggestions(document.text_before_cursor, self.shell.ready_session,
                                           self.cache)
        except Exception:  # a completion must never break the prompt: offer nothing instead
            logging.getLogger("oocml").debug("completion failed", exc_info=True)
            return
        lower = word.islower()
        for candidate in candidates:
            text = candidate.lower() if lower and candidate in _WORDS else candidate
            yield Completion(text, start_position=-len(word))
