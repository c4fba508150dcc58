"""The decision path from the attacker's side: what an account with read, triage or write
access can do on GitHub, what GitHub's API then shows, and that ``handle-event`` acts only on
that API view, on the page metaflow-hitl itself opened.

Every attack is made through the OpenAPI-checked GitHub fake with the attacker's own token
(``Env.as_user``), then its webhook is delivered as GitHub would deliver it. The GitHub facts
relied on (see also ``../shared/reference/argo-and-github-protocols.md``):

* anyone with write access can edit anyone's issue comment
  (https://docs.github.com/rest/issues/comments#update-an-issue-comment), and the REST
  comment carries no editor: only ``updated_at`` changes;
* "Re-run jobs" re-delivers the original event payload, so the payload may be older than the
  page (https://docs.github.com/actions/managing-workflow-runs/re-running-workflows-and-jobs);
* a pull request's head branch accepts pushes from every collaborator with write access, and
  the merge API's ``sha`` makes GitHub refuse a merge whose head moved (409,
  https://docs.github.com/rest/pulls/pulls#merge-a-pull-request);
* a review can be dismissed by anyone with write access
  (https://docs.github.com/rest/pulls/reviews#dismiss-a-review-for-a-pull-request).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from metaflow_hitl.render.documents import render_issue_body, render_pr_title
from metaflow_hitl.timestamps import utc_now
from tests.contract.github_env import REPO, SKIPS, Env
from tests.fakes import webhooks
from tests.fakes.github import Clock

pytestmark = SKIPS


def _nothing_recorded(env: Env, request) -> None:
    assert env.store.get_decision(request.gate_id) is None
    assert env.store.list_votes(request.gate_id) == []


# -- 2. the triggering event is re-read from the API ---------------------------------------------
def test_a_comment_deleted_before_its_run_starts_is_no_command(env: Env) -> None:
    request, number = env.open(input_schema=None)
    event = env.comment_event(number, "alice", "/approve")
    env.as_user("alice", "DELETE", f"issues/comments/{event[1]['comment']['id']}")
    _result, outputs = env.run(event)
    assert "is gone" in outputs["ignored-reason"]
    _nothing_recorded(env, request)


def test_a_comment_edited_into_reject_before_its_run_is_not_an_approval(env: Env) -> None:
    request, number = env.open(input_schema=None)
    event = env.comment_event(number, "alice", "/approve")
    comment_id = event[1]["comment"]["id"]
    env.as_user("alice", "PATCH", f"issues/comments/{comment_id}", {"body": "/reject wait"})
    _result, outputs = env.run(event)  # the payload still says /approve
    assert "edited" in outputs["ignored-reason"]
    _nothing_recorded(env, request)


def test_a_review_dismissed_before_its_delivery_is_handled_approves_nothing(env: Env) -> None:
    request, number = env.open(input_schema=None)
    event = env.review_event(number, "alice")
    review_id = event[1]["review"]["id"]
    env.as_user("bob", "PUT", f"pulls/{number}/reviews/{review_id}/dismissals", {"message": "no"})
    _result, outputs = env.run(event)
    assert outputs["decision"] == ""
    assert env.store.get_decision(request.gate_id) is None


def test_a_forged_payload_claiming_another_author_counts_as_the_real_author(env: Env) -> None:
    """The payload says bob wrote it; GitHub says mallory (no access) did: mallory is refused."""
    request, number = env.open(input_schema=None)
    name, payload = env.comment_event(number, "mallory", "/approve")
    payload["comment"]["user"]["login"] = payload["sender"]["login"] = "bob"
    _result, outputs = env.run((name, payload))
    assert "mallory" in outputs["ignored-reason"]
    _nothing_recorded(env, request)


def test_a_forged_merged_payload_is_no_merge(env: Env) -> None:
    request, number = env.open(input_schema=None)
    name, payload = env.closed_event(number, "bob", merged=True)  # GitHub: still open
    _result, outputs = env.run((name, payload))
    assert "open now" in outputs["ignored-reason"]
    _nothing_recorded(env, request)


def test_a_replayed_old_approval_after_a_dismissal_approves_nothing(env: Env) -> None:
    """'Re-run jobs' hands the handler the original, approving payload days later."""
    request, number = env.open(input_schema=None, min_approvals=2)
    old = env.review_event(number, "alice")
    env.run(old)
    env.as_user(
        "carol", "PUT", f"pulls/{number}/reviews/{old[1]['review']['id']}/dismissals",
        {"message": "stale"},
    )  # fmt: skip
    _result, outputs = env.run(env.review_event(number, "bob"))
    assert outputs["decision"] == ""  # alice's approval is gone now: 1 of 2
    assert env.store.get_decision(request.gate_id) is None
    _result, _outputs = env.run(old)  # the old delivery again
    assert env.store.get_decision(request.gate_id) is None


# -- 3. nobody puts a command in someone else's mouth --------------------------------------------
def test_an_edit_by_someone_else_never_speaks_for_the_author(env: Env) -> None:
    request, number = env.open(input_schema=None)
    flag = {"METAFLOW_HITL_ALLOW_EDITS": "true"}
    name, payload = env.comment_event(number, "alice", "thanks, looking")
    comment_id = payload["comment"]["id"]
    edited = env.as_user("carol", "PATCH", f"issues/comments/{comment_id}", {"body": "/approve"})
    payload.update(action="edited", changes={"body": {"from": "thanks, looking"}})
    payload["comment"].update(body=edited["body"], updated_at=edited["updated_at"])
    payload["sender"] = {**payload["sender"], "login": "carol"}
    _result, outputs = env.run((name, payload), extra_env=flag)
    assert "not by its author alice" in outputs["ignored-reason"]
    _nothing_recorded(env, request)
    # ...nor through the replay, where it would complete a quorum with bob's approval
    env.run(env.comment_event(number, "bob", "/approve"), extra_env=flag)
    decision = env.store.get_decision(request.gate_id)
    assert decision is not None
    assert [d.login for d in decision.deciders] == ["bob"]


def test_the_authors_own_edit_counts_when_edits_are_allowed(env: Env) -> None:
    _request, number = env.open(input_schema=None)
    name, payload = env.comment_event(number, "alice", "thanks, looking")
    comment_id = payload["comment"]["id"]
    edited = env.as_user("alice", "PATCH", f"issues/comments/{comment_id}", {"body": "/approve"})
    payload.update(action="edited", changes={"body": {"from": "thanks, looking"}})
    payload["comment"].update(body=edited["body"], updated_at=edited["updated_at"])
    _result, outputs = env.run((name, payload), extra_env={"METAFLOW_HITL_ALLOW_EDITS": "true"})
    assert outputs["decision"] == "approved", outputs


# -- 1. and 4. only the page metaflow-hitl opened, exactly as it opened it ------------------------
def test_a_workflow_pushed_to_the_gate_branch_is_never_merged(env: Env) -> None:
    """Write access is not the Action's secrets: a workflow file pushed to the gate's branch
    would run on the default branch with the environment's credentials once merged."""
    request, number = env.open(input_schema=None)
    branch = env.pull(number)["head"]["ref"]
    env.gh.push_file(REPO, ".github/workflows/x.yml", "on: push\n", branch=branch, author="carol")
    _result, outputs = env.run(env.comment_event(number, "alice", "/approve"))
    assert ".github/workflows/x.yml" in outputs["ignored-reason"]
    _nothing_recorded(env, request)
    assert not env.gh.issue(REPO, number).pull.merged  # type: ignore[union-attr]
    assert env.gh.file(REPO, ".github/workflows/x.yml") is None
    # the reply names the change, once, however many votes follow
    env.run(env.comment_event(number, "bob", "/approve"))
    changed = [r for r in env.replies(number) if "changed after metaflow-hitl" in r]
    assert len(changed) == 1
    assert "by carol" in changed[0]


def test_an_edited_approval_file_decides_nothing(env: Env) -> None:
    request, number = env.open(input_schema=None)
    branch = env.pull(number)["head"]["ref"]
    path = f"approvals/{request.gate_id}.md"
    env.gh.push_file(REPO, path, "Deploy to staging only\n", branch=branch, author="carol")
    _result, outputs = env.run(env.review_event(number, "alice"))
    assert "changed after metaflow-hitl" in outputs["ignored-reason"]
    _nothing_recorded(env, request)


@pytest.mark.parametrize("mode", ["pr", "issue"])
def test_a_body_edited_around_an_intact_marker_decides_nothing(env: Env, mode: str) -> None:
    request, number = env.open(input_schema=None, mode=mode)
    kind = "pulls" if mode == "pr" else "issues"
    page = env.api(f"{kind}/{number}")
    body = page["body"].replace("Deploy model v3?", "Deploy model v3 to **staging**?")
    assert body != page["body"]
    env.as_user("carol", "PATCH", f"{kind}/{number}", {"body": body})
    _result, outputs = env.run(env.comment_event(number, "alice", "/approve"))
    assert "description was edited" in outputs["ignored-reason"]
    _nothing_recorded(env, request)


def test_a_decoy_issue_with_a_copied_marker_decides_nothing(env: Env) -> None:
    """A reader opens 'staging smoke test, please /approve' with the gate's exact body."""
    request, number = env.open(input_schema=None, mode="issue")
    decoy = env.as_user(
        "reader",
        "POST",
        "issues",
        {"title": render_pr_title(request), "body": render_issue_body(request)},
    )
    _result, outputs = env.run(env.comment_event(decoy["number"], "alice", "/approve"))
    assert "opened by reader" in outputs["ignored-reason"]
    _nothing_recorded(env, request)
    assert env.gh.issue(REPO, number).state == "open"  # the real page is untouched


def test_a_decoy_pull_request_into_another_base_is_never_merged(env: Env) -> None:
    request, number = env.open(input_schema=None)
    branch = env.pull(number)["head"]["ref"]
    env.gh.push_file(REPO, "README.md", "release\n", branch="release")
    decoy = env.as_user("carol", "POST", "pulls", {"head": branch, "base": "release", "title": "t"})
    _result, outputs = env.run(env.comment_event(decoy["number"], "alice", "/approve"))
    assert outputs["decision"] == ""
    _nothing_recorded(env, request)
    # a genuine approval on the real page merges the real page, not the decoy
    _result, outputs = env.run(env.comment_event(number, "alice", "/approve"))
    assert outputs["decision"] == "approved"
    assert env.gh.issue(REPO, number).pull.merged  # type: ignore[union-attr]
    assert not env.gh.issue(REPO, decoy["number"]).pull.merged  # type: ignore[union-attr]


def test_a_human_merge_of_foreign_commits_is_not_an_approval(env: Env) -> None:
    request, number = env.open(input_schema=None)
    branch = env.pull(number)["head"]["ref"]
    env.gh.push_file(REPO, "payload.sh", "curl evil\n", branch=branch, author="carol")
    env.merge(number, "bob")
    _result, outputs = env.run(env.closed_event(number, "bob", merged=True))
    assert "changed after metaflow-hitl" in outputs["ignored-reason"]
    _nothing_recorded(env, request)


# -- 5. a command means one thing -----------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        pytest.param("/approve\n/reject too risky", id="two-commands"),
        pytest.param('/approve {"target": "prod", "target": "staging"}', id="duplicate-key"),
    ],
)
def test_an_ambiguous_command_gets_a_reply_and_records_nothing(env: Env, body: str) -> None:
    request, number = env.open()
    _result, outputs = env.run(env.comment_event(number, "alice", body))
    assert outputs["decision"] == ""
    _nothing_recorded(env, request)
    assert len(env.replies(number)) == 1


# -- 6. the ineligible cause no side effects -----------------------------------------------------
def test_an_ineligible_command_on_a_decided_gate_causes_nothing_but_one_refusal(env: Env) -> None:
    request, number = env.open(input_schema=None, mode="issue")
    env.run(env.comment_event(number, "alice", "/approve"))
    assert env.store.get_decision(request.gate_id) is not None
    env.gh.clear_log()
    _result, outputs = env.run(env.comment_event(number, "mallory", "/approve"))
    assert "mallory" in outputs["ignored-reason"]
    writes = [r.operation_id for r in env.gh.requests if r.method != "GET"]
    assert writes == ["issues/create-comment"]  # the one refusal: no republishing


def test_refusal_replies_are_bounded_per_account_and_page(env: Env) -> None:
    request, number = env.open(input_schema=None)
    for _ in range(6):
        env.run(env.comment_event(number, "reader", "/approve"))
    refusals = [r for r in env.replies(number) if ":refused:reader" in r]
    assert len(refusals) == 3
    _nothing_recorded(env, request)


def test_payload_facts_do_not_reach_the_vote(env: Env) -> None:
    """The payload's body says /reject; GitHub's comment says /approve: GitHub wins."""
    _request, number = env.open(input_schema=None)
    name, payload = env.comment_event(number, "alice", "/approve")
    payload["comment"]["body"] = "/reject forged"
    _result, outputs = env.run((name, payload))
    assert outputs["decision"] == "approved"
    assert webhooks  # the payloads come from the recorded examples


# -- 1b. the page is bound to what was published, and a change stops earlier approvals ----------
def test_an_approval_file_rewritten_in_one_commit_under_the_bots_name_decides_nothing(
    env: Env,
) -> None:
    """git lets a pusher write any author into a commit, and GitHub links a commit to the
    account whose email it names
    (https://docs.github.com/pull-requests/committing-changes-to-your-project/troubleshooting-commits/why-are-my-commits-linked-to-the-wrong-user):
    a force-push of one commit "by" the bot passes every check on authors and commit counts.
    The approval file's blob SHA, recorded when metaflow-hitl committed it, does not."""
    request, number = env.open(input_schema=None)
    branch = env.pull(number)["head"]["ref"]
    path = f"approvals/{request.gate_id}.md"
    repo = env.gh.repo(REPO)
    env.gh.force_push(REPO, branch, repo.branch_sha("main") or "")
    env.gh.push_file(REPO, path, "Deploy to every region\n", branch=branch, author="hitl-bot")
    commits = env.api(f"pulls/{number}/commits")
    assert [c["author"]["login"] for c in commits] == ["hitl-bot"]  # authorship proves nothing
    _result, outputs = env.run(env.comment_event(number, "alice", "/approve"))
    assert "is not the one metaflow-hitl committed" in outputs["ignored-reason"]
    _nothing_recorded(env, request)
    assert not env.gh.issue(REPO, number).pull.merged  # type: ignore[union-attr]


def test_a_page_without_a_publication_record_decides_nothing(env: Env) -> None:
    """Pages opened by a release that kept no record (or whose record is gone) cannot be
    checked, so they decide nothing; the reply says how to decide instead."""
    request, number = env.open(input_schema=None)
    record = Path(env.store.location) / "v1" / "gates" / str(request.gate_id) / "publication.json"
    record.unlink()
    _result, outputs = env.run(env.comment_event(number, "alice", "/approve"))
    assert "holds no record of what metaflow-hitl published" in outputs["ignored-reason"]
    _nothing_recorded(env, request)
    (reply,) = [r for r in env.replies(number) if "no record" in r]
    assert f"metaflow-hitl approve {request.gate_id}" in reply


def _later(env: Env) -> None:
    """GitHub's clock moves past the handler's (whose time a page change is recorded at)."""
    env.gh.world.clock = Clock(utc_now() + timedelta(seconds=5))


def test_an_approval_of_a_changed_issue_does_not_count_after_the_page_is_restored(
    env: Env,
) -> None:
    """carol (write access) rewrites the issue, alice approves what she reads, carol restores
    the text. The page is intact again, but alice approved carol's text: her approval must
    not count in any later replay, while approvals made after the restore do."""
    request, number = env.open(input_schema=None, mode="issue", min_approvals=2)
    original = env.api(f"issues/{number}")["body"]
    changed = original.replace("Deploy model v3?", "Deploy model v3 to every region?")
    env.as_user("carol", "PATCH", f"issues/{number}", {"body": changed})
    edited = env.api(f"issues/{number}")
    _r, outputs = env.run(
        (
            "issues",
            webhooks.issue_edited_payload(REPO, edited, sender="carol", body_before=original),
        )
    )
    assert "changed" in outputs["ignored-reason"]
    (notice,) = [r for r in env.replies(number) if "changed by carol" in r]
    assert "still differs" in notice
    # alice's approval of the changed text: refused now...
    _r, outputs = env.run(env.comment_event(number, "alice", "/approve"))
    assert "description was edited" in outputs["ignored-reason"]
    env.as_user("carol", "PATCH", f"issues/{number}", {"body": original})
    _r, outputs = env.run(
        (
            "issues",
            webhooks.issue_edited_payload(
                REPO, env.api(f"issues/{number}"), sender="carol", body_before=changed
            ),
        )
    )
    assert any("matches what was published again" in r for r in env.replies(number))
    # ...and it does not count in the replay once the page is restored
    _later(env)
    _r, outputs = env.run(env.comment_event(number, "bob", "/approve"))
    assert env.store.get_decision(request.gate_id) is None  # bob's alone: 1 of 2
    assert [v.actor.login for v in env.store.list_votes(request.gate_id)] == ["bob"]
    _r, outputs = env.run(env.comment_event(number, "alice", "/approve"))
    decision = env.store.get_decision(request.gate_id)
    assert decision is not None
    assert sorted(a.login for a in decision.deciders) == ["alice", "bob"]


def test_a_push_and_restore_of_the_gate_branch_stops_earlier_approvals(
    env: Env,
) -> None:
    """Pushes reach the decide workflow through the unprivileged hand-off, which names no
    sender and no action: an open pull request handed off from a ``pull_request`` run has
    changed (``edited``/``synchronize``). A push and a force-push back leave the page exactly
    as published, but approvals cast in between do not count."""
    request, number = env.open(input_schema=None)
    pull = env.pull(number)
    branch, head = pull["head"]["ref"], pull["head"]["sha"]
    env.gh.push_file(REPO, "notes.md", "deploy everywhere\n", branch=branch, author="carol")
    _r, outputs = env.run(
        ("workflow_run", webhooks.workflow_run_of(_hand_off_payload(env, number), "pull_request"))
    )
    assert "changed" in outputs["ignored-reason"]
    env.comment(number, "alice", "/approve")  # its delivery is lost, or comes later
    env.gh.force_push(REPO, branch, head)
    _r, outputs = env.run(
        ("workflow_run", webhooks.workflow_run_of(_hand_off_payload(env, number), "pull_request"))
    )
    assert any("matches what was published again" in r for r in env.replies(number))
    _later(env)
    _r, outputs = env.run(env.review_event(number, "bob", "changes_requested", body="wait"))
    assert env.store.get_decision(request.gate_id) is None
    _r, outputs = env.run(env.comment_event(number, "carol", "/approve"))
    decision = env.store.get_decision(request.gate_id)
    assert decision is not None
    assert decision.decided_by == "carol"  # alice's earlier approval never counted


def test_a_direct_push_event_is_a_change_too(env: Env) -> None:
    """``pull_request`` ``synchronize`` delivered directly (a workflow that has it) records
    the change like the hand-off; a copied marker on another page burns nothing."""
    request, number = env.open(input_schema=None)
    branch = env.pull(number)["head"]["ref"]
    env.gh.push_file(REPO, "x.md", "x\n", branch=branch, author="carol")
    payload = webhooks.pull_pushed_payload(REPO, env.pull(number), sender="carol")
    _r, outputs = env.run(("pull_request", payload))
    assert "changed" in outputs["ignored-reason"]
    assert len(env.store.list_page_changes(request.gate_id)) == 1
    decoy = env.as_user(
        "reader", "POST", "issues", {"title": "x", "body": env.pull(number)["body"]}
    )
    edited = env.api(f"issues/{decoy['number']}")
    _r, outputs = env.run(("issues", webhooks.issue_edited_payload(REPO, edited, sender="reader")))
    assert "not the page of an open gate" in outputs["ignored-reason"]
    assert len(env.store.list_page_changes(request.gate_id)) == 1


def _hand_off_payload(env: Env, number: int) -> dict:
    return webhooks.workflow_run_payload(REPO, env.pull(number))


def test_a_busy_page_costs_one_collaborators_listing_not_a_lookup_per_voter(
    env: Env,
) -> None:
    """Each run replays the page's history and checks every voter; past two accounts it
    reads the collaborators listing once. A read-only account in the listing is still
    refused, and an account missing from it is still looked up."""
    request, number = env.open(input_schema=None, min_approvals=9)
    voters = [f"voter{i}" for i in range(8)]
    for login in voters:
        env.gh.add_collaborator(REPO, login, "write")
        env.comment(number, login, "/approve")
    env.comment(number, "reader", "/approve")
    env.comment(number, "mallory", "/approve")
    env.gh.clear_log()
    env.run(env.comment_event(number, "alice", "/approve"))
    ops = [r.operation_id for r in env.gh.requests]
    assert ops.count("repos/list-collaborators") == 1
    assert ops.count("repos/get-collaborator-permission-level") <= 3  # 2, then mallory
    decision = env.store.get_decision(request.gate_id)
    assert decision is not None  # alice and the 8 voters: 9
    assert "reader" not in {a.login for a in decision.deciders}
    assert "mallory" not in {a.login for a in decision.deciders}
