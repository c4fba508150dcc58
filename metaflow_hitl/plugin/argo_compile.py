"""Add the gates to ``python flow.py argo-workflows create`` (and ``--only-json``, the Deployer).

Metaflow has no hook for a step decorator to add Argo tasks. ``ArgoWorkflows.__init__`` builds
the WorkflowTemplate with ``_compile_workflow_template()``, and that one object feeds
``--only-json``, ``deploy()`` and the Deployer; so :func:`install_compile_hook` wraps that
method (once, from ``@hitl``'s ``step_init`` in the ``argo-workflows`` process) and rewrites
the returned payload with :func:`metaflow_hitl.argo.inject.inject_gates`.

The notify task runs the gated step's own container command with one change: instead of
``... step S --run-id ...`` it runs ``... hitl notify S --run-id ...`` (same code package, same
input paths, same options). Anything unexpected raises: a step is never deployed ungated.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from metaflow_hitl.argo.inject import ArgoGate, inject_gates
from metaflow_hitl.argo.notify_pod import PLACEMENT_SETTINGS, NotifyPlacement
from metaflow_hitl.errors import HitlError, InjectionError
from metaflow_hitl.plugin.metaflow_internals import argo_workflows_class, gated_steps, unsupported
from metaflow_hitl.run_starter import ANNOTATIONS_ENV, LABELS_ENV
from metaflow_hitl.spec import GateSpec

__all__ = [
    "NOTIFY_RESOURCES",
    "RUN_METADATA_ENV",
    "WORKFLOW_UID_ENV",
    "add_gates",
    "bind_run_metadata",
    "bind_workflow_uid",
    "gates_of",
    "install_compile_hook",
    "notify_container",
]

_MARK = "_metaflow_hitl_wrapped"
#: Set on an ``ArgoWorkflows`` once its template got its gates.
_COMPILED = "_metaflow_hitl_gated"
#: The notify task only renders a message and calls a few APIs: it asks for little, whatever
#: the gated step asks for (GPUs included).
NOTIFY_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"memory": "1Gi"},
}
#: Settings the notify pod needs from the deploying machine (Metaflow forwards none of an
#: extension's settings into pods). Secrets (tokens, Apprise URLs) are NOT copied: give them
#: to the pods through a Kubernetes secret (``@kubernetes(secrets=[...])``).
FORWARDED_SETTINGS = (
    "METAFLOW_HITL_REVIEW",
    "METAFLOW_HITL_GITHUB_API_URL",
    "METAFLOW_HITL_ARGO_UI_URL",
    "METAFLOW_HITL_TRUSTED_CHANNELS",
)
#: Of those, what the gated step itself needs: the deployment's trusted channels, which the
#: step re-reads in its ``step_init`` to decide which decisions count. Without it the pod would
#: see no deployment-wide limit, and a gate would trust more than the deployment allows.
GATED_STEP_SETTINGS = ("METAFLOW_HITL_TRUSTED_CHANNELS",)


def gates_of(graph: Any) -> list[ArgoGate]:
    """The gated steps of a flow graph, in the flow's order, with their timeouts.

    Raises
    ------
    UnsupportedMetaflow
        If the graph does not have the shape :mod:`.metaflow_internals` describes.
    """
    gates = []
    for name, options in gated_steps(graph):
        spec = GateSpec.from_options(**options)
        gates.append(
            ArgoGate(
                step=name,
                timeout_seconds=spec.timeout_seconds,
                on_timeout=spec.on_timeout,
                on_reject=spec.on_reject,
            )
        )
    return gates


def _settings(names: tuple[str, ...] = FORWARDED_SETTINGS) -> dict[str, str]:
    from metaflow import metaflow_config

    out = {}
    for env in names:
        value = getattr(metaflow_config, env[len("METAFLOW_") :], None) or os.environ.get(env)
        if value:
            out[env] = str(value)
    return out


def notify_container(
    step: str, container: dict[str, Any], *, settings: dict[str, str] | None = None
) -> dict[str, Any]:
    """Turn a copy of step ``step``'s container into its gate's notify container.

    Raises
    ------
    InjectionError
        If the step's command is not the ``bash -c`` script Metaflow writes, or does not run
        ``step <step>`` exactly once.
    """
    command = container.get("command")
    if not (
        isinstance(command, list)
        and len(command) == 3
        and command[:2] == ["bash", "-c"]
        and isinstance(command[2], str)
    ):
        raise InjectionError(
            f"the container of step {step!r} does not run a `bash -c` script; Metaflow's Argo "
            "compiler may have changed shape. Refusing to deploy the step ungated."
        )
    script = command[2]
    needle = f" step {step} --run-id "
    if script.count(needle) != 1:
        raise InjectionError(
            f"the container script of step {step!r} does not run `step {step} --run-id` exactly "
            "once; Metaflow's Argo compiler may have changed shape. Refusing to deploy the step "
            "ungated."
        )
    script = script.replace(needle, f" hitl notify {step} --run-id ")
    # The notify pod's logs go beside the step's, not over them (mflog's MF_PATHSPEC).
    script = re.sub(
        rf"(MF_PATHSPEC=[^ ]*/){re.escape(step)}(/\$METAFLOW_TASK_ID)",
        rf"\g<1>_hitl_notify_{step}\g<2>",
        script,
        count=1,
    )
    container["command"] = ["bash", "-c", script]
    env = [e for e in container.get("env") or [] if e.get("name") not in (settings or {})]
    env += [{"name": k, "value": v} for k, v in sorted((settings or {}).items())]
    container["env"] = env
    bind_workflow_uid(container)
    bind_run_metadata(container)
    container["resources"] = {k: dict(v) for k, v in NOTIFY_RESOURCES.items()}
    return container


#: The Argo workflow's UID, in the notify task and the gated step: a gate id names the
#: workflow (``argo-<name>``), and a name can be used again after a workflow is deleted; the
#: UID tells a new workflow from an old one of the same name.
WORKFLOW_UID_ENV = "METAFLOW_HITL_WORKFLOW_UID"


def bind_workflow_uid(container: dict[str, Any]) -> None:
    """Give ``container`` the workflow's UID (``{{workflow.uid}}``) as an environment variable."""
    env = [e for e in container.get("env") or [] if e.get("name") != WORKFLOW_UID_ENV]
    env.append({"name": WORKFLOW_UID_ENV, "value": "{{workflow.uid}}"})
    container["env"] = env


#: Argo global variables that always resolve (``json.Marshal`` of the workflow's maps, "null"
#: when empty; ``workflow/controller/operator.go`` ``setGlobalParameters``, v3.7.18 lines
#: 688-697, v4.1.2 lines 743-752; listed in ``docs/variables.md`` of both): the notify task
#: reads who started the run from them (:mod:`metaflow_hitl.run_starter`).
RUN_METADATA_ENV = {
    LABELS_ENV: "{{workflow.labels.json}}",
    ANNOTATIONS_ENV: "{{workflow.annotations.json}}",
}


def bind_run_metadata(container: dict[str, Any]) -> None:
    """Give ``container`` the workflow's labels and annotations as JSON environment variables."""
    env = [e for e in container.get("env") or [] if e.get("name") not in RUN_METADATA_ENV]
    env += [{"name": k, "value": v} for k, v in RUN_METADATA_ENV.items()]
    container["env"] = env


def add_gates(
    template: dict[str, Any],
    gates: list[ArgoGate],
    *,
    settings: dict[str, str],
    placement: NotifyPlacement | None = None,
) -> dict[str, Any]:
    """The compiled ``template`` with its gates: notify and suspend tasks before each gated
    step, and the workflow UID bound into the notify tasks and the gated steps.

    Raises
    ------
    InjectionError
        On any shape it does not expect.
    """
    gated = inject_gates(
        template,
        gates,
        notify_container=functools.partial(notify_container, settings=settings),
        placement=placement,
    )
    for gate in gates:  # the gated step checks that the request belongs to its workflow
        task = gate.step.replace("_", "-")
        for entry in gated["spec"]["templates"]:
            if entry.get("name") == task and "container" in entry:
                bind_workflow_uid(entry["container"])
                bind_settings(
                    entry["container"],
                    {k: v for k, v in settings.items() if k in GATED_STEP_SETTINGS},
                )
    return gated


def bind_settings(container: dict[str, Any], settings: dict[str, str]) -> None:
    """Set ``settings`` as environment variables of ``container`` (replacing same names)."""
    if not settings:
        return
    env = [e for e in container.get("env") or [] if e.get("name") not in settings]
    env += [{"name": k, "value": v} for k, v in sorted(settings.items())]
    container["env"] = env


def install_compile_hook() -> None:
    """Wrap ``ArgoWorkflows._compile_workflow_template`` so it adds the gates (idempotent).

    Called from a gated step's ``step_init``, so the flow being compiled has a gate. Fails
    closed on a Metaflow whose internals changed (:mod:`.metaflow_internals`): a missing
    class or method, a graph the gates cannot be read from, a compile result without a
    payload, or an ``ArgoWorkflows`` that no longer compiles through the wrapped method.

    Raises
    ------
    HitlException
        ``@hitl: unsupported Metaflow version``, if Metaflow lacks what the hook wraps.
    """
    try:
        cls = argo_workflows_class()
    except HitlError as exc:
        raise _exception(exc) from None
    original = cls._compile_workflow_template
    if getattr(original, _MARK, False):
        return
    original_init = cls.__init__

    @functools.wraps(original)
    def compile_with_gates(self: Any) -> Any:
        built = original(self)
        try:
            gated = _gated_payload(self, built)
        except HitlError as exc:
            raise _exception(exc) from None
        payload = built.payload
        payload.clear()
        payload.update(gated)
        setattr(self, _COMPILED, True)
        return built

    @functools.wraps(original_init)
    def init_then_check(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if not getattr(self, _COMPILED, False):  # compiled some other way: no gates in it
            what = f"ArgoWorkflows() no longer builds its template with {original.__name__}()"
            raise _exception(unsupported(what))

    setattr(compile_with_gates, _MARK, True)
    setattr(cls, "_compile_workflow_template", compile_with_gates)  # noqa: B010
    setattr(cls, "__init__", init_then_check)  # noqa: B010


def _gated_payload(argo: Any, built: Any) -> dict[str, Any]:
    graph = getattr(argo, "graph", None)
    if graph is None:
        raise unsupported("ArgoWorkflows keeps no graph attribute")
    gates = gates_of(graph)
    if not gates:  # the hook runs only for a flow with a gate: Metaflow hides it from us
        raise unsupported("no step of the compiled graph carries the @hitl decorator")
    payload = getattr(built, "payload", None)
    if not isinstance(payload, dict):
        raise unsupported("ArgoWorkflows._compile_workflow_template() returned no payload dict")
    placement = NotifyPlacement.from_env(_settings(PLACEMENT_SETTINGS))
    return add_gates(payload, gates, settings=_settings(), placement=placement)


def _exception(error: HitlError) -> Exception:
    from metaflow_hitl.plugin.decorator import HitlException

    return HitlException.from_error(error)
