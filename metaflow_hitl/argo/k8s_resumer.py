"""Resume one gate's suspend node through the Kubernetes API (no Argo Server needed).

A port of Argo's own ``updateSuspendedNode`` (``workflow/util/util.go``, which
``argo node set`` and the Argo Server's ``/set`` call), narrowed to exactly one node:

1. GET the Workflow (``argoproj.io/v1alpha1``, ``workflows``) and keep its
   ``metadata.resourceVersion``;
2. refuse an offloaded node status (``status.offloadNodeStatusVersion``): the nodes live in
   Argo's database, which only the Argo Server can reach;
3. inflate ``status.compressedNodes`` (base64 of gzip, or zstd when ``zstandard`` is
   installed);
4. select the suspend nodes whose ``hitl-gate`` input parameter is this gate's
   (``<workflow>/<step>``, set by :mod:`metaflow_hitl.argo.inject`). Exactly one must be
   running: Argo would update every match, we refuse instead. None running but one found
   means the gate was resumed already (or timed out): nothing is written;
5. set ``phase: Succeeded``, ``finishedAt``, ``message`` and the ``decision`` output (its
   ``valueFrom`` removed; ``status.outputs.parameters`` upserted if it has a ``globalName``);
6. re-encode the nodes in the form they were read, and replace the Workflow with the
   resourceVersion read; on 409 Conflict start again from 1, a bounded number of times.

The decision is always ``Succeeded`` with ``decision`` = the outcome (``approved``,
``rejected``, ``timed_out``); the gated step branches on the recorded decision, so a
rejection does not turn the DAG red.

Docs: https://argo-workflows.readthedocs.io/en/latest/node-field-selector/ and
https://argo-workflows.readthedocs.io/en/latest/intermediate-inputs/. The ServiceAccount
needs ``get`` and ``update`` on ``workflows.argoproj.io`` in the namespace.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from metaflow_hitl.argo.inject import GATE_PARAMETER
from metaflow_hitl.errors import ConfigError, StoreError
from metaflow_hitl.records import Decision, Request

__all__ = ["KubernetesResumer", "gate_value", "resume_message"]

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"
DECISION_OUTPUT = "decision"

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SYNC_HINT = "Retry later with: python flow.py hitl sync"


# -- shared with the Argo Server resumer -----------------------------------------------------


def gate_target(request: Request, namespace: str | None) -> tuple[str, str, str]:
    """``(namespace, workflow, gate value)`` of a request's suspend node.

    Raises
    ------
    ConfigError
        If the request does not name its workflow, or no namespace is known.
    """
    workflow = request.origin.get("workflow")
    if not workflow:
        raise ConfigError(
            f"gate {request.gate_id} has no Argo workflow name in its request (origin.workflow); "
            "only gates opened by a run on Argo Workflows can be resumed there."
        )
    ns = request.origin.get("namespace") or namespace
    if not ns:
        raise ConfigError(
            f"no Kubernetes namespace for gate {request.gate_id} (workflow {workflow!r}): the "
            "request records none and none was configured.",
            hint="Set METAFLOW_HITL_ARGO_NAMESPACE (or METAFLOW_KUBERNETES_NAMESPACE).",
        )
    return ns, workflow, gate_value(workflow, request.gate_id.step)


def gate_value(workflow: str, step: str) -> str:
    """The ``hitl-gate`` input value of a gate's suspend node: ``<workflow>/<step>``."""
    return f"{workflow}/{step}"


def resume_message(decision: Decision) -> str:
    """The node message Argo shows: who decided, like Argo's own ``Resumed by: ...``."""
    return f"Resumed by metaflow-hitl: {decision.summary()}"[:1000]


def inflate_nodes(
    status: dict[str, Any], *, where: str, hydrated: bool = False
) -> tuple[dict[str, Any], str | None]:
    """The node map of a workflow status, and the codec it was compressed with (or None).

    ``hydrated`` says the status came from the Argo Server, which loads offloaded nodes
    itself; otherwise an offloaded status is refused (fail closed).

    Raises
    ------
    StoreError
        If the status is offloaded to Argo's database, or compressed in a form this
        process cannot read.
    """
    if status.get("offloadNodeStatusVersion") and not (hydrated and status.get("nodes")):
        raise StoreError(
            f"the node status of {where} is offloaded to Argo's database "
            f"(offloadNodeStatusVersion {status['offloadNodeStatusVersion']!r}); only the Argo "
            "Server can read it.",
            hint="Resume through the Argo Server: set METAFLOW_HITL_ARGO_SERVER and its token.",
        )
    nodes = status.get("nodes")
    packed = status.get("compressedNodes")
    if nodes or not packed:
        return dict(nodes or {}), None
    try:
        raw = base64.b64decode(packed, validate=True)
    except ValueError:
        raise StoreError(f"status.compressedNodes of {where} is not base64.") from None
    codec = "gzip" if raw[:2] == _GZIP_MAGIC else "zstd" if raw[:4] == _ZSTD_MAGIC else None
    try:
        if codec == "gzip":
            text = gzip.decompress(raw)
        elif codec == "zstd":
            text = _zstd().ZstdDecompressor().decompressobj().decompress(raw)
        else:
            raise StoreError(
                f"status.compressedNodes of {where} uses a compression this release cannot read "
                "(not gzip or zstd; Argo 4 may use brotli).",
                hint="Resume through the Argo Server, or set WORKFLOW_COMPRESSION_ALGORITHM=gzip "
                "on the Argo controller.",
            )
        inflated = json.loads(text)
    except (OSError, EOFError, ValueError) as exc:
        raise StoreError(f"status.compressedNodes of {where} is unreadable ({exc}).") from None
    if not isinstance(inflated, dict):
        raise StoreError(f"status.compressedNodes of {where} is not a map of nodes.")
    return inflated, codec


def deflate_nodes(nodes: dict[str, Any], codec: str) -> str:
    """Encode a node map as ``status.compressedNodes`` with ``codec`` (``gzip``/``zstd``)."""
    text = json.dumps(nodes, separators=(",", ":")).encode("utf-8")
    packed = gzip.compress(text) if codec == "gzip" else _zstd().ZstdCompressor().compress(text)
    return base64.b64encode(packed).decode("ascii")


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        raise StoreError(
            "the workflow's node status is zstd-compressed and the 'zstandard' module is not "
            "installed.",
            hint="pip install zstandard, or resume through the Argo Server.",
        ) from None
    return zstandard


def _gate_input(node: dict[str, Any]) -> str | None:
    for param in (node.get("inputs") or {}).get("parameters") or []:
        if param.get("name") == GATE_PARAMETER:
            value = param.get("value")
            return value if isinstance(value, str) else None
    return None


def gate_nodes(nodes: dict[str, Any], value: str) -> tuple[list[str], list[str]]:
    """Ids of the gate's suspend nodes: ``(running, all)``, each sorted."""
    found = sorted(
        node_id
        for node_id, node in nodes.items()
        if isinstance(node, dict) and node.get("type") == "Suspend" and _gate_input(node) == value
    )
    running = [n for n in found if nodes[n].get("phase") == "Running"]
    return running, found


def pick_running_node(nodes: dict[str, Any], value: str, *, where: str) -> str | None:
    """The one running suspend node of the gate, or None if it was resumed already.

    Raises
    ------
    StoreError
        If the gate has no suspend node yet, or more than one is running (Argo would
        resume them all; we never do).
    """
    running, found = gate_nodes(nodes, value)
    if len(running) > 1:
        raise StoreError(
            f"{len(running)} running suspend nodes of {where} have {GATE_PARAMETER}={value!r} "
            f"({', '.join(running)}); refusing to resume more than one. Is the gate inside a "
            "foreach?"
        )
    if running:
        return running[0]
    if found:
        return None
    raise StoreError(
        f"{where} has no suspend node with {GATE_PARAMETER}={value!r} yet (the gate's notify "
        "task may still be running, or the workflow was not compiled with this gate).",
        hint=_SYNC_HINT,
    )


def _rfc3339_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_suspend_node(wf: dict[str, Any], node: dict[str, Any], decision: str, message: str) -> None:
    """Mutate ``node`` as Argo's ``updateSuspendedNode`` does for ``phase=Succeeded``.

    Raises
    ------
    StoreError
        If the node has no supplied ``decision`` output (or it was already set).
    """
    params = (node.get("outputs") or {}).get("parameters") or []
    param = next((p for p in params if p.get("name") == DECISION_OUTPUT), None)
    if param is None or not isinstance(param.get("valueFrom"), dict):
        raise StoreError(
            f"suspend node {node.get('id') or node.get('name')!r} has no supplied "
            f"{DECISION_OUTPUT!r} output parameter (or it was already set); was the workflow "
            "compiled by this release of metaflow-hitl?"
        )
    if "supplied" not in param["valueFrom"]:
        raise StoreError(
            f"cannot set output parameter {DECISION_OUTPUT!r} of node "
            f"{node.get('id')!r}: it does not use valueFrom.supplied"
        )
    node["phase"] = "Succeeded"
    node["finishedAt"] = _rfc3339_now()
    node["message"] = message
    param["value"] = decision
    param.pop("valueFrom", None)
    global_name = param.get("globalName")
    if global_name:
        status = wf.setdefault("status", {})
        if not isinstance(status.get("outputs"), dict):
            status["outputs"] = {}
        globals_ = status["outputs"].setdefault("parameters", [])
        existing = next((p for p in globals_ if p.get("name") == global_name), None)
        if existing is None:
            globals_.append({"name": global_name, "value": decision})
        else:
            existing["value"] = decision


# -- the Kubernetes adapter ------------------------------------------------------------------


class KubernetesResumer:
    """Resume gates by updating the Workflow object through the Kubernetes API.

    Parameters
    ----------
    namespace
        The namespace to use when a request does not record one.
    api
        A ``kubernetes.client.CustomObjectsApi`` (or anything with its
        ``get_namespaced_custom_object`` / ``replace_namespaced_custom_object``). Default:
        one built from the in-cluster config, else the kubeconfig, on first use.
    kubeconfig
        A kubeconfig file to use instead of the in-cluster config / ``KUBECONFIG``.
    attempts
        How many read-modify-replace rounds to try when the Workflow keeps changing (409).
    backoff
        Seconds before the second round; doubled each round (Argo's ``DefaultRetry``).
    """

    def __init__(
        self,
        namespace: str | None,
        *,
        api: Any = None,
        kubeconfig: str | None = None,
        attempts: int = 5,
        backoff: float = 0.01,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.namespace = namespace
        self._api = api
        self._kubeconfig = kubeconfig
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._sleep = sleep

    @property
    def api(self) -> Any:
        if self._api is None:
            self._api = _default_api(self._kubeconfig)
        return self._api

    def resume(self, request: Request, decision: Decision) -> bool:
        """Resume the gate's suspend node; False if it was resumed (or timed out) already.

        Raises
        ------
        ConfigError
            Missing workflow or namespace, or no permission.
        RunEnded
            The run was stopped, failed, deleted or replaced: nothing can resume it.
        StoreError
            The workflow or node cannot be read or updated.
        """
        from metaflow_hitl.argo.resume_flow import raise_if_ended

        return raise_if_ended(request, self.resume_gate(request, decision))

    def resume_gate(
        self, request: Request, decision: Decision, *, wait_seconds: float | None = None
    ) -> Any:
        """Resume the gate's node and say what that came to (a
        :class:`~metaflow_hitl.argo.resume_flow.ResumeResult`): waits up to ``wait_seconds``
        (default ``METAFLOW_HITL_ARGO_NODE_WAIT``) for the node to exist, checks the
        workflow's UID against the request's, and replaces the Workflow with the
        ``resourceVersion`` it read (409: read again, a bounded number of times)."""
        from metaflow_hitl.argo.resume_flow import drive_resume, node_wait_seconds

        message = resume_message(decision)
        codecs: dict[str, str | None] = {}
        conflicts = [0]

        def read(ns: str, name: str, where: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
            wf = self.workflow_at(ns, name, where)
            if wf is None:
                return None
            nodes, codecs["codec"] = inflate_nodes(wf.get("status") or {}, where=where)
            return wf, nodes

        def write(
            ns: str, name: str, where: str, wf: dict[str, Any], nodes: dict[str, Any], node_id: str
        ) -> bool:
            new = copy.deepcopy(wf)
            new.setdefault("status", {})
            nodes = copy.deepcopy(nodes)
            set_suspend_node(new, nodes[node_id], decision.outcome, message)
            codec = codecs.get("codec")
            if codec is None:
                new["status"]["nodes"] = nodes
            else:
                new["status"]["compressedNodes"] = deflate_nodes(nodes, codec)
                new["status"].pop("nodes", None)
            try:
                self._call(
                    "update", where, self.api.replace_namespaced_custom_object, ns, name, new
                )
            except _Conflict:
                conflicts[0] += 1
                if conflicts[0] >= self._attempts:
                    raise StoreError(
                        f"{where} kept changing while the gate was being resumed (409 Conflict "
                        f"on {self._attempts} attempts); nothing was written.",
                        hint=_SYNC_HINT,
                    ) from None
                self._sleep(self._backoff * 2 ** (conflicts[0] - 1))
                return False
            return True

        return drive_resume(
            request,
            gate_target(request, self.namespace),
            read=read,
            write=write,
            wait_seconds=node_wait_seconds() if wait_seconds is None else wait_seconds,
            sleep=self._sleep,
        )

    def probe(self, request: Request) -> Any:
        """Whether the gate's run is alive (``RESUMED``), ended or gone; writes nothing."""
        from metaflow_hitl.argo.resume_flow import probe_run

        def read(ns: str, name: str, where: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
            wf = self.workflow_at(ns, name, where)
            if wf is None:
                return None
            return wf, inflate_nodes(wf.get("status") or {}, where=where)[0]

        return probe_run(request, gate_target(request, self.namespace), read=read)

    def workflow_at(self, ns: str, name: str, where: str) -> dict[str, Any] | None:
        """The Workflow ``ns/name``, or None if it is gone (404)."""
        try:
            wf = self._call("read", where, self.api.get_namespaced_custom_object, ns, name)
        except _Missing:
            return None
        return wf if isinstance(wf, dict) else {}

    def _call(self, verb: str, where: str, fn: Callable[..., Any], *args: Any) -> Any:
        api_exception = _api_exception_type()
        try:
            return fn(GROUP, VERSION, args[0], PLURAL, *args[1:])
        except api_exception as exc:
            status = getattr(exc, "status", None)
            if status == 409 and verb == "update":
                raise _Conflict from None
            detail = _api_detail(exc)
            if status in (401, 403):
                raise ConfigError(
                    f"not allowed to {verb} {where} through the Kubernetes API "
                    f"(HTTP {status}: {detail}).",
                    hint="Grant the ServiceAccount get and update on workflows.argoproj.io "
                    "in that namespace (see the README's RBAC section).",
                ) from None
            if status == 404 and verb == "read":
                raise _Missing from None
            if status == 404:
                raise StoreError(
                    f"{where} was not found (deleted or archived?): {detail}",
                ) from None
            raise StoreError(
                f"could not {verb} {where} through the Kubernetes API (HTTP {status}: {detail})",
                hint=_SYNC_HINT,
            ) from None


class _Conflict(Exception):
    """The Workflow changed since it was read (HTTP 409)."""


class _Missing(Exception):
    """The Workflow is not there (HTTP 404 on read)."""


def _api_detail(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if isinstance(message, str):
            return message[:300]
    return str(getattr(exc, "reason", None) or type(exc).__name__)[:300]


def _api_exception_type() -> type[Exception]:
    try:
        from kubernetes.client.exceptions import ApiException
    except ImportError:  # pragma: no cover - only with an injected api and no kubernetes
        return _NoApiException
    return ApiException  # type: ignore[no-any-return]


class _NoApiException(Exception):
    pass


def _default_api(kubeconfig: str | None = None) -> Any:
    try:
        from kubernetes import client, config
    except ImportError:
        raise ConfigError(
            "resuming through the Kubernetes API needs the 'kubernetes' package.",
            hint="pip install kubernetes, or set METAFLOW_HITL_ARGO_SERVER to use the Argo Server.",
        ) from None
    if kubeconfig:
        try:
            config.load_kube_config(config_file=kubeconfig)
        except (config.ConfigException, OSError) as exc:
            raise ConfigError(f"cannot load the kubeconfig {kubeconfig!r}: {exc}") from None
        return client.CustomObjectsApi()
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as exc:
            raise ConfigError(
                f"no Kubernetes configuration found (not in a cluster, and no kubeconfig: {exc}).",
                hint="Set KUBECONFIG, or set METAFLOW_HITL_ARGO_SERVER to use the Argo Server.",
            ) from None
    return client.CustomObjectsApi()
