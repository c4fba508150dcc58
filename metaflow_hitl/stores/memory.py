"""An approval store in this process's memory: the port's semantics with no filesystem.

For tests and tools that need a real :class:`~metaflow_hitl.ports.ApprovalStore` without a
directory or a bucket (a decision made here is gone when the process ends; nothing else can
read it). It keeps the contract the other stores keep, and is run through the same suite
(``tests/contract/test_store_contract.py``):

* records are stored as the bytes :func:`~metaflow_hitl.records.encode_record` writes and
  decoded on every read, so a record that would not survive a real store does not survive
  this one either;
* every ``create_*`` is create-if-absent under one lock: among any number of threads exactly
  one creates a record, and a reader never sees half of one;
* records are never replaced; each gets a tag (a counter, as the local store reports inodes
  and S3 ETags) that :meth:`MemoryApprovalStore.scan_gates` returns.

It is not shared between processes: a forked child gets a copy.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

from metaflow_hitl.errors import StoreError
from metaflow_hitl.gate_id import GateId, is_flow_name
from metaflow_hitl.index.segments import RECORD_NAME, check_record_name, check_segment_name
from metaflow_hitl.records import (
    Decision,
    PageChange,
    Publication,
    Reminder,
    Request,
    Vote,
    Waiter,
    decode_record,
    encode_record,
)
from metaflow_hitl.timestamps import format_ts

__all__ = ["MemoryApprovalStore"]

_instances = itertools.count(1)


class MemoryApprovalStore:
    """The :class:`~metaflow_hitl.ports.ApprovalStore` held in a dict, for one process.

    Parameters
    ----------
    name
        Shown in :attr:`location` (``memory://<name>``); a new number by default.
    """

    def __init__(self, name: str | None = None) -> None:
        self.location = f"memory://{name or next(_instances)}"
        self.is_remote = False  # no round trips; and nothing beyond this process shares it
        self._lock = threading.Lock()
        self._tags = itertools.count(1)
        #: gate -> record name (``request.json``, ``votes/<file>``...) -> (tag, bytes)
        self._gates: dict[GateId, dict[str, tuple[str, bytes]]] = {}
        self._pending: set[GateId] = set()
        self._segments: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"MemoryApprovalStore({self.location!r})"

    # -- primitives -------------------------------------------------------------------------
    def _create(self, gate_id: GateId, name: str, data: bytes) -> bool:
        """Store ``data`` as ``name`` of the gate unless it exists; True if this call did.
        Called with the lock held."""
        records = self._gates.setdefault(gate_id, {})
        if name in records:
            return False
        records[name] = (str(next(self._tags)), data)
        return True

    def _read(self, gate_id: GateId, name: str) -> bytes | None:
        with self._lock:
            found = self._gates.get(gate_id, {}).get(name)
        return None if found is None else found[1]

    def _folder(self, gate_id: GateId, folder: str) -> list[tuple[str, bytes]]:
        """The records under ``folder/`` of the gate, by name."""
        prefix = folder + "/"
        with self._lock:
            records = dict(self._gates.get(gate_id, {}))
        return [(n, d) for n, (_, d) in sorted(records.items()) if n.startswith(prefix)]

    def _where(self, gate_id: GateId, name: str) -> str:
        return f"{self.location}/v1/gates/{gate_id}/{name}"

    # -- ApprovalStore ----------------------------------------------------------------------
    def create_request(self, request: Request) -> bool:
        data = encode_record(request)
        with self._lock:
            created = self._create(request.gate_id, "request.json", data)
            if created and "decision.json" not in self._gates[request.gate_id]:
                self._pending.add(request.gate_id)
        return created

    def get_request(self, gate_id: GateId) -> Request | None:
        data = self._read(gate_id, "request.json")
        where = self._where(gate_id, "request.json")
        return None if data is None else decode_record(data, Request, where=where)

    def add_vote(self, vote: Vote) -> None:
        name = f"votes/{format_ts(vote.actor.at)}-{vote.nonce}.json".replace(":", "")
        data = encode_record(vote)
        with self._lock:
            self._create(vote.gate_id, name, data)

    def list_votes(self, gate_id: GateId) -> list[Vote]:
        return [
            decode_record(data, Vote, where=self._where(gate_id, name))
            for name, data in self._folder(gate_id, "votes")
        ]

    def create_decision(self, decision: Decision) -> Decision:
        data = encode_record(decision)
        with self._lock:
            if self._create(decision.gate_id, "decision.json", data):
                self._pending.discard(decision.gate_id)
                return decision
        winner = self.get_decision(decision.gate_id)
        if winner is None:  # pragma: no cover - records are never removed
            raise StoreError(f"{self._where(decision.gate_id, 'decision.json')} vanished")
        return winner

    def get_decision(self, gate_id: GateId) -> Decision | None:
        data = self._read(gate_id, "decision.json")
        where = self._where(gate_id, "decision.json")
        return None if data is None else decode_record(data, Decision, where=where)

    def create_reminder(self, reminder: Reminder) -> bool:
        data = encode_record(reminder)
        with self._lock:
            return self._create(reminder.gate_id, f"reminders/{int(reminder.number)}.json", data)

    def list_reminders(self, gate_id: GateId) -> list[Reminder]:
        reminders = [
            decode_record(data, Reminder, where=self._where(gate_id, name))
            for name, data in self._folder(gate_id, "reminders")
        ]
        return sorted(reminders, key=lambda r: r.number)

    def create_publication(self, publication: Publication) -> bool:
        data = encode_record(publication)
        with self._lock:
            return self._create(publication.gate_id, "publication.json", data)

    def get_publication(self, gate_id: GateId) -> Publication | None:
        data = self._read(gate_id, "publication.json")
        where = self._where(gate_id, "publication.json")
        return None if data is None else decode_record(data, Publication, where=where)

    def add_page_change(self, change: PageChange) -> None:
        name = f"page-changes/{format_ts(change.seen_at)}-{change.nonce}.json".replace(":", "")
        data = encode_record(change)
        with self._lock:
            self._create(change.gate_id, name, data)

    def put_waiter(self, waiter: Waiter) -> None:
        data = encode_record(waiter)
        with self._lock:
            self._gates.setdefault(waiter.gate_id, {})["waiter.json"] = (
                str(next(self._tags)),
                data,
            )

    def get_waiter(self, gate_id: GateId) -> Waiter | None:
        data = self._read(gate_id, "waiter.json")
        where = self._where(gate_id, "waiter.json")
        return None if data is None else decode_record(data, Waiter, where=where)

    def list_page_changes(self, gate_id: GateId) -> list[PageChange]:
        changes = [
            decode_record(data, PageChange, where=self._where(gate_id, name))
            for name, data in self._folder(gate_id, "page-changes")
        ]
        return sorted(changes, key=lambda c: c.seen_at)

    def list_gates(self, *, pending_only: bool, flow: str | None = None) -> Iterator[GateId]:
        if flow is not None and not is_flow_name(flow):
            return
        with self._lock:
            gates = (
                set(self._pending)
                if pending_only
                else {g for g, records in self._gates.items() if "request.json" in records}
            )
        yield from sorted(
            (g for g in gates if flow is None or g.flow == flow),
            key=lambda g: (g.flow, g.run_id, g.step),
        )

    def scan_gates(self, flow: str | None = None) -> dict[GateId, dict[str, str]]:
        if flow is not None and not is_flow_name(flow):
            return {}
        with self._lock:
            return {
                gate_id: {n: tag for n, (tag, _) in records.items() if RECORD_NAME.fullmatch(n)}
                for gate_id, records in self._gates.items()
                if "request.json" in records and (flow is None or gate_id.flow == flow)
            }

    def read_record(self, gate_id: GateId, name: str) -> bytes | None:
        return self._read(gate_id, check_record_name(name))

    def list_index_segments(self) -> list[str]:
        with self._lock:
            return sorted(self._segments)

    def get_index_segment(self, name: str) -> bytes | None:
        with self._lock:
            return self._segments.get(check_segment_name(name))

    def create_index_segment(self, name: str, data: bytes) -> bool:
        with self._lock:
            if check_segment_name(name) in self._segments:
                return False
            self._segments[name] = bytes(data)
            return True

    def delete_index_segment(self, name: str) -> None:
        with self._lock:
            self._segments.pop(check_segment_name(name), None)
