"""An approval on Argo means what was asked (issue 14), with the compiled pods run for real.

As in ``test_argo_lifecycle.py``: ``argo-workflows create --only-json`` compiles the flow with
the plugin against a loopback S3 (moto) server, and each pod's container script runs as a
local process (``argo_pods.py``) with what Argo fills in, the workflow's labels and
annotations included (``{{workflow.labels.json}}``, ``{{workflow.annotations.json}}``:
``docs/variables.md`` of Argo v3.7.18 and v4.1.2; ``workflow/controller/operator.go``
``setGlobalParameters`` marshals ``wf.Labels`` / ``wf.Annotations``).

A resubmitted workflow (``argo resubmit``) is a new Workflow object with a new name, so a new
run id (Metaflow's Argo run id is ``argo-{{workflow.name}}``) and a fresh suspend node; Argo
copies the old workflow's labels, drops its creator labels and adds
``workflows.argoproj.io/resubmitted-from-workflow`` (``workflow/util/util.go``
``FormulateResubmitWorkflow``, v3.7.18; the label is ``LabelKeyPreviousWorkflowName`` in
``workflow/common/common.go``). Those are the workflows these tests build.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from metaflow_hitl.errors import EvidenceMissing, UntrustedChannel
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.stores import open_store
from tests.fakes.github import SKIP_REASON, SPEC_FILE, FakeGitHub
from tests.integration.argo_pods import Workflow, compile_flow, pods_supported

pytestmark = [pytest.mark.skipif(bool(pods_supported()), reason=str(pods_supported()))]

STORE = "s3://bucket/metaflow/_hitl"
REPO = "acme/approvals"
ARGO = "workflows.argoproj.io/"
#: Writes a decision record straight into the store, as anyone who can write it can.
FORGE = """
import sys
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.records import Actor, Decision
from metaflow_hitl.stores import open_store
from metaflow_hitl.timestamps import utc_now
store = open_store(sys.argv[1])
request = store.get_request(GateId.parse(sys.argv[2]))
now = utc_now()
url = "https://github.com/acme/approvals/pull/1#issuecomment-424242"
actor = Actor(login="reviewer", channel=sys.argv[3], at=now, evidence_url=url, source="github")
store.create_decision(Decision(gate_id=request.gate_id, outcome="approved", proceed=True,
    decided_by="reviewer", channel=sys.argv[3], deciders=(actor,), decided_at=now,
    request_digest=request.digest(), input={}, evidence_url=url))
"""


def _pod_env(s3_env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in s3_env.items() if not k.startswith("METAFLOW_HITL_")}


def _store(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, s3_env[key])
    monkeypatch.setenv("METAFLOW_S3_ENDPOINT_URL", s3_env["METAFLOW_S3_ENDPOINT_URL"])
    return open_store(STORE)


def _start_and_notify(wf: Workflow, **extra: str) -> str:
    start = wf.run("start")
    assert start.returncode == 0, start.output
    assert start.task_id
    inputs = wf.path("start", start.task_id)
    notify = wf.run("hitl-notify-gate", inputs=inputs, extra_env=extra or None)
    assert notify.returncode == 0, notify.output
    return inputs


def test_a_resubmitted_workflow_asks_again_and_never_carries_the_approval(
    s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Approve in workflow 1; resubmit it with a changed artifact: a new gate asks again,
    names the earlier gate and what changed, and the gated step refuses to run on the old
    approval. The triggerer comes from Argo Server's creator label (``LabelKeyCreator*``,
    ``workflow/creator/creator.go``) on the first run, and is unknown on the resubmit
    (no creator labels; the copied labels are not this run's)."""
    from metaflow_hitl.gates import decide
    from metaflow_hitl.records import Actor
    from metaflow_hitl.timestamps import utc_now

    template = compile_flow(
        {**s3_env, "METAFLOW_HITL_REVIEW": "none"}, tmp_path, "binding_flow.py", gated=True
    )
    pod_env = {**_pod_env(s3_env), "ACCURACY": "0.94"}
    store = _store(s3_env, monkeypatch)
    template_label = {ARGO + "workflow-template": "bindingflow"}

    # Workflow 1, submitted through the Argo Server by carol (SSO): approved by bob, runs.
    first = Workflow(
        template,
        "bindingflow-a1b2c",
        tmp_path / "pods-1",
        env=pod_env,
        uid="6b1f0c2e-0000-4000-8000-0000000000a1",
        labels={**template_label, ARGO + "creator-preferred-username": "carol"},
    )
    inputs = _start_and_notify(first)
    gate1 = GateId("BindingFlow", f"argo-{first.name}", "gate")
    request1 = store.get_request(gate1)
    assert request1 is not None
    assert request1.started_by == "carol"
    assert request1.starter is not None
    assert (request1.starter["kind"], request1.starter["metaflow"]) == ("human", "carol")
    assert "creator-preferred-username" in str(request1.starter["source"])
    decide(
        store,
        gate1,
        actor=Actor(login="bob", channel="cli", at=utc_now(), source="asserted"),
        intent="approve",
        input={},
    )
    ran = first.run("gate", inputs=inputs, retries=1)
    assert ran.returncode == 0, ran.output
    assert f"GATE BODY RAN accuracy 0.94 gate {gate1}" in ran.output

    # Workflow 2: `argo resubmit` of workflow 1; upstream now computes another accuracy.
    resubmitted = {**template_label, ARGO + "resubmitted-from-workflow": first.name}
    second = Workflow(
        template,
        "bindingflow-r9x8z",
        tmp_path / "pods-2",
        env={**pod_env, "ACCURACY": "0.41"},
        uid="6b1f0c2e-0000-4000-8000-0000000000b2",
        labels=resubmitted,
    )
    inputs2 = _start_and_notify(second)
    gate2 = GateId("BindingFlow", f"argo-{second.name}", "gate")
    request2 = store.get_request(gate2)
    assert request2 is not None
    assert request2.message == "Accuracy 41.0%: deploy?"
    assert request2.origin["supersedes"] == str(gate1)
    assert request2.origin["supersedes_outcome"] == "approved"
    assert request2.origin["changed"] == "accuracy, message"
    assert request2.starter is not None
    assert request2.starter["kind"] == "unknown"
    assert store.get_decision(gate2) is None
    refused = second.run("gate", inputs=inputs2, retries=1)
    assert refused.returncode != 0
    assert "resumed without a recorded decision" in refused.output
    assert "GATE BODY RAN" not in refused.output
    decision1 = store.get_decision(gate1)
    assert decision1 is not None
    assert decision1.outcome == "approved"

    # Workflow 3: resubmitted with the same content. Its fresh suspend node needs a resume of
    # its own, so it asks again too (and says the earlier gate asked about the same content).
    third = Workflow(
        template,
        "bindingflow-s7t6u",
        tmp_path / "pods-3",
        env=pod_env,
        uid="6b1f0c2e-0000-4000-8000-0000000000c3",
        labels=resubmitted,
    )
    start = third.run("start")
    assert start.returncode == 0, start.output
    inputs3 = third.path("start", str(start.task_id))
    notify = third.run("hitl-notify-gate", inputs=inputs3)
    assert notify.returncode == 0, notify.output
    assert "asked about the same content" in notify.output
    gate3 = GateId("BindingFlow", f"argo-{third.name}", "gate")
    request3 = store.get_request(gate3)
    assert request3 is not None
    assert request3.content == request1.content
    assert "supersedes" not in request3.origin
    assert store.get_decision(gate3) is None
    held = third.run("gate", inputs=inputs3)
    assert held.returncode != 0
    assert "GATE BODY RAN" not in held.output


@pytest.mark.skipif(not SPEC_FILE.is_file(), reason=SKIP_REASON)
@pytest.mark.parametrize(
    ("channel", "headline"),
    [("comment", EvidenceMissing.headline), ("cli", UntrustedChannel.headline)],
)
def test_a_hand_written_decision_is_refused_by_the_gated_step_on_argo(
    s3_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    channel: str,
    headline: str,
) -> None:
    """``trusted_channels=["github"]``: the CLI refuses to decide, and a decision record
    written straight into S3 (claiming a GitHub comment that does not exist, or the CLI) fails
    the gated step's pod closed with the verification headline; the step's code never runs."""
    with FakeGitHub() as gh:
        gh.add_org("acme")
        gh.add_repo(REPO, files={"README.md": "# approvals\n"})
        gh.add_collaborator(REPO, "hitl-bot", "write")
        gh.add_collaborator(REPO, "reviewer", "write")
        deployer = {
            **s3_env,
            "METAFLOW_HITL_REVIEW": f"github:{REPO}",
            "METAFLOW_HITL_GITHUB_API_URL": gh.url,
        }
        template = compile_flow(deployer, tmp_path, "trusted_flow.py", gated=True)
        secrets = {"METAFLOW_HITL_GITHUB_TOKEN": gh.token}  # a Kubernetes secret's env
        wf = Workflow(
            template,
            f"trustedflow-{channel}",
            tmp_path / "pods",
            env=_pod_env(s3_env),
            labels={ARGO + "cron-workflow": "trustedflow-nightly"},
        )
        inputs = _start_and_notify(wf, **secrets)
        gate = GateId("TrustedFlow", f"argo-{wf.name}", "gate")
        store = _store(s3_env, monkeypatch)
        request = store.get_request(gate)
        assert request is not None
        assert request.trusted_channels == ("github",)
        assert request.starter is not None
        assert request.starter["kind"] == "scheduled"
        assert [i for i in gh.repo(REPO).issues.values() if i.pull is not None]

        cli_env = {**_pod_env(s3_env), "METAFLOW_HITL_STORE": STORE}
        exe = Path(sys.executable).with_name("metaflow-hitl")
        refused = subprocess.run(
            [str(exe), "approve", str(gate), "--as", "reviewer"],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert refused.returncode != 0
        assert "trusts only decisions from github" in refused.stdout + refused.stderr
        shown = subprocess.run(
            [str(exe), "show", str(gate)],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        assert (
            "Starter:     scheduled: started by a schedule, no human starter (label "
            f"{ARGO}cron-workflow=trustedflow-nightly; deployed by "
        ) in shown.stdout
        assert store.get_decision(gate) is None

        forged = subprocess.run(
            [sys.executable, "-c", FORGE, STORE, str(gate), channel],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert forged.returncode == 0, forged.stderr
        step = wf.run("gate", inputs=inputs, retries=1, extra_env=secrets)
        assert step.returncode != 0, step.output
        assert headline in step.output
        assert "GATE BODY RAN" not in step.output
