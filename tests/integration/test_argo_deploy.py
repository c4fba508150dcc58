"""``argo-workflows create`` for real (not ``--only-json``) and Metaflow's Deployer API register
a WorkflowTemplate with the gates, on a loopback Kubernetes API that stores what it is sent."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.kube_argo import serve_kube

FLOWS = Path(__file__).parent / "flows"

DEPLOYER = """
import sys
from metaflow import Deployer

deployed = Deployer(sys.argv[1]).argo_workflows().create()
print("DEPLOYED", deployed.name)
"""


def _tasks(template: dict) -> list[str]:
    entry = template["spec"]["entrypoint"]
    dag = next(t for t in template["spec"]["templates"] if t["name"] == entry)
    return [t["name"] for t in dag["dag"]["tasks"]]


@pytest.mark.parametrize("how", ["cli", "deployer"])
def test_the_registered_template_has_the_gates(s3_env, tmp_path, how):
    shutil.copy(FLOWS / "deploy_flow.py", tmp_path / "deploy_flow.py")
    with serve_kube(tmp_path) as (api, kubeconfig):
        env = {**s3_env, "KUBECONFIG": str(kubeconfig)}
        if how == "cli":
            cmd = [sys.executable, "deploy_flow.py", "--no-pylint", "argo-workflows", "create"]
        else:
            cmd = [sys.executable, "-c", DEPLOYER, "deploy_flow.py"]
        done = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert api.problems == []
    templates = [o for (plural, _, _), o in api.objects.items() if plural == "workflowtemplates"]
    assert len(templates) == 1
    assert _tasks(templates[0]) == ["start", "hitl-notify-gate", "hitl-suspend-gate", "gate", "end"]
