"""The local review repo: approval files, decision commits, audit against the store."""

from __future__ import annotations

import json
import subprocess
import time

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import decide
from metaflow_hitl.records import Actor
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now
from tests.support.git import git


def test_gate_opens_a_branch_and_the_decision_is_a_commit_by_the_decider(workspace):
    ws = workspace("deploy_flow.py")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    flow, run_id, step = gate.split("/")
    repo = ws.store / "review.git"
    branch = f"hitl/{flow}/{run_id}/{step}"
    deadline = time.monotonic() + 30
    while True:  # the request is stored first, then the review branch is pushed
        shown = subprocess.run(
            [
                "git",
                "--git-dir",
                str(repo),
                "show",
                f"{branch}:approvals/{flow}/{run_id}/{step}.md",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode == 0:
            break
        assert time.monotonic() < deadline, shown.stderr
        time.sleep(0.05)
    approval = shown.stdout
    assert "Accuracy 94.3%: deploy?" in approval
    assert '--input \'{"deploy_target":' in approval  # how to decide, from the schema
    assert "<code>deploy\\_target</code>" in approval  # the schema as a table
    ok = ws.hitl(
        "approve", f"{run_id}/{step}", "--as", "reviewer", "--input", '{"deploy_target": "staging"}'
    )
    assert ok.returncode == 0, ok.stderr
    assert "Committed to" in ok.stdout
    code, out = ws.finish(proc)
    assert code == 0, out
    log = git("log", "--topo-order", "main", "--format=%an|%s", git_dir=repo).splitlines()
    assert log[:3] == [
        f"metaflow-hitl|hitl: merge {gate} (approved)",
        f"reviewer|hitl: {gate} approved by reviewer (cli)",
        f"metaflow-hitl|hitl: open gate {gate}",
    ]
    body = git("log", "-1", "--format=%B", "main^2", git_dir=repo)
    assert f"Hitl-Gate: {gate}" in body
    assert "Hitl-Outcome: approved" in body
    record = json.loads(git("show", f"main:decisions/{flow}/{run_id}/{step}.json", git_dir=repo))
    assert record["input"] == {"deploy_target": "staging"}


def test_timeouts_are_committed_and_audit_agrees_with_the_store(workspace):
    ws = workspace("deploy_flow.py")
    ws.env["GATE_TIMEOUT"] = "2s"
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    code, _ = ws.finish(proc)
    assert code != 0
    from_git = json.loads(ws.hitl("audit", "--json").stdout)
    from_store = json.loads(ws.hitl("audit", "--json", "--source", "store").stdout)
    assert [(r["gate_id"], r["outcome"], r["decided_by"]) for r in from_git] == [
        (gate, "timed_out", "timeout")
    ]
    assert [(r["gate_id"], r["outcome"], r["decided_by"], r["decided_at"]) for r in from_git] == [
        (r["gate_id"], r["outcome"], r["decided_by"], r["decided_at"]) for r in from_store
    ]


def test_audit_reports_a_decision_missing_from_git_and_sync_repairs_it(workspace):
    ws = workspace("deploy_flow.py")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    # decide through the core only, as if the push had failed after the store write
    store = LocalApprovalStore(ws.store)
    decide(
        store,
        GateId.parse(gate),
        intent="reject",
        reason="push lost",
        actor=Actor(login="bob", channel="cli", at=utc_now()),
    )
    ws.finish(proc)
    audit = ws.console("audit")
    assert audit.returncode == 1
    assert f"{gate}: rejected in the store, missing from the review repo" in audit.stderr
    assert f"metaflow-hitl sync {gate}" in audit.stderr
    synced = ws.console("sync")
    assert synced.returncode == 0, synced.stderr
    audit = ws.console("audit", "--json")
    assert audit.returncode == 0, audit.stderr
    assert [r["decided_by"] for r in json.loads(audit.stdout)] == ["bob"]


def test_review_none_keeps_the_store_only(workspace):
    ws = workspace("deploy_flow.py")
    ws.env["METAFLOW_HITL_REVIEW"] = "none"
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    assert (
        ws.console("approve", gate, "--as", "r", "--input", '{"deploy_target": "x"}').returncode
        == 0
    )
    code, out = ws.finish(proc)
    assert code == 0, out
    assert not (ws.store / "review.git").exists()
    shown = json.loads(ws.console("show", gate, "--json").stdout)
    assert shown["request"]["review"] == {"backend": "none"}


def test_review_setting_from_the_metaflow_profile(workspace):
    ws = workspace("deploy_flow.py")
    home = ws.root / "mfhome"
    home.mkdir(exist_ok=True)
    (home / "config.json").write_text(json.dumps({"METAFLOW_HITL_REVIEW": "none"}))
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    shown = json.loads(ws.console("show", gate, "--json").stdout)
    assert shown["request"]["review"] == {"backend": "none"}
    ws.kill(proc)


def test_an_expiry_that_approves_proceeds_when_the_review_repo_is_down(workspace):
    """Bug fixed with settle(): a review repo that cannot be written at the deadline used to
    fail the step although ``on_timeout="approve"`` let it through. Now the expiry stands, the
    step runs, the task warns with the repair command, and ``sync`` publishes it later."""
    ws = workspace("deploy_flow.py")
    ws.env["GATE_TIMEOUT"] = "4s"
    ws.env["GATE_ON_TIMEOUT"] = "approve"
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    flow, run_id, step = gate.split("/")
    repo = ws.store / "review.git"
    branch = f"hitl/{flow}/{run_id}/{step}"
    deadline = time.monotonic() + 30
    while subprocess.run(
        ["git", "--git-dir", str(repo), "rev-parse", "--verify", "-q", branch],
        capture_output=True,
        check=False,
    ).returncode:
        assert time.monotonic() < deadline, "the review branch was never pushed"
        time.sleep(0.05)
    hidden = repo.with_name("review.git.away")
    repo.rename(hidden)
    repo.write_text("not a repository\n")  # every git command on it now fails
    code, out = ws.finish(proc)
    assert code == 0, out
    assert "END target canary outcome timed_out" in out
    assert "GATE BODY RAN attempt 0" in out  # no retry spent on the review repo's failure
    assert "Warning: the decision on gate" in out
    assert "the review repo was not updated" in out
    assert f"sync {gate}" in out
    repo.unlink()
    hidden.rename(repo)
    assert "decisions/" not in git("ls-tree", "-r", "--name-only", "main", git_dir=repo)
    synced = ws.console("sync", gate)
    assert synced.returncode == 0, synced.stderr
    record = json.loads(git("show", f"main:decisions/{flow}/{run_id}/{step}.json", git_dir=repo))
    assert record["outcome"] == "timed_out"
