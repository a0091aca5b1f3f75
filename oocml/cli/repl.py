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
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import OocmlError, TrainingInterrupted
from ..redaction import redact_statement
from . import meta, render
from .statements import split_statements, statement_complete

if TYPE_CHECKING:
    from ..session import Session

_TRAIN = re.compile(r"(?:\s|--[^\n]*|/\*[\s\S]*?\*/)*TRAIN\b", re.I)  # after blanks and comments


def history_path() -> Path:
    """``$OOCML_HISTORY``, else ``$XDG_DATA_HOME/oocml/history`` (``~/.local/share`` by default)."""
    if os.environ.get("OOCML_HISTORY"):
        return Path(os.environ["OOCML_HISTORY"])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "oocml" / "history"


class Shell:
    """Runs statements and meta commands against a Session and prints their results."""

    def __init__(self, session: Session | concurrent.futures.Future, out: TextIO, err: TextIO, *,
                 fmt: str = "table", debug: bool = False, pager: bool = False):
        self._session, self.out, self.err = session, out, err
        self.fmt, self.debug, self.pager, self.timing = fmt, debug, pager, False
        self.last_validation: Any = None  # the last VALIDATE's table, for \\plot drift

    @property
    def session(self) -> Session:
        """The Session; the REPL starts it in the background, and this waits for it (only ever
        after the prompt has returned, in cooked mode, where Ctrl-C is a signal)."""
        if isinstance(self._session, concurrent.futures.Future):
            self._session = self._session.result()
        return self._session

    @property
    def ready_session(self) -> Session | None:
        """The Session if it has started, else None at once: for what runs inside the prompt
        (the completer), where the terminal is in raw mode and a wait would eat Ctrl-C."""
        future = self._session
        if isinstance(future, concurrent.futures.Future):
            if not future.done() or future.exception() is not None:
                return None  # a failed start is reported by the next statement, not here
            self._session = future.result()
        return self._session

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
            result = self.execute(text)
            if isinstance(getattr(result, "attrs", None), dict) and "profiles" in result.attrs:
                self.last_validation = result
            self.show(render.result(result, self.fmt))
        except OocmlError as error:
            self.error(error)
            return False
        except KeyboardInterrupt:  # before the statement started
            self.cancel(text)
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

    def execute(self, text: str) -> Any:
        """One statement's result, the session waited for first. A Ctrl-C at any moment of a
        TRAIN ends in TrainingInterrupted, saying where (the engine says it for its passes)."""
        where = "before it started: the session was still loading; nothing was trained"
        try:
            session = self.session
            where = ("outside its passes (opening the source or keeping the model); SHOW MODELS "
                     "says whether it was kept")
            return session.sql(text)
        except KeyboardInterrupt:
            if _TRAIN.match(text) is None:
                raise
            raise TrainingInterrupted(f"training interrupted {where}") from None

    def cancel(self, text: str) -> None:
        """Ctrl-C typed after Enter but before ``text`` started: nothing of it runs."""
        if _TRAIN.match(text):
            self.error(TrainingInterrupted("training interrupted before it started; nothing was trained"))
        else:
            self.err.write("cancelled\n")
        self.err.flush()

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
        """A meta command line (``\\help``, ``\\timing on``, ...): see :mod:`oocml.cli.meta`.
        The session is waited for first: a handler's imports must not race the session's."""
        self.session  # noqa: B018
        return meta.run(self, text)


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

    prompt = PromptSession(history=RedactedHistory(str(path)), completer=OocmlCompleter(shell),
                           lexer=PygmentsLexer(OocmlLexer), key_bindings=bindings, multiline=True,
                           complete_while_typing=True, enable_history_search=False,
                           prompt_continuation=lambda width, line, soft: "...> ".rjust(width))
    shell.out.write("oocml-sql: out-of-core machine learning. \\help for help, \\quit to leave.\n")
    sigint = PromptSigint(prompt.app)
    previous = signal.signal(signal.SIGINT, sigint.handle)
    try:
        while True:
            sigint.reading = True
            sigint.interrupted = False
            try:
                text = prompt.prompt("oocml> ", handle_sigint=False)
            except KeyboardInterrupt:
                continue  # Ctrl-C clears the line
            except EOFError:
                break
            try:
                sigint.reading = False  # from here on, a SIGINT raises KeyboardInterrupt
                if sigint.interrupted or _ctrl_c_after_enter(prompt.app.input):
                    raise KeyboardInterrupt
                shell.run(text)
            except KeyboardInterrupt:  # before a statement started, or in a meta command
                shell.cancel(text)
            except EOFError:
                break
    finally:
        signal.signal(signal.SIGINT, previous)
    return 0


class PromptSigint:
    """The REPL's SIGINT handler: Python's own while a statement runs, and one that loses no
    Ctrl-C while the prompt reads.

    prompt_toolkit's handler stays installed until its event loop has wound down, after the
    terminal is back in cooked mode, and a Ctrl-C caught there goes to an app that has already
    returned: it is lost. Here, while the prompt still reads, the signal clears the line as the
    Ctrl-C key does; once the input is returned it is remembered, and the statement cancelled."""

    def __init__(self, app: Any):
        self.app, self.reading, self.interrupted = app, False, False

    def handle(self, signum: int, frame: Any) -> None:
        if not self.reading:
            signal.default_int_handler(signum, frame)
        self.interrupted = True
        if self.app.is_running and self.app.loop is not None:
            self.app.loop.call_soon_threadsafe(self._clear_line)

    def _clear_line(self) -> None:
        future = self.app.future
        if future is not None and not future.done():
            self.app.key_processor.send_sigint()


def _ctrl_c_after_enter(terminal: Any) -> bool:
    """Whether Ctrl-C was typed between Enter and the prompt's return to cooked mode: a key then,
    not a signal (a busy machine, or the session's imports holding the GIL, can make that last a
    few hundred ms). prompt_toolkit keeps what it read after Enter as typeahead; the rest waits,
    unread, in the terminal. Other keys are kept for the next prompt; after a Ctrl-C they are
    dropped, as the terminal drops pending input on SIGINT."""
    from prompt_toolkit.input.typeahead import get_typeahead, store_typeahead
    from prompt_toolkit.keys import Keys

    keys = get_typeahead(terminal)
    while batch := terminal.read_keys():  # never waits: it reads only what is there
        keys += batch
    keys += terminal.flush_keys()
    if any(key.key == Keys.ControlC for key in keys):
        return True
    store_typeahead(terminal, keys)
    return False


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
        session = start_session(args.store, interactive)
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


def start_session(store: str | None, interactive: bool) -> Any:
    """The Session, or for the REPL a Future of it: the prompt is drawn while dask, pandas and
    pyarrow load on a background thread (the model store is checked first, so a bad one
    still stops the REPL at once).

    Two threads importing the same libraries at once can deadlock on their import locks
    (dask.dataframe and dask.array import each other; Python then raises ImportError in
    one of them). So the main thread imports what the prompt needs before the background
    thread starts, and afterwards touches nothing heavy until the session is there: meta
    commands and statements wait for it first, once the prompt has returned (in cooked mode,
    so Ctrl-C stops the wait); the completer never waits and offers only what needs no heavy
    import until it is there (:mod:`oocml.cli.complete`)."""
    if not interactive:
        from ..session import Session

        return Session(store)
    import prompt_toolkit.history  # noqa: F401  (the prompt's own modules, imported here)
    import prompt_toolkit.key_binding  # noqa: F401
    import prompt_toolkit.lexers  # noqa: F401

    from ..dsl.grammar import lark_parser
    from . import complete, highlight  # noqa: F401

    lark_parser()
    if store is not None:
        from ..catalog import Catalog

        Catalog(store)
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="oocml-start")
    future = pool.submit(_session, store)
    pool.shutdown(wait=False)
    return future


def _session(store: str | None) -> Session:
    from ..session import Session

    return Session(store, progress=True)


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
