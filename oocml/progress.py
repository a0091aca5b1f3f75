"""A progress line on stderr for the training loop (dask's own bars serve single computations).

On by default only when stderr is a terminal, so scripts, tests and logs stay quiet.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def progress_enabled(requested: bool | None) -> bool:
    """The caller's choice, or: is stderr an interactive terminal?"""
    if requested is not None:
        return bool(requested)
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class BlockProgress:
    """``[#####     ] 12/40 blocks  epoch 1/2  3.1M rows/s``, redrawn at most 10 times a second."""

    def __init__(self, total: int, enabled: bool, label: str = "train", out: TextIO | None = None):
        self.total, self.enabled, self.label = max(total, 1), enabled, label
        self.out = out or sys.stderr
        self.done = self.rows = 0
        self.start = self._drawn = time.perf_counter()

    def update(self, rows: int, epoch: int, epochs: int) -> None:
        self.done += 1
        self.rows += rows
        now = time.perf_counter()
        if self.enabled and (now - self._drawn > 0.1 or self.done == self.total):
            self._drawn = now
            width = 24
            filled = int(width * self.done / self.total)
            rate = self.rows / max(now - self.start, 1e-9)
            self.out.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {self.label} "
                           f"{self.done}/{self.total} blocks  epoch {epoch + 1}/{epochs}  "
                           f"{rate / 1e6:.2f}M rows/s ")
            self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.out.write("\n")
            self.out.flush()
