"""Resume one gate's suspend node through the Argo Server REST API.

One ``PUT /api/v1/workflows/{namespace}/{name}/set`` both records the decision in the node's
``decision`` output and resumes it (``phase: Succeeded``): a single atomic update on the
server, unlike the UI's set-then-resume. The node is selected by its unique ``hitl-gate``
input parameter (``inputs.parameters.hitl-gate.value=<workflow>/<step>``, see
:mod:`metaflow_hitl.argo.inject`).

Argo updates *every* node a selector matches, so the workflow is read first: exactly one
running suspend node must match (a gate inside a foreach would match several: refused), and
a gate whose node already finished is reported as resumed (``False``) without a write.

Docs: https://argo-workflows.readthedocs.io/en/latest/rest-api/,
https://argo-workflows.readthedocs.io/en/latest/access-token/ and
https://argo-workflows.readthedocs.io/en/latest/node-field-selector/.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from metaflow_hitl.argo.inject import GATE_PARAMETER
from metaflow_hitl.argo.k8s_resumer import (
    DECISION_OUTPUT,
    gate_target,
    inflate_nodes,
    resume_message,
)
from metaflow_hitl.argo.resume_flow import (
    ResumeResult,
    drive_resume,
    node_wait_seconds,
    probe_run,
    raise_if_ended,
)
from metaflow_hitl.durations import seconds_setting
from metaflow_hitl.errors import ConfigError, StoreError
from metaflow_hitl.records import Decision, Request

__all__ = ["ArgoServerResumer", "node_field_selector"]

#: Seconds to connect and to wait for each answer; ``METAFLOW_HITL_ARGO_TIMEOUT`` overrides.
_TIMEOUT = 30.0
_SYNC_HINT = "Retry later with: python flow.py hitl sync"


def _escape(value: str) -> str:
    """Escape a selector value as Kubernetes ``fields.EscapeValue`` does."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def node_field_selector(value: str) -> str:
    """The node field selector of a gate's suspend node."""
    return f"inputs.parameters.{GATE_PARAMETER}.value={_escape(value)}"


class ArgoServerResumer:
    """Resume gates with the Argo Server's ``/set`` endpoint.

    Parameters
    ----------
    server_url
        The Argo Server's base URL (``https://argo.example.com:2746``).
    token
        A Kubernetes ServiceAccount token (with or without the ``Bearer`` prefix) allowed to
        get and update workflows in the namespace.
    namespace
        The namespace to use when a request does not record one.
    session
        A ``requests.Session`` (TLS settings, proxies); default: a new one.
    """

    def __init__(
        self,
        server_url: str,
        token: str,
        namespace: str | None,
        *,
        session: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(server_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"the Argo Server URL {server_url!r} is not an http(s) URL.",
                hint="Set METAFLOW_HITL_ARGO_SERVER=https://argo.example.com:2746",
            )
        token = re.sub(r"(?i)^bearer(\s+|$)", "", (token or "").strip()).strip()
        if not token:
            raise ConfigError(
                "no token for the Argo Server.",
                hint="Set METAFLOW_HITL_ARGO_TOKEN to a ServiceAccount token.",
            )
        self.server_url = server_url.rstrip("/")
        self.namespace = namespace
        self._token = token
        self._session = session
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"ArgoServerResumer({self.server_url!r}, <token>, {self.namespace!r})"

    def resume(self, request: Request, decision: Decision) -> bool:
        """Resume the gate's suspend node; False if it was resumed (or timed out) already.

        Raises
        ------
        ConfigError
            Missing workflow, namespace or token, or the token is refused.
        RunEnded
            The run was stopped, failed, deleted or replaced: nothing can resume it.
        StoreError
            The server, workflow or node cannot be reached or updated.
        """
        return raise_if_ended(request, self.resume_gate(request, decision))

    def resume_gate(
        self, request: Request, decision: Decision, *, wait_seconds: float | None = None
    ) -> ResumeResult:
        """Resume the gate's node and say what that came to (:class:`ResumeOutcome`): waits up
        to ``wait_seconds`` (default ``METAFLOW_HITL_ARGO_NODE_WAIT``) for the node to exist,
        and checks the workflow's UID against the request's before writing."""
        target = gate_target(request, self.namespace)
        ns, name, value = target
        path = f"/api/v1/workflows/{quote(ns, safe='')}/{quote(name, safe='')}"
        failed: list[StoreError] = []

        def write(_ns: str, _name: str, where: str, _wf: Any, _nodes: Any, _node_id: str) -> bool:
            if failed:  # the write failed and the node still runs: report that failure
                raise failed[0]
            body = {
                "nodeFieldSelector": node_field_selector(value),
                "phase": "Succeeded",
                "outputParameters": json.dumps({DECISION_OUTPUT: decision.outcome}),
                "message": resume_message(decision),
            }
            try:
                self._send("PUT", path + "/set", where, body)
            except StoreError as exc:
                # Someone may have resumed it between our read and write: read again.
                failed.append(exc)
                return False
            return True

        return drive_resume(
            request,
            target,
            read=self._reader(),
            write=write,
            wait_seconds=node_wait_seconds() if wait_seconds is None else wait_seconds,
            sleep=self._sleep,
        )

    def probe(self, request: Request) -> ResumeResult:
        """Whether the gate's run is alive (``RESUMED``), ended or gone; writes nothing."""
        return probe_run(request, gate_target(request, self.namespace), read=self._reader())

    def _reader(self) -> Any:
        def read(ns: str, name: str, where: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
            path = f"/api/v1/workflows/{quote(ns, safe='')}/{quote(name, safe='')}"
            wf = self._send("GET", path, where, None, missing_ok=True)
            if wf is None:
                return None
            status = wf.get("status") if isinstance(wf, dict) else None
            nodes, _ = inflate_nodes(status or {}, where=where, hydrated=True)
            return wf, nodes

        return read

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>")[:500]

    def _send(
        self,
        method: str,
        path: str,
        where: str,
        body: dict[str, Any] | None,
        *,
        missing_ok: bool = False,
    ) -> Any:
        import requests

        session = self._session
        if session is None:
            session = self._session = requests.Session()
        url = self.server_url + path
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            # requests lets REQUESTS_CA_BUNDLE override a session's own ``verify``: pass it.
            verify = getattr(session, "verify", True)
            resp = session.request(
                method,
                url,
                headers=headers,
                json=body,
                timeout=_timeout(),
                **({} if verify is True else {"verify": verify}),
            )
        except requests.RequestException as exc:
            raise StoreError(
                self._scrub(
                    f"could not reach the Argo Server at {self.server_url} to {method} {where} "
                    f"({type(exc).__name__}: {exc})"
                ),
                hint=_SYNC_HINT,
            ) from None
        if resp.status_code == 200:
            try:
                return resp.json()
            except ValueError:
                raise StoreError(
                    f"the Argo Server at {self.server_url} answered {method} {where} with "
                    "something that is not JSON."
                ) from None
        detail = self._scrub(_error_detail(resp))
        if resp.status_code == 401:
            raise ConfigError(
                f"the Argo Server at {self.server_url} refused the token (HTTP 401: {detail}).",
                hint="Check METAFLOW_HITL_ARGO_TOKEN (a ServiceAccount token; the server must "
                "run with --auth-mode=client).",
            )
        if resp.status_code == 403:
            raise ConfigError(
                f"the token may not {method} {where} on the Argo Server (HTTP 403: {detail}).",
                hint="Grant its ServiceAccount get and update on workflows.argoproj.io in that "
                "namespace (see the README's RBAC section).",
            )
        if resp.status_code == 404 and missing_ok:
            return None
        if resp.status_code == 404:
            raise StoreError(f"{where} was not found on the Argo Server (HTTP 404: {detail}).")
        raise StoreError(
            f"the Argo Server at {self.server_url} failed {method} {where} "
            f"(HTTP {resp.status_code}: {detail})",
            hint=_SYNC_HINT,
        )


def _timeout() -> float:
    """``METAFLOW_HITL_ARGO_TIMEOUT`` (seconds per request), else 30."""
    return seconds_setting("METAFLOW_HITL_ARGO_TIMEOUT", _TIMEOUT)


def _error_detail(resp: Any) -> str:
    try:
        message = resp.json().get("message")
    except (ValueError, AttributeError):
        message = None
    if isinstance(message, str) and message:
        return message
    return str(resp.reason or resp.text or "no detail")
