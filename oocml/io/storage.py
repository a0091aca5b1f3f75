"""Where data and files live: local paths and any fsspec URL, with storage options.

Rules every caller relies on:
- A string with a scheme (``s3://``, ``gs://``, ``memory://``, ``file://``) is a URL and goes
  to its fsspec filesystem. A string that starts like a scheme but lacks ``//``
  (``s3:bucket/out``) is refused: it is never written to a local folder named ``s3:``.
- Credentials come the ecosystem's way (environment variables and config files that fsspec,
  s3fs, gcsfs and adlfs read) or as ``storage_options``; secret values never leave this
  module in text (:mod:`oocml.redaction` masks them).
- One file is written whole or not at all: atomically renamed locally, one PUT on object stores
  (an object appears only when its upload completes).
- Errors from a filesystem become :class:`~oocml.errors.StorageError` naming the URL and the fix.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import StorageError
from ..redaction import redact, redact_url
from .files import write_atomic

# The fsspec implementation each scheme needs, and the oocml extra that installs it.
PACKAGES = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"),
            "gcs": ("gcsfs", "gcs"), "abfs": ("adlfs", "azure"), "az": ("adlfs", "azure"),
            "abfss": ("adlfs", "azure"), "http": ("aiohttp", "http"), "https": ("aiohttp", "http")}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_SCHEME_LIKE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):(?!//)")  # two letters at least: C:\ is a drive


def is_url(path: str) -> bool:
    """Whether ``path`` names a location by URL (``scheme://...``)."""
    return bool(_SCHEME.match(str(path)))


def protocol(path: str) -> str:
    """The URL's scheme (``s3``), or ``file`` for a local path."""
    match = _SCHEME.match(str(path))
    return match.group(1).lower() if match else "file"


def check_path(path: Any) -> str:
    """``path`` as text, refusing what would silently become a wrong local path."""
    text = str(path)
    if not text:
        raise StorageError("an empty path names no location")
    match = _SCHEME_LIKE.match(text)
    if match and not is_url(text):
        raise StorageError(f"{text!r} looks like a {match.group(1)!r} URL without '//'; write "
                           f"'{match.group(1)}://{text[match.end():].lstrip('/')}', or './{text}' "
                           "for a local path")
    return text


def filesystem(path: Any, options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a local path or a URL, built with ``options``."""
    import fsspec.core

    text = check_path(path)
    if not is_url(text):
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(), text
    scheme = protocol(text)
    try:
        return fsspec.core.url_to_fs(text, **dict(options or {}))
    except ImportError:
        package, extra = PACKAGES.get(scheme, (f"the fsspec implementation of {scheme!r}", None))
        hint = f'pip install "oocml[{extra}]"' if extra else f"install {package}"
        raise StorageError(f"{redact_url(text)!r} needs {package}, which is not installed: "
                           f"{hint}") from None
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            from fsspec.registry import known_implementations

            raise StorageError(f"unknown URL scheme {scheme!r} in {redact_url(text)!r}; fsspec "
                               f"knows {', '.join(sorted(known_implementations)[:30])}, ...") from None
        raise StorageError(f"cannot open {redact_url(text)!r}: {exc}") from None
    except TypeError as exc:  # an option the filesystem does not take
        raise StorageError(f"storage options {redact(options)} do not fit {scheme!r} URLs "
                           f"({exc})") from None


@contextlib.contextmanager
def translated(path: str, what: str = "access") -> Iterator[None]:
    """Errors a filesystem raises inside the block become :class:`StorageError` naming ``path``."""
    try:
        yield
    except (StorageError, FileExistsError):  # the caller asked not to replace: its error to word
        raise
    except Exception as exc:  # filesystems raise OSError, botocore and aiohttp errors alike
        error = describe_error(exc)
        if error is None:
            raise
        raise StorageError(f"cannot {what} {redact_url(str(path))!r}: {error}") from None


_CONNECTION_ERRORS = {"EndpointConnectionError", "ClientConnectorError", "ConnectTimeoutError",
                      "ReadTimeoutError", "ConnectionError", "ClientOSError", "ServerDisconnectedError",
                      "ConnectionClosedError", "ResponseStreamingError"}


def describe_error(exc: BaseException) -> str | None:
    """What went wrong and how to fix it, for an error a filesystem raised; None if unknown."""
    names = {t.__name__ for t in type(exc).__mro__}
    text = str(exc)
    if names & {"NoCredentialsError", "PartialCredentialsError"} or "credentials" in text.lower():
        return (f"{text}; set credentials in the environment (AWS_ACCESS_KEY_ID, ...), a config "
                "file, or storage options (OPTIONS (key = ..., secret = ...))")
    if names & _CONNECTION_ERRORS:
        return (f"the storage service does not answer ({text}); check the endpoint "
                "(AWS_ENDPOINT_URL or OPTIONS (endpoint_url = ...)) and the network")
    if isinstance(exc, TypeError) and any(name in text for name in _CONNECTION_ERRORS):
        # fsspec's ranged reads hand a failed request's exception on as if it were bytes
        return (f"the storage service stopped answering mid-read ({text}); check the endpoint "
                "(AWS_ENDPOINT_URL or OPTIONS (endpoint_url = ...)) and the network, then run again")
    if isinstance(exc, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        return f"access denied ({text}); check the credentials and their permissions"
    if isinstance(exc, FileNotFoundError):
        return f"not found ({text or type(exc).__name__}); check the bucket, key or path"
    if isinstance(exc, TypeError) and "unexpected keyword argument" in text:
        return (f"a storage option the filesystem does not take ({text}); see its documentation "
                "for the options it knows")
    if isinstance(exc, OSError):
        return text or type(exc).__name__
    return None


def read_bytes(path: Any, options: Mapping[str, Any] | None = None) -> bytes:
    """The whole content of one file."""
    fs, inner = filesystem(path, options)
    with translated(str(path), "read"):
        return fs.cat_file(inner)


def write_bytes(path: Any, data: bytes, options: Mapping[str, Any] | None = None,
                overwrite: bool = True) -> str:
    """Write one file whole or not at all (see the module's rules); returns the path. With
    ``overwrite=False`` an existing file raises ``FileExistsError`` (exclusive create where
    the filesystem has one: a hard link locally, ``If-None-Match`` on S3)."""
    text = check_path(path)
    if not is_url(text):
        return write_atomic(text, data, overwrite=overwrite)
    fs, inner = filesystem(text, options)
    with translated(text, "write"):
        parent = inner.rsplit("/", 1)[0]
        if parent and parent != inner:
            fs.makedirs(parent, exist_ok=True)
        if not overwrite and fs.exists(inner):
            raise FileExistsError(text)
        fs.pipe_file(inner, data, mode="overwrite" if overwrite else "create")
        fs.invalidate_cache(parent)
    return text


def exists(path: Any, options: Mapping[str, Any] | None = None) -> bool:
    """Whether one file is there now (not as a cached listing remembers it)."""
    fs, inner = filesystem(path, options)
    with translated(str(path), "look up"):
        fs.invalidate_cache(inner)
        return fs.exists(inner)


def remove(path: Any, options: Mapping[str, Any] | None = None) -> None:
    """Delete one file, if it is there."""
    fs, inner = filesystem(path, options)
    with translated(str(path), "delete"):
        if fs.exists(inner):
            fs.rm_file(inner)


def join(folder: str, name: str) -> str:
    """``folder/name`` for paths and URLs alike."""
    return f"{str(folder).rstrip('/')}/{name}"
