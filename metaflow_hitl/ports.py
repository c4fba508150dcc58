"""The ports: narrow interfaces the core needs from the outside world.

Each is a :class:`typing.Protocol`, named for its role; adapters are named for their
technology (``LocalApprovalStore``, later ``S3ApprovalStore``, ``GitReviewBackend``...).
The core calls only these methods, so every adapter can be run through one contract suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.records import Decision, Request, Vote

__all__ = ["ApprovalStore", "Notifier", "Resumer", "ReviewBackend"]


@runtime_checkable
class ApprovalStore(Protocol):
    """Where requests, votes and decisions live.

    Contract (checked by ``tests/contract``):

    * :meth:`create_request` and :meth:`create_decision` are create-if-absent and atomic:
      no reader ever sees a half-written record, and among concurrent creators exactly one
      wins;
    * records are never modified in place; votes are appended;
    * listing pending gates costs work proportional to pending gates, not to history.
    """

    #: A human-readable location (``/home/me/.metaflow/_hitl``, ``s3://bucket/prefix``).
    location: str

    def create_request(self, request: Request) -> bool:
        """Store the request unless one exists; True if this call created it."""
        ...

    def get_request(self, gate_id: GateId) -> Request | None:
        """The stored request, or None."""
        ...

    def add_vote(self, vote: Vote) -> None:
        """Append a vote."""
        ...

    def list_votes(self, gate_id: GateId) -> list[Vote]:
        """Every vote cast on the gate, in no particular order."""
        ...

    def create_decision(self, decision: Decision) -> Decision:
        """Store the decision unless one exists; return the stored (winning) decision."""
        ...

    def get_decision(self, gate_id: GateId) -> Decision | None:
        """The stored decision, or None."""
        ...

    def list_gates(self, *, pending_only: bool, flow: str | None = None) -> Iterator[GateId]:
        """Gate ids in the store, optionally only pending ones and one flow's."""
        ...


class ReviewBackend(Protocol):
    """Where people review a gate: a git repo, a GitHub pull request or issue."""

    def open_review(self, request: Request) -> dict[str, str | None]:
        """Publish the request for review (idempotent); return links to it."""
        ...

    def record_decision(self, request: Request, decision: Decision) -> dict[str, str | None]:
        """Record the decision where the review happened (commit, close/merge, reply)."""
        ...


class Notifier(Protocol):
    """Tells people that a gate opened or was decided. Must never fail the gate."""

    def gate_opened(self, request: Request) -> None:
        """Announce a new gate."""
        ...

    def gate_decided(self, request: Request, decision: Decision) -> None:
        """Announce a decision."""
        ...


class Resumer(Protocol):
    """Resumes the paused run of a decided gate (Argo); a no-op for local runs."""

    def resume(self, request: Request, decision: Decision) -> bool:
        """Resume exactly the gate's node; True if this call resumed it, False if it was."""
        ...
