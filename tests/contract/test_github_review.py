"""The GitHub review backend against FakeGitHub, a local GitHub held to GitHub's OpenAPI
description: every request and answer is validated, and an unexpected request fails the test.

Covers pull request mode (open, approve by merge, reject by close), issue mode, re-run
idempotency, lost answers (a 502 before and after the write was applied), rate limits
(secondary with Retry-After, primary with X-RateLimit-Reset), 422 "already exists",
GitHub Enterprise Server through ``GITHUB_API_URL``, first decision wins, audit, and the
``github:`` review setting.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from metaflow_hitl.errors import ConfigError, ReviewConflict, StoreError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.github.page_check import publication_for
from metaflow_hitl.github.review_backend import LABEL, GitHubReviewBackend
from metaflow_hitl.markers import is_bot_reply, parse_markers
from metaflow_hitl.records import Actor, Decision, Publication, Request, decode_record
from metaflow_hitl.render.documents import approval_path, decision_path
from metaflow_hitl.review.config import backend_for_request, parse_review
from metaflow_hitl.review.git_backend import branch_for
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.timestamps import utc_now
from tests.fakes.github import SKIP_REASON, SPEC_FILE, Clock, FakeGitHub

pytestmark = pytest.mark.skipif(not SPEC_FILE.is_file(), reason=SKIP_REASON)

REPO = "acme/approvals"
TOKEN = "ghp_fake"  # FakeGitHub's default token; must never show up in errors


@pytest.fixture(autouse=True)
def _no_env_github(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "METAFLOW_HITL_GITHUB_TOKEN",
        "GITHUB_TOKEN",
        "METAFLOW_HITL_GITHUB_API_URL",
        "GITHUB_API_URL",
        "METAFLOW_HITL_REVIEW",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        # The fake's clock starts in 2024; issue lookups filter by `since` the request time.
        server.world.clock = Clock(utc_now() - timedelta(minutes=5))
        server.add_org("acme")
        server.add_repo(REPO, files={"README.md": "# approvals\n"})
        server.add_collaborator(REPO, "hitl-bot", "write")
        server.add_collaborator(REPO, "alice", "write")
        server.add_collaborator(REPO, "bob", "maintain")
        server.add_team("acme", "ml-leads", members=["bob"])
        yield server


class Sleeps(list[float]):
    """A sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


#: What each gate's page was published as in this test (the store's Publication record).
_PUBLISHED: dict[GateId, Publication] = {}


@pytest.fixture(autouse=True)
def _fresh_publications() -> None:
    _PUBLISHED.clear()


class _AsPublished(GitHubReviewBackend):
    """The backend as :mod:`metaflow_hitl.review.publish` drives it: opening a page records
    its :class:`Publication` (the first stands), and deciding passes that record on."""

    def open_review(self, request: Request, *, approval_file: str) -> dict[str, str | None]:
        refs = super().open_review(request, approval_file=approval_file)
        publication = publication_for(request, refs, approval_file, utc_now())
        if publication is not None:
            _PUBLISHED.setdefault(request.gate_id, publication)
        return refs

    def record_decision(
        self, request: Request, decision: Decision, *, publication: Publication | None = None
    ) -> dict[str, str | None]:
        publication = publication or _PUBLISHED.get(request.gate_id)
        return super().record_decision(request, decision, publication=publication)


def backend(server: FakeGitHub, mode: str = "pr", **kwargs: Any) -> GitHubReviewBackend:
    kwargs.setdefault("sleep", Sleeps())
    return _AsPublished(
        REPO, mode=mode, api_url=server.url, token=server.token, backoff=0.01, **kwargs
    )


def make_request(
    step: str = "gate", approvers: tuple[str, ...] = ("alice", "carol", "@acme/ml-leads")
) -> Request:
    spec = GateSpec.from_options(
        message="Deploy model v3?", input_schema={"target": "str"}, approvers=list(approvers)
    )
    return spec.request_for(
        GateId("TrainFlow", "1732", step),
        message="Deploy model v3?",
        started_by="dave",
        runtime="local",
        now=utc_now(),
        store="/tmp/store",
        review={"backend": "github", "repo": REPO},
    )


def make_decision(request: Request, outcome: str = "approved", login: str = "alice") -> Decision:
    actor = Actor(login=login, channel="cli", at=utc_now(), source="flag")
    return Decision(
        gate_id=request.gate_id,
        outcome=outcome,  # type: ignore[arg-type]
        proceed=outcome == "approved",
        decided_by=login,
        channel="cli",
        deciders=(actor,),
        decided_at=utc_now(),
        request_digest=request.digest(),
        reason=None if outcome == "approved" else "metrics regressed",
        input={"target": "prod"} if outcome == "approved" else {},
    )


def ops(server: FakeGitHub) -> list[str]:
    return [r.operation_id or "?" for r in server.requests]


def bot_replies(server: FakeGitHub, number: int) -> list[str]:
    return [c.body for c in server.repo(REPO).issue_comments(number) if is_bot_reply(c.body)]


# -- pull request mode ------------------------------------------------------------------------
def test_pr_mode_opens_branch_file_pull_reviewers_and_label(
    gh: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    request = make_request()
    b = backend(gh)

    with caplog.at_level(logging.WARNING, logger="metaflow_hitl.review.github"):
        refs = b.open_review(request, approval_file="# Approve me\n")

    branch = branch_for(request.gate_id)
    assert branch == "hitl/TrainFlow/1732/gate"
    assert refs["branch"] == branch
    assert refs["number"] == "1"
    assert refs["url"] == f"https://github.com/{REPO}/pull/1"
    assert gh.file(REPO, approval_path(request.gate_id), ref=branch) == b"# Approve me\n"
    assert gh.file(REPO, approval_path(request.gate_id)) is None  # main untouched
    pull = gh.issue(REPO, 1)
    assert pull.pull is not None
    assert pull.pull.head_ref == branch
    assert pull.title.startswith("Approve TrainFlow/1732/gate")
    assert [m.gate_id for m in parse_markers(pull.body)] == [str(request.gate_id)]
    assert pull.pull.requested_reviewers == ["alice"]  # carol refused, dave (starter) skipped
    assert pull.pull.requested_teams == ["ml-leads"]
    assert pull.labels == [LABEL]
    assert b.requests_made == gh.request_count
    writes = [r.operation_id for r in gh.requests if r.is_write and r.status < 300]
    assert writes == [
        "git/create-ref",
        "repos/create-or-update-file-contents",
        "pulls/create",
        "pulls/request-reviewers",  # alice and the team, one by one after the batch failed
        "pulls/request-reviewers",
        "issues/add-labels",
    ]
    refused = [r for r in gh.requests if r.operation_id == "pulls/request-reviewers"]
    assert [r.status for r in refused] == [422, 201, 422, 201]
    assert [r.getMessage() for r in caplog.records] == [
        "review request for carol on acme/approvals#1 refused by GitHub"
    ]


def test_pr_mode_minimal_requests_without_refused_reviewers(
    gh: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    request = make_request(approvers=("alice", "@acme/ml-leads"))
    b = backend(gh)

    with caplog.at_level(logging.WARNING, logger="metaflow_hitl.review.github"):
        b.open_review(request, approval_file="x\n")

    assert caplog.records == []
    assert gh.issue(REPO, 1).pull.requested_teams == ["ml-leads"]  # type: ignore[union-attr]

    assert ops(gh) == [
        "repos/get",
        "pulls/list",
        "git/get-ref",
        "git/get-ref",
        "git/create-ref",
        "repos/create-or-update-file-contents",
        "pulls/create",
        "pulls/request-reviewers",
        "issues/add-labels",
    ]
    assert b.requests_made == 9


def test_reviewer_refusal_is_logged_not_raised(
    gh: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    request = make_request(approvers=("mallory",))
    with caplog.at_level(logging.WARNING, logger="metaflow_hitl.review.github"):
        refs = backend(gh).open_review(request, approval_file="x\n")

    assert refs["number"] == "1"
    assert "mallory" in caplog.text
    assert "refused" in caplog.text
    assert len(caplog.records) == 1
    assert gh.issue(REPO, 1).labels == [LABEL]


def test_pr_approve_merges_the_checked_head_then_commits_the_decision(gh: FakeGitHub) -> None:
    request = make_request()
    backend(gh).open_review(request, approval_file="x\n")
    decision = make_decision(request)
    gh.clear_log()
    b = backend(gh)

    refs = b.record_decision(request, decision)

    pull = gh.issue(REPO, 1)
    assert pull.pull is not None
    assert pull.pull.merged
    assert pull.state == "closed"
    assert refs["commit"] == pull.pull.merge_commit_sha
    on_main = gh.file(REPO, decision_path(request.gate_id))
    assert on_main is not None
    assert decode_record(on_main, Decision).nonce == decision.nonce
    assert gh.file(REPO, approval_path(request.gate_id)) == b"x\n"  # merged too
    (reply,) = bot_replies(gh, 1)
    assert "**Approved:**" in reply
    assert decision.nonce in reply
    assert ops(gh) == [
        "repos/get",
        "pulls/list",
        "users/get-authenticated",
        "pulls/get",  # the page is checked as GitHub holds it now...
        "pulls/list-files",
        "pulls/list-commits",
        "repos/get-content",
        "repos/get-content",
        "pulls/merge",  # ...and merged pinned to the head commit that was checked
        "repos/create-or-update-file-contents",  # the decision, on the default branch
        "issues/create-comment",
    ]
    assert b.requests_made == 11
    (merge,) = [r for r in gh.requests if r.operation_id == "pulls/merge"]
    assert merge.body["sha"] == pull.pull.head_sha
    repo = gh.repo(REPO)
    decided = repo.commits[repo.branch_sha("main") or ""]
    assert decided.parents == (pull.pull.merge_commit_sha,)
    assert decided.author_name == "alice"
    assert "Hitl-Outcome: approved" in decided.message


def test_pr_reject_commits_on_default_branch_and_closes(gh: FakeGitHub) -> None:
    request = make_request()
    backend(gh).open_review(request, approval_file="x\n")
    decision = make_decision(request, "rejected", login="bob")
    gh.clear_log()

    backend(gh).record_decision(request, decision)

    pull = gh.issue(REPO, 1)
    assert pull.pull is not None
    assert not pull.pull.merged
    assert pull.state == "closed"
    assert gh.file(REPO, decision_path(request.gate_id)) is not None
    assert gh.file(REPO, approval_path(request.gate_id)) is None  # not merged
    (reply,) = bot_replies(gh, 1)
    assert "**Rejected:**" in reply
    assert ops(gh) == [
        "repos/get",
        "pulls/list",
        "users/get-authenticated",
        "repos/get-content",
        "pulls/update",
        "repos/create-or-update-file-contents",
        "issues/create-comment",
    ]


def test_squash_merge_keeps_the_trailers_on_main(gh: FakeGitHub) -> None:
    request = make_request()
    backend(gh, merge_method="squash").open_review(request, approval_file="x\n")

    backend(gh, merge_method="squash").record_decision(request, make_decision(request))

    (entry,) = backend(gh).audit()
    assert (entry.gate_id, entry.outcome, entry.decided_by) == (
        str(request.gate_id),
        "approved",
        "alice",
    )


# -- issue mode -------------------------------------------------------------------------------
def test_issue_mode_open_and_decide(gh: FakeGitHub) -> None:
    request = make_request()
    b = backend(gh, "issue")

    refs = b.open_review(request, approval_file="unused in issue mode\n")

    assert refs == {
        "backend": "github",
        "location": f"github:{REPO}",
        "mode": "issue",
        "number": "1",
        "url": f"https://github.com/{REPO}/issues/1",
    }
    issue = gh.issue(REPO, 1)
    assert issue.pull is None
    assert issue.labels == [LABEL]
    assert issue.assignees == []  # carol is not assignable: GitHub refused, opened unassigned
    assert ops(gh) == ["issues/list-for-repo", "issues/create", "issues/create"]
    gh.clear_log()

    decision = make_decision(request, "rejected", login="bob")
    backend(gh, "issue").record_decision(request, decision)

    issue = gh.issue(REPO, 1)
    assert (issue.state, issue.state_reason) == ("closed", "not_planned")
    assert gh.file(REPO, decision_path(request.gate_id)) is not None
    assert len(bot_replies(gh, 1)) == 1
    assert ops(gh) == [
        "issues/list-for-repo",
        "users/get-authenticated",
        "repos/get-content",
        "issues/update",
        "repos/create-or-update-file-contents",
        "issues/create-comment",
    ]


def test_issue_mode_assignable_approvers_take_one_write(gh: FakeGitHub) -> None:
    request = make_request(approvers=("alice", "bob"))

    backend(gh, "issue").open_review(request, approval_file="")

    assert gh.issue(REPO, 1).assignees == ["alice", "bob"]
    assert ops(gh) == ["issues/list-for-repo", "issues/create"]


# -- idempotency ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["pr", "issue"])
def test_rerun_opens_nothing_twice_and_records_once(gh: FakeGitHub, mode: str) -> None:
    request = make_request(approvers=("alice",))
    decision = make_decision(request)

    first = backend(gh, mode).open_review(request, approval_file="x\n")
    again = backend(gh, mode).open_review(request, approval_file="another rendering\n")
    backend(gh, mode).record_decision(request, decision)
    gh.clear_log()
    b = backend(gh, mode)
    b.record_decision(request, decision)

    assert first == again
    repo = gh.repo(REPO)
    assert len(repo.issues) == 1
    assert [r for r in repo.refs if r.startswith("refs/heads/hitl/")] == (
        [f"refs/heads/{branch_for(request.gate_id)}"] if mode == "pr" else []
    )
    decision_commits = [c for c in repo.commits.values() if "Hitl-Outcome" in c.message]
    assert len(decision_commits) == 1
    assert len(bot_replies(gh, 1)) == 1
    assert not any(r.is_write for r in gh.requests)  # the second record only read
    assert b.requests_made == gh.request_count


def test_open_after_merge_and_branch_deletion_opens_no_new_pull(gh: FakeGitHub) -> None:
    request = make_request(approvers=())
    backend(gh).open_review(request, approval_file="x\n")
    backend(gh).record_decision(request, make_decision(request))
    del gh.repo(REPO).refs[f"refs/heads/{branch_for(request.gate_id)}"]  # auto-delete

    refs = backend(gh).open_review(request, approval_file="x\n")

    assert refs["number"] == "1"
    assert len(gh.repo(REPO).issues) == 1


def test_open_resumes_after_a_crash_between_branch_and_pull(gh: FakeGitHub) -> None:
    request = make_request(approvers=())
    gh.push_file(REPO, "other.txt", "x", branch=branch_for(request.gate_id))  # branch, no file

    backend(gh).open_review(request, approval_file="x\n")

    assert gh.file(REPO, approval_path(request.gate_id), ref=branch_for(request.gate_id))
    assert gh.count("git/create-ref") == 0
    assert gh.count("pulls/create") == 1


# -- faults -----------------------------------------------------------------------------------
def test_502_on_a_read_is_retried(gh: FakeGitHub) -> None:
    gh.fail_next("pulls/list", 502)
    b = backend(gh)

    b.open_review(make_request(), approval_file="x\n")

    assert gh.count("pulls/list") == 2
    assert b.requests_made == gh.request_count
    assert b._sleep == [0.01]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "route", ["git/create-ref", "repos/create-or-update-file-contents", "pulls/create"]
)
def test_502_after_the_write_applied_duplicates_nothing_in_pr_mode(
    gh: FakeGitHub, route: str
) -> None:
    gh.fail_next(route, 502, after_write=True)
    request = make_request(approvers=("alice",))

    refs = backend(gh).open_review(request, approval_file="x\n")

    assert refs["number"] == "1"
    assert len(gh.repo(REPO).issues) == 1
    assert gh.count(route) == 1  # looked it up instead of writing again
    assert gh.file(REPO, approval_path(request.gate_id), ref=branch_for(request.gate_id))


def test_502_before_the_write_creates_it_once(gh: FakeGitHub) -> None:
    gh.fail_next("pulls/create", 502)
    gh.fail_next("issues/create-comment", 503)
    request = make_request(approvers=())

    backend(gh).open_review(request, approval_file="x\n")
    backend(gh).record_decision(request, make_decision(request))

    assert len(gh.repo(REPO).issues) == 1
    assert len(bot_replies(gh, 1)) == 1
    assert gh.count("pulls/create") == 2
    assert gh.count("issues/create-comment") == 2


def test_502_after_issue_and_comment_writes_duplicates_nothing(gh: FakeGitHub) -> None:
    gh.fail_next("issues/create", 502, after_write=True)
    gh.fail_next("issues/create-comment", 502, after_write=True)
    gh.fail_next("repos/create-or-update-file-contents", 502, after_write=True)
    request = make_request(approvers=("alice",))

    backend(gh, "issue").open_review(request, approval_file="")
    backend(gh, "issue").record_decision(request, make_decision(request))

    assert len(gh.repo(REPO).issues) == 1
    assert len(bot_replies(gh, 1)) == 1
    assert gh.count("issues/create") == 1
    assert gh.count("issues/create-comment") == 1
    assert gh.issue(REPO, 1).state == "closed"


def test_502_after_merge_is_checked_not_repeated(gh: FakeGitHub) -> None:
    request = make_request(approvers=())
    backend(gh).open_review(request, approval_file="x\n")
    gh.fail_next("pulls/merge", 502, after_write=True)

    backend(gh).record_decision(request, make_decision(request))

    assert gh.count("pulls/merge") == 1
    assert gh.issue(REPO, 1).pull.merged


def test_secondary_rate_limit_waits_for_retry_after(gh: FakeGitHub) -> None:
    gh.rate_limit_next("pulls/create", kind="secondary", status=403, retry_after=7)
    gh.rate_limit_next("issues/create", kind="secondary", status=429, retry_after=3)
    sleeps = Sleeps()

    backend(gh, sleep=sleeps).open_review(make_request(approvers=()), approval_file="x\n")
    backend(gh, "issue", sleep=sleeps).open_review(make_request("other", ()), approval_file="")

    assert sleeps == [7.0, 3.0]
    assert gh.count("pulls/create") == 2
    assert gh.count("issues/create") == 2
    assert len(gh.repo(REPO).issues) == 2


def test_primary_rate_limit_waits_until_reset(gh: FakeGitHub) -> None:
    gh.rate_limit_next("pulls/list", kind="primary", retry_after=30)
    sleeps = Sleeps()

    backend(gh, sleep=sleeps).open_review(make_request(), approval_file="x\n")

    assert len(sleeps) == 1
    assert 29 <= sleeps[0] <= 32


def test_rate_limit_beyond_max_wait_fails_fast_without_the_token(gh: FakeGitHub) -> None:
    gh.rate_limit_next("pulls/list", kind="secondary", retry_after=600)
    sleeps = Sleeps()

    with pytest.raises(StoreError) as raised:
        backend(gh, sleep=sleeps, max_wait=5).open_review(make_request(), approval_file="x\n")

    assert sleeps == []
    assert "max_wait=5s" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_persistent_5xx_gives_up_after_bounded_attempts(gh: FakeGitHub) -> None:
    gh.fail_next("pulls/list", 500, times=3)

    with pytest.raises(StoreError, match="after 3 attempt"):
        backend(gh, max_attempts=3).open_review(make_request(), approval_file="x\n")

    assert gh.count("pulls/list") == 3


def test_422_already_exists_from_a_concurrent_notifier(gh: FakeGitHub) -> None:
    """Another notifier creates the branch and the pull request between our lookups and our
    creates: GitHub answers 422 "already exists" and we adopt theirs."""
    request = make_request(approvers=())
    b = backend(gh)
    rival = backend(gh)
    b._default_branch = "main"  # as if known: the race window is just lookups vs creates
    real_get_ref = b._get_ref
    raced = []

    def racing_get_ref(branch: str) -> str | None:
        found = real_get_ref(branch)
        if branch == branch_for(request.gate_id) and not raced:
            raced.append(True)
            rival.open_review(request, approval_file="rival\n")
            return None  # we looked before the rival wrote
        return found

    b._get_ref = racing_get_ref  # type: ignore[method-assign]

    refs = b.open_review(request, approval_file="ours\n")

    assert refs["number"] == "1"
    assert len(gh.repo(REPO).issues) == 1
    refused = [(r.operation_id, r.status) for r in gh.requests if r.status == 422]
    assert refused == [
        ("git/create-ref", 422),  # "Reference already exists"
        ("repos/create-or-update-file-contents", 422),  # "sha" wasn't supplied: it exists
        ("pulls/create", 422),  # "A pull request already exists"
    ]
    assert gh.file(REPO, approval_path(request.gate_id), ref=branch_for(request.gate_id)) == (
        b"rival\n"
    )


def test_422_pull_already_exists_is_adopted(gh: FakeGitHub) -> None:
    request = make_request(approvers=())
    gh.fail_next("pulls/create", 502, after_write=True)
    b = backend(gh)
    real_find = b._find_pull
    calls = []

    def stale_once(branch: str) -> Any:
        calls.append(branch)
        return None if len(calls) == 2 else real_find(branch)  # a lagging read after the 502

    b._find_pull = stale_once  # type: ignore[method-assign]

    refs = b.open_review(request, approval_file="x\n")

    assert refs["number"] == "1"
    assert len(gh.repo(REPO).issues) == 1
    assert [r.status for r in gh.requests if r.operation_id == "pulls/create"] == [502, 422]


# -- GitHub Enterprise Server, tokens, errors -------------------------------------------------
def test_ghes_api_url_from_github_api_url(gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", gh.url + "/")
    monkeypatch.setenv("GITHUB_TOKEN", gh.token)
    settings = parse_review(f"github:{REPO}", local_store="/tmp/s")
    assert settings["api_url"] == gh.url  # recorded, without the slash
    request = make_request(approvers=())
    request = Request.from_dict({**request.to_dict(), "review": settings})
    assert TOKEN not in str(request.to_dict())

    b = backend_for_request(request)
    refs = b.open_review(request, approval_file="x\n")
    published = publication_for(request, refs, "x\n", utc_now())
    b.record_decision(request, make_decision(request), publication=published)

    assert isinstance(b, GitHubReviewBackend)
    assert b.api_url == gh.url
    assert refs["number"] == "1"
    assert gh.issue(REPO, 1).pull.merged


def test_metaflow_hitl_env_wins_over_github_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "https://wrong.example/api/v3")
    monkeypatch.setenv("METAFLOW_HITL_GITHUB_API_URL", "https://ghe.example.com/api/v3")
    settings = parse_review("github:acme/approvals", local_store="/tmp/s")
    assert settings["api_url"] == "https://ghe.example.com/api/v3"


def test_missing_token_is_a_config_error_naming_the_variable(gh: FakeGitHub) -> None:
    b = GitHubReviewBackend(REPO, api_url=gh.url)

    with pytest.raises(ConfigError, match="METAFLOW_HITL_GITHUB_TOKEN") as raised:
        b.open_review(make_request(), approval_file="x\n")

    assert "GITHUB_TOKEN" in str(raised.value)
    assert gh.request_count == 0


def test_token_comes_from_env_and_never_appears_in_errors(
    gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METAFLOW_HITL_GITHUB_TOKEN", TOKEN)
    gh.fail_next("pulls/list", 500, times=2, body={"message": f"boom {TOKEN}"})
    b = GitHubReviewBackend(REPO, api_url=gh.url, max_attempts=2, backoff=0, sleep=Sleeps())
    with pytest.raises(StoreError) as failed:
        b.open_review(make_request(), approval_file="x\n")

    gh.fail_next("pulls/list", 400, body={"message": f"you sent {TOKEN}"})
    with pytest.raises(StoreError) as refused:
        b.open_review(make_request(), approval_file="x\n")

    bad = GitHubReviewBackend(REPO, api_url=gh.url, token="ghp_wrong_secret")
    with pytest.raises(ConfigError) as rejected:
        bad.open_review(make_request(), approval_file="x\n")

    for exc in (failed.value, refused.value, rejected.value):
        assert TOKEN not in str(exc)
        assert "ghp_wrong_secret" not in str(exc)
        assert TOKEN not in repr(exc.args)
    assert "***" in str(refused.value)
    assert "401" in str(rejected.value)
    assert TOKEN not in repr(b)


def test_unknown_repo_is_a_clear_store_error(gh: FakeGitHub) -> None:
    b = GitHubReviewBackend("acme/nope", api_url=gh.url, token=gh.token)

    with pytest.raises(StoreError, match=r"acme/nope .* does not exist, or the token"):
        b.open_review(make_request(), approval_file="x\n")


# -- first decision wins, audit ---------------------------------------------------------------
@pytest.mark.parametrize("mode", ["pr", "issue"])
def test_a_different_existing_decision_is_a_conflict(gh: FakeGitHub, mode: str) -> None:
    request = make_request(approvers=())
    backend(gh, mode).open_review(request, approval_file="x\n")
    backend(gh, mode).record_decision(request, make_decision(request, "rejected", "bob"))
    before = len(gh.repo(REPO).commits)

    with pytest.raises(ReviewConflict, match="first decision stands"):
        backend(gh, mode).record_decision(request, make_decision(request, "approved"))

    assert len(gh.repo(REPO).commits) == before
    assert len(bot_replies(gh, 1)) == 1


def test_conflict_with_a_decision_left_on_the_gate_branch(gh: FakeGitHub) -> None:
    request = make_request(approvers=())
    backend(gh).open_review(request, approval_file="x\n")
    gh.fail_next("pulls/merge", 405, body={"message": "Pull Request is not mergeable"})
    with pytest.raises(StoreError, match="Merge the pull request by hand"):
        backend(gh).record_decision(request, make_decision(request))

    with pytest.raises(ReviewConflict):
        backend(gh).record_decision(request, make_decision(request, "approved", "bob"))


def test_audit_returns_every_decision_oldest_first(gh: FakeGitHub) -> None:
    first, second, third = (make_request(s, ()) for s in ("a", "b", "c"))
    backend(gh).open_review(first, approval_file="x\n")
    backend(gh).record_decision(first, make_decision(first, "approved", "alice"))
    backend(gh).open_review(second, approval_file="x\n")
    backend(gh).record_decision(second, make_decision(second, "rejected", "bob"))
    backend(gh, "issue").open_review(third, approval_file="")
    backend(gh, "issue").record_decision(third, make_decision(third, "approved", "bob"))
    gh.clear_log()

    entries = backend(gh).audit()

    assert [(e.gate_id, e.outcome, e.decided_by, e.author) for e in entries] == [
        ("TrainFlow/1732/a", "approved", "alice", "alice"),
        ("TrainFlow/1732/b", "rejected", "bob", "bob"),
        ("TrainFlow/1732/c", "approved", "bob", "bob"),
    ]
    assert all(e.channel == "cli" and e.request_digest.startswith("sha256:") for e in entries)
    assert ops(gh) == ["repos/list-commits"]


# -- the review setting -----------------------------------------------------------------------
def test_parse_review_github_forms() -> None:
    issue = parse_review("github:acme/approvals?mode=issue", local_store="/tmp/s")
    assert issue == {
        "backend": "github",
        "location": "github:acme/approvals",
        "repo": "acme/approvals",
        "mode": "issue",
        "merge": "merge",
        "api_url": "https://api.github.com",
    }
    pr = parse_review(
        " github:acme/ml.approvals_2?merge=squash&api_url=https://ghe.local/api/v3/ ",
        local_store="/tmp/s",
    )
    assert (pr["mode"], pr["merge"], pr["api_url"]) == ("pr", "squash", "https://ghe.local/api/v3")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("github:", "is not a GitHub repository"),
        ("github:acme", "is not a GitHub repository"),
        ("github:acme/approvals/extra", "is not a GitHub repository"),
        ("github:acme/../etc", "is not a GitHub repository"),
        ("github:acme/app rovals", "is not a GitHub repository"),
        ("github:acme/approvals.git", "no '.git'"),
        ("github:-acme/approvals", "is not a GitHub repository"),
        ("github:https://github.com/acme/approvals", "not a URL"),
        ("github:acme/approvals?mode=discussion", "mode='discussion' is not one of pr, issue"),
        ("github:acme/approvals?label=x", "unknown option 'label'"),
        ("github:acme/approvals?mode=pr&mode=issue", "given twice"),
        ("github:acme/approvals?merge=fast-forward", "is not one of merge, squash, rebase"),
        ("github:acme/approvals?api_url=ftp://ghe/api", "not an http(s) URL"),
        ("github:acme/approvals?api_url=https://u:secret@ghe/api", "contains credentials"),
        ("gihtub:acme/approvals", "'github:<owner>/<repo>'"),
    ],
)
def test_parse_review_refuses_bad_github_forms(value: str, needle: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_review(value, local_store="/tmp/s")
    assert needle in str(raised.value)
    assert "secret" not in str(raised.value)


def test_bad_api_url_in_env_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "not a url")
    with pytest.raises(ConfigError, match="from GITHUB_API_URL is not an http"):
        parse_review("github:acme/approvals", local_store="/tmp/s")


def test_the_collaborators_listing_says_what_the_permission_api_says(gh: FakeGitHub) -> None:
    """One listing (``GET /repos/{o}/{r}/collaborators?affiliation=all``) maps each role to
    the permission API's names (admin; maintain and write -> write; triage and read -> read,
    https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user),
    so a busy page's voters cost one request, not one each."""
    for login, role in [("tia", "triage"), ("rhea", "read"), ("ada", "admin"), ("wes", "write")]:
        gh.add_collaborator(REPO, login, role)
    b = backend(gh)
    listed = b.permissions()
    assert listed is not None
    for login in ("alice", "bob", "tia", "rhea", "ada", "wes", "hitl-bot"):
        assert listed[login] == b.permission(login), login
    assert listed["bob"] == "write"  # maintain
    assert listed["tia"] == "read"  # triage
    assert "mallory" not in listed  # not listed: the handler asks the permission API
    assert b.permissions(limit=2) is not None
    assert len(b.permissions(limit=2) or {}) >= 2


def test_a_token_that_may_not_list_collaborators_gets_none(gh: FakeGitHub) -> None:
    gh.add_collaborator(REPO, "rhea", "read")
    gh.add_token("t-rhea", "rhea")
    b = GitHubReviewBackend(REPO, api_url=gh.url, token="t-rhea", backoff=0.0, sleep=Sleeps())
    assert b.permissions() is None
    assert b.permission("alice") == "write"
