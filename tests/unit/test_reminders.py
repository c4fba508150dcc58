"""Reminders: which one is due when (explicit clocks), escalation from the third, the options'
refusals, older records without the new fields, the comment text, and the service over a
local store with recording ports (the once-per-number rule, failures reported, never raised).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from metaflow_hitl import gates
from metaflow_hitl.errors import ConfigError, StoreError
from metaflow_hitl.markers import is_bot_reply, reminder_tag
from metaflow_hitl.records import Actor, Decision, Reminder, Request, decode_record, encode_record
from metaflow_hitl.reminders import (
    due_reminder,
    mentions,
    remind_pending,
    reminders_while_waiting,
    send_reminder,
)
from metaflow_hitl.render.documents import render_reminder_comment
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from tests.support.builders import GATE, T0, build_request

H = timedelta(hours=1)


def gate(**options: Any) -> Request:
    options.setdefault("timeout", "24h")
    options.setdefault("remind_every", "4h")
    return build_request(**options)


# -- which reminder is due ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "number"),
    [
        pytest.param(timedelta(0), None, id="at-open"),
        pytest.param(4 * H - timedelta(milliseconds=1), None, id="1ms-before-first"),
        pytest.param(4 * H, 1, id="exactly-first"),
        pytest.param(4 * H + timedelta(milliseconds=1), 1, id="just-after-first"),
        pytest.param(8 * H - timedelta(milliseconds=1), 1, id="1ms-before-second"),
        pytest.param(8 * H, 2, id="exactly-second"),
        pytest.param(23 * H, 5, id="late-sender-gets-the-latest-only"),
        pytest.param(24 * H - timedelta(milliseconds=1), 5, id="1ms-before-expiry"),
        pytest.param(24 * H, None, id="at-expiry"),
        pytest.param(30 * H, None, id="after-expiry"),
        pytest.param(-H, None, id="clock-before-open"),
    ],
)
def test_due_number_follows_whole_intervals(after: timedelta, number: int | None) -> None:
    due = due_reminder(gate(), T0 + after)
    assert (due.number if due else None) == number
    if due is not None:
        assert due.due_at == T0 + number * 4 * H  # type: ignore[operator]
        assert due.due_at <= T0 + after


def test_nothing_is_due_without_remind_every_or_once_decided() -> None:
    assert due_reminder(build_request(timeout="24h"), T0 + 10 * H) is None
    assert due_reminder(gate(), T0 + 10 * H, decided=True) is None


@pytest.mark.parametrize(
    ("number", "escalated"), [(1, False), (2, False), (3, True), (4, True), (5, True)]
)
def test_escalation_starts_with_the_third_reminder(number: int, escalated: bool) -> None:
    request = gate(approvers=["alice", "bob"], escalate_to=["bob"])
    due = due_reminder(request, T0 + number * 4 * H)
    assert due is not None
    assert due.number == number
    assert due.escalate_to == (("bob",) if escalated else ())


def test_fractional_intervals_have_no_drift() -> None:
    request = gate(timeout="10s", remind_every="0.1s")
    due = due_reminder(request, T0 + timedelta(seconds=9.95))
    assert due is not None
    assert due.number == 99


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        pytest.param({"remind_every": "24h"}, "not shorter than timeout", id="equal-to-timeout"),
        pytest.param({"remind_every": "2d"}, "not shorter than timeout", id="longer"),
        pytest.param({"remind_every": "1m"}, "at most 100", id="too-many"),
        pytest.param({"remind_every": "0s"}, "longer than zero", id="zero"),
        pytest.param({"remind_every": "soon"}, "remind_every 'soon' is not a duration", id="word"),
        pytest.param({"escalate_to": ["bob"]}, "escalate_to needs remind_every", id="no-remind"),
        pytest.param(
            {"remind_every": "8h", "escalate_to": ["bob"]}, "never be used", id="unreachable"
        ),
        pytest.param(
            {"remind_every": "4h", "escalate_to": ["bob"], "approvers": ["alice"]},
            "may not decide this gate",
            id="not-an-approver",
        ),
        pytest.param(
            {"remind_every": "4h", "escalate_to": ["bob; rm -rf"]},
            "escalate_to entry 'bob; rm -rf'",
            id="not-a-login",
        ),
    ],
)
def test_bad_reminder_options_are_refused(options: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        GateSpec.from_options(message="ok?", timeout="24h", **options)


def test_accepted_reminder_options_reach_the_request() -> None:
    request = gate(approvers=["alice", "@acme/ml-leads"], escalate_to="@acme/sre, carol")
    assert request.remind_every_seconds == 4 * 3600
    # a team among the approvers may hold them: not checkable before run time, so allowed
    assert request.escalate_to == ("@acme/sre", "carol")
    anyone = gate(escalate_to=["@bob"])  # no approvers: anyone may decide
    assert anyone.escalate_to == ("@bob",)


# -- records --------------------------------------------------------------------------------------


def test_a_request_written_before_reminders_existed_still_decodes_with_its_digest() -> None:
    old = json.loads(encode_record(build_request(timeout="24h")))
    assert "remind_every_seconds" not in old
    assert "escalate_to" not in old
    canonical = json.dumps(old, sort_keys=True, separators=(",", ":"))
    request = decode_record(json.dumps(old), Request)
    assert request.remind_every_seconds is None
    assert request.escalate_to == ()
    import hashlib

    assert request.digest() == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def test_reminder_fields_round_trip_and_change_the_digest() -> None:
    request = gate(escalate_to=["bob"])
    again = decode_record(encode_record(request), Request)
    assert again == request
    assert replace(request, remind_every_seconds=None, escalate_to=()).digest() != request.digest()


def test_reminder_record_round_trips_and_refuses_nonsense() -> None:
    reminder = Reminder(
        gate_id=GATE, number=3, due_at=T0, sent_at=T0 + H, sent_by="remind-command",
        escalated_to=("@acme/sre",),
    )  # fmt: skip
    assert decode_record(encode_record(reminder), Reminder) == reminder
    doc = json.loads(encode_record(reminder))
    doc["number"] = 0
    with pytest.raises(Exception, match="number"):
        decode_record(json.dumps(doc), Reminder)


# -- the comment ----------------------------------------------------------------------------------


def _reminder(request: Request, number: int, escalated: tuple[str, ...] = ()) -> Reminder:
    every = request.remind_every_seconds or 1
    return Reminder(
        gate_id=request.gate_id,
        number=number,
        due_at=request.created_at + number * timedelta(seconds=every),
        sent_at=T0,
        sent_by="test",
        escalated_to=escalated,
    )


def test_comment_is_a_bot_reply_mentioning_approvers_then_escalation() -> None:
    request = gate(approvers=["alice", "@acme/ml-leads"], escalate_to=["bob"])
    text = render_reminder_comment(request, _reminder(request, 2))
    assert is_bot_reply(text)
    assert "**Reminder 2:**" in text
    assert "8h after it opened" in text
    assert "@alice @acme/ml-leads: please review" in text
    assert "Escalation" not in text
    assert "@bob" not in text
    assert text.rstrip().endswith(reminder_tag(request.gate_id, 2))
    escalated = render_reminder_comment(request, _reminder(request, 3, ("bob",)))
    assert "**Escalation:** still undecided after 2 reminders. @bob: please decide" in escalated


def test_a_template_override_rewrites_the_reminder_but_keeps_its_tags(tmp_path) -> None:
    """Reminders are rendered from ``reminder.md.j2`` like every other text people read, so
    ``METAFLOW_HITL_TEMPLATES_DIR`` changes them; the hidden tags stay ours."""
    (tmp_path / "reminder.md.j2").write_text(
        "Bitte entscheiden: {{ gate_id|code }} (Erinnerung {{ number }}), "
        "{{ mentions|join(' ')|safe }}\n"
    )
    request = gate(approvers=["alice"])
    text = render_reminder_comment(request, _reminder(request, 2), templates_dir=tmp_path)
    assert f"Bitte entscheiden: `{request.gate_id}` (Erinnerung 2), @alice" in text
    assert "**Reminder" not in text
    assert is_bot_reply(text)
    assert text.rstrip().endswith(reminder_tag(request.gate_id, 2))


def test_hostile_entries_are_never_mentions() -> None:
    assert mentions(["alice", "@Alice", "x\n/approve", "a b", "@acme/ml-leads"]) == [
        "@alice",
        "@acme/ml-leads",
    ]
    tag = reminder_tag("F/1/s", 2)
    assert tag.count("-->") == 1
    assert "<" not in tag[4:-3]


# -- the service over a local store ---------------------------------------------------------------


class Notes:
    """A notifier that records reminders (the ReminderNotifier port)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[Request, Reminder]] = []
        self.fail = fail

    def gate_opened(self, request: Request) -> None:  # the Notifier port
        raise AssertionError("not expected")

    def gate_decided(self, request: Request, decision: Decision) -> None:
        raise AssertionError("not expected")

    def gate_reminded(self, request: Request, reminder: Reminder) -> None:
        if self.fail:
            raise RuntimeError("webhook down")
        self.sent.append((request, reminder))


class Page:
    """A review backend whose page records reminder comments (the ReminderReview port)."""

    kind = "page"

    def __init__(self) -> None:
        self.comments: list[int] = []

    def post_reminder(self, request: Request, reminder: Reminder) -> dict[str, str | None]:
        self.comments.append(reminder.number)
        return {"number": "7", "url": "https://example.org/pr/7", "posted": "True"}


@pytest.fixture
def store(tmp_path: Path) -> LocalApprovalStore:
    return LocalApprovalStore(tmp_path / "_hitl")


def test_each_number_is_sent_once_then_the_next_interval_sends_the_next(
    store: LocalApprovalStore,
) -> None:
    request = gate()
    store.create_request(request)
    notes, page = Notes(), Page()
    kw: dict[str, Any] = {"sent_by": "t", "notifier": notes, "review_for": lambda r: page}
    assert send_reminder(store, request, now=T0 + 3 * H, **kw) is None
    first = send_reminder(store, request, now=T0 + 4 * H, **kw)
    again = send_reminder(store, request, now=T0 + 5 * H, **kw)
    second = send_reminder(store, request, now=T0 + 8 * H, **kw)
    assert first is not None
    assert first.status == "sent"
    assert first.number == 1
    assert again is not None
    assert again.status == "already-sent"
    assert again.number == 1
    assert second is not None
    assert second.status == "sent"
    assert second.number == 2
    assert page.comments == [1, 2]
    assert [r.number for _, r in notes.sent] == [1, 2]
    # the notification links the page the comment went to
    assert notes.sent[0][0].review["url"] == "https://example.org/pr/7"
    assert [r.number for r in store.list_reminders(GATE)] == [1, 2]


def test_a_decided_gate_gets_no_reminder(store: LocalApprovalStore) -> None:
    request = gate()
    store.create_request(request)
    gates.decide(
        store, GATE, actor=Actor(login="bob", channel="cli", at=T0 + H), intent="reject",
        reason="no", now=T0 + H,
    )  # fmt: skip
    assert send_reminder(store, request, now=T0 + 5 * H, sent_by="t") is None
    assert store.list_reminders(GATE) == []


def test_failures_are_reported_never_raised_and_the_number_is_spent(
    store: LocalApprovalStore,
) -> None:
    request = gate()
    store.create_request(request)

    def broken(_: Request) -> Any:
        raise StoreError("GitHub said 502 three times")

    result = send_reminder(
        store, request, now=T0 + 4 * H, sent_by="t", notifier=Notes(fail=True), review_for=broken
    )
    assert result is not None
    assert result.status == "sent"
    assert any("GitHub said 502" in p for p in result.problems)
    assert any("webhook down" in p for p in result.problems)
    assert send_reminder(store, request, now=T0 + 5 * H, sent_by="t").status == "already-sent"  # type: ignore[union-attr]


def test_remind_pending_skips_gates_without_reminders_and_dry_run_writes_nothing(
    store: LocalApprovalStore,
) -> None:
    store.create_request(gate())
    store.create_request(build_request(gate=GATE.__class__("Other", "1", "gate"), timeout="24h"))
    results, errors = remind_pending(store, now=T0 + 9 * H, sent_by="t", dry_run=True)
    assert errors == []
    assert [(str(r.gate_id), r.number, r.status) for r in results] == [(str(GATE), 2, "due")]
    assert store.list_reminders(GATE) == []
    results, _ = remind_pending(store, now=T0 + 9 * H, sent_by="t")
    assert [r.status for r in results] == ["sent"]
    assert results[0].comment.startswith("none (no review backend")


def test_the_waiting_task_sends_each_due_reminder_from_its_poll(store: LocalApprovalStore) -> None:
    request = gate(timeout="10h", remind_every="2h", approvers=["a", "b"], escalate_to=["b"])
    store.create_request(request)
    notes, said = Notes(), []
    clock = iter(T0 + timedelta(minutes=30 * i) for i in range(10_000))
    now = [T0]

    def tick() -> datetime:
        now[0] = next(clock)
        return now[0]

    decision = gates.wait_for_decision(
        store,
        GATE,
        poll_interval=1800,
        clock=tick,
        sleep=lambda s: None,
        on_poll=reminders_while_waiting(store, request, notifier=notes, echo=said.append),
    )
    assert decision.outcome == "timed_out"
    assert [(r.number, r.escalated_to) for _, r in notes.sent] == [
        (1, ()),
        (2, ()),
        (3, ("b",)),
        (4, ("b",)),
    ]
    assert len([s for s in said if s.startswith("Reminder")]) == 4
    assert reminders_while_waiting(store, build_request(), notifier=notes) is None
