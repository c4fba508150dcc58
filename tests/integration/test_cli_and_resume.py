"""The CLI's refusals, listings and the resume rules, on real runs."""

from __future__ import annotations

import json
import time


def test_list_show_and_refusals(workspace):
    ws = workspace("deploy_flow.py")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    run_id = gate.split("/")[1]

    listed = ws.hitl("list")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.strip().splitlines()
    assert header.split() == ["GATE", "STATE", "AGE", "EXPIRES", "APPROVERS", "MESSAGE"]
    assert row.startswith(f"{run_id}/gate  pending 0/1")
    rows = json.loads(ws.hitl("list", "--json").stdout)
    assert [r["gate_id"] for r in rows] == [gate]
    assert json.loads(ws.hitl("list", "--run-id", "nope", "--json").stdout) == []

    shown = json.loads(ws.console("show", "--latest", "--json").stdout)
    assert shown["state"] == "pending"
    assert shown["request"]["started_by"] == "alice"
    assert shown["request"]["message"] == "Accuracy 94.3%: deploy?"

    refusals = [
        (ws.hitl("approve", "not/a/valid/ref", "--as", "r"), "is not a gate reference", 2),
        (ws.hitl("approve", f"{run_id}/../x", "--as", "r"), "is not allowed in a gate id", 2),
        (ws.hitl("approve", f"{run_id}/other", "--as", "r"), "no gate DeployFlow/", 3),
        (
            ws.hitl("approve", f"{run_id}/gate", "--as", "r", "--input", "{bad"),
            "approval input is not valid JSON",
            5,
        ),
        (
            ws.hitl("approve", f"{run_id}/gate", "--as", "r", "--input", "[1]"),
            "must be a JSON object",
            5,
        ),
        (ws.hitl("approve", f"{run_id}/gate", "--latest", "--as", "r"), "name exactly one gate", 2),
        (
            ws.hitl("reject", f"{run_id}/gate", "--as", "r", "--reason", "  "),
            "--reason must not be empty",
            2,
        ),
        (ws.hitl("approve", f"{run_id}/gate", "--as", "bad login!"), "is not a valid login", 2),
    ]
    for done, expected, code in refusals:  # usage 2, not found 3, invalid input 5
        assert done.returncode == code, (expected, done.stdout, done.stderr)
        assert expected in done.stderr, (expected, done.stderr)
    assert not list((ws.store / "v1" / "gates").rglob("votes/*.json"))  # nothing written
    assert ws.hitl("reject", f"{run_id}/gate", "--as", "bob", "--reason", "x").returncode == 0
    assert json.loads(ws.hitl("list", "--json").stdout) == []
    assert len(json.loads(ws.hitl("list", "--all", "--json").stdout)) == 1
    none_left = ws.console("approve", "--latest", "--as", "r")
    assert none_left.returncode == 3  # not found
    assert "no pending gate" in none_left.stderr
    ws.finish(proc)


def test_a_decision_after_expiry_is_too_late_and_the_expiry_is_recorded(workspace):
    ws = workspace("deploy_flow.py")
    ws.env["GATE_TIMEOUT"] = "3s"
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    ws.kill(proc)  # nobody is waiting any more: the expiry is recorded by the late decider
    time.sleep(3.2)
    late = ws.console("approve", gate, "--as", "reviewer", "--input", '{"deploy_target": "x"}')
    assert late.returncode == 4  # refused: too late
    assert "too late" in late.stderr
    assert "rejected by its timeout" in late.stderr
    decision = json.loads(ws.console("show", gate, "--json").stdout)["decision"]
    assert (decision["outcome"], decision["decided_by"], decision["proceed"]) == (
        "timed_out",
        "timeout",
        False,
    )
    assert not list((ws.store / "v1" / "gates").rglob("votes/*.json"))


def test_resume_waits_on_the_origin_gate(workspace):
    ws = workspace("deploy_flow.py")
    first = ws.start()
    gate = ws.wait_for_gate(first)
    ws.kill(first)
    resumed = ws.start_command("resume")
    deadline = time.monotonic() + 60
    while "still waiting" not in (ws.root / "resume.log").read_text():
        assert time.monotonic() < deadline, (ws.root / "resume.log").read_text()
        assert resumed.poll() is None, (ws.root / "resume.log").read_text()
        time.sleep(0.1)
    ok = ws.console("approve", gate, "--as", "reviewer", "--input", '{"deploy_target": "r"}')
    assert ok.returncode == 0, ok.stderr
    assert resumed.wait(timeout=60) == 0
    log = (ws.root / "resume.log").read_text()
    assert f"resumes run {gate.split('/')[1]} and waits on its gate" in log
    assert "END target r outcome approved" in log
    assert len(list((ws.store / "v1" / "gates").rglob("request.json"))) == 1


def test_resume_after_rejection_of_the_same_content_stays_rejected(workspace):
    """The same content (an unchanged flow and upstream) stays rejected on resume; changed
    content asks again (tests/integration/test_content_binding.py)."""
    ws = workspace("deploy_flow.py")
    first = ws.start()
    gate = ws.wait_for_gate(first)
    assert ws.console("reject", gate, "--as", "bob", "--reason", "no").returncode == 0
    code, _ = ws.finish(first)
    assert code != 0
    resumed = ws.start_command("resume")
    assert resumed.wait(timeout=120) != 0
    log = (ws.root / "resume.log").read_text()
    assert "rejected by bob" in log
    assert "same content was rejected" in log
    assert json.loads(ws.console("list", "--json").stdout) == []
