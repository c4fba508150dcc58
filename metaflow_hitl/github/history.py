"""Replay a gate page's history into votes, Prow-style: pure rules, no API calls.

The Action never trusts one delivery: for every event it re-reads the page's reviews and
comments from the API (:mod:`metaflow_hitl.github.handler`) and replays them here, so a dropped
webhook cannot change an outcome and deliveries may arrive in any order (the model of
Kubernetes Prow's ``lgtm``/``approve`` plugins, which recount the whole history on each event).

Two steps, each a pure function over plain API items (REST JSON as GitHub returns it):

1. :func:`casts_from_page` — what each review and comment says (:class:`Cast`): approving
   reviews of the current head commit, changes-requested or dismissed reviews (they withdraw
   the author's earlier approval), and well-formed slash commands in comments. Skipped: the
   event's own review or comment (the caller adds it), bot accounts and the Action's own
   comments, and *edited* comments (the REST API cannot say who edited one, so an edit never
   speaks for anyone).
2. :func:`votes_from_casts` — which casts count as votes: approvals cast before the page last
   changed, approvals held back by ``require_merge``, approvals whose input fails the gate's
   schema, and casts by accounts the gate's rules do not allow (``eligible``) are dropped.

Sources (REST shapes relied on): reviews ``GET /repos/{o}/{r}/pulls/{n}/reviews`` (``state``
``APPROVED``/``CHANGES_REQUESTED``/``DISMISSED``/``COMMENTED``, ``commit_id``,
``submitted_at``; https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request),
comments ``GET /repos/{o}/{r}/issues/{n}/comments`` (``created_at``, ``updated_at``,
``user.type``; https://docs.github.com/rest/issues/comments#list-issue-comments).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from metaflow_hitl.input_schema import validate_input
from metaflow_hitl.policy import is_bot
from metaflow_hitl.records import Actor, Channel, Intent, Request, Vote
from metaflow_hitl.slash_commands import Command, parse_comment
from metaflow_hitl.timestamps import parse_ts

__all__ = ["Cast", "casts_from_page", "votes_from_casts"]


@dataclass(frozen=True)
class Cast:
    """One opinion found on a gate's page, before the gate's rules are applied."""

    login: str
    intent: Intent
    channel: Channel
    at: datetime
    input: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    evidence_url: str | None = None


def _ts(value: Any, default: datetime) -> datetime:
    try:
        return parse_ts(value) if value else default
    except (ValueError, TypeError):
        return default


def _login(item: Mapping[str, Any]) -> str:
    return str((item.get("user") or {}).get("login") or "")


def _review_casts(
    reviews: Iterable[Mapping[str, Any]],
    *,
    head_sha: str | None,
    skip: Any,
    now: datetime,
    schema: Mapping[str, Any] | None,
) -> list[Cast]:
    out: list[Cast] = []
    for r in reviews:
        if skip is not None and r.get("id") == skip:
            continue
        state, login = str(r.get("state") or ""), _login(r)
        at, url = _ts(r.get("submitted_at"), now), r.get("html_url")
        if state in ("CHANGES_REQUESTED", "DISMISSED"):
            out.append(Cast(login, "withdraw", "github-review", at, evidence_url=url))
        elif state == "APPROVED" and head_sha and r.get("commit_id") == head_sha:
            parsed = parse_comment(r.get("body"), schema)
            value = dict(parsed.input) if isinstance(parsed, Command) else {}
            out.append(Cast(login, "approve", "github-review", at, value, evidence_url=url))
    return out


def _comment_casts(
    comments: Iterable[Mapping[str, Any]],
    *,
    me: str | None,
    skip: Any,
    now: datetime,
    schema: Mapping[str, Any] | None,
) -> list[Cast]:
    out: list[Cast] = []
    for c in comments:
        if skip is not None and c.get("id") == skip:
            continue
        user, login = c.get("user") or {}, _login(c)
        if user.get("type") == "Bot" or (me and login.lower() == me.lower()):
            continue
        if c.get("updated_at") != c.get("created_at"):
            continue  # the REST API cannot say who edited it: an edit never speaks for anyone
        parsed = parse_comment(c.get("body"), schema)
        if isinstance(parsed, Command):
            out.append(
                Cast(
                    login,
                    parsed.intent,
                    "comment",
                    _ts(c.get("created_at"), now),
                    dict(parsed.input),
                    parsed.reason,
                    c.get("html_url"),
                )
            )
    return out


def casts_from_page(
    *,
    reviews: Iterable[Mapping[str, Any]],
    comments: Iterable[Mapping[str, Any]],
    head_sha: str | None,
    me: str | None,
    now: datetime,
    skip_review: Any = None,
    skip_comment: Any = None,
    schema: Mapping[str, Any] | None = None,
) -> list[Cast]:
    """Every opinion the page's reviews and comments state (step 1 of the module docstring).

    Parameters
    ----------
    reviews, comments
        The page's reviews (empty for an issue) and comments, as the REST API lists them.
    head_sha
        The pull request's head commit as the API reports it now: only approvals of it count.
    me
        The Action's own login (its comments are never votes).
    now
        Stands in for a missing or unreadable timestamp.
    skip_review, skip_comment
        The id of the event's own review or comment (the caller counts it itself).
    schema
        The gate's input schema, which types ``key=value`` input (grammar v3).
    """
    return _review_casts(
        reviews, head_sha=head_sha, skip=skip_review, now=now, schema=schema
    ) + _comment_casts(comments, me=me, skip=skip_comment, now=now, schema=schema)


def votes_from_casts(
    request: Request,
    casts: Iterable[Cast],
    *,
    changed_at: datetime | None,
    approvals_need_merge: bool,
    eligible: Callable[[str, Intent], bool],
) -> list[Vote]:
    """The casts that count as votes on ``request``'s gate (step 2 of the module docstring).

    Parameters
    ----------
    changed_at
        When the page last changed after it was published (approvals until then are stale).
    approvals_need_merge
        ``require_merge`` on a pull request, outside a merge: approvals wait for the merge.
    eligible
        Whether a login may cast an intent (the gate's policy with GitHub's facts); called
        only for casts that survive every other rule.
    """
    votes: list[Vote] = []
    for cast in casts:
        if not cast.login or is_bot(cast.login):
            continue
        if cast.intent == "approve":
            if changed_at is not None and cast.at <= changed_at:
                continue  # cast before the page last changed
            if approvals_need_merge:
                continue
            if validate_input(request.input_schema, cast.input):
                continue
        if not eligible(cast.login, cast.intent):
            continue
        actor = Actor(
            login=cast.login,
            channel=cast.channel,
            at=cast.at,
            evidence_url=cast.evidence_url,
            source="github",
        )
        votes.append(
            Vote(
                gate_id=request.gate_id,
                intent=cast.intent,
                actor=actor,
                input=cast.input,
                reason=cast.reason,
            )
        )
    return votes
