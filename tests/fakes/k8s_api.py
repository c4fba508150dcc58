"""A small stateful Kubernetes API server on loopback, holding Argo ``Workflow`` objects.

:class:`FakeKubernetes` serves the two requests
:class:`~metaflow_hitl.argo.k8s_resumer.KubernetesResumer` makes through a real
``kubernetes.client.CustomObjectsApi``::

    GET /apis/argoproj.io/v1alpha1/namespaces/{ns}/workflows/{name}
    PUT /apis/argoproj.io/v1alpha1/namespaces/{ns}/workflows/{name}

as the API server does: ``metadata.resourceVersion`` is bumped on every write, and a ``PUT``
carrying a stale (or no) ``resourceVersion`` is refused with ``409 Conflict`` and a ``Status``
body. :meth:`FakeKubernetes.storm` makes another writer (the workflow controller) update the
object just before each of the next N writes arrive, so each of them is stale: a 409 storm.

Optionally every ``PUT`` body is validated against Argo's ``Workflow`` JSON schema (a
``jsonschema`` validator, see :func:`workflow_validator`); a violation is answered 422 and
recorded in :attr:`FakeKubernetes.problems`, as is any request it does not expect. Tests
assert that list stays empty.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.fakes.json_http import serve_json

__all__ = ["FakeKubernetes", "serve", "workflow_validator"]

_PATH = re.compile(r"^/apis/argoproj\.io/v1alpha1/namespaces/([^/]+)/workflows/([^/?]+)(\?.*)?$")


def workflow_validator(schema_file: Path) -> Any:
    """A strict validator of Argo ``Workflow`` objects from Argo's ``schema.json``.

    Objects in the schema refuse unknown properties (a misspelt field is an error);
    ``IntOrString`` and ``Quantity`` accept numbers, as Kubernetes does.
    """
    from jsonschema.validators import validator_for

    schema = json.loads(schema_file.read_text())
    defs = schema["definitions"]
    for name in (
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
    ):
        if name in defs:
            defs[name] = {"type": ["string", "integer", "number"]}
    for definition in defs.values():
        if definition.get("type") == "object" and "properties" in definition:
            definition.setdefault("additionalProperties", False)
    root = {"definitions": defs, "$ref": "#/definitions/io.argoproj.workflow.v1alpha1.Workflow"}
    return validator_for(schema)(root)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class FakeKubernetes:
    """Workflows by ``(namespace, name)``; every request logged in :attr:`log`."""

    def __init__(self, validator: Any = None) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.validator = validator
        self.log: list[tuple[str, str, int]] = []
        self.writes: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self._storm = 0
        self._lock = threading.Lock()

    def add(self, workflow: dict[str, Any]) -> None:
        """Store a workflow (its ``resourceVersion`` is kept, default ``"1"``)."""
        wf = copy.deepcopy(workflow)
        wf["metadata"].setdefault("resourceVersion", "1")
        self.objects[(wf["metadata"]["namespace"], wf["metadata"]["name"])] = wf

    def storm(self, writes: int) -> None:
        """Another writer updates the object just before each of the next ``writes`` PUTs."""
        self._storm = writes

    def conflicts(self) -> int:
        """How many 409s were answered."""
        return sum(1 for _, _, status in self.log if status == 409)

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            status, answer = self._handle(method, path, body)
            self.log.append((method, path, status))
            return status, answer

    def _handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        m = _PATH.match(path)
        if not m or method not in ("GET", "PUT"):
            self.problems.append(f"unexpected request {method} {path}")
            return 404, _status(404, "NotFound", f"the server could not find {path}")
        key = (m.group(1), m.group(2))
        stored = self.objects.get(key)
        if stored is None:
            return 404, _status(404, "NotFound", f'workflows.argoproj.io "{key[1]}" not found')
        if method == "GET":
            return 200, copy.deepcopy(stored)
        try:
            new = json.loads(body)
        except ValueError:
            self.problems.append("PUT body is not JSON")
            return 400, _status(400, "BadRequest", "body is not JSON")
        if self.validator is not None:
            errors = [
                f"{'/'.join(map(str, e.path))}: {e.message}"
                for e in self.validator.iter_errors(new)
            ]
            if errors:
                self.problems.append(f"PUT body is not a valid Workflow: {errors[:3]}")
                return 422, _status(422, "Invalid", "; ".join(errors[:3]))
        if (new.get("metadata") or {}).get("name") != key[1]:
            self.problems.append("PUT body names another object")
            return 400, _status(400, "BadRequest", "name in body does not match the URL")
        if self._storm > 0:  # the controller wrote first
            self._storm -= 1
            stored["metadata"]["resourceVersion"] = str(
                int(stored["metadata"]["resourceVersion"]) + 1
            )
        if new["metadata"].get("resourceVersion") != stored["metadata"]["resourceVersion"]:
            return 409, _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on workflows.argoproj.io "{key[1]}": the object '
                "has been modified; please apply your changes to the latest version and try "
                "again",
            )
        new["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"]) + 1)
        self.objects[key] = new
        self.writes.append(copy.deepcopy(new))
        return 200, copy.deepcopy(new)


@contextmanager
def serve(fake: FakeKubernetes) -> Iterator[str]:
    """Serve ``fake`` on ``http://127.0.0.1:<port>`` for the ``with`` block."""
    with serve_json(
        lambda method, path, _headers, body: fake.handle(method, path, body), http11=True
    ) as url:
        yield url
