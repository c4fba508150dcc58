"""The Apprise notifier, delivering for real to a local HTTP listener.

Apprise's ``json://`` and ``form://`` services POST to a plain HTTP server on 127.0.0.1
(stdlib ``http.server`` in a thread) that records every request and answers with a scripted
status. No mocks of Apprise: what the listener receives is what a webhook would receive.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

pytest.importorskip("apprise")

from metaflow_hitl.errors import ConfigError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.notify import (
    APPRISE_URLS_ENV,
    AppriseNotifier,
    notifier_from_setting,
    redact_url,
)
from metaflow_hitl.ports import Notifier
from metaflow_hitl.records import Actor, Decision, Reminder, Request

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
SECRET = "s3cr3t-T0KEN-abc123"
PR = "https://github.com/acme/approvals/pull/7"
ARGO = "https://argo.example.org/workflows/ml/train-abc"
MFUI = "https://metaflow.example.org/TrainAndDeploy/argo-train-abc"
EVIDENCE = "https://github.com/acme/approvals/pull/7#pullrequestreview-1"


class Listener:
    """A local HTTP server recording POSTs; answers with ``statuses`` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                status = outer.statuses.pop(0) if outer.statuses else 200
                outer.received.append(
                    {
                        "path": self.path,
                        "type": self.headers.get("Content-Type", ""),
                        "body": raw,
                        "status": status,
                    }
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, scheme: str = "json") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/hooks/{SECRET}"

    def delivered(self) -> list[dict[str, Any]]:
        return [r for r in self.received if r["status"] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_request(**overrides: Any) -> Request:
    values: dict[str, Any] = {
        "gate_id": GateId("TrainAndDeploy", "argo-train-abc", "gate"),
        "message": "Deploy model v42?\nAccuracy 0.93 (was 0.91).",
        "input_schema": {},
        "approvers": ("alice", "bob"),
        "min_approvals": 1,
        "allow_self_approval": False,
        "on_timeout": "reject",
        "on_reject": "fail",
        "timeout_seconds": 86400.0,
        "created_at": T0,
        "expires_at": T0 + timedelta(days=1),
        "started_by": "carol",
        "runtime": "argo-workflows",
        "review": {"url": PR, "kind": "pull-request"},
        "links": {"argo_ui": ARGO, "metaflow_ui": MFUI},
    }
    values.update(overrides)
    return Request(**values)


def make_decision(outcome: str = "approved", **overrides: Any) -> Decision:
    channel = "timeout" if outcome == "timed_out" else "github-review"
    who = "timeout" if outcome == "timed_out" else "alice"
    values: dict[str, Any] = {
        "gate_id": GateId("TrainAndDeploy", "argo-train-abc", "gate"),
        "outcome": outcome,
        "proceed": outcome == "approved",
        "decided_by": who,
        "channel": channel,
        "deciders": () if outcome == "timed_out" else (Actor(login=who, channel=channel, at=T0),),
        "decided_at": T0 + timedelta(hours=1),
        "request_digest": "sha256:0",
        "reason": "metrics look good" if outcome != "timed_out" else None,
        "evidence_url": EVIDENCE if outcome != "timed_out" else None,
    }
    values.update(overrides)
    return Decision(**values)


def no_sleep(seconds: float) -> None:
    pass


# -- delivery ------------------------------------------------------------------------------


def test_is_a_notifier(listener: Listener) -> None:
    notifier: Notifier = AppriseNotifier([listener.url()], sleep=no_sleep)
    notifier.gate_opened(make_request())
    assert len(listener.delivered()) == 1


def test_json_gate_opened_carries_message_gate_and_links(listener: Listener) -> None:
    notifier = AppriseNotifier([listener.url("json")], sleep=no_sleep)
    report = notifier.notify_opened(make_request())

    assert report.ok, report
    assert report.deliveries[0].url == "json://***"
    (got,) = listener.received
    assert got["path"] == f"/hooks/{SECRET}"
    payload = json.loads(got["body"])
    assert payload["title"] == "Approval needed: TrainAndDeploy/argo-train-abc/gate"
    body = payload["message"]
    for expected in (
        "Deploy model v42?",
        "Gate: TrainAndDeploy/argo-train-abc/gate",
        "alice, bob",
        "Expires: 2026-01-03T03:04:05.000Z",
        "if nobody decides by then, it counts as rejected, and the gated step fails",
        f"Review: {PR}",
        f"Argo UI: {ARGO}",
        f"Metaflow UI: {MFUI}",
    ):
        assert expected in body, (expected, body)


def test_form_gate_decided_carries_outcome_who_channel_reason_evidence(
    listener: Listener,
) -> None:
    notifier = AppriseNotifier([listener.url("form")], sleep=no_sleep)
    report = notifier.notify_decided(make_request(), make_decision("rejected"))

    assert report.ok, report
    (got,) = listener.received
    assert got["type"].startswith("application/x-www-form-urlencoded")
    form = {k: v[0] for k, v in parse_qs(got["body"]).items()}
    assert form["title"] == "Rejected: TrainAndDeploy/argo-train-abc/gate"
    for expected in (
        "Outcome: Rejected",
        "By: alice",
        "Channel: github-review",
        "Reason: metrics look good",
        f"Evidence: {EVIDENCE}",
        f"Review: {PR}",
    ):
        assert expected in form["message"], (expected, form["message"])


def test_timed_out_says_so(listener: Listener) -> None:
    notifier = AppriseNotifier([listener.url()], sleep=no_sleep)
    notifier.gate_decided(make_request(), make_decision("timed_out"))
    assert notifier.last_report is not None
    assert notifier.last_report.ok
    payload = json.loads(listener.received[0]["body"])
    assert payload["title"].startswith("Timed out (rejected): ")
    assert "Evidence:" not in payload["message"]


def test_every_url_gets_it(listener: Listener) -> None:
    other = Listener()
    try:
        notifier = AppriseNotifier([listener.url("json"), other.url("form")], sleep=no_sleep)
        report = notifier.notify_opened(make_request())
        assert report.ok
        assert len(listener.received) == len(other.received) == 1
    finally:
        other.close()


def test_hostile_text_is_plain_and_capped(listener: Listener) -> None:
    request = make_request(
        message="ok\x1b[31m red\x00\u202e evil\n" + "x" * 5000,
        review={"url": "javascript:alert(1)"},
        links={"argo_ui": "https://ok.example/\nInjected: line", "metaflow_ui": MFUI},
    )
    AppriseNotifier([listener.url()], sleep=no_sleep).notify_opened(request)
    body = json.loads(listener.received[0]["body"])["message"]
    assert "\x1b" not in body
    assert "\x00" not in body
    assert "\u202e" not in body
    assert "ok[31m red evil" in body
    assert len(body) < 1500
    assert "javascript:" not in body
    assert "Injected" not in body
    assert f"Metaflow UI: {MFUI}" in body


# -- failures: retried, reported, never raised ----------------------------------------------


def test_500_twice_then_200_is_delivered_after_retries() -> None:
    server = Listener(statuses=[500, 500])
    waits: list[float] = []
    try:
        notifier = AppriseNotifier([server.url()], attempts=3, backoff=0.01, sleep=waits.append)
        report = notifier.notify_opened(make_request())
    finally:
        server.close()
    assert report.ok
    assert report.deliveries[0].attempts == 3
    assert [r["status"] for r in server.received] == [500, 500, 200]
    assert waits == [0.01, 0.02]


def test_always_failing_listener_reports_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = Listener(statuses=[503] * 10)
    try:
        notifier = AppriseNotifier([server.url()], attempts=2, backoff=0.001)
        report = notifier.notify_decided(make_request(), make_decision())
        notifier.gate_opened(make_request())  # the port method: returns None, no raise
    finally:
        server.close()
    assert not report.ok
    (failed,) = report.failed
    assert failed.attempts == 2
    assert failed.url == "json://***"
    assert failed.error
    assert len(server.received) == 4
    assert notifier.last_report is not None
    assert not notifier.last_report.ok
    assert "json://*** failed after 2 attempt(s)" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET not in str(report)
    assert SECRET not in repr(notifier)


def test_closed_port_reports_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"form://127.0.0.1:{closed_port()}/hooks/{SECRET}"
    notifier = AppriseNotifier([url], attempts=2, backoff=0.001)
    report = notifier.notify_opened(make_request())
    assert not report.ok
    assert report.failed[0].url == "form://***"
    assert "form://*** failed" in caplog.text
    assert SECRET not in caplog.text


def test_one_failing_url_does_not_stop_the_others(listener: Listener) -> None:
    bad = f"json://127.0.0.1:{closed_port()}/x"
    notifier = AppriseNotifier([bad, listener.url()], attempts=1, sleep=no_sleep)
    report = notifier.notify_opened(make_request())
    assert [d.delivered for d in report.deliveries] == [False, True]
    assert len(listener.received) == 1


def test_a_request_that_cannot_be_rendered_is_reported(listener: Listener) -> None:
    notifier = AppriseNotifier([listener.url()], sleep=no_sleep)
    report = notifier.notify_opened(object())  # type: ignore[arg-type]
    assert not report.ok
    assert report.error
    assert report.error.startswith("render failed")
    assert listener.received == []


# -- settings -------------------------------------------------------------------------------


def test_setting_none_is_no_notifier() -> None:
    assert notifier_from_setting(None) is None


def test_setting_apprise_reads_env(listener: Listener) -> None:
    env = {APPRISE_URLS_ENV: f" {listener.url('json')} ,{listener.url('form')}  "}
    notifier = notifier_from_setting("apprise", environ=env, sleep=no_sleep)
    assert notifier is not None
    assert notifier.urls == ["json://***", "form://***"]
    assert notifier.notify_opened(make_request()).ok
    assert len(listener.received) == 2


def test_setting_apprise_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(APPRISE_URLS_ENV, "json://127.0.0.1:1/a json://127.0.0.1:1/b")
    notifier = notifier_from_setting("apprise")
    assert notifier is not None
    assert len(notifier.urls) == 2


@pytest.mark.parametrize("value", ["", "  ", ",,"], ids=["empty", "spaces", "commas"])
def test_setting_apprise_without_env_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match=APPRISE_URLS_ENV) as info:
        notifier_from_setting("apprise", environ={APPRISE_URLS_ENV: value})
    assert info.value.hint
    assert "export" in info.value.hint


def test_setting_list_and_single_url() -> None:
    many = notifier_from_setting(["json://127.0.0.1:1/a", "form://127.0.0.1:1/b"])
    one = notifier_from_setting("json://127.0.0.1:1/a")
    assert many is not None
    assert many.urls == ["json://***", "form://***"]
    assert one is not None
    assert one.urls == ["json://***"]


def test_comma_inside_a_url_query_stays_in_the_url() -> None:
    notifier = notifier_from_setting("mailto://u:p@example.org?to=a@example.org,b@example.org")
    assert notifier is not None
    assert notifier.urls == ["mailto://***"]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("slack", "is not understood"),
        (42, "not int"),
        ({"url": "json://x"}, "not dict"),
        ([], "lists no Apprise URL"),
        (["json://127.0.0.1:1/a", 3], "item #2 is int"),
        ([""], "item #1 is str"),
        (f"nosuchservice://{SECRET}@host", "not one Apprise accepts"),
        (["json://127.0.0.1:1/ok", f"not a url {SECRET}"], "#2 (***) is not a URL"),
    ],
    ids=["bare-word", "int", "dict", "empty-list", "non-string", "blank", "unknown", "no-scheme"],
)
def test_bad_settings_are_config_errors(
    value: object, needle: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as info:
        notifier_from_setting(value)
    assert needle in str(info.value)
    assert SECRET not in str(info.value)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"attempts": True}, {"backoff": -1}],
    ids=["zero-attempts", "bool-attempts", "negative-backoff"],
)
def test_bad_retry_options_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        AppriseNotifier(["json://127.0.0.1:1/a"], **kwargs)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("slack://T000/B000/XXXX", "slack://***"),
        ("JSON://user:pw@host/p", "json://***"),
        ("no scheme token", "***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# -- deep links from the settings ------------------------------------------------------------

UI_ENV = {
    "METAFLOW_UI_URL": "https://mf.example.org/",
    "METAFLOW_HITL_ARGO_UI_URL": "https://argo.example.org",
}
ARGO_ORIGIN = {"workflow": "train-abc", "namespace": "ml"}


def bodies(listener: Listener) -> list[str]:
    return [json.loads(r["body"])["message"] for r in listener.received]


def test_settings_give_argo_and_metaflow_ui_links_when_opened_and_decided(
    listener: Listener,
) -> None:
    notifier = AppriseNotifier([listener.url()], sleep=no_sleep, environ=UI_ENV)
    request = make_request(links={}, origin=ARGO_ORIGIN)
    assert notifier.notify_opened(request).ok
    assert notifier.notify_decided(request, make_decision("approved")).ok
    assert notifier.notify_decided(request, make_decision("timed_out")).ok
    for body in bodies(listener):
        assert f"Review: {PR}" in body
        assert "Argo UI: https://argo.example.org/workflows/ml/train-abc" in body
        # the run page, as Metaflow prints it: {UI_URL}/{flow}/{run_id}
        assert "Metaflow UI: https://mf.example.org/TrainAndDeploy/argo-train-abc" in body
    assert notifier.deep_links(request) == {
        "argo_ui": "https://argo.example.org/workflows/ml/train-abc",
        "metaflow_ui": "https://mf.example.org/TrainAndDeploy/argo-train-abc",
    }


def test_local_gate_gets_a_metaflow_ui_link_and_no_argo_link(listener: Listener) -> None:
    notifier = AppriseNotifier([listener.url()], sleep=no_sleep, environ=UI_ENV)
    request = make_request(
        gate_id=GateId("TrainAndDeploy", "1712", "gate"), links={}, review={}, runtime="local"
    )
    notifier.notify_opened(request)
    (body,) = bodies(listener)
    assert "Metaflow UI: https://mf.example.org/TrainAndDeploy/1712" in body
    assert "Argo UI:" not in body
    assert "Review:" not in body


def test_metaflow_ui_url_argument_wins_over_the_environment(listener: Listener) -> None:
    notifier = AppriseNotifier(
        [listener.url()], sleep=no_sleep, environ=UI_ENV, metaflow_ui_url="http://ui.local:8083"
    )
    notifier.notify_opened(make_request(links={}))
    assert "Metaflow UI: http://ui.local:8083/TrainAndDeploy/argo-train-abc" in bodies(listener)[0]


def test_links_recorded_in_the_request_win_over_settings(listener: Listener) -> None:
    notifier = AppriseNotifier([listener.url()], sleep=no_sleep, environ=UI_ENV)
    origin = {"workflow": "other-wf", "namespace": "ns2"}
    notifier.notify_opened(make_request(origin=origin))  # links: ARGO and MFUI recorded
    body = bodies(listener)[0]
    assert f"Argo UI: {ARGO}" in body
    assert f"Metaflow UI: {MFUI}" in body
    assert "mf.example.org" not in body
    assert "other-wf" not in body


def test_without_settings_there_are_no_ui_links(listener: Listener) -> None:
    notifier = AppriseNotifier([listener.url()], sleep=no_sleep, environ={})
    notifier.notify_opened(make_request(links={}, origin=ARGO_ORIGIN))
    body = bodies(listener)[0]
    assert f"Review: {PR}" in body
    assert "Argo UI:" not in body
    assert "Metaflow UI:" not in body


def test_setting_apprise_passes_its_environment_on(listener: Listener) -> None:
    env = {APPRISE_URLS_ENV: listener.url(), **UI_ENV}
    notifier = notifier_from_setting("apprise", environ=env, sleep=no_sleep)
    assert notifier is not None
    notifier.notify_opened(make_request(links={}))
    body = bodies(listener)[0]
    assert "Metaflow UI: https://mf.example.org/TrainAndDeploy/argo-train-abc" in body


@pytest.mark.parametrize(
    ("env", "kwargs", "name"),
    [
        ({"METAFLOW_UI_URL": "mf.example.org"}, {}, "METAFLOW_UI_URL"),
        ({"METAFLOW_UI_URL": "javascript:alert(1)//"}, {}, "METAFLOW_UI_URL"),
        ({"METAFLOW_HITL_ARGO_UI_URL": "ftp://argo"}, {}, "METAFLOW_HITL_ARGO_UI_URL"),
        ({}, {"metaflow_ui_url": "https://ui .example"}, "metaflow_ui_url"),
    ],
    ids=["no-scheme", "javascript", "ftp-argo", "space-argument"],
)
def test_a_bad_ui_url_is_a_config_error_up_front(
    env: dict[str, str], kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        AppriseNotifier(["json://127.0.0.1:1/a"], environ=env, **kwargs)
    assert "is not an http(s) URL" in str(info.value)
    assert info.value.hint


def test_an_argo_setting_broken_after_start_drops_only_that_link(
    listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    env = dict(UI_ENV)
    notifier = AppriseNotifier([listener.url()], sleep=no_sleep, environ=env)
    env["METAFLOW_HITL_ARGO_UI_URL"] = "argo.example.org"
    report = notifier.notify_opened(make_request(links={}, origin=ARGO_ORIGIN))
    assert report.ok
    body = bodies(listener)[0]
    assert "Argo UI:" not in body
    assert "Metaflow UI: https://mf.example.org/" in body
    assert "no Argo UI link" in caplog.text


def test_reminders_carry_the_deep_links_too(listener: Listener) -> None:
    notifier = AppriseNotifier([listener.url()], sleep=no_sleep, environ=UI_ENV)
    request = make_request(links={}, origin=ARGO_ORIGIN)
    reminder = Reminder(
        gate_id=request.gate_id,
        number=1,
        due_at=T0 + timedelta(hours=4),
        sent_at=T0 + timedelta(hours=4),
        sent_by="waiting-task",
    )
    assert notifier.notify_reminded(request, reminder).ok
    body = bodies(listener)[0]
    assert f"Review: {PR}" in body
    assert "Argo UI: https://argo.example.org/workflows/ml/train-abc" in body
    assert "Metaflow UI: https://mf.example.org/TrainAndDeploy/argo-train-abc" in body


# -- the channel docs: every URL a reader may copy is one Apprise accepts ---------------------

CHANNEL_DOCS = Path(__file__).resolve().parents[2] / "docs" / "channels"
_DOC_URL = re.compile(
    r"(?:slack|workflows|mailtos|jsons?|forms?)://[^\s`'\"<>|]+"
    r"|https://(?:hooks\.slack\.com|[\w.-]+\.logic\.azure\.com)[^\s`'\"<>|]*"
)


# Not copyable examples: redacted as in logs (``slack://***``), elided (``...``), or a syntax
# template (``workflows://HOST:PORT/...``, ``json://host:port/path``).
_NOT_A_URL = re.compile(r"\*\*\*|\.\.\.|…|://(?:HOST|host):(?:PORT|port)/")


def doc_urls() -> list[tuple[str, str]]:
    return [
        (page.stem, url)
        for page in sorted(CHANNEL_DOCS.glob("*.md"))
        for url in _DOC_URL.findall(page.read_text(encoding="utf-8"))
        if not _NOT_A_URL.search(url)
    ]


def test_the_channel_docs_show_urls_for_every_apprise_channel() -> None:
    pages = {page for page, _ in doc_urls()}
    assert {"slack", "teams", "email", "webhook"} <= pages, pages
    assert len(doc_urls()) >= 15


@pytest.mark.parametrize(
    "url", [url for _, url in doc_urls()], ids=[f"{p}-{i}" for i, (p, _) in enumerate(doc_urls())]
)
def test_every_url_in_the_channel_docs_is_one_apprise_accepts(url: str) -> None:
    notifier = notifier_from_setting(url, environ={})
    assert notifier is not None
    assert len(notifier.urls) == 1, url  # one URL, not split apart at a comma
