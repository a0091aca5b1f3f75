"""What the benchmarks that run each contender in a fresh child process share: the child's
own peak memory, a warm page cache, the child's run, and the versions measured."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any


def peak_mb() -> float:
    """This process's own resident-memory high-water mark (ru_maxrss would include the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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
