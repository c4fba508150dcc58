"""Open a gate's GitHub page the way ``metaflow_hitl.review.publish.open_review`` does, with
an explicit backend: the page, then the store's record of what was published on it."""

from __future__ import annotations

from typing import Any

from metaflow_hitl.github.page_check import publication_for
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Request
from metaflow_hitl.timestamps import utc_now


def open_published(
    backend: Any, store: ApprovalStore, request: Request, approval_file: str
) -> dict[str, str | None]:
    """``backend.open_review`` plus the :class:`~metaflow_hitl.records.Publication` record."""
    refs = backend.open_review(request, approval_file=approval_file)
    publication = publication_for(request, refs, approval_file, utc_now())
    assert publication is not None, refs
    store.create_publication(publication)
    return dict(refs)
