"""GitHub webhook payloads, reduced to the few facts the Action decides on.

Pure: no network, no clients. :func:`normalize_event` takes the event name
(``GITHUB_EVENT_NAME``) and the payload (the JSON in ``GITHUB_EVENT_PATH``) and returns a
:class:`GitHubEvent`. It never raises: a payload it cannot use comes back with
``kind="other"`` and ``ignored`` saying why, so the caller logs the reason and exits 0.

Kinds:

* ``review``: ``pull_request_review`` (``submitted``/``dismissed``/``edited``); ``review_state``
  is the webhook's lower-case state (``approved``, ``changes_requested``, ``commented``,
  ``dismissed``) (which commit it reviewed is read from the API, not from the payload);
* ``closed``: ``pull_request`` ``closed``, with ``merged`` and ``merged_by``;
* ``comment``: ``issue_comment`` on an issue or a pull request (``is_pull``);
* ``changed``: ``issues`` ``edited`` and ``pull_request`` ``edited``/``synchronize`` (a page's
  title, body or commits changed), with ``body_before`` from ``changes.body.from``;
* ``other``: anything else (ignored).

Webhook payload docs:
https://docs.github.com/webhooks/webhook-events-and-payloads#pull_request_review,
https://docs.github.com/webhooks/webhook-events-and-payloads#pull_request,
https://docs.github.com/webhooks/webhook-events-and-payloads#issue_comment,
https://docs.github.com/webhooks/webhook-events-and-payloads#issues.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["EVENT_KINDS", "GitHubEvent", "normalize_event"]

EventKind = Literal["review", "closed", "comment", "changed", "other"]
EVENT_KINDS: tuple[str, ...] = ("review", "closed", "comment", "changed", "other")
#: ``pull_request`` actions that change what a page shows: its title, body or base
#: (``edited``) or its commits (``synchronize``). ``changed`` is the ``workflow_run``
#: hand-off's name for either (:mod:`metaflow_hitl.github.workflow_run`).
_PULL_CHANGES = ("edited", "synchronize", "changed")
_REVIEW_STATES = ("approved", "changes_requested", "commented", "dismissed")


@dataclass(frozen=True, kw_only=True)
class GitHubEvent:
    """One webhook delivery, normalised.

    ``ignored`` is ``None`` for an event worth looking at, else the reason it is not (the
    other fields are then best-effort). Strings are never ``None`` where GitHub always
    sends them; optional facts are ``None`` when absent.
    """

    name: str
    action: str
    kind: EventKind
    repo: str = ""
    number: int = 0
    is_pull: bool = False
    actor: str = ""
    actor_type: str = ""
    #: Who caused the delivery (the payload's ``sender``): a claim, used only to attribute
    #: an edit (an edited comment counts only when its author made the edit).
    sender: str = ""
    body: str = ""
    review_id: int | None = None
    review_state: str | None = None
    review_body: str = ""
    #: The pull request's head commit as the payload claims it: only part of
    #: :attr:`event_key` (the handler reads the head, its branch and repo from the API).
    head_sha: str | None = None
    merged: bool = False
    merged_by: str | None = None
    comment_id: int | None = None
    comment_body: str = ""
    comment_created_at: str | None = None
    comment_updated_at: str | None = None
    submitted_at: str | None = None
    evidence_url: str | None = None
    #: For ``changed`` events: the body before an edit, as the payload claims it (used only
    #: to find the gates the page was about, so that a change can stop votes, never to count
    #: one).
    body_before: str | None = None
    ignored: str | None = None

    @property
    def actor_is_bot(self) -> bool:
        """A GitHub App or bot account (``*[bot]`` login or ``type: Bot``)."""
        return self.actor_type == "Bot" or self.actor.lower().endswith("[bot]")

    @property
    def event_key(self) -> str:
        """A stable key for this event (the same on every re-delivery)."""
        if self.kind == "review":
            return f"review:{self.review_id}:{self.review_state}"
        if self.kind == "comment":
            return f"comment:{self.comment_id}"
        if self.kind == "closed":
            return f"closed:{self.number}:{'merged' if self.merged else 'unmerged'}"
        if self.kind == "changed":
            return f"changed:{self.number}:{self.head_sha or ''}"
        return f"{self.name}:{self.action}"


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _body_before(payload: Mapping[str, Any]) -> str | None:
    """``changes.body.from`` of an ``edited`` delivery: the body before the edit."""
    return _opt_str(_dict(_dict(payload.get("changes")).get("body")).get("from"))


def _other(name: str, action: str, reason: str, **facts: Any) -> GitHubEvent:
    return GitHubEvent(name=name, action=action, kind="other", ignored=reason, **facts)


def normalize_event(name: str | None, payload: Any) -> GitHubEvent:
    """Reduce a webhook delivery to a :class:`GitHubEvent` (never raises).

    Parameters
    ----------
    name
        The event name, as in ``X-GitHub-Event`` / ``GITHUB_EVENT_NAME``.
    payload
        The decoded JSON payload.
    """
    name = name.strip() if isinstance(name, str) else ""
    if not isinstance(payload, Mapping):
        return _other(name, "", f"the {name or 'event'} payload is not a JSON object")
    action = _str(payload.get("action"))
    repo = _str(_dict(payload.get("repository")).get("full_name"))
    sender = _dict(payload.get("sender"))
    base = {
        "repo": repo,
        "actor": _str(sender.get("login")),
        "actor_type": _str(sender.get("type")),
        "sender": _str(sender.get("login")),
    }
    handled = (
        "pull_request_review",
        "pull_request",
        "pull_request_target",
        "issue_comment",
        "issues",
    )
    if name not in handled:
        return _other(name, action, f"event {name or '(none)'!r} is not handled", **base)
    if not repo or "/" not in repo:
        return _other(name, action, "the payload has no repository.full_name", **base)
    if name == "issue_comment":
        return _comment(name, action, payload, base)
    if name == "issues":
        return _issue_edit(name, action, payload, base)
    pull = _dict(payload.get("pull_request"))
    number = _int(pull.get("number")) or _int(payload.get("number"))
    if number is None:
        return _other(name, action, "the payload has no pull request number", **base)
    head = _dict(pull.get("head"))
    facts: dict[str, Any] = {
        **base,
        "number": number,
        "is_pull": True,
        "body": _str(pull.get("body")),
        "head_sha": _opt_str(head.get("sha")),
    }
    if name == "pull_request_review":
        return _review(name, action, payload, facts)
    if action in _PULL_CHANGES:
        return GitHubEvent(
            name=name,
            action=action,
            kind="changed",
            body_before=_body_before(payload),
            evidence_url=_opt_str(pull.get("html_url")),
            **facts,
        )
    if action != "closed":
        return _other(name, action, f"pull_request action {action!r} is not handled", **facts)
    merged = pull.get("merged") is True
    merged_by = _opt_str(_dict(pull.get("merged_by")).get("login")) if merged else None
    if merged and merged_by is None:
        return _other(name, action, "a merged pull request without merged_by.login", **facts)
    return GitHubEvent(
        name=name,
        action=action,
        kind="closed",
        merged=merged,
        merged_by=merged_by,
        evidence_url=_opt_str(pull.get("html_url")),
        **facts,
    )


def _review(
    name: str, action: str, payload: Mapping[str, Any], facts: dict[str, Any]
) -> GitHubEvent:
    review = _dict(payload.get("review"))
    state = _str(review.get("state")).lower()
    user = _dict(review.get("user"))
    # The reviewer, not the sender: a dismissal's sender is whoever dismissed the review.
    facts = {**facts, "actor": _str(user.get("login")), "actor_type": _str(user.get("type"))}
    if action not in ("submitted", "dismissed"):
        return _other(
            name, action, f"pull_request_review action {action!r} is not handled", **facts
        )
    if state not in _REVIEW_STATES:
        return _other(name, action, f"review state {state or '(none)'!r} is not handled", **facts)
    review_id = _int(review.get("id"))
    if review_id is None or not facts["actor"]:
        return _other(name, action, "the review has no id or no user.login", **facts)
    return GitHubEvent(
        name=name,
        action=action,
        kind="review",
        review_id=review_id,
        review_state=state,
        review_body=_str(review.get("body")),
        submitted_at=_opt_str(review.get("submitted_at")),
        evidence_url=_opt_str(review.get("html_url")),
        **facts,
    )


def _comment(
    name: str, action: str, payload: Mapping[str, Any], base: dict[str, Any]
) -> GitHubEvent:
    issue = _dict(payload.get("issue"))
    comment = _dict(payload.get("comment"))
    user = _dict(comment.get("user"))
    number = _int(issue.get("number"))
    facts: dict[str, Any] = {
        **base,
        "actor": _str(user.get("login")) or base["actor"],
        "actor_type": _str(user.get("type")) or base["actor_type"],
        "number": number or 0,
        "is_pull": bool(issue.get("pull_request")),
        "body": _str(issue.get("body")),
    }
    comment_id = _int(comment.get("id"))
    if number is None or comment_id is None:
        return _other(name, action, "the payload has no issue.number or comment.id", **facts)
    return GitHubEvent(
        name=name,
        action=action,
        kind="comment",
        comment_id=comment_id,
        comment_body=_str(comment.get("body")),
        comment_created_at=_opt_str(comment.get("created_at")),
        comment_updated_at=_opt_str(comment.get("updated_at")),
        evidence_url=_opt_str(comment.get("html_url")),
        **facts,
    )


def _issue_edit(
    name: str, action: str, payload: Mapping[str, Any], base: dict[str, Any]
) -> GitHubEvent:
    """An ``issues`` delivery: only ``edited`` matters (an issue-mode page's title or body)."""
    issue = _dict(payload.get("issue"))
    number = _int(issue.get("number"))
    facts: dict[str, Any] = {
        **base,
        "number": number or 0,
        "is_pull": bool(issue.get("pull_request")),
        "body": _str(issue.get("body")),
    }
    if action != "edited":
        return _other(name, action, f"issues action {action!r} is not handled", **facts)
    if number is None:
        return _other(name, action, "the payload has no issue.number", **facts)
    return GitHubEvent(
        name=name,
        action=action,
        kind="changed",
        body_before=_body_before(payload),
        evidence_url=_opt_str(issue.get("html_url")),
        **facts,
    )
