"""The life of a gate: open it, vote on it, decide it, let it expire, wait for it.

These functions hold the rules every channel shares (CLI, GitHub events, the waiting task),
over an :class:`~metaflow_hitl.ports.ApprovalStore`:

* opening is idempotent: a retried or resumed task finds the existing request;
* the first decision wins: decisions are created atomically by the store, and everyone who
  loses the race is told who won (:class:`~metaflow_hitl.errors.AlreadyDecided`);
* a decision after expiry is refused (:class:`~metaflow_hitl.errors.TooLate`) and the expiry
  itself is recorded as the decision, ``decided_by: timeout``; an expiry that *approves*
  (``on_timeout="approve"``) is recorded at the deadline only by the gate's own task, and by
  anyone else only :data:`SKEW_ALLOWANCE_SECONDS` later
  (:class:`~metaflow_hitl.errors.DeadlinePassed` until then), so a clock running ahead of
  the cluster's never approves a gate early;
* nothing is written for a refused attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metaflow_hitl.errors import (
    AlreadyDecided,
    ConfigError,
    DeadlinePassed,
    GateNotFound,
    InvalidInput,
    NotAllowed,
    TooLate,
)
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.input_schema import timeout_input, validate_input
from metaflow_hitl.liveness import nobody_waiting, read_waiter
from metaflow_hitl.policy import Tally, check_decider, tally
from metaflow_hitl.polling import PollSchedule
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Actor, Decision, Intent, Request, Vote, Waiter
from metaflow_hitl.timestamps import format_ts, utc_now

__all__ = [
    "SKEW_ALLOWANCE_SECONDS",
    "DecideResult",
    "GateStatus",
    "decide",
    "expire_gate",
    "gate_status",
    "open_gate",
    "require_request",
    "wait_for_decision",
]

Clock = Callable[[], datetime]

#: How long after a gate's deadline a process other than the gate's own task (the CLI, the
#: GitHub Action, ``audit --expire``) waits before recording an expiry that approves: the clock
#: skew it tolerates between itself and the cluster that wrote the deadline.
SKEW_ALLOWANCE_SECONDS = 300.0


@dataclass(frozen=True)
class DecideResult:
    """What a vote did: the decision it completed (if it did), and the standing."""

    vote: Vote
    tally: Tally
    decision: Decision | None
    #: The stored request the vote was checked against (callers publish and resume with it).
    request: Request


@dataclass(frozen=True)
class GateStatus:
    """Everything known about one gate."""

    request: Request
    decision: Decision | None
    votes: tuple[Vote, ...]
    tally: Tally
    #: A pending local gate's latest heartbeat and when it was read (see liveness.py).
    waiter: Waiter | None = None
    read_at: datetime | None = None

    @property
    def nobody_waiting(self) -> bool:
        """A pending local gate whose waiting task stopped beating (its run was killed)."""
        if self.decision is not None or self.read_at is None:
            return False
        return nobody_waiting(self.request, self.waiter, self.read_at)

    @property
    def state(self) -> str:
        """``pending``, ``approved``, ``rejected``, ``timed_out`` or ``run_ended`` (closed
        because its run ended undecided)."""
        if self.decision is not None and self.decision.run_ended:
            return "run_ended"
        return self.decision.outcome if self.decision else "pending"


def open_gate(store: ApprovalStore, request: Request) -> tuple[Request, bool]:
    """Record a gate's request unless it exists.

    Returns
    -------
    (Request, bool)
        The stored request (the existing one on a retry) and whether this call created it.
        Callers notify people only when it is True, so retries never re-notify.
    """
    created = store.create_request(request)
    if created:
        return request, True
    existing = store.get_request(request.gate_id)
    if existing is None:  # pragma: no cover - a store that lost a record it just refused
        raise GateNotFound(f"gate {request.gate_id} vanished while being opened")
    return existing, False


def require_request(store: ApprovalStore, gate_id: GateId) -> Request:
    """The gate's stored request.

    Raises
    ------
    GateNotFound
        If the store has no such gate.
    """
    request = store.get_request(gate_id)
    if request is None:
        raise GateNotFound(
            f"no gate {gate_id} in store {store.location}",
            hint="List the gates with: hitl list --all",
        )
    return request


def _already(decision: Decision) -> AlreadyDecided:
    return AlreadyDecided(
        f"gate {decision.gate_id} was already decided: {decision.summary()} at "
        f"{format_ts(decision.decided_at)}. The first decision wins; nothing was changed.",
        decision=decision,
        hint=f"See it with: hitl show {decision.gate_id}",
    )


def _timeout_decision(request: Request, at: datetime) -> Decision:
    proceed = request.on_timeout == "approve"
    return Decision(
        gate_id=request.gate_id,
        outcome="timed_out",
        proceed=proceed,
        decided_by="timeout",
        channel="timeout",
        deciders=(Actor(login="timeout", channel="timeout", at=at),),
        decided_at=at,
        request_digest=request.digest(),
        reason=f"no decision before {format_ts(request.expires_at)}; "
        f"on_timeout={request.on_timeout}",
        input=timeout_input(request.input_schema) if proceed else {},
    )


def _approves_too_soon(request: Request, now: datetime) -> bool:
    """Whether recording the expiry now would approve the gate within the skew allowance
    (which only the gate's own task may do)."""
    if request.on_timeout != "approve":
        return False
    return (now - request.expires_at).total_seconds() < SKEW_ALLOWANCE_SECONDS


def expire_gate(
    store: ApprovalStore, gate_id: GateId, *, now: datetime | None = None, owner: bool = False
) -> Decision | None:
    """Record the expiry of a gate whose time is up.

    Parameters
    ----------
    owner
        The caller is the gate's own task (the local waiting task, or the gated step on Argo),
        whose clock is the cluster's: it records any expiry at the deadline. Anyone else
        records an expiry that approves only :data:`SKEW_ALLOWANCE_SECONDS` after it.

    Returns
    -------
    Decision or None
        The gate's decision (the timeout, or whatever won before it), or ``None`` if the gate
        is undecided and has not expired (or, for others than its task, its approving expiry
        is still within the skew allowance).
    """
    request = require_request(store, gate_id)
    existing = store.get_decision(gate_id)
    if existing is not None:
        return existing
    now = now or utc_now()
    if now < request.expires_at or (not owner and _approves_too_soon(request, now)):
        return None
    return store.create_decision(_timeout_decision(request, now))


def decide(
    store: ApprovalStore,
    gate_id: GateId,
    *,
    actor: Actor,
    intent: Intent,
    input: dict[str, Any] | None = None,
    reason: str | None = None,
    permission: str | None = None,
    teams: list[str] | None = None,
    require_permission: bool = False,
    now: datetime | None = None,
    history: list[Vote] | None = None,
) -> DecideResult:
    """Cast a vote and, when it settles the gate, record the decision.

    Parameters
    ----------
    store
        The approval store.
    gate_id
        Which gate.
    actor
        Who acts, through which channel.
    intent
        ``approve``, ``reject`` or ``withdraw``.
    input
        Approval input; validated against the gate's schema (approvals only).
    reason
        Why (rejections; optional for approvals).
    permission, teams, require_permission
        Facts the channel established about the actor (see
        :func:`metaflow_hitl.policy.check_decider`).
    now
        The current time (tests); defaults to the clock.
    history
        The channel's own authoritative history of eligible votes, tallied (with this vote)
        instead of the store's votes. The GitHub Action passes the votes it rebuilt from every
        review and comment, so a dropped webhook cannot change the count; the vote is still
        appended to the store for the audit trail.

    Returns
    -------
    DecideResult
        With ``decision`` set when this vote decided the gate (the stored decision counts it
        among its deciders); ``None`` while a quorum is still short.

    Raises
    ------
    GateNotFound, NotAllowed, InvalidInput
        Refused; nothing was written.
    AlreadyDecided
        The gate was decided already (by anyone, including a racing writer that won).
    TooLate
        The gate expired; its expiry was recorded (if it was not yet) and is the decision.
    DeadlinePassed
        The gate expired and its expiry approves: within the skew allowance only the gate's
        own task records it; nothing was written.
    """
    request = require_request(store, gate_id)
    existing = store.get_decision(gate_id)
    if existing is not None:
        raise _already(existing)
    now = now or utc_now()
    if now >= request.expires_at and _approves_too_soon(request, now):
        raise DeadlinePassed(
            f"gate {gate_id} expired at {format_ts(request.expires_at)}; {actor.login}'s "
            f"{intent} came too late and was not recorded. Its timeout approves "
            "(on_timeout=approve): the gate's own task records it, or anyone "
            f"{SKEW_ALLOWANCE_SECONDS:.0f} s after the deadline (a clock running ahead never "
            "approves a gate early).",
            hint=f"See it with: hitl show {gate_id}",
        )
    if now >= request.expires_at:
        winner = store.create_decision(_timeout_decision(request, now))
        if winner.outcome != "timed_out":
            raise _already(winner)
        raise TooLate(
            f"gate {gate_id} expired at {format_ts(request.expires_at)} and was "
            f"{'approved' if winner.proceed else 'rejected'} by its timeout "
            f"(on_timeout={request.on_timeout}); {actor.login}'s {intent} came too late and "
            "was not recorded.",
            decision=winner,
            hint=f"See it with: hitl show {gate_id}",
        )
    refusal = check_decider(
        request,
        actor.login,
        intent,
        permission=permission,
        teams=teams,
        require_permission=require_permission,
    )
    if refusal is not None:
        raise NotAllowed(f"{refusal.reason}; nothing was recorded.", hint=refusal.hint)
    value = dict(input or {})
    if intent == "approve":
        problems = validate_input(request.input_schema, value)
        if problems:
            raise InvalidInput(
                f"approval input for gate {gate_id} does not match its input_schema; "
                "nothing was recorded, the gate stays open",
                problems=problems,
                hint=f"See the schema with: hitl show {gate_id}",
            )
    elif value:
        raise InvalidInput(
            f"only approvals carry input; a {intent} takes a reason",
            problems=[f"unexpected input {sorted(value)}"],
        )
    vote = Vote(gate_id=gate_id, intent=intent, actor=actor, input=value, reason=reason)
    store.add_vote(vote)
    standing = tally(request, store.list_votes(gate_id) if history is None else [*history, vote])
    decision = _decision_from(request, standing, now)
    # Racing writers may each store a decision computed from their own snapshot of the votes;
    # whichever is stored wins, and this vote succeeded iff that decision counts it.
    stored = store.get_decision(gate_id) if decision is None else store.create_decision(decision)
    if stored is None:
        return DecideResult(vote=vote, tally=standing, decision=None, request=request)
    if not _counts(stored, vote):
        raise _already(stored)
    if not _restates(stored, vote):
        raise _earlier_stands(stored, vote)
    return DecideResult(vote=vote, tally=standing, decision=stored, request=request)


def _decision_from(request: Request, standing: Tally, now: datetime) -> Decision | None:
    outcome = standing.outcome
    if outcome is None:
        return None
    if outcome == "rejected":
        rejecter = standing.rejection
        assert rejecter is not None
        return Decision(
            gate_id=request.gate_id,
            outcome="rejected",
            proceed=False,
            decided_by=rejecter.actor.login,
            channel=rejecter.actor.channel,
            deciders=(rejecter.actor,),
            decided_at=now,
            request_digest=request.digest(),
            reason=rejecter.reason,
            evidence_url=rejecter.actor.evidence_url,
        )
    approvals = standing.approvals
    final = approvals[-1]
    reasons = [v.reason for v in approvals if v.reason]
    return Decision(
        gate_id=request.gate_id,
        outcome="approved",
        proceed=True,
        decided_by=final.actor.login,
        channel=final.actor.channel,
        deciders=tuple(v.actor for v in approvals),
        decided_at=now,
        request_digest=request.digest(),
        reason="; ".join(reasons) or None,
        input=final.input,
        evidence_url=final.actor.evidence_url,
    )


def _counts(decision: Decision, vote: Vote) -> bool:
    """Whether the stored decision is this vote's outcome and names its author as a decider.

    Compared by person, not by act: a retry after a failed write (the vote was stored, the
    decision was not) finds a decision built from the same person's earlier vote, and that
    decision is theirs.
    """
    outcome = {"approve": "approved", "reject": "rejected"}.get(vote.intent)
    me = vote.actor.login.casefold()
    return decision.outcome == outcome and any(a.login.casefold() == me for a in decision.deciders)


def _restates(decision: Decision, vote: Vote) -> bool:
    """Whether ``decision`` (which counts ``vote``'s author) says what ``vote`` says.

    A retry with other words -- ``reject --reason B`` after the same person's ``--reason A``
    was stored, or an approval with other input -- finds a decision built from the earlier
    vote: that one stands, and the caller must not be told that B was recorded.
    """
    if vote.intent == "reject":
        return (decision.reason or None) == (vote.reason or None)
    me = vote.actor.login.casefold()
    if decision.decided_by.casefold() == me and dict(decision.input or {}) != dict(vote.input):
        return False
    return not vote.reason or vote.reason in (decision.reason or "").split("; ")


def _earlier_stands(decision: Decision, vote: Vote) -> AlreadyDecided:
    said = f"reason {vote.reason!r}" if vote.intent == "reject" or vote.reason else "this input"
    return AlreadyDecided(
        f"gate {decision.gate_id} was already decided by {vote.actor.login}'s earlier "
        f"{vote.intent}: {decision.summary()} at {format_ts(decision.decided_at)}. That "
        f"decision stands; this {vote.intent} ({said}) changed nothing.",
        decision=decision,
        hint=f"See it with: hitl show {decision.gate_id}",
    )


def gate_status(store: ApprovalStore, gate_id: GateId) -> GateStatus:
    """Read a gate's request, decision and votes."""
    request = require_request(store, gate_id)
    votes = tuple(sorted(store.list_votes(gate_id), key=lambda v: (v.actor.at, v.nonce)))
    decision = store.get_decision(gate_id)
    return GateStatus(
        request=request,
        decision=decision,
        votes=votes,
        tally=tally(request, votes),
        waiter=read_waiter(store, request, decision),
        read_at=utc_now(),
    )


def wait_for_decision(
    store: ApprovalStore,
    gate_id: GateId,
    *,
    poll_interval: float | PollSchedule,
    clock: Clock = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    on_poll: Callable[[datetime], None] | None = None,
) -> Decision:
    """Block until the gate is decided, recording its expiry when the time is up.

    Parameters
    ----------
    poll_interval
        Seconds between reads of the decision, or a :class:`~metaflow_hitl.polling.PollSchedule`
        (fast while the gate is young, then backing off); the wait never overshoots the expiry.
    on_poll
        Called with the current time after each read that found no decision, before the
        gate's expiry (the waiting task sends reminders from it:
        :func:`metaflow_hitl.reminders.reminders_while_waiting`). It must not raise; an
        exception ends the wait.

    Returns
    -------
    Decision
        The gate's decision (possibly its timeout).
    """
    if not isinstance(poll_interval, PollSchedule) and poll_interval <= 0:
        raise ConfigError(f"poll_interval must be positive, got {poll_interval!r}")
    request = require_request(store, gate_id)
    while True:
        decision = store.get_decision(gate_id)
        if decision is not None:
            return decision
        now = clock()
        remaining = (request.expires_at - now).total_seconds()
        if remaining <= 0:
            expired = expire_gate(store, gate_id, now=now, owner=True)
            assert expired is not None
            return expired
        if on_poll is not None:
            on_poll(now)
        if isinstance(poll_interval, PollSchedule):
            pause = poll_interval.interval((now - request.created_at).total_seconds())
        else:
            pause = poll_interval
        sleep(min(pause, remaining))
