"""The one failure policy after a decision (metaflow_hitl.settle): the decision stands, publish
and resume are both attempted, and what failed comes back with the command that repairs it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from metaflow_hitl.errors import HitlError, RunEnded, SettleIncomplete, StoreError
from metaflow_hitl.records import Decision, Request
from metaflow_hitl.settle import repair_command, settle
from tests.support.builders import T0, actor, build_request


def _decision(request: Request) -> Decision:
    return Decision(
        gate_id=request.gate_id,
        outcome="approved",
        proceed=True,
        decided_by="alice",
        request_digest=request.digest(),
        decided_at=T0,
        deciders=(actor("alice"),),
        channel="cli",
    )


class Resumer:
    """Records each call; raises ``error`` when given one."""

    def __init__(self, error: HitlError | None = None, resumed: bool = True) -> None:
        self.calls: list[Decision] = []
        self.error = error
        self.resumed = resumed

    def resume(self, request: Request, decision: Decision) -> bool:
        self.calls.append(decision)
        if self.error is not None:
            raise self.error
        return self.resumed


def _publisher(error: HitlError | None = None) -> tuple[list[Decision], Any]:
    calls: list[Decision] = []

    def publish(request: Request, decision: Decision) -> dict[str, str | None]:
        calls.append(decision)
        if error is not None:
            raise error
        return {"commit": "abc123", "location": "git:/review.git"}

    return calls, publish


def test_both_steps_succeed() -> None:
    request = build_request()
    published, publish = _publisher()
    resumer = Resumer()
    settled = settle(request, _decision(request), publish=publish, resumer=resumer)
    assert settled.complete
    assert settled.resumed
    assert settled.review["commit"] == "abc123"
    assert len(published) == 1
    assert len(resumer.calls) == 1
    settled.raise_if_incomplete()  # does not raise


def test_a_failed_publish_still_resumes_the_run() -> None:
    """The CLI used to resume then raise, the Action raised before resuming: now both try."""
    request = build_request()
    _, publish = _publisher(StoreError("github.com unreachable"))
    resumer = Resumer()
    settled = settle(request, _decision(request), publish=publish, resumer=resumer)
    assert len(resumer.calls) == 1
    assert settled.resumed
    assert [step for step, _ in settled.failures] == ["publish"]
    with pytest.raises(SettleIncomplete) as info:
        settled.raise_if_incomplete()
    exc = info.value
    assert "recorded and stands" in exc.message
    assert "the review repo was not updated: github.com unreachable" in exc.message
    assert f"sync {request.gate_id}" in str(exc.hint)
    assert exc.decision.decided_by == "alice"


def test_a_failed_resume_still_publishes() -> None:
    request = build_request()
    published, publish = _publisher()
    settled = settle(
        request, _decision(request), publish=publish, resumer=Resumer(StoreError("argo 503"))
    )
    assert len(published) == 1
    assert settled.review
    assert not settled.resumed
    assert settled.problems() == ["its paused run was not resumed: argo 503"]


def test_both_failures_are_reported_together() -> None:
    request = build_request()
    _, publish = _publisher(StoreError("repo down"))
    settled = settle(
        request, _decision(request), publish=publish, resumer=Resumer(StoreError("argo down"))
    )
    message = settled.error().message
    assert "repo down" in message
    assert "argo down" in message
    assert [step for step, _ in settled.error().failures] == ["publish", "resume"]


def test_nothing_asked_is_nothing_done() -> None:
    request = build_request()
    settled = settle(request, _decision(request), publish=None, resumer=None)
    assert settled.complete
    assert not settled.resumed
    assert settled.review == {}


def test_errors_other_than_hitl_errors_propagate() -> None:
    """Only deliberate errors are collected: a bug in an adapter is not a 'failed publish'."""
    request = build_request()

    def publish(request: Request, decision: Decision) -> dict[str, str | None]:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        settle(request, _decision(request), publish=publish, resumer=None)


def test_the_repair_command_quotes_what_it_names() -> None:
    request = build_request()
    assert repair_command(replace(request, store="s3://b/p q")) == (
        "metaflow-hitl --store 's3://b/p q' sync TrainAndDeploy/1732/gate"
    )
    assert repair_command(replace(request, store="")) == (
        "metaflow-hitl sync TrainAndDeploy/1732/gate"
    )


def _ended(request: Request) -> RunEnded:
    return RunEnded(
        f"gate {request.gate_id} cannot be resumed: workflow ml/wf was not found (deleted).",
        outcome="run_gone",
        run_state="deleted",
    )


def test_a_run_that_ended_is_an_outcome_not_a_failure() -> None:
    """Nothing can resume an ended run and no repair would change that: settle() records it in
    ``run_ended``, tells the page once (``announce``) and stays complete, so no front end
    fails for it (the Action used to exit 1 where ``sync`` exited 0)."""
    request = build_request()
    published, publish = _publisher()
    told: list[RunEnded] = []

    def announce(request: Request, decision: Decision, ended: RunEnded) -> dict[str, str | None]:
        told.append(ended)
        return {"number": "7"}

    ended = _ended(request)
    settled = settle(
        request, _decision(request), publish=publish, resumer=Resumer(ended), announce=announce
    )
    assert settled.complete
    settled.raise_if_incomplete()  # does not raise
    assert settled.run_ended is ended
    assert told == [ended]
    assert len(published) == 1
    assert not settled.resumed
    notice = settled.notice()
    assert notice is not None
    assert notice.startswith(f"Not resumed: gate {request.gate_id} cannot be resumed")
    assert "nothing was resumed" in notice
    assert "approved by alice" in notice


def test_a_failed_announcement_is_a_failure_with_the_repair_command() -> None:
    request = build_request()

    def announce(request: Request, decision: Decision, ended: RunEnded) -> dict[str, str | None]:
        raise StoreError("github.com unreachable")

    settled = settle(
        request,
        _decision(request),
        publish=None,
        resumer=Resumer(_ended(request)),
        announce=announce,
    )
    assert [step for step, _ in settled.failures] == ["announce"]
    assert settled.run_ended is not None
    exc = settled.error()
    assert "its page was not told that the run ended: github.com unreachable" in exc.message
    assert f"sync {request.gate_id}" in str(exc.hint)


def test_nothing_is_announced_for_a_live_run() -> None:
    request = build_request()
    told: list[RunEnded] = []
    settle(
        request,
        _decision(request),
        publish=None,
        resumer=Resumer(),
        announce=lambda r, d, e: told.append(e) or {},
    )
    assert told == []


def test_a_gate_closed_because_its_run_ended_is_not_resumed() -> None:
    """A ``run-ended`` decision (Decision.run_ended) has nothing left to resume."""
    request = build_request()
    resumer = Resumer()
    closed = replace(_decision(request), outcome="rejected", proceed=False, run_ended="stopped")
    settled = settle(request, closed, publish=None, resumer=resumer)
    assert resumer.calls == []
    assert settled.complete
    assert settled.run_ended is None
