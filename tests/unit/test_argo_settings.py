"""Which resumer a decision uses, from the METAFLOW_HITL_ARGO_* settings."""

from __future__ import annotations

import pytest

from metaflow_hitl.argo.k8s_resumer import KubernetesResumer
from metaflow_hitl.argo.server_resumer import ArgoServerResumer
from metaflow_hitl.argo.settings import RuntimeResumer, argo_resumer_from_env, argo_ui_link
from metaflow_hitl.errors import ConfigError
from metaflow_hitl.records import Decision
from tests.support.builders import actor, build_request


def test_the_argo_server_is_used_when_configured() -> None:
    resumer = argo_resumer_from_env(
        {
            "METAFLOW_HITL_ARGO_SERVER": "https://argo.example.com:2746",
            "METAFLOW_HITL_ARGO_TOKEN": "Bearer abc",
            "METAFLOW_HITL_ARGO_NAMESPACE": "ml",
        }
    )
    assert isinstance(resumer, ArgoServerResumer)
    assert (resumer.server_url, resumer.namespace) == ("https://argo.example.com:2746", "ml")
    assert "abc" not in repr(resumer)


def test_a_server_without_a_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="no token for the Argo Server"):
        argo_resumer_from_env({"METAFLOW_HITL_ARGO_SERVER": "https://argo.example.com"})


def test_otherwise_the_kubernetes_api_with_the_flows_namespace() -> None:
    resumer = argo_resumer_from_env({"METAFLOW_KUBERNETES_NAMESPACE": "jobs"})
    assert isinstance(resumer, KubernetesResumer)
    assert resumer.namespace == "jobs"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def resume(self, request, decision) -> bool:  # type: ignore[no-untyped-def]
        self.calls.append(str(request.gate_id))
        return True


def _decision(request) -> Decision:  # type: ignore[no-untyped-def]
    return Decision(
        gate_id=request.gate_id,
        outcome="approved",
        proceed=True,
        decided_by="bob",
        channel="cli",
        deciders=(actor("bob"),),
        decided_at=request.created_at,
        request_digest=request.digest(),
    )


def test_local_gates_are_never_sent_to_argo_and_need_no_settings() -> None:
    built: list[Recorder] = []

    def factory() -> Recorder:
        built.append(Recorder())
        return built[-1]

    resumer = RuntimeResumer(factory)
    local = build_request()
    assert resumer.resume(local, _decision(local)) is False
    assert built == []  # no Argo settings were even read
    from dataclasses import replace

    argo = replace(local, runtime="argo-workflows", origin={"workflow": "wf", "namespace": "ml"})
    assert resumer.resume(argo, _decision(argo)) is True
    assert resumer.resume(argo, _decision(argo)) is True
    assert len(built) == 1
    assert built[0].calls == [str(argo.gate_id)] * 2


def test_argo_ui_link() -> None:
    from dataclasses import replace

    request = replace(build_request(), origin={"workflow": "wf-1", "namespace": "ml"})
    env = {"METAFLOW_HITL_ARGO_UI_URL": "https://argo.example.com/"}
    assert argo_ui_link(request, env) == "https://argo.example.com/workflows/ml/wf-1"
    assert argo_ui_link(request, {}) is None
    assert argo_ui_link(build_request(), env) is None
    with pytest.raises(ConfigError, match="not an http"):
        argo_ui_link(request, {"METAFLOW_HITL_ARGO_UI_URL": "javascript:alert(1)"})
