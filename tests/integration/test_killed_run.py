"""A local run killed while its gate waits: ``list`` and ``show`` say nobody waits on it,
and it is never reminded (issue 16, point 6).

A real ``python remind_flow.py run`` in a subprocess, killed with SIGKILL (nothing of ours
runs at exit: the heartbeat just stops). The heartbeat is shortened with
``METAFLOW_HITL_HEARTBEAT_SECONDS`` and the flow's ``poll_interval`` so the lease
(:func:`metaflow_hitl.liveness.lease_for`: three beats) is six seconds (slack for a
loaded CI machine).
"""

from __future__ import annotations

import json
import time

from metaflow_hitl.timestamps import parse_ts, utc_now


def _pending(ws) -> dict:
    rows = json.loads(ws.console("list", "--json").stdout)
    assert len(rows) == 1, rows
    return rows[0]


def test_a_killed_runs_gate_shows_nobody_waiting_and_is_not_reminded(workspace):
    ws = workspace("remind_flow.py")
    ws.env.update(
        METAFLOW_HITL_HEARTBEAT_SECONDS="2",
        GATE_POLL_INTERVAL="0.5",
        GATE_REMIND_EVERY="15s",
    )
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    deadline = time.monotonic() + 30
    while _pending(ws)["waiter"] is None:  # the first beat follows the first poll
        assert time.monotonic() < deadline, "the waiting task never beat"
        time.sleep(0.1)
    alive = _pending(ws)
    assert alive["nobody_waiting"] is False
    assert alive["waiter"]["lease_seconds"] == 6
    shown = ws.console("show", gate).stdout
    assert f"pid {alive['waiter']['pid']}, since" in shown

    ws.kill(proc)
    time.sleep(6.5)  # past the lease

    gone = _pending(ws)
    assert gone["state"] == "pending"  # still decidable
    assert gone["nobody_waiting"] is True
    table = ws.console("list").stdout
    assert "(nobody waiting)" in table
    assert "its run was probably killed" in ws.console("show", gate).stdout

    opened = parse_ts(gone["request"]["created_at"])
    time.sleep(max(0.0, (opened - utc_now()).total_seconds() + 15.5))  # reminder 1 is due
    gate_dir = ws.store / "v1" / "gates" / gate
    assert not list(gate_dir.glob("reminders/*.json")), "the task sent it before it was killed"
    reminded = ws.console("remind", "--dry-run", "--json")
    assert reminded.returncode == 0, reminded.stderr
    assert json.loads(reminded.stdout) == {"reminders": [], "errors": []}

    # deciding it still works (a `resume` finds the decision)
    done = ws.console("approve", gate, "--as", "reviewer")
    assert done.returncode == 0, done.stderr
    assert json.loads(ws.console("list", "--json").stdout) == []
