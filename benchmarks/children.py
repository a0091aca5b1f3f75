"""What the benchmarks that run each contender in a fresh child process share: the child's
own peak memory and where it goes, a warm page cache, the child's run, and the versions
measured."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
from importlib import metadata
from pathlib import Path
from typing import Any


def peak_mb() -> float:
    """This process's own resident-memory high-water mark (ru_maxrss would include the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# Packages the benchmark environment holds for the peers only, which oocml's own install does
# not bring and which importing oocml would still load: dask.array imports pydata/sparse (and
# with it numba) whenever it is installed, and dask-ml brings it here (through dask-glm). In
# this environment that is 58 MB and 0.4 s of oocml's imports that a user's install has not.
PEERS_ONLY = ("sparse",)


def as_installed() -> None:
    """Let this child import what an install of oocml has, not the peers' packages: each of
    ``PEERS_ONLY`` is made unimportable, as if not installed (dask falls back as it does
    then). Call it before importing dask, in oocml's children only."""
    for name in PEERS_ONLY:
        if name in sys.modules and sys.modules[name] is not None:
            raise RuntimeError(f"{name} was imported before as_installed()")
        sys.modules[name] = None  # import raises ImportError, as for a missing package


class MemorySampler:
    """Where a peak goes: this process's resident memory, pyarrow's allocated bytes and
    malloc's bytes in use (glibc's ``mallinfo2``), sampled on a thread every ``every`` seconds
    while the ``with`` block runs. What a peak holds beyond the two in-use figures is the
    interpreter and its libraries, and memory the allocators keep free for later."""

    def __init__(self, every: float = 0.02):
        self.every, self.samples, self._stop = every, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self.before = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(self.sample())

    @staticmethod
    def sample() -> dict:
        import pyarrow as pa

        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return {"rss_mb": pages * os.sysconf("SC_PAGE_SIZE") / 2**20,
                "arrow_mb": pa.total_allocated_bytes() / 2**20, "malloc_mb": _malloc_in_use_mb()}

    def at_peak(self) -> dict:
        """The samples of the highest resident memory and of the most bytes in use (pyarrow's
        and malloc's together), and the one before the block."""
        in_use = lambda s: s["arrow_mb"] + (s["malloc_mb"] or 0.0)  # noqa: E731
        return {"before": self.before,
                "peak": max(self.samples, key=lambda s: s["rss_mb"], default=self.before),
                "most_in_use": max(self.samples, key=in_use, default=self.before)}


def _malloc_in_use_mb() -> float | None:
    """glibc's bytes in use (its arenas and its own mmaps), or None off glibc 2.33+."""
    mallinfo2 = getattr(_libc(), "mallinfo2", None)
    if mallinfo2 is None:
        return None
    info = mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


@functools.cache
def _libc() -> Any:
    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = MallInfo2
    return libc


def warm_page_cache(folder: Path) -> None:
    """Read every parquet file of ``folder`` once, so each contender starts alike."""
    for path in sorted(folder.glob("*.parquet")):
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


def run_child(script: str, name: str, folder: Path, **flags: Any) -> dict:
    """Contender ``name`` of ``script`` in a fresh interpreter (``--child name --data folder
    --result file`` and ``--flag value`` for each of ``flags``): its figures, or the error it
    died of."""
    options = [item for flag, value in flags.items() for item in (f"--{flag}", str(value))]
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        done = subprocess.run([sys.executable, script, "--child", name, "--data", str(folder),
                               *options, "--result", str(result)], capture_output=True, text=True)
        if done.returncode == 0 and result.is_file():
            return json.loads(result.read_text())
    tail = (done.stderr or done.stdout).strip().splitlines()
    return {"error": tail[-1] if tail else f"exit code {done.returncode}", "stderr_tail": tail[-20:]}


def versions(packages: tuple[str, ...]) -> dict:
    """The installed version of each package (None if absent), and ``oocml_git``: the commit
    of the oocml tree measured, "+dirty" with uncommitted changes in it."""
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    import oocml

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(Path(oocml.__file__).parent), *args],
                              capture_output=True, text=True).stdout.strip()

    head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "-uno", "--", ".")
    found["oocml_git"] = (head + "+dirty" * bool(dirty)) if head else None
    return found
