"""Open a gate's review and publish its decision, through the backend its request names."""

from __future__ import annotations

from metaflow_hitl.errors import RunEnded
from metaflow_hitl.github.page_check import publication_for
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Decision, Request
from metaflow_hitl.review.config import backend_for_request
from metaflow_hitl.timestamps import utc_now

__all__ = ["announce_run_ended", "open_review", "publish_decision"]


def open_review(
    request: Request, approval_file: str, *, store: ApprovalStore
) -> dict[str, str | None]:
    """Publish the request for review (idempotent); ``{}`` when the gate has no review repo.

    A GitHub page is recorded in ``store`` as it was published
    (:func:`metaflow_hitl.github.page_check.publication_for`): the Action counts votes only on a
    page that still matches that record. The first record stands, so a retried notify task
    never re-records a page someone changed in between.
    """
    backend = backend_for_request(request)
    if backend is None:
        return {}
    refs = backend.open_review(request, approval_file=approval_file)
    publication = publication_for(request, refs, approval_file, utc_now())
    if publication is not None and store.get_publication(request.gate_id) is None:
        store.create_publication(publication)
    return refs


def publish_decision(
    request: Request, decision: Decision, *, store: ApprovalStore
) -> dict[str, str | None]:
    """Record the decision in the review repo (idempotent); ``{}`` without a review repo.

    A GitHub pull request is merged only while it matches what ``store`` records as published
    for the gate (else it is closed, with a reply naming the change).
    """
    backend = backend_for_request(request)
    if backend is None:
        return {}
    return backend.record_decision(
        request, decision, publication=store.get_publication(request.gate_id)
    )


def announce_run_ended(
    request: Request, decision: Decision, ended: RunEnded
) -> dict[str, str | None]:
    """Tell the gate's page that its run ended before it was resumed (idempotent: one comment
    per gate); ``{}`` when the gate has no page (no review repo, a git repo, or no pull
    request or issue)."""
    backend = backend_for_request(request)
    post = getattr(backend, "post_run_ended", None)
    if post is None:
        return {}
    return post(request, decision, ended.message) or {}
