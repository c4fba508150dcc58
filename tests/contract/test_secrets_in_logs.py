"""No secret reaches a log: every credential a run was given is grepped for in ALL it printed.

Real processes, real servers on loopback:

* ``metaflow-hitl handle-event`` (a subprocess, as the Action runs it) with a GitHub token the
  OpenAPI-checked GitHub fake accepts, and an Argo Server token that the swagger-checked Argo
  stand-in accepts; then the failure paths: GitHub answering 5xx with the token echoed in the
  error body, a GitHub token GitHub refuses, an Argo token Argo refuses (its 401 echoing the
  token back), an Argo server that is not there.
* ``metaflow-hitl approve`` (the CLI) resuming an Argo gate, with a good and a refused token.
* The Apprise notifier in a subprocess with DEBUG logging on for every library, delivering to
  an URL whose password and path are secrets: to a listener answering 200, one answering 500,
  and a closed port.

Captured: stdout, stderr, and ``$GITHUB_OUTPUT``. Each secret, and each recognisable half of
it, must appear in none of them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import open_gate
from metaflow_hitl.github.review_backend import GitHubReviewBackend
from metaflow_hitl.records import Request
from metaflow_hitl.render.documents import render_approval_file
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now
from tests.fakes import webhooks
from tests.fakes.argo_server import (
    NS,
    SWAGGER,
    WF,
    FakeArgoServer,
    make_workflow,
    suspend_node,
)
from tests.fakes.argo_server import TOKEN as ARGO_TOKEN
from tests.fakes.github import SKIP_REASON, SPEC_FILE, FakeGitHub
from tests.fakes.published import open_published

pytestmark = [
    pytest.mark.skipif(not SPEC_FILE.is_file(), reason=SKIP_REASON),
    pytest.mark.skipif(not webhooks.SCHEMA_FILE.is_file(), reason=webhooks.SKIP_REASON),
]

REPO = "acme/approvals"
GH_TOKEN = "ghp_SeCrEt0GitHubToken0For0LogTests0123"
BAD_GH_TOKEN = "ghp_BaDtOkEn0ThatGitHubRefuses0000000abc"
BAD_ARGO_TOKEN = "argo-bad-S3CRET-token-0987654321"
APPRISE_PASSWORD = "Apprise-Pa55word-XYZ-123"
APPRISE_PATH_TOKEN = "hookToken-7f3a9c1e5b"
SCRIPT = Path(sys.executable).parent / "metaflow-hitl"


def assert_no_secret(texts: dict[str, str], secrets: list[str]) -> None:
    """No secret, nor its first or last 12 characters, in any captured text."""
    for secret in secrets:
        needles = {secret, secret[:12], secret[-12:]}
        for where, text in texts.items():
            for needle in needles:
                assert needle not in text, f"{needle!r} (from a secret) leaked into {where}"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    output: str

    def texts(self) -> dict[str, str]:
        return {"stdout": self.stdout, "stderr": self.stderr, "$GITHUB_OUTPUT": self.output}


@dataclass
class World:
    gh: FakeGitHub
    argo: FakeArgoServer
    argo_url: str
    store: LocalApprovalStore
    tmp: Path

    def open_argo_gate(self, step: str = "deploy") -> tuple[Request, int]:
        spec = GateSpec.from_options(message="Deploy model v3?", input_schema={"target": "str"})
        request = spec.request_for(
            GateId("TrainAndDeploy", f"argo-{WF}", step),
            message="Deploy model v3?",
            started_by="dave",
            runtime="local",
            now=utc_now(),
            store=self.store.location,
            review={"backend": "github", "repo": REPO, "mode": "pr", "api_url": self.gh.url},
        )
        request = replace(
            request, runtime="argo-workflows", origin={"workflow": WF, "namespace": NS}
        )
        request, _ = open_gate(self.store, request)
        backend = GitHubReviewBackend(REPO, mode="pr", api_url=self.gh.url, token=GH_TOKEN)
        refs = open_published(backend, self.store, request, render_approval_file(request))
        self.argo.workflows[(NS, WF)] = make_workflow(suspend_node("n1", step))
        return request, int(refs["number"] or 0)

    def comment_event(self, number: int, login: str, body: str) -> tuple[str, dict[str, Any]]:
        import requests

        cid = self.gh.add_comment(REPO, number, login, body)
        headers = {"Authorization": f"token {GH_TOKEN}"}
        base = f"{self.gh.url}/repos/{REPO}"
        comments = requests.get(f"{base}/issues/{number}/comments", headers=headers, timeout=10)
        comment = next(c for c in comments.json() if c["id"] == cid)
        issue = requests.get(f"{base}/issues/{number}", headers=headers, timeout=10).json()
        return "issue_comment", webhooks.comment_payload(REPO, issue, comment)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("METAFLOW_HITL_", "GITHUB_")) and "TOKEN" not in k
        }
        env.update(
            METAFLOW_HITL_STORE=str(self.store.location),
            METAFLOW_HITL_GITHUB_TOKEN=GH_TOKEN,
            METAFLOW_HITL_GITHUB_API_URL=self.gh.url,
            METAFLOW_HITL_ARGO_SERVER=self.argo_url,
            METAFLOW_HITL_ARGO_TOKEN=ARGO_TOKEN,
            METAFLOW_HITL_APPRISE_URLS=apprise_url(9),
            PYTHONWARNINGS="always",
        )
        env.update(overrides)
        return env

    def handle(self, event: tuple[str, dict[str, Any]], **overrides: str) -> Run:
        name, payload = event
        path = self.tmp / f"event-{len(list(self.tmp.glob('event-*')))}.json"
        path.write_text(json.dumps(payload), encoding="utf-8")
        out = self.tmp / f"{path.stem}.out"
        out.write_text("")
        env = self.env(
            GITHUB_EVENT_NAME=name, GITHUB_EVENT_PATH=str(path), GITHUB_OUTPUT=str(out), **overrides
        )
        proc = subprocess.run(
            [str(SCRIPT), "handle-event"], env=env, capture_output=True, text=True, timeout=120
        )
        return Run(proc.returncode, proc.stdout, proc.stderr, out.read_text())

    def cli(self, *args: str, **overrides: str) -> Run:
        proc = subprocess.run(
            [str(SCRIPT), *args], env=self.env(**overrides), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        return Run(proc.returncode, proc.stdout, proc.stderr, "")


def apprise_url(port: int, scheme: str = "json") -> str:
    return f"{scheme}://hitl:{APPRISE_PASSWORD}@127.0.0.1:{port}/hooks/{APPRISE_PATH_TOKEN}"


@pytest.fixture
def argo() -> Iterator[tuple[FakeArgoServer, str]]:
    fake = FakeArgoServer(json.loads(SWAGGER.read_text()))
    fake.echo_auth_in_errors = False
    server = _serve(lambda h: _argo_handle(fake, h))
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _argo_handle(fake: FakeArgoServer, handler: BaseHTTPRequestHandler) -> tuple[int, bytes]:
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else b""
    status, payload = fake.handle(handler.command, handler.path, handler.headers, body)
    return status, json.dumps(payload).encode()


def _serve(answer: Any) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            status, data = answer(self)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = _any

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.fixture
def world(tmp_path: Path, argo: tuple[FakeArgoServer, str]) -> Iterator[World]:
    fake, url = argo
    with FakeGitHub(tokens={GH_TOKEN: "hitl-bot"}) as gh:
        gh.add_org("acme")
        gh.add_repo(REPO, files={"README.md": "# approvals\n"})
        for login, role in [("hitl-bot", "write"), ("alice", "write"), ("dave", "write")]:
            gh.add_collaborator(REPO, login, role)
        store = LocalApprovalStore(tmp_path / "store")
        yield World(gh=gh, argo=fake, argo_url=url, store=store, tmp=tmp_path)


ALL = [GH_TOKEN, BAD_GH_TOKEN, ARGO_TOKEN, BAD_ARGO_TOKEN, APPRISE_PASSWORD, APPRISE_PATH_TOKEN]


# -- handle-event ----------------------------------------------------------------------------------


def test_handle_event_success_prints_no_secret(world: World) -> None:
    _, number = world.open_argo_gate()
    run = world.handle(world.comment_event(number, "alice", '/approve {"target": "prod"}'))
    assert run.code == 0, run.stderr
    assert "decision<<" in run.output
    assert "approved" in run.output
    assert len(world.argo.writes) == 1  # resumed through the Argo Server with its token
    assert_no_secret(run.texts(), ALL)


def test_argo_refusing_the_token_prints_neither_token(world: World) -> None:
    world.argo.echo_auth_in_errors = True  # its 401 says "token not valid: Bearer <token>"
    _, number = world.open_argo_gate()
    event = world.comment_event(number, "alice", '/approve {"target": "prod"}')
    run = world.handle(event, METAFLOW_HITL_ARGO_TOKEN=BAD_ARGO_TOKEN)
    assert run.code != 0
    assert "401" in run.stdout + run.stderr  # the failure is reported...
    assert_no_secret(run.texts(), ALL)  # ...without the token the server echoed


def test_argo_server_error_echoing_the_token_is_scrubbed(world: World) -> None:
    world.argo.echo_auth_in_errors = True  # a good token: its 500 says "... for Bearer <t>"
    _, number = world.open_argo_gate()
    world.argo.workflows.clear()
    run = world.handle(world.comment_event(number, "alice", '/approve {"target": "prod"}'))
    assert run.code != 0
    assert_no_secret(run.texts(), ALL)


def test_unreachable_argo_server_prints_no_secret(world: World) -> None:
    _, number = world.open_argo_gate()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    event = world.comment_event(number, "alice", '/approve {"target": "prod"}')
    run = world.handle(event, METAFLOW_HITL_ARGO_SERVER=closed)
    assert run.code != 0
    assert_no_secret(run.texts(), ALL)


@pytest.mark.parametrize(
    ("status", "ok"), [(502, True), (403, False)], ids=["502-then-retried", "403-refusal"]
)
def test_github_errors_echoing_the_token_print_no_secret(
    world: World, status: int, ok: bool
) -> None:
    """GitHub (or a proxy before it) answering with the token in its error body: a 5xx is
    retried, a 4xx is reported with GitHub's message, scrubbed."""
    _, number = world.open_argo_gate()
    event = world.comment_event(number, "alice", '/approve {"target": "prod"}')
    body = {"message": f"upstream failed for token {GH_TOKEN}", "documentation_url": "x"}
    world.gh.fail_next("issues/create-comment" if status < 500 else "*", status, body=body)
    run = world.handle(event)
    assert (run.code == 0) is ok, run.stdout + run.stderr
    if not ok:
        assert "upstream failed for token" in run.stdout + run.stderr  # the message is shown
    assert_no_secret(run.texts(), ALL)


def test_github_refusing_the_token_prints_no_secret(world: World) -> None:
    _, number = world.open_argo_gate()
    event = world.comment_event(number, "alice", '/approve {"target": "prod"}')
    run = world.handle(event, METAFLOW_HITL_GITHUB_TOKEN=BAD_GH_TOKEN)
    assert run.code != 0
    assert "401" in run.stdout + run.stderr or "token" in run.stdout + run.stderr
    assert_no_secret(run.texts(), ALL)


# -- the CLI -------------------------------------------------------------------------------------


def test_cli_approve_resuming_argo_prints_no_secret(world: World) -> None:
    request, _ = world.open_argo_gate()
    run = world.cli("approve", str(request.gate_id), "--as", "alice", "--input", '{"target": "x"}')
    assert run.code == 0, run.stderr
    assert len(world.argo.writes) == 1
    assert_no_secret(run.texts(), ALL)


def test_cli_approve_with_a_refused_argo_token_prints_no_secret(world: World) -> None:
    world.argo.echo_auth_in_errors = True
    request, _ = world.open_argo_gate()
    run = world.cli(
        "approve", str(request.gate_id), "--as", "alice", "--input", '{"target": "x"}',
        METAFLOW_HITL_ARGO_TOKEN=BAD_ARGO_TOKEN,
    )  # fmt: skip
    assert run.code != 0
    assert_no_secret(run.texts(), ALL)


# -- Apprise -----------------------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    status: ClassVar[int] = 200
    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


NOTIFY = """
import logging, sys
from datetime import datetime, timedelta, timezone
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.notify import notifier_from_setting
from metaflow_hitl.spec import GateSpec
spec = GateSpec.from_options(message="Deploy?", timeout="1h")
t0 = datetime(2026, 11, 25, 10, tzinfo=timezone.utc)
request = spec.request_for(GateId("F", "1", "s"), message="Deploy?", started_by="a",
                           runtime="local", now=t0, store="/tmp/x")
notifier = notifier_from_setting(sys.argv[1], attempts=2, backoff=0.01)
print(repr(notifier))
notifier.gate_opened(request)
"""


@pytest.mark.parametrize("status", [200, 500, None], ids=["delivered", "http-500", "closed-port"])
def test_apprise_notifier_prints_no_secret_even_at_debug(status: int | None) -> None:
    pytest.importorskip("apprise")
    server = None
    _Hook.seen = []
    if status is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    else:
        _Hook.status = status
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
    try:
        proc = subprocess.run(
            [sys.executable, "-c", NOTIFY, apprise_url(port)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        if server is not None:
            server.shutdown()
    assert proc.returncode == 0, proc.stderr
    assert "DEBUG" in proc.stderr  # debug logging really was on...
    assert "***" in proc.stderr  # ...and the libraries logged the URL, redacted
    if status is not None:
        assert _Hook.seen == [f"/hooks/{APPRISE_PATH_TOKEN}"] * (1 if status == 200 else 2)
    assert_no_secret({"stdout": proc.stdout, "stderr": proc.stderr}, ALL)
