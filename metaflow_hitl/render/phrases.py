"""Sentences several texts share, written once so they never disagree."""

from __future__ import annotations

from metaflow_hitl.records import Request

__all__ = ["after_timeout"]


def after_timeout(request: Request) -> str:
    """What happens if nobody decides ``request``'s gate in time ("if nobody decides by then,
    ..."): the approval file, the PR/issue body, reminders, notifications and the waiting
    notice all say it with these words."""
    if request.on_timeout == "approve":
        return "it is approved automatically, with each input field's default as input"
    if request.on_reject == "continue":
        return "it counts as rejected; the step continues without approval (on_reject=continue)"
    return "it counts as rejected, and the gated step fails"
