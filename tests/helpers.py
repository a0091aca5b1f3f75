"""Helpers several test modules share (imported as ``helpers``: pytest puts tests/ on the path)."""

from __future__ import annotations

import importlib.util
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType


def killed_when(script: str, ready) -> None:
    """Run ``script`` in a child; SIGKILL it as soon as ``ready()`` holds."""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert child.poll() is None, child.communicate()[1][-2000:]
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)


def slow_predict_script(data: Path, store: str, into: str) -> str:
    """A child's script: PREDICT USING m (from ``store``) on ``data``'s parquet files, read half
    a second a file, INTO ``into`` OVERWRITE: slow enough to be killed mid-write."""
    statement = f"PREDICT USING m ON t INTO '{into}' OVERWRITE"
    return f"""
import time, pathlib, dask.dataframe as dd, pandas as pd, oocml
files = sorted(pathlib.Path({str(data)!r}).glob("*.parquet"))
def slow(path):
    time.sleep(0.5)
    return pd.read_parquet(path)
frame = dd.from_map(slow, files, meta=pd.read_parquet(files[0]).iloc[:0])
oocml.Session({store!r}).sql({statement!r}, t=frame)
"""


def run_script(path: Path, *args: str, timeout: int = 900,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a Python script in a fresh interpreter, capturing its output."""
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def load_module(path: Path, name: str) -> ModuleType:
    """A script imported as a module, for its helpers."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def equivalent_python(explained: str) -> str:
    """The 'equivalent Python' section of an EXPLAIN text, dedented."""
    code = explained.split("  equivalent Python:\n", 1)[1]
    return "\n".join(line[4:] for line in code.splitlines())


def generated(tmp_path_factory, name: str, **shape):
    """A new folder of parquet files from oocml's own generator (``make_parquet_dataset``)."""
    from oocml.datasets import make_parquet_dataset

    folder = tmp_path_factory.mktemp(name)
    make_parquet_dataset(folder, **shape)
    return folder


def parquet_parts(folder: Path, make, rows: int, parts: int = 3) -> Path:
    """``parts`` parquet files in ``folder``, file i holding ``make(rows, seed=i)``."""
    for i in range(parts):
        make(rows, seed=i).to_parquet(folder / f"part-{i}.parquet")
    return folder


def at_once(target, args_list: list[tuple]) -> None:
    """``target(*args)`` for each of ``args_list``, each on its own thread, all started before
    any is waited for (what two sessions doing something at once look like)."""
    import threading

    threads = [threading.Thread(target=target, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
