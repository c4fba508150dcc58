"""The whole life of a gate on Argo Workflows, every step for real except Kubernetes itself.

``argo-workflows create --only-json`` compiles the flow with the plugin against a loopback S3
(moto) server; each pod's container script from that template runs as a local process (code
package downloaded from S3, as in a pod: see ``argo_pods.py``); the review PR is opened on the
OpenAPI-validated GitHub test server; the decision comes from ``metaflow-hitl handle-event``
on a real webhook payload; the resume call goes to the swagger-checked Argo Server test
server; then the gated step's pod runs and proceeds with the approved input.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.render.documents import approval_path
from metaflow_hitl.stores import open_store
from tests.fakes import webhooks
from tests.fakes.argo_server import TOKEN as ARGO_TOKEN
from tests.fakes.argo_server import (
    FakeArgoServer,
    load_swagger,
    make_workflow,
    nodes_of,
    serve,
    suspend_node,
)
from tests.fakes.github import SKIP_REASON, SPEC_FILE, FakeGitHub
from tests.integration.argo_pods import Workflow, compile_flow, pods_supported

pytestmark = [
    pytest.mark.skipif(not SPEC_FILE.is_file(), reason=SKIP_REASON),
    pytest.mark.skipif(bool(pods_supported()), reason=str(pods_supported())),
]

FLOWS = Path(__file__).parent / "flows"
REPO = "acme/approvals"
NAMESPACE = "default"  # Metaflow's default Kubernetes namespace, fixed at compile time
STORE = "s3://bucket/metaflow/_hitl"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        gh.add_org("acme")
        gh.add_repo(REPO, files={"README.md": "# approvals\n"})
        gh.add_collaborator(REPO, "hitl-bot", "write")
        gh.add_collaborator(REPO, "bob", "write")
        gh.add_user("mallory")
        yield gh


def handle_comment(
    gh: FakeGitHub, tmp: Path, env: dict[str, str], number: int, login: str, body: str
) -> subprocess.CompletedProcess[str]:
    """A comment made on GitHub, delivered to ``metaflow-hitl handle-event`` as the Action does."""
    headers = {"Authorization": f"token {gh.token}"}
    cid = gh.add_comment(REPO, number, login, body)
    api = f"{gh.url}/repos/{REPO}"
    comments = requests.get(f"{api}/issues/{number}/comments", headers=headers, timeout=10)
    comment = next(c for c in comments.json() if c["id"] == cid)
    issue = requests.get(f"{api}/issues/{number}", headers=headers, timeout=10).json()
    path = tmp / f"event-{cid}.json"
    path.write_text(json.dumps(webhooks.comment_payload(REPO, issue, comment)))
    out = tmp / f"output-{cid}"
    out.write_text("")
    child = {
        **env,
        "GITHUB_EVENT_NAME": "issue_comment",
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_OUTPUT": str(out),
    }
    script = Path(sys.executable).parent / "metaflow-hitl"
    return subprocess.run(
        [str(script), "handle-event"], env=child, capture_output=True, text=True, timeout=120
    )


FLOW_CMD = (sys.executable, "deploy_flow.py", "--quiet", "--no-pylint", "--datastore=s3")


def dump_artifacts(env: dict[str, str], cwd: Path, pathspec: str) -> str:
    done = subprocess.run(
        [*FLOW_CMD, "dump", pathspec, "--max-value-size", "100000"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_compile_notify_decide_resume_and_run_the_gated_step(
    s3_env: dict[str, str], tmp_path: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    gh = github
    deployer = {
        **s3_env,
        "METAFLOW_HITL_REVIEW": f"github:{REPO}",
        "METAFLOW_HITL_GITHUB_API_URL": gh.url,
        "METAFLOW_HITL_GITHUB_TOKEN": gh.token,  # the deployer's own token...
    }
    template = compile_flow(deployer, tmp_path, "deploy_flow.py", gated=True)
    assert gh.token not in json.dumps(template)  # ...is never baked into the template
    notify_env = {
        e["name"]: e.get("value")
        for t in template["spec"]["templates"]
        if t["name"] == "hitl-notify-gate"
        for e in t["container"]["env"]
    }
    assert notify_env["METAFLOW_HITL_REVIEW"] == f"github:{REPO}"  # forwarded setting
    assert notify_env["METAFLOW_HITL_WORKFLOW_UID"] == "{{workflow.uid}}"
    gate_env = {
        e["name"]: e.get("value")
        for t in template["spec"]["templates"]
        if t["name"] == "gate"
        for e in t["container"]["env"]
    }
    assert gate_env["METAFLOW_HITL_WORKFLOW_UID"] == "{{workflow.uid}}"

    secrets = {"METAFLOW_HITL_GITHUB_TOKEN": gh.token}  # what a Kubernetes secret would give
    pod_env = {k: v for k, v in s3_env.items() if not k.startswith("METAFLOW_HITL_")}
    wf = Workflow(template, "deployflow-x7k2p", tmp_path / "pods", env=pod_env)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, s3_env[key])
    monkeypatch.setenv("METAFLOW_S3_ENDPOINT_URL", s3_env["METAFLOW_S3_ENDPOINT_URL"])
    store = open_store(STORE)
    gate_id = GateId("DeployFlow", f"argo-{wf.name}", "gate")

    # 1. start, then the notify pod: request recorded, PR opened, exits.
    start = wf.run("start")
    assert start.returncode == 0, start.output
    assert start.task_id
    inputs = wf.path("start", start.task_id)
    notify = wf.run("hitl-notify-gate", inputs=inputs, extra_env=secrets)
    assert notify.returncode == 0, notify.output
    assert "Gate DeployFlow/argo-deployflow-x7k2p/gate is waiting for approval." in notify.stdout
    request = store.get_request(gate_id)
    assert request is not None
    assert request.message == "Accuracy 94.3%: deploy?"
    assert request.runtime == "argo-workflows"
    assert request.origin["workflow"] == wf.name
    assert request.origin["namespace"] == NAMESPACE
    assert request.started_by == "alice"  # the deployer (METAFLOW_OWNER)
    pulls = [i for i in gh.repo(REPO).issues.values() if i.pull is not None]
    assert len(pulls) == 1
    number, head = pulls[0].number, pulls[0].pull.head_ref  # type: ignore[union-attr]
    approval_file = gh.file(REPO, approval_path(gate_id), head) or b""
    assert request.message in approval_file.decode()

    # A retried notify pod changes nothing and notifies nobody again.
    writes = gh.count(writes_only=True)
    again = wf.run("hitl-notify-gate", inputs=inputs, retries=1, extra_env=secrets)
    assert again.returncode == 0, again.output
    assert "already open" in again.stdout
    assert gh.count(writes_only=True) == writes
    assert store.get_request(gate_id) == request

    # 2. Someone presses Resume in the Argo UI before any decision: the step refuses to run.
    early = wf.run("gate", inputs=inputs, extra_env=secrets)
    assert early.returncode != 0
    assert "resumed without a recorded decision" in early.output
    assert "GATE BODY RAN" not in early.output
    assert store.get_decision(gate_id) is None

    # 3. A non-collaborator's approval is refused; bob's approval decides and resumes.
    argo = FakeArgoServer(load_swagger())
    argo.workflows[(NAMESPACE, wf.name)] = make_workflow(
        suspend_node("n-gate", "gate", workflow=wf.name), name=wf.name, namespace=NAMESPACE
    )
    with serve(argo) as argo_url:
        action_env = {
            **pod_env,
            "METAFLOW_HITL_STORE": STORE,
            "METAFLOW_HITL_GITHUB_TOKEN": gh.token,
            "METAFLOW_HITL_GITHUB_API_URL": gh.url,
            "METAFLOW_HITL_ARGO_SERVER": argo_url,
            "METAFLOW_HITL_ARGO_TOKEN": ARGO_TOKEN,
        }
        refused = handle_comment(gh, tmp_path, action_env, number, "mallory", "/approve")
        assert refused.returncode == 0, refused.stderr
        assert store.get_decision(gate_id) is None
        assert argo.writes == []
        approve = '/approve {"deploy_target": "staging", "replicas": 2}'
        done = handle_comment(gh, tmp_path, action_env, number, "bob", approve)
        assert done.returncode == 0, done.stderr
        for secret in (gh.token, ARGO_TOKEN):
            assert secret not in done.stdout + done.stderr
    decision = store.get_decision(gate_id)
    assert decision is not None
    assert (decision.outcome, decision.decided_by) == ("approved", "bob")
    assert len(argo.writes) == 1  # exactly one resume
    node = nodes_of(argo.workflows[(NAMESPACE, wf.name)])["n-gate"]
    assert node["phase"] == "Succeeded"
    assert node["outputs"]["parameters"][0]["value"] == "approved"
    assert argo.problems == []

    # 4. The gated step's pod (Argo retries the failed attempt) proceeds with the input.
    gate = wf.run("gate", inputs=inputs, retries=1, extra_env=secrets)
    assert gate.returncode == 0, gate.output
    assert "GATE BODY RAN attempt 1" in gate.output
    assert gate.task_id
    end = wf.run("end", inputs=wf.path("gate", gate.task_id))
    assert end.returncode == 0, end.output
    assert "END target staging outcome approved" in end.output
    dumped = dump_artifacts(pod_env, tmp_path, f"argo-{wf.name}/gate/{gate.task_id}")
    assert "'deploy_target': 'staging'" in dumped
    assert "'decided_by': 'bob'" in dumped
    gh.assert_clean()

    # 5. The workflow is deleted and a new one is submitted under the same name: its gate id is
    #    the same, but the recorded approval belongs to the old workflow (another UID).
    reused = Workflow(
        template, wf.name, tmp_path / "pods-reused", env=pod_env, uid="6b1f0c2e-reused"
    )
    stale = reused.run("hitl-notify-gate", inputs=inputs, extra_env=secrets)
    assert stale.returncode != 0
    assert "@hitl: gate belongs to another workflow" in stale.output
    resumed = reused.run("gate", inputs=inputs, retries=1, extra_env=secrets)
    assert resumed.returncode != 0
    assert "gate belongs to another workflow" in resumed.output
    assert "GATE BODY RAN" not in resumed.output


def test_a_gate_left_undecided_times_out_on_argo(
    s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suspend's duration ran out: the step records the expiry and applies on_timeout."""
    env = {**s3_env, "GATE_TIMEOUT": "2s", "METAFLOW_HITL_REVIEW": "none"}
    template = compile_flow(env, tmp_path, "deploy_flow.py", gated=True)
    suspend = next(t for t in template["spec"]["templates"] if t["name"] == "hitl-suspend-gate")
    assert suspend["suspend"]["duration"] == "2"
    wf = Workflow(template, "deployflow-t1m30", tmp_path / "pods", env=env)
    start = wf.run("start")
    assert start.returncode == 0, start.output
    inputs = wf.path("start", str(start.task_id))
    assert wf.run("hitl-notify-gate", inputs=inputs).returncode == 0
    time.sleep(2.2)  # the suspend node's duration
    gate = wf.run("gate", inputs=inputs)
    assert gate.returncode != 0
    assert "gate timed out, rejected" in gate.output
    assert "GATE BODY RAN" not in gate.output
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, s3_env[key])
    monkeypatch.setenv("METAFLOW_S3_ENDPOINT_URL", s3_env["METAFLOW_S3_ENDPOINT_URL"])
    decision = open_store(STORE).get_decision(GateId("DeployFlow", f"argo-{wf.name}", "gate"))
    assert decision is not None
    assert (decision.outcome, decision.decided_by) == ("timed_out", "timeout")
