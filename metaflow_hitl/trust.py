"""Which decision channels a gate trusts (``@hitl(trusted_channels=...)``).

A decision reaches a gate through a *channel*: ``cli`` (``hitl approve``/``reject``, which
anyone who can write the store can use under any name) or ``github`` (reviews, ``/approve``
and ``/reject`` comments, merges and closes on the gate's page, recorded by the Action). A
gate that trusts only ``github`` refuses a decision from the CLI, and its gated step
re-verifies a GitHub decision against GitHub before it runs
(:mod:`metaflow_hitl.github.verify`), so a hand-written store record no longer releases it.

The deployment-wide setting ``METAFLOW_HITL_TRUSTED_CHANNELS`` bounds what a flow may trust:
a flow can narrow it, never widen it. Timeouts always count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from metaflow_hitl.errors import ConfigError
from metaflow_hitl.records import Actor, Decision, Request

__all__ = [
    "CHANNEL_GROUPS",
    "ENV",
    "TRUST_CHANNELS",
    "channel_group",
    "channel_refusal",
    "effective_trusted_channels",
    "identity_note",
    "parse_trusted_channels",
    "untrusted_deciders",
]

#: The environment variable (or Metaflow profile key ``HITL_TRUSTED_CHANNELS``).
ENV = "METAFLOW_HITL_TRUSTED_CHANNELS"
#: The channels a gate can trust.
TRUST_CHANNELS: tuple[str, ...] = ("cli", "github")
#: The trust channel of each recorded channel; ``timeout`` has none (it always counts).
CHANNEL_GROUPS: dict[str, str] = {
    "cli": "cli",
    "github-review": "github",
    "comment": "github",
    "merge": "github",
    "close": "github",
}


def parse_trusted_channels(value: Any, *, what: str = "trusted_channels") -> tuple[str, ...] | None:
    """Parse a list of channels (a list, a comma-separated string or a JSON list).

    Returns
    -------
    tuple of str or None
        The channels in :data:`TRUST_CHANNELS` order; ``None`` when unset (every channel).

    Raises
    ------
    ConfigError
        For an unknown channel or an empty list (a gate nobody could decide).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError(f"{what} {value!r} is not a JSON list.") from None
        else:
            value = [v.strip() for v in text.split(",")]
    if not isinstance(value, list | tuple | set | frozenset):
        raise ConfigError(f"{what} must be a list of channels ({', '.join(TRUST_CHANNELS)}).")
    names = {str(v).strip().lower() for v in value if str(v).strip()}
    unknown = sorted(names - set(TRUST_CHANNELS))
    if unknown:
        raise ConfigError(
            f"{what} names unknown channel(s) {', '.join(unknown)}; use "
            f"{' and/or '.join(repr(c) for c in TRUST_CHANNELS)} (timeouts always count)."
        )
    if not names:
        raise ConfigError(f"{what} is empty: no decision could ever count. Leave it unset.")
    return tuple(c for c in TRUST_CHANNELS if c in names)


def effective_trusted_channels(flow: Any, deployment: Any) -> tuple[str, ...] | None:
    """The channels a gate trusts: the flow's ``trusted_channels`` within the deployment's.

    Raises
    ------
    ConfigError
        When the flow would trust a channel the deployment does not: a flow may narrow the
        setting, never widen it.
    """
    mine = parse_trusted_channels(flow)
    allowed = parse_trusted_channels(deployment, what=ENV)
    if allowed is None:
        return mine
    if mine is None:
        return allowed
    wider = [c for c in mine if c not in allowed]
    if wider:
        raise ConfigError(
            f"trusted_channels={list(mine)} would widen {ENV}={','.join(allowed)}: this "
            f"deployment does not trust {', '.join(wider)}. A flow can narrow the setting, "
            "never widen it.",
            hint=f"Use trusted_channels={list(allowed)} or a subset, or leave it unset.",
        )
    return mine


def channel_group(channel: str) -> str | None:
    """``cli`` or ``github`` for a recorded channel; ``None`` for ``timeout``."""
    return CHANNEL_GROUPS.get(channel)


def untrusted_deciders(decision: Decision, trusted: Iterable[str] | None) -> list[Actor]:
    """The deciders of ``decision`` whose channel is not in ``trusted`` (none if unset)."""
    if trusted is None or decision.outcome == "timed_out":
        return []
    allowed = set(trusted)
    actors = list(decision.deciders) or [
        Actor(login=decision.decided_by, channel=decision.channel, at=decision.decided_at)
    ]
    return [a for a in actors if a.channel != "timeout" and channel_group(a.channel) not in allowed]


def channel_refusal(request: Request, group: str) -> str | None:
    """Why a decision through ``group`` (``cli`` or ``github``) cannot count on the gate of
    ``request`` (its recorded ``trusted_channels``), or ``None`` when it can."""
    trusted = request.trusted_channels
    if trusted is None or group in trusted:
        return None
    return (
        f"gate {request.gate_id} trusts only decisions from {', '.join(trusted)} "
        f"(trusted_channels); a {group} decision would not count, so nothing was recorded"
    )


def identity_note(channel: str | None, source: str | None) -> str:
    """How far a decider's identity is established, for people: a GitHub channel's login is
    authenticated by GitHub (``verified (github)``); a CLI login is whatever the person typed
    or their machine said (``asserted, unverified (flag)``); the clock is ``timeout``."""
    if channel == "timeout":
        return "timeout"
    if channel_group(channel or "") == "github":
        return f"verified ({source or 'github'})"
    return f"asserted, unverified ({source or 'unknown'})"
