"""Real GitHub webhook payloads for tests, and payloads derived from them, held to GitHub's
webhook schemas.

Examples come from npm ``@octokit/webhooks-examples`` (recorded deliveries); schemas from
``@octokit/webhooks-schemas`` (JSON Schema draft 7, one definition per ``event$action``).
Neither package has an ``approved`` review, a merged pull request or a comment on a pull
request, so :func:`review_payload`, :func:`closed_payload` and :func:`comment_payload` derive
them from real examples and :func:`validate` checks the result: a derived payload that
GitHub's schema rejects fails the test that built it.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parents[2] / "node_modules" / "@octokit"
EXAMPLES_FILE = ROOT / "webhooks-examples" / "api.github.com" / "index.json"
SCHEMA_FILE = ROOT / "webhooks-schemas" / "schema.json"
SKIP_REASON = (
    "npm @octokit/webhooks-examples and @octokit/webhooks-schemas are not installed: run "
    "`npm ci` at the repository root"
)
WEB = "https://github.com"


class InvalidPayload(AssertionError):
    """A payload breaks GitHub's webhook schema."""


@functools.cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@functools.cache
def _examples() -> dict[str, list[dict[str, Any]]]:
    data = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
    return {entry["name"]: entry["examples"] for entry in data}


@functools.cache
def _validator(definition: str) -> Any:
    schema = {"$ref": f"#/definitions/{definition}", "definitions": _schema()["definitions"]}
    return jsonschema.Draft7Validator(schema)


def problems(event: str, payload: dict[str, Any]) -> list[str]:
    """Every way ``payload`` breaks the schema of ``event$<action>``."""
    definition = f"{event}${payload.get('action')}"
    if definition not in _schema()["definitions"]:
        return [f"no webhook schema {definition}"]
    errors = _validator(definition).iter_errors(payload)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors]


def validate(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Return ``payload`` if it satisfies GitHub's webhook schema, else raise."""
    found = problems(event, payload)
    if found:
        raise InvalidPayload(f"{event} payload breaks the webhook schema:\n" + "\n".join(found))
    return payload


def examples(event: str) -> list[dict[str, Any]]:
    """Every recorded example of ``event`` (deep copies), valid or not."""
    return copy.deepcopy(_examples()[event])


def example(event: str, action: str) -> dict[str, Any]:
    """A deep copy of the first recorded ``event`` example with ``action`` that is valid."""
    for payload in _examples()[event]:
        if payload.get("action") == action and not problems(event, payload):
            return copy.deepcopy(payload)
    raise LookupError(f"no valid {event}/{action} example")


def _user(base: dict[str, Any], login: str, *, bot: bool = False) -> dict[str, Any]:
    user = copy.deepcopy(base)
    user.update(
        login=login,
        id=abs(hash(login)) % 10_000_000 + 1,
        type="Bot" if bot else "User",
        html_url=f"{WEB}/{login}",
        url=f"https://api.github.com/users/{login}",
    )
    return user


def _repo(payload: dict[str, Any], full_name: str) -> None:
    owner, name = full_name.split("/")
    repo = payload["repository"]
    repo.update(full_name=full_name, name=name, html_url=f"{WEB}/{full_name}")
    repo["owner"]["login"] = owner


def _pull(payload: dict[str, Any], repo: str, pull: dict[str, Any]) -> None:
    """Copy a REST pull request's identity (number, body, head, base) into the payload's."""
    target = payload["pull_request"]
    target.update(
        number=pull["number"],
        body=pull.get("body"),
        title=pull.get("title", target.get("title")),
        html_url=pull["html_url"],
        state=pull.get("state", "open"),
    )
    target["head"].update(ref=pull["head"]["ref"], sha=pull["head"]["sha"])
    target["head"]["label"] = f"{repo.split('/')[0]}:{pull['head']['ref']}"
    if target["head"].get("repo"):
        target["head"]["repo"].update(full_name=repo, name=repo.split("/")[1])
    target["base"]["repo"].update(full_name=repo, name=repo.split("/")[1])
    if "number" in payload:
        payload["number"] = pull["number"]


def review_payload(
    repo: str,
    pull: dict[str, Any],
    review: dict[str, Any],
    *,
    state: str,
    action: str = "submitted",
) -> dict[str, Any]:
    """A ``pull_request_review`` delivery for a REST ``review`` of REST ``pull``; ``state``
    in webhook case (``approved``...)."""
    payload = example("pull_request_review", "submitted")
    payload["action"] = action
    _repo(payload, repo)
    _pull(payload, repo, pull)
    login = review["user"]["login"]
    payload["review"].update(
        id=review["id"],
        node_id=review.get("node_id", payload["review"]["node_id"]),
        body=review.get("body") or None,
        state=state,
        commit_id=review["commit_id"],
        html_url=review["html_url"],
        submitted_at=review.get("submitted_at"),
        user=_user(payload["review"]["user"], login),
    )
    payload["review"]["_links"]["html"]["href"] = review["html_url"]
    payload["sender"] = _user(payload["sender"], login)
    return validate("pull_request_review", payload)


def closed_payload(
    repo: str, pull: dict[str, Any], *, sender: str, merged: bool, bot: bool = False
) -> dict[str, Any]:
    """A ``pull_request`` ``closed`` delivery; merged by ``sender`` when ``merged``."""
    payload = example("pull_request", "closed")
    _repo(payload, repo)
    _pull(payload, repo, pull)
    payload["number"] = pull["number"]
    target = payload["pull_request"]
    target["state"] = "closed"
    target["closed_at"] = target.get("closed_at") or "2026-01-01T00:00:00Z"
    who = _user(payload["sender"], sender, bot=bot)
    payload["sender"] = who
    if merged:
        target.update(
            merged=True,
            merged_at=target["closed_at"],
            merged_by=copy.deepcopy(who),
            merge_commit_sha=pull.get("merge_commit_sha") or "0" * 40,
        )
    else:
        target.update(merged=False, merged_at=None, merged_by=None)
    return validate("pull_request", payload)


def comment_payload(
    repo: str,
    issue: dict[str, Any],
    comment: dict[str, Any],
    *,
    action: str = "created",
    bot: bool = False,
) -> dict[str, Any]:
    """An ``issue_comment`` delivery for REST ``comment`` on REST ``issue`` (a pull request's
    issue view carries ``pull_request``, which marks the delivery as a PR comment)."""
    payload = example("issue_comment", "created")
    payload["action"] = action
    _repo(payload, repo)
    target = payload["issue"]
    target.update(
        number=issue["number"],
        body=issue.get("body"),
        title=issue.get("title", target["title"]),
        html_url=issue["html_url"],
        state=issue.get("state", "open"),
    )
    if issue.get("pull_request"):
        n = issue["number"]
        target["pull_request"] = {
            "url": f"https://api.github.com/repos/{repo}/pulls/{n}",
            "html_url": f"{WEB}/{repo}/pull/{n}",
            "diff_url": f"{WEB}/{repo}/pull/{n}.diff",
            "patch_url": f"{WEB}/{repo}/pull/{n}.patch",
            "merged_at": None,
        }
    else:
        target.pop("pull_request", None)
    login = comment["user"]["login"]
    payload["comment"].update(
        id=comment["id"],
        body=comment["body"],
        html_url=comment["html_url"],
        created_at=comment["created_at"],
        updated_at=comment["updated_at"],
        user=_user(payload["comment"]["user"], login, bot=bot),
    )
    payload["sender"] = _user(payload["sender"], login, bot=bot)
    if action == "edited":
        payload["changes"] = {"body": {"from": "(earlier text)"}}
    return validate("issue_comment", payload)


def workflow_run_payload(repo: str, pull: dict[str, Any]) -> dict[str, Any]:
    """A ``workflow_run`` ``completed`` delivery whose run is attached to REST ``pull`` (what
    GitHub sends the privileged hand-off workflow after the unprivileged reviews workflow)."""
    payload = next(
        copy.deepcopy(e) for e in examples("workflow_run") if e["workflow_run"]["pull_requests"]
    )
    _repo(payload, repo)
    item = payload["workflow_run"]["pull_requests"][0]
    item.update(number=pull["number"], url=pull["url"])
    item["head"].update(ref=pull["head"]["ref"], sha=pull["head"]["sha"])
    payload["workflow_run"]["pull_requests"] = [item]
    return validate("workflow_run", payload)


def issue_edited_payload(
    repo: str, issue: dict[str, Any], *, sender: str, body_before: str | None = None
) -> dict[str, Any]:
    """An ``issues`` ``edited`` delivery for REST ``issue`` as it is after the edit, by
    ``sender``; ``changes.body.from`` holds ``body_before`` when the body changed."""
    payload = example("issues", "edited")
    _repo(payload, repo)
    payload["issue"].update(
        number=issue["number"],
        body=issue.get("body"),
        title=issue.get("title", payload["issue"]["title"]),
        html_url=issue["html_url"],
        state=issue.get("state", "open"),
    )
    payload["issue"].pop("pull_request", None)
    payload["changes"] = {} if body_before is None else {"body": {"from": body_before}}
    payload["sender"] = _user(payload["sender"], sender)
    return validate("issues", payload)


def pull_pushed_payload(repo: str, pull: dict[str, Any], *, sender: str) -> dict[str, Any]:
    """A ``pull_request`` ``synchronize`` delivery: ``sender`` pushed to REST ``pull``'s head
    branch (its head is now ``pull['head']['sha']``)."""
    payload = example("pull_request", "synchronize")
    _repo(payload, repo)
    _pull(payload, repo, pull)
    payload["before"] = payload.get("before") or "0" * 40
    payload["after"] = pull["head"]["sha"]
    payload["sender"] = _user(payload["sender"], sender)
    return validate("pull_request", payload)


def workflow_run_of(payload: dict[str, Any], event: str) -> dict[str, Any]:
    """``payload`` (from :func:`workflow_run_payload`) for a hand-off run triggered by
    ``event`` (GitHub's ``workflow_run.event``: ``pull_request``, ``pull_request_review``)."""
    payload = copy.deepcopy(payload)
    payload["workflow_run"]["event"] = event
    return validate("workflow_run", payload)
