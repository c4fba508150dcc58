"""The identity map: Metaflow users -> GitHub logins; self-approval under either name."""

from __future__ import annotations

import json

import pytest

from metaflow_hitl.errors import ConfigError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.identity_map import parse_identity_map, starter_record
from metaflow_hitl.policy import check_decider
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.timestamps import utc_now


def test_json_or_file(tmp_path) -> None:
    assert parse_identity_map('{"Alice": "@alice-smith"}') == {"alice": "alice-smith"}
    path = tmp_path / "ids.json"
    path.write_text(json.dumps({"bob": "bob-gh"}))
    assert parse_identity_map(str(path)) == {"bob": "bob-gh"}
    assert parse_identity_map(None) == {}


@pytest.mark.parametrize("value", ["{not json", '["alice"]', '{"a": "not a login!"}', "/nope"])
def test_bad_maps_fail(value) -> None:
    with pytest.raises(ConfigError):
        parse_identity_map(value)


def _request(starter):
    spec = GateSpec.from_options(message="m")
    return spec.request_for(
        GateId("F", "1", "gate"),
        message="m",
        started_by="alice",
        runtime="local",
        now=utc_now(),
        store="",
        starter=starter,
    )


def test_self_approval_is_refused_under_the_github_login_too() -> None:
    request = _request(starter_record("alice", {"alice": "alice-smith"}))
    assert request.starter == {
        "kind": "human",
        "metaflow": "alice",
        "github": "alice-smith",
        "source": "metaflow",
    }
    refusal = check_decider(request, "alice-smith", "approve", permission="write")
    assert refusal is not None
    assert "cannot approve" in refusal.reason
    assert check_decider(request, "alice-smith", "reject", permission="write") is None
    assert check_decider(request, "bob", "approve", permission="write") is None


def test_without_a_map_only_the_metaflow_name_is_the_starter() -> None:
    request = _request(starter_record("alice", {}))
    assert request.starter["github"] is None
    assert check_decider(request, "alice-smith", "approve", permission="write") is None
    assert check_decider(request, "alice", "approve", permission="write") is not None
