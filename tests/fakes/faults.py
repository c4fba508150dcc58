"""A fault-injecting reverse proxy on loopback, for putting real failures between a real client
and a real server.

:class:`FaultProxy` listens on ``127.0.0.1:<ephemeral port>`` and forwards each HTTP request,
unchanged (``Host`` header and body included, so AWS signatures still verify), to one upstream
server (the moto S3 server, :class:`~tests.fakes.github.FakeGitHub`, the Argo Server
stand-in...). Rules scripted per request matcher replace a forwarded exchange with a fault:

=================  ===================================================================
``drop``           close the connection (TCP reset) -- before forwarding, or ``after``:
                   the server did the work and the client never sees the answer
``status``         answer ``status`` (5xx, 429, 403...) with headers such as
                   ``Retry-After`` and a body -- instead of forwarding, or ``after`` it
``delay``          wait ``seconds``, then forward normally (or forward, then wait)
``hang``           answer nothing until the client gives up and closes the connection
                   (its timeout), or ``max_hang`` passes -- before or ``after`` forwarding
=================  ===================================================================

Everything is real TCP: the client's own connection pooling, timeouts and retries run.
Every request is logged (:attr:`FaultProxy.log`) with the fault applied to it and whether it
reached the upstream server (:attr:`FaultProxy.forwarded`).

Usage::

    with FaultProxy(moto_url) as proxy:
        proxy.status("PUT", r"/decision\\.json$", 503, times=2, body=s3_error("SlowDown"))
        proxy.drop("PUT", r"/decision\\.json$", after=True)  # the write lands, the answer is lost
        ...  # point the client at proxy.url
        assert proxy.count("PUT", r"/decision\\.json$", forwarded=True) == 2
        proxy.assert_consumed()
"""

from __future__ import annotations

import contextlib
import http.client
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = ["Exchange", "FaultProxy", "Rule", "s3_error"]

Kind = Literal["drop", "status", "delay", "hang"]
#: Headers that describe one hop, not the message: never copied across the proxy.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Rule:
    """One scripted fault: what it matches, what it does, how many more times."""

    kind: Kind
    method: str | None
    path: re.Pattern[str] | None
    where: Callable[[str, str, bytes], bool] | None = None
    #: Matching requests still to fault; ``None``: every one.
    times: int | None = 1
    after: bool = False
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    hits: int = 0

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.path is not None and not self.path.search(path):
            return False
        return self.where is None or self.where(method, path, body)

    def __str__(self) -> str:
        what = self.kind + (" after forwarding" if self.after else "")
        return f"{what} on {self.method or '*'} {self.path.pattern if self.path else '*'}"


@dataclass(frozen=True)
class Exchange:
    """One request the proxy received, and what became of it."""

    method: str
    path: str
    #: The fault applied (``"status"``, ``"drop"``...), or None when forwarded untouched.
    fault: str | None
    #: Whether the request reached the upstream server.
    forwarded: bool
    #: The upstream's status (None if not forwarded or no answer).
    upstream_status: int | None
    #: What the client was sent: a status, or None (dropped, hung).
    client_status: int | None
    #: Whether the answer reached the client's socket (False: dropped, hung, client gone).
    delivered: bool
    started: float
    elapsed: float


def s3_error(code: str, message: str = "injected by FaultProxy") -> bytes:
    """An S3 error document, as S3 sends with a 4xx/5xx."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>FAULT</RequestId></Error>"
    ).encode()


class _Dropped(Exception):
    """The client's connection was closed on purpose."""


class FaultProxy:
    """A threaded reverse proxy to ``upstream`` (``http://127.0.0.1:PORT``) with faults.

    Parameters
    ----------
    upstream
        The real server's base URL (plain http on loopback).
    max_hang
        Longest a ``hang`` holds a connection when the client never gives up.
    upstream_timeout
        Seconds to wait for the upstream server.
    """

    def __init__(self, upstream: str, *, max_hang: float = 30.0, upstream_timeout: float = 30.0):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://HOST:PORT, not {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self._host, self._port = parts.hostname, parts.port
        self.max_hang = max_hang
        self.upstream_timeout = upstream_timeout
        self.rules: list[Rule] = []
        self.log: list[Exchange] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (_Dropped, OSError):  # dropped on purpose, or the client went away
                    self.close_connection = True

            def _serve(self) -> None:
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The proxy's base URL (``http://127.0.0.1:PORT``)."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- scripting ------------------------------------------------------------------------------
    def add(
        self,
        kind: Kind,
        method: str | None = None,
        path: str | None = None,
        *,
        where: Callable[[str, str, bytes], bool] | None = None,
        times: int | None = 1,
        **options: Any,
    ) -> Rule:
        """Script a fault for the next ``times`` requests matching ``method`` (None: any) and
        the regular expression ``path`` (searched in the path with its query; None: any)."""
        rule = Rule(
            kind=kind,
            method=method.upper() if method else None,
            path=re.compile(path) if path is not None else None,
            where=where,
            times=times,
            **options,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def drop(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        after: bool = False,
        times: int | None = 1,
        **kw: Any,
    ) -> Rule:
        """Close the connection with a TCP reset, before forwarding or ``after`` it."""
        return self.add("drop", method, path, after=after, times=times, **kw)

    def status(
        self,
        method: str | None,
        path: str | None,
        status: int,
        *,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        body: bytes | str = b"",
        after: bool = False,
        **kw: Any,
    ) -> Rule:
        """Answer ``status`` with ``headers`` and ``body`` instead of forwarding (or after)."""
        data = body.encode() if isinstance(body, str) else body
        return self.add(
            "status",
            method,
            path,
            status=status,
            headers=dict(headers or {}),
            body=data,
            after=after,
            times=times,
            **kw,
        )

    def delay(
        self,
        method: str | None,
        path: str | None,
        seconds: float,
        *,
        times: int | None = 1,
        after: bool = False,
        **kw: Any,
    ) -> Rule:
        """Wait ``seconds`` before forwarding (or, ``after``, before answering)."""
        return self.add("delay", method, path, seconds=seconds, times=times, after=after, **kw)

    def hang(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        times: int | None = 1,
        after: bool = False,
        **kw: Any,
    ) -> Rule:
        """Answer nothing until the client closes the connection (its timeout)."""
        return self.add("hang", method, path, times=times, after=after, **kw)

    def clear(self) -> None:
        """Remove every rule (the log stays)."""
        with self._lock:
            self.rules.clear()

    def assert_consumed(self) -> None:
        """Fail if a rule with a count did not fire as many times as scripted."""
        left = [f"{r} ({r.times} left)" for r in self.rules if r.times]
        assert not left, f"scripted faults that never fired: {left}"

    # -- inspection -----------------------------------------------------------------------------
    def exchanges(
        self, method: str | None = None, path: str | None = None, *, forwarded: bool | None = None
    ) -> list[Exchange]:
        """Logged exchanges matching ``method``, the ``path`` pattern and ``forwarded``."""
        rx = re.compile(path) if path is not None else None
        with self._lock:
            log = list(self.log)
        return [
            e
            for e in log
            if (method is None or e.method == method.upper())
            and (rx is None or rx.search(e.path))
            and (forwarded is None or e.forwarded == forwarded)
        ]

    def count(self, method: str | None = None, path: str | None = None, **kw: Any) -> int:
        """How many logged exchanges match (see :meth:`exchanges`)."""
        return len(self.exchanges(method, path, **kw))

    @property
    def forwarded(self) -> list[Exchange]:
        """The exchanges that reached the upstream server, in order."""
        return self.exchanges(forwarded=True)

    # -- serving --------------------------------------------------------------------------------
    def _pick(self, method: str, path: str, body: bytes) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path, body):
                    if rule.times is not None:
                        rule.times -= 1
                    rule.hits += 1
                    return rule
        return None

    def _record(self, handler: Any, rule: Rule | None, started: float, **kw: Any) -> int:
        exchange = Exchange(
            method=handler.command,
            path=handler.path,
            fault=rule.kind if rule else None,
            started=started,
            elapsed=time.monotonic() - started,
            **kw,
        )
        with self._lock:
            self.log.append(exchange)
            return len(self.log) - 1

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        body = _read_body(handler)
        if body is None:  # the client died mid-body: a real server discards the request
            self._record(
                handler,
                None,
                started,
                forwarded=False,
                upstream_status=None,
                client_status=None,
                delivered=False,
            )
            raise _Dropped
        rule = self._pick(handler.command, handler.path, body)
        answer: tuple[int, list[tuple[str, str]], bytes] | None = None
        forwarded = False
        if rule is not None and rule.kind == "delay" and not rule.after:
            self._wait(handler, rule.seconds)
        if rule is None or rule.after or rule.kind == "delay":
            try:
                answer = self._forward(handler, body)
            except OSError:
                answer = (502, [("Content-Type", "text/plain")], b"upstream unreachable")
            forwarded = True
        done = dict(forwarded=forwarded, upstream_status=answer[0] if answer else None)
        if rule is not None and rule.kind == "delay" and rule.after:
            self._wait(handler, rule.seconds)
        if rule is not None and rule.kind in ("drop", "hang"):
            if rule.kind == "hang":
                self._hang(handler)
            self._record(handler, rule, started, client_status=None, delivered=False, **done)
            _reset(handler.connection)
            raise _Dropped
        if rule is not None and rule.kind == "status":
            answer = (rule.status, list(rule.headers.items()), rule.body)
        assert answer is not None
        status, headers, data = answer
        # Logged before the answer is sent, so a client that has its answer finds it logged.
        index = self._record(handler, rule, started, client_status=status, delivered=True, **done)
        try:
            handler.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP and name.lower() != "content-length":
                    handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(data)
            handler.wfile.flush()
        except OSError:  # the client is gone (killed, or gave up)
            with self._lock:
                self.log[index] = replace(self.log[index], delivered=False)
            raise _Dropped from None

    def _forward(
        self, handler: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.upstream_timeout)
        try:
            conn.putrequest(
                handler.command, handler.path, skip_host=True, skip_accept_encoding=True
            )
            for name, value in handler.headers.items():
                if name.lower() not in _HOP and name.lower() != "content-length":
                    conn.putheader(name, value)
            if body or handler.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    def _wait(self, handler: BaseHTTPRequestHandler, seconds: float) -> None:
        """Sleep, but notice a client that gives up (and the proxy stopping)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._closing.wait(min(left, 0.05)):
                return

    def _hang(self, handler: BaseHTTPRequestHandler) -> None:
        """Hold the connection until the client closes it, or ``max_hang`` passes."""
        sock = handler.connection
        deadline = time.monotonic() + self.max_hang
        while time.monotonic() < deadline and not self._closing.is_set():
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        return  # the client closed its end
                except OSError:
                    return
                time.sleep(0.05)  # it sent more (a pipelined request): keep ignoring it


def _read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    """The request body (Content-Length or chunked), or None if the client died mid-body."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            line = handler.rfile.readline()
            if not line:
                return None
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunk = handler.rfile.read(size + 2)
            if len(chunk) < size + 2:
                return None
            chunks.append(chunk[:size])
    length = int(handler.headers.get("Content-Length") or 0)
    data = handler.rfile.read(length) if length else b""
    return data if len(data) == length else None


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the client sees the connection reset, as on a dead peer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
