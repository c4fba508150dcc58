"""normalize_event: real webhook examples (npm @octokit/webhooks-examples), payloads derived
from them (validated against @octokit/webhooks-schemas), and hostile payloads that must come
back ignored with a reason, never raise."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from metaflow_hitl.github.events import normalize_event
from tests.fakes import webhooks

needs_npm = pytest.mark.skipif(
    not webhooks.EXAMPLES_FILE.is_file() or not webhooks.SCHEMA_FILE.is_file(),
    reason=webhooks.SKIP_REASON,
)

REPO = "acme/approvals"
PULL = {
    "number": 7,
    "body": "gate body",
    "title": "Gate",
    "html_url": f"https://github.com/{REPO}/pull/7",
    "state": "open",
    "head": {"ref": "hitl/F/1/s", "sha": "a" * 40},
}


def _review(state: str = "approved") -> dict[str, Any]:
    review = {
        "id": 99,
        "user": {"login": "alice"},
        "body": '/approve {"x": 1}',
        "commit_id": "a" * 40,
        "html_url": f"https://github.com/{REPO}/pull/7#pullrequestreview-99",
        "submitted_at": "2026-01-01T00:00:00Z",
    }
    return webhooks.review_payload(REPO, PULL, review, state=state)


def _comment(pull: bool = True, action: str = "created") -> dict[str, Any]:
    issue = {**PULL, "pull_request": {"url": "x"} if pull else None}
    comment = {
        "id": 5,
        "user": {"login": "bob"},
        "body": "/approve",
        "html_url": f"https://github.com/{REPO}/pull/7#issuecomment-5",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    return webhooks.comment_payload(REPO, issue, comment, action=action)


@needs_npm
@pytest.mark.parametrize("event", ["issue_comment", "pull_request", "pull_request_review"])
def test_every_recorded_example_normalises_without_raising(event: str) -> None:
    for payload in webhooks.examples(event):
        result = normalize_event(event, payload)
        assert result.name == event
        assert result.repo == payload["repository"]["full_name"]
        if result.ignored is None:
            assert result.kind in ("review", "comment", "closed", "changed")
            assert result.number > 0


@needs_npm
def test_derived_approved_review() -> None:
    event = normalize_event("pull_request_review", _review())
    assert event.ignored is None
    assert (event.kind, event.review_state, event.actor) == ("review", "approved", "alice")
    assert event.head_sha == "a" * 40  # the payload's claim: only part of the event key
    assert not hasattr(event, "head_ref")  # read from the API, never from the payload
    assert event.evidence_url
    assert event.evidence_url.endswith("pullrequestreview-99")
    assert event.event_key == "review:99:approved"


@needs_npm
def test_derived_merged_pull_request() -> None:
    payload = webhooks.closed_payload(REPO, PULL, sender="bob", merged=True)
    event = normalize_event("pull_request", payload)
    assert (event.kind, event.merged, event.merged_by, event.number) == ("closed", True, "bob", 7)


@needs_npm
def test_derived_closed_unmerged_pull_request() -> None:
    payload = webhooks.closed_payload(REPO, PULL, sender="carol", merged=False)
    event = normalize_event("pull_request", payload)
    assert (event.kind, event.merged, event.merged_by, event.actor) == (
        "closed",
        False,
        None,
        "carol",
    )


@needs_npm
@pytest.mark.parametrize("pull", [True, False], ids=["on-pr", "on-issue"])
def test_derived_comment(pull: bool) -> None:
    event = normalize_event("issue_comment", _comment(pull))
    assert (event.kind, event.is_pull, event.actor, event.comment_id) == ("comment", pull, "bob", 5)
    assert event.comment_body == "/approve"


@needs_npm
def test_an_invalid_derived_payload_fails_the_schema_check() -> None:
    payload = _review()
    payload["review"]["state"] = "APPROVED"  # REST casing: webhooks use lower case
    with pytest.raises(webhooks.InvalidPayload, match="review/state"):
        webhooks.validate("pull_request_review", payload)
    broken = _comment()
    del broken["comment"]["user"]
    with pytest.raises(webhooks.InvalidPayload):
        webhooks.validate("issue_comment", broken)


@needs_npm
def test_bot_comment_is_flagged() -> None:
    payload = _comment()
    payload["comment"]["user"]["type"] = "Bot"
    assert normalize_event("issue_comment", payload).actor_is_bot


def _mutations() -> list[Any]:
    cases: list[Any] = [
        pytest.param("issue_comment", None, id="null-payload"),
        pytest.param("issue_comment", [], id="list-payload"),
        pytest.param("issue_comment", {"action": "created"}, id="no-repository"),
        pytest.param("push", {"repository": {"full_name": REPO}}, id="unhandled-event"),
        pytest.param("", {}, id="no-event-name"),
        pytest.param(None, {}, id="none-event-name"),
        pytest.param(
            "issue_comment",
            {"repository": {"full_name": REPO}, "issue": {"number": "7"}, "comment": {"id": 1}},
            id="number-as-string",
        ),
        pytest.param(
            "issue_comment",
            {"repository": {"full_name": REPO}, "issue": {"number": True}, "comment": {"id": 1}},
            id="number-as-bool",
        ),
        pytest.param(
            "pull_request",
            {"action": "closed", "repository": {"full_name": REPO}, "pull_request": "x"},
            id="pull-request-not-object",
        ),
        pytest.param(
            "pull_request",
            {
                "action": "closed",
                "repository": {"full_name": REPO},
                "pull_request": {"number": 1, "merged": True, "merged_by": None},
            },
            id="merged-without-merger",
        ),
        pytest.param(
            "pull_request_review",
            {
                "action": "submitted",
                "repository": {"full_name": REPO},
                "pull_request": {"number": 1},
                "review": {"id": 1, "state": "APPROVED!", "user": {"login": "a"}},
            },
            id="unknown-review-state",
        ),
        pytest.param(
            "pull_request_review",
            {
                "action": "edited",
                "repository": {"full_name": REPO},
                "pull_request": {"number": 1},
                "review": {"id": 1, "state": "approved", "user": {"login": "a"}},
            },
            id="review-edited",
        ),
        pytest.param(
            "pull_request",
            {"action": "opened", "repository": {"full_name": REPO}, "pull_request": {"number": 1}},
            id="pull-request-opened",
        ),
    ]
    return cases


@pytest.mark.parametrize(("name", "payload"), _mutations())
def test_odd_payloads_are_ignored_with_a_reason(name: Any, payload: Any) -> None:
    event = normalize_event(name, copy.deepcopy(payload))
    assert event.kind == "other"
    assert event.ignored
