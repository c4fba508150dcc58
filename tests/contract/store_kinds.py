"""The store kinds the store contract runs against, and the records it writes.

Not a test module: :mod:`tests.contract.test_store_contract` and the other store tests import
these helpers; the fixtures built on them (``moto_s3``, ``kind``, ``store``) are in
``tests/contract/conftest.py``.

Each store is described by a :class:`StoreKind` in :data:`STORE_KINDS`; add a kind and every
contract test runs against it too. A kind says how to make an empty store, how its racers run
(:func:`racing`: forked processes with a reopened store, or threads), and how to list what a
writer may have left behind, so the tests themselves only call the port's methods.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Actor, Decision, Request, Vote
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.stores.memory import MemoryApprovalStore
from metaflow_hitl.stores.s3 import S3ApprovalStore

# -- store kinds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreKind:
    """How the suite drives one store implementation."""

    name: str
    #: A new, empty store using ``tmp_path`` for anything it needs locally.
    make: Callable[[Path], ApprovalStore]
    #: A store on the same data, for use inside a forked child process.
    reopen: Callable[[ApprovalStore], ApprovalStore]
    #: Temporary objects (partial uploads, temp files) a writer left behind.
    leftovers: Callable[[ApprovalStore], list[str]]
    #: The physical objects holding a gate's decision (one once decided).
    decision_objects: Callable[[ApprovalStore, GateId], list[str]]
    #: Fixtures ``make`` needs, passed to it by name after ``tmp_path``.
    needs: tuple[str, ...] = ()
    #: Processes (threads for ``racing="threads"``) in the "exactly one wins" race.
    racers: int = 50
    #: How racers run: forked processes, each with a reopened store, or threads sharing one
    #: (a store that lives in one process's memory cannot be raced across processes).
    racing: str = "fork"


def _local_leftovers(store: ApprovalStore) -> list[str]:
    assert isinstance(store, LocalApprovalStore)
    return [
        os.path.join(folder, name)
        for folder, _, names in os.walk(store.root)
        for name in names
        if name.startswith(".tmp")
    ]


def _local_decision_objects(store: ApprovalStore, gate_id: GateId) -> list[str]:
    assert isinstance(store, LocalApprovalStore)
    folder = store.root / "v1" / "gates" / gate_id.flow / gate_id.run_id / gate_id.step
    return sorted(n for n in os.listdir(folder) if "decision" in n)


# -- the S3 kind: a moto server in its own process ---------------------------------------------

#: Dummy credentials for moto; nothing here is a secret.
S3_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def require_conditional_writes(endpoint: str) -> None:
    """Fail (never skip) when the server ignores ``If-None-Match: *`` on PutObject."""
    from botocore.exceptions import ClientError

    client = s3_client(endpoint)
    bucket = new_bucket(endpoint)
    client.put_object(Bucket=bucket, Key="probe", Body=b"1", IfNoneMatch="*")
    try:
        client.put_object(Bucket=bucket, Key="probe", Body=b"2", IfNoneMatch="*")
    except ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 412:
            return
        raise
    pytest.fail(
        "this moto version accepted a second PutObject with If-None-Match: * on an existing "
        "key; the S3 store's tests need a server that honours conditional writes"
    )


def s3_client(endpoint: str) -> Any:
    """A boto3 client for the moto server, with the dummy credentials."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("s3", endpoint_url=endpoint)


def new_bucket(endpoint: str) -> str:
    """A new, empty bucket on the moto server."""
    name = f"hitl-{uuid.uuid4().hex[:16]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def _make_s3(tmp: Path, moto_s3: str, monkeypatch: pytest.MonkeyPatch) -> ApprovalStore:
    # No client given: the store makes its own from Metaflow's S3 settings and the AWS
    # credential chain, as on a real run (and again in each forked racer).
    for name, value in {**S3_TEST_ENV, "METAFLOW_S3_ENDPOINT_URL": moto_s3}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-aws-credentials"))
    return S3ApprovalStore(new_bucket(moto_s3), "team/hitl")


def _s3_keys(store: ApprovalStore, prefix: str = "") -> list[str]:
    assert isinstance(store, S3ApprovalStore)
    pages = store.client.get_paginator("list_objects_v2").paginate(
        Bucket=store.bucket, Prefix=prefix
    )
    return [item["Key"] for page in pages for item in page.get("Contents", ())]


def _s3_leftovers(store: ApprovalStore) -> list[str]:
    assert isinstance(store, S3ApprovalStore)
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    outside = [k for k in _s3_keys(store) if not k.startswith(f"{store.prefix}/v1/")]
    return [u["Key"] for u in uploads] + outside


def _s3_decision_objects(store: ApprovalStore, gate_id: GateId) -> list[str]:
    assert isinstance(store, S3ApprovalStore)
    folder = f"{store.prefix}/v1/gates/{gate_id.flow}/{gate_id.run_id}/{gate_id.step}/"
    return [k for k in _s3_keys(store, folder) if "decision" in k]


def _memory_decision_objects(store: ApprovalStore, gate_id: GateId) -> list[str]:
    return sorted(n for n in store.scan_gates().get(gate_id, {}) if "decision" in n)


STORE_KINDS = [
    StoreKind(
        name="local",
        make=lambda tmp: LocalApprovalStore(tmp / "_hitl"),
        reopen=lambda store: LocalApprovalStore(store.location),
        leftovers=_local_leftovers,
        decision_objects=_local_decision_objects,
    ),
    StoreKind(
        name="s3",
        make=_make_s3,
        reopen=lambda store: S3ApprovalStore(store.bucket, store.prefix),  # type: ignore[attr-defined]
        leftovers=_s3_leftovers,
        decision_objects=_s3_decision_objects,
        needs=("moto_s3", "monkeypatch"),
        # 20 racing processes, not 50: each one makes its own boto3 client after the fork
        # (~0.1 s of CPU) and the moto server is one process; 20 still race on one key.
        racers=20,
    ),
    StoreKind(
        name="memory",
        make=lambda tmp: MemoryApprovalStore(),
        reopen=lambda store: store,  # the racers are threads sharing it
        leftovers=lambda store: [],  # nothing is ever written in parts
        decision_objects=_memory_decision_objects,
        racing="threads",
    ),
]


@dataclass(frozen=True)
class Racing:
    """A barrier, a results queue and a worker type for one kind's racers."""

    barrier: Any
    results: Any
    worker: Any

    def finished(self, worker: Any, timeout: float = 30) -> bool:
        """Join ``worker``; True if it ended (and, for a process, exited 0)."""
        worker.join(timeout=timeout)
        if isinstance(worker, threading.Thread):
            return not worker.is_alive()
        return bool(worker.exitcode == 0)


def racing(kind: StoreKind, parties: int) -> Racing:
    """How ``parties`` racers of ``kind`` meet and report (see :attr:`StoreKind.racing`)."""
    if kind.racing == "threads":
        return Racing(threading.Barrier(parties), queue.Queue(), threading.Thread)
    ctx = multiprocessing.get_context(kind.racing)
    return Racing(ctx.Barrier(parties), ctx.Queue(), ctx.Process)


# -- records ----------------------------------------------------------------------------------

T0 = datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=timezone.utc)
GATE = GateId("TrainAndDeploy", "1732", "gate")


def make_request(gate: GateId = GATE, *, now: datetime = T0, **options: Any) -> Request:
    options.setdefault("message", "Deploy model v7?")
    spec = GateSpec.from_options(**options)
    return spec.request_for(
        gate, message=spec.message, started_by="starter", runtime="local", now=now, store="test"
    )


def make_vote(login: str, intent: Any = "approve", *, gate: GateId = GATE, second: int = 0) -> Vote:
    at = T0 + timedelta(seconds=second)
    return Vote(gate_id=gate, intent=intent, actor=Actor(login=login, channel="cli", at=at))


def make_decision(
    login: str, outcome: Any = "approved", *, gate: GateId = GATE, reason: str | None = None
) -> Decision:
    at = T0 + timedelta(minutes=1)
    return Decision(
        gate_id=gate,
        outcome=outcome,
        proceed=outcome == "approved",
        decided_by=login,
        channel="cli",
        deciders=(Actor(login=login, channel="cli", at=at),),
        decided_at=at,
        request_digest=make_request(gate).digest(),
        reason=reason,
    )
