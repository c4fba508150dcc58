"""Records: exact round trips, a stable digest, and clear refusals for anything else."""

# ruff: noqa: E501 -- case tables keep one case per line (# fmt: skip), Atlantis style

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metaflow_hitl.errors import RecordError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.records import (
    FORMAT_VERSION,
    RECORD_SCHEMAS,
    Decision,
    Request,
    Vote,
    Waiter,
    decode_record,
    encode_record,
)
from tests.support.builders import GATE, T0, actor, build_request


def record_fields(kind: type) -> list[str]:
    """The dataclass field names of a record type."""
    return [f.name for f in dataclasses.fields(kind)]


def make_request() -> Request:
    return build_request(
        input_schema={"deploy_target": "str", "replicas": "int?"},
        approvers=["alice", "@acme/ml-leads"],
        review={"kind": "git", "url": None},
        links={"run": "https://ui.example/run/1732"},
        origin={"resumed_from": None},
    )


def make_vote() -> Vote:
    return Vote(
        gate_id=GATE,
        intent="approve",
        actor=dataclasses.replace(actor("alice"), evidence_url="https://x/1", source="github"),
        input={"deploy_target": "prod"},
        reason="lgtm",
    )


def make_decision() -> Decision:
    return Decision(
        gate_id=GATE,
        outcome="approved",
        proceed=True,
        decided_by="bob",
        channel="comment",
        deciders=(actor("alice"), actor("bob", T0 + timedelta(seconds=5), "comment")),
        decided_at=T0 + timedelta(seconds=5),
        request_digest=make_request().digest(),
        reason="lgtm; ship it",
        input={"deploy_target": "prod"},
        evidence_url="https://github.com/o/r/pull/1#issuecomment-1",
    )


def make_waiter() -> Waiter:
    return Waiter(
        gate_id=GATE,
        host="laptop.local",
        pid=4242,
        started_at=T0,
        beat_at=T0 + timedelta(seconds=30),
        lease_seconds=90,
        stopped="its review page could not be opened: GitHub said 503",
    )


MAKERS = {
    "request": make_request,
    "vote": make_vote,
    "decision": make_decision,
    "waiter": make_waiter,
}
KINDS = {"request": Request, "vote": Vote, "decision": Decision, "waiter": Waiter}


def test_a_waiter_without_stopped_omits_it_and_reads_back() -> None:
    beat = dataclasses.replace(make_waiter(), stopped=None)
    doc = json.loads(encode_record(beat))
    assert "stopped" not in doc
    assert decode_record(encode_record(beat), Waiter) == beat


@pytest.mark.parametrize("name", list(MAKERS))
def test_round_trip_is_exact(name: str) -> None:
    record = MAKERS[name]()
    data = encode_record(record)
    assert decode_record(data, KINDS[name]) == record
    assert encode_record(decode_record(data, KINDS[name])) == data


@pytest.mark.parametrize("name", list(MAKERS))
def test_encoding_carries_format_and_version(name: str) -> None:
    doc = json.loads(encode_record(MAKERS[name]()))
    assert doc["format"] == f"metaflow-hitl/{name}"
    assert doc["version"] == FORMAT_VERSION


@pytest.mark.parametrize("name", list(MAKERS))
def test_schema_names_exactly_the_dataclass_fields(name: str) -> None:
    props = set(RECORD_SCHEMAS[name]["properties"])
    assert props == {"format", "version", *record_fields(KINDS[name])}


def test_decode_accepts_str_as_well_as_bytes() -> None:
    vote = make_vote()
    assert decode_record(encode_record(vote).decode(), Vote) == vote


# -- digest -----------------------------------------------------------------------------------


def test_digest_is_sha256_and_stable_across_round_trip() -> None:
    request = make_request()
    digest = request.digest()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    again = decode_record(encode_record(request), Request)
    assert again.digest() == digest
    assert decode_record(encode_record(again), Request).digest() == digest


CHANGES: dict[str, Any] = {
    "gate_id": GateId("TrainAndDeploy", "1733", "gate"),
    "message": "Deploy model v8?",
    "input_schema": {"type": "object", "properties": {}, "additionalProperties": True},
    "approvers": ("alice",),
    "min_approvals": 2,
    "allow_self_approval": True,
    "on_timeout": "approve",
    "on_reject": "continue",
    "timeout_seconds": 7200.0,
    "created_at": T0 + timedelta(milliseconds=1),
    "expires_at": T0 + timedelta(hours=2),
    "started_by": "mallory",
    "runtime": "argo-workflows",
    "review": {"kind": "github-pr", "url": None},
    "links": {},
    "origin": {"resumed_from": "1700"},
    "store": "/elsewhere",
    "nonce": "0" * 32,
    "remind_every_seconds": 3600.0,
    "escalate_to": ("@acme/ml-leads",),
    "trusted_channels": ("github",),
    "content": {
        "version": 1,
        "digest": "sha256:" + "0" * 64,
        "artifacts": {},
        "code": "",
        "message": "",
    },
    "starter": {"kind": "human", "metaflow": "alice", "github": "alice-gh", "source": "metaflow"},
}


def test_every_request_field_has_a_digest_change_case() -> None:
    assert set(CHANGES) == set(record_fields(Request))


@pytest.mark.parametrize("field", list(CHANGES))
def test_digest_changes_when_a_field_changes(field: str) -> None:
    request = make_request()
    changed = dataclasses.replace(request, **{field: CHANGES[field]})
    assert getattr(changed, field) != getattr(request, field)
    assert changed.digest() != request.digest()


# -- refusals ---------------------------------------------------------------------------------


def _doc(name: str = "request") -> dict[str, Any]:
    return json.loads(encode_record(MAKERS[name]()))


def _with(name: str, **changes: Any) -> bytes:
    doc = _doc(name)
    doc.update(changes)
    return json.dumps(doc).encode()


def _without(name: str, key: str) -> bytes:
    doc = _doc(name)
    del doc[key]
    return json.dumps(doc).encode()


def _actor_at(value: str) -> bytes:
    doc = _doc("vote")
    doc["actor"]["at"] = value
    return json.dumps(doc).encode()


BROKEN = [
    pytest.param(Request, encode_record(make_request())[:-40], "not valid JSON", id="truncated"),
    pytest.param(Request, b"", "not valid JSON", id="empty-file"),
    pytest.param(Request, b"\xff\xfe\x00garbage", "not valid JSON", id="not-utf8"),
    pytest.param(Request, b"[1, 2]", "not a JSON object", id="array"),
    pytest.param(Request, b'"request"', "not a JSON object", id="string"),
    pytest.param(Request, b"[" * 100_000, "not valid JSON", id="nested-too-deep"),
    pytest.param(Request, encode_record(make_vote()), "expected 'metaflow-hitl/request'", id="vote-read-as-request"),
    pytest.param(Decision, _with("decision", format="metaflow-hitl/decisions"), "format 'metaflow-hitl/decisions'", id="format-misspelled"),
    pytest.param(Vote, _with("vote", format=None), "format None", id="format-null"),
    pytest.param(Vote, _without("vote", "format"), "format None", id="format-missing"),
    pytest.param(Request, _with("request", version=FORMAT_VERSION + 1), "pip install -U metaflow-hitl", id="newer-version"),
    pytest.param(Request, _with("request", version=10**6), "Upgrade metaflow-hitl", id="much-newer-version"),
    pytest.param(Request, _with("request", version=0), "version", id="older-version"),
    pytest.param(Request, _with("request", version="1"), "version", id="version-as-string"),
    pytest.param(Request, _with("request", version=True), "version", id="version-as-bool"),
    pytest.param(Request, _without("request", "version"), "version", id="version-missing"),
    pytest.param(Request, _without("request", "nonce"), "'nonce' is a required property", id="missing-field"),
    pytest.param(Decision, _without("decision", "outcome"), "'outcome' is a required property", id="decision-missing-outcome"),
    pytest.param(Request, _with("request", approved=True), "'approved' was unexpected", id="extra-field"),
    pytest.param(Request, _with("request", min_approvals=0), "min_approvals", id="quorum-zero"),
    pytest.param(Request, _with("request", approvers=["alice", ""]), "approvers", id="empty-approver"),
    pytest.param(Decision, _with("decision", outcome="maybe"), "outcome", id="unknown-outcome"),
    pytest.param(Decision, _with("decision", proceed="yes"), "proceed", id="proceed-not-bool"),
    pytest.param(Vote, _with("vote", intent="veto"), "intent", id="unknown-intent"),
    pytest.param(Request, _with("request", created_at="2026-11-25 10:00:00"), "created_at", id="timestamp-without-T-and-Z"),
    pytest.param(Request, _with("request", created_at="2026-11-25T10:00:00+00:00"), "created_at", id="timestamp-with-offset"),
    pytest.param(Request, _with("request", expires_at="2026-13-45T10:00:00.000Z"), "2026-13-45", id="timestamp-impossible-date"),
    pytest.param(Request, _with("request", expires_at="2026-11-25T10:00:00.000Z\n"), "not a UTC timestamp", id="timestamp-trailing-newline"),
    pytest.param(Request, _with("request", expires_at=1764064800), "expires_at", id="timestamp-as-number"),
    pytest.param(Vote, _actor_at("yesterday"), "actor.at", id="actor-timestamp-word"),
    pytest.param(Request, _with("request", gate_id="../../etc/passwd"), "../../etc/passwd", id="gate-id-path-trick"),
    pytest.param(Vote, _with("vote", gate_id="F/1/s\x00"), "gate", id="gate-id-with-nul"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "data", "needle"), BROKEN)
def test_broken_records_raise_record_error_saying_why(
    kind: type[Request | Vote | Decision], data: bytes, needle: str
) -> None:
    with pytest.raises(RecordError) as info:
        decode_record(data, kind, where="gates/F/1/s/request.json")
    text = str(info.value)
    assert "gates/F/1/s/request.json" in text
    assert needle in text


def test_newer_version_is_not_reported_as_a_schema_violation() -> None:
    with pytest.raises(RecordError) as info:
        decode_record(_with("request", version=FORMAT_VERSION + 1), Request)
    assert "newer than this release" in info.value.message
    assert "Upgrade" in (info.value.hint or "")


# -- hostile input never escapes as anything but RecordError ---------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.binary(max_size=300))
def test_random_bytes_only_raise_record_error(data: bytes) -> None:
    for kind in (Request, Vote, Decision):
        with pytest.raises(RecordError):
            decode_record(data, kind)


@given(JSON)
def test_random_json_only_raises_record_error(value: Any) -> None:
    with pytest.raises(RecordError):
        decode_record(json.dumps(value), Decision)


@given(
    name=st.sampled_from(list(MAKERS)),
    data=st.data(),
    value=st.one_of(st.text(max_size=30), JSON),
)
def test_a_valid_record_with_one_field_replaced_decodes_or_raises_record_error(
    name: str, data: st.DataObject, value: Any
) -> None:
    doc = _doc(name)
    key = data.draw(st.sampled_from(sorted(doc)))
    doc[key] = value
    try:
        record = decode_record(json.dumps(doc), KINDS[name])
    except RecordError:
        return
    assert isinstance(record, KINDS[name])


# -- summaries --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "summary"),
    [
        pytest.param({}, "approved by alice, bob (comment): lgtm; ship it", id="approved"),
        pytest.param(
            {
                "outcome": "rejected",
                "proceed": False,
                "deciders": (actor("carol"),),
                "reason": None,
            },
            "rejected by carol (comment)",
            id="rejected",
        ),
        pytest.param(
            {"outcome": "timed_out", "proceed": True, "reason": None},
            "timed out (approved by timeout)",
            id="timed-out-approve",
        ),
        pytest.param(
            {"outcome": "timed_out", "proceed": False, "reason": "late"},
            "timed out (rejected): late",
            id="timed-out-reject",
        ),
    ],
)
def test_decision_summary(changes: dict[str, Any], summary: str) -> None:
    assert dataclasses.replace(make_decision(), **changes).summary() == summary
