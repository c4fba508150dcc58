"""Real Metaflow runs of a gate with ``trusted_channels=["github"]``, in the local and the S3
(moto server) datastore: a decision record written straight into the store -- as anyone who
can write the store can -- is refused by the gated step, and the CLI refuses to decide; a
genuine decision made on GitHub (FakeGitHub, checked against GitHub's OpenAPI description,
recorded by ``metaflow-hitl handle-event``) passes verification and the step runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from metaflow_hitl.errors import EvidenceMissing, UntrustedChannel
from metaflow_hitl.timestamps import utc_now
from tests.fakes import webhooks
from tests.fakes.github import SKIP_REASON, SPEC_FILE, Clock, FakeGitHub

pytestmark = [
    pytest.mark.skipif(not SPEC_FILE.is_file(), reason=SKIP_REASON),
]

REPO = "acme/approvals"
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


@pytest.fixture
def gh():
    with FakeGitHub() as server:
        server.world.clock = Clock(utc_now() - timedelta(minutes=5))
        server.add_org("acme")
        server.add_repo(REPO, files={"README.md": "# approvals\n"})
        server.add_collaborator(REPO, "hitl-bot", "write")
        server.add_collaborator(REPO, "reviewer", "write")
        yield server


def _github_env(gh: FakeGitHub) -> dict[str, str]:
    return {
        "METAFLOW_HITL_REVIEW": f"github:{REPO}",
        "METAFLOW_HITL_GITHUB_API_URL": gh.url,
        "METAFLOW_HITL_GITHUB_TOKEN": gh.token,
    }


def _forge(env: dict[str, str], store: str, gate: str, channel: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORGE, store, gate, channel],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _page(gh: FakeGitHub, proc: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 60
    while not gh.repo(REPO).issues:
        assert time.monotonic() < deadline, "no pull request was opened"
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.05)
    (issue,) = gh.repo(REPO).issues.values()
    return issue.number


@pytest.mark.parametrize(
    ("channel", "headline"),
    [("comment", EvidenceMissing.headline), ("cli", UntrustedChannel.headline)],
)
def test_a_hand_written_decision_is_refused_locally(workspace, gh, channel, headline):
    ws = workspace("trusted_flow.py")
    ws.env.update(_github_env(gh))
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    _page(gh, proc)
    refused = ws.console("approve", gate, "--as", "reviewer")
    assert refused.returncode != 0
    assert "trusts only decisions from github" in refused.stderr + refused.stdout
    _forge(ws.env, str(ws.store), gate, channel)
    code, out = ws.finish(proc)
    assert code != 0, out
    assert headline in out
    assert "GATE BODY RAN" not in out


def test_a_genuine_github_decision_passes_and_the_step_runs(workspace, gh, tmp_path):
    ws = workspace("trusted_flow.py")
    ws.env.update(_github_env(gh))
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    number = _page(gh, proc)
    cid = gh.add_comment(REPO, number, "reviewer", '/approve {"target": "prod"}')
    import requests

    headers = {"Authorization": f"token {gh.token}"}
    base = f"{gh.url}/repos/{REPO}"
    issue = requests.get(f"{base}/issues/{number}", headers=headers, timeout=10).json()
    comment = requests.get(f"{base}/issues/comments/{cid}", headers=headers, timeout=10).json()
    event = tmp_path / "event.json"
    event.write_text(json.dumps(webhooks.comment_payload(REPO, issue, comment)))
    out_file = tmp_path / "github_output"
    out_file.write_text("")
    exe = Path(sys.executable).with_name("metaflow-hitl")
    handled = subprocess.run(
        [str(exe), "handle-event", "--event-name", "issue_comment", "--event-path", str(event)],
        env={**ws.env, "METAFLOW_HITL_STORE": str(ws.store), "GITHUB_OUTPUT": str(out_file)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert handled.returncode == 0, handled.stdout + handled.stderr
    code, out = ws.finish(proc)
    assert code == 0, out
    assert "GATE BODY RAN reviewer comment" in out
    assert gate.split("/")[1] in out


def test_a_hand_written_decision_is_refused_on_s3(s3_env, gh, tmp_path):
    from tests.integration.conftest import FLOWS

    flow = tmp_path / "trusted_flow.py"
    flow.write_text((FLOWS / "trusted_flow.py").read_text())
    env = {**s3_env, **_github_env(gh), "METAFLOW_DEFAULT_METADATA": "local"}
    env["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = str(tmp_path)
    for name in ("METAFLOW_HITL_ACTOR", "METAFLOW_USER"):
        env.pop(name, None)
    store = env["METAFLOW_DATASTORE_SYSROOT_S3"] + "/_hitl"
    proc = subprocess.Popen(
        [sys.executable, str(flow), "--no-pylint", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _page(gh, proc)
        exe = Path(sys.executable).with_name("metaflow-hitl")
        listed = subprocess.run(
            [str(exe), "--store", store, "list", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        (pending,) = json.loads(listed.stdout)
        _forge(env, store, pending["gate_id"], "comment")
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    assert proc.returncode != 0, out
    assert EvidenceMissing.headline in out
    assert "GATE BODY RAN" not in out
