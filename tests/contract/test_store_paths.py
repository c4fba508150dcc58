"""Gate ids cannot steer a store outside its root: generated ids on the real stores.

Every gate id the rules accept (generated from the rules' own patterns, so the odd corners
are hit: ``a..b``, ``x.``, ``_-``, 253-character run ids) is written through the local store
and the S3 store (a moto server on loopback), with a vote and a decision. Then every file on
disk resolves under the store root, and every S3 key sits under the store's prefix, with no
empty, ``.`` or ``..`` segment. Stray entries named with path tricks are never listed as
gates, and a ``--flow`` filter holding one lists nothing.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.records import Actor, Decision, Request, Vote
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.stores.s3 import S3ApprovalStore
from tests.contract.store_kinds import new_bucket, s3_client

T0 = datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=timezone.utc)

IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,127}", fullmatch=True)
RUN = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,252}", fullmatch=True)
GATE_IDS = st.builds(GateId, IDENT, RUN, IDENT)
TRICKS = ["..", ".", "...", "a/../b", "..\\x", "C:", "%2e%2e", "x\x00y", "\u2024\u2024", " ", "-"]


def cases(n: int) -> Any:
    """``n`` examples on the suite's profile; the fixtures used here need no reset per example."""
    inherited = list(settings().suppress_health_check)
    return settings(
        max_examples=n,
        suppress_health_check=[*inherited, HealthCheck.function_scoped_fixture],
    )


def records(gate: GateId) -> tuple[Request, Vote, Decision]:
    request = Request(
        gate_id=gate,
        message="m",
        input_schema={"type": "object"},
        approvers=(),
        min_approvals=1,
        allow_self_approval=True,
        on_timeout="reject",
        on_reject="fail",
        timeout_seconds=60,
        created_at=T0,
        expires_at=T0.replace(minute=1),
        started_by="a",
        runtime="local",
    )
    who = Actor(login="alice", channel="cli", at=T0)
    vote = Vote(gate_id=gate, intent="approve", actor=who)
    decision = Decision(
        gate_id=gate,
        outcome="approved",
        proceed=True,
        decided_by="alice",
        channel="cli",
        deciders=(who,),
        decided_at=T0,
        request_digest=request.digest(),
    )
    return request, vote, decision


def write_all(store: Any, gate: GateId) -> None:
    request, vote, decision = records(gate)
    assert store.create_request(request)
    store.add_vote(vote)
    assert store.create_decision(decision) == decision
    assert store.get_request(gate) == request
    assert list(store.list_gates(pending_only=False, flow=gate.flow)) == [gate]


# -- local -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stores")


@cases(150)
@given(GATE_IDS)
def test_local_store_files_stay_under_the_root(local_base: Path, gate: GateId) -> None:
    root = (local_base / uuid.uuid4().hex / "_hitl").resolve()
    store = LocalApprovalStore(root)
    write_all(store, gate)
    outside = local_base.resolve() / "outside"
    assert not outside.exists()
    files = [Path(folder, name) for folder, _, names in os.walk(root) for name in names]
    assert len(files) == 3  # request, vote, decision (the pending marker is gone)
    for path in files:
        assert path.resolve().is_relative_to(root), path
        assert path.resolve().parts[len(root.parts) : len(root.parts) + 5] == (
            "v1", "gates", gate.flow, gate.run_id, gate.step,
        )  # fmt: skip


@pytest.mark.parametrize("trick", TRICKS)
def test_local_store_never_lists_stray_path_tricks(tmp_path: Path, trick: str) -> None:
    store = LocalApprovalStore(tmp_path / "_hitl")
    write_all(store, GateId("Flow", "1", "step"))
    for parts in ((trick, "1", "s"), ("Flow", trick, "s"), ("Flow", "1", trick)):
        if "\x00" in trick or "/" in trick:
            continue  # not a file name on POSIX
        try:
            (store.root / "v1" / "gates" / Path(*parts)).mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
    listed = list(store.list_gates(pending_only=False))
    assert listed == [GateId("Flow", "1", "step")]


@pytest.mark.parametrize("flow", ["..", "../..", "../../..", "Flow/..", "/etc", "Flow/1"])
def test_local_flow_filter_with_a_path_lists_nothing(tmp_path: Path, flow: str) -> None:
    # A gate-shaped tree OUTSIDE the store, where a naive join of the filter would land.
    outside = tmp_path / "v1" / "gates" / "Evil" / "1" / "step"
    outside.mkdir(parents=True)
    store = LocalApprovalStore(tmp_path / "root" / "_hitl")
    write_all(store, GateId("Flow", "1", "step"))
    assert list(store.list_gates(pending_only=False, flow=flow)) == []
    assert list(store.list_gates(pending_only=True, flow=flow)) == []


# -- S3 ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bucket(moto_s3: str) -> tuple[Any, str]:
    return s3_client(moto_s3), new_bucket(moto_s3)


def keys(client: Any, bucket: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@cases(60)
@given(GATE_IDS)
def test_s3_keys_stay_under_the_prefix(bucket: tuple[Any, str], gate: GateId) -> None:
    client, name = bucket
    prefix = f"team/{uuid.uuid4().hex}/hitl"
    store = S3ApprovalStore(name, prefix, client=client)
    write_all(store, gate)
    mine = [k for k in keys(client, name) if k.startswith(f"team/{prefix.split('/')[1]}/")]
    assert len(mine) == 3
    for key in mine:
        assert key.startswith(f"{prefix}/v1/gates/{gate.flow}/{gate.run_id}/{gate.step}/"), key
        segments = key.split("/")
        assert "" not in segments
        assert "." not in segments
        assert ".." not in segments


@pytest.mark.parametrize("flow", ["..", "../x", "", "Flow/1", "*"])
def test_s3_flow_filter_with_a_path_lists_nothing(bucket: tuple[Any, str], flow: str) -> None:
    client, name = bucket
    prefix = f"team/{uuid.uuid4().hex}/hitl"
    store = S3ApprovalStore(name, prefix, client=client)
    write_all(store, GateId("Flow", "1", "step"))
    client.put_object(Bucket=name, Key=f"{prefix}/v1/gates/../x/1/s/request.json", Body=b"{}")
    if flow:
        assert list(store.list_gates(pending_only=False, flow=flow)) == []
    assert list(store.list_gates(pending_only=False)) == [GateId("Flow", "1", "step")]
