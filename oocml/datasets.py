"""Synthetic parquet data sets for examples, tests and benchmarks.

Files are generated independently (one seeded generator per file), in
parallel, and never all in memory at once, so any size can be written.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ParameterError

TASKS = ("classification", "regression")


def make_parquet_dataset(
    folder: str | os.PathLike,
    rows: int = 1_000_000,
    features: int = 20,
    files: int = 10,
    *,
    task: str = "classification",
    dtype: str = "float64",
    seed: int = 0,
    sample: int = 0,
    n_classes: int = 2,
    noise: float = 0.5,
    row_group_rows: int = 1 << 20,
    workers: int | None = None,
) -> list[str]:
    """Write ``rows`` x ``features`` (columns ``x0..``) plus target ``y`` as ``files`` parquet files.

    Features have column-specific offsets and scales (so scaling matters); ``y``
    is a noisy linear function of them: class labels 0..n_classes-1, or a float.
    ``seed`` fixes the task (weights, offsets, scales); ``sample`` draws other rows of
    the same task, e.g. a test set. Returns the file paths, in order.
    """
    if task not in TASKS:
        raise ParameterError(f"task must be one of {TASKS}, not {task!r}")
    if rows < files or files < 1 or features < 1:
        raise ParameterError("need files >= 1, features >= 1 and at least one row per file")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shared = np.random.default_rng([seed, 0xC0FFEE])
    weights = shared.normal(size=(features, max(n_classes, 1)))
    offsets = shared.uniform(-50, 50, size=features)
    scales = shared.uniform(0.5, 20, size=features)
    bounds = np.linspace(0, rows, files + 1).astype(np.int64)

    def write(i: int) -> str:
        n = int(bounds[i + 1] - bounds[i])
        rng = np.random.default_rng([seed, sample, i])
        z = rng.standard_normal((n, features))
        if task == "classification" and n_classes > 2:
            y = np.argmax(z @ weights + noise * rng.standard_normal((n, n_classes)), axis=1)
        elif task == "classification":
            y = (z @ weights[:, 0] + noise * rng.standard_normal(n) > 0).astype(np.int64)
        else:
            y = z @ weights[:, 0] + noise * rng.standard_normal(n)
        x = (z * scales + offsets).astype(dtype)
        table = pa.table({**{f"x{j}": x[:, j] for j in range(features)}, "y": y})
        path = folder / f"part-{i:05d}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp, row_group_size=row_group_rows)
        os.replace(tmp, path)
        return str(path)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        return list(pool.map(write, range(files)))
