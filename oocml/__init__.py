"""oocml: out-of-core machine learning on dask DataFrames."""

from .errors import OocmlError

__all__ = ["OocmlError"]
__version__ = "0.1.0"
