"""A moto S3 server on loopback for Metaflow runs: one place to start it and to point at it."""

from __future__ import annotations

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
