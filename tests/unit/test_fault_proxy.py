"""The fault-injecting proxy itself (tests/fakes/faults.py), over real TCP to a tiny upstream."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.fakes.faults import FaultProxy, s3_error


class Upstream:
    """Counts what it received and answers ``200 <method> <path> <body>``."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bytes, str | None]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                upstream.received.append((self.command, self.path, body, self.headers["Host"]))
                data = f"{self.command} {self.path} ".encode() + body
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Upstream", "yes")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.url, max_hang=5) as p:
        yield p


def test_forwards_requests_unchanged_over_keep_alive(upstream: Upstream, proxy: FaultProxy) -> None:
    with requests.Session() as session:
        first = session.put(f"{proxy.url}/a/b?x=1", data=b"payload", timeout=5)
        second = session.get(f"{proxy.url}/c", timeout=5)
    assert (first.status_code, first.content) == (200, b"PUT /a/b?x=1 payload")
    assert first.headers["X-Upstream"] == "yes"
    assert second.content == b"GET /c "
    host = proxy.url.removeprefix("http://")
    assert upstream.received == [("PUT", "/a/b?x=1", b"payload", host), ("GET", "/c", b"", host)]
    assert [(e.method, e.path, e.fault, e.forwarded) for e in proxy.log] == [
        ("PUT", "/a/b?x=1", None, True),
        ("GET", "/c", None, True),
    ]


def test_status_before_forwarding_with_retry_after(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.status("PUT", r"/key$", 503, times=2, headers={"Retry-After": "2"}, body=s3_error("X"))
    answers = [requests.put(f"{proxy.url}/key", data=b"v", timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].headers["Retry-After"] == "2"
    assert b"<Code>X</Code>" in answers[0].content
    assert len(upstream.received) == 1  # only the third reached the server
    assert proxy.count("PUT", r"/key$", forwarded=True) == 1
    proxy.assert_consumed()


def test_status_after_forwarding_loses_a_write(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.status("POST", None, 502, after=True)
    assert requests.post(f"{proxy.url}/issues", data=b"x", timeout=5).status_code == 502
    assert [r[:2] for r in upstream.received] == [("POST", "/issues")]  # it did happen
    (exchange,) = proxy.log
    assert (exchange.upstream_status, exchange.client_status) == (200, 502)


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
def test_drop_resets_the_connection(upstream: Upstream, proxy: FaultProxy, after: bool) -> None:
    proxy.drop("PUT", r"^/k", after=after)
    with pytest.raises(requests.ConnectionError):
        requests.put(f"{proxy.url}/k", data=b"v", timeout=5)
    assert len(upstream.received) == (1 if after else 0)
    assert requests.put(f"{proxy.url}/k", data=b"v", timeout=5).status_code == 200
    assert [e.fault for e in proxy.log] == ["drop", None]


def test_delay_then_forward(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.delay("GET", None, 0.3)
    started = time.monotonic()
    assert requests.get(f"{proxy.url}/slow", timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert proxy.log[0].fault == "delay"
    assert proxy.log[0].forwarded


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
def test_hang_until_the_client_times_out(
    upstream: Upstream, proxy: FaultProxy, after: bool
) -> None:
    proxy.hang("GET", r"/h", after=after)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{proxy.url}/h", timeout=0.3)
    assert time.monotonic() - started < 2
    deadline = time.monotonic() + 3  # the proxy notices the client leaving
    while not proxy.log and time.monotonic() < deadline:
        time.sleep(0.02)
    (exchange,) = proxy.log
    assert exchange.fault == "hang"
    assert exchange.elapsed < 2
    assert len(upstream.received) == (1 if after else 0)


def test_matchers_and_unfired_rules(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.status(None, None, 500, where=lambda m, p, body: b"magic" in body)
    proxy.status("DELETE", None, 500)  # never fires
    assert requests.put(f"{proxy.url}/a", data=b"plain", timeout=5).status_code == 200
    assert requests.put(f"{proxy.url}/a", data=b"magic", timeout=5).status_code == 500
    with pytest.raises(AssertionError, match="never fired"):
        proxy.assert_consumed()


def test_a_client_dying_mid_body_is_not_forwarded(upstream: Upstream, proxy: FaultProxy) -> None:
    host, port = proxy.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.putrequest("PUT", "/torn")
    conn.putheader("Content-Length", "100")
    conn.endheaders(b"only part of it")
    conn.close()
    deadline = time.monotonic() + 3
    while not proxy.log and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proxy.log[0].forwarded is False
    assert upstream.received == []
