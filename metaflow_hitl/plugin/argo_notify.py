"""``python flow.py hitl notify STEP ...``: what the ``hitl-notify-STEP`` task runs on Argo.

It takes the same options as Metaflow's ``step`` command (the compiled container command is
the step's own with ``step`` replaced by ``hitl notify``), reads the step's input artifacts
from the datastore, renders the message, records the request in the store, opens the review
(PR or issue) and announces the gate, then exits. Re-running it (a retried pod) changes
nothing that exists and notifies nobody twice.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from metaflow_hitl.cli.group import fail
from metaflow_hitl.content import reuse_origin_gate
from metaflow_hitl.errors import ConfigError, GateBelongsToAnotherWorkflow, HitlError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.plugin.argo_compile import WORKFLOW_UID_ENV
from metaflow_hitl.plugin.content_digest import content_of
from metaflow_hitl.plugin.metaflow_internals import click, decompress_list
from metaflow_hitl.run_starter import (
    ANNOTATIONS_ENV,
    LABELS_ENV,
    argo_starter,
    resubmitted_from,
    started_by_of,
)

__all__ = [
    "argo_origin",
    "check_same_workflow",
    "notify_command",
    "read_input_paths",
]


def read_input_paths(input_paths: str | None, filename: str | None) -> list[str]:
    """The step's input pathspecs, as Metaflow's ``step`` command reads them."""
    text = input_paths
    if not text and filename:
        with open(filename, encoding="utf-8") as fh:
            text = fh.read().strip(" \n\"'")
    return decompress_list(text) if text else []


def _datastores(flow_datastore: Any, paths: list[str]) -> list[Any]:
    out = []
    for path in paths:
        parts = path.split("/")
        if len(parts) not in (3, 4):
            raise ConfigError(f"input path {path!r} is not RUN/STEP/TASK[/ATTEMPT]")
        attempt = int(parts[3]) if len(parts) == 4 else None
        out.append(flow_datastore.get_task_datastore(*parts[:3], attempt=attempt))
    return out


def argo_origin(flow: str, run_id: str, step: str, task_id: str) -> dict[str, str | None]:
    """Where the gate's run lives on Argo: what resumers need to find its suspend node."""
    from metaflow import metaflow_config

    if not run_id.startswith("argo-"):
        raise ConfigError(f"run id {run_id!r} is not an Argo Workflows run id (argo-<workflow>).")
    workflow = run_id[len("argo-") :]
    env_name = os.environ.get("ARGO_WORKFLOW_NAME")
    if env_name and env_name != workflow:
        raise ConfigError(
            f"run id {run_id!r} does not match this pod's workflow {env_name!r}; refusing to "
            "record a gate that could not be resumed."
        )
    namespace = (
        os.environ.get("ARGO_WORKFLOW_NAMESPACE")
        or os.environ.get("METAFLOW_KUBERNETES_POD_NAMESPACE")
        or getattr(metaflow_config, "KUBERNETES_NAMESPACE", None)
    )
    return {
        "task": f"{flow}/{run_id}/{step}/{task_id}",
        "workflow": workflow,
        "namespace": namespace or None,
        "workflow_template": os.environ.get("ARGO_WORKFLOW_TEMPLATE") or None,
        "pod": os.environ.get("METAFLOW_KUBERNETES_POD_NAME") or None,
        "workflow_uid": os.environ.get(WORKFLOW_UID_ENV) or None,
    }


def check_same_workflow(request: Any, where: str) -> None:
    """Refuse a request recorded by another workflow of the same name (a reused name).

    Raises
    ------
    ConfigError
        If this pod's workflow UID and the request's differ (or only one is known).
    """
    mine = os.environ.get(WORKFLOW_UID_ENV) or None
    theirs = request.origin.get("workflow_uid")
    if mine != theirs:
        raise GateBelongsToAnotherWorkflow(
            f"gate {request.gate_id} was opened by workflow {request.origin.get('workflow')!r} "
            f"with UID {theirs!r}, but {where} runs in UID {mine!r}: a workflow of the same name "
            "ran before. Refusing to reuse its request or decision.",
            hint="Submit the workflow under a new name (argo-workflows trigger generates one).",
        )


@click.command(
    name="notify",
    hidden=True,  # internal: the hitl-notify-STEP task of Argo runs it
    help="Run by the hitl-notify-STEP task on Argo: record the gate's request, open its "
    "review and announce it. Takes Metaflow's `step` options.",
)
@click.argument("step_name")
@click.option("--run-id", required=True)
@click.option("--task-id", required=True)
@click.option("--retry-count", default="0")
@click.option("--max-user-code-retries", default="0")
@click.option("--input-paths", default=None)
@click.option("--input-paths-filename", default=None)
@click.option("--split-index", default=None)
@click.option("--ubf-context", default=None)
@click.option("--tag", "tags", multiple=True)
@click.option("--namespace", default=None)
@click.pass_obj
def notify_command(ctx: Any, step_name: str, run_id: str, task_id: str, **options: Any) -> None:
    try:
        _notify(ctx, step_name, run_id, task_id, options)
    except HitlError as exc:
        fail(exc)


def gate_decorator(graph: Any, flow: Any, step_name: str) -> Any:
    """The ``@hitl`` decorator of ``step_name``, or a ConfigError saying what is missing."""
    try:
        node = graph[step_name]
    except (KeyError, TypeError):
        raise ConfigError(f"flow {flow.name} has no step {step_name!r}") from None
    deco = next((d for d in node.decorators if d.name == "hitl"), None)
    if deco is None:
        raise ConfigError(f"step {step_name!r} of flow {flow.name} has no @hitl gate")
    return deco


def _notify(ctx: Any, step_name: str, run_id: str, task_id: str, options: dict[str, Any]) -> None:
    from metaflow_hitl.render.waiting import print_waiting

    obj = ctx.obj
    graph, flow = obj.graph, obj.flow
    deco = gate_decorator(graph, flow, step_name)
    paths = read_input_paths(options.get("input_paths"), options.get("input_paths_filename"))
    inputs = _datastores(obj.flow_datastore, paths)
    gate_id = GateId(flow.name, run_id, step_name)
    existing = ctx.store.get_request(gate_id)
    if existing is not None:
        check_same_workflow(existing, "this notify task")
    message = deco._render(flow, graph, step_name, inputs)
    # METAFLOW_OWNER is who deployed the workflow; the workflow's labels and annotations say
    # who (or what: a CronWorkflow, an event) triggered this run
    deployer = os.environ.get("METAFLOW_OWNER") or None
    starter = argo_starter(
        os.environ.get(LABELS_ENV),
        os.environ.get(ANNOTATIONS_ENV),
        deployer=deployer,
        mapping=getattr(deco, "_identity_map", {}),
    )
    content = content_of(
        inputs, join=graph[step_name].type == "join", flow_file=sys.argv[0], message=message
    )
    notes, links = _resubmit_notes(ctx.store, gate_id, content)
    request, created, refs, _decision = deco.open_request(
        ctx.store,
        gate_id,
        flow=flow,
        graph=graph,
        inputs=inputs,
        runtime="argo-workflows",
        started_by=started_by_of(starter, deployer),
        origin={**argo_origin(flow.name, run_id, step_name, task_id), **notes},
        message=message,
        content=content,
        links=links,
        starter=starter,
    )
    if created:
        print_waiting(request, flow_file=os.path.basename(flow.script_name), review=refs)
    else:
        click.echo(f"[@hitl] Gate {gate_id} was already open (a retried notify task); unchanged.")


def _resubmit_notes(
    store: Any, gate_id: GateId, content: Any
) -> tuple[dict[str, str | None], dict[str, str] | None]:
    """On a resubmitted workflow: what the new gate says about the earlier workflow's gate.

    A resubmit is a new workflow (new name, so a new gate id) with a fresh suspend node; the
    earlier gate's approval never carries over. Other content: the new gate names the earlier
    one and what changed (as a local ``resume`` does, :func:`reuse_origin_gate`). Same content:
    the gate still asks again (the fresh suspend node needs its own resume), and says so.
    """
    earlier = resubmitted_from(os.environ.get(LABELS_ENV))
    if not earlier:
        return {}, None
    reuse = reuse_origin_gate(store, gate_id, f"argo-{earlier}", content)
    if reuse.gate_id == gate_id:
        return dict(reuse.origin), dict(reuse.links) or None
    click.echo(
        f"[@hitl] This workflow was resubmitted from {earlier}, whose gate {reuse.gate_id} "
        "asked about the same content; a resubmitted workflow has its own suspend node, so "
        "this gate asks again."
    )
    return {}, None
