"""Reminders and escalation for gates left pending: ``@hitl(remind_every="4h", escalate_to=[...])``.

The rules, as pure functions of a request and a clock:

* reminder ``n`` is due once ``n`` whole intervals have passed since the gate opened,
  ``n = floor((now - created_at) / remind_every)``, for ``n >= 1``, while the gate is undecided
  and not expired (:func:`due_reminder`). A sender that runs late sends only the latest due
  reminder, never a burst of the ones it missed;
* from reminder :data:`~metaflow_hitl.spec.ESCALATE_FROM` (3) on -- after the second reminder --
  a reminder also mentions the gate's ``escalate_to`` people;
* each reminder number is sent at most once, whoever sends it: the sender first creates the
  :class:`~metaflow_hitl.records.Reminder` record with the store's atomic create-if-absent
  (:meth:`~metaflow_hitl.ports.ApprovalStore.create_reminder`), and only the sender whose create
  succeeded notifies and comments. Racing senders (two scheduled ``metaflow-hitl remind`` runs,
  the waiting task of a local run) never send one twice. The price: a sender that dies after
  creating the record and before delivering loses that reminder; the next one comes an interval
  later.

:func:`send_reminder` and :func:`remind_pending` carry the rules out over the ports: the
:class:`~metaflow_hitl.ports.ReminderNotifier` re-announces the gate (Apprise) and a
:class:`~metaflow_hitl.ports.ReminderReview` comments on the gate's pull request or issue
(GitHub; the git review backend has no comments, so there a reminder is a notification only).
A failed notification or comment is reported in the :class:`ReminderResult`, never raised: it
must not fail a waiting gate or the other gates' reminders.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from metaflow_hitl.errors import HitlError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.liveness import nobody_waiting, read_waiter
from metaflow_hitl.ports import ApprovalStore, ReminderNotifier, ReminderReview
from metaflow_hitl.records import Reminder, Request
from metaflow_hitl.spec import ESCALATE_FROM
from metaflow_hitl.timestamps import add_seconds, format_ts

__all__ = [
    "Due",
    "ReminderResult",
    "due_reminder",
    "mentions",
    "remind_pending",
    "reminders_while_waiting",
    "send_reminder",
]

#: The versioned name of the hidden marker that ends every reminder comment.

# A GitHub login or an org/team slug, with or without its "@": anything else is never
# turned into a mention (a hand-edited record cannot make a reminder ping or say more).
_MENTIONABLE = re.compile(
    r"@?[A-Za-z0-9](?:[A-Za-z0-9._-]{0,38})(?:/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99}))?"
)

ReviewFor = Callable[[Request], Any]
Status = Literal["sent", "already-sent", "due"]


@dataclass(frozen=True)
class Due:
    """A reminder that is due: its number, when it became due, and whom it escalates to."""

    number: int
    due_at: datetime
    escalate_to: tuple[str, ...]


def due_reminder(request: Request, now: datetime, *, decided: bool = False) -> Due | None:
    """The reminder due for ``request`` at ``now``, or ``None``.

    Parameters
    ----------
    request
        The stored request (``remind_every_seconds`` unset means no reminders).
    now
        The current time.
    decided
        Whether the gate has a decision (then nothing is due).

    Returns
    -------
    Due or None
        ``None`` when reminders are off, the gate is decided or expired (``now >=
        expires_at``), or less than one interval has passed.
    """
    every = request.remind_every_seconds
    if decided or every is None or every <= 0 or now >= request.expires_at:
        return None
    elapsed = (now - request.created_at).total_seconds()
    number = math.floor(elapsed / every) if elapsed >= 0 else 0
    if number < 1:
        return None
    escalate = tuple(request.escalate_to) if number >= ESCALATE_FROM else ()
    return Due(
        number=number, due_at=add_seconds(request.created_at, number * every), escalate_to=escalate
    )


def mentions(entries: Iterable[str]) -> list[str]:
    """``@login`` / ``@org/team`` mentions for the entries that are logins or teams."""
    out: list[str] = []
    for entry in entries:
        text = str(entry).strip()
        if _MENTIONABLE.fullmatch(text):
            mention = "@" + text.lstrip("@")
            if mention.lower() not in (m.lower() for m in out):
                out.append(mention)
    return out


@dataclass(frozen=True)
class ReminderResult:
    """What one reminder of one gate did.

    Attributes
    ----------
    status
        ``sent`` (this call claimed and sent it), ``already-sent`` (another sender had
        claimed it) or ``due`` (a dry run: nothing was written or sent).
    comment, notification
        What happened on the review page and through the notifier, in words.
    problems
        Failures (delivery, comment); the reminder still counts as sent.
    """

    gate_id: GateId
    number: int
    due_at: datetime
    escalated_to: tuple[str, ...]
    status: Status
    comment: str = ""
    notification: str = ""
    url: str | None = None
    problems: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate_id": str(self.gate_id),
            "number": self.number,
            "due_at": format_ts(self.due_at),
            "escalated_to": list(self.escalated_to),
            "status": self.status,
            "comment": self.comment,
            "notification": self.notification,
            "url": self.url,
            "problems": list(self.problems),
        }

    def summary(self) -> str:
        """One line for people."""
        head = f"Reminder {self.number} for {self.gate_id}"
        if self.escalated_to:
            head += f" (escalated to {', '.join(self.escalated_to)})"
        if self.status == "already-sent":
            return f"{head}: already sent by another sender; skipped."
        if self.status == "due":
            return f"{head}: due (dry run, nothing sent)."
        return f"{head}: sent. Comment: {self.comment} Notification: {self.notification}"


def send_reminder(
    store: ApprovalStore,
    request: Request,
    *,
    now: datetime,
    sent_by: str,
    notifier: Any = None,
    review_for: ReviewFor | None = None,
    dry_run: bool = False,
) -> ReminderResult | None:
    """Send the reminder due for one gate, unless another sender has.

    Parameters
    ----------
    store
        Where the request lives; the reminder record is created there first.
    request
        The stored request.
    now
        The current time.
    sent_by
        Who sends (``remind-command``, ``waiting-task``), kept in the record.
    notifier
        A :class:`~metaflow_hitl.ports.ReminderNotifier`, or ``None``.
    review_for
        Builds the request's review backend (``backend_for_request``); ``None``: no comment.
    dry_run
        Report what is due; write and send nothing.

    Returns
    -------
    ReminderResult or None
        ``None`` when no reminder is due (or the gate is decided).

    Raises
    ------
    StoreError
        When the store cannot be read or written (nothing was sent).
    """
    due = due_reminder(request, now)
    if due is None or store.get_decision(request.gate_id) is not None:
        return None
    result = ReminderResult(
        gate_id=request.gate_id,
        number=due.number,
        due_at=due.due_at,
        escalated_to=due.escalate_to,
        status="due",
    )
    if dry_run:
        return result
    record = Reminder(
        gate_id=request.gate_id,
        number=due.number,
        due_at=due.due_at,
        sent_at=now,
        sent_by=sent_by,
        escalated_to=due.escalate_to,
    )
    if not store.create_reminder(record):
        return replace(result, status="already-sent")
    problems: list[str] = []
    comment, url = _comment(request, record, review_for, problems)
    announced = replace(request, review={**request.review, "url": url}) if url else request
    notification = _notify(notifier, announced, record, problems)
    return replace(
        result,
        status="sent",
        comment=comment,
        notification=notification,
        url=url,
        problems=tuple(problems),
    )


def _comment(
    request: Request, reminder: Reminder, review_for: ReviewFor | None, problems: list[str]
) -> tuple[str, str | None]:
    if review_for is None:
        return "none (no review backend given).", None
    try:
        backend = review_for(request)
        if backend is None:
            return "none (the gate has no review repo).", None
        if not isinstance(backend, ReminderReview):
            kind = getattr(backend, "kind", None) or type(backend).__name__
            return f"none ({kind} review repos have no comments; notification only).", None
        refs = backend.post_reminder(request, reminder)
    except Exception as exc:  # a reminder never fails the gate; reported instead
        problems.append(f"comment failed: {_why(exc)}")
        return "failed (see problems).", None
    if refs is None:
        return "none (the gate's pull request or issue is not open).", None
    url = refs.get("url")
    posted = refs.get("posted") != "False"
    where = f"#{refs.get('number')} {url or ''}".strip()
    return (f"posted on {where}." if posted else f"already on {where}."), url


def _notify(notifier: Any, request: Request, reminder: Reminder, problems: list[str]) -> str:
    if notifier is None:
        return "none (no notifier configured)."
    if not isinstance(notifier, ReminderNotifier):
        return f"none ({type(notifier).__name__} cannot send reminders)."
    try:
        notifier.gate_reminded(request, reminder)
    except Exception as exc:  # the port says never raise; a broken one is reported anyway
        problems.append(f"notification failed: {_why(exc)}")
        return "failed (see problems)."
    report = getattr(notifier, "last_report", None)
    if report is None:
        return "sent."
    failed = list(getattr(report, "failed", ()))
    deliveries = list(getattr(report, "deliveries", ()))
    if getattr(report, "error", None):
        problems.append(f"notification failed: {report.error}")
    for item in failed:
        problems.append(
            f"notification to {item.url} failed after {item.attempts} attempt(s): {item.error}"
        )
    return f"delivered to {len(deliveries) - len(failed)} of {len(deliveries)} URL(s)."


def _why(exc: BaseException) -> str:
    if isinstance(exc, HitlError):
        return f"{exc.headline}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def remind_pending(
    store: ApprovalStore,
    *,
    now: datetime,
    sent_by: str,
    notifier: Any = None,
    review_for: ReviewFor | None = None,
    flow: str | None = None,
    dry_run: bool = False,
) -> tuple[list[ReminderResult], list[str]]:
    """Send the due reminders of every pending gate (of ``flow``, if given).

    Reads only the pending gates (``list_gates(pending_only=True)``) and, for those with
    ``remind_every``, their decision. A local gate whose waiting task stopped beating (its
    run was killed, :func:`metaflow_hitl.liveness.nobody_waiting`) is never reminded. A store
    error on one gate is reported and the others go on.

    Returns
    -------
    (list of ReminderResult, list of str)
        One result per gate with a reminder due, and the gates that could not be handled.
    """
    results: list[ReminderResult] = []
    errors: list[str] = []
    for gate_id in store.list_gates(pending_only=True, flow=flow):
        try:
            request = store.get_request(gate_id)
            if request is None or request.remind_every_seconds is None:
                continue
            if nobody_waiting(request, read_waiter(store, request, None), now):
                continue  # its run was killed: nobody to remind about (liveness.py)
            result = send_reminder(
                store,
                request,
                now=now,
                sent_by=sent_by,
                notifier=notifier,
                review_for=review_for,
                dry_run=dry_run,
            )
        except HitlError as exc:
            errors.append(f"{gate_id}: {exc.message}")
            continue
        if result is not None:
            results.append(result)
    return results, errors


def reminders_while_waiting(
    store: ApprovalStore,
    request: Request,
    *,
    notifier: Any = None,
    review_for: ReviewFor | None = None,
    echo: Callable[[str], None] | None = None,
) -> Callable[[datetime], None] | None:
    """A per-poll callback for :func:`~metaflow_hitl.gates.wait_for_decision` that sends the
    gate's reminders from the waiting task; ``None`` when the gate has no ``remind_every``.

    Between intervals a poll costs no store access: the callback remembers the last reminder
    number it handled and only tries the next one once it is due. It never raises: a failed
    reminder is reported through ``echo`` and the task keeps waiting.
    """
    if request.remind_every_seconds is None:
        return None
    handled = 0
    say = echo or (lambda _text: None)

    def on_poll(now: datetime) -> None:
        nonlocal handled
        due = due_reminder(request, now)
        if due is None or due.number <= handled:
            return
        handled = due.number
        try:
            result = send_reminder(
                store,
                request,
                now=now,
                sent_by="waiting-task",
                notifier=notifier,
                review_for=review_for,
            )
        except Exception as exc:  # the waiting task must keep waiting
            say(f"Reminder {due.number} for {request.gate_id} failed: {_why(exc)}")
            return
        if result is not None:
            say(result.summary())
            for problem in result.problems:
                say(f"  problem: {problem}")

    return on_poll
