"""The model store: named models of a session, optionally persisted in a folder.

Without a store, models live as long as the session. With one (a folder or any fsspec
URL, e.g. ``s3://bucket/models/``), every model is a ``<name>.oocml`` file there
(written whole or not at all, skops format), so models survive across sessions and
processes; files are loaded on first use.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from .errors import ModelExistsError, ModelFileError, ParameterError, UnknownModelError, did_you_mean, listing
from .io.files import remove_stale_temporaries
from .io.storage import exists, filesystem, join, remove, translated

if TYPE_CHECKING:
    import pandas as pd

    from .model import Model

SUFFIX = ".oocml"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A name becomes ``<name>.oocml`` and, while it is written, ``.<name>.oocml.<random>.tmp``: 128
# characters keep both within the 255-byte file names of every common filesystem.
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


class Catalog:
    """Models by name; ``store`` (a folder or URL) makes them persistent."""

    def __init__(self, store: str | os.PathLike | None = None,
                 storage_options: dict[str, Any] | None = None):
        self.store = None if store is None else str(store).rstrip("/")
        self.options = dict(storage_options or {})
        self._models: dict[str, Model] = {}
        if self.store is not None:
            self._fs, self._root = filesystem(self.store, self.options)
            with translated(self.store, "use the model store"):
                self._fs.makedirs(self._root, exist_ok=True)
            remove_stale_temporaries(self.store, f"*{SUFFIX}")  # of saves that were killed

    def _path(self, name: str) -> str:
        return join(self.store, f"{check_name(name)}{SUFFIX}")

    def _stored(self) -> set[str]:
        if self.store is None:
            return set()
        with translated(self.store, "list the model store"):
            self._fs.invalidate_cache(self._root)
            found = [p.rsplit("/", 1)[-1] for p in self._fs.glob(join(self._root, f"*{SUFFIX}"))]
        return {f[:-len(SUFFIX)] for f in found if _NAME.fullmatch(f[:-len(SUFFIX)])}

    def names(self) -> list[str]:
        """Every model name, in the session and in the store, sorted."""
        return sorted(self._stored() | set(self._models))

    def __contains__(self, name: str) -> bool:
        check_name(name)
        return name in self._models or (self.store is not None
                                        and exists(self._path(name), self.options))

    def get(self, name: str) -> Model:
        check_name(name)
        if name not in self._models:
            if name not in self:
                known = self.names()
                raise UnknownModelError(
                    f"no model named {name!r}{did_you_mean(name, known)}; "
                    f"models: {listing(known) or '(none yet: TRAIN ... AS name)'}")
            from .model import load_model  # scikit-learn loads with the first model, not before

            self._models[name] = load_model(self._path(name), self.options)
        return self._models[name]

    def check_free(self, name: str, verb: str = "TRAIN") -> None:
        """Refuse a name that is taken (before any work is done to fill it)."""
        if name in self:
            where = f" in the store {self.store!r}" if self.store is not None else ""
            raise ModelExistsError(f"a model named {name!r} exists already{where}; "
                                   f"{verb} OR REPLACE ... replaces it, or choose another name")

    def put(self, name: str, model: Model, replace: bool = False, verb: str = "TRAIN") -> None:
        """Keep ``model`` under ``name``, saving it to the store first. A taken name raises
        :class:`ModelExistsError` unless ``replace``; of two sessions saving one new name at
        once, one wins and the other is refused (the file is created exclusively)."""
        check_name(name)
        if not replace:
            self.check_free(name, verb)
        if self.store is not None:
            try:
                model.save(self._path(name), self.options, overwrite=replace)
            except ModelFileError as exc:
                if "already exists" not in str(exc):
                    raise
                raise ModelExistsError(f"a model named {name!r} was saved to the store "
                                       f"{self.store!r} meanwhile, by another session; {verb} "
                                       "OR REPLACE ... replaces it") from None
        self._models[name] = model

    def drop(self, name: str) -> None:
        self.get(name)  # a clear error for an unknown name
        self._models.pop(name, None)
        if self.store is not None:
            remove(self._path(name), self.options)

    def table(self) -> pd.DataFrame:
        """One row per model: name, algorithm, task, target, features, rows seen, score history."""
        rows = []
        for name in self.names():
            model = self.get(name)
            rows.append({"name": name, "algorithm": type(model.estimator).__name__,
                         "task": model.task, "target": model.target,
                         "features": len(model.features),
                         "rows_seen": model.report.rows_seen,
                         "epochs": model.report.epochs})
        columns = ["name", "algorithm", "task", "target", "features", "rows_seen", "epochs"]
        import pandas as pd

        return pd.DataFrame(rows, columns=columns)
