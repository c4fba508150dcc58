"""Close the gates of Argo runs that ended before anyone decided.

A gate whose workflow was stopped, terminated, failed elsewhere (``failFast``), ran past its
``activeDeadlineSeconds``, or was deleted can never be resumed: left pending it would be
reminded about forever and shown as waiting. :func:`close_if_run_ended` looks at the
workflow through the configured resumer and, when the run ended, records a decision of its
own kind (version-1 ``decision`` record with the optional ``run_ended`` field: outcome
``rejected``, channel ``run-ended``, decided by ``argo-workflows``). The first decision wins
as always: a human decision racing it stands, and the page then says what was recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from metaflow_hitl.argo.node_state import ResumeOutcome
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Actor, Decision, Request
from metaflow_hitl.timestamps import utc_now

__all__ = ["RUN_ENDED_BY", "close_if_run_ended", "run_ended_decision"]

#: ``decided_by`` of a gate closed because its run ended.
RUN_ENDED_BY = "argo-workflows"


def run_ended_decision(
    request: Request, *, run_state: str, detail: str, now: datetime | None = None
) -> Decision:
    """The decision that closes ``request``'s gate because its run ended (``run_state``)."""
    at = now or utc_now()
    return Decision(
        gate_id=request.gate_id,
        outcome="rejected",
        proceed=False,
        decided_by=RUN_ENDED_BY,
        channel="run-ended",
        deciders=(Actor(login=RUN_ENDED_BY, channel="run-ended", at=at, source="argo"),),
        decided_at=at,
        request_digest=request.digest(),
        reason=f"the run ended before a decision: {detail}"[:1000],
        run_ended=run_state,
    )


def close_if_run_ended(
    store: ApprovalStore, request: Request, resumer: Any, *, now: datetime | None = None
) -> Decision | None:
    """Record the run-ended decision of an undecided Argo gate whose run ended.

    ``resumer`` is an Argo resumer with ``probe(request)`` (both of ours). Returns the stored
    decision if this call closed the gate (or another closer did), else None.
    """
    if request.runtime != "argo-workflows" or store.get_decision(request.gate_id) is not None:
        return None
    probe = getattr(resumer, "probe", None)
    if probe is None:  # a resumer that cannot look at runs (not ours)
        return None
    result = probe(request)
    if result is None or result.outcome not in (ResumeOutcome.RUN_ENDED, ResumeOutcome.RUN_GONE):
        return None
    decision = run_ended_decision(
        request, run_state=result.run_state or "failed", detail=result.detail, now=now
    )
    return store.create_decision(decision)
