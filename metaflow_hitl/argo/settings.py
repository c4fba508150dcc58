"""Which resumer a decision uses: read from ``METAFLOW_HITL_ARGO_*`` settings.

* ``METAFLOW_HITL_ARGO_SERVER`` (+ ``METAFLOW_HITL_ARGO_TOKEN``): the Argo Server REST API;
* otherwise the Kubernetes API (in-cluster config, ``METAFLOW_HITL_KUBECONFIG``,
  ``KUBECONFIG`` or ``~/.kube/config``), needing the ``kubernetes`` package;
* ``METAFLOW_HITL_ARGO_NAMESPACE`` (else ``METAFLOW_KUBERNETES_NAMESPACE``): the namespace
  for requests that do not record one (gates opened on Argo always record theirs);
* ``METAFLOW_HITL_ARGO_UI_URL``: the Argo UI base URL, for links;
* ``METAFLOW_HITL_ARGO_CA_BUNDLE``: a PEM file of CA certificates to verify the Argo Server
  with (its default certificate is self-signed); ``METAFLOW_HITL_ARGO_INSECURE_SKIP_VERIFY=true``
  skips verification (the Argo CLI's ``--insecure-skip-verify``), warned about on stderr.

Local gates need no resume (the waiting task reads the store): :class:`RuntimeResumer` sends
a request to the Argo adapter only when the request says it was opened on Argo, and builds
that adapter only then, so a machine without Argo settings can still decide local gates.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from metaflow_hitl.errors import ConfigError
from metaflow_hitl.ports import Resumer
from metaflow_hitl.records import Decision, Request

__all__ = ["RuntimeResumer", "argo_resumer_from_env", "argo_tls_session", "argo_ui_link"]


def _get(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def argo_resumer_from_env(env: Mapping[str, str] | None = None) -> Resumer:
    """The Argo resumer the settings in ``env`` (default: ``os.environ``) ask for.

    Raises
    ------
    ConfigError
        A server without a token, a bad URL, or (for the Kubernetes API) no ``kubernetes``
        package or configuration; raised when first used for the Kubernetes API.
    """
    env = os.environ if env is None else env
    namespace = _get(env, "METAFLOW_HITL_ARGO_NAMESPACE") or (
        _get(env, "METAFLOW_KUBERNETES_NAMESPACE") or None
    )
    server = _get(env, "METAFLOW_HITL_ARGO_SERVER")
    if server:
        from metaflow_hitl.argo.server_resumer import ArgoServerResumer

        return ArgoServerResumer(
            server,
            _get(env, "METAFLOW_HITL_ARGO_TOKEN"),
            namespace,
            session=argo_tls_session(env) if server.startswith("https://") else None,
        )
    kubeconfig = _get(env, "METAFLOW_HITL_KUBECONFIG")
    from metaflow_hitl.argo.k8s_resumer import KubernetesResumer

    return KubernetesResumer(namespace, kubeconfig=kubeconfig or None)


def argo_tls_session(env: Mapping[str, str]) -> Any:
    """A ``requests.Session`` verifying the Argo Server as the TLS settings in ``env`` say.

    Raises
    ------
    ConfigError
        A CA bundle that is not a readable file, both settings at once, or a switch value
        other than true/false.
    """
    import requests

    bundle = _get(env, "METAFLOW_HITL_ARGO_CA_BUNDLE")
    insecure = _get(env, "METAFLOW_HITL_ARGO_INSECURE_SKIP_VERIFY").lower()
    if insecure not in ("", "true", "false"):
        raise ConfigError(
            f"METAFLOW_HITL_ARGO_INSECURE_SKIP_VERIFY={insecure!r} is not true or false."
        )
    session = requests.Session()
    if insecure == "true":
        if bundle:
            raise ConfigError(
                "both METAFLOW_HITL_ARGO_CA_BUNDLE and METAFLOW_HITL_ARGO_INSECURE_SKIP_VERIFY "
                "are set; choose one (the CA bundle is the safe one)."
            )
        sys.stderr.write(
            "WARNING (metaflow-hitl): TLS verification of the Argo Server is OFF "
            "(METAFLOW_HITL_ARGO_INSECURE_SKIP_VERIFY=true). Anyone on the network path can "
            "impersonate it and read the token. Set METAFLOW_HITL_ARGO_CA_BUNDLE instead.\n"
        )
        session.verify = False
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        return session
    if bundle:
        if not os.path.isfile(bundle):
            raise ConfigError(
                f"METAFLOW_HITL_ARGO_CA_BUNDLE={bundle!r} is not a file.",
                hint="Point it at the PEM file of the CA that signed the Argo Server's "
                "certificate (kubectl -n argo get secret argo-server-tls ...).",
            )
        session.verify = bundle
    return session


class RuntimeResumer:
    """Resume Argo gates through the configured adapter; local gates need nothing.

    Parameters
    ----------
    argo
        Builds the Argo resumer on first need (default: :func:`argo_resumer_from_env`).
    """

    def __init__(self, argo: Callable[[], Resumer] | None = None) -> None:
        self._factory = argo or argo_resumer_from_env
        self._argo: Resumer | None = None

    def resume(self, request: Request, decision: Decision) -> bool:
        """Resume the gate's suspended node if it runs on Argo; False for local gates, and
        for every gate when ``METAFLOW_HITL_ARGO_RESUME=in-cluster`` (deployment (b): the
        in-cluster resumer, ``sync --watch``, resumes; this process only records).

        Raises
        ------
        ConfigError
            ``METAFLOW_HITL_ARGO_RESUME`` is neither ``direct`` nor ``in-cluster``.
        """
        if request.runtime != "argo-workflows":
            return False
        mode = _get(os.environ, "METAFLOW_HITL_ARGO_RESUME").lower() or "direct"
        if mode not in ("direct", "in-cluster"):
            raise ConfigError(
                f"METAFLOW_HITL_ARGO_RESUME={mode!r} is neither direct nor in-cluster."
            )
        if mode == "in-cluster":
            sys.stderr.write(
                f"metaflow-hitl: gate {request.gate_id} is decided; its run is resumed by the "
                "in-cluster resumer (METAFLOW_HITL_ARGO_RESUME=in-cluster).\n"
            )
            return False
        return self._adapter().resume(request, decision)

    def resume_gate(self, request: Request, decision: Decision) -> Any:
        """The Argo adapter's :meth:`resume_gate` (a ``ResumeResult``); None for local gates."""
        if request.runtime != "argo-workflows":
            return None
        return self._adapter().resume_gate(request, decision)  # type: ignore[attr-defined]

    def probe(self, request: Request) -> Any:
        """Whether an Argo gate's run is alive, ended or gone; None for local gates."""
        if request.runtime != "argo-workflows":
            return None
        return self._adapter().probe(request)  # type: ignore[attr-defined]

    def _adapter(self) -> Resumer:
        if self._argo is None:
            self._argo = self._factory()
        return self._argo


def argo_ui_link(request: Request, env: Mapping[str, str] | None = None) -> str | None:
    """The Argo UI page of the gate's workflow, if ``METAFLOW_HITL_ARGO_UI_URL`` is set."""
    env = os.environ if env is None else env
    base = _get(env, "METAFLOW_HITL_ARGO_UI_URL").rstrip("/")
    workflow, namespace = request.origin.get("workflow"), request.origin.get("namespace")
    if not base or not workflow or not namespace:
        return None
    if not base.startswith(("https://", "http://")):
        raise ConfigError(
            f"METAFLOW_HITL_ARGO_UI_URL={base!r} is not an http(s) URL.",
            hint="Set it to the Argo UI's base URL, e.g. https://argo.example.com",
        )
    return f"{base}/workflows/{namespace}/{workflow}"
