"""The local loop end to end: real Metaflow runs, gated, decided from the CLI."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest


def test_approve_with_input_runs_the_step_with_it(workspace):
    ws = workspace("deploy_flow.py")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    run_id = gate.split("/")[1]

    bad = ws.hitl(
        "approve",
        f"{run_id}/gate",
        "--as",
        "reviewer",
        "--input",
        '{"deploy_target": 7, "replicas": 0, "extra": 1}',
    )
    assert bad.returncode == 5  # invalid input
    # every schema problem reported at once, and nothing recorded
    assert "deploy_target: 7 is not of type 'string'" in bad.stderr
    assert "replicas: 0 is less than the minimum of 1" in bad.stderr
    assert "'extra' was unexpected" in bad.stderr
    assert not list((ws.store / "v1" / "gates").rglob("votes/*.json"))

    selfie = ws.hitl("approve", f"{run_id}/gate", "--input", '{"deploy_target": "prod"}')
    assert selfie.returncode == 4  # refused: not allowed
    assert "alice started this run and cannot approve it" in selfie.stderr

    ok = ws.hitl(
        "approve",
        f"{run_id}/gate",
        "--as",
        "reviewer",
        "--input",
        '{"deploy_target": "staging", "replicas": 2}',
    )
    assert ok.returncode == 0, ok.stderr
    assert "approved by reviewer (cli)" in ok.stdout

    code, out = ws.finish(proc)
    assert code == 0, out
    assert "is waiting for approval" in out
    assert "Accuracy 94.3%: deploy?" in out
    assert "END target staging outcome approved" in out

    artifacts = ws.client(
        f"t = Run('DeployFlow/{run_id}')['gate'].task\n"
        "import json; print(json.dumps({'input': t['hitl_input'].data, "
        "'decision': t['hitl_decision'].data, 'request': t['hitl_request'].data}))"
    )
    assert artifacts["request"]["gate_id"] == f"DeployFlow/{run_id}/gate"
    assert artifacts["request"]["message"] == "Accuracy 94.3%: deploy?"
    assert artifacts["decision"]["request_digest"].startswith("sha256:")
    assert artifacts["input"] == {"deploy_target": "staging", "replicas": 2}
    decision = artifacts["decision"]
    assert decision["gate_id"] == f"DeployFlow/{run_id}/gate"
    assert decision["outcome"] == "approved"
    assert decision["decided_by"] == "reviewer"
    assert [(a["login"], a["channel"], a["source"]) for a in decision["deciders"]] == [
        ("reviewer", "cli", "flag")
    ]

    audit = ws.hitl("audit", "--json")
    assert audit.returncode == 0, audit.stderr
    rows = json.loads(audit.stdout)
    assert [(r["gate_id"], r["outcome"], r["decided_by"]) for r in rows] == [
        (f"DeployFlow/{run_id}/gate", "approved", "reviewer")
    ]


def test_reject_fails_the_step_saying_who_and_why(workspace):
    ws = workspace("deploy_flow.py")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    done = ws.console("reject", gate, "--as", "bob", "--reason", "holdout accuracy regressed")
    assert done.returncode == 0, done.stderr
    code, out = ws.finish(proc)
    assert code != 0
    assert "@hitl: rejected by bob" in out
    assert "holdout accuracy regressed" in out
    assert "GATE BODY RAN" not in out
    # the retry (@retry(times=1)) found the decision: one request, one announcement
    assert out.count("is waiting for approval") == 1


@pytest.mark.parametrize(
    ("on_timeout", "expect_ok"), [("reject", False), ("approve", True)], ids=["reject", "approve"]
)
def test_timeout_applies_on_timeout(workspace, on_timeout, expect_ok):
    ws = workspace("deploy_flow.py")
    ws.env.update(GATE_TIMEOUT="2s", GATE_ON_TIMEOUT=on_timeout)
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    code, out = ws.finish(proc)
    assert (code == 0) is expect_ok, out
    shown = json.loads(ws.console("show", gate, "--json").stdout)
    assert shown["decision"]["outcome"] == "timed_out"
    assert shown["decision"]["decided_by"] == "timeout"
    if expect_ok:
        assert "END target canary outcome timed_out" in out  # the schema default
    else:
        assert "@hitl: gate timed out, rejected" in out
        assert "GATE BODY RAN" not in out
    late = ws.console("approve", gate, "--as", "reviewer", "--input", '{"deploy_target": "x"}')
    assert late.returncode == 4  # refused: already decided
    assert "already decided" in late.stderr


def test_on_reject_continue_runs_the_step_with_the_decision(workspace):
    ws = workspace("deploy_flow.py")
    ws.env.update(GATE_ON_REJECT="continue")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    assert ws.console("reject", gate, "--as", "bob", "--reason", "not today").returncode == 0
    code, out = ws.finish(proc)
    assert code == 0, out
    assert "END target None outcome rejected" in out


def test_retry_after_approval_does_not_reopen_the_gate(workspace):
    ws = workspace("deploy_flow.py")
    proc = ws.start("--fail_first", "True")
    gate = ws.wait_for_gate(proc)
    ok = ws.console("approve", gate, "--as", "reviewer", "--input", '{"deploy_target": "s"}')
    assert ok.returncode == 0, ok.stderr
    code, out = ws.finish(proc)
    assert code == 0, out
    assert "GATE BODY RAN attempt 0" in out
    assert "GATE BODY RAN attempt 1" in out
    assert out.count("is waiting for approval") == 1
    assert "END target s outcome approved" in out
    requests = list((ws.store / "v1" / "gates").rglob("request.json"))
    assert len(requests) == 1


def test_concurrent_approve_and_reject_leave_one_decision(workspace):
    ws = workspace("deploy_flow.py")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)

    def act(i: int) -> subprocess.CompletedProcess[str]:
        if i % 2:
            return ws.console("reject", gate, "--as", f"user{i}", "--reason", f"no {i}")
        return ws.console(
            "approve", gate, "--as", f"user{i}", "--input", json.dumps({"deploy_target": f"t{i}"})
        )

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(act, range(12)))
    winners = [r for r in results if r.returncode == 0]
    losers = [r for r in results if r.returncode != 0]
    assert len(winners) == 1, [r.stderr for r in results]
    assert all("already decided" in r.stderr for r in losers), [r.stderr for r in losers]
    decision = json.loads(ws.console("show", gate, "--json").stdout)["decision"]
    for loser in losers:
        assert f"by {decision['decided_by']}" in loser.stderr
    assert len(list((ws.store / "v1" / "gates").rglob("decision.json"))) == 1
    code, out = ws.finish(proc)
    assert (code == 0) is (decision["outcome"] == "approved"), out


def test_join_step_message_reads_the_inputs(workspace):
    ws = workspace("join_flow.py")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    shown = json.loads(ws.console("show", gate, "--json").stdout)
    assert shown["request"]["message"] == "a=0.91 b=0.87 n=0.9: ship a?"
    assert ws.console("approve", gate, "--as", "alice").returncode == 0  # self allowed here
    code, out = ws.finish(proc)
    assert code == 0, out
    assert "best 0.91" in out


def test_message_that_cannot_render_fails_naming_the_artifact(workspace):
    ws = workspace("broken_message_flow.py")
    done = ws.run("run")
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "'acurracy'" in out
    assert "available: accuracy" in out
    assert "{self.acurracy" in out  # the template is quoted in the error, not shown as message
    assert not (ws.store / "v1" / "gates").exists()
