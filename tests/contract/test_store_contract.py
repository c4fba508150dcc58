"""One behaviour suite for every :class:`~metaflow_hitl.ports.ApprovalStore`.

Each store is described by a :class:`~tests.contract.store_kinds.StoreKind` in
:data:`~tests.contract.store_kinds.STORE_KINDS`; add a kind and every test below runs against it
too (the ``kind`` and ``store`` fixtures are in ``tests/contract/conftest.py``). A kind says how
to make an empty store, how to reopen it in a racing process, and how to list what a writer may
have left behind, so the tests themselves only call the port's methods.

The ``s3`` kind runs against a moto S3 server on 127.0.0.1 (an ephemeral port, in its own
process, started once per session by the ``moto_s3`` fixture), with a new bucket per test and dummy
credentials in the environment; it is skipped when moto or boto3 is not installed.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from metaflow_hitl import gates
from metaflow_hitl.errors import AlreadyDecided, RecordError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Actor, PageChange, Publication, Reminder
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now
from tests.contract.store_kinds import (
    GATE,
    T0,
    StoreKind,
    make_decision,
    make_request,
    make_vote,
    racing,
)

# -- requests ---------------------------------------------------------------------------------


def test_a_store_says_whether_it_is_remote(store: ApprovalStore, kind: StoreKind) -> None:
    """``is_remote`` replaces sniffing ``"://"`` in the location: reads are overlapped in
    threads only on a remote store, and only a local store gets a default review repo."""
    assert store.is_remote is (kind.name == "s3")
    assert kind.reopen(store).is_remote is store.is_remote


def test_empty_store_has_nothing(store: ApprovalStore) -> None:
    assert store.get_request(GATE) is None
    assert store.get_decision(GATE) is None
    assert store.list_votes(GATE) == []
    assert list(store.list_gates(pending_only=False)) == []
    assert list(store.list_gates(pending_only=True)) == []


def test_create_request_is_create_if_absent(store: ApprovalStore) -> None:
    first = make_request()
    second = make_request(now=T0 + timedelta(hours=1), message="a retry")

    assert store.create_request(first) is True
    assert store.create_request(second) is False
    assert store.create_request(first) is False
    assert store.get_request(GATE) == first


def test_requests_of_different_gates_are_separate(store: ApprovalStore) -> None:
    other = GateId("TrainAndDeploy", "1733", "gate")
    assert store.create_request(make_request()) is True
    assert store.create_request(make_request(other)) is True
    stored = store.get_request(other)
    assert stored is not None
    assert stored.gate_id == other


# -- decisions --------------------------------------------------------------------------------


def test_create_decision_returns_the_winner(store: ApprovalStore) -> None:
    store.create_request(make_request())
    first = make_decision("alice")
    second = make_decision("bob", "rejected", reason="no")

    assert store.create_decision(first) == first
    assert store.create_decision(second) == first
    assert store.get_decision(GATE) == first


def test_decision_round_trips_exactly(store: ApprovalStore) -> None:
    store.create_request(make_request())
    decision = replace(make_decision("alice"), input={"deploy_target": "prod", "n": [1, 2.5]})
    store.create_decision(decision)
    assert store.get_decision(GATE) == decision


# -- listing ----------------------------------------------------------------------------------

GATES = [
    GateId("TrainAndDeploy", "1", "gate"),
    GateId("TrainAndDeploy", "2", "gate"),
    GateId("TrainAndDeploy", "2", "second_gate"),
    GateId("Other", "argo-other-x7k2p", "gate"),
]


@pytest.fixture
def listed(store: ApprovalStore) -> ApprovalStore:
    for gate in GATES:
        store.create_request(make_request(gate))
    store.create_decision(make_decision("alice", gate=GATES[1]))
    return store


def test_list_gates_all(listed: ApprovalStore) -> None:
    assert set(listed.list_gates(pending_only=False)) == set(GATES)


def test_list_gates_pending_only_excludes_decided(listed: ApprovalStore) -> None:
    assert set(listed.list_gates(pending_only=True)) == set(GATES) - {GATES[1]}


@pytest.mark.parametrize(
    ("flow", "pending_only", "expected"),
    [
        pytest.param("TrainAndDeploy", False, GATES[:3], id="one-flow-all"),
        pytest.param("TrainAndDeploy", True, [GATES[0], GATES[2]], id="one-flow-pending"),
        pytest.param("Other", True, GATES[3:], id="other-flow-pending"),
        pytest.param("Missing", False, [], id="unknown-flow"),
        pytest.param("..", False, [], id="dotdot-flow"),
        pytest.param("../v1/gates", False, [], id="path-trick-flow"),
    ],
)
def test_list_gates_flow_filter(
    listed: ApprovalStore, flow: str, pending_only: bool, expected: list[GateId]
) -> None:
    assert set(listed.list_gates(pending_only=pending_only, flow=flow)) == set(expected)


def test_list_gates_yields_gate_ids(listed: ApprovalStore) -> None:
    assert all(isinstance(g, GateId) for g in listed.list_gates(pending_only=False))


# -- votes ------------------------------------------------------------------------------------


def test_votes_are_appended_and_listed(store: ApprovalStore) -> None:
    other = GateId("TrainAndDeploy", "9", "gate")
    store.create_request(make_request())
    store.create_request(make_request(other))
    votes = [
        make_vote("alice", second=0),
        make_vote("alice", "withdraw", second=1),
        make_vote("bob", "reject", second=1),  # same instant as alice's withdraw
    ]
    for vote in votes:
        store.add_vote(vote)
    store.add_vote(make_vote("carol", gate=other))

    listed = store.list_votes(GATE)
    assert sorted(listed, key=lambda v: v.nonce) == sorted(votes, key=lambda v: v.nonce)
    assert [v.actor.login for v in store.list_votes(other)] == ["carol"]


def test_votes_after_a_decision_are_still_listed(store: ApprovalStore) -> None:
    store.create_request(make_request())
    store.add_vote(make_vote("alice"))
    store.create_decision(make_decision("alice"))
    store.add_vote(make_vote("bob", second=5))
    assert {v.actor.login for v in store.list_votes(GATE)} == {"alice", "bob"}


# -- atomicity --------------------------------------------------------------------------------


def test_no_temporary_objects_are_left_behind(kind: StoreKind, store: ApprovalStore) -> None:
    request = make_request()
    store.create_request(request)
    store.create_request(make_request(message="lost race"))
    for i in range(5):
        store.add_vote(make_vote(f"user{i}", second=i))
    store.create_decision(make_decision("alice"))
    store.create_decision(make_decision("bob"))  # loses
    assert kind.leftovers(store) == []
    assert kind.decision_objects(store, GATE) == kind.decision_objects(store, GATE)[:1]


def test_readers_never_see_a_half_written_record(store: ApprovalStore) -> None:
    """Readers poll while writers create large records; every read is None or whole."""
    gate_ids = [GateId("Big", str(i), "gate") for i in range(40)]
    for gate in gate_ids:
        store.create_request(make_request(gate))
    big = "x" * 90_000  # a large record takes several writes to land
    done = threading.Event()
    seen: dict[GateId, int] = dict.fromkeys(gate_ids, 0)
    problems: list[str] = []

    def read() -> None:
        while not done.is_set():
            for gate in gate_ids:
                try:
                    decision = store.get_decision(gate)
                    votes = store.list_votes(gate)
                except RecordError as exc:  # a torn read
                    problems.append(str(exc)[:200])
                    return
                if decision is not None:
                    assert decision.reason == big
                    seen[gate] += 1
                for vote in votes:
                    assert vote.reason == big

    def write(mine: list[GateId]) -> None:
        for gate in mine:
            store.add_vote(replace(make_vote("alice", gate=gate), reason=big))
            store.create_decision(make_decision("alice", gate=gate, reason=big))

    readers = [threading.Thread(target=read) for _ in range(3)]
    writers = [threading.Thread(target=write, args=(gate_ids[i::2],)) for i in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(timeout=30)
    done.set()
    for t in readers:
        t.join(timeout=30)

    assert problems == []
    assert all(store.get_decision(g) is not None for g in gate_ids)


# -- the race ---------------------------------------------------------------------------------


def _race(
    store: ApprovalStore, login: str, intent: Any, barrier: Any, results: Any
) -> None:  # runs in a forked child (or a thread)
    try:
        barrier.wait(timeout=60)
        result = gates.decide(
            store,
            GATE,
            actor=Actor(login=login, channel="cli", at=utc_now()),
            intent=intent,
            reason=f"{login} says {intent}",
        )
        decision = result.decision
        results.put((login, "decided" if decision else "pending", decision and decision.nonce, ""))
    except AlreadyDecided as exc:
        results.put((login, "already", exc.decision.nonce, str(exc)))
    except BaseException as exc:  # reported, not raised: the parent asserts
        results.put((login, "error", None, repr(exc)))


def test_concurrent_deciders_exactly_one_wins(kind: StoreKind, store: ApprovalStore) -> None:
    store.create_request(make_request(now=utc_now(), timeout="1h"))  # open now, not at T0
    race = racing(kind, kind.racers)
    barrier, results = race.barrier, race.results
    procs = [
        race.worker(
            target=_race,
            args=(
                kind.reopen(store),
                f"racer{i:02d}",
                "approve" if i % 2 else "reject",
                barrier,
                results,
            ),
        )
        for i in range(kind.racers)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        assert race.finished(p)

    errors = [o for o in outcomes if o[1] not in {"decided", "already"}]
    assert errors == []
    stored = store.get_decision(GATE)
    assert stored is not None
    assert kind.decision_objects(store, GATE) == kind.decision_objects(store, GATE)[:1] != []
    assert kind.leftovers(store) == []

    winners = [o for o in outcomes if o[1] == "decided"]
    assert len(winners) == 1, f"expected one winner, got {[w[0] for w in winners]}"
    login, _, nonce, _ = winners[0]
    assert nonce == stored.nonce
    assert stored.decided_by == login
    assert stored.outcome == ("approved" if int(login[-2:]) % 2 else "rejected")

    for loser, state, loser_saw, message in outcomes:
        if loser == login:
            continue
        assert state == "already"
        assert loser_saw == stored.nonce, f"{loser} was told of another decision"
        assert f"by {login}" in message, f"{loser} was not told who won: {message}"
    assert list(store.list_gates(pending_only=True)) == []


# -- reminders --------------------------------------------------------------------------------


def make_reminder(number: int, *, gate: GateId = GATE, by: str = "remind-command") -> Reminder:
    due = T0 + timedelta(hours=4 * number)
    return Reminder(
        gate_id=gate, number=number, due_at=due, sent_at=due + timedelta(seconds=1), sent_by=by
    )


def test_create_reminder_is_create_if_absent_per_number(store: ApprovalStore) -> None:
    store.create_request(make_request())
    assert store.list_reminders(GATE) == []
    first = make_reminder(1)
    assert store.create_reminder(first) is True
    assert store.create_reminder(make_reminder(1, by="waiting-task")) is False
    assert store.create_reminder(make_reminder(2)) is True
    assert store.create_reminder(make_reminder(10)) is True
    other = GateId("TrainAndDeploy", "1733", "gate")
    assert store.create_reminder(make_reminder(1, gate=other)) is True
    listed = store.list_reminders(GATE)
    assert [r.number for r in listed] == [1, 2, 10]  # by number, not by name
    assert listed[0] == first  # the winner's record, exactly
    assert [r.number for r in store.list_reminders(other)] == [1]
    # reminder records are not gates, votes or decisions
    assert list(store.list_gates(pending_only=True)) == [GATE]
    assert store.list_votes(GATE) == []
    assert store.get_decision(GATE) is None


def _race_reminder(store: ApprovalStore, who: str, barrier: Any, results: Any) -> None:
    try:  # runs in a forked child (or a thread)
        barrier.wait(timeout=60)
        results.put((who, store.create_reminder(make_reminder(3, by=who)), ""))
    except BaseException as exc:  # reported, not raised: the parent asserts
        results.put((who, None, repr(exc)))


def test_concurrent_reminder_senders_exactly_one_wins(
    kind: StoreKind, store: ApprovalStore
) -> None:
    store.create_request(make_request())
    race = racing(kind, kind.racers)
    barrier, results = race.barrier, race.results
    procs = [
        race.worker(
            target=_race_reminder,
            args=(kind.reopen(store), f"sender{i:02d}", barrier, results),
        )
        for i in range(kind.racers)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        assert race.finished(p)
    assert [o for o in outcomes if o[1] is None] == []
    winners = [who for who, won, _ in outcomes if won]
    assert len(winners) == 1, f"expected one sender of reminder 3, got {winners}"
    stored = store.list_reminders(GATE)
    assert [(r.number, r.sent_by) for r in stored] == [(3, winners[0])]
    assert kind.leftovers(store) == []


def test_a_flow_filter_that_is_a_path_lists_nothing(tmp_path):

    store = LocalApprovalStore(tmp_path / "_hitl")
    (tmp_path / "_hitl" / "v1" / "gates" / "Flow" / "1" / "step").mkdir(parents=True)
    for flow in ("..", "../..", "Flow/1", "/etc", ""):
        assert list(store.list_gates(pending_only=False, flow=flow or None)) == []


# -- publications and page changes (what the Action checks a GitHub page against) -------------
def make_publication(number: int = 7, *, gate: GateId = GATE) -> Publication:
    return Publication(
        gate_id=gate,
        repo="acme/approvals",
        mode="pr",
        number=number,
        url=f"https://github.com/acme/approvals/pull/{number}",
        file_path=f"approvals/{gate}.md",
        file_sha="a" * 40,
        title_sha256="b" * 64,
        body_sha256="c" * 64,
        published_at=T0,
    )


def test_the_first_publication_stands(store: ApprovalStore) -> None:
    store.create_request(make_request())
    assert store.get_publication(GATE) is None
    first = make_publication(7)
    assert store.create_publication(first) is True
    assert store.create_publication(make_publication(8)) is False  # a retry never re-records
    assert store.get_publication(GATE) == first
    assert store.get_publication(GateId("TrainAndDeploy", "1733", "gate")) is None
    # not a vote, a decision or another gate
    assert list(store.list_gates(pending_only=False)) == [GATE]
    assert store.list_votes(GATE) == []


def test_page_changes_are_appended_and_listed_oldest_first(store: ApprovalStore) -> None:
    store.create_request(make_request())
    assert store.list_page_changes(GATE) == []
    later = PageChange(gate_id=GATE, number=7, seen_at=T0 + timedelta(minutes=2), what="b")
    earlier = PageChange(gate_id=GATE, number=7, seen_at=T0, what="a", by="carol")
    store.add_page_change(later)
    store.add_page_change(earlier)
    store.add_page_change(earlier)  # a retried write of the same record adds nothing
    assert store.list_page_changes(GATE) == [earlier, later]
    assert list(store.list_gates(pending_only=True)) == [GATE]


def test_the_waiter_heartbeat_is_replaced_and_read_back(store: ApprovalStore) -> None:
    """The one record that is rewritten: each beat replaces the last (liveness.py)."""
    from metaflow_hitl.records import Waiter

    store.create_request(make_request())
    assert store.get_waiter(GATE) is None
    first = Waiter(gate_id=GATE, host="laptop", pid=41, started_at=T0, beat_at=T0, lease_seconds=90)
    later = replace(first, beat_at=T0 + timedelta(seconds=30))
    store.put_waiter(first)
    assert store.get_waiter(GATE) == first
    store.put_waiter(later)
    assert store.get_waiter(GATE) == later
    assert store.get_waiter(GateId("TrainAndDeploy", "1733", "gate")) is None
    # a heartbeat is not a decision, a vote or another gate, and the gate stays pending
    assert store.get_decision(GATE) is None
    assert list(store.list_gates(pending_only=True)) == [GATE]
    assert store.list_votes(GATE) == []
