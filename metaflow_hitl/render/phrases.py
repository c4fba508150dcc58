"""Sentences several texts share, written once so they never disagree."""

from __future__ import annotations

from typing import Any

from metaflow_hitl.records import Request

__all__ = ["after_timeout", "run_ended_notice", "starter_line"]


def after_timeout(request: Request) -> str:
    """What happens if nobody decides ``request``'s gate in time ("if nobody decides by then,
    ..."): the approval file, the PR/issue body, reminders, notifications and the waiting
    notice all say it with these words."""
    if request.on_timeout == "approve":
        return "it is approved automatically, with each input field's default as input"
    if request.on_reject == "continue":
        return "it counts as rejected; the step continues without approval (on_reject=continue)"
    return "it counts as rejected, and the gated step fails"


def starter_line(starter: dict[str, Any]) -> str:
    """Who started the run, from a request's ``starter``: ``hitl show`` prints it."""
    kind = starter.get("kind") or "unknown"
    source = f" ({starter['source']})" if starter.get("source") else ""
    if kind in ("scheduled", "event"):
        what = "a schedule" if kind == "scheduled" else "an event"
        return f"{kind}: started by {what}, no human starter{source}"
    who = starter.get("metaflow") or "nobody known"
    github = f", GitHub {starter['github']}" if starter.get("github") else ""
    return f"{kind}: {who}{github}{source}"


def run_ended_notice(why: str, summary: str) -> str:
    """The line every front end (the CLI, ``sync``, ``sync --watch``, the Action) prints when a
    decided gate's Argo run ended before it could be resumed: not a failure, nothing to retry.
    ``why`` is the resumer's message (it names the gate and what the run came to)."""
    return (
        f"Not resumed: {why.rstrip('.')}. Its run ended, so nothing was resumed; the decision "
        f"is recorded and stands ({summary}), and there is nothing to retry."
    )
