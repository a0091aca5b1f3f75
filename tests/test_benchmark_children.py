"""What the benchmarks' children share (benchmarks/children.py): they see where a peak goes,
and oocml's children import what an install of oocml has."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from helpers import load_module

CHILDREN = Path(__file__).resolve().parents[1] / "benchmarks" / "children.py"


def test_the_memory_sampler_sees_what_pyarrow_and_malloc_hold():
    """64 MB of numpy (malloc) and 32 MB of pyarrow, held at once, are seen as in use by each,
    and the resident peak grows by at least their sum."""
    children = load_module(CHILDREN, "children_under_test")
    with children.MemorySampler(every=0.005) as sampler:
        held = np.ones(8 << 20), pa.allocate_buffer(32 << 20)  # 64 MB, 32 MB
        np.frombuffer(held[1], dtype=np.uint8)[:] = 1  # touched, so resident
        time.sleep(0.1)
        del held
    before, peak, most = (sampler.at_peak()[k] for k in ("before", "peak", "most_in_use"))
    assert most["arrow_mb"] - before["arrow_mb"] >= 31
    if most["malloc_mb"] is not None:  # glibc 2.33+
        assert most["malloc_mb"] - before["malloc_mb"] >= 63
    assert peak["rss_mb"] - before["rss_mb"] >= 90


def test_an_oocml_child_imports_what_its_install_has_and_still_fits():
    """dask-ml's sparse (and numba) are installed here; an oocml child does not import them,
    and a fit runs as without them."""
    code = f"""
import sys
sys.path.insert(0, {str(CHILDREN.parent)!r})
from children import as_installed
as_installed()
import dask.dataframe as dd, pandas as pd
import oocml
frame = pd.DataFrame({{"x": [0.0, 1.0, 2.0, 3.0] * 50, "y": [0, 1, 0, 1] * 50}})
model = dd.from_pandas(frame, npartitions=2).ml.scale().fit_incremental("sgd", target="y")
assert model.report.rows_seen == 200
print(sorted(m for m in ("sparse", "numba") if sys.modules.get(m) is not None))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
