"""A loopback Kubernetes API that stores Argo objects, for a real ``argo-workflows create``.

Stateful: ``POST`` creates (409 if the name exists), ``GET`` reads (404 if absent), ``PUT``
replaces, ``DELETE`` removes, for ``/apis/argoproj.io/v1alpha1/namespaces/{ns}/{plural}``
collections and items. Anything else is answered 500 and recorded in :attr:`problems`, so a
test sees any request it did not expect. Bodies POSTed or PUT are kept as sent.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.fakes.json_http import serve_json

_PATH = re.compile(
    r"^/apis/argoproj\.io/v1alpha1/namespaces/(?P<ns>[^/]+)/(?P<plural>"
    r"workflowtemplates|cronworkflows|sensors|workflows)(?:/(?P<name>[^/?]+))?(?:\?.*)?$"
)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "code": code,
        "message": message,
    }


class KubeArgo:
    """The objects and the request log of the fake API."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.log: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.log.append((method, path))
            match = _PATH.match(path)
            if not match:
                self.problems.append(f"{method} {path}")
                return 500, _status(500, "InternalError", f"unexpected request {method} {path}")
            ns, plural, name = match.group("ns"), match.group("plural"), match.group("name")
            if method == "POST" and name is None:
                obj = json.loads(body)
                key = (plural, ns, obj["metadata"]["name"])
                if key in self.objects:
                    return 409, _status(409, "AlreadyExists", f"{key} already exists")
                obj["metadata"].setdefault("resourceVersion", "1")
                self.objects[key] = obj
                return 201, obj
            key = (plural, ns, name or "")
            if method == "GET" and name is not None:
                if key not in self.objects:
                    return 404, _status(404, "NotFound", f"{plural} {name!r} not found")
                return 200, self.objects[key]
            if method == "GET":
                items = [o for (p, n, _), o in self.objects.items() if (p, n) == (plural, ns)]
                return 200, {"kind": "List", "items": items, "metadata": {}}
            if method in ("PUT", "PATCH") and name is not None:
                if key not in self.objects:
                    return 404, _status(404, "NotFound", f"{plural} {name!r} not found")
                self.objects[key] = json.loads(body)
                return 200, self.objects[key]
            if method == "DELETE" and name is not None:
                if self.objects.pop(key, None) is None:
                    return 404, _status(404, "NotFound", f"{plural} {name!r} not found")
                return 200, _status(200, "Success", "deleted")
            self.problems.append(f"{method} {path}")
            return 500, _status(500, "InternalError", f"unexpected request {method} {path}")


@contextmanager
def serve_kube(folder: Path) -> Iterator[tuple[KubeArgo, Path]]:
    """Serve a :class:`KubeArgo` on loopback; yields it and a kubeconfig file for it."""
    api = KubeArgo()
    with serve_json(lambda method, path, _headers, body: api.handle(method, path, body)) as url:
        yield api, _kubeconfig(folder, url)


def _kubeconfig(folder: Path, url: str) -> Path:
    """A kubeconfig file pointing at ``url`` with a test token."""
    config = folder / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": url}}],
                "users": [{"name": "test", "user": {"token": "test-not-a-secret"}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                "current-context": "test",
            }
        )
    )
    return config
