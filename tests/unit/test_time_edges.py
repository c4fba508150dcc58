"""Time at the edges: the expiry boundary, clock skew, UTC-only timestamps, DST.

The rule (docs/reliability.md, "Time"):

* The deadline is the stored request's ``expires_at``, written once by the clock of the process
  that opened the gate (the cluster). Nothing else moves it.
* A vote is in time iff the clock of the process *recording* it reads strictly before
  ``expires_at``. At ``expires_at`` exactly it is too late: the same instant at which
  :func:`expire_gate` records the timeout, so for one clock there is never an instant where
  both a decision and the expiry could be written.
* A process whose clock is *ahead* of the cluster's refuses decisions early (by the skew) and
  records a rejecting timeout early (failing closed). An *approving* timeout
  (``on_timeout="approve"``) is recorded at the deadline only by the gate's own task; anyone
  else records it only ``SKEW_ALLOWANCE_SECONDS`` (5 min) later, so a clock ahead by less
  never approves early. A process whose clock is *behind* may still record a decision up to
  the skew after the cluster's deadline, unless the waiting task recorded the timeout first.
  The first decision stored wins either way, and the waiting task, the CLI and the Action all
  read that one decision.
* Every timestamp is UTC with a ``Z``, to the millisecond; a naive time is refused, other
  offsets are converted when written and refused when read. The local time zone (and DST)
  changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaflow_hitl import gates
from metaflow_hitl.errors import AlreadyDecided, DeadlinePassed, RecordError, TooLate
from metaflow_hitl.records import Decision, Request, Vote, decode_record, encode_record
from metaflow_hitl.render.documents import render_approval_file, render_reply
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import format_ts, parse_ts, utc_now
from tests.support.builders import GATE, T0, actor, build_request
from tests.support.processes import python_path

MS = timedelta(milliseconds=1)
S = timedelta(seconds=1)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> LocalApprovalStore:
    return LocalApprovalStore(tmp_path / "_hitl")


def opened(store: LocalApprovalStore, **options: Any) -> Request:
    options.setdefault("timeout", "1h")
    request, created = gates.open_gate(store, build_request(**options))
    assert created
    return request


def approve(store: LocalApprovalStore, at: datetime, login: str = "alice") -> Any:
    return gates.decide(store, GATE, actor=actor(login, at), intent="approve", now=at)


# -- the boundary --------------------------------------------------------------------------------

BOUNDARY = [
    pytest.param(-S, True, id="1s-before-accepted"),
    pytest.param(-MS, True, id="1ms-before-accepted"),
    pytest.param(-timedelta(microseconds=1), True, id="1us-before-accepted"),
    pytest.param(timedelta(0), False, id="exactly-at-expiry-too-late"),
    pytest.param(timedelta(microseconds=1), False, id="1us-after-too-late"),
    pytest.param(S, False, id="1s-after-too-late"),
]  # fmt: skip


@pytest.mark.parametrize(("offset", "in_time"), BOUNDARY)
def test_the_expiry_boundary(store: LocalApprovalStore, offset: timedelta, in_time: bool) -> None:
    request = opened(store)
    now = request.expires_at + offset
    if in_time:
        result = approve(store, now)
        assert result.decision is not None
        assert result.decision.outcome == "approved"
        stored = store.get_decision(GATE)
        assert stored is not None
        assert stored.decided_at < request.expires_at  # stored (ms precision), still in time
        assert gates.expire_gate(store, GATE, now=now + timedelta(hours=1)) == stored
    else:
        with pytest.raises(TooLate) as info:
            approve(store, now)
        stored = store.get_decision(GATE)
        assert stored is not None
        # the refusal carries the decision as stored (records keep milliseconds)
        assert decode_record(encode_record(info.value.decision), Decision) == stored
        assert (stored.outcome, stored.decided_by) == ("timed_out", "timeout")
        assert stored.decided_at >= request.expires_at  # the expiry is what was recorded
        assert format_ts(request.expires_at) in str(info.value)
        assert store.list_votes(GATE) == []


@settings(max_examples=150)
@given(st.integers(min_value=-3_000_000, max_value=3_000_000))
def test_one_instant_never_allows_both_a_decision_and_the_expiry(offset_us: int) -> None:
    """For one clock, ``decide`` is accepted exactly when ``expire_gate`` would record
    nothing: the two can never both succeed, whatever the microsecond."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        store = LocalApprovalStore(folder)
        request = opened(store, timeout="10s")
        now = request.expires_at + timedelta(microseconds=offset_us)
        expiry_would_record = gates.expire_gate(store, GATE, now=now) is not None
        if expiry_would_record:
            with pytest.raises(AlreadyDecided):
                approve(store, now)
        else:
            assert approve(store, now).decision is not None


def test_sub_millisecond_timeouts_are_stored_to_the_millisecond(store: LocalApprovalStore) -> None:
    """The stored ``expires_at`` (ms precision, rounded down) is the deadline, not the
    in-memory one: a deadline is never extended by rounding."""
    request = build_request(timeout=1.0009)
    gates.open_gate(store, request)
    again = store.get_request(GATE)
    assert again is not None
    assert again.expires_at <= request.expires_at
    assert again.expires_at == T0 + timedelta(seconds=1)
    with pytest.raises(TooLate):
        approve(store, again.expires_at)


def test_waiting_task_ends_at_the_stored_deadline(store: LocalApprovalStore) -> None:
    request = opened(store, timeout="30s")
    ticks = iter([T0, request.expires_at - MS, request.expires_at])
    slept: list[float] = []
    decision = gates.wait_for_decision(
        store, GATE, poll_interval=60, clock=lambda: next(ticks), sleep=slept.append
    )
    assert decision.outcome == "timed_out"
    assert decision.decided_at == request.expires_at
    assert slept == [30.0, 0.001]  # never sleeps past the deadline


# -- clock skew between the cluster (which wrote the request) and the Action -----------------------

SKEW = timedelta(minutes=5)


def test_action_clock_ahead_refuses_early_and_records_a_rejecting_expiry(
    store: LocalApprovalStore,
) -> None:
    request = opened(store)  # on_timeout="reject"
    cluster_now = request.expires_at - timedelta(minutes=2)  # in time for the cluster
    with pytest.raises(TooLate):
        approve(store, cluster_now + SKEW)  # ...but the Action's clock reads 3 min late
    stored = store.get_decision(GATE)
    assert stored is not None
    assert stored.outcome == "timed_out"
    assert stored.proceed is False  # early by the skew, failing closed: documented
    # The cluster's waiting task, on its own clock, reads the same decision.
    got = gates.wait_for_decision(
        store, GATE, poll_interval=1, clock=lambda: cluster_now, sleep=lambda _: None
    )
    assert got == stored


@pytest.mark.parametrize("skew_minutes", [1, 4, 4.99])
def test_action_clock_ahead_never_approves_a_gate_early(
    store: LocalApprovalStore, skew_minutes: float
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "default": 1}}}
    request = opened(store, on_timeout="approve", input_schema=schema)
    skew = timedelta(minutes=skew_minutes)
    cluster_now = request.expires_at - skew / 2  # in time for the cluster
    with pytest.raises(DeadlinePassed):
        approve(store, cluster_now + skew)  # the Action's clock reads past the deadline
    assert store.get_decision(GATE) is None  # no approving timeout recorded early
    assert gates.expire_gate(store, GATE, now=cluster_now + skew) is None  # audit --expire
    # The cluster's waiting task records it at the deadline, by its own clock.
    ticks = iter([cluster_now, request.expires_at])
    got = gates.wait_for_decision(
        store, GATE, poll_interval=1, clock=lambda: next(ticks), sleep=lambda _: None
    )
    assert (got.outcome, got.proceed, got.decided_at) == ("timed_out", True, request.expires_at)


def test_an_approving_expiry_is_recorded_by_anyone_past_the_allowance(
    store: LocalApprovalStore,
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "default": 1}}}
    request = opened(store, on_timeout="approve", input_schema=schema)
    after = request.expires_at + timedelta(seconds=gates.SKEW_ALLOWANCE_SECONDS)
    with pytest.raises(TooLate) as info:  # e.g. the gate's task died; the run resumes later
        approve(store, after)
    assert (info.value.decision.outcome, info.value.decision.proceed) == ("timed_out", True)


def test_action_clock_behind_may_decide_after_the_clusters_deadline(
    store: LocalApprovalStore,
) -> None:
    request = opened(store)
    cluster_now = request.expires_at + timedelta(minutes=2)  # late for the cluster
    result = approve(store, cluster_now - SKEW)  # the Action's clock reads 3 min early
    assert result.decision is not None
    assert result.decision.outcome == "approved"
    # The waiting task finds the decision instead of recording its expiry: one decision.
    got = gates.wait_for_decision(
        store, GATE, poll_interval=1, clock=lambda: cluster_now, sleep=lambda _: None
    )
    assert got == result.decision


def test_action_clock_behind_loses_to_an_expiry_already_recorded(
    store: LocalApprovalStore,
) -> None:
    request = opened(store)
    timeout = gates.expire_gate(store, GATE, now=request.expires_at)  # the cluster, on time
    assert timeout is not None
    with pytest.raises(AlreadyDecided) as info:
        approve(store, request.expires_at + timedelta(minutes=2) - SKEW)
    assert info.value.decision == timeout
    assert "timed out" in str(info.value)


def test_the_deadline_is_the_stored_one_not_the_pages(store: LocalApprovalStore) -> None:
    """A request is never re-read from anything but the store: an edited approval file or a
    request written again (a retried task, a resumed run) keeps the first deadline."""
    request = opened(store)
    later = build_request(now=T0 + timedelta(hours=5))
    stored, created = gates.open_gate(store, later)
    assert not created
    assert stored.expires_at == request.expires_at
    with pytest.raises(TooLate):
        approve(store, request.expires_at + S)


# -- UTC everywhere ------------------------------------------------------------------------------

TS_FIELDS = {"created_at", "expires_at", "decided_at", "at"}


def _timestamps(doc: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in TS_FIELDS:
                yield key, value
            yield from _timestamps(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from _timestamps(item)


ZONES = st.sampled_from(
    [timezone.utc, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=45)),
     timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
) | st.timezones()  # fmt: skip


@settings(max_examples=300)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES))
def test_every_written_timestamp_is_utc_with_a_z(moment: datetime) -> None:
    text = format_ts(moment)
    assert text.endswith("Z")
    assert len(text) == len("2026-11-25T10:53:10.123Z")
    back = parse_ts(text)
    assert back.utcoffset() == timedelta(0)
    assert timedelta(0) <= moment - back < MS  # the same instant, to the ms, never later


@pytest.mark.parametrize("year", [1, 999, 1000, 9999])
def test_years_keep_four_digits(year: int) -> None:
    """Regression: strftime("%Y") wrote year 999 as "999", which parse_ts then refused."""
    moment = datetime(year, 6, 1, 12, 0, 0, 456789, tzinfo=timezone.utc)
    assert parse_ts(format_ts(moment)) == moment.replace(microsecond=456000)


def test_records_carry_only_utc_timestamps(store: LocalApprovalStore) -> None:
    ny = timezone(timedelta(hours=-5))
    request = opened(store)
    at = (request.created_at + timedelta(minutes=1)).astimezone(ny)  # an aware, non-UTC time
    result = gates.decide(store, GATE, actor=actor("alice", at), intent="approve", now=at)
    assert result.decision is not None
    vote = store.list_votes(GATE)[0]
    docs = [json.loads(encode_record(r)) for r in (request, vote, result.decision)]
    found = [value for doc in docs for _, value in _timestamps(doc)]
    assert len(found) == 2 + 1 + 2  # created/expires, the vote's at, decided_at + decider
    assert all(isinstance(v, str) and v.endswith("Z") for v in found), found
    assert json.loads(encode_record(result.decision))["decided_at"] == format_ts(at)


def test_naive_datetimes_are_refused_when_written() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_ts(datetime(2026, 11, 25, 10, 0))
    with pytest.raises(ValueError, match="naive"):
        encode_record(Vote(gate_id=GATE, intent="approve", actor=actor("a", datetime(2026, 1, 1))))


@pytest.mark.parametrize(
    "text",
    ["2026-11-25T10:00:00", "2026-11-25T10:00:00.123", "2026-11-25T10:00:00+00:00",
     "2026-11-25T10:00:00+02:00", "2026-11-25T10:00:00.123-05:00", "2026-11-25 10:00:00Z",
     "2026-11-25T10:00:00z", "2026-11-25T24:00:00Z", "2026-02-29T10:00:00Z", "1732531200",
     "2026-W48-3T10:00:00Z", "２０２６-11-25T10:00:00Z", "2026-11-25T10:00:00.1234567Z", ""],
)  # fmt: skip
def test_only_utc_z_timestamps_are_read(text: str) -> None:
    with pytest.raises(ValueError, match="UTC timestamp"):
        parse_ts(text)


def test_a_record_with_an_offset_timestamp_is_refused() -> None:
    doc = json.loads(encode_record(build_request()))
    doc["expires_at"] = "2026-11-25T12:00:00.123+02:00"  # the same instant as ...10:00Z
    with pytest.raises(RecordError, match="expires_at"):
        decode_record(json.dumps(doc), Request)


def test_utc_now_is_aware_utc_to_the_millisecond() -> None:
    now = utc_now()
    assert now.utcoffset() == timedelta(0)
    assert now.microsecond % 1000 == 0
    assert abs(now.timestamp() - time.time()) < 5


# -- the local time zone and DST change nothing ---------------------------------------------------

# Instants around DST changes (and odd offsets): New York springs forward at 07:00Z, Berlin
# falls back at 01:00Z, Lord Howe moves by half an hour, Kathmandu is +05:45.
DST_CASES = [
    ("America/New_York", datetime(2026, 3, 8, 6, 59, 59, 500000, tzinfo=timezone.utc)),
    ("Europe/Berlin", datetime(2026, 10, 25, 0, 59, 59, 500000, tzinfo=timezone.utc)),
    ("Australia/Lord_Howe", datetime(2026, 4, 4, 14, 59, 59, 500000, tzinfo=timezone.utc)),
    ("Asia/Kathmandu", datetime(2026, 11, 25, 10, 0, 0, 0, tzinfo=timezone.utc)),
]


def fingerprint(start: datetime) -> dict[str, Any]:
    """Everything time-dependent the core computes for a gate opened at ``start``."""
    import tempfile

    out: dict[str, Any] = {}
    request = replace(build_request(now=start, timeout="1h"), nonce="1" * 32)
    out["request"] = encode_record(request).decode()
    out["digest"] = request.digest()
    out["file"] = render_approval_file(request)
    for label, offset in (("before", -S), ("at", timedelta(0)), ("after", S)):
        with tempfile.TemporaryDirectory() as folder:
            store = LocalApprovalStore(folder)
            gates.open_gate(store, request)
            now = request.expires_at + offset
            try:
                result = approve(store, now)
                decision: Decision | None = result.decision
            except TooLate as exc:
                decision = exc.decision
            assert decision is not None
            out[label] = encode_record(replace_nonce(decision)).decode()
            out[label + "-reply"] = render_reply(request, replace_nonce(decision))
    return out


def replace_nonce(decision: Decision) -> Decision:
    return replace(decision, nonce="0" * 32)


@contextmanager
def local_zone(name: str) -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="time.tzset is POSIX only")
@pytest.mark.parametrize(("zone", "start"), DST_CASES, ids=[z for z, _ in DST_CASES])
def test_the_local_time_zone_changes_nothing(zone: str, start: datetime) -> None:
    expected = fingerprint(start)
    with local_zone(zone):
        assert time.localtime(start.timestamp()).tm_gmtoff != 0  # the zone really applies
        assert fingerprint(start) == expected
        assert utc_now().utcoffset() == timedelta(0)


def test_a_process_started_in_another_zone_computes_the_same(tmp_path: Path) -> None:
    """A fresh interpreter whose TZ is set from the start (as on a laptop in New York)."""
    script = (
        "import json;"
        "from datetime import datetime, timezone;"
        "from test_time_edges import fingerprint, DST_CASES;"
        "print(json.dumps([fingerprint(s) for _, s in DST_CASES]))"
    )
    expected = [fingerprint(s) for _, s in DST_CASES]
    for zone in ("America/New_York", "Europe/Berlin"):
        env = {**os.environ, "TZ": zone, "PYTHONPATH": python_path(Path(__file__).parent, ROOT)}
        proc = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == expected, zone
