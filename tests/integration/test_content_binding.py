"""An approval means exactly what was asked: real Metaflow runs (subprocesses, local datastore)
that resume and retry a gated flow.

Metaflow's ``resume`` clones the origin run's successful tasks before the resume point and
re-runs the rest (metaflow/runtime.py line 598, ``clone_task``); a re-run task gets the origin
run as ``current.origin_run_id`` (metaflow/task.py line 575, ``run_step(..., origin_run_id)``;
metaflow/metaflow_current.py line 156), at Netflix/metaflow d2dd7f953. Artifacts are
content-addressed (``sha1`` of the serialized bytes, metaflow/datastore/content_addressed_store.py
line 98), so an unchanged upstream has the same keys and a recomputed, different one does not.
"""

from __future__ import annotations

import json
import time


def _requests(ws) -> list[dict]:
    paths = sorted((ws.store / "v1" / "gates").rglob("request.json"))
    return [json.loads(p.read_text()) for p in paths]


def _approve_then_fail_downstream(ws) -> str:
    ws.env["FAIL_END"] = "1"
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    ok = ws.console("approve", gate, "--as", "reviewer")
    assert ok.returncode == 0, ok.stderr
    code, out = ws.finish(proc)
    assert code != 0, out
    assert "GATE BODY RAN" in out
    del ws.env["FAIL_END"]
    return gate


def _log(ws) -> str:
    return (ws.root / "resume.log").read_text()


def test_resume_with_changed_upstream_asks_again(workspace):
    ws = workspace("binding_flow.py")
    first = _approve_then_fail_downstream(ws)
    ws.env["ACCURACY"] = "0.41"
    resumed = ws.start_command("resume", "start")
    deadline = time.monotonic() + 90
    while True:
        pending = json.loads(ws.console("list", "--json").stdout)
        if pending:
            break
        assert time.monotonic() < deadline, _log(ws)
        assert resumed.poll() is None, _log(ws)
        time.sleep(0.2)
    (again,) = pending
    assert again["gate_id"] != first  # a new gate, under the resumed run
    (request,) = [r for r in _requests(ws) if r["gate_id"] == again["gate_id"]]
    assert request["message"] == "Accuracy 41.0%: deploy?"
    assert request["origin"]["supersedes"] == first
    assert request["origin"]["supersedes_outcome"] == "approved"
    assert "accuracy" in request["origin"]["changed"].split(", ")
    assert "message" in request["origin"]["changed"]
    old = next(r for r in _requests(ws) if r["gate_id"] == first)
    assert old["content"]["artifacts"]["accuracy"] != request["content"]["artifacts"]["accuracy"]
    assert old["content"]["code"] == request["content"]["code"]  # same flow file
    ok = ws.console("approve", again["gate_id"], "--as", "reviewer")
    assert ok.returncode == 0, ok.stderr
    assert resumed.wait(timeout=90) == 0, _log(ws)
    assert f"GATE BODY RAN accuracy 0.41 gate {again['gate_id']}" in _log(ws)


def test_resume_with_unchanged_upstream_reuses_the_approval(workspace):
    ws = workspace("binding_flow.py")
    first = _approve_then_fail_downstream(ws)
    done = ws.run("resume", "start", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert f"GATE BODY RAN accuracy 0.94 gate {first}" in out  # re-run, same content: reused
    assert "END ran" in out
    assert len(_requests(ws)) == 1


def test_resume_after_the_gate_reuses_the_approval(workspace):
    ws = workspace("binding_flow.py")
    first = _approve_then_fail_downstream(ws)
    done = ws.run("resume", timeout=180)  # from the failed step: the gate task is cloned
    assert done.returncode == 0, done.stdout + done.stderr
    assert "END ran" in done.stdout + done.stderr
    assert [r["gate_id"] for r in _requests(ws)] == [first]


def test_a_retried_task_reuses_the_approval(workspace):
    ws = workspace("binding_flow.py")
    ws.env["FAIL_GATE_ONCE"] = "1"
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    assert ws.console("approve", gate, "--as", "reviewer").returncode == 0
    code, out = ws.finish(proc)
    assert code == 0, out
    assert out.count(f"GATE BODY RAN accuracy 0.94 gate {gate}") == 2  # attempt 0 and 1
    assert out.count("is waiting for approval") == 1
    assert len(_requests(ws)) == 1


def test_a_rejection_stays_for_the_same_content_and_says_so(workspace):
    ws = workspace("binding_flow.py")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    assert ws.console("reject", gate, "--as", "reviewer", "--reason", "no").returncode == 0
    code, _ = ws.finish(proc)
    assert code != 0
    done = ws.run("resume", "start", timeout=180)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "same content was rejected" in out
    assert "GATE BODY RAN" not in out
    assert len(_requests(ws)) == 1


def test_the_request_records_the_starter_in_both_forms(workspace):
    """``current.username`` is ``METAFLOW_USER`` or the OS user (metaflow/util.py line 149,
    ``get_username``, at Netflix/metaflow d2dd7f953); the identity map gives the GitHub login,
    and self-approval under it is refused."""
    ws = workspace("binding_flow.py")
    ws.env["METAFLOW_HITL_IDENTITY_MAP"] = '{"alice": "alice-smith"}'
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    (request,) = _requests(ws)
    assert request["started_by"] == "alice"
    assert request["starter"] == {
        "kind": "human",
        "metaflow": "alice",
        "github": "alice-smith",
        "source": "metaflow",
    }
    refused = ws.console("approve", gate, "--as", "alice-smith")
    assert refused.returncode != 0
    assert "cannot approve" in refused.stderr + refused.stdout
    assert ws.console("approve", gate, "--as", "reviewer").returncode == 0
    shown = ws.console("show", gate)
    assert "reviewer (asserted, unverified (flag))" in shown.stdout
    audit = ws.console("audit", "--json")
    assert json.loads(audit.stdout)[0]["identity"].startswith("asserted, unverified")
    code, out = ws.finish(proc)
    assert code == 0, out
