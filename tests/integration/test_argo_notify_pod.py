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
import shutil
import subprocess
import sys
from typing import Any

import pytest

from metaflow_hitl.argo.inject import (
    ArgoGate,
    InjectionError,
    decision_retry_expression,
    inject_gates,
)
from metaflow_hitl.argo.notify_pod import NotifyPlacement, place_notify_pod
from metaflow_hitl.errors import ConfigError
from tests.integration.argo_pods import compile_flow
from tests.integration.test_argo_inject import FLOWS, drop_nulls, strict_schema
from tests.support.argo_expr import evaluate, substitute


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


def _substituted(expression: str, decision: str) -> bool:
    """Whether Argo retries the gated step after its suspend node output ``decision``
    (:mod:`tests.support.argo_expr`: tag substitution, then the boolean that is left)."""
    return evaluate(expression, {"hitl-decision": decision})


def test_a_rejected_gate_is_final_under_retry(gpu_templates):
    """``@retry`` must not run a rejected step again (each retry reads the same decision).
    The gated template gets the suspend node's ``decision`` and a ``retryStrategy.expression``
    false unless it is ``approved``. Argo evaluates it on the template after argument
    substitution and fails the node "retryStrategy.expression evaluated to false"
    (``workflow/controller/operator.go``: v4.1.2 l.2256 ``ProcessArgs`` then l.2457
    ``processNodeRetries(..., *woc.retryStrategy(processedTmpl), ...)``, expression at
    l.1193-1201; v3.5.0 l.1824/1985 and l.926-935)."""
    gated, _placed, _plain = gpu_templates
    step = _template(gated, "train")
    assert {"name": "hitl-decision"} in step["inputs"]["parameters"]
    dag = _template(gated, gated["spec"]["entrypoint"])
    task = next(t for t in dag["dag"]["tasks"] if t["name"] == "train")
    assert {
        "name": "hitl-decision",
        "value": "{{tasks.hitl-suspend-train.outputs.parameters.decision}}",
    } in task["arguments"]["parameters"]
    expression = step["retryStrategy"]["expression"]
    assert _substituted(expression, "approved") is True
    for final in ("rejected", "timed_out", "timeout"):  # on_timeout="reject": all final
        assert _substituted(expression, final) is False
    approve_on_timeout = decision_retry_expression("approve")
    assert _substituted(approve_on_timeout, "timeout") is True
    assert _substituted(approve_on_timeout, "timed_out") is True
    assert _substituted(approve_on_timeout, "rejected") is False


HOSTILE_DECISIONS = [
    "approved' || true || 'x",  # closes the old '...' literal and makes it true
    "x' == 'x' || 'approved",
    "'",  # a lone quote: the old expression did not even compile
    '" || true || "',
    "approved\\' || true || '",
    "`approved`",
    "{{workflow.name}}",
    "{{=true}}",
    "approved\n",
    " approved",
    "APPROVED",
]


@pytest.mark.parametrize("decision", HOSTILE_DECISIONS)
def test_a_hostile_decision_output_cannot_rewrite_the_retry_expression(gpu_templates, decision):
    """The suspend node's ``decision`` output is set by our resumers, but anyone allowed to
    update the Workflow can set it to any text (``argo node set --output-parameter``, the UI).
    Pasted into a quoted literal, as a simple tag is (``strconv.Quote`` escapes for JSON only:
    ``util/template/simple_template.go`` v4.1.2 l.72), a quote rewrote the expression; compared
    inside one expression tag (``{{=...}}``, evaluated with the value as a variable:
    ``expression_template.go`` v4.1.2 l.205-279), it cannot: nothing of the value is left in
    what ``processNodeRetries`` evaluates, and only the exact word ``approved`` retries. The
    compiled template is valid for Argo's schema (v3.7.18 and v4.1.2, strict)."""
    gated, _placed, _plain = gpu_templates
    for version in ("v3.7.18", "v4.1.2"):
        problems = [e.message for e in strict_schema(version).iter_errors(drop_nulls(gated))]
        assert problems == [], (version, problems[:3])
    expression = _template(gated, "train")["retryStrategy"]["expression"]
    assert "{{inputs." not in expression  # no simple tag: nothing is pasted in as text
    left = substitute(expression, {"hitl-decision": decision})
    assert left in ("true", "false"), left
    assert _substituted(expression, decision) is False
    assert _substituted(decision_retry_expression("approve"), decision) is False


def test_timeout_shorter_than_the_gate_is_allowed_on_argo(gpu_templates, s3_env, tmp_path):
    """On Argo the wait is a suspend node with no pod, so ``@timeout(minutes=30)`` bounds the
    step's pod only (its ``activeDeadlineSeconds``) and a 1h gate compiles; a local run, whose
    task waits inside the step, is still refused before any task starts."""
    gated, _placed, _plain = gpu_templates
    assert _template(gated, "train")["activeDeadlineSeconds"] == 1800
    assert _template(gated, "hitl-suspend-train")["suspend"]["duration"] == "3600"
    shutil.copy(FLOWS / "timeout_flow.py", tmp_path / "timeout_flow.py")
    local = {
        **s3_env,
        "METAFLOW_DEFAULT_DATASTORE": "local",
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "timeout_flow.py", "--no-pylint", "run"],
        cwd=tmp_path,
        env=local,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "@timeout allows the task 300s but the gate waits up to 3600s" in done.stderr
    (tmp_path / "argo").mkdir()
    compiled = compile_flow(s3_env, tmp_path / "argo", "timeout_flow.py", gated=True)
    assert _template(compiled, "hitl-suspend-start")["suspend"]["duration"] == "3600"


def test_a_recursive_step_is_refused_by_name():
    """Metaflow compiles a recursive step ``S`` as a ``steps`` template ``S`` running
    ``recursive-S`` then itself again (``metaflow/plugins/argo/argo_workflows.py``, "The way
    that recursion in Argo Workflows is achieved"); a gate there is refused saying so."""
    template = {
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "dag": {"tasks": [{"name": "loop", "template": "loop"}]}},
                {
                    "name": "loop",
                    "steps": [
                        [{"name": "loop-internal", "template": "recursive-loop"}],
                        [{"name": "loop-recursion", "template": "loop", "when": "x==loop"}],
                    ],
                },
                {"name": "recursive-loop", "container": {"command": ["bash", "-c", "x"]}},
            ],
        }
    }
    with pytest.raises(InjectionError, match="cannot gate the recursive step 'loop'"):
        inject_gates(template, [ArgoGate("loop", 60)], notify_container=lambda s, c: c)
