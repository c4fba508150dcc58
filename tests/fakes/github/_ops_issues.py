"""Issues, issue comments and labels of the fake GitHub (pull requests are issues too)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._ops import ApiError, Call, NotModelled, Operations, Reply, validation_failed
from ._state import Comment, Issue, Label, Repo, iso

OPERATIONS = Operations()


def find_issue(call: Call, repo: Repo, name: str = "issue_number") -> Issue:
    issue = repo.issues.get(call.number(name))
    if issue is None:
        raise ApiError(404, "Not Found")
    return issue


def label_names(values: Iterable[Any]) -> list[str]:
    return [v["name"] if isinstance(v, dict) else str(v) for v in values]


def add_labels(call: Call, repo: Repo, issue: Issue, names: Iterable[str]) -> None:
    """Attach labels, creating missing ones as GitHub does (colour ``ededed``)."""
    for name in names:
        key = name.lower()
        if key not in repo.labels:
            repo.labels[key] = Label(call.world.new_id(), name)
        if key not in (n.lower() for n in issue.labels):
            issue.labels.append(repo.labels[key].name)


def check_assignees(call: Call, repo: Repo, logins: Iterable[str]) -> list[str]:
    accepted = []
    for login in logins:
        user = call.world.user(login)
        if user is None or call.world.role(repo, login) is None:
            raise validation_failed(
                {"value": login, "resource": "Issue", "field": "assignees", "code": "invalid"}
            )
        accepted.append(user.login)
    return accepted


def set_state(call: Call, issue: Issue, state: str, reason: str | None) -> None:
    if state == issue.state:
        return
    if issue.pull is not None and issue.pull.merged:
        raise validation_failed(
            {"resource": "PullRequest", "code": "custom", "message": "merged; cannot reopen"}
        )
    now = call.world.clock.tick()
    issue.state = state  # type: ignore[assignment]
    if state == "closed":
        issue.closed_at, issue.closed_by = now, call.user
        issue.state_reason = reason or "completed"
    else:
        issue.closed_at, issue.closed_by = None, None
        issue.state_reason = "reopened"
    issue.updated_at = now


def _has_push(call: Call, repo: Repo) -> bool:
    return call.world.role(repo, call.user) in ("write", "maintain", "admin")


@OPERATIONS.add("issues/create")
def create_issue(call: Call) -> Reply:
    """Labels and assignees are dropped silently without push access, as on GitHub."""
    repo = call.repo()
    if call.field("milestone") is not None or call.field("type") is not None:
        raise NotModelled("milestones and issue types")
    now = call.world.clock.tick()
    issue = Issue(
        id=call.world.new_id(),
        number=repo.next_number(),
        title=str(call.field("title")),
        body=call.field("body"),
        user=call.world.user(call.user).login,  # type: ignore[union-attr]
        created_at=now,
        updated_at=now,
    )
    if _has_push(call, repo):
        logins = list(call.field("assignees") or [])
        if call.field("assignee"):
            logins.append(call.field("assignee"))
        issue.assignees = check_assignees(call, repo, logins)
        add_labels(call, repo, issue, label_names(call.field("labels") or []))
    repo.issues[issue.number] = issue
    body = call.render.issue(repo, issue)
    return Reply(201, body, {"Location": body["url"]})


@OPERATIONS.add("issues/list-for-repo")
def list_issues(call: Call) -> Reply:
    """Filters: state, labels (all must match), creator, assignee; pull requests included."""
    repo = call.repo()
    if call.arg("milestone") or call.arg("mentioned") or call.arg("type"):
        raise NotModelled("filtering issues by milestone, mention or type")
    state = call.arg("state", "open")
    wanted = [n.strip().lower() for n in (call.arg("labels") or "").split(",") if n.strip()]
    creator, assignee, since = call.arg("creator"), call.arg("assignee"), call.arg("since")
    found = []
    for issue in repo.issues.values():
        have = {n.lower() for n in issue.labels}
        if state != "all" and issue.state != state:
            continue
        if not all(n in have for n in wanted):
            continue
        if creator and issue.user.lower() != creator.lower():
            continue
        if assignee == "none" and issue.assignees:
            continue
        if assignee == "*" and not issue.assignees:
            continue
        if assignee not in (None, "none", "*") and assignee.lower() not in (
            a.lower() for a in issue.assignees
        ):
            continue
        if since and (iso(issue.updated_at) or "") < since:
            continue
        found.append(issue)
    sort = call.arg("sort", "created")
    key = {
        "created": lambda i: i.created_at,
        "updated": lambda i: i.updated_at,
        "comments": lambda i: len(repo.issue_comments(i.number)),
    }[sort or "created"]
    found.sort(key=key, reverse=call.arg("direction", "desc") == "desc")
    return call.paginate([call.render.issue(repo, i) for i in found])


@OPERATIONS.add("issues/get")
def get_issue(call: Call) -> Reply:
    repo = call.repo()
    return Reply(200, call.render.issue(repo, find_issue(call, repo)))


@OPERATIONS.add("issues/update")
def update_issue(call: Call) -> Reply:
    """title, body, state (+ state_reason), labels and assignees (both replace)."""
    repo = call.repo(write=True)
    issue = find_issue(call, repo)
    if call.field("milestone") is not None or call.field("type") is not None:
        raise NotModelled("milestones and issue types")
    if call.field("title") is not None:
        issue.title = str(call.field("title"))
    if isinstance(call.body, dict) and "body" in call.body:
        issue.body = call.body["body"]
    if call.field("state") is not None:
        set_state(call, issue, call.field("state"), call.field("state_reason"))
    if call.field("labels") is not None:
        issue.labels = []
        add_labels(call, repo, issue, label_names(call.field("labels")))
    if call.field("assignees") is not None:
        issue.assignees = check_assignees(call, repo, call.field("assignees"))
    issue.updated_at = call.world.clock.tick()
    return Reply(200, call.render.issue(repo, issue))


@OPERATIONS.add("issues/create-comment")
def create_comment(call: Call) -> Reply:
    repo = call.repo()
    issue = find_issue(call, repo)
    comment = post_comment(call, repo, issue, call.user, call.field("body"))
    body = call.render.comment(repo, comment)
    return Reply(201, body, {"Location": body["url"]})


def post_comment(call: Call, repo: Repo, issue: Issue, login: str, text: str) -> Comment:
    now = call.world.clock.tick()
    comment = Comment(call.world.new_id(), issue.number, login, text, now, now)
    repo.comments.append(comment)
    issue.updated_at = now
    return comment


@OPERATIONS.add("issues/list-comments")
def list_comments(call: Call) -> Reply:
    """Oldest first, as on GitHub."""
    repo = call.repo()
    issue = find_issue(call, repo)
    since = call.arg("since")
    comments = [
        call.render.comment(repo, c)
        for c in repo.issue_comments(issue.number)
        if not since or (iso(c.updated_at) or "") >= since
    ]
    return call.paginate(comments)


@OPERATIONS.add("issues/add-labels")
def add_issue_labels(call: Call) -> Reply:
    """Body ``{"labels": [...]}`` or a bare array; answers with all the issue's labels."""
    repo = call.repo(write=True)
    issue = find_issue(call, repo)
    values = call.body if isinstance(call.body, list) else call.field("labels") or []
    if any(isinstance(v, dict) and v.get("suggest") for v in values):
        raise NotModelled("label suggestions")
    add_labels(call, repo, issue, label_names(values))
    issue.updated_at = call.world.clock.tick()
    return Reply(200, [call.render.label(repo, repo.labels[n.lower()]) for n in issue.labels])


def _find_comment(call: Call, repo: Repo) -> Comment:
    wanted = call.number("comment_id")
    for comment in repo.comments:
        if comment.id == wanted:
            return comment
    raise ApiError(404, "Not Found")


@OPERATIONS.add("issues/get-comment")
def get_comment(call: Call) -> Reply:
    repo = call.repo()
    return Reply(200, call.render.comment(repo, _find_comment(call, repo)))


@OPERATIONS.add("issues/update-comment")
def update_comment(call: Call) -> Reply:
    """Its author, or anyone with write access, may edit a comment (as on GitHub: that is
    why an edited comment cannot be attributed to its author)."""
    repo = call.repo()
    comment = _find_comment(call, repo)
    if comment.user.lower() != call.user.lower():
        repo = call.repo(write=True)
    comment.body = call.field("body")
    comment.updated_at = call.world.clock.tick()
    return Reply(200, call.render.comment(repo, comment))


@OPERATIONS.add("issues/delete-comment")
def delete_comment(call: Call) -> Reply:
    repo = call.repo()
    comment = _find_comment(call, repo)
    if comment.user.lower() != call.user.lower():
        repo = call.repo(write=True)
    repo.comments.remove(comment)
    return Reply(204, None)
