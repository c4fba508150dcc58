"""Is anybody waiting on a local gate? The waiting task's heartbeat.

A local run waits in a process on someone's machine. When that process is killed (Ctrl-C
twice, a closed terminal, ``kill -9``, a rebooted laptop), its gate stays pending in the
store forever: nothing will expire it, and reminders would keep asking people to decide a
gate whose run is gone. So while it waits, the task rewrites a
:class:`~metaflow_hitl.records.Waiter` record every :data:`BEAT_SECONDS`; a pending local
gate whose last beat is older than its lease has *nobody waiting*: ``list`` and ``show`` say
so and reminders skip it. It can still be decided: ``resume`` of the run then finds the
decision (for the same content, see :mod:`metaflow_hitl.content`).

Argo gates have no waiting process (a suspend node); whether their run ended is asked of
Argo (:class:`~metaflow_hitl.errors.RunEnded`), not judged from a heartbeat.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from datetime import datetime

from metaflow_hitl.errors import HitlError
from metaflow_hitl.polling import PollSchedule
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Decision, Request, Waiter

__all__ = [
    "BEAT_SECONDS",
    "chain",
    "heartbeat",
    "lease_for",
    "nobody_waiting",
    "read_waiter",
    "record_stop",
]

#: Seconds between heartbeats (on S3: 120 PUTs an hour of waiting, beside 720 polls).
BEAT_SECONDS = 30.0

OnPoll = Callable[[datetime], None]


def lease_for(poll_interval: float | PollSchedule, beat: float = BEAT_SECONDS) -> int:
    """How long a beat counts: three beats, or three polls when polls are further apart
    (beats happen on polls, so a slow ``poll_interval`` spaces them out)."""
    slowest = poll_interval.ceiling if isinstance(poll_interval, PollSchedule) else poll_interval
    return math.ceil(3 * max(beat, slowest))


def heartbeat(
    store: ApprovalStore,
    request: Request,
    *,
    host: str,
    pid: int,
    lease_seconds: int,
    beat: float = BEAT_SECONDS,
    echo: Callable[[str], None] | None = None,
) -> OnPoll:
    """A per-poll callback that writes the waiter record at most every ``beat`` seconds.

    It never raises (the wait must go on): a failed write is reported once through ``echo``
    and retried at the next beat.
    """
    started: datetime | None = None
    last: datetime | None = None
    warned = False

    def on_poll(now: datetime) -> None:
        nonlocal started, last, warned
        if last is not None and (now - last).total_seconds() < beat:
            return
        started = started or now
        try:
            store.put_waiter(_waiter(request, host, pid, started, now, lease_seconds))
        except HitlError as exc:
            if echo is not None and not warned:
                echo(f"[@hitl] Could not record that this task is waiting: {exc.message}")
            warned = True
            return
        last = now

    return on_poll


def chain(*callbacks: OnPoll | None) -> OnPoll | None:
    """One callback calling each given one in turn (``None`` entries skipped)."""
    present = [c for c in callbacks if c is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def on_poll(now: datetime) -> None:
        for callback in present:
            callback(now)

    return on_poll


def nobody_waiting(request: Request, waiter: Waiter | None, now: datetime) -> bool:
    """Whether a pending gate is known to have nobody waiting on it at ``now``: a local gate
    whose waiting task stopped beating. Unknown (no heartbeat ever, or not a local gate) is
    ``False``: only what the store shows is judged."""
    return request.runtime == "local" and waiter is not None and not waiter.alive(now)


def read_waiter(store: ApprovalStore, request: Request, decision: Decision | None) -> Waiter | None:
    """The heartbeat of a pending local gate (one read); ``None`` for any other gate."""
    if decision is not None or request.runtime != "local":
        return None
    return store.get_waiter(request.gate_id)


def record_stop(
    store: ApprovalStore, request: Request, *, host: str, pid: int, now: datetime, why: str
) -> None:
    """Record on the gate why its task stopped on its own (before it fails), so ``list`` and
    ``show`` tell the people asked to decide. Best effort: a store that cannot be written
    must not hide the original failure, so a write error is swallowed here (the task's own
    error is what gets reported)."""
    with contextlib.suppress(HitlError):
        store.put_waiter(_waiter(request, host, pid, now, now, 1, stopped=why[:2000]))


def _waiter(
    request: Request,
    host: str,
    pid: int,
    started: datetime,
    now: datetime,
    lease_seconds: int,
    *,
    stopped: str | None = None,
) -> Waiter:
    return Waiter(
        gate_id=request.gate_id,
        host=host,
        pid=pid,
        started_at=started,
        beat_at=now,
        lease_seconds=lease_seconds,
        stopped=stopped,
    )
