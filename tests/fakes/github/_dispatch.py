"""The request pipeline of the fake GitHub: route, authenticate, validate, fault, run, validate.

Each request goes through :meth:`Dispatcher.handle`, one at a time (a lock serialises the
server's threads):

1. match the path against every route of GitHub's description; an undocumented request, or
   a documented one the fake does not implement, is a violation (answered 404);
2. ``Authorization: token X`` or ``Bearer X`` must name a configured token (else 401);
3. the request is validated against its operation (a violation, answered 422 as GitHub does);
4. a scripted fault may answer instead, before or after the operation ran;
5. the operation runs, and its answer is validated against the operation's responses.

Everything is logged as a :class:`LoggedRequest`.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from ._openapi import GitHubContract, Match
from ._ops import ApiError, Call, NotModelled, Operation, Reply
from ._render import Renderer
from ._state import World


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the fake saw it, with the status it answered."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    body: Any  # parsed JSON, raw text, or None
    status: int
    operation_id: str | None  # None when GitHub documents no such request
    pattern: str | None
    user: str | None  # the token's login; None when unauthenticated
    injected: bool = False  # answered (or edited) by a scripted fault

    @property
    def is_write(self) -> bool:
        return self.method not in ("GET", "HEAD")


@dataclass
class Fault:
    """The next ``remaining`` requests to ``route`` get ``status`` (or go through ``edit``)."""

    route: str  # operationId, "METHOD /pattern", or "*"
    remaining: int
    status: int = 502
    after_write: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    edit: Callable[[Any], Any] | None = None  # rewrites the real answer's body instead

    def matches(self, match: Match) -> bool:
        return self.route in ("*", match.operation_id, f"{match.method.upper()} {match.pattern}")


@dataclass
class Answer:
    status: int
    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)


class Dispatcher:
    """Answers requests for one fake server; owns its log, faults and violations."""

    def __init__(
        self, contract: GitHubContract, operations: Mapping[str, Operation], world: World
    ) -> None:
        self.contract = contract
        self.operations = operations
        self.world = world
        self.tokens: dict[str, str] = {}
        self.faults: list[Fault] = []
        self.log: list[LoggedRequest] = []
        self.violations: list[str] = []
        self.lock = threading.RLock()
        self.api = "http://127.0.0.1"
        self.web = "https://github.com"

    def call(self, login: str, **kwargs: Any) -> Call:
        """A :class:`Call` as ``login``, for operations and for seeding helpers."""
        defaults: dict[str, Any] = {"path": "", "params": {}, "query": {}, "body": None}
        render = Renderer(self.world, self.api, self.web)
        return Call(self.world, render, login, **{**defaults, **kwargs})

    def handle(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> Answer:
        with self.lock:
            self.world.requests_used += 1
            split = urlsplit(target)
            path = split.path
            query = parse_qs(split.query, keep_blank_values=True)
            body = _parse_body(raw)
            request = _Request(method, path, split.query, query, headers, raw, body)
            answer, match, user, injected = self._answer(request)
            self.log.append(
                LoggedRequest(
                    method=method,
                    path=path,
                    query=query,
                    body=body,
                    status=answer.status,
                    operation_id=match.operation_id if match else None,
                    pattern=match.pattern if match else None,
                    user=user,
                    injected=injected,
                )
            )
            used = self.world.requests_used
            rate = {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": str(max(0, 5000 - used)),
                "X-RateLimit-Reset": str(self.world.rate_reset),
                "X-RateLimit-Used": str(used),
                "X-RateLimit-Resource": "core",
                "X-GitHub-Request-Id": f"FAKE:{len(self.log):06d}",
            }
            answer.headers = {**rate, **answer.headers}
            return answer

    def _answer(self, request: _Request) -> tuple[Answer, Match | None, str | None, bool]:
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        where = f"{request.method} {request.path}"
        found = self.contract.match(request.method, request.path)
        if isinstance(found, str):
            self.violations.append(f"undocumented request {where}: {found}")
            return _error(404, "Not Found"), None, None, False
        match = found
        if match.operation_id not in self.operations:
            self.violations.append(
                f"unexpected request {where}: GitHub documents it as {match.operation_id} "
                f"({request.method} {match.pattern}), which the fake does not implement"
            )
            return _error(404, "Not Found"), match, None, False

        user = self._authenticate(request.headers)
        if user is None:
            sent = "authorization" in request.headers
            message = "Bad credentials" if sent else "Requires authentication"
            return _error(401, message), match, None, False

        problems = self.contract.request_errors(
            match,
            path=request.path,
            query=ImmutableMultiDict(parse_qsl(request.raw_query, keep_blank_values=True)),
            headers=Headers(list(request.headers.items())),
            body=request.raw or None,
            content_type=request.headers.get("content-type", ""),
        )
        if problems:
            self.violations += [
                f"invalid request {where} ({match.operation_id}): {p}" for p in problems
            ]
            return _error(422, "Invalid request.\n\n" + "\n".join(problems)), match, user, False

        fault = self._take_fault(match)
        if fault is not None and fault.edit is None and not fault.after_write:
            return _fault_answer(fault), match, user, True
        known = len(self.violations)
        reply = self._run(match, user, request)
        if fault is not None and fault.edit is None:
            return _fault_answer(fault), match, user, True
        if len(self.violations) > known:  # not modelled, or crashed: already reported
            return _encode(reply), match, user, False
        if fault is not None and fault.edit is not None:
            reply = Reply(reply.status, fault.edit(reply.body), reply.headers)

        answer = _encode(reply)
        problems = self.contract.response_errors(
            match,
            path=request.path,
            status=answer.status,
            headers=Headers(list(answer.headers.items())),
            body=answer.body,
            content_type=answer.headers.get("Content-Type", ""),
        )
        self.violations += [
            f"invalid response to {where} ({match.operation_id}, {answer.status}): {p}"
            for p in problems
        ]
        return answer, match, user, fault is not None

    def _authenticate(self, headers: Mapping[str, str]) -> str | None:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        return self.tokens.get(credential.strip())

    def _take_fault(self, match: Match) -> Fault | None:
        for fault in self.faults:
            if fault.remaining and fault.matches(match):
                fault.remaining -= 1
                return fault
        return None

    def _run(self, match: Match, user: str, request: _Request) -> Reply:
        call = self.call(
            user, path=request.path, params=match.params, query=request.query, body=request.body
        )
        try:
            return self.operations[match.operation_id](call)
        except ApiError as e:
            return Reply(e.status, e.body, e.headers)
        except NotModelled as e:
            self.violations.append(f"{match.operation_id}: the fake does not model {e}")
            return Reply(422, {"message": f"Not modelled by the fake: {e}"})
        except Exception:
            self.violations.append(
                f"the fake crashed on {match.operation_id}:\n{traceback.format_exc()}"
            )
            return Reply(500, {"message": "The fake GitHub crashed"})


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    raw_query: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    raw: bytes
    body: Any


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _encode(reply: Reply) -> Answer:
    headers = dict(reply.headers)
    if reply.body is None:
        return Answer(reply.status, None, headers)
    headers["Content-Type"] = "application/json; charset=utf-8"
    return Answer(reply.status, json.dumps(reply.body).encode(), headers)


def _error(status: int, message: str) -> Answer:
    return _encode(Reply(status, ApiError(status, message).body))


def _fault_answer(fault: Fault) -> Answer:
    body = fault.body if fault.body is not None else {"message": "Server Error"}
    answer = _encode(Reply(fault.status, body))
    answer.headers.update(fault.headers)
    return answer


class RequestHandler(BaseHTTPRequestHandler):
    """Hands each HTTP request to ``dispatcher`` (set on a subclass per server)."""

    dispatcher: Dispatcher
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each keep-alive answer waits ~40 ms for an ACK

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self.dispatcher.handle(self.command, self.path, headers, raw)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body or b"")))
        self.end_headers()
        if answer.body and self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass
