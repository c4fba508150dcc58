"""The gated step after its suspend node ends (Argo): the recorded decision is the only
authority — a node resumed by hand without one never runs the step."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from metaflow_hitl import gates
from metaflow_hitl.argo.after_suspend import decision_after_resume, recorded_request
from metaflow_hitl.errors import GateNotFound, ResumedWithoutDecision
from metaflow_hitl.records import Decision
from metaflow_hitl.stores.local import LocalApprovalStore
from tests.support.builders import GATE, T0, actor, build_request

EXPIRY = T0 + timedelta(hours=1)


@pytest.fixture
def store(tmp_path: Path) -> LocalApprovalStore:
    store = LocalApprovalStore(tmp_path / "_hitl")
    gates.open_gate(store, build_request(input_schema={"target": "str"}))
    return store


def after_resume(store: LocalApprovalStore, **options: Any) -> tuple[Decision, bool]:
    return decision_after_resume(store, recorded_request(store, GATE), **options)


def test_an_approval_is_followed(store: LocalApprovalStore) -> None:
    gates.decide(
        store, GATE, actor=actor("bob"), intent="approve", input={"target": "prod"}, now=T0
    )
    decision, expired = decision_after_resume(
        store, recorded_request(store, GATE), clock=lambda: T0
    )
    assert (decision.outcome, decision.proceed, dict(decision.input)) == (
        "approved",
        True,
        {"target": "prod"},
    )
    assert not expired


def test_a_rejection_is_followed(store: LocalApprovalStore) -> None:
    gates.decide(store, GATE, actor=actor("bob"), intent="reject", reason="no", now=T0)
    decision, _ = after_resume(store, clock=lambda: T0)
    assert (decision.outcome, decision.proceed) == ("rejected", False)


def test_a_resume_by_hand_before_expiry_is_refused_and_records_nothing(
    store: LocalApprovalStore,
) -> None:
    with pytest.raises(ResumedWithoutDecision) as caught:
        after_resume(store, clock=lambda: T0 + timedelta(minutes=5))
    assert "resumed (by hand, in the Argo UI or CLI?)" in caught.value.message
    assert "2026-11-25T11:00:00.123Z" in caught.value.message
    assert "argo retry" in (caught.value.hint or "")
    assert store.get_decision(GATE) is None


def test_after_expiry_the_timeout_is_recorded_and_reported(store: LocalApprovalStore) -> None:
    decision, expired = decision_after_resume(
        store, recorded_request(store, GATE), clock=lambda: EXPIRY
    )
    assert (decision.outcome, decision.decided_by, decision.proceed) == (
        "timed_out",
        "timeout",
        False,
    )
    assert expired
    assert store.get_decision(GATE) == decision
    again, _ = decision_after_resume(
        store, recorded_request(store, GATE), clock=lambda: EXPIRY + timedelta(hours=1)
    )
    assert again == decision  # first decision wins


def test_a_pod_clock_slightly_behind_the_controller_waits_out_the_expiry(
    store: LocalApprovalStore,
) -> None:
    now = [EXPIRY - timedelta(seconds=30)]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += timedelta(seconds=seconds)

    decision, expired = decision_after_resume(
        store, recorded_request(store, GATE), clock=lambda: now[0], sleep=sleep
    )
    assert slept == [30.0]
    assert decision.outcome == "timed_out"
    assert expired


def test_beyond_the_grace_nothing_is_waited_for(store: LocalApprovalStore) -> None:
    slept: list[float] = []
    with pytest.raises(ResumedWithoutDecision):
        decision_after_resume(
            store,
            recorded_request(store, GATE),
            clock=lambda: EXPIRY - timedelta(seconds=121),
            sleep=slept.append,
        )
    assert slept == []


def test_no_request_means_the_notify_task_never_ran(tmp_path: Path) -> None:
    empty = LocalApprovalStore(tmp_path / "empty")
    with pytest.raises(GateNotFound, match="hitl-notify task of this step did not record one"):
        recorded_request(empty, GATE)
