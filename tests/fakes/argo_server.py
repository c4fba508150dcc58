"""A stateful Argo Server stand-in on 127.0.0.1, held to Argo's own swagger.

:class:`FakeArgoServer` holds workflows and serves the two requests
:class:`~metaflow_hitl.argo.server_resumer.ArgoServerResumer` makes (``GET`` a workflow and
``PUT .../set``). Every request is checked against Argo's swagger (path, method, bearer token,
and the ``/set`` body validated strictly against ``WorkflowSetRequest``), and ``/set`` is applied
the way Argo does: to *every* running suspend node the selector matches, and refused (500,
"no suspend nodes matching") when none is running any more. Requests are applied one at a time,
as the Kubernetes API serialises updates of one object, so two racing ``/set`` calls cannot
both change the same node.

Anything it does not expect is recorded in :attr:`FakeArgoServer.problems` (and answered 500);
tests assert it stays empty. :attr:`FakeArgoServer.set_calls` counts every ``PUT /set`` that
reached a workflow, :attr:`FakeArgoServer.writes` only those that changed a node.

The swagger is ``tests/specs/argo/v3.7.18/swagger.json``, Argo's own file copied into the
repository (``tests/specs/argo/README.md`` names its source); no test skips for want of it.

Usage::

    fake = FakeArgoServer(load_swagger())
    fake.workflows[(NS, WF)] = make_workflow(suspend_node("n1", "deploy"))
    with serve(fake) as url:                     # http://127.0.0.1:<port>
        ArgoServerResumer(url, TOKEN, NS).resume(request, decision)
    assert len(fake.writes) == 1 and fake.problems == []
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.fakes.json_http import serve_json

__all__ = [
    "NS",
    "SPECS",
    "SWAGGER",
    "TOKEN",
    "WF",
    "FakeArgoServer",
    "load_swagger",
    "make_workflow",
    "matches",
    "nodes_of",
    "parse_selector",
    "serve",
    "suspend_node",
]

#: Argo's published API descriptions, one folder per release (``tests/specs/argo/README.md``).
SPECS = Path(__file__).resolve().parents[1] / "specs" / "argo"
SWAGGER = SPECS / "v3.7.18" / "swagger.json"
#: The bearer token the fake accepts (a test value, not a secret).
TOKEN = "s3cr3t-token-value-123"
NS = "ml"
WF = "trainanddeploy-abc12"


def load_swagger() -> dict[str, Any]:
    """Argo v3.7.18's swagger (:data:`SWAGGER`)."""
    return dict(json.loads(SWAGGER.read_text()))


# -- workflows ------------------------------------------------------------------------------------


def suspend_node(
    node_id: str,
    step: str,
    *,
    phase: str = "Running",
    global_name: str | None = None,
    workflow: str = WF,
) -> dict[str, Any]:
    """A gate's suspend node as the injected ``hitl-suspend-<step>`` template makes it."""
    decision: dict[str, Any] = {
        "name": "decision",
        "valueFrom": {"supplied": {}, "default": "timeout"},
    }
    if global_name:
        decision["globalName"] = global_name
    if phase != "Running":
        decision = {"name": "decision", "value": "timeout"}
    return {
        "id": node_id,
        "name": f"{workflow}.hitl-suspend-{step}",
        "displayName": f"hitl-suspend-{step}",
        "type": "Suspend",
        "templateName": f"hitl-suspend-{step}",
        "phase": phase,
        "startedAt": "2026-11-25T10:00:00Z",
        "inputs": {"parameters": [{"name": "hitl-gate", "value": f"{workflow}/{step}"}]},
        "outputs": {"parameters": [decision]},
    }


def make_workflow(
    *nodes: dict[str, Any], compressed: bool = False, name: str = WF, namespace: str = NS
) -> dict[str, Any]:
    """A running Workflow object holding ``nodes`` (optionally gzip-compressed, as Argo does)."""
    pod = {"id": f"{name}-1", "name": name, "type": "DAG", "phase": "Running"}
    node_map = {n["id"]: n for n in (pod, *nodes)}
    status: dict[str, Any] = {"phase": "Running"}
    if compressed:
        raw = gzip.compress(json.dumps(node_map).encode())
        status["compressedNodes"] = base64.b64encode(raw).decode()
    else:
        status["nodes"] = node_map
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
        "spec": {"entrypoint": "main"},
        "status": status,
    }


def nodes_of(wf: dict[str, Any]) -> dict[str, Any]:
    """The node map of a workflow, inflating ``compressedNodes``."""
    status = wf["status"]
    if "compressedNodes" in status:
        return dict(json.loads(gzip.decompress(base64.b64decode(status["compressedNodes"]))))
    return dict(status["nodes"])


# -- the server -----------------------------------------------------------------------------------


class FakeArgoServer:
    """Holds workflows; serves GET workflow and PUT set as Argo v3.7 does; logs the rest."""

    def __init__(self, swagger: dict[str, Any], *, token: str = TOKEN) -> None:
        self.swagger = swagger
        self.token = token
        self.workflows: dict[tuple[str, str], dict[str, Any]] = {}
        self.log: list[tuple[str, str]] = []
        #: Bodies of the ``PUT /set`` calls that changed at least one node.
        self.writes: list[dict[str, Any]] = []
        #: Every ``PUT /set`` with a valid body on an existing workflow (changed a node or not).
        self.set_calls = 0
        self.problems: list[str] = []
        self.echo_auth_in_errors = False
        self._lock = threading.Lock()
        self.routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "([^/]+)", p) + "$"), p, ops)
            for p, ops in swagger["paths"].items()
        ]
        import jsonschema

        set_schema = dict(
            swagger["definitions"]["io.argoproj.workflow.v1alpha1.WorkflowSetRequest"]
        )
        set_schema["additionalProperties"] = False  # strict: a misspelt field is an error
        self.set_validator = jsonschema.Draft4Validator(set_schema)

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        """Answer one request: ``(status, JSON body)``."""
        with self._lock:
            return self._handle(method, raw_path, headers, body)

    def _handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        path, _, _query = raw_path.partition("?")
        self.log.append((method, path))
        auth = headers.get("Authorization")
        if auth != f"Bearer {self.token}":
            message = f"token not valid: {auth}" if self.echo_auth_in_errors else "token not valid"
            return 401, {"code": 16, "message": message}
        matches_ = [(m, p, ops) for rx, p, ops in self.routes if (m := rx.match(path))]
        if not matches_:
            return self.fail(f"{method} {path}: no such path in Argo's swagger")
        match, template, ops = matches_[0]
        if method.lower() not in ops:
            return self.fail(f"{method} {path}: {template} has no {method} in the swagger")
        if self.echo_auth_in_errors:
            return 500, {"code": 13, "message": f"internal error for {auth}"}
        if template == "/api/v1/workflows/{namespace}/{name}" and method == "GET":
            wf = self.workflows.get(match.groups())  # type: ignore[arg-type]
            if wf is None:
                return 404, {"code": 5, "message": "workflows.argoproj.io not found"}
            return 200, wf
        if template == "/api/v1/workflows/{namespace}/{name}/set" and method == "PUT":
            return self.set(match.groups(), body)
        return self.fail(f"{method} {path}: not a request the resumer should make")

    def fail(self, problem: str) -> tuple[int, Any]:
        self.problems.append(problem)
        return 500, {"code": 12, "message": problem}

    def set(self, key: tuple[str, ...], raw: bytes) -> tuple[int, Any]:
        try:
            body = json.loads(raw)
        except ValueError:
            return self.fail("/set body is not JSON")
        errors = [e.message for e in self.set_validator.iter_errors(body)]
        if errors:
            return self.fail(f"/set body does not match WorkflowSetRequest: {errors}")
        wf = self.workflows.get(key)  # type: ignore[arg-type]
        if wf is None:
            return 404, {"code": 5, "message": "not found"}
        self.set_calls += 1
        terms = parse_selector(body.get("nodeFieldSelector", ""))
        outputs = json.loads(body["outputParameters"]) if body.get("outputParameters") else {}
        hit = []
        for node in wf["status"]["nodes"].values():
            if node["type"] == "Suspend" and node["phase"] == "Running" and matches(node, terms):
                hit.append(node)  # no break: Argo updates every match
        if not hit:
            return 500, {
                "code": 13,
                "message": "currently, set only targets suspend nodes: no suspend nodes "
                f"matching nodeFieldSelector: {body.get('nodeFieldSelector')}",
            }
        for node in hit:
            if body.get("phase"):
                node["phase"] = body["phase"]
                node["finishedAt"] = "2026-11-25T11:00:00Z"
            if body.get("message"):
                node["message"] = body["message"]
            for name, value in outputs.items():
                param = next(p for p in node["outputs"]["parameters"] if p["name"] == name)
                if param.get("valueFrom", {}).get("supplied") is None:
                    return self.fail(f"/set output {name!r} is not a supplied parameter")
                param["value"] = value
                del param["valueFrom"]
        self.writes.append(body)
        return 200, wf


def parse_selector(text: str) -> list[tuple[str, str, str]]:
    """``key=value`` / ``key!=value`` terms joined by unescaped commas."""
    terms = []
    for term in re.split(r"(?<!\\),", text):
        m = re.fullmatch(r"([^!=]+)(!=|=)(.*)", term)
        if m is None:
            raise AssertionError(f"bad selector term {term!r}")
        value = re.sub(r"\\(.)", r"\1", m.group(3))
        terms.append((m.group(1), m.group(2), value))
    return terms


def matches(node: dict[str, Any], terms: list[tuple[str, str, str]]) -> bool:
    """Whether a node matches every selector term (the fields Argo supports)."""
    for key, op, value in terms:
        m = re.fullmatch(r"inputs\.parameters\.(.+)\.value", key)
        if m:
            params = {p["name"]: p.get("value") for p in node["inputs"]["parameters"]}
            actual = params.get(m.group(1))
        elif key in ("displayName", "templateName", "phase", "name", "id"):
            actual = node.get(key)
        else:
            raise AssertionError(f"selector field {key!r} is not one Argo supports")
        if (actual == value) != (op == "="):
            return False
    return True


@contextmanager
def serve(fake: FakeArgoServer) -> Iterator[str]:
    """Serve ``fake`` on an ephemeral loopback port; yields its base URL."""
    with serve_json(fake.handle) as url:
        yield url
