"""Open a gate's review and publish its decision, through the backend its request names."""

from __future__ import annotations

from metaflow_hitl.records import Decision, Request
from metaflow_hitl.review.config import backend_for_request

__all__ = ["open_review", "publish_decision"]


def open_review(request: Request, approval_file: str) -> dict[str, str | None]:
    """Publish the request for review (idempotent); ``{}`` when the gate has no review repo."""
    backend = backend_for_request(request)
    if backend is None:
        return {}
    return backend.open_review(request, approval_file=approval_file)


def publish_decision(request: Request, decision: Decision) -> dict[str, str | None]:
    """Record the decision in the review repo (idempotent); ``{}`` without a review repo."""
    backend = backend_for_request(request)
    if backend is None:
        return {}
    return backend.record_decision(request, decision)
