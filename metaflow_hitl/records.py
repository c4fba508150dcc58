"""The records a gate leaves behind: its request, the votes cast on it, its decision, and the
reminders sent while it waited.

Each record is a frozen dataclass and serialises to one JSON document carrying its format
name and version (``{"format": "metaflow-hitl/request", "version": 1, ...}``). The formats
are a public contract, documented in the README's *Record formats* section; a reader refuses
a record of an unknown format or a newer version with a clear error instead of guessing.

Decoding validates each document against the JSON Schema in :data:`RECORD_SCHEMAS`, so a
hand-edited or truncated record is reported as a :class:`~metaflow_hitl.errors.RecordError`,
never half-read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar, cast

from metaflow_hitl.errors import ConfigError, GateRefError, RecordError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.input_schema import check_input_schema, clip_middle, loads_strict
from metaflow_hitl.record_check import compile_schema
from metaflow_hitl.timestamps import format_ts, parse_ts

__all__ = [
    "CHANNELS",
    "FORMAT_VERSION",
    "RECORD_SCHEMAS",
    "RUN_END_STATES",
    "Actor",
    "Channel",
    "Decision",
    "Intent",
    "Outcome",
    "PageChange",
    "Publication",
    "Record",
    "Reminder",
    "Request",
    "Vote",
    "Waiter",
    "checks_digest",
    "decode_record",
    "encode_record",
    "new_nonce",
]

#: The version written by this release for every record format.
FORMAT_VERSION = 1

Outcome = Literal["approved", "rejected", "timed_out"]
Intent = Literal["approve", "reject", "withdraw"]
Channel = Literal["cli", "github-review", "comment", "merge", "close", "timeout", "run-ended"]
CHANNELS: tuple[str, ...] = (
    "cli",
    "github-review",
    "comment",
    "merge",
    "close",
    "timeout",
    "run-ended",  # added after the first release: the gate's run ended undecided (Argo)
)
#: How a gate's run ended undecided (``Decision.run_ended``).
RUN_END_STATES: tuple[str, ...] = (
    "stopped",
    "terminated",
    "failed",
    "error",
    "succeeded",
    "deleted",
    "replaced",
)

_TS = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"}
_STR = {"type": "string", "maxLength": 100_000}
_OPT_STR = {"type": ["string", "null"], "maxLength": 100_000}
_LOGIN = {"type": "string", "minLength": 1, "maxLength": 100}
_ACTOR = {
    "type": "object",
    "required": ["login", "channel", "at"],
    "properties": {
        "login": _LOGIN,
        "channel": {"enum": list(CHANNELS)},
        "at": _TS,
        "evidence_url": _OPT_STR,
        "source": _OPT_STR,
    },
    "additionalProperties": False,
}


def _envelope(name: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["format", "version", *required],
        "properties": {
            "format": {"const": f"metaflow-hitl/{name}"},
            "version": {"const": FORMAT_VERSION},
            **props,
        },
        "additionalProperties": False,
    }


#: JSON Schemas of the version-1 record formats, keyed by format name.
RECORD_SCHEMAS: dict[str, dict[str, Any]] = {
    "request": _envelope(
        "request",
        {
            "gate_id": _STR,
            "message": _STR,
            "input_schema": {"type": "object"},
            "approvers": {"type": "array", "items": _LOGIN, "maxItems": 100},
            "min_approvals": {"type": "integer", "minimum": 1, "maximum": 100},
            "allow_self_approval": {"type": "boolean"},
            "on_timeout": {"enum": ["reject", "approve"]},
            "on_reject": {"enum": ["fail", "continue"]},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
            "created_at": _TS,
            "expires_at": _TS,
            "started_by": _LOGIN,
            "runtime": {"enum": ["local", "argo-workflows"]},
            "review": {"type": "object", "additionalProperties": _OPT_STR},
            "links": {"type": "object", "additionalProperties": _STR},
            "origin": {"type": "object", "additionalProperties": _OPT_STR},
            "store": _STR,
            "nonce": _STR,
            # Optional (added after the first release; absent in older records):
            "remind_every_seconds": {"type": ["number", "null"], "exclusiveMinimum": 0},
            "escalate_to": {"type": "array", "items": _LOGIN, "maxItems": 100},
            "content": {
                "type": "object",
                "required": ["version", "digest", "artifacts", "code", "message"],
                "properties": {
                    "version": {"const": 1},
                    "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                    "artifacts": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "maxLength": 200},
                    },
                    "code": {"type": "string", "maxLength": 200},
                    "message": {"type": "string", "maxLength": 200},
                },
                "additionalProperties": False,
            },
            "starter": {
                "type": "object",
                "required": ["kind"],
                "properties": {
                    "kind": {"enum": ["human", "scheduled", "event", "unknown"]},
                    "metaflow": {"type": ["string", "null"], "maxLength": 200},
                    "github": {"type": ["string", "null"], "maxLength": 100},
                    "source": {"type": ["string", "null"], "maxLength": 200},
                },
                "additionalProperties": False,
            },
            "trusted_channels": {
                "type": "array",
                "items": {"enum": ["cli", "github"]},
                "minItems": 1,
                "maxItems": 2,
            },
        },
        [
            "gate_id",
            "message",
            "input_schema",
            "approvers",
            "min_approvals",
            "allow_self_approval",
            "on_timeout",
            "on_reject",
            "timeout_seconds",
            "created_at",
            "expires_at",
            "started_by",
            "runtime",
            "review",
            "links",
            "origin",
            "store",
            "nonce",
        ],
    ),
    "vote": _envelope(
        "vote",
        {
            "gate_id": _STR,
            "intent": {"enum": ["approve", "reject", "withdraw"]},
            "actor": _ACTOR,
            "input": {"type": "object"},
            "reason": _OPT_STR,
            "nonce": _STR,
        },
        ["gate_id", "intent", "actor", "input", "reason", "nonce"],
    ),
    "waiter": _envelope(
        "waiter",
        {
            "gate_id": _STR,
            "host": {"type": "string", "maxLength": 255},
            "pid": {"type": "integer", "minimum": 0},
            "started_at": _TS,
            "beat_at": _TS,
            "lease_seconds": {"type": "integer", "minimum": 1, "maximum": 86_400},
            "stopped": {"type": "string", "maxLength": 2000},
        },
        ["gate_id", "host", "pid", "started_at", "beat_at", "lease_seconds"],
    ),
    "reminder": _envelope(
        "reminder",
        {
            "gate_id": _STR,
            "number": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
            "due_at": _TS,
            "sent_at": _TS,
            "sent_by": _LOGIN,
            "escalated_to": {"type": "array", "items": _LOGIN, "maxItems": 100},
            "nonce": _STR,
        },
        ["gate_id", "number", "due_at", "sent_at", "sent_by", "escalated_to", "nonce"],
    ),
    "publication": _envelope(
        "publication",
        {
            "gate_id": _STR,
            "repo": _STR,
            "mode": {"enum": ["pr", "issue"]},
            "number": {"type": "integer", "minimum": 1},
            "url": _OPT_STR,
            "file_path": _OPT_STR,
            "file_sha": {"type": ["string", "null"], "pattern": "^[0-9a-f]{40}$"},
            "title_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "body_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "published_at": _TS,
            "nonce": _STR,
        },
        [
            "gate_id",
            "repo",
            "mode",
            "number",
            "url",
            "file_path",
            "file_sha",
            "title_sha256",
            "body_sha256",
            "published_at",
            "nonce",
        ],
    ),
    "page-change": _envelope(
        "page-change",
        {
            "gate_id": _STR,
            "number": {"type": "integer", "minimum": 1},
            "seen_at": _TS,
            "what": _STR,
            "by": _OPT_STR,
            "nonce": _STR,
        },
        ["gate_id", "number", "seen_at", "what", "by", "nonce"],
    ),
    "decision": _envelope(
        "decision",
        {
            "gate_id": _STR,
            "outcome": {"enum": ["approved", "rejected", "timed_out"]},
            "proceed": {"type": "boolean"},
            "decided_by": _LOGIN,
            "channel": {"enum": list(CHANNELS)},
            "deciders": {"type": "array", "items": _ACTOR, "maxItems": 100},
            "reason": _OPT_STR,
            "input": {"type": "object"},
            "decided_at": _TS,
            "evidence_url": _OPT_STR,
            "request_digest": _STR,
            "nonce": _STR,
            # Optional (added after the first release; absent in older records):
            "run_ended": {"enum": list(RUN_END_STATES)},
        },
        [
            "gate_id",
            "outcome",
            "proceed",
            "decided_by",
            "channel",
            "deciders",
            "reason",
            "input",
            "decided_at",
            "evidence_url",
            "request_digest",
            "nonce",
        ],
    ),
}


#: Bumped whenever validation beyond the schemas (``_input_schema_problem``, ``from_dict``)
#: becomes stricter, so records validated by an older release are validated again.
_CHECKS_REVISION = 1


@functools.cache
def checks_digest() -> str:
    """``sha256:<hex>`` naming the checks :func:`decode_record` applies (the schemas and the
    checks beyond them). An index segment records it; its records skip validation only under
    the same checks."""
    canonical = json.dumps([_CHECKS_REVISION, RECORD_SCHEMAS], sort_keys=True)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@functools.cache
def _validator(name: str) -> Any:
    # Imported on first use: jsonschema costs ~40 ms, paid otherwise by every Metaflow
    # command (Metaflow imports all step decorators at start-up).
    from jsonschema import Draft202012Validator

    return Draft202012Validator(RECORD_SCHEMAS[name])


def new_nonce() -> str:
    """A fresh random id, used to tell which writer's record won a race."""
    return uuid.uuid4().hex


@dataclass(frozen=True, kw_only=True)
class Actor:
    """A person (or the clock) acting on a gate.

    Parameters
    ----------
    login
        GitHub login, CLI identity, or ``"timeout"``.
    channel
        How they acted: ``cli``, ``github-review``, ``comment``, ``merge``, ``close``,
        ``timeout``.
    at
        When (UTC).
    evidence_url
        A link to the review, comment or commit that shows the act, if any.
    source
        How the login was established (``github``, ``flag``, ``env``, ``git-config``,
        ``os-user``): CLI identities are asserted, GitHub ones authenticated.
    """

    login: str
    channel: Channel
    at: datetime
    evidence_url: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "login": self.login,
            "channel": self.channel,
            "at": format_ts(self.at),
            "evidence_url": self.evidence_url,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Actor:
        return cls(
            login=data["login"],
            channel=data["channel"],
            at=parse_ts(data["at"]),
            evidence_url=data.get("evidence_url"),
            source=data.get("source"),
        )


@dataclass(frozen=True, kw_only=True)
class Request:
    """What a gate asks, of whom, until when. Written once when the gate opens.

    The request is the authority: deciders check policy against the stored request, never
    against text in a pull request. :meth:`digest` pins its content.
    """

    gate_id: GateId
    message: str
    input_schema: dict[str, Any]
    approvers: tuple[str, ...]
    min_approvals: int
    allow_self_approval: bool
    on_timeout: Literal["reject", "approve"]
    on_reject: Literal["fail", "continue"]
    timeout_seconds: float
    created_at: datetime
    expires_at: datetime
    started_by: str
    runtime: Literal["local", "argo-workflows"]
    review: dict[str, str | None] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str | None] = field(default_factory=dict)
    store: str = ""
    nonce: str = field(default_factory=new_nonce)
    #: Seconds between reminders while the gate is pending; ``None``: no reminders.
    remind_every_seconds: float | None = None
    #: Logins or ``@org/team`` entries mentioned from the third reminder on.
    escalate_to: tuple[str, ...] = ()
    #: The channels whose decisions count (``cli``, ``github``); ``None``: every channel.
    trusted_channels: tuple[str, ...] | None = None
    #: What is asked about (:class:`metaflow_hitl.content.Content` as a dict); ``None`` in
    #: requests of older releases.
    content: dict[str, Any] | None = None
    #: Who started the run, as a Metaflow user and (through the identity map) a GitHub login:
    #: ``{"kind": "human", "metaflow": "alice", "github": "alice-smith", "source": ...}``.
    starter: dict[str, str | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        # The optional fields are written only when set, so a request without them encodes
        # (and digests) exactly as releases before them wrote it: decisions and markers
        # pinned to an older request's digest stay valid.
        optional: dict[str, Any] = {}
        if self.remind_every_seconds is not None:
            optional["remind_every_seconds"] = self.remind_every_seconds
        if self.escalate_to:
            optional["escalate_to"] = list(self.escalate_to)
        if self.trusted_channels is not None:
            optional["trusted_channels"] = list(self.trusted_channels)
        if self.content is not None:
            optional["content"] = self.content
        if self.starter is not None:
            optional["starter"] = self.starter
        return {
            "format": "metaflow-hitl/request",
            "version": FORMAT_VERSION,
            "gate_id": str(self.gate_id),
            "message": self.message,
            "input_schema": self.input_schema,
            "approvers": list(self.approvers),
            "min_approvals": self.min_approvals,
            "allow_self_approval": self.allow_self_approval,
            "on_timeout": self.on_timeout,
            "on_reject": self.on_reject,
            "timeout_seconds": self.timeout_seconds,
            "created_at": format_ts(self.created_at),
            "expires_at": format_ts(self.expires_at),
            "started_by": self.started_by,
            "runtime": self.runtime,
            "review": dict(self.review),
            "links": dict(self.links),
            "origin": dict(self.origin),
            "store": self.store,
            "nonce": self.nonce,
            **optional,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Request:
        return cls(
            gate_id=GateId.parse(data["gate_id"]),
            message=data["message"],
            input_schema=data["input_schema"],
            approvers=tuple(data["approvers"]),
            min_approvals=data["min_approvals"],
            allow_self_approval=data["allow_self_approval"],
            on_timeout=data["on_timeout"],
            on_reject=data["on_reject"],
            timeout_seconds=data["timeout_seconds"],
            created_at=parse_ts(data["created_at"]),
            expires_at=parse_ts(data["expires_at"]),
            started_by=data["started_by"],
            runtime=data["runtime"],
            review=dict(data["review"]),
            links=dict(data["links"]),
            origin=dict(data["origin"]),
            store=data["store"],
            nonce=data["nonce"],
            remind_every_seconds=data.get("remind_every_seconds"),
            escalate_to=tuple(data.get("escalate_to") or ()),
            trusted_channels=tuple(data["trusted_channels"])
            if data.get("trusted_channels")
            else None,
            content=data.get("content"),
            starter=data.get("starter"),
        )

    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of this request (sorted keys, no spaces)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Vote:
    """One person's latest intent on a gate (approve, reject, or withdraw an approval)."""

    gate_id: GateId
    intent: Intent
    actor: Actor
    input: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    nonce: str = field(default_factory=new_nonce)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "metaflow-hitl/vote",
            "version": FORMAT_VERSION,
            "gate_id": str(self.gate_id),
            "intent": self.intent,
            "actor": self.actor.to_dict(),
            "input": self.input,
            "reason": self.reason,
            "nonce": self.nonce,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vote:
        return cls(
            gate_id=GateId.parse(data["gate_id"]),
            intent=data["intent"],
            actor=Actor.from_dict(data["actor"]),
            input=data["input"],
            reason=data["reason"],
            nonce=data["nonce"],
        )


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The final word on a gate. Created once; the first decision wins.

    Parameters
    ----------
    outcome
        ``approved``, ``rejected`` or ``timed_out``.
    proceed
        Whether the gated step runs its body: true for ``approved`` and for ``timed_out``
        when the gate says ``on_timeout="approve"``.
    decided_by
        The login whose act made the decision final (``"timeout"`` for an expiry).
    deciders
        Everyone whose act counts: the approvers forming the quorum, or the rejecter.
    run_ended
        Set when the gate was closed because its run ended before anyone decided (an Argo
        workflow stopped, failed or deleted): how it ended (:data:`RUN_END_STATES`). The
        outcome is then ``rejected`` and the channel ``run-ended``. Optional field, absent in
        records of other decisions and of older releases.
    """

    gate_id: GateId
    outcome: Outcome
    proceed: bool
    decided_by: str
    channel: Channel
    deciders: tuple[Actor, ...]
    decided_at: datetime
    request_digest: str
    reason: str | None = None
    input: dict[str, Any] = field(default_factory=dict)
    evidence_url: str | None = None
    nonce: str = field(default_factory=new_nonce)
    run_ended: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "format": "metaflow-hitl/decision",
            "version": FORMAT_VERSION,
            "gate_id": str(self.gate_id),
            "outcome": self.outcome,
            "proceed": self.proceed,
            "decided_by": self.decided_by,
            "channel": self.channel,
            "deciders": [a.to_dict() for a in self.deciders],
            "reason": self.reason,
            "input": self.input,
            "decided_at": format_ts(self.decided_at),
            "evidence_url": self.evidence_url,
            "request_digest": self.request_digest,
            "nonce": self.nonce,
        }
        if self.run_ended is not None:
            out["run_ended"] = self.run_ended
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            gate_id=GateId.parse(data["gate_id"]),
            outcome=data["outcome"],
            proceed=data["proceed"],
            decided_by=data["decided_by"],
            channel=data["channel"],
            deciders=tuple(Actor.from_dict(a) for a in data["deciders"]),
            reason=data["reason"],
            input=data["input"],
            decided_at=parse_ts(data["decided_at"]),
            evidence_url=data["evidence_url"],
            request_digest=data["request_digest"],
            nonce=data["nonce"],
            run_ended=data.get("run_ended"),
        )

    def summary(self) -> str:
        """One line for people: ``approved by alice (cli)``, ``rejected by bob (comment): why``."""
        who = ", ".join(a.login for a in self.deciders) or self.decided_by
        if self.run_ended:
            text = f"closed, its run ended ({self.run_ended})"
        elif self.outcome == "timed_out":
            text = "timed out (" + ("approved by timeout" if self.proceed else "rejected") + ")"
        else:
            text = f"{self.outcome} by {who} ({self.channel})"
        return f"{text}: {self.reason}" if self.reason else text


@dataclass(frozen=True, kw_only=True)
class Reminder:
    """That reminder ``number`` of a pending gate was sent. Created once per number.

    The store creates it atomically before anyone is reminded, so among any number of
    reminder senders (scheduled ``metaflow-hitl remind`` runs, the waiting task) exactly one
    sends reminder ``number``; the others find it and skip.

    Parameters
    ----------
    number
        Which reminder: ``n`` is due ``n`` intervals (``remind_every``) after the gate opened.
    due_at
        When it became due (``created_at + number * remind_every``).
    sent_at
        When it was claimed by its sender.
    sent_by
        Which sender: ``remind-command``, ``waiting-task``...
    escalated_to
        The ``escalate_to`` entries it mentioned (empty before the third reminder).
    """

    gate_id: GateId
    number: int
    due_at: datetime
    sent_at: datetime
    sent_by: str
    escalated_to: tuple[str, ...] = ()
    nonce: str = field(default_factory=new_nonce)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "metaflow-hitl/reminder",
            "version": FORMAT_VERSION,
            "gate_id": str(self.gate_id),
            "number": self.number,
            "due_at": format_ts(self.due_at),
            "sent_at": format_ts(self.sent_at),
            "sent_by": self.sent_by,
            "escalated_to": list(self.escalated_to),
            "nonce": self.nonce,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reminder:
        return cls(
            gate_id=GateId.parse(data["gate_id"]),
            number=data["number"],
            due_at=parse_ts(data["due_at"]),
            sent_at=parse_ts(data["sent_at"]),
            sent_by=data["sent_by"],
            escalated_to=tuple(data["escalated_to"]),
            nonce=data["nonce"],
        )


@dataclass(frozen=True, kw_only=True)
class Waiter:
    """A local run's waiting task is alive: its heartbeat, rewritten while it waits.

    Only local runs write it (an Argo gate waits in a suspend node, with no process to
    beat). A pending gate whose waiter stopped beating for longer than its lease has nobody
    waiting on it (the run was killed): ``list`` says so and reminders skip it. A gate with no
    waiter record (opened by an older release, or on Argo) is not judged.

    Parameters
    ----------
    host, pid
        Where the waiting process runs (for the operator; never used to signal it).
    started_at
        When this process started waiting.
    beat_at
        Its latest heartbeat.
    lease_seconds
        How long after ``beat_at`` the waiter counts as alive.
    stopped
        Why the task stopped waiting on its own (it failed, e.g. the review page could not be
        opened), or ``None``. Optional: written only when set.
    """

    gate_id: GateId
    host: str
    pid: int
    started_at: datetime
    beat_at: datetime
    lease_seconds: int
    stopped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "metaflow-hitl/waiter",
            "version": FORMAT_VERSION,
            "gate_id": str(self.gate_id),
            "host": self.host,
            "pid": self.pid,
            "started_at": format_ts(self.started_at),
            "beat_at": format_ts(self.beat_at),
            "lease_seconds": self.lease_seconds,
            **({"stopped": self.stopped} if self.stopped is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Waiter:
        return cls(
            gate_id=GateId.parse(data["gate_id"]),
            host=data["host"],
            pid=data["pid"],
            started_at=parse_ts(data["started_at"]),
            beat_at=parse_ts(data["beat_at"]),
            lease_seconds=data["lease_seconds"],
            stopped=data.get("stopped"),
        )

    def alive(self, now: datetime) -> bool:
        """Whether the waiter beat within its lease at ``now`` and has not stopped."""
        return self.stopped is None and (now - self.beat_at).total_seconds() <= self.lease_seconds


@dataclass(frozen=True, kw_only=True)
class Publication:
    """What metaflow-hitl published on GitHub for a gate: the page a vote may count on.

    Written once, by whoever opened the page (the waiting task or the notify pod), from what
    it rendered and committed, not from what GitHub shows later. ``handle-event`` compares the
    page with it before any vote counts and before it merges, so a page changed since is
    recognised whatever release renders the templates now.

    Parameters
    ----------
    repo, mode, number, url
        The review repository, ``"pr"`` or ``"issue"``, the page's number and web address.
    file_path, file_sha
        The approval file and its git blob SHA-1 (``git hash-object``); None in issue mode.
    title_sha256, body_sha256
        SHA-256 of the title and body as rendered (line endings normalised, stripped).
    published_at
        When the record was written.
    """

    gate_id: GateId
    repo: str
    mode: Literal["pr", "issue"]
    number: int
    url: str | None
    file_path: str | None
    file_sha: str | None
    title_sha256: str
    body_sha256: str
    published_at: datetime
    nonce: str = field(default_factory=new_nonce)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "metaflow-hitl/publication",
            "version": FORMAT_VERSION,
            "gate_id": str(self.gate_id),
            "repo": self.repo,
            "mode": self.mode,
            "number": self.number,
            "url": self.url,
            "file_path": self.file_path,
            "file_sha": self.file_sha,
            "title_sha256": self.title_sha256,
            "body_sha256": self.body_sha256,
            "published_at": format_ts(self.published_at),
            "nonce": self.nonce,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Publication:
        return cls(
            gate_id=GateId.parse(data["gate_id"]),
            repo=data["repo"],
            mode=data["mode"],
            number=data["number"],
            url=data["url"],
            file_path=data["file_path"],
            file_sha=data["file_sha"],
            title_sha256=data["title_sha256"],
            body_sha256=data["body_sha256"],
            published_at=parse_ts(data["published_at"]),
            nonce=data["nonce"],
        )


@dataclass(frozen=True, kw_only=True)
class PageChange:
    """That a gate's page was edited or pushed to, as seen by ``handle-event`` at ``seen_at``.

    Votes cast on the page before the latest change no longer count: the voter may have
    approved the changed text, even if the page has been restored since.

    Parameters
    ----------
    number
        The page.
    seen_at
        The page's ``updated_at`` as GitHub's API gave it when ``handle-event`` handled the
        change (GitHub's clock, never earlier than the change), or the runner's time if that
        is later. Approvals whose GitHub timestamp is not later do not count.
    what
        The event, e.g. ``"issues edited"``, ``"pull_request edited or pushed to"``.
    by
        The account GitHub's event names, when it names one.
    """

    gate_id: GateId
    number: int
    seen_at: datetime
    what: str
    by: str | None = None
    nonce: str = field(default_factory=new_nonce)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "metaflow-hitl/page-change",
            "version": FORMAT_VERSION,
            "gate_id": str(self.gate_id),
            "number": self.number,
            "seen_at": format_ts(self.seen_at),
            "what": self.what,
            "by": self.by,
            "nonce": self.nonce,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PageChange:
        return cls(
            gate_id=GateId.parse(data["gate_id"]),
            number=data["number"],
            seen_at=parse_ts(data["seen_at"]),
            what=data["what"],
            by=data["by"],
            nonce=data["nonce"],
        )


Record = Request | Vote | Decision | Reminder | Publication | PageChange | Waiter
_R = TypeVar("_R", Request, Vote, Decision, Reminder, Publication, PageChange, Waiter)
_KINDS: dict[str, type[Record]] = {
    "request": Request,
    "vote": Vote,
    "decision": Decision,
    "reminder": Reminder,
    "publication": Publication,
    "page-change": PageChange,
    "waiter": Waiter,
}

_NAMES = {kind: name for name, kind in _KINDS.items()}


def encode_record(record: Record) -> bytes:
    """Serialise a record to UTF-8 JSON bytes (sorted keys, one trailing newline).

    Raises
    ------
    ValueError
        If the record holds NaN or an infinity, which JSON cannot represent (nothing is
        written rather than a record no strict reader accepts).
    """
    text = json.dumps(record.to_dict(), sort_keys=True, indent=2, allow_nan=False)
    return (text + "\n").encode("utf-8")


def decode_record(
    data: bytes | str, kind: type[_R], *, where: str = "record", prevalidated: bool = False
) -> _R:
    """Parse and validate a record.

    Parameters
    ----------
    data
        The JSON document.
    kind
        :class:`Request`, :class:`Vote`, :class:`Decision` or :class:`Reminder`.
    where
        A location for error messages (a path or key).
    prevalidated
        Skip the schema checks: only for a document this release already validated and
        keeps unchanged (a verified index segment, :mod:`metaflow_hitl.index.segments`). The
        format, the version and the fields are still checked.

    Raises
    ------
    RecordError
        For invalid JSON, the wrong format, an unknown version, or a schema violation.
    """
    name = _NAMES[kind]
    try:
        # NaN, Infinity and 1e999 are refused: not JSON numbers (a prevalidated document
        # passed that check when it was written, so the C parser's fast path reads it)
        doc = json.loads(data) if prevalidated else loads_strict(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(f"{where} is not valid JSON ({exc}); it may be truncated.") from None
    except RecursionError:
        raise RecordError(f"{where} is not valid JSON (nested too deeply).") from None
    if not isinstance(doc, dict):
        raise RecordError(f"{where} is not a JSON object.")
    fmt, version = doc.get("format"), doc.get("version")
    if fmt != f"metaflow-hitl/{name}":
        raise RecordError(f"{where} has format {fmt!r}, expected 'metaflow-hitl/{name}'.")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise RecordError(
            f"{where} is version {version} of {fmt}, newer than this release reads "
            f"({FORMAT_VERSION}).",
            hint="Upgrade metaflow-hitl: pip install -U metaflow-hitl",
        )
    errors = [] if prevalidated or _fast_check(name)(doc) else _schema_errors(name, doc)
    if errors:
        detail = "; ".join(
            f"{'.'.join(map(str, e.path)) or '(top)'}: {_clip(e.message)}" for e in errors[:5]
        )
        raise RecordError(f"{where} is not a valid {fmt} record: {detail}")
    if name == "request" and not prevalidated:
        problem = _input_schema_problem(doc["input_schema"])
        if problem:
            raise RecordError(f"{where} is not a valid {fmt} record: {problem}")
    try:
        return cast(_R, kind.from_dict(doc))
    except (ValueError, KeyError, TypeError, GateRefError) as exc:
        raise RecordError(f"{where} is not a valid {fmt} record: {exc}") from None


def _clip(text: str) -> str:
    return clip_middle(text, 300)


def _schema_errors(name: str, doc: Any) -> list[Any]:
    return sorted(_validator(name).iter_errors(doc), key=lambda e: list(map(str, e.path)))


@functools.cache
def _fast_check(name: str) -> Callable[[Any], bool]:
    # Plain-Python checks compiled from the schema; only what they accept skips jsonschema.
    return compile_schema(RECORD_SCHEMAS[name]) or (lambda _doc: False)


def _input_schema_problem(schema: dict[str, Any]) -> str | None:
    """Why a stored ``input_schema`` cannot validate input (``None`` when it can)."""
    return _schema_problem(json.dumps(schema, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _schema_problem(canonical: str) -> str | None:
    # Cached by content: a flow's gates share one schema, so listing thousands of requests
    # checks it once.
    try:
        check_input_schema(json.loads(canonical))
    except ConfigError as exc:
        return f"input_schema: {_clip(exc.message)}"
    return None
