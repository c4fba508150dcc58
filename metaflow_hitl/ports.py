"""The ports: narrow interfaces the core needs from the outside world.

Each is a :class:`typing.Protocol`, named for its role; adapters are named for their
technology (``LocalApprovalStore``, later ``S3ApprovalStore``, ``GitReviewBackend``...).
The core calls only these methods, so every adapter can be run through one contract suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.records import (
    Decision,
    PageChange,
    Publication,
    Reminder,
    Request,
    Vote,
    Waiter,
)

__all__ = [
    "ApprovalStore",
    "Notifier",
    "ReminderNotifier",
    "ReminderReview",
    "Resumer",
    "ReviewBackend",
]


@runtime_checkable
class ApprovalStore(Protocol):
    """Where requests, votes and decisions live.

    Contract (checked by ``tests/contract``):

    * :meth:`create_request`, :meth:`create_decision` and :meth:`create_reminder` are
      create-if-absent and atomic: no reader ever sees a half-written record, and among
      concurrent creators exactly one wins;
    * records are never modified in place; votes are appended;
    * listing pending gates costs work proportional to pending gates, not to history.
    """

    #: A human-readable location (``/home/me/.metaflow/_hitl``, ``s3://bucket/prefix``).
    location: str
    #: Whether reads cost network round trips (worth overlapping in threads), and the store
    #: is shared beyond this machine (so it has no local review repo by default).
    is_remote: bool

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

    def scan_gates(self, flow: str | None = None) -> dict[GateId, dict[str, str]]:
        """Every gate with a request (optionally one flow's), with its records' names
        (``request.json``, ``decision.json``, ``votes/<file>``) and a tag per record that
        changes whenever the record is replaced (the S3 ETag, the local inode number).
        One listing of the store: no record is read."""
        ...

    def read_record(self, gate_id: GateId, name: str) -> bytes | None:
        """The bytes of one record named as :meth:`scan_gates` names it, or None."""
        ...

    def list_index_segments(self) -> list[str]:
        """The names of the index segments (:mod:`metaflow_hitl.index.segments`)."""
        ...

    def get_index_segment(self, name: str) -> bytes | None:
        """A segment's bytes, or None if it is gone."""
        ...

    def create_index_segment(self, name: str, data: bytes) -> bool:
        """Store a segment unless one of that name exists (atomic, as records are)."""
        ...

    def delete_index_segment(self, name: str) -> None:
        """Delete a segment (merged into another); deleting a missing one is no error."""
        ...

    def create_reminder(self, reminder: Reminder) -> bool:
        """Record that reminder ``reminder.number`` of its gate is being sent, unless it was;
        True if this call created it (and so must send it), False if another sender did."""
        ...

    def list_reminders(self, gate_id: GateId) -> list[Reminder]:
        """The reminders recorded for the gate, by number."""
        ...

    def create_publication(self, publication: Publication) -> bool:
        """Record what was published on GitHub for the gate, unless it was; True if this call
        created it. The first record stands (a retried notify finds it)."""
        ...

    def get_publication(self, gate_id: GateId) -> Publication | None:
        """What was published for the gate, or None (no GitHub page, or an older release)."""
        ...

    def add_page_change(self, change: PageChange) -> None:
        """Append that the gate's page was seen changed."""
        ...

    def list_page_changes(self, gate_id: GateId) -> list[PageChange]:
        """The changes seen on the gate's page, oldest first."""
        ...

    def put_waiter(self, waiter: Waiter) -> None:
        """Write the waiting task's heartbeat, replacing the previous one."""
        ...

    def get_waiter(self, gate_id: GateId) -> Waiter | None:
        """The latest heartbeat of the gate's waiting task, or None (never written)."""
        ...


class ReviewBackend(Protocol):
    """Where people review a gate: a git repo, a GitHub pull request or issue."""

    def open_review(self, request: Request, *, approval_file: str) -> dict[str, str | None]:
        """Publish the request for review (idempotent); return links to it."""
        ...

    def record_decision(
        self, request: Request, decision: Decision, *, publication: Publication | None
    ) -> dict[str, str | None]:
        """Record the decision where the review happened (commit, close/merge, reply);
        ``publication`` is what was published on GitHub for the gate, if anything."""
        ...


class Notifier(Protocol):
    """Tells people that a gate opened or was decided. Must never fail the gate."""

    def gate_opened(self, request: Request) -> None:
        """Announce a new gate."""
        ...

    def gate_decided(self, request: Request, decision: Decision) -> None:
        """Announce a decision."""
        ...


@runtime_checkable
class ReminderNotifier(Protocol):
    """A :class:`Notifier` that can also re-announce a gate that is still pending."""

    def gate_reminded(self, request: Request, reminder: Reminder) -> None:
        """Remind people of a pending gate (mentioning ``reminder.escalated_to``, if any)."""
        ...


@runtime_checkable
class ReminderReview(Protocol):
    """A review backend that can comment on a gate's page (a pull request or an issue)."""

    def post_reminder(self, request: Request, reminder: Reminder) -> dict[str, str | None] | None:
        """Comment the reminder on the gate's open page, once per reminder number.

        Returns the page's ``number`` and ``url`` (and ``posted``: ``"True"`` unless an
        earlier attempt had already posted it), or ``None`` when the gate has no open page.
        """
        ...


class Resumer(Protocol):
    """Resumes the paused run of a decided gate (Argo); a no-op for local runs."""

    def resume(self, request: Request, decision: Decision) -> bool:
        """Resume exactly the gate's node; True if this call resumed it, False if it was."""
        ...
