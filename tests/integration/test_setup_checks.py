"""Setup mistakes fail before any task runs; approvers need nothing of the flow's settings.

``step_init`` runs in every process that loads the flow, the approver's ``python flow.py hitl
approve`` included (``metaflow/cli.py``, ``start`` calls ``decorators._init_step_decorators``
for every command but ``run``/``resume``, which call it themselves in
``cli_components/run_cmds.py``), so what it checks there applies to approvers too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_approver_needs_none_of_the_flows_notifier_settings(workspace):
    ws = workspace("deploy_flow.py")
    # the run notifies through Apprise (an unreachable JSON endpoint: never fails the gate)
    ws.env.update(GATE_NOTIFIER="apprise")
    proc = ws.start(extra_env={"METAFLOW_HITL_APPRISE_URLS": "json://127.0.0.1:9/hook"})
    gate = ws.wait_for_gate(proc)
    ws.env.pop("METAFLOW_HITL_APPRISE_URLS", None)  # the approver's shell has no URLs
    listed = ws.hitl("list")
    assert listed.returncode == 0, listed.stderr
    assert gate.split("/")[1] in listed.stdout
    ok = ws.hitl(
        "approve", gate.split("/", 1)[1], "--as", "reviewer", "--input", '{"deploy_target": "s"}'
    )
    assert ok.returncode == 0, ok.stderr
    code, out = ws.finish(proc)
    assert code == 0, out


def test_github_review_without_token_fails_before_any_task(workspace):
    ws = workspace("deploy_flow.py")
    ws.env.update(METAFLOW_HITL_REVIEW="github:acme/approvals")
    for name in ("METAFLOW_HITL_GITHUB_TOKEN", "GITHUB_TOKEN"):
        ws.env.pop(name, None)
    done = ws.run("run")
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "needs a GitHub token" in out
    assert "METAFLOW_HITL_GITHUB_TOKEN" in out
    assert "Traceback" not in out
    assert "Task is starting" not in out  # refused by step_init, before the first task
    assert not (ws.store / "v1" / "gates").exists()


def test_github_review_without_pygithub_fails_before_any_task(workspace, tmp_path: Path):
    ws = workspace("deploy_flow.py")
    shadow = tmp_path / "no_pygithub"
    (shadow / "github").mkdir(parents=True)  # an environment where `import github` fails
    (shadow / "github" / "__init__.py").write_text("raise ImportError('No module named github')")
    ws.env.update(
        METAFLOW_HITL_REVIEW="github:acme/approvals",
        METAFLOW_HITL_GITHUB_TOKEN="not-a-secret",
        PYTHONPATH=str(shadow),
    )
    done = ws.run("run")
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "needs PyGithub" in out
    assert 'pip install "metaflow-hitl[github]"' in out
    assert "Internal error" not in out
    assert "Traceback" not in out
    assert not (ws.store / "v1" / "gates").exists()


def test_local_store_with_github_review_warns_at_start(workspace):
    ws = workspace("deploy_flow.py")
    ws.env.update(
        METAFLOW_HITL_REVIEW="github:acme/approvals",
        METAFLOW_HITL_GITHUB_TOKEN="not-a-secret",
        METAFLOW_HITL_GITHUB_API_URL="http://127.0.0.1:9",  # nothing listens: fails in the task
    )
    done = ws.run("run", timeout=300)
    out = done.stdout + done.stderr
    assert "the GitHub Action cannot record a decision" in out
    assert "--datastore=s3" in out
    assert out.count("[@hitl] Warning") == 1  # once, at start-up, not per task
    assert done.returncode != 0  # GitHub is unreachable: the task fails saying so
    assert "Traceback" not in out
    # ... and the gate records why, for the people who look at it (issue 16, point 3)
    rows = json.loads(ws.console("list", "--json").stdout)
    assert [r["nobody_waiting"] for r in rows] == [True]
    assert "its review page could not be opened" in rows[0]["waiter"]["stopped"]
    assert "(nobody waiting)" in ws.console("list").stdout
    shown = ws.console("show", rows[0]["gate_id"]).stdout
    assert "stopped at" in shown
    assert "127.0.0.1:9" in shown  # what could not be reached
    assert "not-a-secret" not in json.dumps(rows) + shown


def test_empty_store_setting_refuses_instead_of_guessing(workspace):
    ws = workspace("deploy_flow.py")
    (ws.root / ".metaflow" / "_hitl").mkdir(parents=True)  # a store it must not fall back to
    exe = Path(sys.executable).with_name("metaflow-hitl")
    done = subprocess.run(
        [str(exe), "list"],
        cwd=ws.root,
        env={**ws.env, "METAFLOW_HITL_STORE": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "METAFLOW_HITL_STORE is set but empty" in done.stderr
    assert "`store` input" in done.stderr


def test_audit_shows_decisions_of_gates_without_a_review_repo(workspace):
    ws = workspace("deploy_flow.py")
    ws.env.update(METAFLOW_HITL_REVIEW="none")  # as on an S3 store by default
    empty = ws.console("audit")
    assert empty.returncode == 0, empty.stderr
    assert f"No decisions yet in {ws.store}" in empty.stdout
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    ok = ws.console("approve", gate, "--as", "reviewer", "--input", '{"deploy_target": "s"}')
    assert ok.returncode == 0, ok.stderr
    rows = json.loads(ws.console("audit", "--json").stdout)
    assert [(r["gate_id"], r["outcome"], r["proceed"], r["source"]) for r in rows] == [
        (gate, "approved", True, "store")
    ]
    assert ws.finish(proc)[0] == 0
