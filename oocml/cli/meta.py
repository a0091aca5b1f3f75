"""The REPL's meta commands (``\\help``, ``\\models``, ...) and its help texts, as pgcli's pgspecial.

Each meta command is registered once, by :func:`command`, with its handler, its syntax and a
one-line help. ``\\help``'s list of meta commands, the usage shown for a missing argument and
the completer's candidates (names and arguments) are all generated from :data:`COMMANDS`: a
command cannot exist without its help, nor be listed without existing. A handler receives the
:class:`~oocml.cli.repl.Shell` and the argument text and returns False when it failed.

:data:`STATEMENT_HELP` names every clause of every statement; ``tests/test_cli.py`` reads the
grammar and fails when a keyword is missing from its statement's help.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import OocmlError, ParameterError
from ..plan import Source
from ..plan_rules import ENCODINGS, IMPUTATIONS, REDUCTIONS, SCALINGS
from . import render

_TRAIN_CLAUSES = (  # (syntax, help); "\n" breaks a long help
    ("PREDICT target", "the target column (none for clustering)"),
    ("FEATURES col, ... | FEATURES * [EXCLUDE (col, ...)]", "the features (default: all but the target)"),
    ("WHERE condition", ("the rows to train on: col op literal (op: = != <> < <= > >=),\n"
                         "col [NOT] IN (literal, ...), col IS [NOT] NULL,\n"
                         "col [NOT] BETWEEN a AND b, joined by NOT, AND, OR, ( )")),
    (f"IMPUTE {'|'.join(IMPUTATIONS)}", "fill missing numeric values"),
    (f"ENCODE {'|'.join(ENCODINGS)}[(col, ...)] [n] [USING (param = value, ...)], ...",
     ("encode categorical features; per column: text(review), onehot(c)\n"
      "(n: categories onehot keeps, width of hash/text; text: hashed word\n"
      "n-grams, USING (ngram_range, stop_words, norm, tfidf, ...))")),
    (f"SCALE {'|'.join((*SCALINGS, 'none'))}", "scale the numeric features"),
    (f"REDUCE {'|'.join(REDUCTIONS)} n", "IncrementalPCA to n components (one more pass)"),
    ("WITH (param = literal, ...)", ("estimator parameters: numbers, 'strings', TRUE, FALSE,\n"
                                     "NULL, [lists], (tuples,); never evaluated")),
    ("TUNE (param IN (literal, ...), param LOGUNIFORM(low, high), ...) [TRIALS n] [HALVING n]",
     ("candidates side by side on the same blocks: each grid\n"
      "point, or n drawn from LOGUNIFORM, UNIFORM, RANDINT;\n"
      "after each epoch the best 1/HALVING (default 3) by\n"
      "holdout score go on; \\plot search name 'f.png' draws them")),
    ("EPOCHS n", "passes of partial_fit over the data"),
    ("BLOCKSIZE n [ROWS]", "rows per partial_fit call"),
    ("SHUFFLE [WINDOW n] [SEED n]", "partitions in a seeded random order, n (default 4) at a "
                                    "time with their rows mixed into every block"),
    ("HOLDOUT fraction [EARLY STOP PATIENCE n]",
     "score held-out rows after each epoch;\nstop early after n epochs without improvement"),
    ("PARALLEL", "train on every core or worker at once,\naveraging the models each round (SGD family)"),
    ("CHECKPOINT 'path' [EVERY n PARTITIONS]", "save the training state (every n partitions)"),
    ("RESUME", "continue from the CHECKPOINT, if there is one"),
    ("PRECISION float32|float64", "train on blocks of this float type (float32: half the memory)"),
    ("CACHE ['folder'] | CACHE OFF", "prepared blocks of epoch 1 reread by later epochs (on by "
     "default for several epochs; a folder keeps them for later fits)"),
    ("AS name", "keep the model under a name"),
)


def _clause_lines(clauses: Iterable[tuple[str, str]], width: int = 36) -> str:
    """``syntax  help`` rows, the help aligned at ``width`` (on the next line under a long syntax)."""
    lines = []
    for syntax, text in clauses:
        first, *rest = text.split("\n")
        if len(syntax) + 2 > width:
            lines += [f"  {syntax}", " " * (width + 2) + first]
        else:
            lines.append(f"  {syntax:<{width}}{first}")
        lines += [" " * (width + 2) + line for line in rest]
    return "\n".join(lines)


STATEMENT_HELP = {
    "TRAIN": "TRAIN [OR REPLACE] algo ON source [clauses]  -- train a model (OR REPLACE: replace a\n"
             "model of the same name, refused otherwise); clauses in any order, each at most once:\n"
             + _clause_lines(_TRAIN_CLAUSES) + """
  e.g. TRAIN sgd ON 'data/*.parquet' PREDICT y SCALE standard EPOCHS 2 AS clicks;
  One parallel pass computes every statistic; each epoch then streams blocks to partial_fit.""",
    "PREDICT": """PREDICT [PROBA] USING name ON source [INTO 'folder/' [OPTIONS (...)] [OVERWRITE]]
  Without INTO the first rows are shown; INTO writes parquet files to a folder or URL,
  committed by a manifest written last, and refuses a folder that holds files unless
  OVERWRITE is given (which replaces only files oocml wrote).
PREDICT EXPLAIN USING name ON source [TOP k] [INTO 'folder/' [OPTIONS (...)] [OVERWRITE]]
  Each row's prediction, baseline and its k (default 3) largest feature contributions
  (feature_1, contribution_1, ...), in the model's margin (log-odds, or the value):
  TreeSHAP for xgboost (slow); for linear models coef * (x - mean) in scaled units, the
  mean taken as 0 where the model does not know it (see the README).""",
    "EVALUATE": """EVALUATE [CONFUSION | CURVE | RESIDUALS] name ON source [BY CLASS]
  EVALUATE m ON src: accuracy, precision, recall, f1, log_loss, roc_auc, average_precision
  (classifiers) or r2, rmse, mae (regressors); BY CLASS: one row per class;
  CONFUSION: the confusion matrix; CURVE: ROC and precision-recall curves (threshold, tpr,
  fpr, precision, recall); RESIDUALS: a regressor's residual quantiles. One parallel pass.""",
    "SHOW": """SHOW MODELS | SHOW ALGORITHMS | SHOW WEIGHTS name | SHOW TRIALS name | SHOW VERSIONS name
       | SHOW HISTORY name
  the session's models; the algorithms and their parameters; a linear model's coefficients
  and intercept by feature name; a TUNE model's candidates, ranked by holdout score; a
  model's versions (version, current, saved, fit, algorithm, source, files, rows seen,
  epochs, score); its last fit's epochs (rows, progressive and holdout scores, seconds).
  Wherever a statement reads a model, name@N reads its version N.""",
    "DESCRIBE": """DESCRIBE name | DESCRIBE DATA source
  a model: algorithm, parameters, features, classes, statistics, epochs, learning curve;
  DATA: per column the dtype, rows, missing, mean, std, min, max, top values (one pass)""",
    "DROP": """DROP MODEL name | DROP MODEL name@N
  Forget a model, every version (deleting their files in the --store folder), or one.""",
    "UPDATE": """UPDATE name ON source [NEW [INCLUDING CHANGED]] [WHERE cond] [EPOCHS n]
       [SHUFFLE [WINDOW n] [SEED n]]
  Train a stored model further on new data, its preprocessing as fitted; a new version.
  Each block is scored before the model trains on it: the update's test-then-train score.
  NEW: only the files the model has not seen (DESCRIBE lists those it has); a seen file that
  changed is refused unless INCLUDING CHANGED. A label the model does not know is refused.
  WHERE (as in TRAIN: NOT, AND, OR, IN, IS NULL, BETWEEN, TRUE, FALSE) keeps rows, as does
  the model's own WHERE.
  e.g. UPDATE clicks ON 'events/' NEW;""",
    "VALIDATE": """VALIDATE name ON source [THRESHOLD x] | VALIDATE DRIFT source AGAINST source [THRESHOLD x]
  Skew: the source's features against the model's training data, in one parallel pass; drift:
  a source against another (the second is the reference). Numeric columns: Jensen-Shannon
  divergence over 20 bins of equal training mass; categorical ones: L-infinity distance of
  value frequencies. One row per column: input, metric, value, threshold (default 0.3, as
  BigQuery ML's), is_anomaly. \\plot drift overlays the histograms of the last VALIDATE.""",
    "ROLLBACK": """ROLLBACK MODEL name TO VERSION n
  Make version n current again, as a new version: TRAIN OR REPLACE, UPDATE, LOAD OR REPLACE
  and ROLLBACK each write a version; the store keeps the newest 10 (Session(keep_versions=)).""",
    "SAVE": """SAVE MODEL name TO 'path or URL' [OPTIONS (...)] [OVERWRITE]
  Write a model file (skops, atomic); an existing file is refused unless OVERWRITE is given.""",
    "LOAD": """LOAD [OR REPLACE] MODEL name FROM 'path or URL' [OPTIONS (...)]
  Read a model file (foreign types refused); a taken name is refused unless OR REPLACE.""",
    "EXPLAIN": "EXPLAIN statement  -- the plan: source, schema, passes over the data, equivalent Python",
}

_STATEMENTS = """Statements end with ';' and may span lines. Keywords are case-insensitive.
  TRAIN [OR REPLACE] algo ON source [PREDICT col] [clauses...] [AS name]   train a model
  UPDATE name ON source [NEW] [EPOCHS n]                                   train further
  PREDICT [PROBA] USING name ON source [INTO 'folder/']                    predict
  PREDICT EXPLAIN USING name ON source [TOP k]                             per-row contributions
  EVALUATE [CONFUSION|CURVE|RESIDUALS] name ON source [BY CLASS]           metrics
  VALIDATE name ON source | VALIDATE DRIFT source AGAINST source           skew, drift
  SHOW MODELS | SHOW ALGORITHMS | SHOW WEIGHTS name | SHOW TRIALS name | SHOW VERSIONS name
  SHOW HISTORY name                                                        epochs, as a table
  DESCRIBE name | DESCRIBE DATA source
  DROP MODEL name | ROLLBACK MODEL name TO VERSION n          name@N: a model's version N
  SAVE MODEL name TO 'path' | LOAD MODEL name FROM 'path' | EXPLAIN statement
A source is a quoted glob, folder or URL ('data/*.parquet', 's3://b/p/'), with optional
  FORMAT parquet|csv|json and OPTIONS (key = literal, ...); a Delta Lake table,
  DELTA 'path or URL' [VERSION n]; or a table name.
A literal is a number, a 'string', TRUE, FALSE, NULL, a [list] or a (tuple,)."""
_KEYS = ("Tab completes; Ctrl-R searches history; Ctrl-C cancels the running statement or\n"
         "clears the line; Ctrl-D quits.")
_SWITCH = {"on": True, "off": False}


@dataclass(frozen=True)
class MetaCommand:
    """One meta command: ``name syntax`` runs ``handler(shell, argument)``."""

    name: str
    syntax: str
    help: str
    handler: Callable[[Any, str], bool]
    aliases: tuple[str, ...] = ()
    arguments: Callable[[Any], Iterable[str]] | None = None  # session (None: loading) -> candidates
    required: bool = False  # refuse an empty argument, showing the usage

    @property
    def usage(self) -> str:
        return f"{self.name} {self.syntax}".rstrip()


COMMANDS: dict[str, MetaCommand] = {}  # by name and by alias, in registration order


def command(name: str, syntax: str, help: str, *, aliases: tuple[str, ...] = (),
            arguments: Callable[[Any], Iterable[str]] | None = None, required: bool = False):
    """Register the decorated ``handler(shell, argument) -> bool`` as meta command ``name``."""
    def register(handler: Callable[[Any, str], bool]) -> Callable[[Any, str], bool]:
        entry = MetaCommand(name, syntax, help, handler, aliases, arguments, required)
        for key in (name, *aliases):
            if key in COMMANDS:
                raise ValueError(f"meta command {key!r} is registered twice")
            COMMANDS[key] = entry
        return handler
    return register


def commands() -> list[MetaCommand]:
    """Each meta command once, in registration order."""
    return list({id(c): c for c in COMMANDS.values()}.values())


def lookup(word: str) -> MetaCommand | None:
    return COMMANDS.get(word.rstrip(";"))


def general_help() -> str:
    """The statements in brief, then every meta command with its syntax and help."""
    entries = commands()
    width = max(len(c.usage) for c in entries) + 2
    lines = [f"  {c.usage:<{width}}{c.help}"
             + (f"; also {', '.join(c.aliases)}" if c.aliases else "") for c in entries]
    return "\n".join([_STATEMENTS, "Meta commands:", *lines, _KEYS])


def run(shell: Any, text: str) -> bool:
    """Run the meta command line ``text`` (``\\name argument``) against ``shell``."""
    word, _, argument = text.strip().partition(" ")
    argument = argument.strip().rstrip(";").strip()
    entry = lookup(word)
    if entry is None:
        shell.err.write(f"unknown meta command '{word}'; \\help lists them\n")
        return False
    if entry.required and not argument:
        return _usage(shell, entry)
    return entry.handler(shell, argument)


def _usage(shell: Any, entry: MetaCommand) -> bool:
    shell.err.write(f"usage: {entry.usage}  -- {entry.help}\n")
    return False


def _help_topics(session: Any) -> list[str]:
    return list(STATEMENT_HELP) + [c.name for c in commands()]


@command("\\help", "[statement|\\command]", "this help, a statement's or a meta command's",
         aliases=("\\h", "\\?"), arguments=_help_topics)
def _help(shell: Any, argument: str) -> bool:
    topic = argument.split(" ")[0]
    entry = lookup("\\" + topic.lstrip("\\")) if topic else None
    if topic.upper() in STATEMENT_HELP:
        shell.show(STATEMENT_HELP[topic.upper()])
    elif entry is not None:
        shell.show(f"{entry.usage}  -- {entry.help}")
    else:
        shell.show(general_help())
    return True


@command("\\models", "", "the session's models (SHOW MODELS)")
def _models(shell: Any, argument: str) -> bool:
    return shell.statement("SHOW MODELS")


@command("\\tables", "", "the registered tables and their columns")
def _tables(shell: Any, argument: str) -> bool:
    shell.show("\n".join(f"{name}: {', '.join(map(str, frame.columns))}"
                         for name, frame in shell.session.tables.items()) or "(no tables)")
    return True


@command("\\table", "name 'path'", "register a file, folder or URL as table name", required=True)
def _table(shell: Any, argument: str) -> bool:
    name, _, path = argument.partition(" ")
    path = path.strip().strip("'")
    if not path:
        return _usage(shell, COMMANDS["\\table"])
    try:
        from ..io.sources import open_source

        shell.session.register(name, open_source(
            Source(path=path), storage_options=shell.session.storage_options))
    except OocmlError as error:
        shell.error(error)
        return False
    shell.show(f"table {name}: {', '.join(map(str, shell.session.tables[name].columns))}")
    return True


@command("\\algorithms", "", "the algorithms and their parameters (SHOW ALGORITHMS)")
def _algorithms(shell: Any, argument: str) -> bool:
    return shell.statement("SHOW ALGORITHMS")


@command("\\describe", "name", "a model's details (DESCRIBE name)", required=True,
         arguments=lambda session: session.catalog.names() if session is not None else [])
def _describe(shell: Any, argument: str) -> bool:
    return shell.statement(f"DESCRIBE {argument}")


@command("\\format", "|".join(render.FORMATS), "how results print (alone: the current format)",
         arguments=lambda session: render.FORMATS)
def _format(shell: Any, argument: str) -> bool:
    if argument and argument not in render.FORMATS:
        return _usage(shell, COMMANDS["\\format"])
    if argument:
        shell.fmt = argument  # quietly, as scripts set it before printing csv or json
    else:
        shell.show(f"format is {shell.fmt}")
    return True


PLOTS = {"roc": "plot_roc", "pr": "plot_pr", "confusion": "plot_confusion",
         "weights": "plot_weights", "history": "plot_history", "search": "plot_search"}
_NEEDS_DATA = ("roc", "pr", "confusion")


@command("\\plot", f"{'|'.join(PLOTS)} model ['source'] 'file.png' | drift 'file.png'",
         "write a PNG of a model's ROC or PR curve, confusion matrix (on a source), its weights, "
         "its learning curve or its TUNE candidates' scores; drift: the histograms of the "
         "drifted columns of the last VALIDATE", required=True,
         arguments=lambda session: [*PLOTS, "drift"])
def _plot(shell: Any, argument: str) -> bool:
    import shlex

    words = shlex.split(argument)
    if words[:1] == ["drift"] and len(words) == 2:
        return _plot_drift(shell, words[1])
    if len(words) != (4 if words and words[0] in _NEEDS_DATA else 3) or words[0] not in PLOTS:
        return _usage(shell, COMMANDS["\\plot"])
    view, name, *source, path = words

    def figure() -> Any:
        model = shell.session.catalog.get(name)
        return getattr(model, PLOTS[view])(*([_frame(shell.session, source[0])] if source else []))

    return _write_figure(shell, figure, path)


def _plot_drift(shell: Any, path: str) -> bool:
    """The last VALIDATE's drifted columns, as histograms."""
    if shell.last_validation is None:
        shell.error(ParameterError("no VALIDATE has run in this session yet: run VALIDATE "
                                   "name ON source (or VALIDATE DRIFT ...) first"))
        return False
    from ..evaluation.plots import plot_drift

    return _write_figure(shell, lambda: plot_drift(shell.last_validation), path)


def _write_figure(shell: Any, figure: Callable[[], Any], path: str) -> bool:
    """Draw ``figure()`` and write it to ``path`` (a PNG, any URL); an error is shown, not raised."""
    from ..evaluation.plots import save

    try:
        written = save(figure(), path, storage_options=shell.session.storage_options)
    except OocmlError as error:
        shell.error(error)
        return False
    shell.show(f"wrote {written}")
    return True


def _frame(session: Any, source: str) -> Any:
    """A registered table by name, else a path or URL opened as a statement's source is."""
    if source in session.tables:
        return session.tables[source]
    from ..io.sources import open_source

    return open_source(Source(path=source), storage_options=session.storage_options)


def _switch(shell: Any, attribute: str, argument: str) -> bool:
    """``on``, ``off``, or nothing to flip the setting; anything else shows the usage."""
    if argument and argument not in _SWITCH:
        return _usage(shell, COMMANDS[f"\\{attribute}"])
    value = _SWITCH.get(argument, not getattr(shell, attribute))
    setattr(shell, attribute, value)
    shell.show(f"{attribute} is {'on' if value else 'off'}")
    return True


@command("\\timing", "[on|off]", "print each statement's time (alone: switch)",
         arguments=lambda session: list(_SWITCH))
def _timing(shell: Any, argument: str) -> bool:
    return _switch(shell, "timing", argument)


@command("\\pager", "[on|off]", "page long results through less (alone: switch)",
         arguments=lambda session: list(_SWITCH))
def _pager(shell: Any, argument: str) -> bool:
    return _switch(shell, "pager", argument)


@command("\\quit", "", "leave (Ctrl-D too)", aliases=("\\q",))
def _quit(shell: Any, argument: str) -> bool:
    raise EOFError
