"""Helpers for testing code that reads and writes object stores, without leaving this machine.

:func:`local_s3_server` runs moto's S3-compatible server (``pip install "moto[server]"``) on
127.0.0.1 and points s3fs, dask and pandas at it through the environment. oocml's own test
suite and its layouts benchmark use it; so can users testing their pipelines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


@contextlib.contextmanager
def local_s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 and a free port for the duration of the block, with
    ``AWS_ENDPOINT_URL``, dummy credentials and no instance-metadata lookups set in the
    environment (child processes inherit them; restored after). Yields the endpoint URL."""
    server, endpoint = start_moto_server()
    env = {"AWS_ENDPOINT_URL": endpoint, **ENVIRONMENT}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield endpoint
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_moto_server() -> tuple[Any, str]:
    """(a started moto ``ThreadedMotoServer`` on 127.0.0.1 and a free port, its endpoint URL):
    for a test that stops it (``server.stop()``) while oocml talks to it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"
