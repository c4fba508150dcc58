"""Add zero-compute gates to a compiled Argo WorkflowTemplate.

Metaflow has no hook for a step decorator to add Argo tasks, so the gates are added to the
compiled template dict: for each gated step ``S``, two tasks run before it.

* ``hitl-notify-S`` — a container template copied from ``S``'s (same image, environment,
  secrets, service account, code package), whose command records the request and opens the
  review, then exits; it gets its own ``retryStrategy`` and a 10-minute deadline;
* ``hitl-suspend-S`` — a native ``suspend`` template (no pod) with ``duration`` = the gate's
  timeout, a unique input parameter ``hitl-gate`` to select exactly this node when resuming,
  and an output ``decision`` supplied by the resumer whose default, ``timeout``, marks an
  expiry (https://argo-workflows.readthedocs.io/en/latest/intermediate-inputs/).

``S`` then depends on the suspend task. The DAG's own edge style is kept — ``depends`` (Metaflow
2.17+) or ``dependencies`` (earlier); Argo rejects a DAG that mixes them. Anything unexpected
(the step's task or template missing, a name already taken, a workflow timeout shorter than the
gate's) raises :class:`InjectionError`: a template is never returned with a gate silently left
out.

This module is pure (dicts in, dicts out). Wiring it into ``argo-workflows create`` is done by
the Metaflow glue.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from metaflow_hitl.errors import InjectionError

__all__ = ["ArgoGate", "inject_gates", "task_name"]

#: Output parameter default that tells a timed-out suspend from a human decision.
TIMEOUT_DECISION = "timeout"
GATE_PARAMETER = "hitl-gate"
#: Retries of the notify task: 3 more attempts, 10 s, 20 s, 40 s apart.
NOTIFY_RETRY = {
    "limit": 3,
    "retryPolicy": "Always",
    "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"},
}
NOTIFY_DEADLINE_SECONDS = 600


@dataclass(frozen=True)
class ArgoGate:
    """One gated step as the injector needs it.

    Parameters
    ----------
    step
        The Metaflow step name (``deploy_model``).
    timeout_seconds
        The gate's timeout; the suspend resumes itself after it.
    """

    step: str
    timeout_seconds: float


def task_name(step: str) -> str:
    """The DAG task name Metaflow gives a step (``_`` becomes ``-``)."""
    return step.replace("_", "-")


NotifyArgs = Callable[[str, dict[str, Any]], dict[str, Any]]


def _entry_dag(template: dict[str, Any]) -> dict[str, Any]:
    spec = template.get("spec") or {}
    entry = spec.get("entrypoint")
    for t in spec.get("templates") or []:
        if t.get("name") == entry and "dag" in t:
            return t
    raise InjectionError(f"the compiled workflow has no DAG entrypoint template {entry!r}")


def _find_task(template: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The DAG template holding task ``name`` (entrypoint first) and the task itself."""
    dags = [_entry_dag(template)] + [
        t for t in template["spec"]["templates"] if "dag" in t and t is not _entry_dag(template)
    ]
    for dag in dags:
        for task in dag["dag"].get("tasks") or []:
            if task.get("name") == name:
                return dag, task
    raise InjectionError(
        f"the compiled workflow has no task {name!r} for a gated step; Metaflow's Argo "
        "compiler may have changed shape. Refusing to deploy the step ungated."
    )


def _template(template: dict[str, Any], name: str) -> dict[str, Any]:
    for t in template["spec"]["templates"]:
        if t.get("name") == name:
            return t
    raise InjectionError(f"the compiled workflow has no template {name!r}")


def _edge_style(dag: dict[str, Any]) -> str:
    tasks = dag["dag"].get("tasks") or []
    if any(t.get("dependencies") for t in tasks):
        if any(t.get("depends") for t in tasks):  # pragma: no cover - Argo refuses it anyway
            raise InjectionError("the DAG mixes 'depends' and 'dependencies'")
        return "dependencies"
    return "depends"


def _after(style: str, task: dict[str, Any], upstream: str) -> None:
    """Make ``task`` also wait for ``upstream`` to succeed, in the DAG's edge style."""
    if style == "dependencies":
        task["dependencies"] = [*(task.get("dependencies") or []), upstream]
        return
    old = (task.get("depends") or "").strip()
    task["depends"] = f"({old}) && {upstream}.Succeeded" if old else f"{upstream}.Succeeded"


def inject_gates(
    template: dict[str, Any],
    gates: Sequence[ArgoGate],
    *,
    notify_container: NotifyArgs,
) -> dict[str, Any]:
    """Return a copy of ``template`` with a notify and a suspend task before each gate.

    Parameters
    ----------
    template
        The compiled WorkflowTemplate (``argo-workflows create --only-json``).
    gates
        The gated steps.
    notify_container
        Given a step name and a copy of its container spec, returns the notify container
        (typically the same image and environment with another command).

    Raises
    ------
    InjectionError
        On any shape it does not expect; nothing is returned half-gated.
    """
    out = copy.deepcopy(template)
    spec = out.setdefault("spec", {})
    deadline = spec.get("activeDeadlineSeconds")
    for gate in gates:
        name = task_name(gate.step)
        if isinstance(deadline, int | float) and deadline < gate.timeout_seconds:
            raise InjectionError(
                f"the gate on step {gate.step!r} waits up to {gate.timeout_seconds:g}s but the "
                f"workflow times out after {deadline:g}s (--workflow-timeout); the run would be "
                "killed while waiting. Raise --workflow-timeout or lower the gate's timeout."
            )
        notify, suspend = f"hitl-notify-{name}", f"hitl-suspend-{name}"
        taken = {t.get("name") for t in spec.get("templates") or []}
        if notify in taken or suspend in taken:
            raise InjectionError(f"the workflow already has a template named {notify!r}")
        dag, task = _find_task(out, name)
        step_template = _template(out, task["template"])
        if "container" not in step_template:
            raise InjectionError(f"the template of step {gate.step!r} is not a container")
        style = _edge_style(dag)

        notify_template = copy.deepcopy(step_template)
        notify_template["name"] = notify
        notify_template.pop("outputs", None)
        # Its own retries (GitHub or S3 hiccups), and a deadline: it should take seconds.
        notify_template["retryStrategy"] = copy.deepcopy(NOTIFY_RETRY)
        notify_template["activeDeadlineSeconds"] = NOTIFY_DEADLINE_SECONDS
        notify_template["container"] = notify_container(
            gate.step, copy.deepcopy(step_template["container"])
        )
        suspend_template = {
            "name": suspend,
            "inputs": {"parameters": [{"name": GATE_PARAMETER}]},
            "suspend": {"duration": str(int(gate.timeout_seconds))},
            "outputs": {
                "parameters": [
                    {
                        "name": "decision",
                        "valueFrom": {"supplied": {}, "default": TIMEOUT_DECISION},
                    }
                ]
            },
        }
        spec["templates"].extend([notify_template, suspend_template])

        notify_task = {"name": notify, "template": notify}
        for key in ("depends", "dependencies", "when", "arguments"):
            if task.get(key):
                notify_task[key] = copy.deepcopy(task[key])
        suspend_task: dict[str, Any] = {
            "name": suspend,
            "template": suspend,
            "arguments": {
                "parameters": [
                    # unique per run and step: resume selects on it (one node, never more)
                    {"name": GATE_PARAMETER, "value": "{{workflow.name}}/" + gate.step}
                ]
            },
        }
        _after(style, suspend_task, notify)
        _after(style, task, suspend)
        tasks = dag["dag"]["tasks"]
        tasks[tasks.index(task) : tasks.index(task)] = [notify_task, suspend_task]
    return out
