"""Gates added to real compiled Argo WorkflowTemplates (``argo-workflows create --only-json``
against a loopback S3), validated against Argo's own JSON schema made strict, and pinned by
golden files (``HITL_REGEN_GOLDEN=1`` rewrites them).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema.validators import validator_for

from metaflow_hitl.argo.inject import ArgoGate, inject_gates
from metaflow_hitl.errors import InjectionError
from metaflow_hitl.plugin.argo_compile import add_gates
from metaflow_hitl.plugin.argo_compile import notify_container as real_notify_container
from tests.fakes.argo_server import SPECS
from tests.integration.argo_pods import compile_flow
from tests.support.golden import check_golden

FLOWS = Path(__file__).parent / "flows"


def hook_notify_container(step: str, container: dict[str, Any]) -> dict[str, Any]:
    return real_notify_container(step, container, settings={})


def same_template(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal but for the random name Metaflow gives the start step's parameter file and the
    deployment time."""

    def norm(t: dict[str, Any]) -> str:
        text = json.dumps(drop_nulls(t), sort_keys=True)
        for token in set(re.findall(r"set_parameters ([a-z]{10}) ", text)):
            text = text.replace(token, "PARAMFILE")
        return re.sub(r'"metaflow/deployment_timestamp": "[^"]*"', "TIMESTAMP", text)

    return norm(a) == norm(b)


def notify_container(step: str, container: dict[str, Any]) -> dict[str, Any]:
    container["args"] = [f"metaflow-hitl notify {step}"]  # the real command comes with the glue
    return container


def strict_schema(version: str) -> Any:
    schema = json.loads((SPECS / version / "schema.json").read_text())
    defs = schema["definitions"]
    for name in (
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
    ):
        if name in defs:  # typed as strings only; Kubernetes takes numbers too
            defs[name] = {"type": ["string", "integer", "number"]}
    for definition in defs.values():
        if definition.get("type") == "object" and "properties" in definition:
            definition.setdefault("additionalProperties", False)
    root = {
        "definitions": defs,
        "$ref": "#/definitions/io.argoproj.workflow.v1alpha1.WorkflowTemplate",
    }
    cls = validator_for(schema)
    return cls(root)


def assert_hera_keeps_the_gates(template: dict[str, Any]) -> None:
    """hera's models (pydantic, generated from Argo's OpenAPI) parse the template, and a round
    trip through them keeps every field the gates wrote: each is a field hera knows, with the
    type it expects (hera ignores unknown fields, so dropping one would show here)."""
    models = pytest.importorskip("hera.workflows.models", reason="hera is in the [dev] extra")
    parsed = models.WorkflowTemplate.model_validate(template)
    back = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")

    def ours(t: dict[str, Any]) -> list[Any]:
        out = []
        for tpl in t["spec"]["templates"]:
            if tpl["name"].startswith("hitl-suspend-"):
                out.append(tpl)
            elif tpl["name"].startswith("hitl-notify-"):
                keys = ("name", "retryStrategy", "activeDeadlineSeconds")
                out.append(
                    {**{k: tpl[k] for k in keys}, "resources": tpl["container"]["resources"]}
                )
            elif "dag" in tpl:
                out.append(tpl["dag"]["tasks"])
        return out

    assert ours(back) == ours(drop_nulls(template))


def drop_nulls(value: Any) -> Any:
    """What the API server stores: ``null`` means unset (the kubernetes client writes every
    unset field of EnvVarSource and friends as null, including ones newer than Argo's schema)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def injected_part(template: dict[str, Any]) -> dict[str, Any]:
    """The part the gates add or change: tasks' edges and the hitl templates."""
    dag = next(
        t for t in template["spec"]["templates"] if t["name"] == template["spec"]["entrypoint"]
    )
    tasks = [
        {
            k: t[k]
            for k in ("name", "template", "depends", "dependencies", "arguments")
            if k in t and (k != "arguments" or t["name"].startswith("hitl-suspend"))
        }
        for t in dag["dag"]["tasks"]
    ]
    hitl = [t for t in template["spec"]["templates"] if t["name"].startswith("hitl-suspend")]
    return {"tasks": tasks, "suspend_templates": hitl}


CASES = [
    ("linear", "deploy_flow.py", [ArgoGate("gate", 3600)]),
    ("branch_join", "join_flow.py", [ArgoGate("pick", 600)]),
    ("two_gates", "two_gates_flow.py", [ArgoGate("start", 3600), ArgoGate("deploy_model", 7200)]),
]


@pytest.mark.parametrize(("name", "flow", "gates"), CASES, ids=[c[0] for c in CASES])
def test_compiled_flows_get_notify_and_suspend_tasks(s3_env, tmp_path, name, flow, gates):
    result = compile_flow(s3_env, tmp_path, flow, gated=True)  # the plugin's own compile hook
    compiled = compile_flow(s3_env, tmp_path, flow)  # Metaflow alone
    # The hook is exactly the injector applied to Metaflow's template (plus the workflow UID
    # bound into the notify tasks and the gated steps).
    expected = add_gates(compiled, list(gates), settings={})
    assert (
        same_template(
            expected, inject_gates(compiled, gates, notify_container=hook_notify_container)
        )
        is False
    )  # the UID binding is the only addition:
    for gate in gates:
        task = gate.step.replace("_", "-")
        step = next(t for t in expected["spec"]["templates"] if t["name"] == task)
        uid = [e for e in step["container"]["env"] if e["name"] == "METAFLOW_HITL_WORKFLOW_UID"]
        assert uid == [{"name": "METAFLOW_HITL_WORKFLOW_UID", "value": "{{workflow.uid}}"}]
    assert same_template(result, expected)
    for version in ("v3.7.18", "v4.1.2"):
        errors = sorted(strict_schema(version).iter_errors(drop_nulls(result)), key=str)
        assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    assert_hera_keeps_the_gates(result)
    dag = next(t for t in result["spec"]["templates"] if t["name"] == result["spec"]["entrypoint"])
    names = [t["name"] for t in dag["dag"]["tasks"]]
    style = "dependencies" if any("dependencies" in t for t in dag["dag"]["tasks"]) else "depends"
    for gate in gates:
        task = gate.step.replace("_", "-")
        assert (
            names.index(f"hitl-notify-{task}")
            < names.index(f"hitl-suspend-{task}")
            < (names.index(task))
        )
        gated = next(t for t in dag["dag"]["tasks"] if t["name"] == task)
        if style == "depends":  # Metaflow 2.17+
            assert f"hitl-suspend-{task}.Succeeded" in gated["depends"]
        else:  # Metaflow before 2.17
            assert f"hitl-suspend-{task}" in gated["dependencies"]
        notify = next(t for t in result["spec"]["templates"] if t["name"] == f"hitl-notify-{task}")
        original = next(t for t in compiled["spec"]["templates"] if t["name"] == task)
        assert notify["container"]["image"] == original["container"]["image"]
        ours = [e for e in notify["container"]["env"] if e["name"].startswith("METAFLOW_HITL_")]
        theirs = [e for e in notify["container"]["env"] if e not in ours]
        assert theirs == original["container"]["env"]  # secrets, code package, identity
        # who started the run (issue 14): Argo's always-set globals, docs/variables.md of
        # v3.7.18 and v4.1.2 ("workflow.labels.json", "workflow.annotations.json"); the
        # notify task reads them with metaflow_hitl.run_starter.argo_starter
        assert ours == [
            {"name": "METAFLOW_HITL_WORKFLOW_UID", "value": "{{workflow.uid}}"},
            {"name": "METAFLOW_HITL_WORKFLOW_LABELS", "value": "{{workflow.labels.json}}"},
            {
                "name": "METAFLOW_HITL_WORKFLOW_ANNOTATIONS",
                "value": "{{workflow.annotations.json}}",
            },
        ]
        assert notify["container"].get("envFrom") == original["container"].get("envFrom")
        assert "outputs" not in notify
        script = notify["container"]["command"][2]
        assert f" hitl notify {gate.step} --run-id argo-{{{{workflow.name}}}} " in script
        assert f" step {gate.step} " not in script
        assert notify["container"]["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
        assert notify["retryStrategy"]["limit"] == 3
    golden = f"argo/{name}.json" if style == "depends" else f"argo/{name}.{style}.json"
    check_golden(golden, json.dumps(injected_part(result), indent=2, sort_keys=True) + "\n")


def test_dependencies_style_is_kept(s3_env, tmp_path):
    """Metaflow before 2.17 writes ``dependencies: [...]``; the gates must use the same style."""
    compiled = compile_flow(s3_env, tmp_path, "join_flow.py")
    legacy = copy.deepcopy(compiled)
    for template in legacy["spec"]["templates"]:
        for task in (template.get("dag") or {}).get("tasks", []):
            depends = task.pop("depends", "")
            if depends:
                task["dependencies"] = [p.split(".")[0].strip("() ") for p in depends.split("&&")]
    result = inject_gates(legacy, [ArgoGate("pick", 600)], notify_container=notify_container)
    dag = result["spec"]["templates"][0]["dag"]["tasks"]
    assert not any("depends" in t for t in dag)
    by_name = {t["name"]: t for t in dag}
    assert by_name["hitl-notify-pick"]["dependencies"] == ["train-a", "train-b"]
    assert by_name["hitl-suspend-pick"]["dependencies"] == ["hitl-notify-pick"]
    assert by_name["pick"]["dependencies"] == ["train-a", "train-b", "hitl-suspend-pick"]


def test_shape_changes_and_timeout_conflicts_fail_loudly(s3_env, tmp_path):
    compiled = compile_flow(s3_env, tmp_path, "deploy_flow.py", "--workflow-timeout", "600")
    with pytest.raises(InjectionError, match="times out after 600s"):
        inject_gates(compiled, [ArgoGate("gate", 3600)], notify_container=notify_container)
    with pytest.raises(InjectionError, match="no task 'nope'"):
        inject_gates(compiled, [ArgoGate("nope", 60)], notify_container=notify_container)
    twice = inject_gates(compiled, [ArgoGate("gate", 60)], notify_container=notify_container)
    with pytest.raises(InjectionError, match="already has a template"):
        inject_gates(twice, [ArgoGate("gate", 60)], notify_container=notify_container)


def test_the_strict_schema_rejects_what_argo_does_not_know(s3_env, tmp_path):
    compiled = compile_flow(s3_env, tmp_path, "deploy_flow.py")
    result = inject_gates(compiled, [ArgoGate("gate", 60)], notify_container=notify_container)
    bad = copy.deepcopy(result)
    suspend = next(t for t in bad["spec"]["templates"] if t["name"] == "hitl-suspend-gate")
    suspend["suspend"]["timeout"] = "60"  # not a SuspendTemplate field
    errors = list(strict_schema("v3.7.18").iter_errors(drop_nulls(bad)))
    assert any("'timeout' was unexpected" in e.message for e in errors)


TIMEOUT = ("--only-json", "--workflow-timeout", "600")


def test_argo_workflows_create_refuses_a_workflow_timeout_shorter_than_a_gate(s3_env, tmp_path):
    shutil.copy(FLOWS / "deploy_flow.py", tmp_path / "deploy_flow.py")
    done = subprocess.run(
        [sys.executable, "deploy_flow.py", "--no-pylint", "argo-workflows", "create", *TIMEOUT],
        cwd=tmp_path,
        env=s3_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert not done.stdout.strip()  # no template printed, gated or not
    assert "@hitl: cannot add gates to the Argo workflow" in done.stderr
    assert "times out after 600s (--workflow-timeout)" in done.stderr


def test_a_gate_inside_a_foreach_is_refused_at_compile_time(s3_env, tmp_path):
    shutil.copy(FLOWS / "config_flow.py", tmp_path / "config_flow.py")
    done = subprocess.run(
        [sys.executable, "config_flow.py", "--no-pylint", "argo-workflows", "create", TIMEOUT[0]],
        cwd=tmp_path,
        env={**s3_env, "HITL_SHAPE": "foreach"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert not done.stdout.strip()
    assert "cannot gate a step inside a foreach" in done.stderr


@pytest.mark.parametrize(
    ("container", "message"),
    [
        ({"command": ["python", "flow.py", "step", "gate"]}, "does not run a `bash -c` script"),
        ({"command": ["bash", "-c", "python flow.py step other --run-id x"]}, "exactly once"),
        (
            {"command": ["bash", "-c", "a step gate --run-id 1 && b step gate --run-id 2"]},
            "exactly once",
        ),
    ],
)
def test_a_step_command_of_another_shape_is_refused(container, message):
    """If Metaflow's container script changes shape, no notify task is guessed at."""
    with pytest.raises(InjectionError, match=message):
        real_notify_container("gate", container, settings={})


def test_the_deployments_trusted_channels_reach_the_notify_and_gated_pods(s3_env, tmp_path):
    """``METAFLOW_HITL_TRUSTED_CHANNELS`` is read in ``step_init`` of the notify task and of
    the gated step, inside their pods, where Metaflow forwards none of an extension's
    settings: without it there a gate would trust every channel its review offers, wider than
    the deployment allows. ``argo-workflows create`` copies it into both containers."""
    env = {**s3_env, "METAFLOW_HITL_TRUSTED_CHANNELS": "github"}
    result = compile_flow(env, tmp_path, "deploy_flow.py", gated=True)
    templates = {t["name"]: t for t in result["spec"]["templates"]}
    for name in ("hitl-notify-gate", "gate"):
        values = {e["name"]: e.get("value") for e in templates[name]["container"]["env"]}
        assert values.get("METAFLOW_HITL_TRUSTED_CHANNELS") == "github", name
    for version in ("v3.7.18", "v4.1.2"):
        assert not list(strict_schema(version).iter_errors(drop_nulls(result)))
    plain = compile_flow(s3_env, tmp_path, "deploy_flow.py", gated=True)
    gate_env = [
        e["name"]
        for e in next(t for t in plain["spec"]["templates"] if t["name"] == "gate")["container"][
            "env"
        ]
    ]
    assert "METAFLOW_HITL_TRUSTED_CHANNELS" not in gate_env  # unset: nothing invented
