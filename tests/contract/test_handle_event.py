"""``metaflow-hitl handle-event`` against FakeGitHub (GitHub's OpenAPI contract enforced) and a
local store, driven by real webhook payloads (npm ``@octokit/webhooks-examples``) and payloads
derived from them and validated against ``@octokit/webhooks-schemas``.

Every gate is opened through :class:`GitHubReviewBackend`, so its pull request (or issue),
branch, approval file and marker are real. The history the handler replays is what the fake
GitHub holds: each test first makes the review or comment happen there, then delivers its
webhook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from metaflow_hitl.github.review_backend import GitHubReviewBackend
from metaflow_hitl.markers import render_marker
from metaflow_hitl.render.documents import decision_path
from tests.contract.github_env import REPO, SKIPS, Env, parse_outputs
from tests.fakes import webhooks

pytestmark = SKIPS

ROOT = Path(__file__).resolve().parents[2]


def decision_of(env: Env, step: str = "gate"):
    request, _ = env.gates[step]
    return env.store.get_decision(request.gate_id)


# -- the happy paths ----------------------------------------------------------------------------
def test_approved_review_decides_merges_and_replies(env: Env) -> None:
    request, number = env.open()
    event = env.review_event(number, "alice", body='/approve {"target": "prod"}')
    result, outputs = env.run(event)
    assert result.exit_code == 0, result.output
    decision = decision_of(env)
    assert decision is not None
    assert decision.outcome == "approved"
    assert decision.decided_by == "alice"
    assert decision.channel == "github-review"
    assert decision.input == {"target": "prod"}
    assert decision.evidence_url
    assert "#pullrequestreview-" in decision.evidence_url
    assert outputs == {
        "gate-id": str(request.gate_id),
        "decision": "approved",
        "ignored-reason": "",
    }
    assert env.gh.issue(REPO, number).pull.merged  # type: ignore[union-attr]
    assert env.gh.file(REPO, decision_path(request.gate_id)) is not None
    assert len(env.replies(number)) == 1
    assert env.gh.token not in result.output


def test_slash_approve_comment_on_pr_with_fenced_json(env: Env) -> None:
    _, number = env.open()
    body = '/approve\n```json\n{"target": "staging"}\n```'
    result, outputs = env.run(env.comment_event(number, "bob", body))
    assert result.exit_code == 0, result.output
    decision = decision_of(env)
    assert decision
    assert decision.channel == "comment"
    assert decision.input == {"target": "staging"}
    assert outputs["decision"] == "approved"


def test_reject_comment_on_issue_mode_gate(env: Env) -> None:
    _, number = env.open(mode="issue")
    result, _outputs = env.run(env.comment_event(number, "carol", "/reject metrics regressed"))
    assert result.exit_code == 0, result.output
    decision = decision_of(env)
    assert decision
    assert decision.outcome == "rejected"
    assert decision.reason == "metrics regressed"
    assert env.gh.issue(REPO, number).state == "closed"


def test_merge_approves_as_the_merger(env: Env) -> None:
    _, number = env.open(input_schema=None)
    # The merger merges on GitHub; the Action sees the closed+merged delivery.
    env.merge(number, "bob")
    result, _outputs = env.run(env.closed_event(number, "bob", merged=True))
    assert result.exit_code == 0, result.output
    decision = decision_of(env)
    assert decision
    assert decision.outcome == "approved"
    assert decision.decided_by == "bob"
    assert decision.channel == "merge"


def test_close_without_merge_rejects_as_the_closer(env: Env) -> None:
    _, number = env.open()
    env.close(number, "carol")
    result, _ = env.run(env.closed_event(number, "carol", merged=False))
    assert result.exit_code == 0, result.output
    decision = decision_of(env)
    assert decision
    assert decision.outcome == "rejected"
    assert decision.channel == "close"
    assert decision.decided_by == "carol"


def test_changes_requested_withdraws_an_approval_in_a_quorum(env: Env) -> None:
    _, number = env.open(min_approvals=2, input_schema=None)
    assert env.run(env.comment_event(number, "alice", "/approve"))[0].exit_code == 0
    assert decision_of(env) is None
    env.run(env.review_event(number, "alice", "changes_requested", body="wait"))
    result, outputs = env.run(env.comment_event(number, "bob", "/approve"))
    assert result.exit_code == 0, result.output
    assert decision_of(env) is None
    assert outputs["decision"] == ""
    result, _ = env.run(env.comment_event(number, "carol", "/approve"))
    decision = decision_of(env)
    assert decision
    assert {a.login for a in decision.deciders} == {"bob", "carol"}


def test_quorum_counts_history_even_when_a_webhook_was_dropped(env: Env) -> None:
    _, number = env.open(min_approvals=2, input_schema=None)
    env.comment(number, "alice", "/approve")  # its delivery never arrives
    result, _outputs = env.run(env.review_event(number, "bob"))
    assert result.exit_code == 0, result.output
    decision = decision_of(env)
    assert decision
    assert {a.login for a in decision.deciders} == {"alice", "bob"}


def test_team_approver(env: Env) -> None:
    _, number = env.open(approvers=["@acme/ml-leads"], input_schema=None)
    result, _ = env.run(env.comment_event(number, "alice", "/approve"))
    assert decision_of(env) is None
    assert "not one of the approvers" in env.replies(number)[0]
    result, _ = env.run(env.comment_event(number, "bob", "/approve"))
    decision = decision_of(env)
    assert decision, result.output
    assert decision.decided_by == "bob"


def test_require_merge_holds_approvals_until_the_merge(env: Env) -> None:
    _, number = env.open(input_schema=None, min_approvals=2)
    flag = {"METAFLOW_HITL_REQUIRE_MERGE": "true"}
    env.review(number, "alice")  # an approving review: it waits for the merge
    result, outputs = env.run(env.comment_event(number, "carol", "/approve"), extra_env=flag)
    assert decision_of(env) is None
    assert "requires merging" in outputs["ignored-reason"]
    env.merge(number, "bob")
    result, outputs = env.run(env.closed_event(number, "bob", merged=True), extra_env=flag)
    decision = decision_of(env)
    assert decision, result.output
    assert decision.outcome == "approved"
    # Prow's rule: the first two distinct eligible approvers in the history are the deciders;
    # the merge released the decision.
    assert {a.login for a in decision.deciders} == {"alice", "carol"}
    assert outputs["decision"] == "approved"


def test_require_merge_single_approval_by_merge(env: Env) -> None:
    _, number = env.open(input_schema=None)
    flag = {"METAFLOW_HITL_REQUIRE_MERGE": "true"}
    env.merge(number, "bob")
    _result, outputs = env.run(env.closed_event(number, "bob", merged=True), extra_env=flag)
    decision = decision_of(env)
    assert decision
    assert decision.channel == "merge"
    assert decision.decided_by == "bob"
    assert outputs == {
        "gate-id": "TrainFlow/1732/gate",
        "decision": "approved",
        "ignored-reason": "",
    }


# -- the hostile suite --------------------------------------------------------------------------
HOSTILE = [
    # id, who, body, expected ignored-reason fragment, replied
    ("non-collaborator", "mallory", "/approve", "has no permission", True),
    ("read-only-collaborator", "reader", "/approve", "read permission", True),
    ("author-self-approval", "dave", "/approve", "started this run", True),
    ("quoted-command", "alice", "> /approve", "does not start with", False),
    ("command-in-code-block", "alice", "```\n/approve\n```", "does not start with", False),
    ("invalid-json", "alice", '/approve {"target": ', "not valid JSON", True),
    ("json-failing-schema", "alice", '/approve {"target": 3}', "input_schema", True),
    ("huge-body", "alice", "/approve " + "x" * 70_000, "over 64 KiB", True),
    ("near-miss", "alice", "/approved", "does not start with", False),
]


@pytest.mark.parametrize(
    ("who", "body", "reason", "replied"),
    [pytest.param(*case[1:], id=case[0]) for case in HOSTILE],
)
def test_hostile_comments_record_nothing(
    env: Env, who: str, body: str, reason: str, replied: bool
) -> None:
    request, number = env.open()
    result, outputs = env.run(env.comment_event(number, who, body))
    assert result.exit_code == 0, result.output
    assert reason in outputs["ignored-reason"], outputs
    assert outputs["decision"] == ""
    assert env.store.list_votes(request.gate_id) == []
    assert decision_of(env) is None
    assert len(env.replies(number)) == (1 if replied else 0)


def test_bot_author_is_ignored(env: Env) -> None:
    request, number = env.open()
    env.gh.add_user("deploy[bot]", type="Bot")
    env.gh.add_collaborator(REPO, "deploy[bot]", "admin")
    result, outputs = env.run(env.comment_event(number, "deploy[bot]", "/approve", bot=True))
    assert result.exit_code == 0
    assert "bot" in outputs["ignored-reason"]
    assert env.store.list_votes(request.gate_id) == []
    assert env.replies(number) == []


def test_edited_comment_is_ignored_unless_allowed(env: Env) -> None:
    _, number = env.open(input_schema=None)
    result, outputs = env.run(env.comment_event(number, "alice", "/approve", action="edited"))
    assert "edited comments are ignored" in outputs["ignored-reason"]
    assert decision_of(env) is None
    result, outputs = env.run(
        env.comment_event(number, "bob", "/approve", action="edited"),
        extra_env={"METAFLOW_HITL_ALLOW_EDITS": "true"},
    )
    assert outputs["decision"] == "approved", result.output


def test_forged_marker_in_the_pr_body_is_refused(env: Env) -> None:
    request, number = env.open("gate")
    other, _ = env.open("other")
    forged = render_marker(other)  # a real marker of another gate, pasted into this PR
    env.gh.issue(REPO, number).body += "\n" + forged
    result, outputs = env.run(env.comment_event(number, "alice", "/approve"))
    assert result.exit_code == 0
    assert "different" in outputs["ignored-reason"]
    assert env.store.list_votes(request.gate_id) == []
    assert env.store.list_votes(other.gate_id) == []
    assert len(env.replies(number)) == 1


def test_marker_of_another_gate_on_the_wrong_branch_is_refused(env: Env) -> None:
    request, number = env.open("gate")
    other, _ = env.open("other")
    issue = env.gh.issue(REPO, number)
    issue.body = issue.body.replace(render_marker(request), render_marker(other))
    result, outputs = env.run(env.comment_event(number, "alice", "/approve"))
    assert "not from the gate's branch" in outputs["ignored-reason"], result.output
    assert decision_of(env, "other") is None


def test_tampered_digest_is_refused(env: Env) -> None:
    request, number = env.open()
    issue = env.gh.issue(REPO, number)
    issue.body = issue.body.replace(request.digest(), "sha256:" + "0" * 64)
    _result, outputs = env.run(env.comment_event(number, "alice", "/approve"))
    assert "digest" in outputs["ignored-reason"]
    assert decision_of(env) is None


def test_duplicate_delivery_changes_nothing_and_replies_once(env: Env) -> None:
    _, number = env.open()
    event = env.comment_event(number, "alice", '/approve {"target": "prod"}')
    _first, _ = env.run(event)
    replies = len(env.replies(number))
    for _ in range(2):
        again, outputs = env.run(event)
        assert again.exit_code == 0, again.output
        assert outputs["decision"] == "approved"
        assert "already decided" in outputs["ignored-reason"]
    assert len(env.replies(number)) == replies + 1  # one "already decided" note, not two


def test_decision_after_expiry_is_too_late(env: Env) -> None:
    _request, number = env.open(timeout="1s")
    import time

    time.sleep(1.1)
    result, outputs = env.run(env.comment_event(number, "alice", '/approve {"target": "x"}'))
    assert result.exit_code == 0, result.output
    assert outputs["decision"] == "timed_out"
    assert "expired" in outputs["ignored-reason"]
    decision = decision_of(env)
    assert decision
    assert decision.decided_by == "timeout"


def test_approve_and_reject_racing_first_in_history_wins(env: Env) -> None:
    """Deliveries may arrive in any order; the earlier comment on GitHub decides."""
    _, number = env.open()
    reject = env.comment_event(number, "bob", "/reject not today")
    approve = env.comment_event(number, "alice", '/approve {"target": "prod"}')
    _first, outputs = env.run(approve)  # the later comment's delivery arrives first
    decision = decision_of(env)
    assert decision
    assert decision.outcome == "rejected"
    assert decision.decided_by == "bob"
    assert outputs["decision"] == "rejected"
    assert "came after" in outputs["ignored-reason"]
    _second, outputs = env.run(reject)
    assert outputs["decision"] == "rejected"
    assert "already decided" in outputs["ignored-reason"]
    assert decision_of(env) == decision


def test_approve_and_reject_racing_concurrently(env: Env) -> None:
    import threading

    from metaflow_hitl.github.events import normalize_event
    from metaflow_hitl.github.handler import NoopResumer, handle_event

    _, number = env.open()
    events = [
        env.comment_event(number, "alice", '/approve {"target": "prod"}'),
        env.comment_event(number, "bob", "/reject not today"),
    ]
    outcomes: list[Any] = []

    def deliver(name: str, payload: dict) -> None:
        github = GitHubReviewBackend(REPO, api_url=env.gh.url, token=env.gh.token)
        outcomes.append(
            handle_event(
                normalize_event(name, payload),
                store=env.store,
                github=github,
                resumer=NoopResumer(),
            )
        )

    threads = [threading.Thread(target=deliver, args=event) for event in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    decision = decision_of(env)
    assert decision
    assert decision.outcome == "approved"
    assert decision.decided_by == "alice"
    assert [o.decision for o in outcomes] == ["approved", "approved"]


def test_quorum_two_one_person_approving_twice(env: Env) -> None:
    _request, number = env.open(min_approvals=2)
    env.run(env.comment_event(number, "alice", '/approve {"target": "a"}'))
    result, outputs = env.run(env.review_event(number, "alice", body='/approve {"target": "b"}'))
    assert result.exit_code == 0, result.output
    assert decision_of(env) is None
    assert outputs["decision"] == ""
    env.run(env.comment_event(number, "bob", '/approve {"target": "c"}'))
    decision = decision_of(env)
    assert decision
    assert {a.login for a in decision.deciders} == {"alice", "bob"}


def test_a_push_to_the_gate_branch_makes_the_page_decide_nothing(env: Env) -> None:
    """A collaborator's push to the gate's branch changes what an approval would merge: the
    page decides nothing, and the one reply says who pushed what."""
    _, number = env.open()
    head = env.pull(number)["head"]["sha"]
    env.gh.push_file(
        REPO, "extra.md", "changed\n", branch=env.pull(number)["head"]["ref"], author="carol"
    )
    review = env.review(number, "alice", commit_id=head)
    payload = webhooks.review_payload(REPO, env.pull(number), review, state="approved")
    _result, outputs = env.run(("pull_request_review", payload))
    reason = outputs["ignored-reason"]
    assert "changed after metaflow-hitl published it" in reason
    assert "extra.md" in reason
    assert "by carol" in reason
    assert decision_of(env) is None


def test_unrelated_pull_request_and_other_events_are_ignored(env: Env) -> None:
    for payload in webhooks.examples("issue_comment")[1:3]:
        result, outputs = env.run(("issue_comment", payload))
        assert result.exit_code == 0, result.output
        assert outputs["ignored-reason"]
    result, outputs = env.run(("push", {"ref": "refs/heads/main"}))
    assert result.exit_code == 0
    assert "not handled" in outputs["ignored-reason"]


def test_store_failure_exits_non_zero(env: Env, tmp_path: Path) -> None:
    _, number = env.open()
    event = env.comment_event(number, "alice", '/approve {"target": "prod"}')
    env.monkeypatch.setenv("METAFLOW_HITL_STORE", str(tmp_path / "missing-store"))
    env.monkeypatch.setenv("METAFLOW_HITL_REQUIRE_MERGE", "maybe")
    result, _ = env.run(event)
    assert result.exit_code == 1
    assert "METAFLOW_HITL_REQUIRE_MERGE" in result.output


def test_real_subprocess(env: Env) -> None:
    _request, number = env.open()
    name, payload = env.review_event(number, "alice", body='/approve {"target": "prod"}')
    path = env.tmp / "event.json"
    path.write_text(json.dumps(payload))
    out = env.tmp / "out.txt"
    child = {
        **os.environ,
        "GITHUB_EVENT_NAME": name,
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_OUTPUT": str(out),
    }
    script = Path(sys.executable).parent / "metaflow-hitl"
    proc = subprocess.run(
        [str(script), "handle-event"], env=child, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert parse_outputs(out.read_text())["decision"] == "approved"
    assert env.gh.token not in proc.stdout + proc.stderr


@pytest.mark.parametrize("event", ["issue_comment", "pull_request", "pull_request_review"])
def test_every_recorded_example_is_ignored_with_a_reason(env: Env, event: str) -> None:
    """The real deliveries of @octokit/webhooks-examples concern no gate: exit 0, say why."""
    for payload in webhooks.examples(event):
        result, outputs = env.run((event, payload))
        assert result.exit_code == 0, result.output
        assert outputs["ignored-reason"], (payload.get("action"), result.output)
        assert outputs["decision"] == ""
    assert env.gh.count(writes_only=True) == 0  # nothing was written to GitHub


def test_close_by_the_actions_own_account_is_ignored(env: Env) -> None:
    """The token's own close (publishing a rejection) must not be read as a rejection."""
    _, number = env.open()
    env.gh.issue(REPO, number).state = "closed"
    result, outputs = env.run(env.closed_event(number, "hitl-bot", merged=False))
    assert result.exit_code == 0, result.output
    assert "own account" in outputs["ignored-reason"]
    assert decision_of(env) is None


# -- the workflow_run hand-off (reviews and merges decided from the default branch) ------------
def _hand_off(env: Env, number: int) -> tuple[str, dict]:
    return "workflow_run", webhooks.workflow_run_payload(REPO, env.pull(number))


def test_workflow_run_hand_off_decides_from_the_latest_review(env: Env) -> None:
    request, number = env.open()
    env.review(number, "alice", "APPROVED", body='/approve {"target": "prod"}')
    result, outputs = env.run(_hand_off(env, number))
    assert result.exit_code == 0, result.output
    decision = decision_of(env)
    assert decision is not None
    assert (decision.outcome, decision.decided_by, decision.channel) == (
        "approved",
        "alice",
        "github-review",
    )
    assert decision.input == {"target": "prod"}
    assert outputs["gate-id"] == str(request.gate_id)
    assert env.gh.issue(REPO, number).pull.merged  # type: ignore[union-attr]
    again, _ = env.run(_hand_off(env, number))  # a late or repeated hand-off changes nothing
    assert again.exit_code == 0, again.output
    assert len(env.replies(number)) == 1


def test_workflow_run_hand_off_of_a_pr_closed_unmerged_rejects(env: Env) -> None:
    _, number = env.open()
    pulls = env.gh.repo(REPO).issues[number]
    env.gh.add_token("bob-token", "bob")
    answer = requests.patch(
        f"{env.gh.url}/repos/{REPO}/pulls/{number}",
        headers={"Authorization": "token bob-token"},
        json={"state": "closed"},
        timeout=10,
    )
    answer.raise_for_status()
    assert pulls.state == "closed"
    result, outputs = env.run(_hand_off(env, number))
    assert result.exit_code == 0, result.output
    decision = decision_of(env)
    assert decision is not None
    assert (decision.outcome, decision.decided_by, decision.channel) == ("rejected", "bob", "close")
    assert outputs["decision"] == "rejected"


def test_workflow_run_without_a_pull_request_is_ignored(env: Env) -> None:
    _, number = env.open()
    payload = webhooks.workflow_run_payload(REPO, env.pull(number))
    payload["workflow_run"]["pull_requests"] = []
    result, outputs = env.run(("workflow_run", payload))
    assert result.exit_code == 0, result.output
    assert "names no pull request" in outputs["ignored-reason"]
    assert decision_of(env) is None


# -- grammar v3 and replies a reviewer can act on -------------------------------------------------
@pytest.mark.parametrize(
    "body",
    ['/approve <"target": "staging">', "/approve target=staging"],
    ids=["angle", "key-value"],
)
def test_grammar_v3_forms_approve_with_input(env: Env, body: str) -> None:
    _, number = env.open()
    result, outputs = env.run(env.comment_event(number, "bob", body))
    assert result.exit_code == 0, result.output
    decision = decision_of(env)
    assert decision
    assert decision.input == {"target": "staging"}
    assert outputs["decision"] == "approved"


def test_invalid_input_reply_shows_the_fields_not_a_cli_command(env: Env) -> None:
    _, number = env.open()
    pasted = '/approve {"target": "<target>"}'  # the page's example, pasted as is
    result, _ = env.run(env.comment_event(number, "bob", pasted))
    assert result.exit_code == 0, result.output
    assert decision_of(env) is None
    reply = env.replies(number)[-1]
    assert "placeholder" in reply
    assert "<code>target</code>" in reply  # the schema's fields, in the reply
    assert "hitl show" not in reply
    assert "Fix the input and comment again." in reply
