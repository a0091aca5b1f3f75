"""Model files: a fitted pipeline and what oocml knows about it, in skops format (no pickle),
or, for a path ending in ``.onnx``, the ONNX graph of its predictions (:mod:`oocml.export`).

Either file is written whole or not at all (:func:`oocml.io.storage.write_bytes`), and, unless the
caller says to replace, never over an existing one. Reading refuses, before anything in
the file runs, a file that holds types beyond those oocml writes.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

from ._compat import SKLEARN_OPTIMIZER_TYPES
from .errors import ModelFileError, StorageError
from .io.storage import check_path, read_bytes, write_bytes
from .redaction import redact_url

FORMAT = "oocml.model"
FORMAT_VERSION = 2  # 2: the fit's report and a tagged plan; 1 (oocml 0.1): an info dict
# The classes a file oocml writes may hold beyond those skops trusts by default: oocml's own,
# the optimizer state MLP models keep to go on training with partial_fit, and numpy.dtype,
# which scikit-learn 1.9's SimpleImputer keeps of its input (a dtype runs no code).
OOCML_TYPES = ["oocml.encoding.HashEncoder", "oocml.encoding.TextEncoder", "numpy.dtype",
               "oocml.boosting.BoostedTreesClassifier", "oocml.boosting.BoostedTreesRegressor",
               *SKLEARN_OPTIMIZER_TYPES]


def write_model(path: str | os.PathLike, pipeline: Any, meta: dict, *,
                storage_options: dict | None = None, overwrite: bool = False) -> str:
    """Write ``pipeline`` and its ``meta`` (JSON-able) to ``path``; returns the path. An
    existing file raises :class:`ModelFileError` unless ``overwrite``."""
    import skops.io as sio

    payload = {"format": FORMAT, "version": FORMAT_VERSION, "pipeline": pipeline,
               "meta": json.dumps(meta, default=repr)}
    return _write_new(path, sio.dumps(payload), storage_options, overwrite)


def is_onnx_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an ONNX file (it ends in ``.onnx``, any case)."""
    return str(path).lower().endswith(".onnx")


def write_onnx(path: str | os.PathLike, graph: Any, *, storage_options: dict | None = None,
               overwrite: bool = False) -> str:
    """Write an ONNX graph (``onnx.ModelProto``) to ``path`` by :func:`write_model`'s rules."""
    return _write_new(path, graph.SerializeToString(), storage_options, overwrite)


def _write_new(path: str | os.PathLike, data: bytes, storage_options: dict | None,
               overwrite: bool) -> str:
    try:
        return write_bytes(path, data, storage_options, overwrite=overwrite)
    except FileExistsError:
        raise ModelFileError(f"{redact_url(str(path))!r} already exists; pass overwrite=True "
                             "(SAVE MODEL ... TO '...' OVERWRITE) to replace it") from None


def read_model(path: str | os.PathLike, storage_options: dict | None = None) -> tuple[Any, dict]:
    """The (pipeline, meta) of a file :func:`write_model` wrote; refuses anything else."""
    from sklearn.pipeline import Pipeline

    path = check_path(path)
    try:
        data = read_bytes(path, storage_options)
    except StorageError as exc:
        raise ModelFileError(str(exc).replace("cannot read", "cannot read model file", 1)) from None
    shown = repr(str(path))
    try:
        payload = loads_trusted(data, f"model file {shown}")
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, json.JSONDecodeError,
            io.UnsupportedOperation, EOFError) as exc:
        raise ModelFileError(f"{shown} is not an oocml model file ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # skops raises assorted errors on crafted files
        raise ModelFileError(f"{shown} could not be loaded safely: {exc}") from None
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT
            and isinstance(payload.get("pipeline"), Pipeline)):
        raise ModelFileError(f"{shown} is a skops file but not an oocml model")
    if payload.get("version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"{shown} was written by a newer oocml (format {payload['version']})")
    return payload["pipeline"], json.loads(payload["meta"])


def loads_trusted(data: bytes, what: str) -> Any:
    """Load skops ``data`` only if it holds no types beyond those oocml writes; ``what`` names
    the file in the error. Nothing in a refused file runs."""
    import skops.io as sio

    untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in OOCML_TYPES]
    if untrusted:
        raise ModelFileError(f"{what} holds types oocml never writes, refused without loading: "
                             f"{', '.join(untrusted[:10])}")
    return sio.loads(data, trusted=OOCML_TYPES)


def dumps(payload: Any) -> bytes:
    """``payload`` in skops format (for checkpoints, read back with :func:`loads_trusted`)."""
    import skops.io as sio

    return sio.dumps(payload)
