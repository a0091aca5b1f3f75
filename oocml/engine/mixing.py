"""SHUFFLE across partitions: the rows of a window of partitions mixed into every block.

Data at rest is rarely in random order (a Hive layout groups rows by its partition column,
daily files by time), and a block of one partition biases SGD towards that partition. As
``tf.data``'s interleave plus shuffle buffer does, with memory bounded:

- the epoch's partitions, in their seeded order, are taken ``window`` at a time, read at
  once (a loader each) and interleaved: every block takes from each partition of the window
  its share of the rows it has left (its training rows are counted by the statistics pass),
  so that all of them end together and the epoch ends on no single partition;
- inside a partition, rows are drawn at random from a span of ``SPAN_BLOCKS`` blocks' rows
  at a time (a shuffle buffer): a partition of up to that many is wholly permuted, a larger
  one mixed span by span (data sorted by time inside a file). Spans count rows, not the
  blocks a partition was read in, so the stream does not depend on how it was cut. The
  k-th partition's first span holds k/w of a span: partitions drawn at the same pace then
  refill their spans in turn, where they would all need new blocks in the same turn and the
  mixer would wait for every loader at once;
- each block is gathered once, straight from the blocks the loaders made into its own
  array, the partitions' shares in a seeded random order of partitions. The rows a share
  draws from a span keep their order in the span: which rows a block holds is random, and
  the order inside a block is the estimator's to make (SGD, the perceptron and the MLP
  shuffle the rows of each ``partial_fit`` call, ``shuffle=True`` by default; naive Bayes and
  MiniBatchKMeans do not depend on it). So a span is never copied into one array: mixing
  costs the one copy that SHUFFLE's row permutation always cost.

Memory grows by the spans (``SPAN_BLOCKS`` blocks a partition of the window, 8 MB each by
default), held as the loaders made them. The window's loaders read in smaller batches
(:func:`window_batch_bytes`), so that a window holds about the batches that two partitions
read ahead hold without one. A window ends with its partitions, so a checkpoint taken between
windows resumes the same stream, bit for bit. The blocks depend only on the seed and the
data, never on the scheduler nor on how the partitions were cut into blocks; the cache
stores the blocks before mixing, so cached epochs mix the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..blocks import BLOCK_BYTES, block_step, stack_rows, take_rows
from ..io.partitions import BATCH_BYTES

WINDOW = 4  # partitions mixed at once by default
SPAN_BLOCKS = 2  # each partition's rows are drawn at random from this many blocks at a time
# pyarrow's reader holds about this per column of a file it reads: a dictionary page and a
# data page, 1 MB each by pyarrow's defaults, for columns of distinct values (floats)
READER_COLUMN_BYTES = 2 << 20


def window_size(wanted: int | None, shuffle: bool, partitions: int) -> int | None:
    """Partitions mixed at once: ``wanted`` (default ``WINDOW``), at most the number of
    partitions; None without SHUFFLE or with ``WINDOW 1`` (blocks of one partition each, rows
    permuted inside each block: the stream before mixing)."""
    if not shuffle or wanted == 1:
        return None
    return max(1, min(wanted or WINDOW, partitions))


def partition_bytes(columns: int, rows: int, window: int) -> int:
    """About the memory a partition of ``rows`` rows x ``columns`` columns holds while a window
    of ``window`` reads it: its reader's buffers, its span, the block read ahead and the one
    made, and its batch (read, and prepared), none more than the partition's own rows. On
    10M rows x 21 columns in 20 files this is 90 MB a partition, and a fit's peak grew by
    100-108 MB a partition from window 4 to windows 8 and 20 (benchmarks/README.md)."""
    data = rows * columns * 8  # float64 values
    return (columns * min(READER_COLUMN_BYTES, 2 * rows * 8)
            + min(data, (SPAN_BLOCKS + 2) * BLOCK_BYTES) + 2 * min(data, window_batch_bytes(window)))


def window_batch_bytes(window: int) -> int:
    """Bytes a window's loaders read at a time each: ``BATCH_BYTES`` shared out so that the
    window holds about the batches of the two partitions a stream without a window reads
    ahead, but never below half of it: each batch costs pyarrow, pandas and the preprocessing
    a fixed overhead, and on 10M rows x 20 the loaders took 1.1x as long with 8 MB batches
    and 1.7x with 4 MB ones as with 16 MB."""
    return max(BATCH_BYTES * 2 // window, BATCH_BYTES // 2)


def window_recipe(recipe: Any, window: int) -> Any:
    """The reading recipe of a window's partitions: ``recipe`` reading smaller batches."""
    return replace(recipe, batch_bytes=window_batch_bytes(window))


def mixed(streams: Sequence[Any], seed: Sequence[int], rows: list[int],
          sizes: Sequence[int] | None, block_rows: int | None) -> Iterator[tuple]:
    """The window's blocks mixed (see the module); ``rows[i]`` counts the rows taken from
    ``streams[i]``, whose training rows number about ``sizes[i]`` (None: as many in each).
    A mixed block holds ``block_rows`` rows (BLOCKSIZE's), or by default ``BLOCK_BYTES`` of
    rows like those of the partitions' first blocks (the most rows over the window)."""
    sources = [_Span(s, [*seed, k, 1]) for k, s in enumerate(streams)]  # never a block's seed
    sizes = list(sizes) if sizes is not None else [1] * len(streams)
    unit = block_rows or max((block_step(s.head) for s in sources if s.head is not None),
                             default=0)
    for k, source in enumerate(sources):  # first spans staggered: see _Span
        source.rows = SPAN_BLOCKS * unit
        source.first = source.rows * (k + 1) // len(sources)
    for turn in range(1 << 62):
        live = [k for k, s in enumerate(sources) if not s.finished]
        if not live:
            return
        left = [max(sizes[k] - rows[k], 1) for k in live] if len(live) > 1 else [1]
        block, shares = _Gather(unit), _shares(unit, left)
        for i in np.random.default_rng([*seed, turn]).permutation(len(live)):
            k = live[i]
            for piece in sources[k].take(shares[i]):
                rows[k] += len(piece[2])
                block.add(*piece)
                del piece  # a span drawn to its end is let go before the next one is read
        if block.rows:
            yield block.result()


def _shares(unit: int, left: list[int]) -> list[int]:
    """Rows of a block of ``unit`` rows due to each live partition, in proportion to the rows
    each has left (largest remainders first, so the shares add up to ``unit``)."""
    exact = [unit * n / sum(left) for n in left]
    shares = [int(e) for e in exact]
    for j in sorted(range(len(left)), key=lambda j: shares[j] - exact[j])[:unit - sum(shares)]:
        shares[j] += 1
    return shares


class _Gather:
    """A mixed block, gathered piece by piece as its rows are drawn: dense rows straight into
    one array of ``capacity`` rows, others (sparse, frames, mixed dtypes) copied out and
    stacked at the end."""

    def __init__(self, capacity: int):
        self.capacity, self.rows = capacity, 0
        self.X: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.pieces: list[tuple] | None = None  # once a piece is not dense like the first

    def add(self, X: Any, y: Any, index: np.ndarray) -> None:
        end = self.rows + len(index)
        if self.pieces is None and self._fits(X, y, end):
            if self.X is None:
                self.X = np.empty((self.capacity, *X.shape[1:]), dtype=X.dtype)
                self.y = None if y is None else np.empty(self.capacity, dtype=y.dtype)
            np.take(X, index, axis=0, out=self.X[self.rows:end], mode="clip")  # no buffer
            if y is not None:
                self.y[self.rows:end] = y[index]
        else:
            if self.pieces is None:
                self.pieces = [] if self.X is None else [self.result()]
                self.X = self.y = None
            self.pieces.append((take_rows(X, index), take_rows(y, index)))
        self.rows = end

    def result(self) -> tuple:
        if self.pieces is not None:
            return (stack_rows([X for X, _ in self.pieces]),
                    stack_rows([y for _, y in self.pieces]))
        return self.X[:self.rows], None if self.y is None else self.y[:self.rows]

    def _fits(self, X: Any, y: Any, end: int) -> bool:
        if not isinstance(X, np.ndarray) or not (y is None or isinstance(y, np.ndarray)):
            return False
        if self.X is None:
            return end <= self.capacity
        return (end <= self.capacity and X.dtype == self.X.dtype
                and X.shape[1:] == self.X.shape[1:] and (y is None) == (self.y is None)
                and (y is None or y.dtype == self.y.dtype))


class _Span:
    """One partition's rows, ``rows`` at a time (a span), taken in a random order. Spans are
    counted in rows, not in the blocks the partition was read in, so the mixed blocks are
    the same however the partition was cut into blocks (read in smaller batches in a window,
    or read back from the cache)."""

    def __init__(self, blocks: Any, seed: Sequence[int]):
        self.blocks, self.rng = iter(blocks), np.random.default_rng(seed)
        self.rows = 0  # rows in a span, set before the first one is drawn
        self.first = 0  # rows in the first span, if set: fewer, so that the partitions of a
        # window, drawn from at the same pace, run out of their spans one after the other and
        # their loaders refill them in turn, not all at once while the mixer waits
        self.rest: list[tuple] = []  # blocks read and not yet in a span (a cut one's tail first)
        self.span: list[tuple] = []  # the (X, y) blocks of the span rows are drawn from
        self.starts = np.zeros(1, dtype=np.intp)  # where each of them starts in it, and its end
        self.order = np.empty(0, dtype=np.intp)  # its rows to come
        first = self._next()
        if first is not None:
            self.rest.append(first)

    @property
    def head(self) -> Any:
        """The X of its next block, read ahead (None at the partition's end)."""
        return self.rest[-1][0] if self.rest else None

    @property
    def finished(self) -> bool:
        return not self.order.size and not self._fill()

    def take(self, n: int) -> Iterator[tuple]:
        """Up to ``n`` rows drawn at random, as ``(X, y, rows)`` pieces of the blocks of its
        spans: the rows drawn from a span in their order in it, a piece per block they lie in."""
        while n > 0 and (self.order.size or self._fill()):
            drawn, self.order = np.sort(self.order[:n]), self.order[n:]
            n -= drawn.size
            within = np.split(drawn, np.searchsorted(drawn, self.starts[1:-1]))
            for (X, y), start, rows in zip(self.span, self.starts, within):
                if rows.size:
                    yield X, y, rows - start

    def _next(self) -> tuple | None:
        """The next block with rows, the tail of a cut one first; None at the partition's end."""
        if self.rest:
            return self.rest.pop()
        for block in self.blocks:
            if block[0].shape[0]:
                return block
        return None

    def _fill(self) -> bool:
        """The next span of ``rows`` rows (fewer at the end), as the blocks that hold them;
        False at the partition's end."""
        if self.order.size:
            return True
        self.span, count = [], 0  # the last span's blocks let go before the next are read
        size, self.first = self.first or self.rows, 0
        while count < size and (block := self._next()) is not None:
            X, y = block
            if count + X.shape[0] > size:  # cut: the tail starts the next span
                cut = size - count
                self.rest.append((take_rows(X, slice(cut, None)), take_rows(y, slice(cut, None))))
                X, y = take_rows(X, slice(0, cut)), take_rows(y, slice(0, cut))
            self.span.append((X, y))
            count += X.shape[0]
        if not self.span:
            return False
        self.starts = np.cumsum([0, *(X.shape[0] for X, _ in self.span)])
        self.order = self.rng.permutation(count)
        return True
