"""One progress line on stderr for every pass over the data, in one style and one unit:

``statistics [#########     ] 12/40 partitions  3.1M rows/s  ETA 0:04``

Every pass counts partitions (the unit Ctrl-C's message reports too): the statistics pass,
the reduction pass, each training epoch, the holdout scoring pass, EVALUATE and PREDICT
INTO. Rows per second show where the rows are known. A line is redrawn at most 10 times a
second and ends with a newline. Progress is on by default only when stderr is a terminal or
the code runs in a Jupyter kernel, so scripts, tests and logs stay quiet; nothing else is ever
printed. In a notebook the same line is one output of the cell, updated in place (an
``IPython.display`` handle), not carriage returns on stderr.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TextIO

from dask.callbacks import Callback
from dask.utils import key_split

from ._compat import graph_dependents, literal_keys

BAR_WIDTH = 24
REDRAW_SECONDS = 0.1


def progress_enabled(requested: bool | None) -> bool:
    """The caller's choice, or: is stderr an interactive terminal, or is this a notebook?"""
    if requested is not None:
        return bool(requested)
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) or in_notebook()


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (IPython with a kernel attached; a terminal
    IPython has none)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


class NotebookLine:
    """A progress line as one output of the running cell, replaced at each redraw."""

    def __init__(self) -> None:
        self.handle: Any = None

    def show(self, line: str) -> None:
        from IPython.display import Pretty, display

        if self.handle is None:
            self.handle = display(Pretty(line), display_id=True)
        else:
            self.handle.update(Pretty(line))


class PassLine:
    """One pass's line, ``name [####    ] done/total partitions  rows/s  ETA``: drawn at
    once, redrawn as partitions finish (at most 10 times a second), and on :meth:`close`
    a last time with the time taken, then a newline. ``done`` partitions may already be
    behind it (a resumed epoch); the rate and ETA count only those done since."""

    def __init__(self, name: str, total: int, enabled: bool = True, out: TextIO | None = None,
                 done: int = 0, unit: str = "partitions"):
        self.name, self.total, self.enabled, self.unit = name, total, enabled, unit
        self.cell = NotebookLine() if out is None and enabled and in_notebook() else None
        self.out = out or sys.stderr
        self.done = self._first = done
        self.rows = 0  # rows of the partitions counted with their rows
        self.start = time.perf_counter()
        self._drawn, self._width, self.closed = -math.inf, 0, False
        self._draw(force=True)

    def advance(self, rows: int | None = None) -> None:
        """One more partition done (of ``rows`` rows, when known)."""
        self.done += 1
        self.rows += rows or 0
        self._draw()

    def close(self) -> None:
        """The final state and the time taken, then a newline (once)."""
        if not self.closed:
            self.closed = True
            self._draw(force=True, final=True)
            if self.enabled and self.cell is None:
                self.out.write("\n")
                self.out.flush()

    def text(self, now: float, final: bool = False) -> str:
        elapsed = now - self.start
        filled = int(BAR_WIDTH * min(self.done / self.total, 1.0)) if self.total else BAR_WIDTH
        fields = [f"{self.name} [{'#' * filled}{' ' * (BAR_WIDTH - filled)}] "
                  f"{self.done}/{self.total} {self.unit}"]
        if self.rows and elapsed > 0:
            fields.append(f"{_count(self.rows / elapsed)} rows/s")
        advanced = self.done - self._first
        if final:
            fields.append(f"in {_clock(elapsed)}")
        elif advanced > 0:
            fields.append(f"ETA {_clock(elapsed / advanced * max(self.total - self.done, 0))}")
        else:
            fields.append("ETA ?")
        return "  ".join(fields)

    def _draw(self, force: bool = False, final: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or not (force or now - self._drawn >= REDRAW_SECONDS):
            return
        self._drawn = now
        line = self.text(now, final)
        if self.cell is not None:
            self.cell.show(line)
            return
        self.out.write("\r" + line.ljust(self._width))  # blanks over a longer previous line
        self._width = len(line)
        self.out.flush()


class BlockProgress:
    """The training passes: one :class:`PassLine` per epoch (``train epoch 2/3 [...] 12/40
    partitions ...``; just ``train`` for one epoch), and the count of this run's partitions
    that an interruption reports (``done`` of ``total``; ``done_before`` a resumed run's)."""

    def __init__(self, partitions: int, epochs: int, enabled: bool,
                 name: str | Callable[[], str] = "train",
                 done_before: int = 0, out: TextIO | None = None):
        self.partitions, self.epochs, self.enabled, self.name = partitions, epochs, enabled, name
        self.out = out
        self.total = partitions * epochs - done_before
        self.done = 0
        self.line: PassLine | None = None

    def start(self, epoch: int, done: int = 0) -> None:
        """Open epoch ``epoch``'s (0-based) line; ``done`` of its partitions were trained on
        before this run."""
        self.close()
        label = self.name() if callable(self.name) else self.name  # TUNE's says what is live
        name = label if self.epochs == 1 else f"{label} epoch {epoch + 1}/{self.epochs}"
        self.line = PassLine(name, self.partitions, self.enabled, self.out, done=done)

    def update(self, rows: int) -> None:
        """One partition of ``rows`` rows trained on; the epoch's line ends with its last."""
        self.done += 1
        if self.line is not None:
            self.line.advance(rows)
            if self.line.done >= self.line.total:
                self.close()

    def close(self) -> None:
        if self.line is not None:
            self.line.close()
            self.line = None


class DaskProgress(Callback):
    """A :class:`PassLine` for each computation on dask's local schedulers: it counts the
    per-partition tasks (see :func:`partition_keys`) as they finish, with the rows of those
    whose result has an integer ``rows`` (a statistics :class:`~oocml.engine.stats.Summary`).
    Enter it to draw every local computation inside (dask registers callbacks process-wide),
    or hand :meth:`hooks` to one ``dask.compute(..., callbacks=[...])``."""

    def __init__(self, name: str, out: TextIO | None = None):
        super().__init__()
        self.name, self.out = name, out
        self._line: PassLine | None = None
        self._keys: set = set()

    def hooks(self) -> tuple:
        """The five callbacks (start, start_state, pretask, posttask, finish) as dask's local
        schedulers take them."""
        return (None, self._start_state, None, self._posttask, self._finish)

    def _start_state(self, dsk: Mapping, state: dict) -> None:
        dependents = graph_dependents(dsk)
        loaded = literal_keys(state)  # literal data, not tasks
        self._keys = partition_keys({k: v for k, v in dependents.items() if k not in loaded})
        self._line = PassLine(self.name, len(self._keys), True, self.out)

    def _posttask(self, key: Hashable, result: Any, dsk: Mapping, state: dict,
                  worker_id: Any) -> None:
        if self._line is not None and key in self._keys:
            rows = getattr(result, "rows", None)
            self._line.advance(int(rows) if isinstance(rows, numbers.Integral) else None)

    def _finish(self, dsk: Mapping, state: dict, errored: bool) -> None:
        if self._line is not None:
            self._line.close()
            self._line = None


def partition_keys(dependents: Mapping[Hashable, Iterable[Hashable]]) -> set:
    """The keys of a graph's per-partition tasks, given each key's dependents: the largest
    layer (tasks whose keys share a name, as ``summarize_part-<token>`` or ``('to-parquet-
    <token>', i)`` do), and of equally large layers the last, which no other one feeds
    (reading, predicting and writing a partition are three layers of one size)."""
    layers: dict[str, set] = defaultdict(set)
    for key in dependents:
        layers[key_split(key)].add(key)
    if not layers:
        return set()
    most = max(len(keys) for keys in layers.values())
    tied = {name for name, keys in layers.items() if len(keys) == most}
    for name in sorted(tied):
        feeds = {key_split(d) for k in layers[name] for d in dependents[k]}
        if not (feeds & tied) - {name}:
            return layers[name]
    return layers[sorted(tied)[-1]]


def _clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _count(value: float) -> str:
    """``3.1M``, ``850k`` or ``120``."""
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e3:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}"
