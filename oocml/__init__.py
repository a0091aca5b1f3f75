"""oocml: out-of-core machine learning on dask DataFrames.

``import oocml`` registers the ``.ml`` accessor on dask and pandas DataFrames (when they
are imported, if they are not yet). It imports none of dask, pandas, scikit-learn or
skops: the names that need them (``Session``, ``sql``, ``Model``, ``load_model``,
``Incremental``, ``preprocessing``) load on first use, so the REPL shows its prompt
while the libraries load.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .accessor import Chain
from .accessor import register as _register_accessor
from .errors import OocmlError
from .plan import Plan
from .report import FitReport

_register_accessor()

_LAZY = {"Incremental": ".incremental", "Model": ".model", "load_model": ".model",
         "preprocessing": ".preprocessing", "Session": ".session", "sql": ".session",
         "default_session": ".session", "read_delta": ".io.sources"}

__all__ = ["Chain", "FitReport", "Incremental", "Model", "OocmlError", "Plan", "Session",
           "default_session", "load_model", "preprocessing", "read_delta", "sql"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The names that import scikit-learn, imported when first asked for (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'oocml' has no attribute {name!r}")
    module = import_module(_LAZY[name], __name__)
    value = module if name == "preprocessing" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
