"""Start-up: how long until ``import oocml`` returns and the REPL shows its prompt.

    python benchmarks/startup.py                        # this checkout, 7 runs of each
    python benchmarks/startup.py --source /tmp/old      # another checkout (e.g. a worktree of
                                                        # an older commit), for before/after
    python benchmarks/startup.py --json startup.json

Every figure is the median of ``--repeat`` fresh processes (the page cache warm: one
untimed run first). The anchor is ``import dask.dataframe``, which any oocml work needs;
each oocml figure is also given as a ratio to it, measured in the same run.

- ``import oocml``: a child process timing its own import (``time.perf_counter``);
- ``import oocml + dask``: what a script that trains pays before its first line of work;
- ``REPL prompt``: ``oocml-sql`` started in a real pseudo-terminal (pexpect) until its
  prompt is drawn, and its peak RSS then;
- ``SHOW ALGORITHMS``: ``oocml-sql -c "SHOW ALGORITHMS;"`` end to end, and its peak RSS.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ELSEWHERE = tempfile.gettempdir()  # children run here, so no checkout is found by its cwd
IMPORT = "import time; t = time.perf_counter(); import {what}; print(time.perf_counter() - t)"
PEAK = "import resource; print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)"


def environment(source: str | None) -> dict[str, str]:
    env = dict(os.environ, OOCML_HISTORY=os.devnull)
    if source:
        env["PYTHONPATH"] = os.pathsep.join(p for p in [source, env.get("PYTHONPATH")] if p)
    return env


def import_seconds(what: str, env: dict[str, str]) -> float:
    """One fresh interpreter's time to import ``what`` (its own clock: no process start-up)."""
    out = subprocess.run([sys.executable, "-c", IMPORT.format(what=what)], env=env, check=True,
                         capture_output=True, text=True, cwd=ELSEWHERE).stdout
    return float(out.strip().splitlines()[-1])


def oocml_sql() -> str:
    return shutil.which("oocml-sql", path=str(Path(sys.executable).parent)) or "oocml-sql"


def prompt_seconds(env: dict[str, str]) -> tuple[float, int]:
    """(seconds from spawning ``oocml-sql`` in a pty until its prompt shows, its peak RSS MB)."""
    import pexpect
    import psutil

    start = time.perf_counter()
    env = dict(env, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")  # no cursor-position query
    child = pexpect.spawn(oocml_sql(), env=env, encoding="utf-8", timeout=60,
                          dimensions=(40, 120), cwd=ELSEWHERE)
    child.expect("oocml>")
    seconds = time.perf_counter() - start
    rss = psutil.Process(child.pid).memory_info().rss >> 20
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    return seconds, rss


def statement_seconds(env: dict[str, str]) -> tuple[float, int]:
    """(seconds of ``oocml-sql -c "SHOW ALGORITHMS;"`` end to end, its peak RSS MB)."""
    code = (f"import subprocess, time; t = time.perf_counter(); subprocess.run([{oocml_sql()!r},"
            " '-c', 'SHOW ALGORITHMS;'], check=True, stdout=subprocess.DEVNULL); "
            f"print(time.perf_counter() - t); {PEAK}")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                         text=True, cwd=ELSEWHERE).stdout.split()
    return float(out[0]), int(out[1])


def median_of(repeat: int, measure) -> tuple:
    measure()  # untimed: warm the page cache
    runs = [measure() for _ in range(repeat)]
    if isinstance(runs[0], tuple):
        return tuple(statistics.median(r[i] for r in runs) for i in range(len(runs[0])))
    return (statistics.median(runs),)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", help="a checkout to measure instead of the installed oocml")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    env = environment(args.source)
    anchor = median_of(args.repeat, lambda: import_seconds("dask.dataframe", env))[0]
    rows = {
        "import dask.dataframe (anchor)": (anchor, None),
        "import oocml": (median_of(args.repeat, lambda: import_seconds("oocml", env))[0], None),
        "import oocml + dask": (median_of(args.repeat, lambda: import_seconds(
            "oocml, dask.dataframe", env))[0], None),
        "REPL prompt": median_of(args.repeat, lambda: prompt_seconds(env)),
        "SHOW ALGORITHMS": median_of(args.repeat, lambda: statement_seconds(env)),
    }
    print(f"source: {args.source or 'installed oocml'}; median of {args.repeat} runs")
    print(f"{'what':<32}{'seconds':>9}{'vs anchor':>11}{'peak MB':>9}")
    for name, (seconds, *peak) in rows.items():
        mb = f"{peak[0]:>9.0f}" if peak and peak[0] is not None else f"{'':>9}"
        print(f"{name:<32}{seconds:>9.2f}{seconds / anchor:>10.2f}x{mb}")
    if args.json:
        Path(args.json).write_text(json.dumps({k: list(v) for k, v in rows.items()}, indent=2))


if __name__ == "__main__":
    main()
