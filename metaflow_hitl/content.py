"""What a gate asks about, pinned: the content digest of a request, and which gate a resumed
or retried task may reuse.

A request records :class:`Content`: the content hashes of the gated step's input artifacts
(Metaflow addresses every artifact by the SHA-1 of its serialized bytes; on a join, every
input's, named ``<step>.<artifact>``), the code (the code package's SHA on Argo and other
remote runtimes, else the flow file's SHA-256) and the SHA-256 of the rendered message. Its
:attr:`Content.digest` covers all three.

:func:`reuse_origin_gate` applies the binding rule of ``resume``: the origin run's gate is
reused only when its recorded content digest equals the new one -- an approval never carries
over to other content, and a rejection of the same content stays a rejection. Otherwise the
resumed run opens its own gate, which names the earlier one and what changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Decision

__all__ = [
    "CONTENT_VERSION",
    "Content",
    "Reuse",
    "changed_parts",
    "reuse_origin_gate",
    "sha256_text",
]

#: The version of the ``content`` object inside a request.
CONTENT_VERSION = 1


def sha256_text(text: str | bytes) -> str:
    """``sha256:<hex>`` of ``text`` (UTF-8)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Content:
    """The content a gate asks about.

    Parameters
    ----------
    artifacts
        Input artifact name -> its content key (``sha1:<hex>``, Metaflow's content address).
    code
        ``code-package:<sha>`` or ``flow-file:sha256:<hex>``.
    message
        ``sha256:<hex>`` of the rendered message.
    """

    artifacts: dict[str, str] = field(default_factory=dict)
    code: str = ""
    message: str = ""

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` over the canonical JSON of the artifacts, code and message."""
        canonical = json.dumps(
            {
                "version": CONTENT_VERSION,
                "artifacts": self.artifacts,
                "code": self.code,
                "message": self.message,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return sha256_text(canonical)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": CONTENT_VERSION,
            "digest": self.digest,
            "artifacts": dict(self.artifacts),
            "code": self.code,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Content | None:
        """The content a request recorded; ``None`` for a request without one (older
        releases), or one whose digest does not match its parts (never trusted)."""
        if not data or data.get("version") != CONTENT_VERSION:
            return None
        content = cls(
            artifacts={str(k): str(v) for k, v in dict(data.get("artifacts") or {}).items()},
            code=str(data.get("code") or ""),
            message=str(data.get("message") or ""),
        )
        return content if content.digest == data.get("digest") else None

    def short(self) -> str:
        """``sha256:1a2b3c4d5e6f`` for people."""
        return self.digest[:19]


def changed_parts(old: Content | None, new: Content) -> list[str]:
    """What differs between two contents: artifact names (``+name`` added, ``-name``
    removed), ``code``, ``message``; ``["unknown"]`` when ``old`` recorded none."""
    if old is None:
        return ["unknown (the earlier gate recorded no content digest)"]
    out = []
    for name in sorted(set(old.artifacts) | set(new.artifacts)):
        if name not in new.artifacts:
            out.append(f"-{name}")
        elif name not in old.artifacts:
            out.append(f"+{name}")
        elif old.artifacts[name] != new.artifacts[name]:
            out.append(name)
    if old.code != new.code:
        out.append("code")
    if old.message != new.message:
        out.append("message")
    return out


@dataclass(frozen=True)
class Reuse:
    """Which gate a task waits on, and what its request records about an earlier gate."""

    gate_id: GateId
    #: ``origin`` entries for a new gate that supersedes an earlier one (``supersedes``,
    #: ``supersedes_outcome``, ``changed``); empty when reusing or when there is none.
    origin: dict[str, str | None] = field(default_factory=dict)
    #: ``links`` entries for the new gate (``earlier_decision``: the earlier evidence).
    links: dict[str, str] = field(default_factory=dict)


def reuse_origin_gate(
    store: ApprovalStore,
    own: GateId,
    origin_run_id: str | None,
    content: Content,
) -> Reuse:
    """On ``resume``: the origin run's gate when it asked about the same content, else ``own``.

    Same content: the origin gate is reused whatever its state -- pending (the resumed task
    waits on it), approved (the approval holds), rejected (the rejection stays). Other content,
    or an origin gate that recorded none: ``own``, naming the origin gate and what changed.
    """
    if not origin_run_id or str(origin_run_id) == own.run_id:
        return Reuse(own)
    origin = GateId(own.flow, str(origin_run_id), own.step)
    request = store.get_request(origin)
    if request is None:
        return Reuse(own)
    earlier = Content.from_dict(request.content)
    if earlier is not None and earlier.digest == content.digest:
        return Reuse(origin)
    decision = store.get_decision(origin)
    changed = changed_parts(earlier, content)
    notes: dict[str, str | None] = {
        "supersedes": str(origin),
        "supersedes_outcome": decision.outcome if decision else "pending",
        "changed": ", ".join(changed),
    }
    return Reuse(own, notes, _evidence(decision, request.review))


def _evidence(decision: Decision | None, review: Mapping[str, Any]) -> dict[str, str]:
    url = (decision.evidence_url if decision else None) or review.get("url")
    return {"earlier_decision": str(url)} if url else {}
