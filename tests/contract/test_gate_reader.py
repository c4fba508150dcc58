"""The gate index is a cache that never changes what :func:`read_gates` returns.

Every test runs on each store kind of :mod:`tests.contract.store_kinds` (a local store
in ``tmp_path``, an S3 store on the moto server, an in-memory store), with gates made through the
production paths (:func:`~metaflow_hitl.gates.open_gate`, :func:`~metaflow_hitl.gates.decide`,
:func:`~metaflow_hitl.gates.expire_gate`, ``store.add_vote``). Reads are counted with a
delegating proxy around the real store, never a mock.

It proves that:

* with and without the index (first read, which builds it, and later reads, which use it)
  the same gates come back, with equal requests, decisions, votes and ``decided``;
* the first read writes one segment holding exactly the decided gates, and later reads take
  those from it without reading any of their records;
* a gate decided, voted on, replaced or deleted behind the index's back is read from the
  store (the index never masks it), and only that gate is read again;
* a damaged segment, a segment written under other checks and a forged segment cost speed
  or raise a clear error, never wrong results; outdated segments are dropped by the next
  unfiltered read, and past ``MAX_SEGMENTS`` segments are merged into one (never by a
  flow-filtered read);
* a store the reader cannot write to still gives correct results, with a warning;
* ``use_index=False`` never touches the index;
* readers racing each other and a decider in several processes neither fail nor disagree.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from metaflow_hitl import gates
from metaflow_hitl.errors import RecordError, StoreError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.index.reader import GateReading, read_gates
from metaflow_hitl.index.segments import MAX_SEGMENTS, IndexedGate, decode_segment, encode_segment
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Actor, Vote, encode_record
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.stores.memory import MemoryApprovalStore
from metaflow_hitl.stores.s3 import S3ApprovalStore
from tests.contract.store_kinds import T0, StoreKind, make_request, racing

# -- gates ------------------------------------------------------------------------------------

FLOWS = ("TrainAndDeploy", "Nightly")
RUNS = ("1732", "argo-nightly-x7k2p")
MESSAGE = "Déployer le modèle v7 ? — モデルを公開しますか 🚀"
REASON = "Précision insuffisante — 精度が足りない ❌"
#: Every decide happens here: before any request (opened at T0, 24 h) expires.
DECIDE_AT = T0 + timedelta(minutes=30)


def gate_for(i: int, flow: str | None = None) -> GateId:
    """Gate ``i``: over two flows, two runs and a step per gate."""
    return GateId(flow or FLOWS[i % 2], RUNS[(i // 2) % 2], f"gate_{i}")


def actor(login: str, second: int = 0) -> Actor:
    return Actor(login=login, channel="cli", at=T0 + timedelta(minutes=5, seconds=second))


def add_gate(store: ApprovalStore, gate: GateId, outcome: str, i: int = 0) -> None:
    """Open ``gate`` and bring it to ``outcome``: ``pending``, ``voted`` (pending, one of two
    approvals), ``approved`` (two of two), ``rejected`` or ``timed_out``."""
    options: dict[str, Any] = {}
    if outcome in ("approved", "voted"):
        options["min_approvals"] = 2
    if outcome == "timed_out":
        options["timeout"] = "1h"
    if i % 3 == 0 or outcome == "rejected":
        options["message"] = MESSAGE
    request, created = gates.open_gate(store, make_request(gate, **options))
    assert created
    if outcome in ("approved", "voted"):
        gates.decide(store, gate, actor=actor("alice", i), intent="approve", now=DECIDE_AT)
    if outcome == "approved":
        bob = actor("bob", i + 1)
        result = gates.decide(
            store, gate, actor=bob, intent="approve", reason="Ça marche ✓", now=DECIDE_AT
        )
        assert result.decision is not None
    elif outcome == "rejected":
        result = gates.decide(
            store, gate, actor=actor("carol", i), intent="reject", reason=REASON, now=DECIDE_AT
        )
        assert result.decision is not None
    elif outcome == "timed_out":
        decision = gates.expire_gate(store, gate, now=request.expires_at + timedelta(seconds=1))
        assert decision is not None
        assert decision.outcome == "timed_out"


def approve(store: ApprovalStore, gate: GateId, login: str = "dave") -> None:
    """Decide a pending gate (min_approvals 1) or complete a ``voted`` one (2)."""
    result = gates.decide(store, gate, actor=actor(login, 30), intent="approve", now=DECIDE_AT)
    assert result.decision is not None


@dataclass
class Mix:
    pending: list[GateId]
    decided: list[GateId]

    @property
    def all(self) -> list[GateId]:
        return self.pending + self.decided


MIXES = {
    "mixed": ["pending", "approved", "rejected", "timed_out", "voted", "approved", "rejected"],
    "all-decided": ["approved", "rejected", "timed_out", "approved", "rejected", "timed_out"],
    "all-pending": ["pending", "voted", "pending", "voted"],
    "empty": [],
}


def populate(store: ApprovalStore, outcomes: list[str], *, flow: str | None = None) -> Mix:
    mix = Mix(pending=[], decided=[])
    for i, outcome in enumerate(outcomes):
        gate = gate_for(i, flow)
        add_gate(store, gate, outcome, i)
        (mix.pending if outcome in ("pending", "voted") else mix.decided).append(gate)
    return mix


# -- a counting proxy -------------------------------------------------------------------------


class CountingStore:
    """The real store, with calls to the index and record methods counted."""

    COUNTED = (
        "read_record",
        "list_index_segments",
        "get_index_segment",
        "create_index_segment",
        "delete_index_segment",
    )

    def __init__(self, inner: ApprovalStore) -> None:
        self.inner = inner
        self.calls: dict[str, list[tuple[Any, ...]]] = {name: [] for name in self.COUNTED}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self.COUNTED:
            return attr

        def counted(*args: Any) -> Any:
            self.calls[name].append(args)
            return attr(*args)

        return counted

    def reset(self) -> None:
        for calls in self.calls.values():
            calls.clear()

    def records_read_of(self) -> set[GateId]:
        """The gates a record was read of."""
        return {args[0] for args in self.calls["read_record"]}

    def as_store(self) -> ApprovalStore:
        return cast(ApprovalStore, self)


class ReadOnlyStore(CountingStore):
    """The real store under a credential that may read but not write the index."""

    def create_index_segment(self, name: str, data: bytes) -> bool:
        self.calls["create_index_segment"].append((name, data))
        raise StoreError("denied")

    def delete_index_segment(self, name: str) -> None:
        self.calls["delete_index_segment"].append((name,))
        raise StoreError("denied")


# -- comparing readings -----------------------------------------------------------------------


def snapshot(reading: GateReading) -> dict[str, tuple[Any, ...]]:
    """Each gate's decoded records, by gate id (no gate twice)."""
    ids = [str(g.gate_id) for g in reading.gates]
    assert len(ids) == len(set(ids)), f"a gate came back twice: {sorted(ids)}"
    return {
        str(g.gate_id): (
            g.request.to_dict(),
            None if g.decision is None else g.decision.to_dict(),
            [v.to_dict() for v in g.votes],
            g.decided,
        )
        for g in reading.gates
    }


def assert_same(reading: GateReading, store: ApprovalStore, **query: Any) -> None:
    """``reading`` equals what reading every record returns."""
    reference = read_gates(store, use_index=False, **query)
    assert (reference.from_index, reference.segments_written) == (0, 0)
    got, want = snapshot(reading), snapshot(reference)
    assert sorted(got) == sorted(want)
    for gate_id in want:
        assert got[gate_id] == want[gate_id], gate_id


def segments(store: ApprovalStore) -> list[str]:
    return sorted(store.list_index_segments())


def segment_gates(store: ApprovalStore, name: str) -> set[str]:
    data = store.get_index_segment(name)
    assert data is not None
    return set(decode_segment(name, data, where=name).gates)


def ids(gate_ids: list[GateId]) -> set[str]:
    return {str(g) for g in gate_ids}


# -- changing the store behind the index's back ------------------------------------------------


def outdate_the_only_segment(store: ApprovalStore) -> str:
    """Replace the store's one segment by the same gates written under other record checks
    (as an older release would have); return the outdated segment's name."""
    [genuine] = segments(store)
    data = store.get_index_segment(genuine)
    assert data is not None
    doc = json.loads(gzip.decompress(data))
    doc["checks"] = "sha256:" + "0" * 64
    outdated = gzip.compress(json.dumps(doc).encode("utf-8"), mtime=0)
    name = hashlib.sha256(outdated).hexdigest() + ".json.gz"
    assert store.create_index_segment(name, outdated) is True
    store.delete_index_segment(genuine)
    return name


def gate_folder(store: ApprovalStore, gate: GateId) -> str:
    """The gate's folder: a path (local) or a key prefix (S3)."""
    if isinstance(store, LocalApprovalStore):
        return str(Path(store.root, "v1", "gates", gate.flow, gate.run_id, gate.step))
    assert isinstance(store, S3ApprovalStore)
    return f"{store.prefix}/v1/gates/{gate.flow}/{gate.run_id}/{gate.step}"


def segment_place(store: ApprovalStore, name: str) -> str:
    if isinstance(store, LocalApprovalStore):
        return str(Path(store.root, "v1", "index", "decided", name))
    assert isinstance(store, S3ApprovalStore)
    return f"{store.prefix}/v1/index/decided/{name}"


def replace_record(store: ApprovalStore, gate: GateId, name: str, data: bytes) -> None:
    """Replace a record in place, the way no production path does."""
    if isinstance(store, MemoryApprovalStore):  # behind its back, as rename is for local
        with store._lock:
            store._gates[gate][name] = (str(next(store._tags)), data)
        return
    where = f"{gate_folder(store, gate)}/{name}"
    if isinstance(store, LocalApprovalStore):
        old_inode = os.stat(where).st_ino
        spare = Path(store.root).parent / "replacement.json"
        spare.write_bytes(data)  # made while the old file exists: another inode
        os.unlink(where)
        os.rename(spare, where)
        assert os.stat(where).st_ino != old_inode
    else:
        assert isinstance(store, S3ApprovalStore)
        store.client.put_object(Bucket=store.bucket, Key=where, Body=data)


def delete_gate(store: ApprovalStore, gate: GateId) -> None:
    if isinstance(store, MemoryApprovalStore):
        with store._lock:
            del store._gates[gate]
            store._pending.discard(gate)
        return
    if isinstance(store, LocalApprovalStore):
        shutil.rmtree(gate_folder(store, gate))
        pending = Path(store.root, "v1", "pending", gate.flow, gate.run_id, gate.step)
        pending.unlink(missing_ok=True)
        return
    assert isinstance(store, S3ApprovalStore)
    pages = store.client.get_paginator("list_objects_v2").paginate(
        Bucket=store.bucket, Prefix=gate_folder(store, gate) + "/"
    )
    keys = [item["Key"] for page in pages for item in page.get("Contents", ())]
    keys.append(f"{store.prefix}/v1/pending/{gate.flow}/{gate.run_id}/{gate.step}")
    assert len(keys) > 1
    for key in keys:
        store.client.delete_object(Bucket=store.bucket, Key=key)


def overwrite_segment(store: ApprovalStore, name: str, data: bytes) -> None:
    """Put other bytes under a segment's name (local: in place, the same inode)."""
    if isinstance(store, MemoryApprovalStore):
        with store._lock:
            store._segments[name] = data
        return
    where = segment_place(store, name)
    if isinstance(store, LocalApprovalStore):
        with open(where, "r+b") as fh:
            fh.write(data)
    else:
        assert isinstance(store, S3ApprovalStore)
        store.client.put_object(Bucket=store.bucket, Key=where, Body=data)


# -- 1. equivalence ---------------------------------------------------------------------------


@pytest.mark.parametrize("mix_name", list(MIXES))
def test_index_returns_what_the_records_hold(store: ApprovalStore, mix_name: str) -> None:
    mix = populate(store, MIXES[mix_name])
    first = read_gates(store)
    assert_same(first, store)
    assert ids([g.gate_id for g in first.gates]) == ids(mix.all)
    second = read_gates(store)
    assert_same(second, store)
    assert second.from_index == len(mix.decided)
    third = read_gates(store, parallel=True)
    assert_same(third, store)
    assert third.from_index == len(mix.decided)
    assert first.warnings == second.warnings == third.warnings == []


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"decided_only": True}, id="decided-only"),
        pytest.param({"flow": "Nightly"}, id="flow"),
        pytest.param({"flow": "TrainAndDeploy", "decided_only": True}, id="flow-decided-only"),
        pytest.param({"flow": "Missing"}, id="unknown-flow"),
    ],
)
def test_filtered_reads_return_what_the_records_hold(
    store: ApprovalStore, query: dict[str, Any]
) -> None:
    mix = populate(store, MIXES["mixed"])
    first = read_gates(store, **query)
    assert_same(first, store, **query)
    second = read_gates(store, **query)
    assert_same(second, store, **query)
    flow = query.get("flow")
    decided = [g for g in mix.decided if flow in (None, g.flow)]
    pending = [g for g in mix.pending if flow in (None, g.flow)]
    expected = decided if query.get("decided_only") else decided + pending
    assert ids([g.gate_id for g in second.gates]) == ids(expected)
    assert second.from_index == len(decided)
    assert second.from_records == len(expected) - len(decided)
    # then an unfiltered read agrees too
    assert_same(read_gates(store), store)


# -- 2. the first read writes the index, the second uses it ------------------------------------


def test_first_read_writes_one_segment_second_reads_no_decided_record(
    store: ApprovalStore,
) -> None:
    mix = populate(store, MIXES["mixed"])
    proxy = CountingStore(store)

    first = read_gates(proxy.as_store())
    assert (first.from_index, first.from_records) == (0, len(mix.all))
    assert first.segments_written == 1
    assert len(proxy.calls["create_index_segment"]) == 1
    assert proxy.calls["delete_index_segment"] == []
    [name] = segments(store)
    assert segment_gates(store, name) == ids(mix.decided)

    proxy.reset()
    second = read_gates(proxy.as_store())
    assert second.from_index == len(mix.decided)
    assert second.from_records == len(mix.pending)
    assert proxy.records_read_of() == set(mix.pending)  # no record of a decided gate
    assert second.segments_written == 0
    assert proxy.calls["create_index_segment"] == proxy.calls["delete_index_segment"] == []
    assert segments(store) == [name]
    assert_same(second, store)


# -- 3. a gate decided after the index was built ------------------------------------------------


def test_a_newly_decided_gate_is_read_once_then_indexed(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    read_gates(store)
    late = mix.pending[0]
    approve(store, late)
    still_pending = mix.pending[1:]
    proxy = CountingStore(store)

    after = read_gates(proxy.as_store())
    assert proxy.records_read_of() == {late, *still_pending}
    assert after.from_index == len(mix.decided)
    assert after.from_records == len(still_pending) + 1
    assert after.segments_written == 1
    assert len(segments(store)) == 2
    assert_same(after, store)
    assert {str(g.gate_id): g.decided for g in after.gates}[str(late)] is True

    proxy.reset()
    again = read_gates(proxy.as_store())
    assert proxy.records_read_of() == set(still_pending)
    assert again.from_index == len(mix.decided) + 1
    assert again.segments_written == 0
    assert len(segments(store)) == 2


# -- 4. a late vote on an indexed gate ---------------------------------------------------------


def test_a_late_vote_on_an_indexed_gate_is_read(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    read_gates(store)
    target = mix.decided[0]
    vote = Vote(gate_id=target, intent="approve", actor=actor("erin", 59), reason="après coup")
    store.add_vote(vote)
    proxy = CountingStore(store)

    after = read_gates(proxy.as_store())
    assert target in proxy.records_read_of()
    assert after.from_records == len(mix.pending) + 1
    assert after.from_index == len(mix.decided) - 1
    [gate] = [g for g in after.gates if g.gate_id == target]
    assert vote.nonce in [v.nonce for v in gate.votes]
    assert_same(after, store)

    proxy.reset()
    again = read_gates(proxy.as_store())  # the gate with its new vote is indexed now
    assert proxy.records_read_of() == set(mix.pending)
    [gate] = [g for g in again.gates if g.gate_id == target]
    assert vote.nonce in [v.nonce for v in gate.votes]
    assert_same(again, store)


# -- 5. a record replaced behind the index's back -----------------------------------------------


def test_a_replaced_record_is_read_not_masked(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    read_gates(store)
    target = mix.decided[1]
    old = store.get_decision(target)
    assert old is not None
    new = replace(old, reason="rewritten by hand — réécrit")
    replace_record(store, target, "decision.json", encode_record(new))
    proxy = CountingStore(store)

    for _ in range(2):  # the read that re-indexes it, and the one that uses the new entry
        reading = read_gates(proxy.as_store())
        [gate] = [g for g in reading.gates if g.gate_id == target]
        assert gate.decision is not None
        assert gate.decision.reason == "rewritten by hand — réécrit"
        assert gate.decision.to_dict() == new.to_dict()
        assert_same(reading, store)
    assert target in proxy.records_read_of()


# -- 6. a deleted gate ------------------------------------------------------------------------


def test_a_deleted_gate_disappears(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    read_gates(store)
    gone = [mix.decided[0], mix.pending[0]]
    for gate in gone:
        delete_gate(store, gate)

    reading = read_gates(store)
    assert ids([g.gate_id for g in reading.gates]) == ids(mix.all) - ids(gone)
    assert_same(reading, store)
    assert reading.from_index == len(mix.decided) - 1


# -- 7. a damaged segment ---------------------------------------------------------------------


def test_a_damaged_segment_is_ignored_with_a_warning(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    read_gates(store)
    [name] = segments(store)
    data = store.get_index_segment(name)
    assert data is not None
    damaged = data[:-8] + bytes(b ^ 0xFF for b in data[-8:])  # same length, other bytes
    overwrite_segment(store, name, damaged)
    assert store.get_index_segment(name) == damaged

    reading = read_gates(store)
    assert_same(reading, store)
    assert reading.from_index == 0
    [warning] = reading.warnings
    assert name in warning
    assert "Delete it" in warning

    again = read_gates(store)  # the gates were indexed again, in a new segment
    assert_same(again, store)
    assert again.from_index == len(mix.decided)
    assert len(again.warnings) == 1


# -- 8. a segment written under other checks ----------------------------------------------------


def test_an_outdated_segment_is_not_used_and_is_merged_away(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    read_gates(store)
    outdated_name = outdate_the_only_segment(store)
    assert segments(store) == [outdated_name]
    proxy = CountingStore(store)

    # a flow-filtered read does not use it, and merges it away: its other flows' entries
    # were validated under other checks, so they are not carried over
    flow = "Nightly"
    filtered = read_gates(proxy.as_store(), flow=flow)
    assert_same(filtered, store, flow=flow)
    assert filtered.from_index == 0
    assert {g for g in mix.decided if g.flow == flow} <= proxy.records_read_of()
    assert outdated_name not in segments(store)
    [nightly] = segments(store)
    assert segment_gates(store, nightly) == ids([g for g in mix.decided if g.flow == flow])

    # the next unfiltered read reads the other flows' gates once and indexes them
    proxy.reset()
    unfiltered = read_gates(proxy.as_store())
    assert_same(unfiltered, store)
    others = {g for g in mix.decided if g.flow != flow}
    assert others <= proxy.records_read_of()
    assert unfiltered.from_index == len(mix.decided) - len(others)
    assert unfiltered.segments_written == 1
    assert nightly in segments(store)
    assert len(segments(store)) == 2
    indexed = set().union(*(segment_gates(store, name) for name in segments(store)))
    assert indexed == ids(mix.decided)

    proxy.reset()
    last = read_gates(proxy.as_store())
    assert last.from_index == len(mix.decided)
    assert proxy.records_read_of() == set(mix.pending)


def test_a_merge_of_only_the_new_segment_is_not_written_twice(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    read_gates(store)
    outdate_the_only_segment(store)
    # nothing usable: every decided gate is read, saved once, and the merge is the same segment
    reading = read_gates(store)
    assert reading.from_records == len(mix.decided) + len(mix.pending)
    assert reading.segments_written == 1
    [only] = segments(store)
    assert segment_gates(store, only) == ids(mix.decided)


# -- 9. merging -------------------------------------------------------------------------------


def test_too_many_segments_are_merged_into_one(store: ApprovalStore) -> None:
    mix = populate(store, ["approved", "rejected"] + ["pending"] * MAX_SEGMENTS)
    read_gates(store)
    counts = [len(segments(store))]
    for gate in mix.pending:
        approve(store, gate)
        reading = read_gates(store)
        counts.append(len(segments(store)))
        assert_same(reading, store)
    # one segment per read, until one more would pass MAX_SEGMENTS: then one merged segment
    assert counts == [*range(1, MAX_SEGMENTS + 1), 1]
    assert reading.segments_written == 2  # the new one, and the merged one
    [merged] = segments(store)
    assert segment_gates(store, merged) == ids(mix.all)

    proxy = CountingStore(store)
    after = read_gates(proxy.as_store())
    assert after.from_index == len(mix.all)
    assert proxy.calls["read_record"] == []
    assert_same(after, store)


def test_flow_filtered_reads_merge_and_keep_the_other_flows(store: ApprovalStore) -> None:
    """A flow-scoped reader (``python flow.py hitl list --all``) merges too, so segments
    never pile up; it keeps the other flows' newest entries, which it cannot check."""
    flow = "Nightly"
    mix = populate(store, ["approved"] + ["pending"] * (MAX_SEGMENTS + 1), flow=flow)
    other = GateId("TrainAndDeploy", "5", "gate")
    add_gate(store, other, "rejected")
    read_gates(store)  # indexes the other flow's gate too
    # a late vote makes the other gate's first entry stale; the next unfiltered read
    # indexes its new version in a second segment
    vote = Vote(gate_id=other, intent="approve", actor=actor("erin", 59), reason="late")
    store.add_vote(vote)
    read_gates(store)
    counts = [len(segments(store))]
    for gate in mix.pending:
        approve(store, gate)
        reading = read_gates(store, flow=flow)
        assert_same(reading, store, flow=flow)
        counts.append(len(segments(store)))
    assert max(counts) == MAX_SEGMENTS
    assert counts[-1] < MAX_SEGMENTS  # merged on the way
    assert 1 in counts[2:]

    proxy = CountingStore(store)
    everything = read_gates(proxy.as_store())
    assert_same(everything, store)
    # the other flow's gate came from the index, in its newest version (with the late vote)
    assert other not in proxy.records_read_of()
    assert proxy.records_read_of() <= set(mix.pending)
    [gate] = [g for g in everything.gates if g.gate_id == other]
    assert vote.nonce in [v.nonce for v in gate.votes]


# -- 10. a read-only store ---------------------------------------------------------------------


def test_a_store_that_refuses_index_writes_still_reads_correctly(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    readonly = ReadOnlyStore(store)

    for _ in range(2):
        reading = read_gates(readonly.as_store())
        assert_same(reading, store)
        assert reading.from_records == len(mix.all)
        assert reading.segments_written == 0
        assert len(reading.warnings) == 1
        assert "could not update the gate index" in reading.warnings[0]
        assert "denied" in reading.warnings[0]
    assert segments(store) == []

    # with an index written by someone allowed to, it is still read (and never changed)
    read_gates(store)
    [name] = segments(store)
    approve(store, mix.pending[0])
    readonly.reset()
    reading = read_gates(readonly.as_store())
    assert_same(reading, store)
    assert reading.from_index == len(mix.decided)
    assert "could not update the gate index" in reading.warnings[0]
    assert segments(store) == [name]


# -- 11. use_index=False ------------------------------------------------------------------------


def test_no_index_never_touches_the_index(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    proxy = CountingStore(store)
    for _ in range(2):
        reading = read_gates(proxy.as_store(), use_index=False)
        assert reading.from_records == len(mix.all)
    assert segments(store) == []

    read_gates(store)  # with an index present, it is still not read
    proxy.reset()
    reading = read_gates(proxy.as_store(), use_index=False, parallel=True)
    assert (reading.from_index, reading.from_records) == (0, len(mix.all))
    for name in CountingStore.COUNTED[1:]:
        assert proxy.calls[name] == [], name
    assert proxy.records_read_of() == set(mix.all)
    assert len(segments(store)) == 1


# -- 12. a forged segment ---------------------------------------------------------------------


def forge_the_only_segment(
    store: ApprovalStore,
    gate: str,
    record: str,
    text: Callable[[dict[str, IndexedGate]], str],
) -> None:
    """Replace the store's one segment by a valid one (hash and all) in which ``gate``'s
    ``record`` has the text ``text(entries)`` under its real tag."""
    [genuine] = segments(store)
    data = store.get_index_segment(genuine)
    assert data is not None
    entries = dict(decode_segment(genuine, data, where=genuine).gates)
    records = dict(entries[gate].records)
    records[record] = (records[record][0], text(entries))
    entries[gate] = IndexedGate(gate, records)
    name, forged = encode_segment(entries.values(), now=T0)
    assert store.create_index_segment(name, forged) is True
    store.delete_index_segment(genuine)


def test_a_record_forged_into_a_segment_is_refused(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    read_gates(store)
    a, b = str(mix.decided[0]), str(mix.decided[1])
    forge_the_only_segment(
        store, a, "decision.json", lambda entries: entries[b].records["decision.json"][1]
    )

    reading = read_gates(store)
    assert reading.from_index == len(mix.decided)  # A's tags are its real ones
    [gate] = [g for g in reading.gates if str(g.gate_id) == a]
    assert gate.request.gate_id == mix.decided[0]
    with pytest.raises(RecordError) as raised:
        gate.decision  # noqa: B018
    assert "--no-index" in (raised.value.hint or "")
    assert b in raised.value.message

    reference = read_gates(store, use_index=False)  # the records are intact
    [gate] = [g for g in reference.gates if str(g.gate_id) == a]
    assert gate.decision is not None
    assert gate.decision.gate_id == mix.decided[0]


def test_a_forged_request_text_that_is_not_json_is_a_record_error(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    read_gates(store)
    a = str(mix.decided[0])
    forge_the_only_segment(store, a, "request.json", lambda _: "{not json")

    [gate] = [g for g in read_gates(store).gates if str(g.gate_id) == a]
    with pytest.raises(RecordError) as raised:
        gate.review  # noqa: B018 - what audit reads of each request
    assert "--no-index" in (raised.value.hint or "")


class VanishingStore(CountingStore):
    """The real store, where the named records are deleted between the listing and the read
    (``read_record`` finds them gone)."""

    def __init__(self, inner: ApprovalStore, gone: set[tuple[GateId, str]]) -> None:
        super().__init__(inner)
        self.gone = gone

    def read_record(self, gate_id: GateId, name: str) -> bytes | None:
        if (gate_id, name) in self.gone:
            return None
        return self.inner.read_record(gate_id, name)


def test_records_deleted_while_read_are_left_out_and_not_indexed(store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"])
    voted = next(g for g in mix.decided if len(store.list_votes(g)) >= 2)
    [first_vote, *_] = sorted(n for n in store.scan_gates()[voted] if n.startswith("votes/"))
    deleted = mix.decided[-1] if mix.decided[-1] != voted else mix.decided[0]
    proxy = VanishingStore(store, {(voted, first_vote), (deleted, "request.json")})

    reading = read_gates(proxy.as_store())
    got = {g.gate_id: g for g in reading.gates}
    assert deleted not in got  # its request is gone: no gate
    assert len(got[voted].votes) == len(store.list_votes(voted)) - 1  # as the store has it now
    [segment] = segments(store)
    indexed = segment_gates(store, segment)
    assert str(voted) not in indexed  # its tags no longer describe it
    assert str(deleted) not in indexed
    assert indexed == ids(mix.decided) - {str(voted), str(deleted)}


# -- 13. concurrency --------------------------------------------------------------------------


def _reader(store: ApprovalStore, loops: int, barrier: Any, results: Any) -> None:
    try:  # runs in a forked child
        barrier.wait(timeout=60)
        for _ in range(loops):
            reading = read_gates(store)
            assert reading.warnings == [], reading.warnings
            for gate in reading.gates:
                decision = gate.decision
                assert gate.request.gate_id == gate.gate_id
                assert (decision is not None) == gate.decided
                assert all(v.gate_id == gate.gate_id for v in gate.votes)
        results.put(("reader", ""))
    except BaseException as exc:  # reported, not raised: the parent asserts
        results.put(("error", repr(exc)))


def _decider(
    store: ApprovalStore, todo: list[GateId], late: GateId, barrier: Any, results: Any
) -> None:
    try:  # runs in a forked child
        barrier.wait(timeout=60)
        for i, gate in enumerate(todo):
            approve(store, gate)
            if i % 3 == 0:  # a late vote on a decided gate, now and then
                store.add_vote(Vote(gate_id=late, intent="approve", actor=actor(f"late{i}", i)))
        results.put(("decider", ""))
    except BaseException as exc:
        results.put(("error", repr(exc)))


def test_concurrent_readers_and_a_decider(kind: StoreKind, store: ApprovalStore) -> None:
    mix = populate(store, MIXES["mixed"] + ["pending"] * 8)
    read_gates(store)
    readers = 6
    race = racing(kind, readers + 1)
    barrier, results = race.barrier, race.results
    procs = [
        race.worker(target=_reader, args=(kind.reopen(store), 5, barrier, results))
        for _ in range(readers)
    ]
    procs.append(
        race.worker(
            target=_decider,
            args=(kind.reopen(store), mix.pending, mix.decided[0], barrier, results),
        )
    )
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        assert race.finished(p)

    assert [o for o in outcomes if o[0] == "error"] == []
    assert sorted(o[0] for o in outcomes) == ["decider"] + ["reader"] * readers
    final = read_gates(store)
    assert_same(final, store)
    assert all(g.decided for g in final.gates)
    assert len(segments(store)) <= MAX_SEGMENTS
    again = read_gates(store)
    assert again.from_index == len(mix.all)


def test_a_stray_file_named_votes_does_not_hide_the_gate(tmp_path: Path) -> None:
    local = LocalApprovalStore(tmp_path / "store")
    mix = populate(local, ["rejected", "pending"])
    for gate in mix.all:
        folder = Path(gate_folder(local, gate))
        if (folder / "votes").exists():
            shutil.rmtree(folder / "votes")
        (folder / "votes").write_text("not a folder")
    listed = local.scan_gates()
    assert set(listed) == set(mix.all)
    assert all(set(tags) <= {"request.json", "decision.json"} for tags in listed.values())
