"""The index of decided gates: immutable segments that spare ``list --all`` and ``audit`` a
read of every record.

A decided gate's records never change: its request and decision are created once, and votes
are only appended. A *segment* keeps, for a batch of decided gates, the text of each record
together with the *tag* the store listed for it (the S3 ETag; the inode number on the local
store). A reader lists the store once, which yields every record's current tag, and takes a
gate from a segment only when the segment's tags equal the listed ones exactly: a gate whose
records were added to (a late vote), replaced or deleted since is read from its records again.
The records stay the truth; the index is a cache of them.

Segments are written by the readers themselves (:mod:`metaflow_hitl.index.reader`): the gates
a reader had to read from their records go into one new segment, and past
:data:`MAX_SEGMENTS` segments are merged into one. A segment is gzip-compressed JSON named by
the SHA-256 of its bytes, so it is created once (create-if-absent, as records are), a reader
detects any change to it, and two readers writing the same content write the same object.

Format ``metaflow-hitl/gate-index`` version 1 (a public contract, :data:`SEGMENT_SCHEMA`)::

    {"format": "metaflow-hitl/gate-index", "version": 1,
     "created_at": "2026-11-25T10:53:10.123Z",
     "checks": "sha256:...",                      # records.checks_digest() of the writer
     "gates": [{"gate_id": "Flow/17/deploy",
                "records": [["decision.json", "<tag>", "<the record, compact JSON>"],
                            ["request.json", "<tag>", "..."],
                            ["votes/20261125T105310.123Z-<nonce>.json", "<tag>", "..."]]}]}

The writer validated every record it put in a segment. A reader skips the records' schema
checks only for a segment whose ``checks`` equals its own :func:`~metaflow_hitl.records.
checks_digest`; it ignores a segment written under other checks (and the next merge drops
it), so an upgrade that tightens validation re-reads the records once.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metaflow_hitl.errors import RecordError
from metaflow_hitl.input_schema import clip_middle
from metaflow_hitl.record_check import compile_schema
from metaflow_hitl.records import checks_digest
from metaflow_hitl.timestamps import format_ts

__all__ = [
    "INDEX_FORMAT",
    "INDEX_VERSION",
    "MAX_SEGMENTS",
    "RECORD_NAME",
    "SEGMENT_SCHEMA",
    "IndexedGate",
    "Segment",
    "check_record_name",
    "check_segment_name",
    "decode_segment",
    "encode_segment",
]

INDEX_FORMAT = "metaflow-hitl/gate-index"
INDEX_VERSION = 1
#: Segments kept before a reader merges them into one.
MAX_SEGMENTS = 8
#: A segment larger than this once decompressed is refused (a forged one cannot exhaust
#: memory): ~1 million gates of ordinary records.
MAX_SEGMENT_TEXT = 2**31

_SEGMENT_NAME = re.compile(r"[0-9a-f]{64}\.json\.gz")
#: A gate's record, as stores list them: never a path out of the gate's folder, never a
#: temporary file (``.tmp-...``), never a reminder.
RECORD_NAME = re.compile(
    r"request\.json|decision\.json|votes/(?!.*\.\.)[0-9A-Za-z_-][0-9A-Za-z._-]{0,194}\.json"
)
_TS = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"}

#: The JSON Schema of a segment (after gzip decompression).
SEGMENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": INDEX_FORMAT,
    "type": "object",
    "required": ["format", "version", "created_at", "checks", "gates"],
    "properties": {
        "format": {"const": INDEX_FORMAT},
        "version": {"const": INDEX_VERSION},
        "created_at": _TS,
        "checks": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        "gates": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["gate_id", "records"],
                "properties": {
                    "gate_id": {"type": "string", "maxLength": 1000},
                    "records": {
                        "type": "array",
                        "items": {
                            "type": "array",
                            "minItems": 3,
                            "maxItems": 3,
                            "items": {"type": "string"},
                        },
                    },
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}


def check_segment_name(name: str) -> str:
    """``name`` if it is a segment's name (``<sha256 hex>.json.gz``), else a ValueError."""
    if not isinstance(name, str) or not _SEGMENT_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not an index segment name")
    return name


def check_record_name(name: str) -> str:
    """``name`` if it names a gate's record (``request.json``, ``decision.json``,
    ``votes/<file>``), else a ValueError; never a path that leaves the gate's folder."""
    if not isinstance(name, str) or not RECORD_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not the name of a gate's record")
    return name


@dataclass(frozen=True)
class IndexedGate:
    """One decided gate as a segment keeps it.

    Parameters
    ----------
    gate_id
        The gate's id, as text (``Flow/17/deploy``).
    records
        Record name (``request.json``, ``decision.json``, ``votes/<file>``) to its
        ``(tag, text)``: the tag the store listed and the record's JSON text.
    """

    gate_id: str
    records: Mapping[str, tuple[str, str]]

    def tags(self) -> dict[str, str]:
        """Record name to tag."""
        return {name: tag for name, (tag, _) in self.records.items()}

    def matches(self, tags: Mapping[str, str]) -> bool:
        """Whether the store's listed records are exactly these, unchanged."""
        return len(tags) == len(self.records) and all(
            tags.get(name) == tag for name, (tag, _) in self.records.items()
        )


@dataclass(frozen=True)
class Segment:
    """A decoded segment.

    ``current`` tells whether it was written under this release's checks: only then may its
    records skip validation (and only then does a reader use it).
    """

    name: str
    #: By gate id (text). Ids are not parsed here: a reader looks up the ids it listed, so
    #: an entry under an id that is not a valid gate id is never used.
    gates: Mapping[str, IndexedGate]
    checks: str
    #: When it was written (``format_ts``: text that sorts in time order).
    created_at: str = ""

    @property
    def current(self) -> bool:
        """Written under the checks this release applies."""
        return self.checks == checks_digest()


def encode_segment(gates: Iterable[IndexedGate], *, now: datetime) -> tuple[str, bytes]:
    """A segment holding ``gates`` (ordered by gate id): its name and its bytes.

    The bytes depend only on the gates and ``now``, so two readers indexing the same gates in
    the same millisecond write the same object.
    """
    doc = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "created_at": format_ts(now),
        "checks": checks_digest(),
        "gates": [
            {
                "gate_id": gate.gate_id,
                "records": [[name, *gate.records[name]] for name in sorted(gate.records)],
            }
            for gate in sorted(gates, key=lambda g: g.gate_id)
        ],
    }
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    data = gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)
    return hashlib.sha256(data).hexdigest() + ".json.gz", data


def decode_segment(name: str, data: bytes, *, where: str) -> Segment:
    """Verify and decode a segment.

    Raises
    ------
    RecordError
        When the name is not a segment's, the bytes do not hash to it, do not decompress
        (or carry bytes after the gzip stream), exceed
        :data:`MAX_SEGMENT_TEXT`, are not a valid ``metaflow-hitl/gate-index`` document, or
        name a gate or record that cannot exist.
    """
    try:
        check_segment_name(name)
    except ValueError as exc:
        raise RecordError(f"{where}: {exc}.") from None
    if hashlib.sha256(data).hexdigest() != name.split(".", 1)[0]:
        raise RecordError(f"{where} does not match its SHA-256 name: it was changed or damaged.")
    try:
        inflate = zlib.decompressobj(wbits=31)  # gzip
        raw = inflate.decompress(data, MAX_SEGMENT_TEXT)
        if inflate.unconsumed_tail:
            raise RecordError(f"{where} is larger than {MAX_SEGMENT_TEXT} bytes decompressed.")
        if not inflate.eof:
            raise RecordError(f"{where} is truncated (the gzip stream does not end).")
        if inflate.unused_data:
            raise RecordError(f"{where} has bytes after its gzip stream.")
        doc = json.loads(raw)
    except (zlib.error, ValueError, UnicodeDecodeError) as exc:
        raise RecordError(f"{where} is not a gzip-compressed JSON document ({exc}).") from None
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
        raise RecordError(f"{where} is not a {INDEX_FORMAT} segment.")
    version = doc.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > INDEX_VERSION:
        raise RecordError(
            f"{where} is version {version} of {INDEX_FORMAT}, newer than this release reads "
            f"({INDEX_VERSION}).",
            hint="Upgrade metaflow-hitl: pip install -U metaflow-hitl",
        )
    if not _envelope_check()(doc):
        raise RecordError(f"{where} is not a valid {INDEX_FORMAT} segment: {_first_error(doc)}")
    gates: dict[str, IndexedGate] = {}
    for entry in doc["gates"]:
        try:
            if not _entry_ok(entry):
                raise ValueError(_first_error(doc))
            gate_id = entry["gate_id"]
            # Names are not checked either: an entry is used only when its names equal the
            # ones the store listed, and stores list only valid names.
            records = {rec_name: (tag, text) for rec_name, tag, text in entry["records"]}
            if len(records) != len(entry["records"]):
                raise ValueError(f"{gate_id} names a record twice")
        except ValueError as exc:
            raise RecordError(f"{where} is not a valid {INDEX_FORMAT} segment: {exc}") from None
        if "request.json" not in records or "decision.json" not in records:
            raise RecordError(
                f"{where} is not a valid {INDEX_FORMAT} segment: {gate_id} lacks its request "
                "or its decision."
            )
        if gate_id in gates:
            raise RecordError(f"{where} is not a valid {INDEX_FORMAT} segment: {gate_id} twice.")
        gates[gate_id] = IndexedGate(gate_id, records)
    return Segment(name=name, gates=gates, checks=doc["checks"], created_at=doc["created_at"])


@functools.cache
def _envelope_check() -> Any:
    """:data:`SEGMENT_SCHEMA` without its ``gates`` items, compiled (the items are checked one
    by one by :func:`_entry_ok`, in the loop that decodes them: the compiled check of the
    whole schema cost ~0.2 s at 10,000 gates)."""
    properties = {**SEGMENT_SCHEMA["properties"], "gates": {"type": "array"}}
    check = compile_schema({**SEGMENT_SCHEMA, "properties": properties})
    assert check is not None  # the schema uses only compiled keywords (tested)
    return check


def _entry_ok(entry: Any) -> bool:
    """One item of ``gates`` matches :data:`SEGMENT_SCHEMA` (equivalent, by hand)."""
    if type(entry) is not dict or entry.keys() != {"gate_id", "records"}:
        return False
    gate_id, records = entry["gate_id"], entry["records"]
    if type(gate_id) is not str or len(gate_id) > 1000 or type(records) is not list:
        return False
    return all(type(r) is list and len(r) == 3 and all(type(x) is str for x in r) for r in records)


def _first_error(doc: Any) -> str:
    from jsonschema import Draft202012Validator

    for error in Draft202012Validator(SEGMENT_SCHEMA).iter_errors(doc):
        where = ".".join(map(str, error.path)) or "(top)"
        return f"{where}: {clip_middle(error.message, 300)}"
    # The checks compare JSON types strictly (1.0 is not the integer 1), jsonschema does not.
    return "a value has the wrong JSON type (a number written as 1.0 where 1 is expected?)"
