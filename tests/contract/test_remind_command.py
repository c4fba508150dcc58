"""``metaflow-hitl remind`` against FakeGitHub (every request checked against GitHub's OpenAPI
description) with real Apprise deliveries to a loopback HTTP listener.

A gate opened 9 hours ago with ``remind_every="4h"`` gets reminder 2 as one comment on its
pull request and one notification; running the command again sends nothing; at 13 hours
reminder 3 mentions ``escalate_to``; a dry run writes and sends nothing; a decided gate is
left alone. A gate whose review repo is the local git repo gets the notification only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("apprise", reason="apprise is the [notify] extra")

from metaflow_hitl import gates
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.github.review_backend import GitHubReviewBackend
from metaflow_hitl.markers import is_bot_reply, reminder_tag
from metaflow_hitl.records import Actor, Request
from metaflow_hitl.review.config import parse_review
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import add_seconds, format_ts, utc_now
from tests.fakes.github import SKIP_REASON, SPEC_FILE, Clock, FakeGitHub

pytestmark = pytest.mark.skipif(not SPEC_FILE.is_file(), reason=SKIP_REASON)

REPO = "acme/approvals"
HOUR = 3600


class Listener:
    """An HTTP server on loopback recording the JSON bodies Apprise's json:// POSTs."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.received.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook/s3cr3t-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.world.clock = Clock(utc_now() - timedelta(hours=14))
        server.add_org("acme")
        server.add_repo(REPO, files={"README.md": "# approvals\n"})
        server.add_collaborator(REPO, "hitl-bot", "write")
        server.add_collaborator(REPO, "alice", "write")
        server.add_collaborator(REPO, "bob", "maintain")
        yield server


def open_gate(
    store: LocalApprovalStore, gate_id: GateId, *, opened: datetime, review: dict[str, Any]
) -> Request:
    spec = GateSpec.from_options(
        message="Deploy model v3?",
        timeout="24h",
        remind_every="4h",
        approvers=["alice", "bob"],
        escalate_to=["bob"],
    )
    request = spec.request_for(
        gate_id,
        message=spec.message,
        started_by="dave",
        runtime="local",
        now=opened,
        store=store.location,
        review=review,
    )
    gates.open_gate(store, request)
    return request


def remind(
    store: LocalApprovalStore, env: dict[str, str], at: datetime, *args: str
) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("metaflow-hitl")
    return subprocess.run(
        [str(exe), "--store", store.location, "remind", "--now", format_ts(at), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_one_comment_and_one_notification_per_interval_then_escalation(
    gh: FakeGitHub, listener: Listener, tmp_path: Path
) -> None:
    store = LocalApprovalStore(tmp_path / "_hitl")
    opened = utc_now() - timedelta(hours=9, minutes=1)
    review = parse_review(f"github:{REPO}?api_url={gh.url}", local_store=store.location)
    pr_gate = open_gate(store, GateId("TrainFlow", "1", "gate"), opened=opened, review=review)
    pull = GitHubReviewBackend(REPO, api_url=gh.url, token=gh.token).open_review(
        pr_gate, approval_file="# Approve me\n"
    )
    git_gate = open_gate(
        store,
        GateId("TrainFlow", "2", "gate"),
        opened=opened,
        review=parse_review(None, local_store=store.location),
    )
    number = int(pull["number"] or 0)
    env = {
        **os.environ,
        "METAFLOW_HITL_GITHUB_TOKEN": gh.token,
        "METAFLOW_HITL_APPRISE_URLS": listener.url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.pop("METAFLOW_HITL_REVIEW", None)

    def comments() -> list[str]:
        return [c.body for c in gh.repo(REPO).issue_comments(number)]

    # 9h after opening: reminder 2 (a late scheduler sends the latest, not a burst)
    first = remind(store, env, add_seconds(opened, 9 * HOUR))
    assert first.returncode == 0, first.stderr
    assert "Reminder 2 for TrainFlow/1/gate: sent" in first.stdout
    assert "git review repos have no comments; notification only" in first.stdout
    assert "s3cr3t-token" not in first.stdout + first.stderr
    assert len(comments()) == 1
    body = comments()[0]
    assert is_bot_reply(body)  # the Action ignores it: never read as a command
    assert reminder_tag(pr_gate.gate_id, 2) in body
    assert "@alice @bob: please review" in body
    assert "Escalation" not in body
    titles = [r["title"] for r in listener.received]
    assert sorted(titles) == [
        "Reminder 2: approval still needed: TrainFlow/1/gate",
        "Reminder 2: approval still needed: TrainFlow/2/gate",
    ]
    # the notification links the pull request the comment went to
    pr_note = next(r for r in listener.received if "TrainFlow/1/gate" in r["title"])
    assert f"https://github.com/{REPO}/pull/{number}" in pr_note["message"]

    # the same interval again: nothing twice
    again = remind(store, env, add_seconds(opened, 9 * HOUR + 600), "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert [r["status"] for r in report["reminders"]] == ["already-sent", "already-sent"]
    assert len(comments()) == 1
    assert len(listener.received) == 2

    # 13h: reminder 3 escalates to escalate_to
    third = remind(store, env, add_seconds(opened, 13 * HOUR))
    assert third.returncode == 0, third.stderr
    assert len(comments()) == 2
    escalation = comments()[1]
    assert "**Reminder 3:**" in escalation
    assert "**Escalation:** still undecided after 2 reminders. @bob: please decide" in escalation
    assert len(listener.received) == 4
    assert listener.received[-1]["title"].startswith("Escalation: approval still needed")
    assert "Escalated to: bob" in listener.received[-1]["message"]

    # a dry run shows reminder 4 as due and writes and sends nothing
    dry = remind(store, env, add_seconds(opened, 17 * HOUR), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Reminder 4 for TrainFlow/1/gate (escalated to bob): due (dry run" in dry.stdout
    assert len(comments()) == 2
    assert len(listener.received) == 4
    assert [r.number for r in store.list_reminders(pr_gate.gate_id)] == [2, 3]

    # decided gates are left alone
    for request in (pr_gate, git_gate):
        gates.decide(
            store,
            request.gate_id,
            actor=Actor(login="alice", channel="cli", at=utc_now()),
            intent="approve",
        )
    done = remind(store, env, add_seconds(opened, 17 * HOUR))
    assert done.returncode == 0, done.stderr
    assert "0 reminder(s) sent" in done.stdout
    assert len(comments()) == 2


def test_a_failed_notification_is_reported_and_exits_1_but_the_comment_is_posted(
    gh: FakeGitHub, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens once the socket is closed
    store = LocalApprovalStore(tmp_path / "_hitl")
    opened = utc_now() - timedelta(hours=4, minutes=1)
    review = parse_review(f"github:{REPO}?api_url={gh.url}", local_store=store.location)
    request = open_gate(store, GateId("TrainFlow", "3", "gate"), opened=opened, review=review)
    pull = GitHubReviewBackend(REPO, api_url=gh.url, token=gh.token).open_review(
        request, approval_file="# Approve me\n"
    )
    env = {**os.environ, "METAFLOW_HITL_GITHUB_TOKEN": gh.token, "NO_PROXY": "127.0.0.1"}
    done = remind(
        store, env, add_seconds(opened, 4 * HOUR), "--notifier", f"json://127.0.0.1:{dead}/k3y"
    )
    assert done.returncode == 6  # store or network
    assert "Failed: TrainFlow/3/gate: notification to json://*** failed" in done.stderr
    assert "k3y" not in done.stdout + done.stderr
    assert len(gh.repo(REPO).issue_comments(int(pull["number"] or 0))) == 1
    # the reminder is spent: the next run does not retry it
    again = remind(store, env, add_seconds(opened, 5 * HOUR), "--no-notify")
    assert again.returncode == 0, again.stderr
    assert "already sent" in again.stdout
