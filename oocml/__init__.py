"""oocml: out-of-core machine learning on dask DataFrames.

``import oocml`` registers the ``.ml`` accessor on dask and pandas DataFrames.
"""

from . import preprocessing
from .accessor import Chain, register as _register_accessor
from .errors import OocmlError
from .incremental import Incremental
from .model import Model, load_model
from .plan import Plan
from .session import Session, default_session, sql

_register_accessor()

__all__ = ["Chain", "Incremental", "Model", "OocmlError", "Plan", "Session", "default_session",
           "load_model", "preprocessing", "sql"]
__version__ = "0.1.0"
