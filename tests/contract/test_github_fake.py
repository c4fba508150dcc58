"""The fake GitHub server, driven through PyGithub, and its own contract checks.

These tests pin what later review-backend tests rely on: GitHub's answers for the notify flow
(branch, approval file, pull request or issue, reviewers, labels), the conflicts a retry can
hit, scripted faults, permission and team lookups, and that the fake fails a test whenever a
request or a response leaves GitHub's OpenAPI description.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import github
import pytest
import requests

from tests.fakes.github import (
    SKIP_REASON,
    SPEC_FILE,
    ContractViolation,
    FakeGitHub,
)

pytestmark = pytest.mark.skipif(not SPEC_FILE.is_file(), reason=SKIP_REASON)

REPO = "acme/reviews"
BOT = "hitl-bot"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.add_org("acme")
        server.add_repo(REPO, files={"README.md": "# reviews\n"})
        server.add_collaborator(REPO, BOT, "write")
        server.add_collaborator(REPO, "alice", "maintain")
        server.add_collaborator(REPO, "bob", "triage")
        yield server


def client(server: FakeGitHub, token: str | None = None, **kwargs: Any) -> github.Github:
    """PyGithub as a backend would build it, minus its politeness delays."""
    return github.Github(
        auth=github.Auth.Token(token or server.token),
        base_url=server.url,
        seconds_between_requests=0,
        seconds_between_writes=0,
        **kwargs,
    )


def open_gate_pull(server: FakeGitHub, gate: str = "g1") -> tuple[Any, Any]:
    """The notify flow's writes: branch, approval file, pull request. Returns (repo, pull)."""
    repo = client(server).get_repo(REPO)
    base = repo.get_git_ref("heads/main")
    repo.create_git_ref(f"refs/heads/hitl/{gate}", base.object.sha)
    repo.create_file(f"gates/{gate}.md", f"gate {gate}", "approve me\n", branch=f"hitl/{gate}")
    pull = repo.create_pull(base="main", head=f"hitl/{gate}", title=f"Approve {gate}", body="b")
    return repo, pull


# -- the notify flow ------------------------------------------------------------------------------
def test_pull_request_flow_writes_branch_file_pull_reviewers_and_labels(gh: FakeGitHub) -> None:
    _, pull = open_gate_pull(gh)
    pull.create_review_request(reviewers=["alice"])
    pull.add_to_labels("hitl")

    assert gh.file(REPO, "gates/g1.md", ref="hitl/g1") == b"approve me\n"
    assert gh.file(REPO, "gates/g1.md") is None  # main untouched
    state = gh.issue(REPO, pull.number)
    assert state.pull is not None
    assert (state.pull.head_ref, state.pull.base_ref) == ("hitl/g1", "main")
    assert state.pull.requested_reviewers == ["alice"]
    assert state.labels == ["hitl"]
    # get_repo, get ref, create ref, put file, create pull, request reviewers, add labels
    assert gh.count() == 7
    assert gh.count(writes_only=True) == 5
    assert [r.operation_id for r in gh.requests][-2:] == [
        "pulls/request-reviewers",
        "issues/add-labels",
    ]
    assert gh.requests[-1].body == ["hitl"]  # PyGithub sends a bare array (see AMENDMENTS)


def test_pull_request_for_same_branch_twice_is_422_and_found_by_head_filter(
    gh: FakeGitHub,
) -> None:
    repo, pull = open_gate_pull(gh)

    with pytest.raises(github.GithubException) as raised:
        repo.create_pull(base="main", head="hitl/g1", title="again")
    assert raised.value.status == 422
    assert raised.value.data["errors"][0]["message"] == (
        "A pull request already exists for acme:hitl/g1."
    )
    found = list(repo.get_pulls(state="all", head="acme:hitl/g1"))
    assert [p.number for p in found] == [pull.number]


def test_head_filter_without_owner_is_ignored_like_github(gh: FakeGitHub) -> None:
    repo, _ = open_gate_pull(gh, "g1")
    open_gate_pull(gh, "g2")

    assert len(list(repo.get_pulls(state="all", head="hitl/g1"))) == 2
    assert len(list(repo.get_pulls(state="all", head="acme:hitl/g1"))) == 1


def test_pull_request_without_new_commits_or_branch_is_422(gh: FakeGitHub) -> None:
    repo = client(gh).get_repo(REPO)
    repo.create_git_ref("refs/heads/empty", repo.get_git_ref("heads/main").object.sha)

    with pytest.raises(github.GithubException) as no_commits:
        repo.create_pull(base="main", head="empty", title="t")
    with pytest.raises(github.GithubException) as no_branch:
        repo.create_pull(base="main", head="missing", title="t")
    with pytest.raises(github.GithubException) as ref_exists:
        repo.create_git_ref("refs/heads/empty", repo.get_git_ref("heads/main").object.sha)

    assert no_commits.value.status == 422
    assert "No commits between main and empty" in str(no_commits.value.data)
    assert no_branch.value.data["errors"] == [
        {"resource": "PullRequest", "field": "head", "code": "invalid"}
    ]
    assert (ref_exists.value.status, ref_exists.value.data["message"]) == (
        422,
        "Reference already exists",
    )


def test_contents_updates_need_the_current_blob_sha(gh: FakeGitHub) -> None:
    repo = client(gh).get_repo(REPO)
    first_commit = repo.get_git_ref("heads/main").object.sha
    current = repo.get_contents("README.md")

    with pytest.raises(github.GithubException) as no_sha:
        repo.create_file("README.md", "overwrite", "x")
    with pytest.raises(github.GithubException) as stale:
        repo.update_file("README.md", "stale", "x", sha="0" * 40)
    updated = repo.update_file("README.md", "fresh", "new\n", sha=current.sha)

    assert no_sha.value.status == 422
    assert no_sha.value.data["message"] == 'Invalid request.\n\n"sha" wasn\'t supplied.'
    assert stale.value.status == 409
    assert gh.file(REPO, "README.md") == b"new\n"
    assert updated["content"].sha == repo.get_contents("README.md").sha
    assert repo.get_contents("README.md", ref=first_commit).decoded_content == b"# reviews\n"


def test_missing_file_ref_and_private_repo_are_404(gh: FakeGitHub) -> None:
    gh.add_repo("acme/secret")
    c = client(gh)

    with pytest.raises(github.UnknownObjectException):
        c.get_repo(REPO).get_contents("nope.md")
    with pytest.raises(github.UnknownObjectException):
        c.get_repo(REPO).get_git_ref("heads/nope")
    with pytest.raises(github.UnknownObjectException):
        c.get_repo("acme/secret")


# -- issue mode -----------------------------------------------------------------------------------
def test_issue_mode_shares_numbers_with_pull_requests(gh: FakeGitHub) -> None:
    _, pull = open_gate_pull(gh)
    repo = client(gh).get_repo(REPO)

    issue = repo.create_issue(
        title="Approve g2", body="please", labels=["hitl", "gate"], assignees=["alice"]
    )
    issue.create_comment("/approve")
    issue.edit(state="closed", state_reason="completed")

    assert issue.number == pull.number + 1
    stored = gh.issue(REPO, issue.number)
    assert (stored.labels, stored.assignees, stored.state) == (
        ["hitl", "gate"],
        ["alice"],
        "closed",
    )
    assert [c.body for c in repo.get_issue(issue.number).get_comments()] == ["/approve"]
    assert {i.number for i in repo.get_issues(state="all")} == {pull.number, issue.number}
    assert [i.number for i in repo.get_issues(state="all", labels=["gate"])] == [issue.number]


def test_issue_with_unassignable_user_is_422(gh: FakeGitHub) -> None:
    gh.add_user("mallory")
    repo = client(gh).get_repo(REPO)

    with pytest.raises(github.GithubException) as raised:
        repo.create_issue(title="t", assignees=["mallory"])

    assert raised.value.status == 422
    assert raised.value.data["errors"][0]["field"] == "assignees"


# -- faults and retries ---------------------------------------------------------------------------
def test_502_then_success_creates_one_pull_request(gh: FakeGitHub) -> None:
    gh.fail_next("pulls/create", 502)

    _, pull = open_gate_pull(gh)

    assert gh.count("pulls/create") == 2
    assert [r.status for r in gh.requests if r.operation_id == "pulls/create"] == [502, 201]
    assert [n for n, i in gh.repo(REPO).issues.items() if i.pull] == [pull.number]


def test_lost_response_makes_a_retried_post_hit_the_duplicate_check(gh: FakeGitHub) -> None:
    gh.fail_next("pulls/create", 502, after_write=True)

    with pytest.raises(github.GithubException) as raised:
        open_gate_pull(gh)

    assert raised.value.status == 422  # PyGithub retried the POST; the first one had landed
    assert gh.count("pulls/create") == 2
    assert len([i for i in gh.repo(REPO).issues.values() if i.pull]) == 1


def test_lost_response_makes_pygithub_duplicate_an_issue(gh: FakeGitHub) -> None:
    """Why the backend must look up before it creates: nothing stops a second issue."""
    gh.fail_next("issues/create", 502, after_write=True)

    client(gh).get_repo(REPO).create_issue(title="Approve g1")

    assert gh.count("issues/create") == 2
    assert [i.title for i in gh.repo(REPO).issues.values()] == ["Approve g1", "Approve g1"]


def test_retries_can_be_turned_off(gh: FakeGitHub) -> None:
    gh.fail_next("issues/create", 502)

    with pytest.raises(github.GithubException) as raised:
        client(gh, retry=None).get_repo(REPO).create_issue(title="t")

    assert raised.value.status == 502
    assert gh.repo(REPO).issues == {}


@pytest.mark.parametrize("status", [403, 429], ids=["403", "429"])
def test_secondary_rate_limit_is_retried_after_retry_after(gh: FakeGitHub, status: int) -> None:
    repo, pull = open_gate_pull(gh)
    gh.rate_limit_next("issues/create-comment", status=status, retry_after=1)

    started = time.monotonic()
    repo.get_issue(pull.number).create_comment("hello")

    assert time.monotonic() - started >= 1
    assert [r.status for r in gh.requests if r.operation_id == "issues/create-comment"] == [
        status,
        201,
    ]
    assert [c.body for c in gh.repo(REPO).issue_comments(pull.number)] == ["hello"]


def test_rate_limit_headers_and_endpoint_count_requests(gh: FakeGitHub) -> None:
    c = client(gh)
    c.get_repo(REPO)

    assert c.get_rate_limit().resources.core.used == 2
    assert c.rate_limiting == (4998, 5000)


# -- authorization lookups ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("login", "permission", "role"),
    [
        ("acme", "admin", "admin"),
        ("alice", "write", "maintain"),
        ("hitl-bot", "write", "write"),
        ("bob", "read", "triage"),
        ("carol", "none", "none"),
    ],
    ids=["owner", "maintain", "write", "triage", "no-access"],
)
def test_collaborator_permission(gh: FakeGitHub, login: str, permission: str, role: str) -> None:
    gh.add_user("carol")
    repo = client(gh).get_repo(REPO)

    assert repo.get_collaborator_permission(login) == permission
    assert repo.get_collaborator_role_name(login) == role


def test_collaborator_permission_of_unknown_user_is_404(gh: FakeGitHub) -> None:
    with pytest.raises(github.GithubException) as raised:
        client(gh).get_repo(REPO).get_collaborator_permission("ghost")

    assert (raised.value.status, raised.value.data["message"]) == (404, "ghost is not a user")


def test_team_membership_includes_child_teams_and_pending_invites(gh: FakeGitHub) -> None:
    gh.add_team("acme", "approvers", members={"alice": "maintainer"})
    gh.add_team("acme", "ml-leads", parent="approvers", members=["dave"])
    gh.add_team_member("acme", "approvers", "erin", state="pending")
    team = client(gh).get_organization("acme").get_team_by_slug("approvers")

    assert (team.get_team_membership("alice").role, team.get_team_membership("alice").state) == (
        "maintainer",
        "active",
    )
    assert team.get_team_membership("dave").state == "active"
    assert team.get_team_membership("erin").state == "pending"
    with pytest.raises(github.UnknownObjectException):
        team.get_team_membership("bob")


# -- history --------------------------------------------------------------------------------------
def test_reviews_and_comments_replay_in_order(gh: FakeGitHub) -> None:
    gh.add_token("alice-token", "alice")
    repo, pull = open_gate_pull(gh)
    gh.add_review(REPO, pull.number, "bob", "COMMENTED", body="looks odd")
    gh.add_comment(REPO, pull.number, "bob", "/approve")
    client(gh, "alice-token").get_repo(REPO).get_pull(pull.number).create_review(event="APPROVE")
    gh.add_review(REPO, pull.number, "alice", "CHANGES_REQUESTED", body="wait")

    reviews = list(repo.get_pull(pull.number).get_reviews())

    assert [(r.user.login, r.state) for r in reviews] == [
        ("bob", "COMMENTED"),
        ("alice", "APPROVED"),
        ("alice", "CHANGES_REQUESTED"),
    ]
    assert all(r.commit_id == pull.head.sha for r in reviews)
    assert reviews[0].submitted_at < reviews[1].submitted_at < reviews[2].submitted_at
    assert [c.user.login for c in repo.get_issue(pull.number).get_comments()] == ["bob"]


def test_author_association_hides_private_org_members(gh: FakeGitHub) -> None:
    """Why authorization must not read author_association (actions/github-script#643)."""
    gh.add_org_member("acme", "pat", public=False)
    gh.add_org_member("acme", "quinn", public=True)
    _, pull = open_gate_pull(gh)
    for login in ("pat", "quinn", "alice", "acme"):
        gh.add_comment(REPO, pull.number, login, "/approve")

    comments = client(gh).get_repo(REPO).get_issue(pull.number).get_comments()

    assert [(c.user.login, c.author_association) for c in comments] == [
        ("pat", "CONTRIBUTOR"),
        ("quinn", "MEMBER"),
        ("alice", "COLLABORATOR"),
        ("acme", "OWNER"),
    ]


def test_author_cannot_approve_own_pull_request(gh: FakeGitHub) -> None:
    _, pull = open_gate_pull(gh)

    with pytest.raises(github.GithubException) as raised:
        pull.create_review(event="APPROVE")

    assert raised.value.status == 422
    assert raised.value.data["errors"] == ["Review Can not approve your own pull request"]


def test_merge_then_close_states(gh: FakeGitHub) -> None:
    repo, pull = open_gate_pull(gh)

    with pytest.raises(github.GithubException) as stale:
        pull.merge(sha="0" * 40)
    merged = pull.merge(merge_method="squash")
    with pytest.raises(github.GithubException) as again:
        pull.merge()

    assert stale.value.status == 409
    assert merged.merged
    assert again.value.status == 405
    assert gh.file(REPO, "gates/g1.md") == b"approve me\n"
    after = repo.get_pull(pull.number)
    assert (after.state, after.merged, after.merged_by.login) == ("closed", True, BOT)


def test_requested_reviewers_must_be_collaborators_not_the_author(gh: FakeGitHub) -> None:
    gh.add_user("mallory")
    _, pull = open_gate_pull(gh)

    with pytest.raises(github.GithubException) as outsider:
        pull.create_review_request(reviewers=["mallory"])
    with pytest.raises(github.GithubException) as author:
        pull.create_review_request(reviewers=[BOT])

    assert (outsider.value.status, author.value.status) == (422, 422)


def test_refs_move_by_fast_forward_only_and_can_be_deleted(gh: FakeGitHub) -> None:
    repo = client(gh).get_repo(REPO)
    start = repo.get_git_ref("heads/main").object.sha
    repo.create_git_ref("refs/heads/feature", start)
    ahead = gh.push_file(REPO, "notes.md", "n\n", branch="feature")
    main = repo.get_git_ref("heads/main")

    main.edit(ahead)
    with pytest.raises(github.GithubException) as backwards:
        main.edit(start)
    main.edit(start, force=True)
    repo.get_git_ref("heads/feature").delete()

    assert (backwards.value.status, backwards.value.data["message"]) == (
        422,
        "Update is not a fast forward",
    )
    assert gh.repo(REPO).branch_sha("main") == start
    assert gh.repo(REPO).branch_sha("feature") is None


def test_directory_listing_and_pagination(gh: FakeGitHub) -> None:
    gh.push_file(REPO, "gates/a.md", "a\n")
    gh.push_file(REPO, "gates/nested/b.md", "b\n")
    repo = client(gh).get_repo(REPO)
    for i in range(35):
        repo.create_issue(title=f"issue {i}")
    gh.clear_log()

    listing = repo.get_contents("gates")
    issues = list(repo.get_issues())

    assert [(e.path, e.type) for e in listing] == [("gates/a.md", "file"), ("gates/nested", "dir")]
    assert len(issues) == 35
    assert gh.count("issues/list-for-repo") == 2  # 30 per page, then the Link header's next


# -- auth and the request log ---------------------------------------------------------------------
def test_requests_need_a_configured_token(gh: FakeGitHub) -> None:
    with pytest.raises(github.BadCredentialsException):
        client(gh, "wrong-token").get_repo(REPO)
    anonymous = requests.get(f"{gh.url}/repos/{REPO}", timeout=5)
    bearer = requests.get(
        f"{gh.url}/repos/{REPO}", headers={"Authorization": f"Bearer {gh.token}"}, timeout=5
    )

    assert anonymous.status_code == 401
    assert anonymous.json()["message"] == "Requires authentication"
    assert bearer.status_code == 200


def test_request_log_records_method_path_query_body_status(gh: FakeGitHub) -> None:
    repo, pull = open_gate_pull(gh)
    gh.clear_log()
    list(repo.get_pulls(state="all", head="acme:hitl/g1"))

    (entry,) = gh.requests
    assert (entry.method, entry.path, entry.status) == ("GET", f"/repos/{REPO}/pulls", 200)
    assert entry.query["head"] == ["acme:hitl/g1"]
    assert (entry.operation_id, entry.user, entry.body) == ("pulls/list", BOT, None)
    assert pull.number == 1


# -- the fake's own contract checks ---------------------------------------------------------------
def test_undocumented_request_is_a_violation(gh: FakeGitHub) -> None:
    answer = requests.get(
        f"{gh.url}/repos/{REPO}/frobnicate",
        headers={"Authorization": f"token {gh.token}"},
        timeout=5,
    )

    assert answer.status_code == 404
    with pytest.raises(
        ContractViolation, match="undocumented request GET /repos/acme/reviews/frob"
    ):
        gh.assert_clean()
    gh.take_violations()


def test_documented_but_unimplemented_operation_is_a_violation(gh: FakeGitHub) -> None:
    with pytest.raises(github.UnknownObjectException):
        list(client(gh).get_repo(REPO).get_branches())

    (violation,) = gh.take_violations()
    assert "repos/list-branches" in violation
    assert "does not implement" in violation


def test_invalid_request_body_is_a_violation(gh: FakeGitHub) -> None:
    answer = requests.post(
        f"{gh.url}/repos/{REPO}/pulls",
        json={"title": 5, "head": "x"},
        headers={"Authorization": f"token {gh.token}"},
        timeout=5,
    )

    assert answer.status_code == 422
    violations = " ".join(gh.take_violations())
    assert "invalid request POST /repos/acme/reviews/pulls (pulls/create)" in violations
    assert "'base' is a required property" in violations
    assert gh.repo(REPO).issues == {}


def test_invalid_response_body_is_a_violation(gh: FakeGitHub) -> None:
    def drop_default_branch(body: dict) -> dict:
        del body["default_branch"]
        return body

    gh.tamper_next("repos/get", drop_default_branch)
    client(gh).get_repo(REPO)

    (violation,) = gh.take_violations()
    assert violation.startswith("invalid response to GET /repos/acme/reviews (repos/get, 200)")
    assert "'default_branch' is a required property" in violation


def test_unused_fault_fails_the_test(gh: FakeGitHub) -> None:
    gh.fail_next("pulls/merge", 502)

    with pytest.raises(ContractViolation, match="scripted fault never used: pulls/merge"):
        gh.assert_clean()
    gh.take_violations()


def test_leaving_the_block_raises_recorded_violations() -> None:
    with pytest.raises(ContractViolation, match="undocumented request"), FakeGitHub() as server:
        requests.get(f"{server.url}/nope", timeout=5)


def test_fault_routes_must_be_implemented_operations(gh: FakeGitHub) -> None:
    with pytest.raises(ValueError, match="not an operation the fake implements"):
        gh.fail_next("repos/list-branches")


def test_spec_is_loaded_once_per_session(gh: FakeGitHub) -> None:
    with FakeGitHub() as other:
        assert other.contract is gh.contract
    assert gh.contract.load_seconds < 10
    assert gh.contract.version
