"""Partitions loaded ahead of training: at most ``depth`` at once, each a :class:`Feed` of
blocks made on a loader thread, with at most ``room`` blocks made and not yet taken.

Loader threads run at a lower priority than the training thread, which is the critical
path.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..execution import Submitter

LOADER_NICENESS = 10  # added to the loader threads' nice value (see _yield_to_training)


def prefetched(submitter: Submitter, tasks: Iterable[Any], depth: int) -> Iterator[Any]:
    """Results of ``tasks`` in order, keeping at most ``depth`` computations in flight.

    A :class:`Feed` is its own result: it is started, and its blocks are taken as they come.
    """
    pending: deque = deque()
    tasks = iter(tasks)
    try:
        for task in tasks:
            pending.append(_start(submitter, task))
            if len(pending) >= depth:
                break
        while pending:
            head = pending[0]
            yield head if isinstance(head, Feed) else head.result()
            pending.popleft()
            nxt = next(tasks, None)
            if nxt is not None:
                pending.append(_start(submitter, nxt))
    finally:  # stopped early (an error, Ctrl-C): free the loader threads
        for item in pending:
            item.cancel()


def _start(submitter: Submitter, task: Any) -> Any:
    if isinstance(task, Feed):
        submitter.submit(task.run)
        return task
    return submitter.submit(task)


class Feed:
    """The blocks of one partition, made on a loader thread and taken in order by the training
    loop, with at most ``room`` blocks made and not yet taken: memory holds a few blocks per
    partition in flight, whatever the size of the partitions."""

    _END = object()

    def __init__(self, make: Callable[[], Iterable[Any]], room: int = 2, niced: bool = True):
        self._make, self._queue, self._niced = make, queue.SimpleQueue(), niced
        self._room = threading.Semaphore(room)  # a block is made only once it has room
        self._cancelled = threading.Event()
        self._ended = threading.Event()

    def run(self) -> None:
        """Make every block (on a loader thread), each once there is room for it, so that no
        made block waits outside the queue; an error is handed to the taker."""
        if self._niced:
            _yield_to_training()
        try:
            blocks = iter(self._make())
            while self._wait_for_room():
                block = next(blocks, self._END)
                self._queue.put(block)
                if block is self._END:
                    return
        except BaseException as exc:  # noqa: BLE001  (re-raised on the training thread)
            self._queue.put(exc)
        finally:
            self._ended.set()

    @property
    def ended(self) -> bool:
        """Its loader thread has made its last block (or stopped): what it read is let go."""
        return self._ended.is_set()

    def _wait_for_room(self) -> bool:
        """True once a block may be made; False once cancelled."""
        while not self._cancelled.is_set():
            if self._room.acquire(timeout=0.1):
                return True
        return False

    def __iter__(self) -> Iterator[Any]:
        """The blocks, in order; they end early once cancelled (a taker on another thread
        is never left waiting for a loader that has stopped)."""
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._cancelled.is_set():
                    return
                continue
            self._room.release()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def cancel(self) -> None:
        """Stop making blocks (the loader thread returns at its next block)."""
        self._cancelled.set()


def _yield_to_training() -> None:
    """Lower this loader thread's priority (Linux: niceness is per thread), so that the one
    thread that trains, the critical path, never waits for a core behind a loader; loaders
    use what training leaves."""
    if sys.platform == "linux":
        thread = threading.get_native_id()
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, thread,
                           min(os.getpriority(os.PRIO_PROCESS, thread) + LOADER_NICENESS, 19))
