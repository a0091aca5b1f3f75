"""Run code right after a module is imported, whoever imports it and whenever.

``import oocml`` must register the ``.ml`` accessor on pandas and dask without importing
either (they take a second to import, and a script may never use them): :func:`after_import`
runs the registration now if the module is there, else right after the module's own code
runs, inside its import, so that no caller can use the module before.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import sys
from collections.abc import Callable
from typing import Any

_FILE_LOADERS = (importlib.machinery.SourceFileLoader, importlib.machinery.SourcelessFileLoader)


def after_import(name: str, callback: Callable[[], None]) -> None:
    """Run ``callback`` once module ``name`` is imported: now if it is, else right after the
    module's own code runs, inside its import (so no caller can use the module before)."""
    if name in sys.modules:
        callback()
    else:
        sys.meta_path.insert(0, _AfterImport(name, callback))


class _AfterImport:
    """A meta-path finder that finds ``name`` as the others would, and runs ``callback``
    after the module's code; it removes itself on first use."""

    def __init__(self, name: str, callback: Callable[[], None]):
        self.name, self.callback = name, callback

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if not isinstance(loader, _FILE_LOADERS):  # not a loader of its own: run on the next
            sys.meta_path.append(_Eventually(fullname, self.callback))  # import statement
            return spec
        run_module = loader.exec_module

        def exec_module(module: Any) -> None:
            run_module(module)
            try:
                self.callback()
            except Exception:  # never break the user's import of the library
                logging.getLogger("oocml").exception("registering the .ml accessor failed")

        loader.exec_module = exec_module  # this module's own loader object: no one else's
        return spec


class _Eventually:
    """Fallback of :class:`_AfterImport`: runs ``callback`` at the next import after ``name``
    is loaded (never seen with CPython's own loaders; kept so registration never fails)."""

    def __init__(self, name: str, callback: Callable[[], None]):
        self.name, self.callback = name, callback

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if self.name in sys.modules and self in sys.meta_path:
            sys.meta_path.remove(self)
            self.callback()
        return None
