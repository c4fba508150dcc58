"""A real local run with review="github:...": the gate opens a PR, the CLI decision merges it.

GitHub is FakeGitHub (tests/fakes), which validates every request and answer against GitHub's
OpenAPI description and fails on any request it does not expect.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from metaflow_hitl.timestamps import utc_now
from tests.fakes.github import SKIP_REASON, SPEC_FILE, Clock, FakeGitHub

pytestmark = [
    pytest.mark.skipif(not SPEC_FILE.is_file(), reason=SKIP_REASON),
]

REPO = "acme/approvals"


@pytest.fixture
def gh():
    with FakeGitHub() as server:
        server.world.clock = Clock(utc_now() - timedelta(minutes=5))
        server.add_org("acme")
        server.add_repo(REPO, files={"README.md": "# approvals\n"})
        server.add_collaborator(REPO, "hitl-bot", "write")
        server.add_collaborator(REPO, "reviewer", "write")
        yield server


@pytest.mark.parametrize("mode", ["pr", "issue"])
def test_gate_opens_on_github_and_the_cli_decision_closes_it(workspace, gh, mode):
    ws = workspace("deploy_flow.py")
    ws.env.update(
        METAFLOW_HITL_REVIEW=f"github:{REPO}?mode={mode}",
        METAFLOW_HITL_GITHUB_API_URL=gh.url,
        METAFLOW_HITL_GITHUB_TOKEN=gh.token,
    )
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    deadline = time.monotonic() + 60
    while not gh.repo(REPO).issues:  # the request is stored first, then the review opens
        assert time.monotonic() < deadline, "no pull request or issue was opened"
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.05)
    (issue,) = gh.repo(REPO).issues.values()
    assert (issue.pull is not None) is (mode == "pr")
    assert gate in issue.title
    assert "metaflow-hitl:v1" in (issue.body or "")

    ok = ws.console("approve", gate, "--as", "reviewer", "--input", '{"deploy_target": "gh"}')
    assert ok.returncode == 0, ok.stderr
    code, out = ws.finish(proc)
    assert code == 0, out
    assert "END target gh outcome approved" in out
    assert gh.token not in out + ok.stdout + ok.stderr  # no secrets in logs

    issue = gh.issue(REPO, issue.number)
    assert issue.state == "closed"
    if mode == "pr":
        assert issue.pull.merged
    flow, run_id, step = gate.split("/")
    record = gh.file(REPO, f"decisions/{flow}/{run_id}/{step}.json")
    assert record is not None
    assert json.loads(record)["decided_by"] == "reviewer"
    comments = [c for c in gh.repo(REPO).comments if c.issue_number == issue.number]
    assert len(comments) == 1  # one reply summarising the decision
    audit = ws.console("audit", "--json")
    assert audit.returncode == 0, audit.stderr
    assert [(r["gate_id"], r["outcome"]) for r in json.loads(audit.stdout)] == [(gate, "approved")]
