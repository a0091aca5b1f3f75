"""The commit protocol of PREDICT ... INTO (:mod:`oocml.io.outputs`) and the temporaries of
:func:`oocml.io.files.write_atomic`, under real process kills.

Each kill is deterministic: a child process replaces ``oocml.io.outputs._step`` (or wraps the
manifest's write) with a function that SIGKILLs the child at the chosen step. Afterwards oocml's
reader must see one whole write, and once the next complete write is done, plain pyarrow (which
knows nothing of oocml's manifest) must see each row exactly once; a foreign file survives all.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import oocml
from oocml.io.files import TEMPORARY
from oocml.io.outputs import MANIFEST, STAGING

ROWS_PER_FILE = 5_000  # the binary_dir fixture: 30,000 rows in 6 files
FOREIGN = "part-000000000000-00000.parquet"  # someone else's file, named like one of oocml's parts
FOREIGN_ROWS = [-3, -2, -1]
TESTS = str(Path(__file__).parent)


@dataclass(frozen=True)
class _Load:
    """Reads file ``i`` of ``files`` and tags its rows (a class: dask must tokenize it)."""

    files: tuple[str, ...]
    write: int
    on_read: Callable[[], None] | None = None

    def __call__(self, i: int) -> pd.DataFrame:
        if self.on_read is not None:
            self.on_read()
        frame = pd.read_parquet(self.files[i])
        return frame.assign(row=np.arange(len(frame), dtype="int64") + i * ROWS_PER_FILE,
                            write=np.int64(self.write))

    def __dask_tokenize__(self) -> tuple:
        return self.files, self.write, id(self.on_read)


def tagged(files: list[str], write: int, on_read: Callable[[], None] | None = None) -> dd.DataFrame:
    """The rows of ``files`` (one partition a file) with a unique ``row`` id and the number of
    the ``write`` that writes them; ``on_read`` runs as each partition is read."""
    meta = pd.read_parquet(files[0]).iloc[:0].assign(row=np.int64(0), write=np.int64(0))
    return dd.from_map(_Load(tuple(files), write, on_read), range(len(files)), meta=meta)


def _write_and_die(step: str, count: int, model: str, files: list[str], out: str,
                   env: dict[str, str]) -> None:
    """In a child: write ``files`` (write 2) into ``out`` OVERWRITE, SIGKILLing this process the
    ``count``-th time it reaches ``step`` of the protocol (``outputs._step``, the manifest's
    write, or a partition read)."""
    import collections
    import threading

    from oocml.io import outputs

    os.environ.update(env)  # the S3 server's endpoint, set after the fork server started
    seen, lock = collections.Counter(), threading.Lock()

    def reached(name: str) -> None:
        with lock:
            seen[name] += 1
            if name == step and seen[name] == count:
                os.kill(os.getpid(), signal.SIGKILL)

    real_write_bytes = outputs.write_bytes

    def write_bytes(path, *args, **kwargs):  # works on any version of the protocol
        written = real_write_bytes(path, *args, **kwargs)
        if str(path).endswith(outputs.MANIFEST):
            reached("manifest written")
        return written

    outputs._step, outputs.write_bytes = reached, write_bytes
    oocml.load_model(model).write_predictions(tagged(files, 2, on_read=lambda: reached("read")), out,
                                              keep=["row", "write"], overwrite=True)


@functools.cache
def _forks() -> Any:
    """Children forked from a server that imported oocml, dask and scikit-learn once: a kill
    test then costs the write, not a fresh interpreter's imports (seconds each)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["oocml.model", "oocml.io.outputs", "dask.dataframe",
                                    "sklearn.linear_model", "pyarrow.parquet", "s3fs", "test_commit"])
    return context


def killed_at(step: str, count: int, model: str, files: list[str], out: str) -> None:
    """Write ``files`` (write 2) into ``out`` OVERWRITE in a child process SIGKILLed at the
    ``count``-th time it reaches ``step``; fails if the child ends any other way."""
    child = _forks().Process(target=_write_and_die,
                             args=(step, count, model, files, out, dict(os.environ)))
    child.start()
    child.join(timeout=180)
    assert child.exitcode == -signal.SIGKILL, child.exitcode


@dataclass
class Place:
    """A folder to write into: ``out`` as oocml is given it, an fsspec filesystem and the
    folder's path in it (to arrange and list), and pyarrow's own filesystem (to read)."""

    out: str
    fs: Any
    root: str
    arrow: Any

    def names(self) -> set[str]:
        self.fs.invalidate_cache()
        return {p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False)}

    def visible(self) -> set[str]:
        """The files any dataset reader sees (it skips names starting with '.' or '_')."""
        return {n for n in self.names() if not n.startswith((".", "_"))}

    def manifest(self) -> list[str]:
        return json.loads(self.fs.cat_file(f"{self.root}/{MANIFEST}"))["files"]

    def plain_rows(self) -> pd.DataFrame:
        """The folder's rows as plain pyarrow reads them: every parquet file it lists."""
        table = pq.read_table(self.root, filesystem=self.arrow, columns=["row", "write"])
        return table.to_pandas().sort_values("row", ignore_index=True)

    def oocml_rows(self) -> pd.DataFrame:
        """The folder's rows as oocml reads them (its manifest's files)."""
        from oocml.io.sources import open_source
        from oocml.plan import Source

        frame = open_source(Source(path=self.out)).compute()
        return frame[["row", "write"]].sort_values("row", ignore_index=True)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])  # s3: the whole suite
def place(request, tmp_path) -> Place:
    import pyarrow.fs as pafs

    if request.param == "local":
        from fsspec.implementations.local import LocalFileSystem

        root = str(tmp_path / "out")
        return Place(root, LocalFileSystem(), root, pafs.LocalFileSystem())
    endpoint = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("bucket")
    arrow = pafs.S3FileSystem(endpoint_override=endpoint, access_key="testing",
                              secret_key="testing", region="us-east-1")
    return Place(f"{bucket}/out", request.getfixturevalue("s3"), f"{bucket[5:]}/out", arrow)


@pytest.fixture(scope="module")
def model_file(binary_dir, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "m.oocml"
    model = dd.read_parquet(binary_dir).ml.scale().fit_incremental("sgd", target="y")
    model.save(path)
    return str(path)


def _foreign() -> bytes:
    table = pa.table({"row": pa.array(FOREIGN_ROWS, pa.int64()), "write": pa.array([0] * 3, pa.int64())})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _write(model_file: str, files: list[str], write: int, out: str) -> None:
    oocml.load_model(model_file).write_predictions(tagged(files, write), out, keep=["row", "write"],
                                                   overwrite=True)


def _expect(rows: pd.DataFrame, files: int, write: int, foreign: bool = False) -> None:
    """``rows`` are those of ``files`` files of ``write``, each exactly once (plus the foreign ones)."""
    expected = (FOREIGN_ROWS if foreign else []) + list(range(files * ROWS_PER_FILE))
    assert rows.row.tolist() == expected, (len(rows), rows.row.duplicated().sum())
    assert set(rows.write[rows.row >= 0]) == {write}


def _killed_then_overwritten(place: Place, model_file: str, binary_dir: Path,
                             kills: list[tuple[str, int]], committed: bool) -> None:
    """Write 1 (6 files), a foreign file, write 2 (5 files) killed at each of ``kills`` in turn
    (step, count), write 3 (4 files) complete, checking the folder after each as oocml and as
    plain pyarrow read it."""
    files = [str(p) for p in sorted(Path(binary_dir).glob("*.parquet"))]
    _write(model_file, files, 1, place.out)
    place.fs.pipe_file(f"{place.root}/{FOREIGN}", _foreign())
    for step, count in kills:
        killed_at(step, count, model_file, files[:5], place.out)
    _expect(place.oocml_rows(), 5, 2) if committed else _expect(place.oocml_rows(), 6, 1)
    _write(model_file, files[:4], 3, place.out)
    _expect(place.plain_rows(), 4, 3, foreign=True)
    assert place.visible() == {*place.manifest(), FOREIGN}  # no orphan of write 1 or 2 is left
    assert STAGING not in place.names()
    _expect(place.oocml_rows(), 4, 3)
    assert place.fs.cat_file(f"{place.root}/{FOREIGN}") == _foreign()


def test_a_kill_right_after_the_manifest_commit_leaves_no_orphan(place, model_file, binary_dir):
    """The reported case: killed after the manifest is written, before the parts it supersedes
    are deleted; they must not outlive the next write (pyarrow, Spark and DuckDB read them)."""
    _killed_then_overwritten(place, model_file, binary_dir, [("manifest written", 1)], committed=True)


# (step, how many times it is reached before the kill, whether the manifest was committed)
KILL_POINTS = {
    "staging": ("read", 3, False),  # some parts staged, others being computed
    "staged": ("staged", 1, False),  # every part staged, no intent record yet
    "recorded": ("recorded", 1, False),  # the intent record written, nothing moved
    "moving": ("moved", 2, False),  # two of five parts moved into the folder
    "moved": ("moved", 5, False),  # every part moved, the manifest not yet written
    "committed": ("committed", 1, True),  # the manifest written, nothing deleted
    "deleting": ("deleted", 3, True),  # three of six superseded parts deleted
    "unstaging": ("unstaged", 1, True),  # the staging folder removed, the intent record not yet
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_at_each_step_leaves_one_whole_write(place, model_file, binary_dir, point):
    step, count, committed = KILL_POINTS[point]
    _killed_then_overwritten(place, model_file, binary_dir, [(step, count)], committed)


def test_a_kill_during_the_recovery_is_recovered_by_the_write_after(place, model_file, binary_dir):
    """Killed after the commit, then the next write killed while it deletes what that one left
    (three of six superseded parts): the write after that still leaves each row once."""
    _killed_then_overwritten(place, model_file, binary_dir, [("committed", 1), ("recovered", 3)],
                             committed=True)


# -- temporaries of write_atomic -------------------------------------------------------------

LOOK_ALIKES = [".m.oocml.tmp", ".m.oocml.ABCDEFGH.tmp", ".m.oocml.abcdefghi.tmp", "m.oocml.abcdefgh.tmp",
               ".m.oocml.abcdefgh.tmp.bak", ".m.oocml.abcdefgh.temp"]
OTHER_TARGET = ".n.oocml.abcdefgh.tmp"  # a temporary of another file: a save of m.oocml keeps it
HOLDER = """
import fcntl, os, sys
fd = os.open({path!r}, os.O_CREAT | os.O_RDWR, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


def _temporaries(folder: Path, target: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMPORARY.match(p.name)
                  and TEMPORARY.match(p.name).group("target") == target)


def test_a_save_killed_mid_write_leaves_a_temporary_the_next_save_removes(model_file, tmp_path):
    """SIGKILL between writing the temporary and renaming it: the next save of that model removes
    the temporary; look-alike names, another target's temporary and a live one are kept."""
    store = tmp_path / "store"
    path = store / "m.oocml"
    model = oocml.load_model(model_file)
    model.save(path)
    script = f"""
import os, signal, oocml
model = oocml.load_model({model_file!r})
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # the data is written, not renamed
model.save({str(path)!r}, overwrite=True)
"""
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    (stale,) = _temporaries(store, "m.oocml")
    with zipfile.ZipFile(store / stale) as written:  # a whole model file (skops: a zip), hidden
        assert written.testzip() is None
    for name in [*LOOK_ALIKES, OTHER_TARGET]:
        (store / name).write_bytes(b"someone else's")
    live = store / ".m.oocml.livewrit.tmp"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(path=str(live))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        model.save(path, overwrite=True)
        assert _temporaries(store, "m.oocml") == [live.name]  # the stale one is gone
        assert all((store / name).read_bytes() == b"someone else's" for name in [*LOOK_ALIKES, OTHER_TARGET])
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    model.save(path, overwrite=True)  # its writer gone, the temporary is stale
    assert _temporaries(store, "m.oocml") == []
    assert oocml.load_model(path).estimator.get_params() == model.estimator.get_params()
    assert sorted(p.name for p in store.iterdir()) == sorted(["m.oocml", *LOOK_ALIKES, OTHER_TARGET])


def test_the_folder_wide_sweep(tmp_path, monkeypatch):
    """remove_stale_temporaries: only oocml's temporaries whose writer is gone, of the targets
    asked for, in the folder itself; nothing for a URL or a missing folder."""
    import fcntl

    from oocml.io import files
    from oocml.io.files import remove_stale_temporaries

    stale = [".a.oocml.abcdefgh.tmp", "._oocml_written.json.k2_9x0qz.tmp"]
    for name in [*stale, *LOOK_ALIKES, "a.oocml"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".d.oocml.abcdefgh.tmp").mkdir()  # a folder named like a temporary
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".c.oocml.abcdefgh.tmp").write_bytes(b"x")  # not below the folder
    outside = tmp_path / "sub" / "target"
    outside.write_bytes(b"not ours")
    (tmp_path / ".s.oocml.abcdefgh.tmp").symlink_to(outside)  # a link: never followed nor taken
    live = tmp_path / ".b.oocml.live1234.tmp"
    with open(live, "wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another open file, so even this process's sweep sees it
        assert remove_stale_temporaries(tmp_path, "*.oocml") == [str(tmp_path / stale[0])]
        assert remove_stale_temporaries(str(tmp_path)) == [str(tmp_path / stale[1])]
        assert live.exists()
    assert remove_stale_temporaries(tmp_path) == [str(live)]  # closed: its writer is gone
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {*LOOK_ALIKES, "a.oocml", ".d.oocml.abcdefgh.tmp", "sub", ".s.oocml.abcdefgh.tmp"}
    assert outside.read_bytes() == b"not ours" and (tmp_path / "sub" / ".c.oocml.abcdefgh.tmp").exists()
    assert remove_stale_temporaries(tmp_path / "missing") == []
    assert remove_stale_temporaries("s3://bucket/models") == []
    # Where the filesystem has no locks, only a temporary untouched for an hour is stale.
    monkeypatch.setattr(files, "fcntl", None)
    young, old = tmp_path / ".y.oocml.abcdefgh.tmp", tmp_path / ".o.oocml.abcdefgh.tmp"
    young.write_bytes(b"x")
    old.write_bytes(b"x")
    hours_ago = time.time() - 2 * files.UNLOCKED_STALE_AFTER
    os.utime(old, (hours_ago, hours_ago))
    assert remove_stale_temporaries(tmp_path) == [str(old)]
    assert young.exists()


def test_temporaries_are_named_as_the_sweep_expects_and_a_raced_one_is_replaced(tmp_path, monkeypatch):
    """The pattern is mkstemp's naming (checked here, as Python could change it); a temporary
    swept between its creation and its lock is replaced by a new one, and the write succeeds."""
    import tempfile

    from oocml.io.files import write_atomic

    for _ in range(20):
        fd, name = tempfile.mkstemp(prefix=".m.oocml.", suffix=".tmp", dir=tmp_path)
        os.close(fd)
        assert TEMPORARY.match(Path(name).name).group("target") == "m.oocml"
        os.unlink(name)
    real, made = tempfile.mkstemp, []

    def swept_once(*args, **kwargs):
        fd, name = real(*args, **kwargs)
        made.append(name)
        if len(made) == 1:
            os.unlink(name)  # as a sweeper that took the lock first would
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", swept_once)
    write_atomic(tmp_path / "m.oocml", b"model")
    assert len(made) == 2 and (tmp_path / "m.oocml").read_bytes() == b"model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.oocml"]


def test_opening_a_store_removes_the_temporaries_of_killed_saves(model_file, tmp_path):
    """A session opening its store sweeps what killed saves left there: model temporaries whose
    writer is gone, and nothing else (other names, other targets, folders below)."""
    store = tmp_path / "store"
    store.mkdir()
    for stale in (".m.oocml.abcd1234.tmp", OTHER_TARGET):  # no writer holds them
        (store / stale).write_bytes(b"half a model")
    for name in [*LOOK_ALIKES, ".notes.txt.abcd1234.tmp"]:
        (store / name).write_bytes(b"someone else's")
    (store / "below").mkdir()
    (store / "below" / ".m.oocml.abcd1234.tmp").write_bytes(b"not in the store itself")
    oocml.Session(store)
    assert sorted(p.name for p in store.iterdir()) == sorted([*LOOK_ALIKES, ".notes.txt.abcd1234.tmp",
                                                              "below"])
    assert (store / "below" / ".m.oocml.abcd1234.tmp").exists()
