"""Add zero-compute gates to a compiled Argo WorkflowTemplate.

Metaflow has no hook for a step decorator to add Argo tasks, so the gates are added to the
compiled template dict: for each gated step ``S``, two tasks run before it.

* ``hitl-notify-S`` — a container template copied from ``S``'s (same image, environment,
  secrets, service account, code package), whose command records the request and opens the
  review, then exits; it gets its own ``retryStrategy``, a 10-minute deadline per attempt and
  its own placement (none of the step's GPU node selector, tolerations or volume claims:
  :mod:`metaflow_hitl.argo.notify_pod`);
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
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from metaflow_hitl.argo.gate_paths import longest_gate_wait
from metaflow_hitl.argo.notify_pod import NotifyPlacement, place_notify_pod
from metaflow_hitl.errors import InjectionError

__all__ = ["ArgoGate", "check_step_name", "inject_gates", "task_name"]

#: Output parameter default that tells a timed-out suspend from a human decision.
TIMEOUT_DECISION = "timeout"
GATE_PARAMETER = "hitl-gate"
#: Input of a gated step with ``@retry``: its suspend node's ``decision`` output.
DECISION_INPUT = "hitl-decision"
#: Retries of the notify task: 3 more attempts, 10 s, 20 s, 40 s after the previous one ends.
#: No ``backoff.maxDuration``: Argo measures it from the *first* attempt's start (Pending and
#: image pull included), stops retrying past it, and caps each pod's deadline by it
#: (``workflow/controller/operator.go``, ``processNodeRetries``: ``maxDurationDeadline =
#: firstChildNode.StartedAt.Add(maxDuration)`` and ``opts.executionDeadline``), so a 5m window
#: beside a 600 s deadline meant an attempt killed at its deadline was never retried.
NOTIFY_RETRY: dict[str, Any] = {
    "limit": 3,
    "retryPolicy": "Always",
    "backoff": {"duration": "10s", "factor": 2},
}
#: Each notify attempt's ``activeDeadlineSeconds`` (the pod's, image pull included).
NOTIFY_DEADLINE_SECONDS = 600


def notify_budget_seconds() -> int:
    """The longest the notify task can take with every retry used: each attempt up to its
    deadline, plus the backoffs between them (``duration * factor**n``, Argo's formula):
    4 x 600 s + 10 + 20 + 40 s = 2470 s, about 41 minutes (scheduling time not counted)."""
    limit = int(NOTIFY_RETRY["limit"])
    backoff = NOTIFY_RETRY["backoff"]
    base = int(str(backoff["duration"]).rstrip("s"))
    waits = sum(base * int(backoff["factor"]) ** n for n in range(limit))
    return (limit + 1) * NOTIFY_DEADLINE_SECONDS + waits


@dataclass(frozen=True)
class ArgoGate:
    """One gated step as the injector needs it.

    Parameters
    ----------
    step
        The Metaflow step name (``deploy_model``).
    timeout_seconds
        The gate's timeout; the suspend resumes itself after it.
    on_timeout, on_reject
        The gate's policies (``reject``/``approve``, ``fail``/``continue``): they say which
        decisions end the step for good, so that ``@retry`` does not run it again.
    """

    step: str
    timeout_seconds: float
    on_timeout: str = "reject"
    on_reject: str = "fail"


def task_name(step: str) -> str:
    """The DAG task name Metaflow gives a step (``_`` becomes ``-``)."""
    return step.replace("_", "-")


#: What a gated step's name may be. It is written into template and task names
#: (``hitl-notify-<task>``), ``depends`` expressions (``hitl-suspend-<task>.Succeeded``), the
#: ``hitl-gate`` parameter and the notify pod's command line, so it must be a name Argo
#: accepts there and nothing any of those languages reads as syntax: an ASCII Python
#: identifier (a Metaflow step is a method) whose task name matches Argo's
#: ``workflowFieldNameFmt`` ``[a-zA-Z0-9][-a-zA-Z0-9]*`` (``workflow/validate/validate.go``,
#: v3.5.0 l.1553, v4.1.2 l.1711; applied to templates and DAG tasks by
#: ``validateWorkflowFieldNames``), at most ``workflowFieldMaxLength`` (128) characters with
#: the longest prefix we add. No quote, space, brace, dot or operator can pass.
_STEP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_FIELD_NAME_MAX = 128
_LONGEST_PREFIX = "hitl-suspend-"
_LITERAL_SAFE = re.compile(r"[a-z_]+")


def check_step_name(step: str) -> None:
    """Refuse a gated step name that is not safe by construction in the compiled template.

    Raises
    ------
    InjectionError
        The name has a character outside ``[A-Za-z0-9_]``, starts with neither letter, or is
        too long for Argo once prefixed.
    """
    if not _STEP_NAME.fullmatch(step):
        raise InjectionError(
            f"cannot gate step {step!r} on Argo: a gated step's name must be ASCII letters, "
            "digits and '_', starting with a letter (Argo's template and task names allow "
            "only [a-zA-Z0-9-]). Rename the step."
        )
    if len(_LONGEST_PREFIX + task_name(step)) > _FIELD_NAME_MAX:
        raise InjectionError(
            f"cannot gate step {step[:40]!r}... on Argo: its name is {len(step)} characters; "
            f"{_LONGEST_PREFIX}<name> must fit Argo's {_FIELD_NAME_MAX}-character limit on "
            f"template names (at most {_FIELD_NAME_MAX - len(_LONGEST_PREFIX)}). Rename it."
        )


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


def decision_retry_expression(on_timeout: str) -> str:
    """The ``retryStrategy.expression`` of a gated step: retry only a step whose gate let it
    run.

    Argo substitutes the template's tags before it evaluates the expression (``ProcessArgs``
    then ``processNodeRetries(... woc.retryStrategy(processedTmpl) ...)`` in
    ``workflow/controller/operator.go``). The decision is never pasted into the expression as
    text: a simple tag is replaced verbatim, escaped for JSON only (``strconv.Quote`` in
    ``util/template/simple_template.go``, v3.5.0 l.36, v4.1.2 l.72), so a quote in the suspend
    node's output (which anyone allowed to update the Workflow can set, e.g. ``argo node set``)
    would end the string literal and rewrite the expression. Instead one expression tag
    (``{{=...}}``) compares it: Argo evaluates it with the value as a *variable* of the
    environment and writes back only the boolean result (``expressionReplace``, v3.5.0
    ``util/template/expression_template.go`` l.23-65; ``expressionReplaceCore``, v4.1.2
    l.205-279; hyphenated names by index: ``docs/variables.md``, *Expression*). The first,
    global pass leaves it unresolved (``inputs`` is not in its environment yet); the second
    resolves it (``SubstituteParams``, ``workflow/common/util.go``). What Argo evaluates last
    is ``true`` or ``false``, whatever the node's output holds.

    Expression tags are on unless the controller runs with ``EXPRESSION_TEMPLATES=false``
    (``expression_template.go``, ``init``); there the tag stays unresolved, the expression
    does not compile and the node errors without a retry (fail closed).
    """
    proceed = ["approved"] + (["timed_out", TIMEOUT_DECISION] if on_timeout == "approve" else [])
    values = ", ".join(f"'{_literal(value)}'" for value in proceed)
    return "{{=inputs.parameters['" + DECISION_INPUT + "'] in [" + values + "]}}"


def _literal(value: str) -> str:
    """``value`` for an expr-lang single-quoted string literal: our own constants only, so
    anything that would need escaping is refused rather than escaped."""
    if not _LITERAL_SAFE.fullmatch(value):
        raise InjectionError(f"{value!r} cannot be written in a retry expression")
    return value


def _final_when_not_approved(
    step_template: dict[str, Any], task: dict[str, Any], suspend: str, gate: ArgoGate
) -> None:
    """Make a rejected (or timed-out-and-rejected) gate final under ``@retry``.

    The gated step fails on such a decision, and every retry would read the same decision and
    fail again, scheduling pods for nothing. Its template gets the suspend node's ``decision``
    as an input, and a retry expression false unless that decision lets the step run. When it
    is false Argo fails the node without another attempt ("retryStrategy.expression evaluated
    to false", ``processNodeRetries``). The step still reads the store, never this value.
    """
    inputs = step_template.setdefault("inputs", {}).setdefault("parameters", [])
    if any(p.get("name") == DECISION_INPUT for p in inputs):
        raise InjectionError(
            f"the template of step {gate.step!r} already has an input {DECISION_INPUT!r}"
        )
    inputs.append({"name": DECISION_INPUT})
    args = task.setdefault("arguments", {}).setdefault("parameters", [])
    args.append(
        {"name": DECISION_INPUT, "value": "{{tasks." + suspend + ".outputs.parameters.decision}}"}
    )
    retry = step_template["retryStrategy"]
    ours = decision_retry_expression(gate.on_timeout)
    old = retry.get("expression")
    retry["expression"] = f"({old}) && ({ours})" if old else ours


def inject_gates(
    template: dict[str, Any],
    gates: Sequence[ArgoGate],
    *,
    notify_container: NotifyArgs,
    placement: NotifyPlacement | None = None,
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
    placement
        Where the notify pods run (:mod:`metaflow_hitl.argo.notify_pod`); default: no
        node selector, affinity, tolerations or PersistentVolumeClaims of the step's.

    Raises
    ------
    InjectionError
        On any shape it does not expect; nothing is returned half-gated.
    """
    out = copy.deepcopy(template)
    spec = out.setdefault("spec", {})
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int | float) and gates:
        waits = {task_name(g.step): g.timeout_seconds for g in gates}
        longest = longest_gate_wait(out, waits)
        if deadline < longest:
            which = ", ".join(f"{g.step!r} ({g.timeout_seconds:g}s)" for g in gates)
            raise InjectionError(
                f"the gates on this workflow's longest path can wait {longest:g}s in all "
                f"(gates: {which}) but the workflow times out after {deadline:g}s "
                "(--workflow-timeout), and Argo counts suspended time against it; the run would "
                "be killed while waiting. Raise --workflow-timeout or lower the gates' timeouts."
            )
    for gate in gates:
        check_step_name(gate.step)
        name = task_name(gate.step)
        notify, suspend = f"hitl-notify-{name}", f"hitl-suspend-{name}"
        taken = {t.get("name") for t in spec.get("templates") or []}
        if notify in taken or suspend in taken:
            raise InjectionError(f"the workflow already has a template named {notify!r}")
        dag, task = _find_task(out, name)
        step_template = _template(out, task["template"])
        if "container" not in step_template:
            if "steps" in step_template or any(
                t.get("name") == f"recursive-{name}" for t in spec["templates"]
            ):
                raise InjectionError(
                    f"cannot gate the recursive step {gate.step!r} (a step that can run itself "
                    "again through a switch): one gate per recursion is not supported. Gate the "
                    "step before the loop, or the step after it."
                )
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
        place_notify_pod(notify_template, placement or NotifyPlacement())
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
        if step_template.get("retryStrategy") and gate.on_reject == "fail":
            _final_when_not_approved(step_template, task, suspend, gate)
        tasks = dag["dag"]["tasks"]
        tasks[tasks.index(task) : tasks.index(task)] = [notify_task, suspend_task]
    return out
