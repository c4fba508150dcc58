"""Options and combinations the gate cannot honour fail before any task runs."""

from __future__ import annotations

import json

import pytest

CASES = [
    ({"message": "ok?", "timeout": "24x"}, "timeout '24x' is not a duration", "1h30m"),
    ({"message": "ok?", "timeout": "0s"}, "timeout must be longer than zero", None),
    (
        {"message": "ok?", "on_timeout": "maybe"},
        "on_timeout='maybe' is not valid",
        "'reject', 'approve'",
    ),
    (
        {"message": "ok?", "on_reject": "ignore"},
        "on_reject='ignore' is not valid",
        "'fail', 'continue'",
    ),
    (
        {"message": "ok?", "input_schema": {"n": "integer"}},
        "unknown type 'integer'",
        "str, int, float, bool, list, dict",
    ),
    (
        {"message": "ok?", "approvers": ["alice"], "min_approvals": 2},
        "min_approvals=2 can never be met",
        None,
    ),
    ({"message": "ok?", "approvers": ["not a login!"]}, "is neither a GitHub login", None),
    (
        {"message": "ok?", "on_timeout": "approve", "input_schema": {"target": "str"}},
        "on_timeout='approve' needs input",
        "default",
    ),
    ({}, "message is required", None),
]


@pytest.mark.parametrize(
    ("opts", "expected", "lists"),
    CASES,
    ids=[c[1].split()[0] + "-" + str(i) for i, c in enumerate(CASES)],
)
def test_bad_options_fail_before_any_task(workspace, opts, expected, lists):
    ws = workspace("config_flow.py")
    ws.env["HITL_OPTS"] = json.dumps(opts)
    done = ws.run("run")
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert expected in out, out
    assert "@hitl on step 'gate'" in out
    if lists:
        assert lists in out
    assert "Task is starting" not in out  # refused in step_init, before the run


@pytest.mark.parametrize(
    ("shape", "expected"),
    [("catch", "cannot be combined with @catch"), ("foreach", "inside a foreach")],
)
def test_unsupported_combinations_are_refused(workspace, shape, expected):
    ws = workspace("config_flow.py")
    ws.env["HITL_SHAPE"] = shape
    done = ws.run("run")
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert expected in out, out
    assert "Task is starting" not in out


def test_validation_also_runs_for_hitl_commands(workspace):
    ws = workspace("config_flow.py")
    ws.env["HITL_OPTS"] = json.dumps({"message": "ok?", "timeout": "soon"})
    done = ws.hitl("list")
    assert done.returncode != 0
    assert "timeout 'soon' is not a duration" in done.stdout + done.stderr


def test_gate_on_start_step_is_supported(workspace, tmp_path):
    flow = tmp_path / "start_gate.py"
    flow.write_text(
        "from metaflow import FlowSpec, Parameter, hitl, step\n"
        "class StartGate(FlowSpec):\n"
        "    size = Parameter('size', default=3)\n"
        "    @hitl(message='size={self.size}: go?', timeout='10m')\n"
        "    @step\n"
        "    def start(self):\n"
        "        print('START RAN', self.hitl_decision['outcome'])\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    StartGate()\n"
    )
    ws = workspace("config_flow.py")
    ws.flow = flow
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    shown = ws.console("show", gate, "--json")
    assert json.loads(shown.stdout)["request"]["message"] == "size=3: go?"
    assert ws.console("approve", gate, "--as", "reviewer").returncode == 0
    code, out = ws.finish(proc)
    assert code == 0, out
    assert "START RAN approved" in out
