"""Builders shared by the tests: requests made the way the decorator makes them.

``from tests.support.builders import ...`` (the repository root is on ``sys.path`` through
pytest's ``pythonpath`` setting in ``pyproject.toml``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.records import Actor, Request
from metaflow_hitl.spec import GateSpec

#: A fixed "now", millisecond precision like every stored timestamp.
T0 = datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=timezone.utc)
GATE = GateId("TrainAndDeploy", "1732", "gate")
STARTER = "starter"


def build_request(
    *,
    gate: GateId = GATE,
    started_by: str = STARTER,
    now: datetime = T0,
    review: dict[str, str | None] | None = None,
    links: dict[str, str] | None = None,
    origin: dict[str, str | None] | None = None,
    **options: Any,
) -> Request:
    """A request as ``@hitl(**options)`` opens it at ``now`` (default timeout 1h)."""
    options.setdefault("message", "Deploy model v7?")
    options.setdefault("timeout", "1h")
    spec = GateSpec.from_options(**options)
    return spec.request_for(
        gate,
        message=spec.message,
        started_by=started_by,
        runtime="local",
        now=now,
        store="/tmp/hitl-test-store",
        review=review,
        links=links,
        origin=origin,
    )


def actor(login: str, at: datetime = T0, channel: Any = "cli") -> Actor:
    return Actor(login=login, channel=channel, at=at)


def json_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) into a JSON document, for mutating one place at a time."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += json_paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += json_paths(value, (*prefix, i))
    return out
