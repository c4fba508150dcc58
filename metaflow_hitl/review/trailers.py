"""The ``Hitl-*`` git trailers of review-repo commits: written here, read back here.

A public record format (see README *Record formats*): the review repo's history is the audit
trail, and ``metaflow-hitl audit`` reads decisions back from these trailers alone, on either
backend (a git remote, or GitHub's commits API). One line per trailer, newlines removed, so a
reason or login can never forge a second trailer.

* the commit that opens a gate: ``Hitl-Gate``, ``Hitl-Request-Digest``;
* a decision commit: ``Hitl-Gate``, ``Hitl-Outcome``, ``Hitl-Decided-By``, ``Hitl-Channel``,
  ``Hitl-Decided-At``, ``Hitl-Evidence``, ``Hitl-Request-Digest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from metaflow_hitl.records import Decision, Request
from metaflow_hitl.timestamps import format_ts

__all__ = ["TRAILER", "AuditEntry", "decision_commit_message", "open_commit_message"]

#: One trailer line.
TRAILER = re.compile(r"^(Hitl-[A-Za-z-]+): (.*)$", re.MULTILINE)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _check_pair(request: Request, decision: Decision) -> None:
    if decision.gate_id != request.gate_id:
        raise ValueError(f"decision of {decision.gate_id} paired with request {request.gate_id}")


def open_commit_message(request: Request) -> str:
    """The message of the commit that opens a gate's review branch."""
    return (
        f"hitl: open gate {_one_line(request.gate_id)}\n\n"
        f"Hitl-Gate: {_one_line(request.gate_id)}\n"
        f"Hitl-Request-Digest: {request.digest()}\n"
    )


def decision_commit_message(request: Request, decision: Decision) -> str:
    """The commit message of a decision commit: a summary line, then git trailers.

    The trailers (``Hitl-Gate``, ``Hitl-Outcome``, ``Hitl-Decided-By``, ``Hitl-Channel``,
    ``Hitl-Evidence``, ``Hitl-Request-Digest``) are one line each, newlines removed.
    """
    _check_pair(request, decision)

    subject = _one_line(f"hitl: {decision.gate_id} {decision.summary()}")
    subject = subject if len(subject) <= 100 else subject[:99] + "…"
    trailers = [
        ("Hitl-Gate", decision.gate_id),
        ("Hitl-Outcome", decision.outcome),
        ("Hitl-Decided-By", decision.decided_by),
        ("Hitl-Channel", decision.channel),
        ("Hitl-Decided-At", format_ts(decision.decided_at)),
        ("Hitl-Evidence", decision.evidence_url or "none"),
        ("Hitl-Request-Digest", decision.request_digest),
    ]
    return subject + "\n\n" + "\n".join(f"{k}: {_one_line(v)}" for k, v in trailers) + "\n"


@dataclass(frozen=True)
class AuditEntry:
    """One decision as the review repo's history shows it."""

    gate_id: str
    outcome: str
    decided_by: str
    channel: str
    decided_at: str
    evidence: str
    commit: str
    author: str
    request_digest: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)

    @classmethod
    def from_commit(cls, message: str, *, commit: str, author: str) -> AuditEntry | None:
        """The entry a decision commit's ``Hitl-*`` trailers describe; ``None`` for others."""
        trailers = dict(TRAILER.findall(message))
        if "Hitl-Outcome" not in trailers:
            return None
        return cls(
            gate_id=trailers.get("Hitl-Gate", ""),
            outcome=trailers["Hitl-Outcome"],
            decided_by=trailers.get("Hitl-Decided-By", ""),
            channel=trailers.get("Hitl-Channel", ""),
            decided_at=trailers.get("Hitl-Decided-At", ""),
            evidence=trailers.get("Hitl-Evidence", ""),
            commit=commit,
            author=author,
            request_digest=trailers.get("Hitl-Request-Digest", ""),
        )
