"""Hidden markers: the machine-readable block in approval files, PR/issue bodies and replies.

A gate marker is one HTML comment, invisible on GitHub, that tells the GitHub Action which gate
a pull request or issue is about. Its format is a public contract::

    <!-- metaflow-hitl:v1 {"digest": "sha256:<64 hex>", "gate_id": "Flow/run/step",
         "namespace": null, "node_selector": null, "store": "s3://...", "workflow": null} -->

(on one line; keys sorted). ``v1`` is the marker version: a reader ignores markers of other
versions. The JSON is written with ``<``, ``>`` and ``&`` as ``\\u003c``, ``\\u003e`` and
``\\u0026``, so no value can end the comment early (``-->``) or open another one.

A marker is a pointer, never evidence. Anyone who can edit a pull request can edit its
markers, so the Action loads the request from the store and checks the marker against it
with :func:`verify_marker`; the stored request is authoritative. ``digest`` is
:meth:`Request.digest() <metaflow_hitl.records.Request.digest>`; ``workflow``, ``namespace``
and ``node_selector`` come from the request's ``origin`` (keys of the same names, set by the
Argo glue; ``null`` for a local run). Use :func:`sole_marker` to read the one marker of a
body: several different markers in one body are refused, not guessed between.

The bot's own reply comments start with ``<!-- metaflow-hitl:v1:reply {"gate_id": ...} -->``
(:func:`render_reply_marker`, :func:`is_bot_reply`) so it can skip them. That is a hint only:
whether a comment counts as the bot's is decided by its author account, never by its text.

Every hidden tag is written here, by :func:`hidden_tag` (one escaping), and each is a
versioned public format:

=====================================  ========================================================
``metaflow-hitl:v1 {...}``              the gate marker (approval file, PR/issue body)
``metaflow-hitl:v1:reply {gate_id}``    first line of every bot reply
``metaflow-hitl:v1:reply {event, ...}`` end of a reply to one event (re-deliveries skip it)
``metaflow-hitl:v1:reminder {...}``     end of reminder ``number`` of a gate
``metaflow-hitl:v1:decision {nonce}``   end of the reply announcing a decision
=====================================  ========================================================
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from metaflow_hitl.errors import GateRefError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.records import Request

__all__ = [
    "DECISION_REPLY_MARKER_NAME",
    "MARKER_NAME",
    "REMINDER_MARKER_NAME",
    "REPLY_MARKER_NAME",
    "Marker",
    "MarkerProblem",
    "decision_reply_tag",
    "hidden_tag",
    "is_bot_reply",
    "marker_for",
    "parse_markers",
    "reminder_tag",
    "render_marker",
    "render_reply_marker",
    "reply_event_tag",
    "sole_marker",
    "verify_marker",
]

#: The versioned name that opens a gate marker.
MARKER_NAME = "metaflow-hitl:v1"
#: The versioned name that opens the bot's reply marker.
REPLY_MARKER_NAME = "metaflow-hitl:v1:reply"
#: The versioned name of the tag that identifies a reminder comment.
REMINDER_MARKER_NAME = "metaflow-hitl:v1:reminder"
#: The versioned name of the tag ending the reply that announces a decision.
DECISION_REPLY_MARKER_NAME = "metaflow-hitl:v1:decision"

_MAX_TEXT = 1_000_000
_MAX_BODY = 8_192
_MAX_MARKERS = 20
_FIND = re.compile(r"<!--[ \t]*metaflow-hitl:v1[ \t]+(?P<body>.*?)-->", re.DOTALL)
_REPLY = re.compile(r"\s*<!--[ \t]*metaflow-hitl:v1:reply[ \t]+(?P<body>\{.*?\})[ \t]*-->")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_OPTIONAL = ("workflow", "namespace", "node_selector")


@dataclass(frozen=True, kw_only=True)
class Marker:
    """What a gate marker says (a claim to check against the store, see module docs).

    Parameters
    ----------
    gate_id
        The gate, ``Flow/run/step``.
    store
        The store location the request was written to.
    digest
        ``sha256:<hex>`` of the request (:meth:`Request.digest`).
    workflow, namespace, node_selector
        Where the Argo workflow waits and which suspend node to resume; ``None`` locally.
    """

    gate_id: str
    store: str
    digest: str
    workflow: str | None = None
    namespace: str | None = None
    node_selector: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def marker_for(request: Request) -> Marker:
    """The marker that belongs to ``request`` (the only way markers are made)."""
    return Marker(
        gate_id=str(request.gate_id),
        store=request.store,
        digest=request.digest(),
        **{key: request.origin.get(key) for key in _OPTIONAL},
    )


def _dumps(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_marker(marker: Marker | Request) -> str:
    """The marker as one HTML comment line (no trailing newline)."""
    if isinstance(marker, Request):
        marker = marker_for(marker)
    return hidden_tag(MARKER_NAME, marker.to_dict())


def _marker_from(body: str) -> Marker | None:
    if len(body) > _MAX_BODY:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    gate_id, store, digest = data.get("gate_id"), data.get("store"), data.get("digest")
    optional = {key: data.get(key) for key in _OPTIONAL}
    if not (isinstance(gate_id, str) and isinstance(store, str) and isinstance(digest, str)):
        return None
    if not all(v is None or isinstance(v, str) for v in optional.values()):
        return None
    if not _DIGEST.fullmatch(digest):
        return None
    try:
        GateId.parse(gate_id)
    except GateRefError:
        return None
    return Marker(gate_id=gate_id, store=store, digest=digest, **optional)


def parse_markers(text: str | None) -> list[Marker]:
    """Every well-formed v1 gate marker in ``text``, in order, duplicates removed.

    Never raises. Malformed markers (bad JSON, missing or mistyped keys, an invalid gate id
    or digest) and markers of other versions are ignored; unknown keys are ignored. A
    comment ends at the first ``-->``, as in HTML. Only the first 1 MB of text and the
    first 20 markers are read.
    """
    if not isinstance(text, str):
        return []
    found: list[Marker] = []
    for match in _FIND.finditer(text[:_MAX_TEXT]):
        marker = _marker_from(match.group("body").strip())
        if marker is not None and marker not in found:
            found.append(marker)
        if len(found) >= _MAX_MARKERS:
            break
    return found


@dataclass(frozen=True)
class MarkerProblem:
    """Why a body does not name exactly one gate.

    Attributes
    ----------
    kind
        ``"missing"`` (not a gate's page: ignore it) or ``"several"`` (a gate's page edited
        to name two gates: refuse it, never guess between them).
    message
        The sentence for people.
    """

    kind: Literal["missing", "several"]
    message: str


def sole_marker(text: str | None) -> Marker | MarkerProblem:
    """The one gate marker of a body, or why there is not exactly one (never raises).

    Returns
    -------
    Marker or MarkerProblem
        The marker, or what is wrong: no marker, or several different ones.
    """
    markers = parse_markers(text)
    if not markers:
        return MarkerProblem(
            "missing",
            f"no valid <!-- {MARKER_NAME} ... --> marker found; this is not a gate's page.",
        )
    if len(markers) > 1:
        gates = ", ".join(sorted({m.gate_id for m in markers}))
        return MarkerProblem(
            "several",
            f"found {len(markers)} different {MARKER_NAME} markers (gates: {gates}); the text "
            "was edited after the bot wrote it, so no gate is acted on.",
        )
    return markers[0]


def _short(value: str | None) -> str:
    text = "null" if value is None else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def verify_marker(marker: Marker, request: Request) -> str | None:
    """Check a marker against the stored request (the authority).

    Parameters
    ----------
    marker
        As parsed from a pull request, issue or approval file.
    request
        The request loaded from the store for ``marker.gate_id``.

    Returns
    -------
    str or None
        ``None`` when every field matches; otherwise one sentence naming the first field
        that differs, both values, and that the stored request wins.
    """
    expected = marker_for(request)
    if marker.gate_id != expected.gate_id:
        return (
            f"the marker names gate {_short(marker.gate_id)} but the stored request is for "
            f"{_short(expected.gate_id)}; the marker was not written for this gate."
        )
    if marker.digest != expected.digest:
        return (
            f"the marker's digest {marker.digest[:19]}... does not match the stored request "
            f"of gate {expected.gate_id} ({expected.digest[:19]}...): the text was changed or "
            "belongs to another request. The stored request is authoritative."
        )
    for key in ("store", *_OPTIONAL):
        got, want = getattr(marker, key), getattr(expected, key)
        if got != want:
            return (
                f"the marker's {key} {_short(got)} differs from the stored request of gate "
                f"{expected.gate_id} ({_short(want)}). The stored request is authoritative."
            )
    return None


def hidden_tag(name: str, data: dict[str, Any]) -> str:
    """One hidden tag: an HTML comment holding ``name`` and JSON that cannot close it.

    The only writer of every tag below: ``<``, ``>`` and ``&`` are escaped in the JSON, so a
    value can never end the comment or open another one.
    """
    return f"<!-- {name} {_dumps(data)} -->"


def render_reply_marker(gate_id: GateId | str) -> str:
    """The hidden first line of every bot reply on ``gate_id``."""
    return hidden_tag(REPLY_MARKER_NAME, {"gate_id": str(gate_id)})


def reply_event_tag(gate_id: GateId | str, event_key: str) -> str:
    """The tag ending a reply to one event: a re-delivery finds it and does not reply twice."""
    return hidden_tag(REPLY_MARKER_NAME, {"event": event_key, "gate_id": str(gate_id)})


def reminder_tag(gate_id: GateId | str, number: int) -> str:
    """The hidden marker that identifies reminder ``number`` of a gate in a comment."""
    return hidden_tag(REMINDER_MARKER_NAME, {"gate_id": str(gate_id), "number": int(number)})


def decision_reply_tag(nonce: str) -> str:
    """The tag ending the reply that announces a decision (found again by its nonce)."""
    return hidden_tag(DECISION_REPLY_MARKER_NAME, {"nonce": nonce})


def is_bot_reply(text: str | None) -> bool:
    """Whether a comment starts with the bot's reply marker (a hint; check the author too)."""
    if not isinstance(text, str):
        return False
    match = _REPLY.match(text[:_MAX_BODY])
    if match is None:
        return False
    try:
        return isinstance(json.loads(match.group("body")), dict)
    except ValueError:
        return False
