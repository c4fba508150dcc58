"""The public API of ``metaflow_hitl`` is pinned: a change here is a deliberate release note."""

from __future__ import annotations

import metaflow_hitl

EXPECTED = [
    "FORMAT_VERSION",
    "Actor",
    "AlreadyDecided",
    "ConfigError",
    "DeadlinePassed",
    "Decision",
    "DecisionRefused",
    "GateId",
    "GateNotFound",
    "GateRefError",
    "HitlError",
    "InvalidInput",
    "MessageRenderError",
    "NotAllowed",
    "RecordError",
    "Request",
    "StoreError",
    "TooLate",
    "Vote",
    "__version__",
]


def test_public_names_are_pinned() -> None:
    assert sorted(metaflow_hitl.__all__) == sorted(EXPECTED)
    for name in EXPECTED:
        assert hasattr(metaflow_hitl, name), name


def test_every_error_is_a_hitl_error_with_a_headline() -> None:
    for name in EXPECTED:
        value = getattr(metaflow_hitl, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, metaflow_hitl.HitlError), name
            assert value.headline.startswith("@hitl"), name
