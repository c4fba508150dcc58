"""Who started an Argo Workflows run, from the workflow's labels and annotations.

On Argo the notify task runs in a pod; ``METAFLOW_OWNER`` there is who *deployed* the
WorkflowTemplate (Metaflow's ``argo-workflows create``), not who triggered this run. The
compiled notify container receives the workflow's labels and annotations as JSON (Argo's
global variables ``{{workflow.labels.json}}`` and ``{{workflow.annotations.json}}``, always
set: ``workflow/controller/operator.go`` marshals ``wf.Labels`` / ``wf.Annotations`` in
``setGlobalParameters``, v3.7.18 lines 688-697, v4.1.2 lines 743-752) and
:func:`argo_starter` reads the starter from them, first match wins:

1. ``workflows.argoproj.io/creator-preferred-username``, ``.../creator``,
   ``.../creator-email`` (Argo's ``LabelKeyCreator*``, ``workflow/common/common.go``; set by
   the Argo Server from the request's SSO claims on submit and resubmit,
   ``workflow/creator/creator.go`` ``Label``): ``kind: human``.
2. ``workflows.argoproj.io/resubmitted-from-workflow`` without creator labels: a resubmit
   copies the old workflow's labels and annotations (``workflow/util/util.go``
   ``FormulateResubmitWorkflow``), so they no longer say who started *this* run:
   ``kind: unknown``.
3. ``workflows.argoproj.io/cron-workflow`` (``LabelKeyCronWorkflow``, set on every workflow a
   CronWorkflow starts, ``workflow/common/convert.go`` ``toWorkflow``): ``kind: scheduled``,
   no human starter.
4. Annotation ``metaflow/triggered_by`` (Metaflow's Argo Events sensor puts it on the
   workflows it creates, ``metaflow/plugins/argo/argo_workflows.py``, the sensor's
   ``k8s_trigger`` source): ``kind: event``, no human starter.
5. Annotation ``metaflow/triggered_by_user`` (``python flow.py argo-workflows trigger``,
   ``metaflow/plugins/argo/argo_client.py`` ``trigger_workflow_template``: ``{"type": "user",
   "name": USER}``): ``kind: human``.
6. Otherwise ``kind: unknown``, with ``METAFLOW_OWNER`` recorded as the deployer.

Labels and annotations are as trustworthy as whoever may create Workflow objects: the Argo
Server sets the creator labels from verified claims, but anyone who can create a Workflow
through the Kubernetes API can write any label (as they could set ``METAFLOW_OWNER``).
"""

from __future__ import annotations

import json
from typing import Any

from metaflow_hitl.errors import ConfigError
from metaflow_hitl.identity_map import github_login_for

__all__ = [
    "ANNOTATIONS_ENV",
    "LABELS_ENV",
    "argo_starter",
    "has_human_starter",
    "resubmitted_from",
    "started_by_of",
]

#: The notify container's environment: the workflow's labels / annotations as JSON.
LABELS_ENV = "METAFLOW_HITL_WORKFLOW_LABELS"
ANNOTATIONS_ENV = "METAFLOW_HITL_WORKFLOW_ANNOTATIONS"

_ARGO = "workflows.argoproj.io/"
#: Argo Server's creator labels, most readable first (``LabelKeyCreator*``).
CREATOR_LABELS = (
    _ARGO + "creator-preferred-username",
    _ARGO + "creator",
    _ARGO + "creator-email",
)
RESUBMITTED_LABEL = _ARGO + "resubmitted-from-workflow"
CRON_LABEL = _ARGO + "cron-workflow"
EVENT_ANNOTATION = "metaflow/triggered_by"
TRIGGER_USER_ANNOTATION = "metaflow/triggered_by_user"
_SOURCE_MAX = 200


def _object(value: str | None, what: str) -> dict[str, str]:
    """Parse one of the JSON strings; ``None`` (an older template without it) is empty."""
    if value is None or not value.strip() or value.strip() == "null":
        return {}  # json.Marshal of a nil map is "null"
    try:
        data: Any = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"the workflow's {what} passed to the notify task are not JSON ({exc}); refusing "
            "to guess who started the run."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"the workflow's {what} passed to the notify task are not an object.")
    return {str(k): str(v) for k, v in data.items()}


def _record(
    kind: str, user: str | None, mapping: dict[str, str], source: str
) -> dict[str, str | None]:
    return {
        "kind": kind,
        "metaflow": user or None,
        "github": github_login_for(user, mapping),
        "source": source[:_SOURCE_MAX],
    }


def argo_starter(
    labels_json: str | None,
    annotations_json: str | None,
    *,
    deployer: str | None,
    mapping: dict[str, str],
) -> dict[str, str | None]:
    """The request's ``starter`` for an Argo run (see the module docstring for the rules).

    Parameters
    ----------
    labels_json, annotations_json
        The workflow's labels and annotations as JSON objects (``None`` when the compiled
        template predates them).
    deployer
        ``METAFLOW_OWNER``: who deployed the WorkflowTemplate.
    mapping
        The identity map (Metaflow user or Argo identity -> GitHub login).

    Returns
    -------
    dict
        ``{"kind", "metaflow", "github", "source"}``.

    Raises
    ------
    ConfigError
        If either value is present but not a JSON object.
    """
    labels = _object(labels_json, "labels")
    annotations = _object(annotations_json, "annotations")
    for key in CREATOR_LABELS:
        if labels.get(key):
            return _record("human", labels[key], mapping, f"label {key} (Argo Server)")
    deployed = f"deployed by {deployer}" if deployer else "deployer unknown"
    if labels.get(RESUBMITTED_LABEL):
        return _record(
            "unknown",
            deployer,
            mapping,
            f"resubmitted from {labels[RESUBMITTED_LABEL]} without creator labels; "
            f"METAFLOW_OWNER (the deployer)",
        )
    if labels.get(CRON_LABEL):
        return _record(
            "scheduled", None, mapping, f"label {CRON_LABEL}={labels[CRON_LABEL]}; {deployed}"
        )
    if EVENT_ANNOTATION in annotations:
        return _record(
            "event",
            None,
            mapping,
            f"annotation {EVENT_ANNOTATION}={annotations[EVENT_ANNOTATION]}; {deployed}",
        )
    user = _trigger_user(annotations.get(TRIGGER_USER_ANNOTATION))
    if user:
        return _record(
            "human", user, mapping, f"annotation {TRIGGER_USER_ANNOTATION} (argo-workflows trigger)"
        )
    return _record("unknown", deployer, mapping, "METAFLOW_OWNER (the deployer)")


def _trigger_user(value: str | None) -> str | None:
    """The user of Metaflow's ``metaflow/triggered_by_user`` annotation, when it is a user."""
    if not value:
        return None
    try:
        data: Any = json.loads(value)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("type") != "user":
        return None  # "production" carries a production token, not a person
    name = data.get("name")
    return name if isinstance(name, str) and name and name != "unknown" else None


def has_human_starter(starter: dict[str, Any] | None) -> bool:
    """Whether a request's ``starter`` names a person self-approval rules apply to.

    A scheduled or event-triggered run has no human starter; a request without ``starter``
    (older records) and ``kind: unknown`` keep today's rule: ``started_by`` is the starter.
    """
    return (starter or {}).get("kind") not in ("scheduled", "event")


def started_by_of(starter: dict[str, str | None], deployer: str | None) -> str:
    """The request's ``started_by`` for this starter: the person, else the deployer."""
    if starter.get("kind") == "human" and starter.get("metaflow"):
        return str(starter["metaflow"])
    return deployer or "argo-workflows"


def resubmitted_from(labels_json: str | None) -> str | None:
    """The workflow this one was resubmitted from (Argo's ``resubmitted-from-workflow``
    label, ``LabelKeyPreviousWorkflowName``, set by ``FormulateResubmitWorkflow``), or ``None``.
    """
    return _object(labels_json, "labels").get(RESUBMITTED_LABEL) or None
