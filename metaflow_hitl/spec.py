"""A gate's configuration, validated once, before any task runs.

:class:`GateSpec` is what ``@hitl(...)`` means once checked: durations parsed, the schema
normalized, approvers and quorum consistent. The Metaflow glue builds it in ``step_init``, so
a typo fails ``python flow.py run`` (and ``argo-workflows create``) immediately, with a message
that lists the valid values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from metaflow_hitl.durations import format_duration, parse_duration
from metaflow_hitl.errors import ConfigError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.input_schema import normalize_schema, timeout_input
from metaflow_hitl.records import Request
from metaflow_hitl.timestamps import add_seconds

__all__ = ["ESCALATE_FROM", "MAX_REMINDERS", "GateSpec", "parse_approvers"]

#: The first reminder that mentions ``escalate_to`` ("after the second reminder").
ESCALATE_FROM = 3
#: At most this many reminders fit in one gate's timeout (``timeout / remind_every``).
MAX_REMINDERS = 100

_LOGIN = re.compile(r"@?[A-Za-z0-9](?:[A-Za-z0-9._-]{0,38})")
_TEAM = re.compile(r"@?[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name} must be True or False, got {value!r}.")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{name}={value!r} is not valid; use one of {valid}.")
    return str(value)


def parse_approvers(value: Any, *, what: str = "approvers") -> tuple[str, ...]:
    """Parse ``approvers``: a list, or a comma-separated string (from ``--with``).

    Each entry is a GitHub login (``alice``, ``@alice``) or a team (``@acme/ml-leads``).
    ``what`` names the option in error messages (``escalate_to`` uses the same syntax).

    Raises
    ------
    ConfigError
        For an entry that is neither, or a bot account.
    """
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError(f"{what} {value!r} is not a JSON list.") from None
        else:
            value = [v for v in text.split(",") if v.strip()]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{what} must be a list of logins or teams, got {value!r}.")
    out: list[str] = []
    for entry in value:
        item = str(entry).strip()
        if not (_LOGIN.fullmatch(item) or _TEAM.fullmatch(item)):
            raise ConfigError(
                f"{what} entry {entry!r} is neither a GitHub login ('alice') nor a team "
                "('@acme/ml-leads')."
            )
        if item not in out:
            out.append(item)
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class GateSpec:
    """The validated options of one ``@hitl`` gate. Build it with :meth:`from_options`."""

    message: str
    timeout_seconds: float
    on_timeout: Literal["reject", "approve"]
    on_reject: Literal["fail", "continue"]
    input_schema: dict[str, Any]
    approvers: tuple[str, ...]
    min_approvals: int
    allow_self_approval: bool
    poll_interval: float | None
    review: str | None = None
    notifier: Any = None
    remind_every_seconds: float | None = None
    escalate_to: tuple[str, ...] = ()

    @classmethod
    def from_options(
        cls,
        *,
        message: Any = None,
        timeout: Any = "24h",
        on_timeout: Any = "reject",
        on_reject: Any = "fail",
        input_schema: Any = None,
        approvers: Any = None,
        min_approvals: Any = 1,
        allow_self_approval: Any = False,
        poll_interval: Any = None,
        review: Any = None,
        notifier: Any = None,
        remind_every: Any = None,
        escalate_to: Any = None,
    ) -> GateSpec:
        """Validate decorator options (Python values, or strings from ``--with``).

        Raises
        ------
        ConfigError
            Naming the option, the bad value and the valid ones.
        """
        if message is None or not str(message).strip():
            raise ConfigError(
                "message is required: say what is being approved, e.g. "
                'message="Accuracy {self.accuracy:.1%}: deploy?".'
            )
        if isinstance(input_schema, str):
            try:
                input_schema = json.loads(input_schema)
            except json.JSONDecodeError:
                raise ConfigError(f"input_schema {input_schema!r} is not a JSON object.") from None
        if isinstance(input_schema, Mapping):
            input_schema = dict(input_schema)
        schema = normalize_schema(input_schema)
        try:
            quorum = int(min_approvals)
        except (TypeError, ValueError):
            raise ConfigError(
                f"min_approvals must be a whole number, got {min_approvals!r}."
            ) from None
        if isinstance(min_approvals, bool) or not 1 <= quorum <= 100:
            raise ConfigError(f"min_approvals must be between 1 and 100, got {min_approvals!r}.")
        people = parse_approvers(approvers)
        if people and all("/" not in p for p in people) and len(people) < quorum:
            raise ConfigError(
                f"min_approvals={quorum} can never be met by the {len(people)} approvers "
                f"listed ({', '.join(people)}); list more people or a team, or lower it."
            )
        timeout_seconds = parse_duration(timeout, what="timeout")
        remind_seconds = _remind_every(remind_every, timeout, timeout_seconds)
        escalation = _escalate_to(
            escalate_to, people, remind_every, remind_seconds, timeout, timeout_seconds
        )
        spec = cls(
            message=str(message),
            timeout_seconds=timeout_seconds,
            on_timeout=_choice("on_timeout", on_timeout, ("reject", "approve")),  # type: ignore[arg-type]
            on_reject=_choice("on_reject", on_reject, ("fail", "continue")),  # type: ignore[arg-type]
            input_schema=schema,
            approvers=people,
            min_approvals=quorum,
            allow_self_approval=_as_bool("allow_self_approval", allow_self_approval),
            poll_interval=None
            if poll_interval in (None, "")
            else parse_duration(poll_interval, what="poll_interval"),
            review=None if review in (None, "") else str(review),
            notifier=notifier,
            remind_every_seconds=remind_seconds,
            escalate_to=escalation,
        )
        if spec.on_timeout == "approve":
            timeout_input(schema)
        return spec

    def request_for(
        self,
        gate_id: GateId,
        *,
        message: str,
        started_by: str,
        runtime: Literal["local", "argo-workflows"],
        now: datetime,
        store: str,
        review: dict[str, str | None] | None = None,
        links: dict[str, str] | None = None,
        origin: dict[str, str | None] | None = None,
    ) -> Request:
        """Build the request this gate records when it opens at ``now``."""
        return Request(
            gate_id=gate_id,
            message=message,
            input_schema=self.input_schema,
            approvers=self.approvers,
            min_approvals=self.min_approvals,
            allow_self_approval=self.allow_self_approval,
            on_timeout=self.on_timeout,
            on_reject=self.on_reject,
            timeout_seconds=self.timeout_seconds,
            created_at=now,
            expires_at=add_seconds(now, self.timeout_seconds),
            started_by=started_by,
            runtime=runtime,
            review=dict(review or {}),
            links=dict(links or {}),
            origin=dict(origin or {}),
            store=store,
            remind_every_seconds=self.remind_every_seconds,
            escalate_to=self.escalate_to,
        )


def _remind_every(value: Any, timeout: Any, timeout_seconds: float) -> float | None:
    """Parse ``remind_every``: shorter than the timeout, at most :data:`MAX_REMINDERS` of it."""
    if value in (None, ""):
        return None
    seconds = parse_duration(value, what="remind_every")
    if seconds >= timeout_seconds:
        raise ConfigError(
            f"remind_every={value!r} is not shorter than timeout={timeout!r}, so no reminder "
            "would ever be sent; use a shorter remind_every (e.g. '4h' for a '24h' timeout) "
            "or leave it out."
        )
    if timeout_seconds / seconds > MAX_REMINDERS:
        raise ConfigError(
            f"remind_every={value!r} would send up to {int(timeout_seconds // seconds)} "
            f"reminders before timeout={timeout!r}; at most {MAX_REMINDERS} are allowed. "
            f"Use remind_every of at least {format_duration(timeout_seconds / MAX_REMINDERS)}."
        )
    return seconds


def _escalate_to(
    value: Any,
    approvers: tuple[str, ...],
    remind_every: Any,
    remind_seconds: float | None,
    timeout: Any,
    timeout_seconds: float,
) -> tuple[str, ...]:
    """Parse ``escalate_to``: people the reminders can reach, who may decide the gate."""
    people = parse_approvers(value, what="escalate_to")
    if not people:
        return ()
    if remind_seconds is None:
        raise ConfigError(
            "escalate_to needs remind_every: escalation happens from the third reminder on, "
            "e.g. @hitl(remind_every='4h', escalate_to=['@acme/ml-leads'])."
        )
    if remind_seconds * ESCALATE_FROM >= timeout_seconds:
        raise ConfigError(
            f"escalate_to would never be used: escalation comes with reminder {ESCALATE_FROM}, "
            f"{ESCALATE_FROM} x remind_every={remind_every!r} after the gate opens, but "
            f"timeout={timeout!r} ends the gate first. Shorten remind_every or lengthen "
            "timeout."
        )
    allowed = {a.lstrip("@").lower() for a in approvers}
    if approvers and not any("/" in a for a in approvers):
        outside = [p for p in people if p.lstrip("@").lower() not in allowed]
        if outside:
            raise ConfigError(
                f"escalate_to {', '.join(outside)} may not decide this gate: only the "
                f"approvers ({', '.join(approvers)}) may. Escalation mentions people who can "
                "decide; add them to approvers too."
            )
    return people
