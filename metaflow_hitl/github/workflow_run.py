"""Decisions from reviews and merges, through a privileged ``workflow_run`` hand-off.

``pull_request_review`` and ``pull_request`` workflows run the workflow file of the pull
request's merge ref, so anyone who can push to a gate's branch could rewrite them: they must
hold no credentials. The example ``hitl-reviews.yml`` therefore does nothing but exist, and
``hitl-review-decide.yml`` runs on its ``workflow_run`` completion, from the default branch,
with the credentials.

From a ``workflow_run`` payload only the pull request numbers GitHub itself attached
(``workflow_run.pull_requests``) are used. Everything else is re-read from the API and turned
back into the ``pull_request`` / ``pull_request_review`` deliveries it stands for: a merged or
closed pull request becomes its ``closed`` event; an open one becomes its latest opinionated
review, or, when the hand-off's trigger was a ``pull_request`` event (``edited`` or
``synchronize``: the page changed), a ``changed`` event. The handler then recounts the whole
history anyway, so a hand-off that arrives late, twice, or for several reviews at once
decides the same thing.

See https://docs.github.com/actions/reference/events-that-trigger-workflows#workflow_run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from metaflow_hitl.github.api import PullReader

__all__ = ["HandOff", "events_from_workflow_run"]


@dataclass(frozen=True)
class HandOff:
    """What a ``workflow_run`` hand-off stands for.

    Attributes
    ----------
    events
        ``(event name, payload)`` deliveries, re-read from the API, in pull request order.
    ignored
        Why there are none (no pull request attached, nothing decision-bearing), else ``None``.
    """

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    ignored: str | None = None


def _numbers(payload: Mapping[str, Any]) -> list[int]:
    run = payload.get("workflow_run")
    pulls = run.get("pull_requests") if isinstance(run, Mapping) else None
    out = []
    for item in pulls if isinstance(pulls, list) else []:
        number = item.get("number") if isinstance(item, Mapping) else None
        if isinstance(number, int) and not isinstance(number, bool) and number > 0:
            out.append(number)
    return sorted(set(out))


def repo_of(payload: Mapping[str, Any]) -> str:
    """The repository a ``workflow_run`` delivery belongs to (``""`` if absent)."""
    repo = payload.get("repository")
    name = repo.get("full_name") if isinstance(repo, Mapping) else None
    return name if isinstance(name, str) else ""


def events_from_workflow_run(payload: Mapping[str, Any], github: PullReader) -> HandOff:
    """The deliveries a ``workflow_run`` hand-off stands for, re-read from the API.

    Returns
    -------
    HandOff
        The deliveries, or why there are none (e.g. no pull request attached, as for a fork).
    """
    numbers = _numbers(payload)
    if not numbers:
        return HandOff(
            ignored="the workflow_run names no pull request (gate pull requests are never forks)"
        )
    repository = dict(payload.get("repository") or {})
    run = payload.get("workflow_run")
    trigger = run.get("event") if isinstance(run, Mapping) else None
    events: list[tuple[str, dict[str, Any]]] = []
    for number in numbers:
        pull = github.get_pull(number)
        if pull is None:
            continue
        base = {"repository": repository, "pull_request": pull, "number": number}
        if pull.get("state") == "closed":
            if pull.get("merged"):
                sender = pull.get("merged_by") or {}
            else:
                sender = (github.get_issue(number) or {}).get("closed_by") or {}
            events.append(("pull_request", {**base, "action": "closed", "sender": sender}))
            continue
        if trigger == "pull_request":
            # The hand-off runs for pull_request `closed`, `edited` and `synchronize`; an open
            # pull request means its title, body or commits changed. Who changed it is not in
            # the hand-off: the change stops earlier votes, whoever made it.
            events.append(("pull_request", {**base, "action": "changed", "sender": {}}))
            continue
        reviews = [
            r
            for r in github.list_reviews(number)
            if str(r.get("state", "")).upper() in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")
        ]
        if not reviews:
            continue
        latest = dict(reviews[-1])  # REST lists reviews in chronological order
        state = str(latest.get("state")).lower()
        latest["state"] = state
        action = "dismissed" if state == "dismissed" else "submitted"
        sender = latest.get("user") or {}
        events.append(
            ("pull_request_review", {**base, "action": action, "review": latest, "sender": sender})
        )
    if not events:
        return HandOff(ignored="the pull request has no decision-bearing review, merge or close")
    return HandOff(events=events)
