"""SHUFFLE across partitions: the rows of a window of partitions mixed into every block.

Data at rest is rarely in random order (a Hive layout groups rows by its partition column,
daily files by time), and a block of one partition biases SGD towards that partition. As
``tf.data``'s interleave plus shuffle buffer does, with memory bounded:

- the epoch's partitions, in their seeded order, are taken ``window`` at a time, read at
  once (a loader each) and interleaved: every block takes from each partition of the window
  its share of the rows it has left (its training rows are counted by the statistics pass),
  so that all of them end together and the epoch ends on no single partition;
- inside a partition, rows are drawn at random from a span of ``SPAN_BLOCKS`` blocks at a
  time (a shuffle buffer): a partition of up to that many blocks is wholly permuted, a larger
  one mixed span by span (data sorted by time inside a file);
- each block is gathered once, straight from the spans into its own array, the partitions'
  rows in a seeded random order of partitions: no round is stacked or permuted again, so
  mixing costs the one gather that SHUFFLE's row permutation always cost.

Memory grows by the spans (``SPAN_BLOCKS`` blocks a partition of the window, 8 MB each by
default) and the window's loaders' queues. A window ends with its partitions, so a
checkpoint taken between windows resumes the same stream, bit for bit. The blocks depend
only on the seed and the data, never on the scheduler; the cache stores the blocks before
mixing, so cached epochs mix the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..blocks import stack_rows, take_rows

WINDOW = 4  # partitions mixed at once by default
SPAN_BLOCKS = 2  # each partition's rows are drawn at random from this many blocks at a time


def window_size(wanted: int | None, shuffle: bool, partitions: int) -> int | None:
    """Partitions mixed at once: ``wanted`` (default ``WINDOW``), at most the number of
    partitions; None without SHUFFLE or with ``WINDOW 1`` (blocks of one partition each, rows
    permuted inside each block: the stream before mixing)."""
    if not shuffle or wanted == 1:
        return None
    return max(1, min(wanted or WINDOW, partitions))


def mixed(streams: Sequence[Any], seed: Sequence[int], rows: list[int],
          sizes: Sequence[int] | None = None) -> Iterator[tuple]:
    """The window's blocks mixed (see the module); ``rows[i]`` counts the rows taken from
    ``streams[i]``, whose training rows number about ``sizes[i]`` (None: as many in each)."""
    sources = [_Span(s, [*seed, k, 1]) for k, s in enumerate(streams)]  # never a block's seed
    sizes = list(sizes) if sizes is not None else [1] * len(streams)
    unit = max((s.first_rows() for s in sources), default=0)  # the blocks' rows, as they came
    for turn in range(1 << 62):
        live = [k for k, s in enumerate(sources) if not s.finished]
        if not live:
            return
        left = [max(sizes[k] - rows[k], 1) for k in live] if len(live) > 1 else [1]
        pieces, shares = [], _shares(unit, left)
        for i in np.random.default_rng([*seed, turn]).permutation(len(live)):
            k = live[i]
            taken = sources[k].take(shares[i])
            rows[k] += sum(len(index) for _, _, index in taken)
            pieces += taken
        if pieces:
            yield _gathered(pieces)


def _shares(unit: int, left: list[int]) -> list[int]:
    """Rows of a block of ``unit`` rows due to each live partition, in proportion to the rows
    each has left (largest remainders first, so the shares add up to ``unit``)."""
    exact = [unit * n / sum(left) for n in left]
    shares = [int(e) for e in exact]
    for j in sorted(range(len(left)), key=lambda j: shares[j] - exact[j])[:unit - sum(shares)]:
        shares[j] += 1
    return shares


def _gathered(pieces: list[tuple]) -> tuple:
    """One block from ``(X, y, rows)`` pieces: dense ones gathered straight into one array."""
    if not all(_dense(X, y) for X, y, _ in pieces) or len({X.dtype for X, _, _ in pieces}) > 1:
        return (stack_rows([take_rows(X, index) for X, _, index in pieces]),
                stack_rows([take_rows(y, index) for _, y, index in pieces]))
    X0, y0, _ = pieces[0]
    n = sum(len(index) for _, _, index in pieces)
    X = np.empty((n, *X0.shape[1:]), dtype=X0.dtype)
    y = None if y0 is None else np.empty(n, dtype=np.result_type(*(y.dtype for _, y, _ in pieces)))
    start = 0
    for Xp, yp, index in pieces:
        end = start + len(index)
        np.take(Xp, index, axis=0, out=X[start:end], mode="clip")  # mode: no buffered copy
        if y is not None:
            y[start:end] = yp[index]
        start = end
    return X, y


def _dense(X: Any, y: Any) -> bool:
    return isinstance(X, np.ndarray) and (y is None or isinstance(y, np.ndarray))


class _Span:
    """One partition's blocks, ``SPAN_BLOCKS`` at a time, their rows taken in a random order."""

    def __init__(self, blocks: Any, seed: Sequence[int]):
        self.blocks, self.rng, self.ended = iter(blocks), np.random.default_rng(seed), False
        self.span: list[tuple] = []  # the blocks rows are drawn from
        self.order = np.empty(0, dtype=np.intp)  # their rows, numbered across the span, to come
        self.bounds = np.zeros(1, dtype=np.intp)  # where each block's numbers start

    @property
    def finished(self) -> bool:
        return not self.order.size and not self._fill()

    def first_rows(self) -> int:
        """The rows of its first block (0 when it has none)."""
        self._fill()
        return self.span[0][0].shape[0] if self.span else 0

    def take(self, n: int) -> list[tuple]:
        """Up to ``n`` rows, as ``(X, y, rows)`` pieces of its blocks."""
        out = []
        while n > 0 and (self.order.size or self._fill()):
            drawn, self.order = self.order[:n], self.order[n:]
            n -= drawn.size
            block = np.searchsorted(self.bounds, drawn, side="right") - 1
            for b, (X, y) in enumerate(self.span):
                mine = drawn[block == b]
                if mine.size:
                    out.append((X, y, mine - self.bounds[b]))
        return out

    def _fill(self) -> bool:
        """The next span of blocks with rows; False at the partition's end."""
        if self.order.size:
            return True
        self.span = []
        while not self.ended and len(self.span) < SPAN_BLOCKS:
            block = next(self.blocks, None)
            if block is None:
                self.ended = True
            elif block[0].shape[0]:
                self.span.append(block)
        if not self.span:
            return False
        self.bounds = np.cumsum([0] + [X.shape[0] for X, _ in self.span])
        self.order = self.rng.permutation(int(self.bounds[-1]))
        return True
