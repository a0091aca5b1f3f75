"""``oocml-sql``: the interactive REPL and batch runner of oocml's language.

    oocml-sql                         # REPL: statements end with ';', \\help for help
    oocml-sql -c "SHOW ALGORITHMS"    # run statements and exit
    oocml-sql -f script.sql           # run a file
    echo "SHOW MODELS;" | oocml-sql   # statements on standard input

Every statement goes to the same :class:`oocml.Session` that ``oocml.sql`` uses.
Batch modes exit with status 1 when a statement fails; the REPL keeps going.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import TextIO

from .statements import split_statements, statement_complete
from ..errors import OocmlError
from ..plan import Source
from ..session import Session
from ..sources import open_source
from ..storage import redact_statement
from . import render

HELP = {
    "": """Statements end with ';' and may span lines. Keywords are case-insensitive.
  TRAIN algo ON source [PREDICT col] [clauses...] [AS name]   train a model
  PREDICT [PROBA] USING name ON source [INTO 'folder/']       predict
  EVALUATE name ON source                                     metrics
  SHOW MODELS | SHOW ALGORITHMS | DESCRIBE name | DROP MODEL name
  SAVE MODEL name TO 'path' | LOAD MODEL name FROM 'path' | EXPLAIN statement
A source is a quoted glob, folder or URL ('data/*.parquet', 's3://b/p/'), with optional
  FORMAT parquet|csv|json and OPTIONS (key = value, ...), or a table name.
Meta commands: \\help [TRAIN|PREDICT|...], \\models, \\tables, \\table name 'path',
  \\algorithms, \\describe name, \\format table|csv|json, \\timing [on|off],
  \\pager [on|off], \\quit.  Tab completes; Ctrl-R searches history;
  Ctrl-C cancels the running statement or clears the line; Ctrl-D quits.""",
    "TRAIN": """TRAIN algo ON source [PREDICT target]
      [FEATURES col, ... | FEATURES * EXCLUDE (col, ...)] [WHERE condition]
      [SCALE standard|minmax|maxabs|none] [WITH (param = literal, ...)]
      [EPOCHS n] [BLOCKSIZE n ROWS] [SHUFFLE [SEED n]] [AS name]
  e.g. TRAIN sgd ON 'data/*.parquet' PREDICT y SCALE standard EPOCHS 2 AS clicks;
  One parallel pass computes every statistic; each epoch then streams blocks to partial_fit.""",
    "PREDICT": """PREDICT [PROBA] USING name ON source [INTO 'folder/' [OPTIONS (...)] [OVERWRITE]]
  Without INTO the first rows are shown; INTO writes parquet files to a folder or URL,
  committed by a manifest written last, and refuses a folder that holds files unless
  OVERWRITE is given (which replaces only files oocml wrote).""",
    "EVALUATE": "EVALUATE name ON source  -- accuracy/precision/recall/f1/log_loss or r2/rmse/mae",
    "SHOW": "SHOW MODELS | SHOW ALGORITHMS  -- the session's models; the algorithms and their parameters",
    "DESCRIBE": "DESCRIBE name  -- algorithm, parameters, features, classes, statistics, rows seen, timing",
    "DROP": "DROP MODEL name  -- forget a model (and delete its file in the --store folder)",
    "SAVE": "SAVE MODEL name TO 'path or URL' [OPTIONS (...)]  -- write a model file (skops, atomic)",
    "LOAD": "LOAD MODEL name FROM 'path or URL' [OPTIONS (...)]  -- read a model file (foreign types refused)",
    "EXPLAIN": "EXPLAIN statement  -- the plan: source, schema, passes over the data, equivalent Python",
}


def history_path() -> Path:
    """``$OOCML_HISTORY``, else ``$XDG_DATA_HOME/oocml/history`` (``~/.local/share`` by default)."""
    if os.environ.get("OOCML_HISTORY"):
        return Path(os.environ["OOCML_HISTORY"])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "oocml" / "history"


class Shell:
    """Runs statements and meta commands against a Session and prints their results."""

    def __init__(self, session: Session, out: TextIO, err: TextIO, *, fmt: str = "table",
                 debug: bool = False, pager: bool = False):
        self.session, self.out, self.err = session, out, err
        self.fmt, self.debug, self.pager, self.timing = fmt, debug, pager, False

    def run(self, text: str) -> bool:
        """Run statements and meta commands in ``text``; False if any failed."""
        if text.strip().startswith("\\"):
            return self.meta(text.strip())
        ok = True
        for statement in split_statements(text):
            ok = self.statement(statement) and ok
        return ok

    def statement(self, text: str) -> bool:
        start = time.perf_counter()
        try:
            result = self.session.sql(text)
            self.show(render.result(result, self.fmt))
        except OocmlError as error:
            self.error(error)
            return False
        except KeyboardInterrupt:
            self.err.write("cancelled\n")
            return False
        except BrokenPipeError:
            raise
        except Exception as error:  # a bug, not the user's fault: say so plainly
            self.error(error, unexpected=True)
            return False
        finally:
            if self.timing:
                self.out.write(f"Time: {time.perf_counter() - start:.3f}s\n")
        return True

    def error(self, error: BaseException, unexpected: bool = False) -> None:
        if self.debug or unexpected:
            traceback.print_exception(error, file=self.err)
        label = "internal error" if unexpected else "ERROR"
        self.err.write(f"{label}: {error}\n")
        self.err.flush()

    def show(self, text: str) -> None:
        if not text:
            return
        height = shutil.get_terminal_size((80, 24)).lines
        if self.pager and text.count("\n") >= height - 2 and shutil.which("less"):
            subprocess.run(["less", "-SRXF"], input=text.encode(), check=False)
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def meta(self, text: str) -> bool:
        command, _, argument = text.partition(" ")
        argument = argument.strip().rstrip(";").strip()
        command = command.rstrip(";")
        if command in ("\\q", "\\quit"):
            raise EOFError
        if command in ("\\h", "\\help", "\\?"):
            self.show(HELP.get(argument.upper().split(" ")[0], HELP[""]))
        elif command == "\\models":
            return self.statement("SHOW MODELS")
        elif command == "\\algorithms":
            return self.statement("SHOW ALGORITHMS")
        elif command == "\\describe" and argument:
            return self.statement(f"DESCRIBE {argument}")
        elif command == "\\tables":
            self.show("\n".join(f"{name}: {', '.join(map(str, frame.columns))}"
                                for name, frame in self.session.tables.items()) or "(no tables)")
        elif command == "\\table" and argument:
            return self.register(argument)
        elif command == "\\format" and argument in render.FORMATS:
            self.fmt = argument
        elif command in ("\\timing", "\\pager"):
            attribute = command[1:]
            value = {"on": True, "off": False}.get(argument, not getattr(self, attribute))
            setattr(self, attribute, value)
            self.show(f"{attribute} is {'on' if value else 'off'}")
        else:
            self.err.write(f"unknown or incomplete meta command {text!r}; try \\help\n")
            return False
        return True

    def register(self, argument: str) -> bool:
        """``\\table name 'path'``: open a source and register it as a table."""
        name, _, path = argument.partition(" ")
        path = path.strip().strip("'")
        try:
            self.session.register(name, open_source(
                Source(path=path), storage_options=self.session.storage_options))
        except OocmlError as error:
            self.error(error)
            return False
        self.show(f"table {name}: {', '.join(map(str, self.session.tables[name].columns))}")
        return True


def repl(shell: Shell) -> int:
    """The interactive loop: multi-line input, history, completion, highlighting."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.lexers import PygmentsLexer

    from .complete import OocmlCompleter
    from .highlight import OocmlLexer

    path = history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    bindings = KeyBindings()

    @bindings.add("enter")
    def _(event):
        buffer = event.current_buffer
        text = buffer.text
        if not text.strip() or text.strip().startswith("\\") or statement_complete(text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    class RedactedHistory(FileHistory):
        """The history file, with the values of secret-looking OPTIONS masked."""

        def store_string(self, string: str) -> None:
            super().store_string(redact_statement(string))

    prompt = PromptSession(history=RedactedHistory(str(path)), completer=OocmlCompleter(shell.session),
                           lexer=PygmentsLexer(OocmlLexer), key_bindings=bindings, multiline=True,
                           complete_while_typing=True, enable_history_search=False,
                           prompt_continuation=lambda width, line, soft: "...> ".rjust(width))
    shell.out.write("oocml-sql: out-of-core machine learning. \\help for help, \\quit to leave.\n")
    while True:
        try:
            text = prompt.prompt("oocml> ")
        except KeyboardInterrupt:
            continue  # Ctrl-C clears the line
        except EOFError:
            break
        try:
            shell.run(text)
        except EOFError:
            break
    return 0


def batch(shell: Shell, text: str) -> int:
    """Run every statement of ``text``; stop at the first failure with status 1."""
    for chunk in _chunks(text):
        try:
            if not shell.run(chunk):
                return 1
        except EOFError:
            break
    return 0


def _chunks(text: str) -> list[str]:
    """Meta commands (whole lines starting with a backslash) and statements, in order."""
    chunks, pending = [], []
    for line in text.splitlines():
        if line.strip().startswith("\\") and not "".join(pending).strip():
            chunks.append(line)
        else:
            pending.append(line)
            if statement_complete("\n".join(pending)):
                chunks.append("\n".join(pending))
                pending = []
    if "\n".join(pending).strip():
        chunks.append("\n".join(pending))
    return chunks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oocml-sql", description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--command", help="run these statements and exit")
    parser.add_argument("-f", "--file", type=Path, help="run the statements in this file and exit")
    parser.add_argument("--store", default=os.environ.get("OOCML_STORE"),
                        help="folder or URL (s3://bucket/models/) where models persist across "
                             "runs (default: $OOCML_STORE; without it models live for the session)")
    parser.add_argument("--format", choices=render.FORMATS, default="table")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")
    args = parser.parse_args(argv)

    interactive = args.command is None and args.file is None and sys.stdin.isatty()
    try:
        session = Session(args.store, progress=True if interactive else None)
    except (OSError, OocmlError) as error:
        sys.stderr.write(f"ERROR: cannot use the model store {args.store!r}: {error}\n")
        return 2
    shell = Shell(session, sys.stdout, sys.stderr, fmt=args.format, debug=args.debug,
                  pager=interactive)
    if args.command is not None:
        return batch(shell, args.command)
    if args.file is not None:
        try:
            text = args.file.read_text()
        except OSError as error:
            sys.stderr.write(f"ERROR: cannot read {str(args.file)!r}: {error.strerror}\n")
            return 2
        return batch(shell, text)
    if not interactive:
        return batch(shell, sys.stdin.read())
    return repl(shell)


def run() -> int:
    """The console script: ``main`` with a closed output pipe ending quietly, as Unix tools do."""
    try:
        return main()
    except BrokenPipeError:
        sys.stderr.close()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(run())
