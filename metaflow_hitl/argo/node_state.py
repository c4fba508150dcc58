"""What a gate's workflow says about its suspend node: resume it, wait for it, or why not.

Both resumers read the Workflow and ask :func:`assess`, which answers one of:

* ``resume`` — exactly one suspend node of the gate is running in a running workflow;
* ``wait`` — no suspend node yet, but the gate's ``hitl-notify`` node is still running or has
  just succeeded (the notify pod opens the review, then exits; the controller creates the
  suspend node on its next pass), or the workflow has not started its nodes: ask again soon;
* a final :class:`ResumeOutcome` — nothing to write:

  ``already_resumed``: the node finished with a decision (ours or another decider's);
  ``expired``: the node ended by its ``duration`` (Argo marks it ``Succeeded`` with no message
  and the output's default, ``workflow/controller/operator.go`` ``executeSuspend``);
  ``run_ended``: the workflow was stopped or terminated (``spec.shutdown``), or it finished
  (``Failed``, ``Error``, e.g. ``failFast`` elsewhere or ``activeDeadlineSeconds``) before the
  gate's node could run;
  ``run_gone``: the workflow is deleted (404), or a workflow of the same name with another UID
  (the name was used again) holds its place.

A gate whose run ended can never be resumed; :mod:`metaflow_hitl.argo.run_end` closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from metaflow_hitl.argo.inject import GATE_PARAMETER, TIMEOUT_DECISION, task_name
from metaflow_hitl.errors import StoreError
from metaflow_hitl.records import Request

__all__ = ["Assessment", "ResumeOutcome", "assess", "run_state_of"]

_ARGO_RESUMED = "Resumed by"  # Argo's own ResumeWorkflow message (workflow/util/util.go)
_TERMINAL = ("Succeeded", "Failed", "Error")
_NODE_ENDED = ("Failed", "Error", "Omitted", "Skipped")


class ResumeOutcome(str, Enum):
    """What resuming a gate came to."""

    RESUMED = "resumed"
    ALREADY_RESUMED = "already_resumed"
    EXPIRED = "expired"
    RUN_ENDED = "run_ended"
    RUN_GONE = "run_gone"


@dataclass(frozen=True)
class Assessment:
    """The answer of :func:`assess`.

    Attributes
    ----------
    action
        ``resume``, ``wait`` or ``final``.
    node_id
        The node to resume (``resume`` only).
    outcome
        The final outcome (``final`` only).
    detail
        Why, for people: the workflow phase, shutdown strategy or message.
    run_state
        For ``run_ended``/``run_gone``: ``stopped``, ``terminated``, ``failed``, ``error``,
        ``succeeded``, ``deleted`` or ``replaced``.
    """

    action: str
    node_id: str | None = None
    outcome: ResumeOutcome | None = None
    detail: str = ""
    run_state: str | None = None


def _gate_input(node: dict[str, Any]) -> str | None:
    for param in (node.get("inputs") or {}).get("parameters") or []:
        if param.get("name") == GATE_PARAMETER:
            value = param.get("value")
            return value if isinstance(value, str) else None
    return None


def _decision_output(node: dict[str, Any]) -> str | None:
    for param in (node.get("outputs") or {}).get("parameters") or []:
        if param.get("name") == "decision":
            value = param.get("value")
            return value if isinstance(value, str) else None
    return None


def run_state_of(wf: dict[str, Any]) -> tuple[str | None, str]:
    """``(state, detail)`` of a workflow that ended or is ending, else ``(None, phase)``."""
    spec = wf.get("spec") or {}
    status = wf.get("status") or {}
    phase = str(status.get("phase") or "")
    message = str(status.get("message") or "")
    shutdown = spec.get("shutdown")
    if shutdown:
        state = "terminated" if shutdown == "Terminate" else "stopped"
        return state, f"{phase or 'Running'}, shutdown {shutdown!r}" + (
            f": {message}" if message else ""
        )
    if phase in _TERMINAL:
        return phase.lower(), phase + (f": {message}" if message else "")
    return None, phase


def assess(wf: dict[str, Any], nodes: dict[str, Any], request: Request, value: str) -> Assessment:
    """Decide what to do with the gate whose suspend node has ``hitl-gate`` = ``value``.

    Raises
    ------
    StoreError
        More than one running suspend node matches (Argo would resume them all).
    """
    meta = wf.get("metadata") or {}
    where = f"workflow {meta.get('namespace')}/{meta.get('name')}"
    theirs = request.origin.get("workflow_uid")
    uid = (wf.get("metadata") or {}).get("uid")
    if theirs and uid != theirs:
        return Assessment(
            "final",
            outcome=ResumeOutcome.RUN_GONE,
            run_state="replaced",
            detail=f"{where} has UID {uid!r}, the gate was opened in UID {theirs!r}: the "
            "gate's run is gone and another run has its name",
        )
    found = sorted(
        node_id
        for node_id, node in nodes.items()
        if isinstance(node, dict) and node.get("type") == "Suspend" and _gate_input(node) == value
    )
    running = [n for n in found if nodes[n].get("phase") == "Running"]
    if len(running) > 1:
        raise StoreError(
            f"{len(running)} running suspend nodes of {where} have {GATE_PARAMETER}={value!r} "
            f"({', '.join(running)}); refusing to resume more than one. Is the gate inside a "
            "foreach?"
        )
    state, detail = run_state_of(wf)
    if running:
        if state is not None:
            return Assessment(
                "final", outcome=ResumeOutcome.RUN_ENDED, run_state=state, detail=detail
            )
        return Assessment("resume", node_id=running[0])
    if found:
        node = nodes[found[-1]]
        if node.get("phase") == "Succeeded":
            message = str(node.get("message") or "")
            output = _decision_output(node)
            if output in (None, TIMEOUT_DECISION) and not message.startswith(_ARGO_RESUMED):
                return Assessment("final", outcome=ResumeOutcome.EXPIRED, detail="expired")
            return Assessment(
                "final", outcome=ResumeOutcome.ALREADY_RESUMED, detail=message or str(output)
            )
        if node.get("phase") in _NODE_ENDED or state is not None:
            return Assessment(
                "final",
                outcome=ResumeOutcome.RUN_ENDED,
                run_state=state or "failed",
                detail=detail or f"suspend node {node.get('phase')}",
            )
        return Assessment("wait", detail=f"suspend node {node.get('phase')}")
    if state is not None:
        return Assessment("final", outcome=ResumeOutcome.RUN_ENDED, run_state=state, detail=detail)
    notify = f"hitl-notify-{task_name(request.gate_id.step)}"
    notify_phases = [
        str(n.get("phase") or "")
        for n in nodes.values()
        if isinstance(n, dict) and notify in (n.get("templateName"), n.get("displayName"))
    ]
    if any(p in ("", "Pending", "Running", "Succeeded") for p in notify_phases):
        return Assessment("wait", detail=f"{notify} is {', '.join(notify_phases)}")
    return Assessment(
        "missing",
        detail=f"{where} has no suspend node with {GATE_PARAMETER}={value!r} "
        + (f"and its {notify} node is {', '.join(notify_phases)}" if notify_phases else "yet")
        + " (was the workflow compiled with this gate?)",
    )
