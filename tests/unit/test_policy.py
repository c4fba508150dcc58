"""Who may decide (check_decider), and when votes add up to a decision (tally)."""

# ruff: noqa: E501 -- case tables keep one case per line (# fmt: skip), Atlantis style

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from metaflow_hitl.policy import (
    PERMISSION_LEVELS,
    check_decider,
    has_permission,
    is_bot,
    normalize_login,
    tally,
)
from metaflow_hitl.records import Intent, Vote
from tests.support.builders import GATE, STARTER, T0, actor, build_request

# -- check_decider ----------------------------------------------------------------------------

OPEN: dict[str, Any] = {}  # anyone may decide
LISTED = {"approvers": ["Alice", "@Bob"]}
TEAM = {"approvers": ["alice", "@acme/ML-Leads"]}
SELF_OK = {"allow_self_approval": True}

ALLOWED = [
    pytest.param(OPEN, "alice", "approve", {}, id="open-gate-anyone-approves"),
    pytest.param(OPEN, "alice", "reject", {}, id="open-gate-anyone-rejects"),
    pytest.param(OPEN, STARTER, "reject", {}, id="starter-may-reject-own-run"),
    pytest.param(OPEN, STARTER, "withdraw", {}, id="starter-may-withdraw"),
    pytest.param(SELF_OK, STARTER, "approve", {}, id="self-approval-when-allowed"),
    pytest.param(LISTED, "alice", "approve", {}, id="listed-login-lowercase"),
    pytest.param(LISTED, "ALICE", "approve", {}, id="listed-login-uppercase"),
    pytest.param(LISTED, "@alice", "approve", {}, id="at-prefixed-login"),
    pytest.param(LISTED, "bob", "approve", {}, id="at-prefixed-entry"),
    pytest.param(LISTED, "BoB", "reject", {}, id="listed-login-rejects"),
    pytest.param(LISTED, STARTER, "reject", {}, id="unlisted-starter-may-still-reject"),
    pytest.param(LISTED, "mallory", "withdraw", {}, id="withdraw-needs-no-listing"),
    pytest.param(TEAM, "carol", "approve", {"teams": ["acme/ml-leads"]}, id="team-member"),
    pytest.param(TEAM, "carol", "approve", {"teams": ["@ACME/ml-leads"]}, id="team-case-and-at"),
    pytest.param(TEAM, "carol", "approve", {"teams": ["x/y", "acme/ml-leads"]}, id="one-team-of-several"),
    pytest.param(TEAM, "alice", "approve", {"teams": None}, id="listed-login-beside-team"),
    pytest.param(OPEN, "alice", "approve", {"require_permission": True, "permission": "write"}, id="write"),
    pytest.param(OPEN, "alice", "approve", {"require_permission": True, "permission": "maintain"}, id="maintain"),
    pytest.param(OPEN, "alice", "approve", {"require_permission": True, "permission": "admin"}, id="admin"),
    pytest.param(OPEN, "alice", "approve", {"permission": "read"}, id="permission-ignored-unless-required"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "login", "intent", "facts"), ALLOWED)
def test_allowed(options: dict, login: str, intent: Intent, facts: dict) -> None:
    assert check_decider(build_request(**options), login, intent, **facts) is None


REFUSED = [
    pytest.param(OPEN, "dependabot[bot]", "approve", {}, "bot", id="bot-approves"),
    pytest.param(OPEN, "Renovate[BOT]", "reject", {}, "bot", id="bot-rejects-any-case"),
    pytest.param(SELF_OK, "github-actions[bot]", "approve", {}, "bot", id="bot-even-with-self-approval"),
    pytest.param(OPEN, "", "approve", {}, "no identity", id="empty-login"),
    pytest.param(OPEN, "  @ ", "approve", {}, "no identity", id="blank-login"),
    pytest.param(OPEN, STARTER, "approve", {}, "allow_self_approval", id="self-approval"),
    pytest.param(OPEN, "STARTER", "approve", {}, "allow_self_approval", id="self-approval-other-case"),
    pytest.param(OPEN, "@starter", "approve", {}, "allow_self_approval", id="self-approval-at-prefix"),
    pytest.param(LISTED, STARTER, "approve", {}, "allow_self_approval", id="self-approval-unlisted"),
    pytest.param(LISTED, "mallory", "approve", {}, "not one of the approvers", id="unlisted-approves"),
    pytest.param(LISTED, "mallory", "reject", {}, "not one of the approvers", id="unlisted-rejects"),
    pytest.param(LISTED, "alice2", "approve", {}, "not one of the approvers", id="login-prefix-match"),
    pytest.param(LISTED, "\u0430lice", "approve", {}, "not one of the approvers", id="cyrillic-lookalike"),
    pytest.param(TEAM, "carol", "approve", {"teams": None}, "GitHub", id="team-unverifiable"),
    pytest.param(TEAM, "carol", "approve", {"teams": []}, "not one of the approvers", id="team-not-member"),
    pytest.param(TEAM, "carol", "approve", {"teams": ["acme/ml"]}, "not one of the approvers", id="other-team"),
    pytest.param(TEAM, "carol", "approve", {"teams": ["acme"]}, "not one of the approvers", id="org-is-not-team"),
    pytest.param(TEAM, "acme/ml-leads", "approve", {"teams": None}, "GitHub", id="team-name-as-login"),
    pytest.param(OPEN, "alice", "approve", {"require_permission": True, "permission": None}, "no permission", id="permission-missing"),
    pytest.param(OPEN, "alice", "approve", {"require_permission": True, "permission": "none"}, "no permission on", id="permission-none"),
    pytest.param(OPEN, "alice", "approve", {"require_permission": True, "permission": "read"}, "read permission", id="permission-read"),
    pytest.param(OPEN, "alice", "approve", {"require_permission": True, "permission": "triage"}, "triage permission", id="permission-triage"),
    pytest.param(OPEN, "alice", "approve", {"require_permission": True, "permission": "Write"}, "Write permission", id="permission-wrong-case"),
    pytest.param(OPEN, "alice", "approve", {"require_permission": True, "permission": "owner"}, "owner permission", id="permission-unknown"),
    pytest.param(OPEN, "alice", "withdraw", {"require_permission": True, "permission": "read"}, "needs write", id="withdraw-needs-permission"),
    pytest.param(OPEN, STARTER, "reject", {"require_permission": True, "permission": "read"}, "needs write", id="starter-reject-needs-permission"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "login", "intent", "facts", "needle"), REFUSED)
def test_refused(options: dict, login: str, intent: Intent, facts: dict, needle: str) -> None:
    refusal = check_decider(build_request(**options), login, intent, **facts)
    assert refusal is not None
    assert needle in refusal.reason + " " + refusal.hint
    assert refusal.hint  # every refusal says how to change the outcome


def test_unlisted_refusal_names_who_may_decide() -> None:
    refusal = check_decider(build_request(**LISTED), "mallory", "approve")
    assert refusal is not None
    assert "Alice, @Bob" in refusal.hint


def test_unverifiable_team_points_to_github_in_the_hint() -> None:
    refusal = check_decider(build_request(**TEAM), "carol", "approve", teams=None)
    assert refusal is not None
    assert "GitHub" in refusal.hint
    assert "team membership" in refusal.reason


@pytest.mark.parametrize(
    ("level", "ok"),
    [(level, level in {"write", "maintain", "admin"}) for level in PERMISSION_LEVELS]
    + [(None, False), ("", False), ("WRITE", False), ("superuser", False)],
    ids=[*PERMISSION_LEVELS, "missing", "empty", "upper-case", "unknown"],
)
def test_has_permission_fails_closed(level: str | None, ok: bool) -> None:
    assert has_permission(level) is ok


@pytest.mark.parametrize(
    ("login", "bot"),
    [
        ("dependabot[bot]", True),
        (" Renovate[BOT] ", True),
        ("bot", False),
        ("robot-alice", False),
        ("[bot]alice", False),
    ],
    ids=["bot-suffix", "bot-suffix-padded", "named-bot", "bot-in-name", "bot-prefix"],
)
def test_is_bot(login: str, bot: bool) -> None:
    assert is_bot(login) is bot


def test_normalize_login() -> None:
    assert normalize_login("  @Acme/ML-Leads ") == "acme/ml-leads"


# -- tally ------------------------------------------------------------------------------------


def vote(login: str, intent: Intent, second: int) -> Vote:
    return Vote(
        gate_id=GATE,
        intent=intent,
        actor=actor(login, T0 + timedelta(seconds=second)),
        reason=f"{login}-{intent}-{second}",
    )


def logins(votes: tuple[Vote, ...]) -> list[str]:
    return [v.actor.login for v in votes]


TALLIES = [
    pytest.param(1, [], None, [], id="no-votes-pending"),
    pytest.param(1, [("alice", "approve")], "approved", ["alice"], id="one-approval-quorum-1"),
    pytest.param(2, [("alice", "approve")], None, ["alice"], id="one-approval-quorum-2"),
    pytest.param(2, [("alice", "approve"), ("bob", "approve")], "approved", ["alice", "bob"], id="two-people-quorum-2"),
    pytest.param(2, [("alice", "approve"), ("alice", "approve")], None, ["alice"], id="same-person-twice-counts-once"),
    pytest.param(2, [("alice", "approve"), ("ALICE", "approve")], None, ["ALICE"], id="same-person-other-case-counts-once"),
    pytest.param(2, [("alice", "approve"), ("alice", "withdraw"), ("bob", "approve")], None, ["bob"], id="withdraw-removes-approval"),
    pytest.param(2, [("alice", "approve"), ("alice", "withdraw"), ("alice", "approve"), ("bob", "approve")], "approved", ["alice", "bob"], id="re-approve-after-withdraw"),
    pytest.param(2, [("alice", "withdraw")], None, [], id="withdraw-without-approval"),
    pytest.param(2, [("alice", "approve"), ("bob", "reject")], "rejected", ["alice"], id="one-reject-rejects"),
    pytest.param(3, [("alice", "approve"), ("bob", "approve"), ("carol", "reject")], "rejected", ["alice", "bob"], id="reject-beats-partial-quorum"),
    pytest.param(2, [("alice", "approve"), ("alice", "reject")], "rejected", [], id="approval-turned-into-rejection"),
    pytest.param(1, [("alice", "approve"), ("bob", "reject")], "approved", ["alice"], id="replay-stops-at-first-settling-approval"),
    pytest.param(1, [("bob", "reject"), ("alice", "approve")], "rejected", [], id="replay-stops-at-first-settling-rejection"),
    pytest.param(2, [("alice", "approve"), ("bob", "approve"), ("alice", "withdraw")], "approved", ["alice", "bob"], id="withdraw-after-settling-ignored"),
]  # fmt: skip


@pytest.mark.parametrize(("quorum", "history", "outcome", "approvers"), TALLIES)
def test_tally(
    quorum: int, history: list[tuple[str, Intent]], outcome: str | None, approvers: list[str]
) -> None:
    request = build_request(min_approvals=quorum)
    votes = [vote(login, intent, i) for i, (login, intent) in enumerate(history)]
    result = tally(request, votes)
    assert result.outcome == outcome
    assert logins(result.approvals) == approvers
    assert result.needed == quorum
    assert result.missing == (0 if outcome == "approved" else max(0, quorum - len(approvers)))


@pytest.mark.parametrize(("quorum", "history", "outcome", "approvers"), TALLIES)
def test_tally_replays_in_time_order_not_list_order(
    quorum: int, history: list[tuple[str, Intent]], outcome: str | None, approvers: list[str]
) -> None:
    request = build_request(min_approvals=quorum)
    votes = [vote(login, intent, i) for i, (login, intent) in enumerate(history)]
    assert tally(request, reversed(votes)) == tally(request, votes)


def test_rejection_is_the_settling_vote() -> None:
    votes = [vote("alice", "approve", 0), vote("bob", "reject", 1), vote("carol", "reject", 2)]
    result = tally(build_request(min_approvals=2), votes)
    assert result.rejection is votes[1]


def test_latest_intent_of_each_person_is_kept() -> None:
    votes = [vote("alice", "approve", 0), vote("alice", "approve", 1)]
    result = tally(build_request(min_approvals=2), votes)
    assert result.approvals == (votes[1],)
