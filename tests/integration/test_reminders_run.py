"""A real local run with ``remind_every="1s"``: the waiting task sends its reminders (delivered
for real through Apprise to a loopback listener, escalating from the third), records each one
once in the store, and the run then proceeds when approved."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.stores.local import LocalApprovalStore

pytest.importorskip("apprise", reason="apprise is the [notify] extra")


class _Listener(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Listener.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"json://127.0.0.1:{server.server_address[1]}/hook", _Listener.received
    server.shutdown()
    server.server_close()


def test_the_waiting_task_reminds_escalates_and_then_proceeds_on_approval(workspace, listener):
    url, received = listener
    ws = workspace("remind_flow.py")
    ws.env.update(GATE_NOTIFIER=url, NO_PROXY="127.0.0.1,localhost")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    store = LocalApprovalStore(ws.store)
    gate_id = GateId.parse(gate)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(store.list_reminders(gate_id)) < 3:
        time.sleep(0.1)
    ok = ws.console("approve", gate, "--as", "reviewer")
    assert ok.returncode == 0, ok.stderr
    code, out = ws.finish(proc)
    assert code == 0, out
    assert "END outcome approved" in out

    reminders = store.list_reminders(gate_id)
    numbers = [r.number for r in reminders]
    assert numbers[:3] == [1, 2, 3], numbers
    assert numbers == sorted(set(numbers))  # each number once, in order
    assert {r.sent_by for r in reminders} == {"waiting-task"}
    assert [r.escalated_to for r in reminders[:3]] == [(), (), ("lead",)]
    assert "Reminder 1 for " + gate + ": sent." in out
    assert "no review repo" in out  # review="none": notification only

    titles = [r.get("title", "") for r in received]
    assert titles[0] == f"Approval needed: {gate}"
    reminded = [t for t in titles if "approval still needed" in t]
    assert len(reminded) == len(reminders)  # one notification per recorded reminder
    assert reminded[:3] == [
        f"Reminder 1: approval still needed: {gate}",
        f"Reminder 2: approval still needed: {gate}",
        f"Escalation: approval still needed: {gate}",
    ]
    assert titles[-1].startswith("Approved:")
