"""The model store: named models of a session, each kept in versions, optionally persisted.

Without a store, models live as long as the session. With one (a folder or any fsspec URL,
e.g. ``s3://bucket/models/``), every version of a model is a ``<name>@<version>.oocml`` file
there (skops format), so models survive across sessions and processes; files are loaded on
first use. A model ``<name>.oocml`` written by an earlier oocml is version 1 of its name.

Every TRAIN OR REPLACE, LOAD OR REPLACE and ROLLBACK writes a new version; the newest is the
current one, and ``name@3`` names an older one. A version file is created exclusively (a
local exclusive create, a conditional write on an object store), so of two sessions writing
a name at once, both versions are kept whole, under two numbers: no update is ever lost.
The newest ``keep_versions`` versions of a name are kept (10 by default).
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, Any

from .errors import ModelExistsError, ModelFileError, ParameterError, UnknownModelError, did_you_mean, listing
from .io.files import remove_stale_temporaries
from .io.storage import filesystem, join, remove, translated

if TYPE_CHECKING:
    import pandas as pd

    from .model import Model

SUFFIX = ".oocml"
KEEP_VERSIONS = 10  # versions of a name a store keeps, by default
VERSION_COLUMNS = ["version", "current", "saved", "fit", "algorithm", "source", "files",
                   "rows_seen", "epochs", "score", "score_kind"]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VERSION_FILE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)@([1-9][0-9]*)")
# A name becomes ``<name>@<version>.oocml`` and, while it is written, ``.<name>@<version>.oocml.
# <random>.tmp``: 128 characters keep both within the 255-byte file names of common filesystems.
MAX_NAME_LENGTH = 128


def check_name(name: str) -> str:
    """Model names are identifiers: they become file names in the store, so nothing that could
    leave it (``/``, ``..``, NUL, control characters) or outgrow a file name is allowed. Every
    door of the store (get, drop, put, contains) calls this before touching a file."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        raise ParameterError(f"invalid model name {shown}: use letters, digits and _ "
                             "(not starting with a digit)")
    if len(name) > MAX_NAME_LENGTH:
        raise ParameterError(f"model name {name[:20]}... has {len(name)} characters; the limit is "
                             f"{MAX_NAME_LENGTH} (it becomes a file name): choose a shorter one")
    return name


def parse_reference(reference: str) -> tuple[str, int | None]:
    """``"m"`` -> ("m", None): the current version; ``"m@3"`` -> ("m", 3)."""
    name, at, version = str(reference).partition("@")
    if not at:
        return check_name(name), None
    if not version.isdigit() or int(version) < 1:
        raise ParameterError(f"invalid model version {reference!r}: write name@N, N from 1")
    return check_name(name), int(version)


class Catalog:
    """Models by name, in versions; ``store`` (a folder or URL) makes them persistent."""

    def __init__(self, store: str | os.PathLike | None = None,
                 storage_options: dict[str, Any] | None = None, *,
                 keep_versions: int = KEEP_VERSIONS):
        if not isinstance(keep_versions, int) or keep_versions < 1:
            raise ParameterError(f"keep_versions must be a whole number from 1, not {keep_versions!r}")
        self.store = None if store is None else str(store).rstrip("/")
        self.options = dict(storage_options or {})
        self.keep_versions = keep_versions
        self._models: dict[tuple[str, int], Model] = {}  # loaded (or, without a store, kept)
        self._saved: dict[tuple[str, int], float] = {}  # without a store: when each was kept
        if self.store is not None:
            self._fs, self._root = filesystem(self.store, self.options)
            with translated(self.store, "use the model store"):
                self._fs.makedirs(self._root, exist_ok=True)
            remove_stale_temporaries(self.store, f"*{SUFFIX}")  # of saves that were killed

    def _all(self) -> dict[str, dict[int, str]]:
        """Every name's versions and their files, from one listing of the store (without a
        store, the session's versions, with no file)."""
        if self.store is None:
            found: dict[str, dict[int, str]] = {}
            for name, version in self._models:
                found.setdefault(name, {})[version] = ""
            return found
        with translated(self.store, "list the model store"):
            self._fs.invalidate_cache(self._root)
            files = [p.rsplit("/", 1)[-1] for p in self._fs.glob(join(self._root, f"*{SUFFIX}"))]
        found = {}
        for file in files:
            stem = file[:-len(SUFFIX)]
            if (match := _VERSION_FILE.fullmatch(stem)) is not None:
                found.setdefault(match[1], {})[int(match[2])] = file
            elif _NAME.fullmatch(stem):  # an earlier oocml's file: version 1
                found.setdefault(stem, {}).setdefault(1, file)
        return found

    def _located(self, name: str) -> dict[int, str]:
        """The versions of ``name`` and their files (without a store, files are empty)."""
        return self._all().get(check_name(name), {})

    def versions(self, name: str) -> list[int]:
        """The versions of ``name`` there are, oldest first (empty: no such model)."""
        return sorted(self._located(name))

    def names(self) -> list[str]:
        """Every model name, in the session and in the store, sorted."""
        return sorted(set(self._all()) | {n for n, _ in self._models})

    def __contains__(self, name: str) -> bool:
        return bool(self.versions(name))

    def get(self, reference: str) -> Model:
        """The model ``name`` (its current version) or ``name@N`` (version N)."""
        name, version = parse_reference(reference)
        located = self._located(name)
        versions = sorted(located)
        if not versions:
            known = self.names()
            raise UnknownModelError(
                f"no model named {name!r}{did_you_mean(name, known)}; "
                f"models: {listing(known) or '(none yet: TRAIN ... AS name)'}")
        version = versions[-1] if version is None else version
        if version not in versions:
            raise UnknownModelError(f"model {name!r} has no version {version}; its versions: "
                                    f"{', '.join(map(str, versions))} (SHOW VERSIONS {name})")
        return self._load(name, version, located[version])

    def current(self, name: str) -> tuple[int, Model]:
        """(version, model) of the current version of ``name``, from one listing: an UPDATE
        continues that model and must save exactly the version after it."""
        located = self._located(name)
        if not located:
            self.get(name)  # raises the unknown-model error
        version = max(located)
        return version, self._load(name, version, located[version])

    def _load(self, name: str, version: int, file: str) -> Model:
        """Version ``version`` of ``name``, read from its ``file`` on first use."""
        if (name, version) not in self._models:
            from .model import load_model  # scikit-learn loads with the first model, not before

            self._models[(name, version)] = load_model(join(self.store, file), self.options)
        return self._models[(name, version)]

    def check_free(self, name: str, verb: str = "TRAIN") -> None:
        """Refuse a name that is taken (before any work is done to fill it)."""
        if name in self:
            where = f" in the store {self.store!r}" if self.store is not None else ""
            raise ModelExistsError(f"a model named {name!r} exists already{where}; "
                                   f"{verb} OR REPLACE ... replaces it, or choose another name")

    def put(self, name: str, model: Model, replace: bool = False, verb: str = "TRAIN",
            after: int | None = None) -> int:
        """Keep ``model`` as the next version of ``name`` (saving it to the store first); its
        version number. A taken name raises :class:`ModelExistsError` unless ``replace``; of two
        sessions saving one new name at once, one wins and the other is refused, and of two
        replacing one, both versions are kept. ``after``: the version ``model`` continues (an
        UPDATE); it must still be the current one, else the update is refused, not lost."""
        versions = self.versions(name)
        if versions and not replace:
            self.check_free(name, verb)  # raises: the name is taken
        version = max(versions, default=0) + 1
        if after is not None and version != after + 1:
            self._refuse_stale(name, after, version - 1, verb)
        if self.store is None:
            self._saved[(name, version)] = time.time()
        else:
            while True:
                try:
                    model.save(join(self.store, f"{name}@{version}{SUFFIX}"), self.options,
                               overwrite=False)
                    break
                except ModelFileError as exc:
                    if "already exists" not in str(exc):
                        raise
                if after is not None:
                    self._refuse_stale(name, after, version, verb)
                if not replace:
                    raise ModelExistsError(f"a model named {name!r} was saved to the store "
                                           f"{self.store!r} meanwhile, by another session; {verb} "
                                           "OR REPLACE ... replaces it")
                version += 1  # another session wrote this version meanwhile: both are kept
        self._models[(name, version)] = model
        self._retain(name)
        return version

    @staticmethod
    def _refuse_stale(name: str, after: int, current: int, verb: str) -> None:
        raise ModelExistsError(
            f"model {name!r} changed while this {verb} ran: it continued version {after}, and "
            f"version {current} was written meanwhile (by another session); nothing was saved. "
            f"Run the {verb} again, to continue the current version")

    def rollback(self, name: str, version: int) -> int:
        """Make version ``version`` of ``name`` current again, as a new version (its number):
        what was current stays, one version back."""
        return self.put(name, self.get(f"{name}@{version}"), replace=True, verb="ROLLBACK")

    def _retain(self, name: str) -> None:
        """Delete the versions of ``name`` older than the newest ``keep_versions``."""
        located = self._located(name)
        for version in sorted(located)[:-self.keep_versions]:
            self._forget(name, version, located[version])

    def _forget(self, name: str, version: int, file: str) -> None:
        if file:
            remove(join(self.store, file), self.options)
        self._models.pop((name, version), None)
        self._saved.pop((name, version), None)

    def drop(self, reference: str) -> None:
        """Delete every version of ``name``, or only version N of ``name@N``."""
        name, version = parse_reference(reference)
        self.get(reference)  # a clear error for an unknown name or version
        located = self._located(name)
        for v in sorted(located) if version is None else [version]:
            self._forget(name, v, located[v])

    def versions_table(self, name: str) -> pd.DataFrame:
        """One row per version of ``name``: version, current, saved (UTC), what made it (fit:
        train or update), algorithm, its source and the files it read, rows seen, epochs, and
        its score: a TRAIN's holdout score (when it kept rows out), an UPDATE's test-then-train
        score (score_kind says which)."""
        import pandas as pd

        located = self._located(name)
        if not located:
            self.get(name)  # raises the unknown-model error
        rows = []
        for version in sorted(located):
            model = self._load(name, version, located[version])
            step = model.lineage[-1] if model.lineage else None
            history = model.report.history or [{}]
            rows.append({"version": version, "current": version == max(located),
                         "saved": self._saved_at(name, version, located[version]),
                         "fit": step.kind if step is not None else "train",
                         "algorithm": type(model.estimator).__name__,
                         "source": step.source if step is not None else None,
                         "files": len(step.files) if step is not None and step.files else None,
                         "rows_seen": model.report.rows_seen, "epochs": model.report.epochs,
                         "score": step.score if step is not None else history[-1].get(
                             "holdout_score"),
                         "score_kind": step.score_kind if step is not None else "holdout"})
        table = pd.DataFrame(rows, columns=VERSION_COLUMNS)
        return table.astype({"files": "Int64"})

    def _saved_at(self, name: str, version: int, file: str) -> Any:
        import pandas as pd

        if self.store is None:
            return pd.Timestamp(self._saved.get((name, version), 0), unit="s", tz="UTC")
        with translated(join(self.store, file), "look up"):
            info = self._fs.info(join(self._root, file))
        when = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
        if isinstance(when, int | float):
            return pd.Timestamp(when, unit="s", tz="UTC")
        return pd.Timestamp(when).tz_convert("UTC") if when is not None else pd.NaT

    def table(self) -> pd.DataFrame:
        """One row per model (its current version): name, version, algorithm, task, target,
        features, rows seen, epochs."""
        rows = []
        for name, located in sorted(self._all().items()):
            version = max(located)
            model = self._load(name, version, located[version])
            rows.append({"name": name, "version": version,
                         "algorithm": type(model.estimator).__name__,
                         "task": model.task, "target": model.target,
                         "features": len(model.features),
                         "rows_seen": model.report.rows_seen,
                         "epochs": model.report.epochs})
        columns = ["name", "version", "algorithm", "task", "target", "features", "rows_seen", "epochs"]
        import pandas as pd

        return pd.DataFrame(rows, columns=columns)
