"""The waiting task's heartbeat: written at most every beat, never failing the wait, judged
only for pending local gates that have one (``metaflow_hitl/liveness.py``)."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import timedelta

from metaflow_hitl.errors import StoreError
from metaflow_hitl.gates import expire_gate, gate_status, wait_for_decision
from metaflow_hitl.liveness import chain, heartbeat, lease_for, nobody_waiting, read_waiter
from metaflow_hitl.polling import DEFAULT_SCHEDULE
from metaflow_hitl.records import Waiter
from metaflow_hitl.reminders import remind_pending
from metaflow_hitl.stores.memory import MemoryApprovalStore
from tests.support.builders import GATE, T0, build_request


def _beats(store: MemoryApprovalStore, request, seconds: list[float], beat: float = 30) -> list:
    on_poll = heartbeat(store, request, host="h", pid=7, lease_seconds=90, beat=beat)
    seen = []
    for s in seconds:
        on_poll(T0 + timedelta(seconds=s))
        seen.append(store.get_waiter(request.gate_id))
    return seen


def test_a_beat_is_written_at_most_every_beat_seconds() -> None:
    store = MemoryApprovalStore()
    request = build_request()
    store.create_request(request)
    seen = _beats(store, request, [0, 0.1, 29.9, 30, 45, 61])
    assert [w.beat_at - T0 for w in seen] == [
        timedelta(0),
        timedelta(0),
        timedelta(0),
        timedelta(seconds=30),
        timedelta(seconds=30),
        timedelta(seconds=61),
    ]
    assert {w.started_at for w in seen} == {T0}
    assert {(w.host, w.pid, w.lease_seconds) for w in seen} == {("h", 7, 90)}


class _BrokenStore(MemoryApprovalStore):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    def put_waiter(self, waiter: Waiter) -> None:
        if self.fail:
            raise StoreError("s3://b/k: SlowDown")
        super().put_waiter(waiter)


def test_a_failed_beat_is_reported_once_and_retried_never_raised() -> None:
    store = _BrokenStore()
    request = build_request()
    store.create_request(request)
    said: list[str] = []
    on_poll = heartbeat(store, request, host="h", pid=1, lease_seconds=90, echo=said.append)
    on_poll(T0)
    on_poll(T0 + timedelta(seconds=1))
    assert len(said) == 1
    assert "SlowDown" in said[0]
    store.fail = False
    on_poll(T0 + timedelta(seconds=2))  # not throttled: the last beat never landed
    assert store.get_waiter(GATE) is not None


def test_the_lease_outlasts_three_beats_or_three_polls() -> None:
    assert lease_for(DEFAULT_SCHEDULE) == 90
    assert lease_for(0.1) == 90
    assert lease_for(300.0) == 900  # beats happen on polls: a slow poll spaces them out


def test_only_a_pending_local_gate_with_a_stale_beat_has_nobody_waiting() -> None:
    local = build_request()
    argo = replace(local, runtime="argo-workflows")
    w = Waiter(gate_id=GATE, host="h", pid=1, started_at=T0, beat_at=T0, lease_seconds=90)
    assert not nobody_waiting(local, w, T0 + timedelta(seconds=90))  # within the lease
    assert nobody_waiting(local, w, T0 + timedelta(seconds=91))
    assert not nobody_waiting(local, None, T0 + timedelta(days=9))  # never beat: unknown
    assert not nobody_waiting(argo, w, T0 + timedelta(days=9))  # a suspend node: not judged


def test_a_decided_gate_reads_no_heartbeat() -> None:
    store = MemoryApprovalStore()
    request = build_request()
    store.create_request(request)
    store.put_waiter(
        Waiter(gate_id=GATE, host="h", pid=1, started_at=T0, beat_at=T0, lease_seconds=90)
    )
    assert read_waiter(store, request, None) is not None
    decision = expire_gate(store, GATE, now=request.expires_at, owner=True)
    assert read_waiter(store, request, decision) is None
    assert not gate_status(store, GATE).nobody_waiting


def test_the_wait_beats_and_a_killed_waiters_gate_is_not_reminded() -> None:
    """wait_for_decision's on_poll carries the beat; once it stops, remind_pending skips."""
    store = MemoryApprovalStore()
    request = build_request(remind_every="10m")
    store.create_request(request)
    clock = iter([T0 + timedelta(seconds=s) for s in (0, 60, 3600)])
    polls = []

    def sleep(_seconds: float) -> None:
        polls.append(1)
        if len(polls) == 2:
            raise KeyboardInterrupt  # the run is killed while it waits

    with contextlib.suppress(KeyboardInterrupt):
        wait_for_decision(
            store,
            GATE,
            poll_interval=DEFAULT_SCHEDULE,
            clock=lambda: next(clock),
            sleep=sleep,
            on_poll=chain(heartbeat(store, request, host="h", pid=1, lease_seconds=90), None),
        )
    last = store.get_waiter(GATE)
    assert last is not None
    assert last.beat_at == T0 + timedelta(seconds=60)
    due = T0 + timedelta(minutes=11)  # reminder 1 is due; the last beat is 10 minutes old
    killed, problems = remind_pending(store, now=due, sent_by="t", dry_run=True)
    assert (killed, problems) == ([], [])
    store.put_waiter(replace(last, beat_at=due - timedelta(seconds=5)))  # a live waiter
    alive, _ = remind_pending(store, now=due, sent_by="t", dry_run=True)
    assert [r.gate_id for r in alive] == [GATE]
