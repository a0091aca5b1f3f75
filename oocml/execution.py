"""Where dask work runs: the local schedulers or a ``dask.distributed`` client.

One place decides, so every pass (statistics, training, prediction) runs on
the cluster when a client is active and on the configured local scheduler
otherwise.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import reduce
from typing import Any

import dask
from dask.base import get_scheduler
from threadpoolctl import threadpool_limits

from ._compat import set_numpy_hugepage
from .errors import DataError


def current_client() -> Any | None:
    """The ``distributed.Client`` dask would use now, or None on a local scheduler."""
    scheduler = get_scheduler()
    owner = getattr(scheduler, "__self__", None)
    if owner is not None and type(owner).__name__ == "Client":
        return owner
    return None


@contextlib.contextmanager
def data_pass() -> Iterator[None]:
    """Process settings for a pass over the data, restored after it (they are process-wide).

    - BLAS holds to one thread: every core already runs a task, and OpenBLAS's threads
      spin for work (measured here, they took a whole core from a statistics pass).
    - numpy gives no huge-page advice for the arrays it allocates: a pass allocates and
      frees thousands of batch-sized arrays, and where the kernel compacts memory to make
      huge pages on advice (``transparent_hugepage/defrag=madvise``, its default), every
      one stalls; a fit ran 20% faster here without it. ``NUMPY_MADVISE_HUGEPAGE`` set in
      the environment is left to rule.
    """
    hugepage = None  # the previous setting, where numpy has the switch
    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
        hugepage = set_numpy_hugepage(False)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        if hugepage is not None:
            set_numpy_hugepage(hugepage)


def compute(*objs: Any, progress: bool = False) -> tuple:
    """``dask.compute`` with a progress bar on stderr when asked for (local or distributed),
    under :func:`data_pass`."""
    with data_pass():
        return _compute(objs, progress)


def _compute(objs: tuple, progress: bool) -> tuple:
    client = current_client()
    if not progress:
        return dask.compute(*objs)
    if client is not None:
        from distributed import progress as distributed_progress

        futures = client.compute(list(objs))
        distributed_progress(futures)
        return tuple(client.gather(futures))
    from dask.diagnostics import ProgressBar

    with ProgressBar(out=sys.stderr, minimum=1.0):
        return dask.compute(*objs)


def progress_bar(enabled: bool) -> Any:
    """A context in which local dask computations draw dask's progress bar on stderr."""
    if not enabled or current_client() is not None:
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(out=sys.stderr, minimum=1.0)


class Submitter:
    """Starts dask computations in the background: client futures, or a small thread pool."""

    def __init__(self, workers: int):
        self.client = current_client()
        self._pool = ThreadPoolExecutor(max(workers, 1), thread_name_prefix="oocml-load")

    def submit(self, task: Any) -> Future:
        """Start a dask collection (on the client if any) or a plain callable (in a thread)."""
        if callable(task) and not dask.is_dask_collection(task):
            return self._pool.submit(task)
        if self.client is not None:
            return self.client.compute(task)
        return self._pool.submit(compute_here, task)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Submitter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def compute_here(task: Any) -> Any:
    """One partition's small graph. Our prefetch threads already run loads in parallel, so unless
    the user chose a scheduler, run it synchronously: nesting dask's thread pool (and pyarrow's)
    inside ours oversubscribes the cores."""
    return dask.compute(task, scheduler=dask.config.get("scheduler", None) or "sync")[0]


def tree_reduce(items: list, combine: Any, fan_in: int = 8) -> Any:
    """A fixed-shape tree of delayed combines: the same order, so the same bits, on any scheduler."""
    if not items:
        raise DataError("the data has no partitions")
    while len(items) > 1:
        items = [dask.delayed(_combine_all)(combine, items[i:i + fan_in])
                 for i in range(0, len(items), fan_in)]
    return items[0]


def _combine_all(combine: Any, values: list) -> Any:
    return reduce(combine, values)
