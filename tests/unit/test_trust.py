"""``trusted_channels`` and ``METAFLOW_HITL_TRUSTED_CHANNELS``: a flow narrows, never widens."""

from __future__ import annotations

import pytest

from metaflow_hitl.errors import ConfigError
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.trust import effective_trusted_channels, parse_trusted_channels


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (["github"], ("github",)),
        ("github, CLI", ("cli", "github")),
        ('["cli"]', ("cli",)),
    ],
)
def test_parse(value, expected) -> None:
    assert parse_trusted_channels(value) == expected


@pytest.mark.parametrize("value", [["slack"], [], "comment", 3])
def test_unknown_or_empty_channels_are_refused(value) -> None:
    with pytest.raises(ConfigError):
        parse_trusted_channels(value)


def test_a_flow_narrows_the_deployment_setting() -> None:
    assert effective_trusted_channels(["github"], "cli,github") == ("github",)
    assert effective_trusted_channels(None, "github") == ("github",)
    assert effective_trusted_channels(["cli"], None) == ("cli",)


def test_a_flow_cannot_widen_the_deployment_setting() -> None:
    with pytest.raises(ConfigError, match="widen"):
        effective_trusted_channels(["cli", "github"], "github")


def test_the_spec_carries_it_into_the_request() -> None:
    from metaflow_hitl.gate_id import GateId
    from metaflow_hitl.timestamps import utc_now

    spec = GateSpec.from_options(message="m", trusted_channels=["github"])
    request = spec.request_for(
        GateId("F", "1", "s"), message="m", started_by="a", runtime="local", now=utc_now(), store=""
    )
    assert request.trusted_channels == ("github",)
    assert "trusted_channels" in request.to_dict()
    plain = GateSpec.from_options(message="m").request_for(
        GateId("F", "1", "s"), message="m", started_by="a", runtime="local", now=utc_now(), store=""
    )
    assert "trusted_channels" not in plain.to_dict()  # old digests unchanged
