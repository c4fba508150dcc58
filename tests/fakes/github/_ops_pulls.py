"""Pull requests, review requests, reviews and merges of the fake GitHub.

Same-repository pull requests only: ``head`` is ``branch`` or ``owner:branch`` with the base
repository's owner. A pull request's head follows its branch while it is open.
"""

from __future__ import annotations

from typing import Any

from ._ops import ApiError, Call, NotModelled, Operations, Reply, validation_failed
from ._ops_issues import find_issue, set_state
from ._state import Issue, Pull, Repo, Review

OPERATIONS = Operations()

_REVIEW_STATES = {
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "COMMENT": "COMMENTED",
}


def find_pull(call: Call, repo: Repo) -> Issue:
    issue = find_issue(call, repo, "pull_number")
    if issue.pull is None:
        raise ApiError(404, "Not Found")
    return issue


def _head_branch(repo: Repo, head: str) -> str | None:
    """The branch named by ``head`` (``branch`` or ``owner:branch``), if in this repository."""
    owner, _, branch = head.rpartition(":")
    if owner and owner.lower() != repo.owner.lower():
        return None
    return branch


@OPERATIONS.add("pulls/list")
def list_pulls(call: Call) -> Reply:
    """``head`` filters only in the ``owner:branch`` form; a bare branch name is ignored
    (GitHub documents the ``user:ref-name`` format) [from memory]."""
    repo = call.repo()
    state, head, base = call.arg("state", "open"), call.arg("head"), call.arg("base")
    found = []
    for issue in repo.issues.values():
        if issue.pull is None or (state != "all" and issue.state != state):
            continue
        if head and ":" in head:
            owner, _, branch = head.partition(":")
            if owner.lower() != repo.owner.lower() or branch != issue.pull.head_ref:
                continue
        if base and issue.pull.base_ref != base:
            continue
        found.append(issue)
    sort = call.arg("sort", "created")
    if sort not in ("created", "updated"):
        raise NotModelled(f"sorting pull requests by {sort}")
    direction = call.arg("direction", "desc")
    key = (lambda i: i.created_at) if sort == "created" else (lambda i: i.updated_at)
    found.sort(key=key, reverse=direction == "desc")
    return call.paginate([call.render.pull(repo, i, full=False) for i in found])


@OPERATIONS.add("pulls/create")
def create_pull(call: Call) -> Reply:
    """422 when head or base is unknown, when head has no new commits, and when an open pull
    request already exists for the same head and base."""
    repo = call.repo(write=True)
    if call.field("issue") is not None or call.field("head_repo") is not None:
        raise NotModelled("converting issues and cross-repository pull requests")
    head, base, title = call.field("head"), call.field("base"), call.field("title")
    if title is None:
        raise validation_failed(
            {"resource": "PullRequest", "field": "title", "code": "missing_field"}
        )
    branch = _head_branch(repo, head)
    head_sha = repo.branch_sha(branch) if branch else None
    base_sha = repo.branch_sha(base)
    errors: list[dict[str, Any]] = []
    if base_sha is None:
        errors.append({"resource": "PullRequest", "field": "base", "code": "invalid"})
    if head_sha is None:
        errors.append({"resource": "PullRequest", "field": "head", "code": "invalid"})
    if errors:
        raise validation_failed(*errors)
    assert branch is not None
    assert head_sha is not None
    assert base_sha is not None
    for other in repo.issues.values():
        if (
            other.pull is not None
            and other.state == "open"
            and other.pull.head_ref == branch
            and other.pull.base_ref == base
        ):
            message = f"A pull request already exists for {repo.owner}:{branch}."
            raise validation_failed(
                {"resource": "PullRequest", "code": "custom", "message": message}
            )
    if head_sha in repo.ancestors(base_sha):
        message = f"No commits between {base} and {branch}"
        raise validation_failed({"resource": "PullRequest", "code": "custom", "message": message})
    now = call.world.clock.tick()
    issue = Issue(
        id=call.world.new_id(),
        number=repo.next_number(),
        title=title,
        body=call.field("body"),
        user=call.world.user(call.user).login,  # type: ignore[union-attr]
        created_at=now,
        updated_at=now,
        pull=Pull(
            id=call.world.new_id(),
            head_ref=branch,
            head_sha=head_sha,
            base_ref=base,
            draft=bool(call.field("draft", False)),
            maintainer_can_modify=bool(call.field("maintainer_can_modify", False)),
        ),
    )
    repo.issues[issue.number] = issue
    body = call.render.pull(repo, issue)
    return Reply(201, body, {"Location": body["url"]})


@OPERATIONS.add("pulls/get")
def get_pull(call: Call) -> Reply:
    repo = call.repo()
    return Reply(200, call.render.pull(repo, find_pull(call, repo)))


@OPERATIONS.add("pulls/update")
def update_pull(call: Call) -> Reply:
    repo = call.repo(write=True)
    issue = find_pull(call, repo)
    assert issue.pull is not None
    if call.field("title") is not None:
        issue.title = call.field("title")
    if isinstance(call.body, dict) and "body" in call.body:
        issue.body = call.body["body"]
    if call.field("base") is not None:
        if repo.branch_sha(call.field("base")) is None:
            raise validation_failed({"resource": "PullRequest", "field": "base", "code": "invalid"})
        issue.pull.base_ref = call.field("base")
    if call.field("maintainer_can_modify") is not None:
        issue.pull.maintainer_can_modify = call.field("maintainer_can_modify")
    if call.field("state") is not None:
        set_state(call, issue, call.field("state"), None)
    issue.updated_at = call.world.clock.tick()
    return Reply(200, call.render.pull(repo, issue))


@OPERATIONS.add("pulls/merge")
def merge_pull(call: Call) -> Reply:
    """405 when closed or already merged; 409 when ``sha`` is not the head."""
    repo = call.repo(write=True)
    issue = find_pull(call, repo)
    pull = issue.pull
    assert pull is not None
    head_sha = repo.head_sha(issue)
    if issue.state != "open":
        raise ApiError(405, "Pull Request is not mergeable")
    if call.field("sha") and call.field("sha") != head_sha:
        raise ApiError(409, "Head branch was modified. Review and try the merge again.")
    base_sha = repo.branch_sha(pull.base_ref)
    if base_sha is None:
        raise ApiError(405, "Base branch was deleted")
    method = call.field("merge_method") or "merge"
    title = call.field("commit_title") or (
        f"Merge pull request #{issue.number} from {repo.owner}/{pull.head_ref}"
        if method == "merge"
        else f"{issue.title} (#{issue.number})"
    )
    message = title + (
        "\n\n" + call.field("commit_message") if call.field("commit_message") else ""
    )
    tree = {**repo.commits[base_sha].tree, **repo.commits[head_sha].tree}
    now = call.world.clock.tick()
    user = call.world.user(call.user)
    assert user is not None
    commit = repo.commit(
        parents=(base_sha, head_sha) if method == "merge" else (base_sha,),
        tree=tree,
        message=message,
        author=(user.login, user.email or f"{user.login}@users.noreply.github.com"),
        when=now,
    )
    repo.refs[f"refs/heads/{pull.base_ref}"] = commit.sha
    pull.merged, pull.merged_at, pull.merged_by = True, now, user.login
    pull.merge_commit_sha, pull.head_sha = commit.sha, head_sha
    issue.state, issue.closed_at, issue.closed_by = "closed", now, user.login
    issue.updated_at = now
    body = {"sha": commit.sha, "merged": True, "message": "Pull Request successfully merged"}
    return Reply(200, body)


@OPERATIONS.add("pulls/request-reviewers")
def request_reviewers(call: Call) -> Reply:
    """Reviewers must be collaborators (teams must exist), and not the author."""
    repo = call.repo(write=True)
    issue = find_pull(call, repo)
    assert issue.pull is not None
    users = list(call.field("reviewers") or [])
    teams = list(call.field("team_reviewers") or [])
    if any(u.lower() == issue.user.lower() for u in users):
        raise ApiError(422, "Review cannot be requested from pull request author.")
    unknown = [u for u in users if call.world.user(u) is None or call.world.role(repo, u) is None]
    unknown += [t for t in teams if call.world.team(repo.owner, t) is None]
    if unknown:
        raise ApiError(
            422,
            "Reviews may only be requested from collaborators. One or more of the users or "
            f"teams you specified is not a collaborator of the {repo.full_name} repository.",
        )
    for login in users:
        name = call.world.user(login).login  # type: ignore[union-attr]
        if name not in issue.pull.requested_reviewers:
            issue.pull.requested_reviewers.append(name)
    for slug in teams:
        team = call.world.team(repo.owner, slug)
        if team is not None and team.slug not in issue.pull.requested_teams:
            issue.pull.requested_teams.append(team.slug)
    issue.updated_at = call.world.clock.tick()
    return Reply(201, call.render.pull(repo, issue, full=False))


@OPERATIONS.add("pulls/list-reviews")
def list_reviews(call: Call) -> Reply:
    """Chronological, as GitHub documents."""
    repo = call.repo()
    issue = find_pull(call, repo)
    reviews = sorted(repo.pull_reviews(issue.number), key=lambda r: (r.submitted_at, r.id))
    return call.paginate([call.render.review(repo, r) for r in reviews])


def submit_review(
    call: Call, repo: Repo, issue: Issue, login: str, state: str, body: str, commit_id: str | None
) -> Review:
    """Record a review by ``login``; the author cannot approve or request changes."""
    assert issue.pull is not None
    if login.lower() == issue.user.lower() and state in ("APPROVED", "CHANGES_REQUESTED"):
        verb = "approve" if state == "APPROVED" else "request changes on"
        raise ApiError(
            422, "Unprocessable Entity", errors=[f"Review Can not {verb} your own pull request"]
        )
    if state in ("CHANGES_REQUESTED", "COMMENTED") and not body:
        raise ApiError(422, "Unprocessable Entity", errors=["Review Body can't be blank"])
    user = call.world.user(login)
    assert user is not None
    review = Review(
        id=call.world.new_id(),
        pull_number=issue.number,
        user=user.login,
        state=state,  # type: ignore[arg-type]
        body=body,
        commit_id=commit_id or repo.head_sha(issue),
        submitted_at=call.world.clock.tick(),
    )
    repo.reviews.append(review)
    if state != "PENDING" and user.login in issue.pull.requested_reviewers:
        issue.pull.requested_reviewers.remove(user.login)
    issue.updated_at = review.submitted_at
    return review


@OPERATIONS.add("pulls/create-review")
def create_review(call: Call) -> Reply:
    repo = call.repo()
    issue = find_pull(call, repo)
    if call.field("comments"):
        raise NotModelled("review comments on lines")
    event = call.field("event")
    state = _REVIEW_STATES[event] if event else "PENDING"
    review = submit_review(
        call, repo, issue, call.user, state, call.field("body") or "", call.field("commit_id")
    )
    return Reply(200, call.render.review(repo, review))


def _find_review(call: Call, repo: Repo, issue: Issue) -> Review:
    wanted = call.number("review_id")
    for review in repo.pull_reviews(issue.number):
        if review.id == wanted:
            return review
    raise ApiError(404, "Not Found")


@OPERATIONS.add("pulls/get-review")
def get_review(call: Call) -> Reply:
    repo = call.repo()
    issue = find_pull(call, repo)
    return Reply(200, call.render.review(repo, _find_review(call, repo, issue)))


@OPERATIONS.add("pulls/dismiss-review")
def dismiss_review(call: Call) -> Reply:
    """Write access dismisses a submitted approval or change request (state DISMISSED)."""
    repo = call.repo(write=True)
    issue = find_pull(call, repo)
    review = _find_review(call, repo, issue)
    if review.state not in ("APPROVED", "CHANGES_REQUESTED"):
        raise ApiError(422, "Can not dismiss a commented or pending review")
    review.state = "DISMISSED"
    return Reply(200, call.render.review(repo, review))


def _merge_base(repo: Repo, head: str, base: str) -> str | None:
    common = repo.ancestors(head) & repo.ancestors(base)
    return max(common, key=lambda sha: repo.commits[sha].date, default=None)


def _pull_range(repo: Repo, issue: Issue) -> tuple[str | None, str]:
    assert issue.pull is not None
    head = repo.head_sha(issue)
    base_sha = repo.branch_sha(issue.pull.base_ref) or head
    if issue.pull.merged and issue.pull.merge_commit_sha:
        base_sha = repo.commits[issue.pull.merge_commit_sha].parents[0]
    return _merge_base(repo, head, base_sha), head


@OPERATIONS.add("pulls/list-files")
def list_files(call: Call) -> Reply:
    """The pull request's diff against its merge base: one entry per changed path."""
    repo = call.repo()
    issue = find_pull(call, repo)
    base, head = _pull_range(repo, issue)
    old = repo.commits[base].tree if base else {}
    new = repo.commits[head].tree
    r = f"{call.render.api}/repos/{repo.owner}/{repo.name}"
    entries = []
    for path in sorted(set(old) | set(new)):
        if old.get(path) == new.get(path):
            continue
        status = "added" if path not in old else "removed" if path not in new else "modified"
        entries.append(
            {
                "sha": new.get(path) or old[path],
                "filename": path,
                "status": status,
                "additions": 0,
                "deletions": 0,
                "changes": 0,
                "blob_url": f"{call.render.web}/{repo.full_name}/blob/{head}/{path}",
                "raw_url": f"{call.render.web}/{repo.full_name}/raw/{head}/{path}",
                "contents_url": f"{r}/contents/{path}?ref={head}",
            }
        )
    return call.paginate(entries)


@OPERATIONS.add("pulls/list-commits")
def list_pull_commits(call: Call) -> Reply:
    """The commits reachable from the head and not from the merge base, oldest first."""
    repo = call.repo()
    issue = find_pull(call, repo)
    base, head = _pull_range(repo, issue)
    shas = repo.ancestors(head) - (repo.ancestors(base) if base else set())
    ordered = sorted(shas, key=lambda sha: repo.commits[sha].date)
    return call.paginate([call.render.commit(repo, sha) for sha in ordered])
