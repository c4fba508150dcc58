"""A real local run announces its gate and the decision through Apprise, delivered for real
to an HTTP listener on loopback; a dead endpoint never fails the gate."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

pytest.importorskip("apprise", reason="apprise is the [notify] extra")


class _Listener(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listener():
    _Listener.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"json://127.0.0.1:{server.server_address[1]}/hook", _Listener.received
    server.shutdown()


def test_gate_opened_and_decided_are_announced(workspace, listener):
    url, received = listener
    ws = workspace("deploy_flow.py")
    ws.env.update(GATE_NOTIFIER="apprise", METAFLOW_HITL_APPRISE_URLS=url)
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    ok = ws.console("approve", gate, "--as", "reviewer", "--input", '{"deploy_target": "n"}')
    assert ok.returncode == 0, ok.stderr
    code, out = ws.finish(proc)
    assert code == 0, out
    texts = [json.dumps(r) for r in received]
    assert len(texts) == 2, (texts, out)
    assert gate in texts[0]
    assert "Accuracy 94.3%: deploy?" in texts[0]
    assert "Approved:" in texts[1]
    assert "reviewer" in texts[1]


def test_a_dead_notification_endpoint_never_fails_the_gate(workspace):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    ws = workspace("deploy_flow.py")
    ws.env.update(GATE_NOTIFIER=f"json://127.0.0.1:{port}/secret-token-123")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    ok = ws.console("approve", gate, "--as", "reviewer", "--input", '{"deploy_target": "n"}')
    assert ok.returncode == 0, ok.stderr
    code, out = ws.finish(proc)
    assert code == 0, out
    assert "END target n outcome approved" in out
    assert "secret-token-123" not in out
