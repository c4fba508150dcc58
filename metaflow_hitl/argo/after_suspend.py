"""What a gated step does when its suspended run continues (Argo): trust the store only.

On Argo the gated step starts after its ``hitl-suspend`` node ends, which happens for three
reasons: a decider recorded a decision and resumed the node; the suspend's ``duration`` ran
out (the gate expired); or someone pressed *Resume* in the Argo UI (anyone with ``edit`` on
workflows can). The node's phase and output cannot tell these apart safely, so the step reads
the recorded decision and nothing else:

* a decision is recorded — proceed, or stop, by it;
* none, and the gate has expired — record the expiry (``on_timeout`` applies), like the waiting
  task of a local run would;
* none, and the gate has not expired — refuse: :class:`ResumedWithoutDecision`. A small clock
  difference between the Argo controller and the pod is tolerated by waiting out the last
  ``grace`` seconds before expiry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from metaflow_hitl.errors import GateNotFound, ResumedWithoutDecision
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import expire_gate
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Decision, Request
from metaflow_hitl.timestamps import format_ts, utc_now

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "decision_after_resume",
    "recorded_request",
]

#: Seconds before expiry within which an undecided gate is waited out rather than refused:
#: the suspend's own clock (the Argo controller's) may run a little ahead of the pod's.
DEFAULT_GRACE_SECONDS = 120.0


def recorded_request(store: ApprovalStore, gate_id: GateId) -> Request:
    """The request the gate's notify task recorded.

    Raises
    ------
    GateNotFound
        No request: the gate's notify task never ran (the template was not compiled with
        metaflow-hitl, or the store is not the one the notify task wrote to).
    """
    request = store.get_request(gate_id)
    if request is None:
        raise GateNotFound(
            f"no request for gate {gate_id} in store {store.location}: the hitl-notify task of "
            "this step did not record one. Refusing to run the step without an approval.",
            hint="Deploy with `python flow.py argo-workflows create` using metaflow-hitl, and "
            "check that the notify task and this step use the same datastore root.",
        )
    return request


def decision_after_resume(
    store: ApprovalStore,
    request: Request,
    *,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    approve_hint: str = "",
) -> tuple[Decision, bool]:
    """The decision a resumed gated step must follow, and whether this call recorded it.

    Parameters
    ----------
    store
        The approval store.
    request
        The gate's stored request (:func:`recorded_request`).

    Returns
    -------
    (Decision, bool)
        The recorded decision, and True if it is an expiry found undecided by this call
        (the caller then publishes and announces it).

    Raises
    ------
    ResumedWithoutDecision
        No decision and the gate has not expired: the node was resumed by hand.
    """
    gate_id = request.gate_id
    decision = store.get_decision(gate_id)
    if decision is not None:
        return decision, False
    remaining = (request.expires_at - clock()).total_seconds()
    if 0 < remaining <= grace_seconds:
        sleep(remaining)
    expired = expire_gate(store, gate_id, now=clock(), owner=True)  # the gate's own step
    if expired is None:
        raise ResumedWithoutDecision(
            f"gate {gate_id} has no recorded decision and does not expire until "
            f"{format_ts(request.expires_at)}, yet its run was resumed (by hand, in the Argo UI "
            "or CLI?). Nothing was approved, so the step will not run.",
            hint="Decide the gate properly (the review PR, or "
            + (approve_hint or f"`hitl approve {gate_id}`")
            + "), then retry the workflow: `argo retry <workflow>`.",
        )
    # True when the expiry is what was found: this call (or a racing expirer) recorded it.
    return expired, expired.outcome == "timed_out"
