"""Where dask work runs: the local schedulers or a ``dask.distributed`` client.

One place decides, so every pass (statistics, training, prediction) runs on
the cluster when a client is active and on the configured local scheduler
otherwise.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from functools import reduce
from typing import Any

import dask
import dask.threaded
from threadpoolctl import threadpool_limits

from ._compat import graph_dependents, scheduler_client, set_numpy_hugepage
from .errors import DataError
from .progress import DaskProgress, PassLine, partition_keys


def current_client() -> Any | None:
    """The ``distributed.Client`` dask would use now, or None on a local scheduler."""
    return scheduler_client()


@contextlib.contextmanager
def data_pass() -> Iterator[None]:
    """Process settings for a pass over the data, restored after it (they are process-wide).

    - BLAS holds to one thread: every core already runs a task, and idle BLAS threads
      spin for work on the cores those tasks need.
    - numpy gives no huge-page advice for the arrays it allocates: a pass allocates and
      frees thousands of batch-sized arrays, and where the kernel compacts memory to make
      huge pages on advice (``transparent_hugepage/defrag=madvise``), each one can stall.
      ``NUMPY_MADVISE_HUGEPAGE`` set in the environment is left to rule.
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


def compute(*objs: Any, progress: bool | str = False) -> tuple:
    """``dask.compute`` under :func:`data_pass`, drawing oocml's progress line on stderr when
    asked: ``progress`` names the pass (``True``: "compute"); inside :func:`progress_bar`,
    its name serves (locally its callback draws, on a cluster this function does)."""
    with data_pass():
        return _compute(objs, progress)


_PASS: ContextVar[str | None] = ContextVar("oocml_pass", default=None)  # progress_bar's name


def _compute(objs: tuple, progress: bool | str) -> tuple:
    name = progress if isinstance(progress, str) else "compute" if progress else None
    client = current_client()
    if client is not None:
        name = name or _PASS.get()
        return _compute_on(client, objs, name) if name else dask.compute(*objs)
    # Without a client, dask imports distributed only to find none (0.4 s, even for a named
    # scheduler); its threaded scheduler, given as a function, is what it would choose for
    # oocml's graphs, unless one is configured.
    local = {} if dask.config.get("scheduler", None) is not None else {"scheduler": dask.threaded.get}
    if name is None:
        return dask.compute(*objs, **local)
    return dask.compute(*objs, callbacks=[DaskProgress(name).hooks()], **local)  # not progress_bar's


def _compute_on(client: Any, objs: tuple, name: str) -> tuple:
    """``dask.compute`` on a cluster, the line advanced as the futures of the per-partition
    tasks (see :func:`~oocml.progress.partition_keys`) of delayed objects complete (of
    other collections, their outputs'); each is let go once counted, so the cluster keeps
    a result only while later tasks need it."""
    from dask.base import unpack_collections
    from dask.delayed import Delayed
    from dask.utils import ensure_dict
    from distributed import as_completed

    collections, repack = unpack_collections(*objs)
    if not collections:
        return objs
    graph: dict = {}
    for collection in collections:  # a DataFrame's graph is not built twice to look inside
        if isinstance(collection, Delayed):
            graph.update(ensure_dict(collection.__dask_graph__()))
    watched = [Delayed(key, graph) for key in partition_keys(graph_dependents(graph))]
    futures = client.compute([*collections, *watched])
    outputs = futures[:len(collections)]
    done = as_completed(futures[len(collections):] or outputs)
    del futures  # as_completed holds each until it yields it
    line = PassLine(name, done.count())
    try:
        for _ in done:
            line.advance()
        return repack(client.gather(outputs))
    except BaseException:
        client.cancel(outputs)
        raise
    finally:
        line.close()


@contextlib.contextmanager
def progress_bar(enabled: bool, name: str = "compute") -> Iterator[None]:
    """A context in which dask computations draw oocml's progress line named ``name``: on the
    local schedulers every one (``to_parquet``'s too), through a dask callback; on a
    cluster, those started by :func:`compute`."""
    if not enabled:
        yield
        return
    token = _PASS.set(name)
    try:
        if current_client() is None:
            with DaskProgress(name):
                yield
        else:
            yield
    finally:
        _PASS.reset(token)


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
