"""Read every gate of a store: decided gates from the index, the rest from their records.

:func:`read_gates` is the read behind ``list --all``, ``audit`` and ``sync``. It lists the
store once (:meth:`~metaflow_hitl.ports.ApprovalStore.scan_gates`: every record's name and
tag, no record read), loads the index segments (:mod:`metaflow_hitl.index.segments`), and reads
from their records only the gates no segment holds unchanged: pending gates, and gates decided
or voted on since the last segment. Those it validates and, when they are decided, saves as one
new segment, so the next reader finds them indexed; past
:data:`~metaflow_hitl.index.segments.MAX_SEGMENTS` segments it merges them into one.

The index is only ever a cache of the records: a gate is taken from a segment only when the
tags the segment kept equal the listed ones, so what a reader returns is what reading every
record would return. ``use_index=False`` does exactly that. Failing to save or merge
segments (a read-only credential) loses nothing and is reported in
:attr:`GateReading.warnings`. Nothing that decides or resumes a gate reads the index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from metaflow_hitl.errors import RecordError, StoreError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.index.parallel import read_all
from metaflow_hitl.index.segments import (
    MAX_SEGMENTS,
    IndexedGate,
    Segment,
    decode_segment,
    encode_segment,
)
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Decision, Request, Vote, decode_record
from metaflow_hitl.timestamps import utc_now

__all__ = ["GateReading", "StoredGate", "read_gates"]


class StoredGate:
    """One gate's records, decoded on first use.

    A gate taken from an index segment keeps its records' text and decodes only what is
    asked for (``audit --source store`` never decodes a request).
    """

    __slots__ = ("_decoded", "_prevalidated", "_texts", "_where", "gate_id")

    def __init__(
        self,
        gate_id: GateId,
        texts: Mapping[str, str | bytes],
        *,
        where: str,
        prevalidated: bool,
        decoded: dict[str, Any] | None = None,
    ) -> None:
        self.gate_id = gate_id
        self._texts = texts
        self._where = where
        self._prevalidated = prevalidated
        self._decoded: dict[str, Any] = dict(decoded or {})

    def __repr__(self) -> str:
        return f"StoredGate({str(self.gate_id)!r}, decided={self.decided})"

    @property
    def decided(self) -> bool:
        """Whether the gate has a decision."""
        return "decision.json" in self._texts

    @property
    def request(self) -> Request:
        """The gate's request."""
        return self._record("request.json")  # type: ignore[no-any-return]

    @property
    def review(self) -> dict[str, Any]:
        """The request's ``review`` settings, without decoding the rest of the request
        (``audit`` needs only these of each request)."""
        if "request.json" in self._decoded:
            return dict(self.request.review)
        try:
            doc = json.loads(self._texts["request.json"])
        except ValueError:
            doc = None
        review = doc.get("review") if isinstance(doc, dict) else None
        if not isinstance(review, dict):
            return dict(self.request.review)  # decoding the request reports what is wrong
        return review

    @property
    def decision(self) -> Decision | None:
        """The gate's decision, or None while it is pending."""
        return self._record("decision.json") if self.decided else None

    @property
    def votes(self) -> tuple[Vote, ...]:
        """Every vote, oldest first."""
        if "votes" not in self._decoded:
            votes = [self._record(name) for name in self._texts if name.startswith("votes/")]
            self._decoded["votes"] = tuple(sorted(votes, key=lambda v: (v.actor.at, v.nonce)))
        return self._decoded["votes"]  # type: ignore[no-any-return]

    def _record(self, name: str) -> Any:
        if name not in self._decoded:
            self._decoded[name] = _decode(
                self.gate_id, name, self._texts[name], self._where, self._prevalidated
            )
        return self._decoded[name]


def _decode(gate_id: GateId, name: str, text: str | bytes, where: str, prevalidated: bool) -> Any:
    at = f"{where} ({gate_id} {name})"
    record: Request | Decision | Vote
    try:
        if name == "request.json":
            record = decode_record(text, Request, where=at, prevalidated=prevalidated)
        elif name == "decision.json":
            record = decode_record(text, Decision, where=at, prevalidated=prevalidated)
        else:
            record = decode_record(text, Vote, where=at, prevalidated=prevalidated)
        if record.gate_id != gate_id:
            raise RecordError(f"{at} is the record of another gate ({record.gate_id}).")
    except RecordError as exc:
        if not prevalidated:
            raise
        raise RecordError(
            exc.message,
            hint="The index segment was changed after it was written: delete it (the index "
            "is a cache; the records are intact), or read the records with --no-index.",
        ) from None
    return record


@dataclass
class GateReading:
    """What :func:`read_gates` read, and how."""

    #: Every gate read (in no particular order).
    gates: list[StoredGate]
    #: Problems with the index that cost speed, never correctness (for stderr).
    warnings: list[str] = field(default_factory=list)
    #: Gates taken from index segments.
    from_index: int = 0
    #: Gates read from their records.
    from_records: int = 0
    #: Index segments written (a new one, a merged one).
    segments_written: int = 0


def read_gates(
    store: ApprovalStore,
    *,
    flow: str | None = None,
    decided_only: bool = False,
    use_index: bool = True,
    parallel: bool = False,
    now: datetime | None = None,
) -> GateReading:
    """Every gate of the store (optionally one flow's, or only decided ones).

    Parameters
    ----------
    store
        The approval store.
    flow
        Only this flow's gates.
    decided_only
        Skip pending gates (they are never indexed, so this saves their reads).
    use_index
        Take decided gates from the index and keep it up to date; ``False`` reads and
        validates every record and leaves the index alone.
    parallel
        Overlap reads in threads (worth it when each read is a round trip, as on S3).
    now
        The time written into a new segment (tests); defaults to the clock.

    Raises
    ------
    StoreError, RecordError
        When the store cannot be listed, or a record (not an index segment) cannot be read.
    """
    listing = store.scan_gates(flow)
    reading = GateReading(gates=[])
    covered: dict[GateId, IndexedGate] = {}
    current: list[Segment] = []
    outdated: list[str] = []
    if use_index:
        current, outdated = _load_segments(store, parallel, reading.warnings)
        for gate_id, tags in listing.items():
            key = str(gate_id)
            for segment in current:
                entry = segment.gates.get(key)
                if entry is not None and entry.matches(tags):
                    covered[gate_id] = entry
                    texts = {name: text for name, (_, text) in entry.records.items()}
                    where = _segment_location(store, segment.name)
                    reading.gates.append(StoredGate(gate_id, texts, where=where, prevalidated=True))
                    break
    reading.from_index = len(covered)
    todo = [
        gate_id
        for gate_id, tags in listing.items()
        if gate_id not in covered and (not decided_only or "decision.json" in tags)
    ]
    fresh = [
        got
        for got in read_all(lambda g: _read_gate(store, g, listing[g]), todo, parallel=parallel)
        if got is not None
    ]
    reading.gates.extend(gate for gate, _ in fresh)
    reading.from_records = len(fresh)
    if use_index:
        new = [entry for _, entry in fresh if entry is not None]
        _save(store, reading, new, covered, current, outdated, flow=flow, now=now)
    return reading


def _read_gate(
    store: ApprovalStore, gate_id: GateId, tags: Mapping[str, str]
) -> tuple[StoredGate, IndexedGate | None] | None:
    """Read and validate a gate's listed records; its index entry when it is decided.

    ``None`` when its request is gone (the gate was deleted since the listing). A record
    deleted since the listing is left out, as the store now has it, and the gate is not
    indexed (its tags no longer describe it).
    """
    texts: dict[str, bytes] = {}
    for name in sorted(tags):
        data = store.read_record(gate_id, name)
        if data is not None:
            texts[name] = data
    if "request.json" not in texts:
        return None
    where = store.location
    decoded = {name: _decode(gate_id, name, data, where, False) for name, data in texts.items()}
    gate = StoredGate(gate_id, texts, where=where, prevalidated=False, decoded=decoded)
    gate.votes  # noqa: B018 - sorted once, from the decoded votes
    if "decision.json" not in texts or len(texts) != len(tags):
        return gate, None  # pending (it will change), or changed while read: not indexed
    records = {name: (tags[name], _compact(data)) for name, data in texts.items()}
    return gate, IndexedGate(str(gate_id), records)


def _compact(data: bytes) -> str:
    """A record's JSON without its indentation (a third smaller, and faster to load)."""
    return json.dumps(json.loads(data), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _load_segments(
    store: ApprovalStore, parallel: bool, warnings: list[str]
) -> tuple[list[Segment], list[str]]:
    """The verified segments written under this release's checks, and the names of the
    segments written under other checks (to drop at the next merge)."""
    names = store.list_index_segments()
    datas = read_all(store.get_index_segment, names, parallel=parallel)
    current: list[Segment] = []
    outdated: list[str] = []
    for name, data in zip(names, datas, strict=True):
        if data is None:
            continue  # merged into another and deleted since the listing
        where = _segment_location(store, name)
        try:
            segment = decode_segment(name, data, where=where)
        except RecordError as exc:
            warnings.append(
                f"ignored the index segment {where}: {exc.message} Its gates were read from "
                "their records. Delete it (the index is a cache; the records are intact)."
            )
            continue
        if segment.current:
            current.append(segment)
        else:
            outdated.append(name)
    return current, outdated


def _save(
    store: ApprovalStore,
    reading: GateReading,
    new: list[IndexedGate],
    covered: Mapping[GateId, IndexedGate],
    current: list[Segment],
    outdated: list[str],
    *,
    flow: str | None,
    now: datetime | None,
) -> None:
    """Save the newly read decided gates as a segment; merge the segments into one when
    there are too many or some are outdated."""
    now = now or utc_now()
    written: list[str] = []
    try:
        if new:
            name, data = encode_segment(new, now=now)
            if store.create_index_segment(name, data):
                reading.segments_written += 1
            written.append(name)
        if len(current) + len(written) <= MAX_SEGMENTS and not outdated:
            return
        name, data = encode_segment(_merged(covered, new, current, flow), now=now)
        # The same content as the segment just written (nothing else was usable) is the
        # same object: no second write.
        if name not in written and store.create_index_segment(name, data):
            reading.segments_written += 1
        for old in [s.name for s in current] + outdated + written:
            if old != name:
                store.delete_index_segment(old)
    except StoreError as exc:
        reading.warnings.append(
            f"could not update the gate index in {store.location}: {exc.message} Nothing is "
            "lost; the gates it lacks are read from their records again next time."
        )


def _merged(
    covered: Mapping[GateId, IndexedGate],
    new: list[IndexedGate],
    current: list[Segment],
    flow: str | None,
) -> list[IndexedGate]:
    """The entries of a merged segment.

    The gates this read listed (all of them, or one flow's) as it found them: the entries
    its listing confirmed and the gates it read; an entry the listing contradicted is
    dropped. A flow-scoped read keeps the other flows' gates as the newest segment holding
    each has them: it cannot confirm them, but every reader checks every entry against its
    own listing, so a stale one costs a read, never a wrong answer.
    """
    entries: dict[str, IndexedGate] = {}
    if flow is not None:
        ours = flow + "/"
        for segment in sorted(current, key=lambda s: s.created_at):  # newer ones win
            for key, entry in segment.gates.items():
                if not key.startswith(ours):
                    entries[key] = entry
    entries.update((entry.gate_id, entry) for entry in covered.values())
    entries.update((entry.gate_id, entry) for entry in new)
    return list(entries.values())


def _segment_location(store: ApprovalStore, name: str) -> str:
    return f"{store.location.rstrip('/')}/v1/index/decided/{name}"
