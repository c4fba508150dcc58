"""The resume procedure both resumers share: read, assess, wait a bounded time, write once.

A decision can be recorded before the gate's suspend node exists: the notify pod records the
request and opens the review, then still has to exit, and the controller creates the suspend
node on a later pass. Failing then ("no suspend node yet") left the run waiting for the gate's
timeout. So while :func:`metaflow_hitl.argo.node_state.assess` says ``wait``, the workflow is
read again (0.5 s, doubling to 5 s apart) for at most ``METAFLOW_HITL_ARGO_NODE_WAIT`` seconds
(default 60); what is still not there is left to ``metaflow-hitl sync --watch`` (the in-cluster
resumer), with a clear error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metaflow_hitl.argo.node_state import ResumeOutcome, assess
from metaflow_hitl.durations import seconds_setting
from metaflow_hitl.errors import RunEnded, StoreError
from metaflow_hitl.records import Request

__all__ = [
    "NODE_WAIT_SECONDS",
    "ResumeResult",
    "drive_resume",
    "node_wait_seconds",
    "probe_run",
    "raise_if_ended",
]

#: Default bound on waiting for a gate's suspend node (``METAFLOW_HITL_ARGO_NODE_WAIT``).
NODE_WAIT_SECONDS = 60.0
_SYNC_HINT = "Retry later with: metaflow-hitl sync (or run the in-cluster resumer, sync --watch)"

#: ``read(ns, name, where)``: the Workflow and its inflated nodes, or None if it is gone.
Reader = Callable[[str, str, str], "tuple[dict[str, Any], dict[str, Any]] | None"]
#: ``write(ns, name, where, wf, nodes, node_id)``: True if written, False to read again.
Writer = Callable[[str, str, str, dict[str, Any], dict[str, Any], str], bool]


@dataclass(frozen=True)
class ResumeResult:
    """What resuming one gate came to, and why (for people and logs)."""

    outcome: ResumeOutcome
    detail: str = ""
    run_state: str | None = None


def node_wait_seconds() -> float:
    """``METAFLOW_HITL_ARGO_NODE_WAIT`` (seconds to wait for a suspend node), else 60."""
    return seconds_setting("METAFLOW_HITL_ARGO_NODE_WAIT", NODE_WAIT_SECONDS)


def drive_resume(
    request: Request,
    target: tuple[str, str, str],
    *,
    read: Reader,
    write: Writer,
    wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> ResumeResult:
    """Resume the gate's node through ``read``/``write``, waiting for it at most
    ``wait_seconds``.

    Raises
    ------
    StoreError
        No suspend node after the wait, or several running ones.
    """
    ns, name, value = target
    where = f"workflow {ns}/{name}"
    deadline = monotonic() + max(0.0, wait_seconds)
    delay = 0.5
    while True:
        got = read(ns, name, where)
        if got is None:
            return ResumeResult(
                ResumeOutcome.RUN_GONE, f"{where} was not found (deleted or archived)", "deleted"
            )
        wf, nodes = got
        found = assess(wf, nodes, request, value)
        if found.action == "resume" and found.node_id is not None:
            if write(ns, name, where, wf, nodes, found.node_id):
                return ResumeResult(ResumeOutcome.RESUMED, "resumed")
            continue
        if found.action == "final" and found.outcome is not None:
            return ResumeResult(found.outcome, found.detail, found.run_state)
        remaining = deadline - monotonic()
        if found.action == "wait" and remaining > 0:
            sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)
            continue
        why = found.detail
        if found.action == "wait":
            why = f"{where}: no suspend node for the gate after waiting {wait_seconds:g}s ({why})"
        raise StoreError(why, hint=_SYNC_HINT)


def raise_if_ended(request: Request, result: ResumeResult) -> bool:
    """``Resumer.resume``'s answer: True if resumed, False if already resumed or expired.

    Raises
    ------
    RunEnded
        The run ended or is gone: nothing will ever resume the gate.
    """
    if result.outcome in (ResumeOutcome.RUN_ENDED, ResumeOutcome.RUN_GONE):
        raise RunEnded(
            f"gate {request.gate_id} cannot be resumed: {result.detail}.",
            outcome=result.outcome.value,
            run_state=result.run_state,
            hint="The decision is recorded; `metaflow-hitl sync` closes gates of ended runs.",
        )
    return result.outcome is ResumeOutcome.RESUMED


def probe_run(request: Request, target: tuple[str, str, str], *, read: Reader) -> ResumeResult:
    """What resuming would come to now, without writing or waiting (``resume`` and ``wait``
    are reported as :attr:`ResumeOutcome.RESUMED`: the run is alive)."""
    ns, name, value = target
    got = read(ns, name, f"workflow {ns}/{name}")
    if got is None:
        return ResumeResult(
            ResumeOutcome.RUN_GONE, f"workflow {ns}/{name} was not found (deleted)", "deleted"
        )
    wf, nodes = got
    found = assess(wf, nodes, request, value)
    if found.action == "final" and found.outcome is not None:
        return ResumeResult(found.outcome, found.detail, found.run_state)
    return ResumeResult(ResumeOutcome.RESUMED, found.detail)
