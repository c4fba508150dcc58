"""The life of a gate over a real (local) store: open, vote, decide, expire, wait."""

# ruff: noqa: E501 -- case tables keep one case per line (# fmt: skip), Atlantis style

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from metaflow_hitl import gates
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
from metaflow_hitl.records import Request
from metaflow_hitl.stores.local import LocalApprovalStore
from tests.support.builders import GATE, STARTER, T0, actor, build_request

SOON = T0 + timedelta(minutes=1)
LATER = T0 + timedelta(minutes=2)


@pytest.fixture
def store(tmp_path: Path) -> LocalApprovalStore:
    return LocalApprovalStore(tmp_path / "_hitl")


def open_gate(store: LocalApprovalStore, **options: Any) -> Request:
    request, created = gates.open_gate(store, build_request(**options))
    assert created
    return request


def snapshot(store: LocalApprovalStore) -> dict[str, bytes]:
    """Every file in the store, with its content."""
    out = {}
    for folder, _, names in os.walk(store.root):
        for name in names:
            path = Path(folder) / name
            out[str(path.relative_to(store.root))] = path.read_bytes()
    return out


def decide(store: LocalApprovalStore, login: str, intent: str, at: datetime = SOON, **kw: Any):
    return gates.decide(store, GATE, actor=actor(login, at), intent=intent, now=at, **kw)  # type: ignore[arg-type]


# -- open_gate --------------------------------------------------------------------------------


def test_open_gate_is_idempotent(store: LocalApprovalStore) -> None:
    first = build_request()
    retry = build_request(now=T0 + timedelta(minutes=5), message="a retried task")
    assert first.nonce != retry.nonce

    assert gates.open_gate(store, first) == (first, True)
    stored, created = gates.open_gate(store, retry)

    assert created is False
    assert stored == first  # the original request, not the retry's
    assert list(store.list_gates(pending_only=True)) == [GATE]


# -- decide: success --------------------------------------------------------------------------


def test_approval_with_input_decides(store: LocalApprovalStore) -> None:
    request = open_gate(store, input_schema={"deploy_target": "str", "notes": "str?"})

    result = decide(store, "alice", "approve", input={"deploy_target": "prod"}, reason="ship")

    decision = result.decision
    assert decision is not None
    assert (decision.outcome, decision.proceed, decision.decided_by) == ("approved", True, "alice")
    assert decision.input == {"deploy_target": "prod"}
    assert decision.reason == "ship"
    assert decision.request_digest == request.digest()
    assert [a.login for a in decision.deciders] == ["alice"]
    assert store.get_decision(GATE) == decision
    assert list(store.list_gates(pending_only=True)) == []


def test_starter_may_reject_own_run(store: LocalApprovalStore) -> None:
    open_gate(store)
    decision = decide(store, STARTER, "reject", reason="wrong data").decision
    assert decision is not None
    assert (decision.outcome, decision.proceed, decision.decided_by) == ("rejected", False, STARTER)
    assert decision.reason == "wrong data"


def test_quorum_of_two_needs_two_different_people(store: LocalApprovalStore) -> None:
    open_gate(store, min_approvals=2)

    first = decide(store, "alice", "approve")
    assert first.decision is None
    assert first.tally.missing == 1
    again = decide(store, "alice", "approve", at=LATER)
    assert again.decision is None
    assert store.get_decision(GATE) is None

    second = decide(store, "bob", "approve", at=LATER + timedelta(seconds=1))
    assert second.decision is not None
    assert second.decision.outcome == "approved"
    assert second.decision.decided_by == "bob"
    assert sorted(a.login for a in second.decision.deciders) == ["alice", "bob"]


def test_withdrawn_approval_does_not_count(store: LocalApprovalStore) -> None:
    open_gate(store, min_approvals=2)
    decide(store, "alice", "approve")
    decide(store, "alice", "withdraw", at=LATER)
    result = decide(store, "bob", "approve", at=LATER + timedelta(seconds=1))
    assert result.decision is None
    assert result.tally.missing == 1


# -- decide: refusals write nothing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "login", "intent", "kw", "error", "needle"),
    [
        pytest.param({"input_schema": {"deploy_target": "str"}}, "alice", "approve", {"input": {}}, InvalidInput, "deploy_target", id="missing-required-input"),
        pytest.param({"input_schema": {"replicas": "int"}}, "alice", "approve", {"input": {"replicas": "3", "x": 1}}, InvalidInput, "replicas", id="wrong-type-and-unknown-field"),
        pytest.param({"input_schema": {}}, "alice", "approve", {"input": {"anything": 1}}, InvalidInput, "anything", id="input-on-a-gate-with-an-empty-schema"),
        pytest.param({}, "alice", "reject", {"input": {"a": 1}}, InvalidInput, "only approvals carry input", id="input-on-a-reject"),
        pytest.param({}, STARTER, "approve", {}, NotAllowed, "allow_self_approval", id="self-approval"),
        pytest.param({"approvers": ["alice"]}, "mallory", "approve", {}, NotAllowed, "alice", id="not-an-approver"),
        pytest.param({}, "dependabot[bot]", "approve", {}, NotAllowed, "bot", id="bot"),
        pytest.param({}, "alice", "approve", {"require_permission": True, "permission": "read"}, NotAllowed, "write", id="read-permission"),
    ],
)  # fmt: skip
def test_refused_attempts_write_nothing(
    store: LocalApprovalStore,
    options: dict,
    login: str,
    intent: str,
    kw: dict,
    error: type[Exception],
    needle: str,
) -> None:
    open_gate(store, **options)
    before = snapshot(store)

    with pytest.raises(error) as info:
        decide(store, login, intent, **kw)

    assert needle in str(info.value)
    assert snapshot(store) == before
    assert store.list_votes(GATE) == []
    assert store.get_decision(GATE) is None


def test_invalid_input_reports_every_problem(store: LocalApprovalStore) -> None:
    open_gate(store, input_schema={"deploy_target": "str", "replicas": "int"})
    with pytest.raises(InvalidInput) as info:
        decide(store, "alice", "approve", input={"replicas": "three", "deploy_targte": "prod"})
    assert len(info.value.problems) == 3, info.value.problems


def test_unknown_gate_is_not_found_and_nothing_is_written(store: LocalApprovalStore) -> None:
    open_gate(store)
    before = snapshot(store)
    with pytest.raises(GateNotFound) as info:
        gates.decide(
            store, GateId("Other", "1", "gate"), actor=actor("alice"), intent="approve", now=SOON
        )
    assert "Other/1/gate" in str(info.value)
    assert snapshot(store) == before


# -- first decision wins ----------------------------------------------------------------------


def test_after_a_decision_everyone_is_told_who_won(store: LocalApprovalStore) -> None:
    open_gate(store)
    won = decide(store, "alice", "approve").decision
    before = snapshot(store)

    with pytest.raises(AlreadyDecided) as info:
        decide(store, "bob", "reject", at=LATER, reason="no")

    assert not isinstance(info.value, TooLate)
    assert info.value.decision == won
    assert "approved by alice" in str(info.value)
    assert "hitl show TrainAndDeploy/1732/gate" in (info.value.hint or "")
    assert snapshot(store) == before


# -- expiry -----------------------------------------------------------------------------------


def test_decision_after_expiry_is_too_late_and_records_the_timeout(
    store: LocalApprovalStore,
) -> None:
    request = open_gate(store, timeout="1h")
    late = request.expires_at + timedelta(seconds=1)

    with pytest.raises(TooLate) as info:
        decide(store, "alice", "approve", at=late)

    stored = store.get_decision(GATE)
    assert stored is not None
    assert info.value.decision == stored
    assert (stored.outcome, stored.proceed, stored.decided_by) == ("timed_out", False, "timeout")
    assert stored.channel == "timeout"
    assert stored.decided_at == late
    assert stored.request_digest == request.digest()
    assert "alice" in str(info.value)
    assert store.list_votes(GATE) == []  # the late vote itself is not recorded


def test_decision_exactly_at_expiry_is_too_late(store: LocalApprovalStore) -> None:
    request = open_gate(store)
    with pytest.raises(TooLate):
        decide(store, "alice", "approve", at=request.expires_at)


def test_on_timeout_approve_proceeds_with_default_input(store: LocalApprovalStore) -> None:
    schema = {
        "type": "object",
        "properties": {"replicas": {"type": "integer", "default": 2}},
        "required": ["replicas"],
    }
    request = open_gate(store, on_timeout="approve", input_schema=schema)
    late = request.expires_at + timedelta(seconds=gates.SKEW_ALLOWANCE_SECONDS)

    with pytest.raises(TooLate) as info:
        decide(store, "alice", "reject", at=late, reason="too late")

    decision = info.value.decision
    assert (decision.outcome, decision.proceed) == ("timed_out", True)
    assert decision.input == {"replicas": 2}
    assert "approved" in str(info.value)


@pytest.mark.parametrize("after", [0.0, 1.0, gates.SKEW_ALLOWANCE_SECONDS - 0.001])
def test_an_approving_timeout_is_left_to_the_gates_own_task_within_the_allowance(
    store: LocalApprovalStore, after: float
) -> None:
    """A clock running ahead of the cluster's never approves a gate early: within the skew
    allowance after the deadline, a decider's vote is refused and nothing is written, and
    ``expire_gate`` records the approving timeout only for the gate's own task."""
    request = open_gate(store, on_timeout="approve", input_schema={"n": "int?"})
    at = request.expires_at + timedelta(seconds=after)
    before = snapshot(store)
    with pytest.raises(DeadlinePassed) as info:
        decide(store, "alice", "approve", at=at, input={"n": 1})
    assert "not recorded" in info.value.message
    assert gates.expire_gate(store, GATE, now=at) is None  # the CLI, the Action, audit --expire
    assert snapshot(store) == before  # nothing written
    timeout = gates.expire_gate(store, GATE, now=at, owner=True)  # the waiting task / step
    assert timeout is not None
    assert (timeout.outcome, timeout.proceed, timeout.decided_at) == ("timed_out", True, at)


def test_a_rejecting_timeout_is_recorded_by_anyone_at_the_deadline(
    store: LocalApprovalStore,
) -> None:
    request = open_gate(store)  # on_timeout="reject": recording it early fails closed
    timeout = gates.expire_gate(store, GATE, now=request.expires_at)
    assert timeout is not None
    assert (timeout.outcome, timeout.proceed) == ("timed_out", False)


def test_late_vote_after_recorded_timeout_names_the_timeout(store: LocalApprovalStore) -> None:
    request = open_gate(store)
    timeout = gates.expire_gate(store, GATE, now=request.expires_at)
    with pytest.raises(AlreadyDecided) as info:
        decide(store, "alice", "approve", at=request.expires_at + timedelta(hours=1))
    assert info.value.decision == timeout
    assert "timed out" in str(info.value)


def test_expire_gate_before_expiry_does_nothing(store: LocalApprovalStore) -> None:
    request = open_gate(store)
    before = snapshot(store)
    assert (
        gates.expire_gate(store, GATE, now=request.expires_at - timedelta(milliseconds=1)) is None
    )
    assert snapshot(store) == before


def test_expire_gate_keeps_an_earlier_decision(store: LocalApprovalStore) -> None:
    request = open_gate(store)
    won = decide(store, "alice", "approve").decision
    assert gates.expire_gate(store, GATE, now=request.expires_at + timedelta(days=1)) == won


# -- gate_status ------------------------------------------------------------------------------


def test_gate_status(store: LocalApprovalStore) -> None:
    request = open_gate(store, min_approvals=2)
    decide(store, "bob", "approve", at=LATER)
    decide(store, "alice", "approve", at=SOON)  # cast second, stamped earlier
    status = gates.gate_status(store, GATE)
    assert status.request == request
    assert status.state == "approved"
    assert [v.actor.login for v in status.votes] == ["alice", "bob"]  # time order


# -- wait_for_decision ------------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.on_sleep: Any = None

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


@pytest.mark.parametrize(
    ("timeout", "poll", "sleeps"),
    [
        pytest.param("5m", 60.0, [60.0] * 5, id="poll-divides-timeout"),
        pytest.param("150s", 60.0, [60.0, 60.0, 30.0], id="last-sleep-shortened"),
        pytest.param("10s", 3600.0, [10.0], id="poll-longer-than-timeout"),
    ],
)
def test_wait_returns_the_timeout_at_expiry_without_oversleeping(
    store: LocalApprovalStore, timeout: str, poll: float, sleeps: list[float]
) -> None:
    request = open_gate(store, timeout=timeout)
    fake = FakeTime(T0)

    decision = gates.wait_for_decision(
        store, GATE, poll_interval=poll, clock=fake.clock, sleep=fake.sleep
    )

    assert fake.sleeps == sleeps
    assert fake.now == request.expires_at
    assert (decision.outcome, decision.decided_by) == ("timed_out", "timeout")
    assert decision.decided_at == request.expires_at
    assert store.get_decision(GATE) == decision


def test_wait_returns_a_decision_made_while_sleeping(store: LocalApprovalStore) -> None:
    open_gate(store)
    fake = FakeTime(T0)

    def approve_on_second_sleep(count: int) -> None:
        if count == 2:
            decide(store, "alice", "approve", at=fake.now)

    fake.on_sleep = approve_on_second_sleep
    decision = gates.wait_for_decision(
        store, GATE, poll_interval=30, clock=fake.clock, sleep=fake.sleep
    )
    assert decision.decided_by == "alice"
    assert fake.sleeps == [30, 30]


def test_wait_on_a_decided_gate_does_not_sleep(store: LocalApprovalStore) -> None:
    open_gate(store)
    won = decide(store, "alice", "approve").decision

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}s on a decided gate")

    assert gates.wait_for_decision(store, GATE, poll_interval=1, sleep=no_sleep) == won


@pytest.mark.parametrize("poll", [0, -1.0], ids=["zero", "negative"])
def test_wait_refuses_a_non_positive_poll_interval(store: LocalApprovalStore, poll: float) -> None:
    open_gate(store)
    with pytest.raises(ConfigError, match="poll_interval"):
        gates.wait_for_decision(store, GATE, poll_interval=poll)


def test_wait_on_an_unknown_gate_is_not_found(store: LocalApprovalStore) -> None:
    with pytest.raises(GateNotFound):
        gates.wait_for_decision(store, GATE, poll_interval=1)


# -- racing writers (deterministic interleavings) --------------------------------------------


class InterleavingStore(LocalApprovalStore):
    """Runs ``after_vote`` right after a vote lands: another process acting in that gap."""

    after_vote: Any = None

    def add_vote(self, vote: Any) -> None:
        super().add_vote(vote)
        hook, self.after_vote = self.after_vote, None
        if hook is not None:
            hook(vote)


@pytest.fixture
def racing_store(tmp_path: Path) -> InterleavingStore:
    return InterleavingStore(tmp_path / "_hitl")


def test_vote_credited_by_a_racing_writer_still_wins(racing_store: InterleavingStore) -> None:
    """alice's vote lands first; bob's process stores "approved by alice" before alice's does.

    The stored decision credits alice, so alice's call must succeed and bob's must be told
    alice won; otherwise nobody is told that their vote decided the gate.
    """
    open_gate(racing_store)
    bob_saw: list[Exception] = []

    def bob_races(_: Any) -> None:
        with pytest.raises(AlreadyDecided) as info:
            decide(racing_store, "bob", "reject", at=LATER, reason="no")
        bob_saw.append(info.value)

    racing_store.after_vote = bob_races
    result = decide(racing_store, "alice", "approve", at=SOON)

    stored = racing_store.get_decision(GATE)
    assert stored is not None
    assert stored.decided_by == "alice"
    assert result.decision == stored
    assert len(bob_saw) == 1
    assert "approved by alice" in str(bob_saw[0])


def test_vote_not_credited_by_the_stored_decision_is_told_who_won(
    racing_store: InterleavingStore,
) -> None:
    """bob votes in alice's gap with an earlier stamp: the record credits bob, not alice."""
    open_gate(racing_store)
    bob_results: list[Any] = []

    def bob_races(_: Any) -> None:
        bob_results.append(decide(racing_store, "bob", "reject", at=SOON, reason="no"))

    racing_store.after_vote = bob_races
    with pytest.raises(AlreadyDecided) as info:
        decide(racing_store, "alice", "approve", at=LATER)

    assert info.value.decision.decided_by == "bob"
    assert "rejected by bob" in str(info.value)
    assert bob_results[0].decision == info.value.decision


class _DecisionWriteFails(LocalApprovalStore):
    """A store whose first decision write fails after the vote was stored (S3 5xx)."""

    failed = False

    def create_decision(self, decision):  # type: ignore[no-untyped-def]
        if not self.failed:
            self.failed = True
            raise OSError("503 SlowDown")
        return super().create_decision(decision)


def test_a_retry_after_a_failed_decision_write_reports_its_own_success(tmp_path: Path) -> None:
    """The retry's decision is built from the same person's stored first vote: it is theirs."""
    store = _DecisionWriteFails(tmp_path / "_hitl")
    gates.open_gate(store, build_request(input_schema={"target": "str"}))
    with pytest.raises(OSError, match="503 SlowDown"):
        gates.decide(
            store,
            GATE,
            actor=actor("alice", SOON),
            intent="approve",
            input={"target": "a"},
            now=SOON,
        )
    result = gates.decide(
        store, GATE, actor=actor("alice", LATER), intent="approve", input={"target": "a"}, now=LATER
    )
    assert result.decision is not None
    assert (result.decision.outcome, result.decision.decided_by) == ("approved", "alice")
    with pytest.raises(AlreadyDecided):  # someone else afterwards is still told who won
        gates.decide(
            store, GATE, actor=actor("bob", LATER), intent="reject", reason="no", now=LATER
        )


@pytest.mark.parametrize(
    ("first", "retry", "stands"),
    [
        ({"intent": "reject", "reason": "A"}, {"intent": "reject", "reason": "B"}, "'B'"),
        ({"intent": "reject", "reason": "A"}, {"intent": "reject", "reason": None}, "reason None"),
        (
            {"intent": "approve", "input": {"target": "a"}},
            {"intent": "approve", "input": {"target": "b"}},
            "this input",
        ),
    ],
)
def test_a_same_person_retry_with_other_words_is_told_the_earlier_vote_stands(
    tmp_path: Path, first: dict, retry: dict, stands: str
) -> None:
    """Issue 18: alice's ``--reason A`` was stored, the decision write failed; her retry
    ``--reason B`` finds the decision built from A. She is told A stands, not that B was
    recorded (and an identical retry still reports its own success, above)."""
    store = _DecisionWriteFails(tmp_path / "_hitl")
    gates.open_gate(store, build_request(input_schema={"target": "str"}))
    with pytest.raises(OSError, match="503 SlowDown"):
        gates.decide(store, GATE, actor=actor("alice", SOON), now=SOON, **first)
    with pytest.raises(AlreadyDecided) as info:
        gates.decide(store, GATE, actor=actor("alice", LATER), now=LATER, **retry)
    decision = info.value.decision
    assert decision.reason == first.get("reason")
    assert dict(decision.input or {}) == first.get("input", {})
    assert "earlier" in str(info.value)
    assert "stands" in str(info.value)
    assert stands in str(info.value)


def test_the_default_schedule_polls_fast_then_backs_off_to_its_ceiling(
    store: LocalApprovalStore,
) -> None:
    from metaflow_hitl.polling import DEFAULT_SCHEDULE

    request = open_gate(store, timeout="1h")
    fake = FakeTime(request.created_at)
    gates.wait_for_decision(
        store, GATE, poll_interval=DEFAULT_SCHEDULE, clock=fake.clock, sleep=fake.sleep
    )
    # 0.1 s while younger than 30 s, 1 s until 5 min, then 5 s: bounded, never past expiry
    assert set(fake.sleeps[:300]) == {0.1}
    assert set(fake.sleeps[301:570]) == {1.0}
    assert max(fake.sleeps) == 5.0
    assert fake.now == request.expires_at
    assert 1200 < len(fake.sleeps) < 1260  # reads in the first hour (0.1 s fixed: 36,000)


def test_a_rejoined_old_gate_polls_gently_at_once(store: LocalApprovalStore) -> None:
    from metaflow_hitl.polling import DEFAULT_SCHEDULE

    request = open_gate(store, timeout="1h")
    fake = FakeTime(request.created_at + timedelta(minutes=20))  # a retried task, 20 min on
    fake.on_sleep = lambda count: count == 3 and decide(store, "alice", "approve", at=fake.now)
    gates.wait_for_decision(
        store, GATE, poll_interval=DEFAULT_SCHEDULE, clock=fake.clock, sleep=fake.sleep
    )
    assert fake.sleeps == [5.0, 5.0, 5.0]


@pytest.mark.parametrize(
    "phases", [((30.0, 0.0),), ((300.0, 1.0), (30.0, 0.1))], ids=["zero", "unsorted"]
)
def test_a_bad_schedule_is_refused(phases: Any) -> None:
    from metaflow_hitl.polling import PollSchedule

    with pytest.raises(ValueError, match="not a poll schedule"):
        PollSchedule(phases=phases, ceiling=5.0)
