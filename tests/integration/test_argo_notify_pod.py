"""The notify pod of a gated GPU step: compiled by ``argo-workflows create --only-json`` for a
step with ``@kubernetes(gpu, node_selector, tolerations, persistent_volume_claims,
image_pull_secrets)`` and ``@retry``, checked field by field and against Argo's strict schema.

Where Metaflow writes these fields: ``metaflow/plugins/argo/argo_workflows.py``
(``Template.node_selectors``, ``.tolerations``, ``.pvc_volumes``, ``.pod_spec_patch`` carrying
``imagePullSecrets`` "due to Argo not supporting this on a template level", the container's
``resources.limits`` ``<vendor>.com/gpu``, and ``.retry_strategy``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from metaflow_hitl.argo.notify_pod import NotifyPlacement, place_notify_pod
from metaflow_hitl.errors import ConfigError
from tests.integration.argo_pods import compile_flow
from tests.integration.test_argo_inject import drop_nulls, strict_schema

pytestmark = pytest.mark.integration


def _template(compiled: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in compiled["spec"]["templates"] if t["name"] == name)


@pytest.fixture(scope="module")
def gpu_templates(s3_env, tmp_path_factory):
    """The GPU flow compiled three ways: gated by default, gated with notify placement
    settings, and by Metaflow alone."""
    root = tmp_path_factory.mktemp("gpu")
    placed_env = {
        **s3_env,
        "METAFLOW_HITL_NOTIFY_IMAGE": "registry.example.com/hitl-notify:1",
        "METAFLOW_HITL_NOTIFY_NODE_SELECTOR": "pool=system,kubernetes.io/os=linux",
        "METAFLOW_HITL_NOTIFY_TOLERATIONS": json.dumps(
            [{"key": "dedicated", "operator": "Equal", "value": "system", "effect": "NoSchedule"}]
        ),
    }
    (root / "a").mkdir()
    (root / "b").mkdir()
    (root / "c").mkdir()
    return (
        compile_flow(s3_env, root / "a", "gpu_flow.py", gated=True),
        compile_flow(placed_env, root / "b", "gpu_flow.py", gated=True),
        compile_flow(s3_env, root / "c", "gpu_flow.py"),
    )


def test_the_notify_pod_does_not_inherit_the_gpu_steps_placement(gpu_templates):
    """GKE (and the ExtendedResourceToleration admission plugin) add the ``nvidia.com/gpu``
    toleration only to pods that request a GPU; a notify pod with the step's GPU node selector
    and no GPU request would never schedule. It keeps identity, secrets and pull secrets."""
    gated, _placed, plain = gpu_templates
    step = _template(plain, "train")
    # What Metaflow compiled for the step (the test flow is what we think it is).
    assert step["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert step["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert {"name": "training-cache", "persistentVolumeClaim": {"claimName": "training-cache"}} in (
        step["volumes"]
    )
    assert step["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert json.loads(step["podSpecPatch"]) == {"imagePullSecrets": [{"name": "regcred"}]}
    assert step["retryStrategy"]["limit"] == 2

    notify = _template(gated, "hitl-notify-train")
    assert "nodeSelector" not in notify
    assert "tolerations" not in notify
    assert "affinity" not in notify
    assert all("persistentVolumeClaim" not in v for v in notify.get("volumes") or [])
    mounts = [m["name"] for m in notify["container"].get("volumeMounts") or []]
    assert "training-cache" not in mounts
    assert "out" in mounts  # Metaflow's task-id emptyDir stays: the notify task writes it
    assert "nvidia.com/gpu" not in json.dumps(notify["container"]["resources"])
    assert json.loads(notify["podSpecPatch"]) == {"imagePullSecrets": [{"name": "regcred"}]}
    assert notify["serviceAccountName"] == step["serviceAccountName"]
    assert notify["container"]["image"] == step["container"]["image"]
    assert notify.get("metadata") == step.get("metadata")
    # The notify task keeps its own retries; the gated step keeps @retry's count.
    assert notify["retryStrategy"]["limit"] == 3
    assert _template(gated, "train")["retryStrategy"]["limit"] == 2
    # ...and the gated step itself keeps every bit of its placement.
    gated_step = _template(gated, "train")
    for key in ("nodeSelector", "tolerations", "volumes", "podSpecPatch"):
        assert gated_step[key] == step[key]
    for version in ("v3.7.18", "v4.1.2"):
        errors = sorted(strict_schema(version).iter_errors(drop_nulls(gated)), key=str)
        assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_settings_place_the_notify_pod(gpu_templates):
    """``METAFLOW_HITL_NOTIFY_IMAGE``, ``..._NODE_SELECTOR`` and ``..._TOLERATIONS`` on the
    deploying machine place every notify pod; flow code cannot."""
    _gated, placed, _plain = gpu_templates
    notify = _template(placed, "hitl-notify-train")
    assert notify["container"]["image"] == "registry.example.com/hitl-notify:1"
    assert notify["nodeSelector"] == {"pool": "system", "kubernetes.io/os": "linux"}
    assert notify["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "system", "effect": "NoSchedule"}
    ]
    for version in ("v3.7.18", "v4.1.2"):
        errors = sorted(strict_schema(version).iter_errors(drop_nulls(placed)), key=str)
        assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"METAFLOW_HITL_NOTIFY_NODE_SELECTOR": "pool"}, "not key=value"),
        ({"METAFLOW_HITL_NOTIFY_NODE_SELECTOR": '{"a": 1}'}, "strings to strings"),
        ({"METAFLOW_HITL_NOTIFY_TOLERATIONS": "[{"}, "not valid JSON"),
        ({"METAFLOW_HITL_NOTIFY_TOLERATIONS": '[{"keyy": "x"}]'}, "unknown toleration keys"),
    ],
)
def test_bad_placement_settings_are_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        NotifyPlacement.from_env(env)


def test_a_pod_spec_patch_that_is_not_an_object_is_refused():
    with pytest.raises(ConfigError, match="not a JSON object"):
        place_notify_pod({"name": "n", "podSpecPatch": "[1]", "container": {}}, NotifyPlacement())
