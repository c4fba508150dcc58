"""Where the ``hitl-notify-S`` pod runs: not where the gated step runs.

The notify template starts as a copy of the gated step's (same image, environment, secrets,
service account, code package, image pull secrets), but a notify pod renders a message and
calls a few APIs for seconds. Copying the step's *placement* breaks real clusters:

* GPU nodes are commonly tainted ``nvidia.com/gpu:NoSchedule`` and the matching toleration is
  added only to pods that request a GPU (GKE, and Kubernetes' ExtendedResourceToleration
  admission plugin). The notify pod asks for no GPU, so a copied GPU ``nodeSelector`` makes it
  unschedulable, and the workflow fails before the gate opens;
* a ``ReadWriteOnce`` PersistentVolumeClaim mounted by another pod gives Multi-Attach errors;
* at best a GPU node scales up for a seven-second task.

So by default :func:`place_notify_pod` removes the ``nodeSelector``, ``affinity``,
``tolerations``, PersistentVolumeClaim volumes and their mounts, and keeps only the
``imagePullSecrets`` of a ``podSpecPatch`` (Metaflow writes nothing else there: see
``metaflow/plugins/argo/argo_workflows.py``, ``Template.pod_spec_patch``). Settings on the
deploying machine, never flow code, can place it (:class:`NotifyPlacement`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from metaflow_hitl.errors import ConfigError

__all__ = ["PLACEMENT_SETTINGS", "NotifyPlacement", "place_notify_pod"]

#: The settings :meth:`NotifyPlacement.from_env` reads (environment or Metaflow profile).
PLACEMENT_SETTINGS = (
    "METAFLOW_HITL_NOTIFY_IMAGE",
    "METAFLOW_HITL_NOTIFY_NODE_SELECTOR",
    "METAFLOW_HITL_NOTIFY_TOLERATIONS",
)
_POD_PATCH_KEPT = ("imagePullSecrets",)
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}


@dataclass(frozen=True)
class NotifyPlacement:
    """Placement of the notify pods of a deployment.

    Parameters
    ----------
    image
        The notify container's image (default: the gated step's). It must hold Python,
        Metaflow and metaflow-hitl's dependencies, like the step's.
    node_selector
        The notify pod's ``nodeSelector`` (default: none).
    tolerations
        The notify pod's ``tolerations`` (default: none).
    """

    image: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NotifyPlacement:
        """Read ``METAFLOW_HITL_NOTIFY_IMAGE``, ``..._NODE_SELECTOR`` (``k=v,k=v`` or a JSON
        object) and ``..._TOLERATIONS`` (a JSON list of Kubernetes tolerations).

        Raises
        ------
        ConfigError
            A malformed value: nothing is guessed.
        """
        image = (env.get("METAFLOW_HITL_NOTIFY_IMAGE") or "").strip() or None
        return cls(
            image=image,
            node_selector=_node_selector(env.get("METAFLOW_HITL_NOTIFY_NODE_SELECTOR") or ""),
            tolerations=_tolerations(env.get("METAFLOW_HITL_NOTIFY_TOLERATIONS") or ""),
        )


def _node_selector(text: str) -> dict[str, str]:
    text = text.strip()
    if not text:
        return {}
    hint = "Write it as key=value,key=value or a JSON object of strings."
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ConfigError(
                f"METAFLOW_HITL_NOTIFY_NODE_SELECTOR is not valid JSON ({exc}).", hint=hint
            ) from None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(
                "METAFLOW_HITL_NOTIFY_NODE_SELECTOR must map strings to strings.", hint=hint
            )
        return dict(value)
    out = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"METAFLOW_HITL_NOTIFY_NODE_SELECTOR has {part.strip()!r}, not key=value.",
                hint=hint,
            )
        out[key.strip()] = value.strip()
    return out


def _tolerations(text: str) -> list[dict[str, Any]]:
    text = text.strip()
    if not text:
        return []
    hint = 'Write a JSON list, e.g. [{"key": "dedicated", "operator": "Exists"}].'
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"METAFLOW_HITL_NOTIFY_TOLERATIONS is not valid JSON ({exc}).", hint=hint
        ) from None
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ConfigError("METAFLOW_HITL_NOTIFY_TOLERATIONS must be a JSON list.", hint=hint)
    for toleration in value:
        unknown = set(toleration) - _TOLERATION_KEYS
        if unknown:
            raise ConfigError(
                f"METAFLOW_HITL_NOTIFY_TOLERATIONS has unknown toleration keys {sorted(unknown)}.",
                hint=hint,
            )
    return [dict(t) for t in value]


def place_notify_pod(template: dict[str, Any], placement: NotifyPlacement) -> None:
    """Give the notify ``template`` (a copy of the step's) its own placement, in place.

    Raises
    ------
    ConfigError
        The step's ``podSpecPatch`` is not a JSON object (it cannot be narrowed safely).
    """
    for key in ("nodeSelector", "affinity", "tolerations"):
        template.pop(key, None)
    claims = {
        v.get("name")
        for v in template.get("volumes") or []
        if isinstance(v, dict) and "persistentVolumeClaim" in v
    }
    if "volumes" in template:
        kept = [v for v in template["volumes"] or [] if v.get("name") not in claims]
        if kept:
            template["volumes"] = kept
        else:
            template.pop("volumes")
    container = template.get("container") or {}
    if "volumeMounts" in container:
        mounts = [m for m in container["volumeMounts"] or [] if m.get("name") not in claims]
        if mounts:
            container["volumeMounts"] = mounts
        else:
            container.pop("volumeMounts")
    patch = template.pop("podSpecPatch", None)
    if patch:
        try:
            parsed = json.loads(patch) if isinstance(patch, str) else patch
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ConfigError(
                f"the podSpecPatch of template {template.get('name')!r} is not a JSON object; "
                "the notify pod cannot keep only its image pull secrets."
            )
        narrowed = {k: parsed[k] for k in _POD_PATCH_KEPT if k in parsed}
        if narrowed:
            template["podSpecPatch"] = json.dumps(narrowed)
    if placement.node_selector:
        template["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        template["tolerations"] = [dict(t) for t in placement.tolerations]
    if placement.image:
        container["image"] = placement.image
