"""The Prow-style replay of a gate page (metaflow_hitl.github.history), table-tested without
HTTP. Item shapes are GitHub's REST responses: reviews
(https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request: ``state`` in
upper case, ``commit_id``, ``submitted_at``) and issue comments
(https://docs.github.com/rest/issues/comments#list-issue-comments: ``created_at``,
``updated_at``, ``user.type``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from metaflow_hitl.github.history import Cast, casts_from_page, votes_from_casts
from metaflow_hitl.timestamps import format_ts
from tests.support.builders import T0, build_request

HEAD = "a" * 40
OLD = "b" * 40


def review(rid: int, login: str, state: str, *, commit: str = HEAD, body: str = "") -> dict:
    return {
        "id": rid,
        "user": {"login": login, "type": "User"},
        "state": state,
        "commit_id": commit,
        "body": body,
        "submitted_at": format_ts(T0 + timedelta(minutes=rid)),
        "html_url": f"https://github.com/o/r/pull/1#pullrequestreview-{rid}",
    }


def comment(cid: int, login: str, body: str, *, edited: bool = False, bot: bool = False) -> dict:
    created = format_ts(T0 + timedelta(minutes=cid))
    return {
        "id": cid,
        "user": {"login": login, "type": "Bot" if bot else "User"},
        "body": body,
        "created_at": created,
        "updated_at": format_ts(T0 + timedelta(minutes=cid, seconds=5)) if edited else created,
        "html_url": f"https://github.com/o/r/pull/1#issuecomment-{cid}",
    }


CASTS: list[tuple[str, dict[str, Any], list[tuple[str, str, str]]]] = [
    (
        "approval of the head",
        {"reviews": [review(1, "bob", "APPROVED")]},
        [("bob", "approve", "github-review")],
    ),
    ("approval of an older commit", {"reviews": [review(1, "bob", "APPROVED", commit=OLD)]}, []),
    (
        "changes requested withdraws",
        {"reviews": [review(1, "bob", "CHANGES_REQUESTED")]},
        [("bob", "withdraw", "github-review")],
    ),
    (
        "dismissed withdraws",
        {"reviews": [review(1, "bob", "DISMISSED")]},
        [("bob", "withdraw", "github-review")],
    ),
    ("a plain comment review says nothing", {"reviews": [review(1, "bob", "COMMENTED")]}, []),
    (
        "the event's own review is skipped",
        {"reviews": [review(1, "bob", "APPROVED")], "skip_review": 1},
        [],
    ),
    (
        "a slash command",
        {"comments": [comment(1, "carol", "/reject too risky")]},
        [("carol", "reject", "comment")],
    ),
    (
        "an edited comment never speaks",
        {"comments": [comment(1, "carol", "/approve", edited=True)]},
        [],
    ),
    ("a bot account's comment", {"comments": [comment(1, "ci[bot]", "/approve", bot=True)]}, []),
    (
        "the Action's own comment",
        {"comments": [comment(1, "hitl-app", "/approve")], "me": "HITL-app"},
        [],
    ),
    ("prose is not a command", {"comments": [comment(1, "carol", "looks fine to me")]}, []),
    (
        "the event's own comment is skipped",
        {"comments": [comment(7, "carol", "/approve")], "skip_comment": 7},
        [],
    ),
    (
        "no head commit known: no approval counts",
        {"reviews": [review(1, "bob", "APPROVED")], "head_sha": None},
        [],
    ),
]


@pytest.mark.parametrize(("case", "page", "expected"), CASTS, ids=[c[0] for c in CASTS])
def test_casts_from_page(
    case: str, page: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    options = {"reviews": [], "comments": [], "head_sha": HEAD, "me": None, "now": T0, **page}
    casts = casts_from_page(**options)
    assert [(c.login, c.intent, c.channel) for c in casts] == expected


def test_a_review_body_carries_approval_input() -> None:
    casts = casts_from_page(
        reviews=[review(1, "bob", "APPROVED", body='/approve {"deploy_target": "prod"}')],
        comments=[],
        head_sha=HEAD,
        me=None,
        now=T0,
    )
    assert casts[0].input == {"deploy_target": "prod"}


SCHEMA = {
    "type": "object",
    "properties": {"deploy_target": {"type": "string"}},
    "required": ["deploy_target"],
}
GOOD = {"deploy_target": "prod"}
AT = T0 + timedelta(minutes=30)


def cast(login: str = "bob", intent: str = "approve", **kw: Any) -> Cast:
    return Cast(login=login, intent=intent, channel="comment", at=kw.pop("at", AT), **kw)  # type: ignore[arg-type]


VOTES: list[tuple[str, Cast, dict[str, Any], bool]] = [
    ("an eligible approval with valid input", cast(input=GOOD), {}, True),
    ("input failing the schema", cast(input={"deploy_target": 3}), {}, False),
    ("missing required input", cast(input={}), {}, False),
    ("approval before the page changed", cast(input=GOOD), {"changed_at": AT}, False),
    (
        "approval after the page changed",
        cast(input=GOOD),
        {"changed_at": AT - timedelta(seconds=1)},
        True,
    ),
    (
        "a rejection before the page changed still counts",
        cast(intent="reject"),
        {"changed_at": AT},
        True,
    ),
    ("approval held for the merge", cast(input=GOOD), {"approvals_need_merge": True}, False),
    (
        "a withdrawal is not held for the merge",
        cast(intent="withdraw"),
        {"approvals_need_merge": True},
        True,
    ),
    ("an ineligible account", cast(login="mallory", input=GOOD), {}, False),
    ("a bot login", cast(login="ci[bot]", input=GOOD), {}, False),
    ("no login", cast(login="", input=GOOD), {}, False),
]


@pytest.mark.parametrize(("case", "c", "rules", "counts"), VOTES, ids=[v[0] for v in VOTES])
def test_votes_from_casts(case: str, c: Cast, rules: dict[str, Any], counts: bool) -> None:
    request = build_request(input_schema=SCHEMA)
    asked: list[str] = []

    def eligible(login: str, intent: str) -> bool:
        asked.append(login)
        return login != "mallory"

    options = {"changed_at": None, "approvals_need_merge": False, **rules}
    votes = votes_from_casts(request, [c], eligible=eligible, **options)
    assert bool(votes) is counts
    if votes:
        assert votes[0].actor.source == "github"
        assert votes[0].actor.login == c.login
        assert votes[0].gate_id == request.gate_id


def test_eligibility_is_asked_last_and_only_for_survivors() -> None:
    """Each eligibility check can cost API calls (permission, team membership)."""
    request = build_request(input_schema=SCHEMA)
    asked: list[str] = []

    def eligible(login: str, intent: str) -> bool:
        asked.append(login)
        return True

    votes_from_casts(
        request,
        [cast(login="a", input={}), cast(login="b", input=GOOD), cast(login="ci[bot]")],
        changed_at=None,
        approvals_need_merge=False,
        eligible=eligible,
    )
    assert asked == ["b"]
