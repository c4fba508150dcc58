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
from urllib.parse import parse_qs, urlsplit

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


_JOBS = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/?]+))?(\?.*)?$")
_PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(\?.*)?$")


class FakeKubernetesJobs:
    """The part of the Kubernetes API that Metaflow's ``@kubernetes`` launcher talks to.

    ``kubernetes step`` (``metaflow/plugins/kubernetes/kubernetes_job.py``) creates a
    ``batch/v1`` Job (``create_namespaced_job``), then polls it (``read_namespaced_job``)
    and its pods (``list_namespaced_pod`` with ``labelSelector=job-name=<name>``). Stateful:
    a created Job is stored (a second POST of its name is ``409 AlreadyExists``) and read
    back with ``status.active = 1``. With a ``kubelet`` (:class:`LocalKubelet`) each Job's
    container runs as a local process and its pod and Job statuses follow it (``Running``,
    then ``Succeeded`` / ``Failed`` with the exit code, as ``RunningJob`` reads them);
    without one no pod is ever scheduled. Every request, expected or not, is in :attr:`log`;
    unexpected ones also in :attr:`problems`.
    """

    def __init__(self, kubelet: LocalKubelet | None = None) -> None:
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.log: list[tuple[str, str, int]] = []
        self.problems: list[str] = []
        self.kubelet = kubelet
        self._lock = threading.Lock()

    def _schedule(self, key: tuple[str, str], job: dict[str, Any]) -> None:
        assert self.kubelet is not None
        name = f"{key[1]}-pod"
        container = job["spec"]["template"]["spec"]["containers"][0]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": key[0], "labels": {"job-name": key[1]}},
            "status": {"phase": "Running", "containerStatuses": [_container(container, None)]},
        }
        self.pods[key] = pod

        def run() -> None:
            code = self.kubelet.run(container, pod_name=name, namespace=key[0])
            with self._lock:
                pod["status"] = {
                    "phase": "Succeeded" if code == 0 else "Failed",
                    "containerStatuses": [_container(container, code)],
                }
                self.jobs[key]["status"] = {"succeeded": 1} if code == 0 else {"failed": 1}

        threading.Thread(target=run, daemon=True).start()

    def created(self) -> list[dict[str, Any]]:
        """The Jobs created, in order."""
        with self._lock:
            return [copy.deepcopy(job) for job in self.jobs.values()]

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            status, answer = self._handle(method, path, body)
            self.log.append((method, path, status))
            return status, answer

    def _handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        jobs, pods = _JOBS.match(path), _PODS.match(path)
        if jobs and method == "POST" and jobs.group(2) is None:
            job = json.loads(body)
            meta = job.setdefault("metadata", {})
            if "generateName" in meta and "name" not in meta:
                meta["name"] = f"{meta['generateName']}{len(self.jobs):05d}"
            key = (jobs.group(1), meta["name"])
            if key in self.jobs:
                return 409, _status(409, "AlreadyExists", f'jobs.batch "{key[1]}" already exists')
            meta.update(namespace=key[0], uid=f"uid-{len(self.jobs)}", resourceVersion="1")
            job["status"] = {"active": 1}
            self.jobs[key] = job
            if self.kubelet is not None:
                self._schedule(key, job)
            return 201, copy.deepcopy(job)
        if jobs and method == "GET" and jobs.group(2) is not None:
            job = self.jobs.get((jobs.group(1), jobs.group(2)))
            if job is None:
                return 404, _status(404, "NotFound", f'jobs.batch "{jobs.group(2)}" not found')
            return 200, copy.deepcopy(job)
        if pods and method == "GET":
            query = parse_qs(urlsplit(path).query).get("labelSelector", [""])[0]
            items = [
                copy.deepcopy(p)
                for (ns, job), p in self.pods.items()
                if ns == pods.group(1) and query in ("", f"job-name={job}")
            ]
            return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
        self.problems.append(f"unexpected request {method} {path}")
        return 404, _status(404, "NotFound", f"the server could not find {path}")


def _container(container: dict[str, Any], exit_code: int | None) -> dict[str, Any]:
    """A ``V1ContainerStatus``: running, or terminated with ``exit_code``."""
    if exit_code is None:
        state: dict[str, Any] = {"running": {"startedAt": "2026-12-04T10:00:00Z"}}
    else:
        state = {
            "terminated": {
                "exitCode": exit_code,
                "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": "2026-12-04T10:00:00Z",
                "finishedAt": "2026-12-04T10:00:01Z",
            }
        }
    return {
        "name": container["name"],
        "image": container.get("image") or "",
        "imageID": "",
        "ready": exit_code is None,
        "restartCount": 0,
        "state": state,
    }


class LocalKubelet:
    """Runs a Job's container as a local process: its ``command`` unchanged, its ``env``
    (Downward API ``fieldRef`` values filled in as a kubelet would), in a fresh directory
    under ``root``, on top of ``base_env`` (which gives the local interpreter's PATH)."""

    def __init__(self, root: Path, base_env: dict[str, str]) -> None:
        self.root = root
        self.base_env = base_env
        self.outputs: list[str] = []

    def run(self, container: dict[str, Any], *, pod_name: str, namespace: str) -> int:
        import subprocess

        fields = {
            "metadata.name": pod_name,
            "metadata.namespace": namespace,
            "metadata.uid": f"uid-{pod_name}",
            "spec.nodeName": "local",
            "spec.serviceAccountName": "default",
            "status.hostIP": "127.0.0.1",
            "status.podIP": "127.0.0.1",
        }
        env = dict(self.base_env)
        for item in container.get("env") or []:
            if item.get("value") is not None:
                env[item["name"]] = str(item["value"])
            elif item.get("valueFrom", {}).get("fieldRef"):
                env[item["name"]] = fields.get(item["valueFrom"]["fieldRef"]["fieldPath"], "")
        workdir = self.root / pod_name
        workdir.mkdir(parents=True)
        done = subprocess.run(
            container["command"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.outputs.append(done.stdout + done.stderr)
        return done.returncode


@contextmanager
def serve_jobs(fake: FakeKubernetesJobs) -> Iterator[str]:
    """Serve ``fake`` on ``http://127.0.0.1:<port>`` for the ``with`` block."""
    with serve_json(
        lambda method, path, _headers, body: fake.handle(method, path, body), http11=True
    ) as url:
        yield url
