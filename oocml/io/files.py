"""Writing local files so that a crash leaves either the old file or the new one, never half of
one, and no temporary behind for good.

:func:`write_atomic` writes ``.<name>.<8 random characters>.tmp`` beside the target (the name
``tempfile.mkstemp`` gives with oocml's prefix and suffix: 8 of ``[a-z0-9_]``), flushes it to
disk, then renames or hard-links it. A process killed meanwhile leaves that temporary behind.

Which temporaries are stale: the writer holds an exclusive ``flock`` on its temporary from
creation to rename, and the kernel releases it when the writer dies, however it dies. A sweeper
deletes a file only if its name is exactly a temporary's, it is a regular file (no link, no
folder), and it can take that lock without waiting; a live write is never touched, and a stale
temporary goes at the very next write, with no waiting period. ``flock`` (not ``lockf``) because
its locks belong to the open file, so a sweeper in the writing process itself sees them too.

No age rule where locks work: an age would either keep a crash's temporary through the next
write or, if short, delete a slow live write. Where locks do not work (no ``fcntl``, or a
filesystem that refuses ``flock``), a temporary is stale once unmodified for
:data:`UNLOCKED_STALE_AFTER` seconds. Caveat: a network filesystem that locks per host only
(some FUSE mounts, NFS with ``local_lock``) cannot tell a sweeper of one host that another host
is writing; such a write then fails (its temporary is gone) and the target is left untouched.

Object stores have no temporaries (one PUT writes an object whole), so all this is local.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; the age rule decides
    fcntl = None

log = logging.getLogger("oocml")

TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")
UNLOCKED_STALE_AFTER = 3600.0  # seconds; only where the filesystem has no locks
_ATTEMPTS = 5


def write_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> str:
    """Write ``data`` to a locked temporary file beside ``path``, flush it to disk, then rename
    (or, with ``overwrite=False``, hard-link: an existing file raises ``FileExistsError``, even
    one that another process wrote a moment ago). Stale temporaries of earlier writes of
    ``path`` are removed first (see the module's rules)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path.parent, lambda target: target == path.name)
    fd, tmp, locked = _locked_temporary(path)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
            if locked:  # renamed under the lock (closing releases it): no sweeper takes it first
                _publish(tmp, path, overwrite)
        if not locked:  # nothing to hold (and Windows renames no open file)
            _publish(tmp, path, overwrite)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)


def _publish(tmp: str, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
    else:
        os.link(tmp, path)
        os.unlink(tmp)


def remove_stale_temporaries(folder: str | os.PathLike, targets: str = "*") -> list[str]:
    """Delete the stale temporaries that killed writes left in ``folder`` (not below it) and
    return their paths. Only files named exactly as :func:`write_atomic` names its temporaries,
    for a target name matching the glob ``targets`` (``"*.oocml"``: model files only), whose
    writer is gone; never a live write's, never any other file. A URL, or a folder that is not
    there, has none: ``[]``. Never raises for a file it cannot inspect or delete (it is kept)."""
    text = str(os.fspath(folder))
    if "://" in text or not os.path.isdir(text):
        return []
    return _sweep(Path(text), lambda target: fnmatch.fnmatchcase(target, targets))


def _sweep(folder: Path, wanted: Callable[[str], bool]) -> list[str]:
    """Remove the stale temporaries in ``folder`` whose target name ``wanted`` accepts."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMPORARY.match(entry.name)
        if match and wanted(match.group("target")) and _remove_if_stale(entry.path):
            log.info("removed %s, the temporary of a write that was killed", entry.path)
            removed.append(entry.path)
    return removed


def _remove_if_stale(path: str) -> bool:
    """Delete the temporary at ``path`` if it is a regular file whose writer is gone."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # gone meanwhile, or not ours to open
        return False
    try:
        locked = _lock(fd, wait=False)
        if locked is False:
            return False  # a live write holds it
        if locked is None and time.time() - os.fstat(fd).st_mtime < UNLOCKED_STALE_AFTER:
            return False
        if not _is_at(fd, path):  # renamed into place meanwhile, or replaced by another file
            return False
        os.unlink(path)  # while holding the lock: see _locked_temporary
        return True
    except OSError as exc:
        log.debug("kept %s: %s", path, exc)
        return False
    finally:
        os.close(fd)


def _locked_temporary(path: Path) -> tuple[int, str, bool]:
    """A new temporary beside ``path``: (descriptor, path, whether it is locked). A sweeper may
    take the lock in the instant between creation and locking and delete the file; the lock
    taken after that (waiting for the sweeper's) finds the file gone, and a new one is made."""
    for _ in range(_ATTEMPTS):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            locked = _lock(fd, wait=True) is True
            if _is_at(fd, tmp):
                return fd, tmp, locked
        except BaseException:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
            raise
        os.close(fd)
    raise OSError(errno.EAGAIN, f"another process removed each temporary file made beside {path}")


def _lock(fd: int, wait: bool) -> bool | None:
    """Take an exclusive ``flock`` on ``fd``: True if taken, False if another open file holds
    it, None where the platform or the filesystem has no such locks."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None


def _is_at(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        at, held = os.lstat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (at.st_dev, at.st_ino) == (held.st_dev, held.st_ino)
