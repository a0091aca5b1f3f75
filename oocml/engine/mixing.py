"""SHUFFLE across partitions: the rows of a window of partitions mixed into every block.

Data at rest is rarely in random order (a Hive layout groups rows by its partition column,
daily files by time), and a block of one partition biases SGD towards that partition. As
``tf.data``'s interleave plus shuffle buffer does, with memory bounded:

- the epoch's partitions, in their seeded order, are taken ``window`` at a time, read at
  once (a loader each) and interleaved by rounds of about ``window`` blocks of rows: each
  partition gives a round its share of the rows it has left (its training rows are counted
  by the statistics pass), so that all of them end together and the epoch ends on no single
  partition;
- inside a partition, rows leave through a pool of ``POOL_BLOCKS`` blocks (``tf.data``'s
  shuffle buffer): a partition that fits in it is wholly permuted, a larger one mixed over
  the pool's span (data sorted by time inside a file);
- each round is stacked, its rows permuted (seeded by the seed, the epoch, the window and
  the round), and cut into blocks of the rows a block had: every block holds rows of the
  window's partitions, in proportion to their rows.

Memory grows by about ``2 * window`` blocks (the round and its permuted copy, 8 MB each by
default) and the window's loaders' queues. A window ends with its partitions, so a
checkpoint taken between windows resumes the same stream, bit for bit. The blocks depend
only on the seed and the data, never on the scheduler; the cache stores the blocks before
mixing, so cached epochs mix the same way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..blocks import stack_rows, take_rows

WINDOW = 4  # partitions mixed at once by default: 2 * 4 blocks of 8 MB in the round
POOL_BLOCKS = 2  # each partition's rows leave through a pool of this many blocks' rows


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
    sources = [_Source(_pooled(s, [*seed, k, 1])) for k, s in enumerate(streams)]  # not a turn
    sizes = list(sizes) if sizes is not None else [1] * len(streams)
    unit = max((s.first_rows() for s in sources), default=0)  # the blocks' rows, as they came
    for turn in range(1 << 62):
        live = [k for k, s in enumerate(sources) if not s.finished]
        if not live:
            return
        left = [max(sizes[k] - rows[k], 1) for k in live] if len(live) > 1 else [1]
        pieces = []
        for k, share in zip(live, left):
            taken = sources[k].take(max(1, round(unit * len(streams) * share / sum(left))))
            rows[k] += sum(X.shape[0] for X, _ in taken)
            pieces += taken
        if pieces:
            yield from _shuffled_round(pieces, [*seed, turn], unit)


def _pooled(blocks: Any, seed: Sequence[int]) -> Iterator[tuple]:
    """A partition's rows in a locally random order, through a pool of ``POOL_BLOCKS`` blocks'
    rows (``tf.data``'s shuffle buffer): each block coming in takes the places of as many rows
    drawn at random, which leave as a block, and the pool leaves permuted at the end. A
    partition no larger than the pool comes out wholly permuted, a larger one mixed over the
    pool's span. Blocks that are not dense arrays pass as they come."""
    rng = np.random.default_rng(seed)
    blocks = (b for b in blocks if b[0].shape[0])
    filling: list[tuple] = []
    for X, y in blocks:
        if not _dense(X, y):
            yield from filling
            yield X, y
            yield from blocks
            return
        filling.append((X, y))
        if len(filling) == POOL_BLOCKS:
            break
    if not filling:
        return
    unit = filling[0][0].shape[0]
    pool_X = np.concatenate([X for X, _ in filling])
    pool_y = None if filling[0][1] is None else np.concatenate([y for _, y in filling])
    for X, y in blocks:
        for start in range(0, X.shape[0], pool_X.shape[0]):  # a block larger than the pool
            rows = slice(start, start + pool_X.shape[0])
            places = rng.choice(pool_X.shape[0], size=X[rows].shape[0], replace=False)
            out = (pool_X[places], None if pool_y is None else pool_y[places])
            pool_X[places] = X[rows]
            if pool_y is not None:
                pool_y[places] = y[rows]
            yield out
    order = rng.permutation(pool_X.shape[0])
    pool_X, pool_y = pool_X[order], None if pool_y is None else pool_y[order]
    for start in range(0, pool_X.shape[0], unit):
        yield (pool_X[start:start + unit], None if pool_y is None else pool_y[start:start + unit])


def _dense(X: Any, y: Any) -> bool:
    return isinstance(X, np.ndarray) and (y is None or isinstance(y, np.ndarray))


class _Source:
    """One partition's blocks, taken a number of rows at a time (the rest of a block waits)."""

    def __init__(self, blocks: Any):
        self.blocks, self.pending, self.ended = iter(blocks), deque(), False

    @property
    def finished(self) -> bool:
        return self.ended and not self.pending

    def first_rows(self) -> int:
        """The rows of its first block (0 when it has none)."""
        self._pull()
        return self.pending[0][0].shape[0] if self.pending else 0

    def take(self, n: int) -> list[tuple]:
        """Up to ``n`` rows, as pieces of its blocks, in order."""
        out = []
        while n > 0 and (self.pending or self._pull()):
            X, y = self.pending[0]
            if X.shape[0] <= n:
                out.append(self.pending.popleft())
                n -= X.shape[0]
            else:
                out.append((take_rows(X, slice(0, n)), take_rows(y, slice(0, n))))
                self.pending[0] = (take_rows(X, slice(n, None)), take_rows(y, slice(n, None)))
                n = 0
        return out

    def _pull(self) -> bool:
        """Its next block with rows into ``pending``; False at its end."""
        while not self.ended:
            block = next(self.blocks, None)
            if block is None:
                self.ended = True
            elif block[0].shape[0]:
                self.pending.append(block)
                return True
        return False


def _shuffled_round(pieces: list[tuple], seed: list[int], unit: int) -> Iterator[tuple]:
    """One round's rows stacked, permuted, and cut into blocks of ``unit`` rows."""
    X = stack_rows([X for X, _ in pieces])
    y = stack_rows([y for _, y in pieces])
    order = np.random.default_rng(seed).permutation(X.shape[0])
    X, y = take_rows(X, order), take_rows(y, order)
    if isinstance(X, np.ndarray):
        X = np.ascontiguousarray(X)
    for start in range(0, X.shape[0], max(unit, 1)):
        rows = slice(start, start + unit)
        yield take_rows(X, rows), take_rows(y, rows)
