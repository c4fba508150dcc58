"""A moto S3 server on loopback for Metaflow runs: one place to start it and to point at it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Dummy credentials for moto; nothing here is a secret.
MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


#: Started in a child process (not a thread of pytest's): the race test forks, and a fork
#: must not copy a server thread holding locks. Prints the port, serves until stdin closes.
#: Requests are served one at a time: S3 applies a conditional PUT atomically, while moto
#: checks ``If-None-Match`` and then stores the object in two steps, which two server threads
#: could interleave. moto still decides every precondition; the lock only removes its race.
SERIALISED_MOTO_SERVER = """
import sys, threading
from moto.server import DomainDispatcherApplication, ThreadedMotoServer
lock = threading.Lock()
dispatch = DomainDispatcherApplication.__call__
def serialised(self, environ, start_response):
    with lock:
        return list(dispatch(self, environ, start_response))
DomainDispatcherApplication.__call__ = serialised
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@contextmanager
def serialised_moto_server() -> Iterator[str]:
    """Start :data:`SERIALISED_MOTO_SERVER` in its own process; yields its endpoint URL and
    stops it (closing its stdin) when the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERIALISED_MOTO_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **MOTO_CREDENTIALS},
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"moto server did not start (printed {port!r})")
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def moto_server(bucket: str, *, timeout: float = 30) -> Iterator[str]:
    """Start ``moto_server`` on a free loopback port with ``bucket`` created; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=MOTO_CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.create_bucket(Bucket=bucket)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server on {endpoint} did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait()


def metaflow_s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    """What a Metaflow run needs to use ``s3://<bucket>/metaflow`` on ``endpoint``."""
    return {
        **MOTO_CREDENTIALS,
        "METAFLOW_DEFAULT_DATASTORE": "s3",
        "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/metaflow",
        "METAFLOW_S3_ENDPOINT_URL": endpoint,
        "USER": "alice",
    }


def counting_client(make: Callable[[], Any], calls: dict[str, int]) -> Callable[[], Any]:
    """Wrap an S3 client factory (``metaflow_hitl.stores.s3._default_client``) so that every
    request its clients make is counted in ``calls``, by operation name."""

    def counted() -> Any:
        client = make()

        def hook(model: Any, **_: Any) -> None:
            calls[model.name] = calls.get(model.name, 0) + 1

        client.meta.events.register("before-call.s3", hook)
        return client

    return counted
