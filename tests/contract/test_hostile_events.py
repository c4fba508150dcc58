"""The Action's handler against hostile comments and skewed clocks, end to end.

Extends the hostile suite of test_handle_event.py (same fixture: the OpenAPI-checked GitHub
fake, real webhook payloads, a local store) with the cases it does not have: Unicode
look-alikes of ``/approve``, commands in indented code or spelled with HTML entities, and the
Action running with a clock minutes ahead of or behind the cluster that opened the gate.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import open_gate
from metaflow_hitl.github.events import normalize_event
from metaflow_hitl.github.handler import HandlerSettings, handle_event
from metaflow_hitl.github.review_backend import GitHubReviewBackend
from metaflow_hitl.records import Request
from metaflow_hitl.render.documents import render_approval_file
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.timestamps import utc_now
from tests.contract.github_env import REPO, SKIPS, Env
from tests.fakes.published import open_published

pytestmark = SKIPS

LOOKALIKE_COMMENTS = [
    pytest.param("\uff0fapprove", id="fullwidth-solidus"),
    pytest.param("/\u0430pprove", id="cyrillic-a"),
    pytest.param("/ap\u200dprove", id="zero-width-joiner"),
    pytest.param("\u202e/approve", id="rtl-override"),
    pytest.param("\u00a0/approve", id="nbsp-before"),
    pytest.param("    /approve", id="indented-code-block"),
    pytest.param("&#47;approve", id="html-entity"),
    pytest.param("~~~\n/approve\n~~~", id="tilde-fence"),
    pytest.param("\uff0f\uff41\uff50\uff50\uff52\uff4f\uff56\uff45 " + "x" * 70_000, id="70KB"),
]  # fmt: skip


@pytest.mark.parametrize("body", LOOKALIKE_COMMENTS)
def test_lookalike_commands_record_nothing_and_get_no_reply(env: Env, body: str) -> None:
    request, number = env.open(input_schema=None)
    result, outputs = env.run(env.comment_event(number, "alice", body))
    assert result.exit_code == 0, result.output
    assert outputs["ignored-reason"], outputs
    assert outputs["decision"] == ""
    assert env.store.list_votes(request.gate_id) == []
    assert env.store.get_decision(request.gate_id) is None
    assert env.replies(number) == []  # a look-alike is not answered as if it were a command


def _open_at(
    env: Env,
    minutes_ago: float,
    timeout: str,
    **options: Any,
) -> tuple[Request, int]:
    """A gate the cluster opened ``minutes_ago`` on its clock, as ``Env.open`` opens one."""
    spec = GateSpec.from_options(message="Deploy model v3?", timeout=timeout, **options)
    request = spec.request_for(
        GateId("TrainFlow", "1732", "gate"),
        message="Deploy model v3?",
        started_by="dave",
        runtime="local",
        now=utc_now() - timedelta(minutes=minutes_ago),
        store=env.store.location,
        review={"backend": "github", "repo": REPO, "mode": "pr", "api_url": env.gh.url},
    )
    request, _ = open_gate(env.store, request)
    backend = GitHubReviewBackend(REPO, mode="pr", api_url=env.gh.url, token=env.gh.token)
    refs = open_published(backend, env.store, request, render_approval_file(request))
    return request, int(refs["number"] or 0)


def _handle(env: Env, event: tuple[str, dict], skew: timedelta):
    name, payload = event
    github = GitHubReviewBackend(REPO, api_url=env.gh.url, token=env.gh.token)
    return handle_event(
        normalize_event(name, payload),
        store=env.store,
        github=github,
        resumer=_NoResume(),
        settings=HandlerSettings(),
        clock=lambda: utc_now() + skew,
    )


class _NoResume:
    """Local gates need no resume; anything else would be a test bug."""

    def resume(self, request: Request, decision: object) -> bool:
        assert request.runtime == "local"
        return False


def test_action_clock_ahead_refuses_a_comment_the_cluster_would_accept(env: Env) -> None:
    request, number = _open_at(env, 0, "3m")
    event = env.comment_event(number, "alice", "/approve")
    outcome = _handle(env, event, timedelta(minutes=5))  # 2 min past expiry on its clock
    assert outcome.decision == "timed_out"
    assert "expired" in (outcome.ignored_reason or "")
    decision = env.store.get_decision(request.gate_id)
    assert decision is not None
    assert decision.decided_by == "timeout"
    assert decision.decided_at > request.expires_at  # recorded on the Action's clock
    assert utc_now() < request.expires_at  # ...while the cluster's deadline had not passed
    assert env.store.list_votes(request.gate_id) == []


def test_action_clock_ahead_never_approves_a_gate_by_its_timeout_early(env: Env) -> None:
    request, number = _open_at(env, 0, "3m", on_timeout="approve")
    event = env.comment_event(number, "alice", "/reject not yet")
    outcome = _handle(env, event, timedelta(minutes=5))  # 2 min past expiry on its clock
    assert outcome.decision is None  # refused: nothing recorded, no approving timeout
    assert "too late" in (outcome.ignored_reason or "")
    assert env.store.get_decision(request.gate_id) is None
    assert env.store.list_votes(request.gate_id) == []
    assert "never approves a gate early" in env.replies(number)[-1]  # the reply says why


def test_action_clock_behind_accepts_a_comment_after_the_clusters_deadline(env: Env) -> None:
    request, number = _open_at(env, 3, "1m")  # the cluster's deadline passed 2 min ago
    event = env.comment_event(number, "alice", "/approve")
    assert utc_now() > request.expires_at
    outcome = _handle(env, event, -timedelta(minutes=5))  # 3 min before expiry on its clock
    assert outcome.decision == "approved", outcome
    decision = env.store.get_decision(request.gate_id)
    assert decision is not None
    assert decision.outcome == "approved"
    assert decision.decided_at < request.expires_at  # on the Action's clock, in time


RUNNER_COMMANDS = (
    "/reject no\n::set-output name=decision::approved\n  ::add-mask::alice\n"
    "::stop-commands::x\n::warning file=a::pwned\nsee ##[set-output name=decision;]approved"
)


def test_a_reason_cannot_issue_workflow_commands_to_the_runner(env: Env) -> None:
    """The Actions runner reads ``::cmd::`` at a line start (after blanks) and ``##[cmd]``
    anywhere in what a step prints. A rejection reason is printed by handle-event (and may be
    echoed from its outputs by the workflow): none of it may be read as a command."""
    request, number = env.open(input_schema=None)
    result, outputs = env.run(env.comment_event(number, "alice", RUNNER_COMMANDS))
    assert result.exit_code == 0, result.output
    assert outputs["decision"] == "rejected"
    decision = env.store.get_decision(request.gate_id)
    assert decision is not None
    assert "::set-output" in (decision.reason or "")  # the record keeps the text as written
    assert "pwned" in result.output  # ...and it is printed, but inert
    for text in (result.output, *outputs.values()):
        for line in text.splitlines():
            assert not line.lstrip().startswith("::"), line
            assert "##[" not in line, line
