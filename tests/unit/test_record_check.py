"""The plain-Python record checks (``metaflow_hitl.record_check``) are never looser than
``jsonschema`` on the record schemas: whatever they accept, ``jsonschema`` accepts."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.record_check import compile_schema
from metaflow_hitl.records import (
    RECORD_SCHEMAS,
    Actor,
    Decision,
    Request,
    Vote,
    decode_record,
)
from tests.support.builders import json_paths

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
GATE = GateId("TrainFlow", "17", "deploy")


def _request() -> Request:
    return Request(
        gate_id=GATE,
        message="Deploy?",
        input_schema={"type": "object", "properties": {"target": {"type": "string"}}},
        approvers=("alice", "@acme/leads"),
        min_approvals=2,
        allow_self_approval=False,
        on_timeout="reject",
        on_reject="fail",
        timeout_seconds=3600.5,
        created_at=T0,
        expires_at=T0 + timedelta(hours=1),
        started_by="dave",
        runtime="argo-workflows",
        review={"backend": "github", "repo": "acme/a", "mode": None},
        links={"ui": "https://x"},
        origin={"workflow": "wf", "namespace": None},
        store="s3://b/p",
    )


def _actor(login: str = "alice") -> Actor:
    return Actor(login=login, channel="comment", at=T0, evidence_url="https://e", source="github")


SAMPLES: dict[str, dict[str, Any]] = {
    "request": _request().to_dict(),
    "vote": Vote(
        gate_id=GATE, intent="approve", actor=_actor(), input={"target": "prod"}
    ).to_dict(),
    "decision": Decision(
        gate_id=GATE,
        outcome="approved",
        proceed=True,
        decided_by="alice",
        channel="comment",
        deciders=(_actor(), _actor("bob")),
        decided_at=T0,
        request_digest=_request().digest(),
        input={"target": "prod"},
    ).to_dict(),
}
KINDS = {"request": Request, "vote": Vote, "decision": Decision}
VALIDATORS = {name: Draft202012Validator(schema) for name, schema in RECORD_SCHEMAS.items()}


def _fast(name: str) -> Any:
    check = compile_schema(RECORD_SCHEMAS[name])
    assert check is not None, f"the {name} schema no longer compiles: decoding it is slow again"
    return check


@pytest.mark.parametrize("name", sorted(RECORD_SCHEMAS))
def test_every_record_schema_compiles(name: str) -> None:
    _fast(name)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_valid_records_pass_and_decode_the_same(name: str) -> None:
    doc = SAMPLES[name]
    assert _fast(name)(doc)
    assert VALIDATORS[name].is_valid(doc)
    data = json.dumps(doc).encode()
    assert decode_record(data, KINDS[name]).to_dict() == doc  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("request", ["min_approvals"], 1.0),  # jsonschema accepts 1.0 as an integer; we refuse
        ("request", ["min_approvals"], True),
        ("request", ["allow_self_approval"], 0),
        ("request", ["version"], True),
        ("request", ["on_timeout"], "Reject"),
        ("request", ["created_at"], "2026-11-25 10:00:00Z"),
        ("request", ["timeout_seconds"], 0),
        ("request", ["approvers"], ["x"] * 101),
        ("request", ["review", "repo"], 5),
        ("vote", ["actor", "login"], ""),
        ("vote", ["actor", "channel"], "email"),
        ("vote", ["reason"], "x" * 100_001),
        ("decision", ["deciders", 0, "at"], None),
        ("decision", ["format"], "metaflow-hitl/vote"),
    ],
    ids=lambda v: str(v)[:20],
)
def test_hostile_values_are_not_accepted_by_the_fast_check(
    name: str, path: list[Any], value: Any
) -> None:
    doc = copy.deepcopy(SAMPLES[name])
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert not _fast(name)(doc)


def test_extra_and_missing_keys_are_not_accepted() -> None:
    doc = dict(SAMPLES["decision"], extra=1)
    assert not _fast("decision")(doc)
    doc = dict(SAMPLES["decision"])
    del doc["nonce"]
    assert not _fast("decision")(doc)
    assert not _fast("decision")([doc])


def test_unknown_keywords_do_not_compile() -> None:
    assert compile_schema({"type": "object", "oneOf": [{}]}) is None
    assert compile_schema({"type": "uuid"}) is None
    assert compile_schema({"properties": {"a": {"format": "date-time"}}}) is None


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["approved", "cli", "2026-11-25T10:00:00Z", "2026-11-25T10:00:00.5Z", "metaflow-hitl/vote"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=400)
@given(
    name=st.sampled_from(sorted(SAMPLES)),
    pick=st.integers(min_value=0),
    action=st.sampled_from(["replace", "delete", "add"]),
    value=JSON,
)
def test_the_fast_check_is_never_looser_than_jsonschema(
    name: str, pick: int, action: str, value: Any
) -> None:
    doc = copy.deepcopy(SAMPLES[name])
    paths = json_paths(doc)
    path = paths[pick % len(paths)]
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if action == "replace":
        parent[path[-1]] = value
    elif action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[f"x{pick % 7}"] = value
    if _fast(name)(doc):
        assert VALIDATORS[name].is_valid(doc), doc


MIN_ITEMS_VALUES: list[Any] = [[], [1], [1, 2], [None, "x", {}], "ab", {"a": 1, "b": 2}, None, 2]


@pytest.mark.parametrize(
    "schema",
    [{"type": "array", "minItems": 2}, {"minItems": 2}, {"minItems": 0}],
    ids=json.dumps,
)
@pytest.mark.parametrize("value", MIN_ITEMS_VALUES, ids=repr)
def test_min_items_agrees_with_jsonschema(schema: dict[str, Any], value: Any) -> None:
    check = compile_schema(schema)
    assert check is not None, "minItems no longer compiles"
    assert check(value) is Draft202012Validator(schema).is_valid(value)
