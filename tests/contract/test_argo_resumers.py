"""The two Argo resumers against stateful stand-ins for the APIs they call.

* :class:`ArgoServerResumer` talks HTTP to :class:`tests.fakes.argo_server.FakeArgoServer`, a
  local server on 127.0.0.1 that holds workflows, checks every request against Argo's swagger
  (path, method, bearer token, and the ``/set`` body validated against ``WorkflowSetRequest``),
  and applies ``/set`` the way Argo does: to *every* running suspend node the selector
  matches. Any request it does not expect fails the test. The swagger is Argo's own
  (``tests/specs/argo/``).
* :class:`KubernetesResumer` talks to a fake ``CustomObjectsApi`` that honours
  ``resourceVersion`` (409 on a stale replace), can be told to answer with a run of 409s,
  and may store the nodes gzip-compressed as Argo does for large workflows.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from metaflow_hitl.argo.k8s_resumer import KubernetesResumer
from metaflow_hitl.argo.server_resumer import ArgoServerResumer
from metaflow_hitl.errors import ConfigError, HitlError, StoreError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.records import Actor, Decision, Request
from tests.fakes.argo_server import (
    NS,
    TOKEN,
    WF,
    FakeArgoServer,
    load_swagger,
    make_workflow,
    nodes_of,
    serve,
    suspend_node,
)

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone.utc)


# -- records and workflows --------------------------------------------------------------------


def make_request(
    step: str = "deploy", *, workflow: str | None = WF, ns: str | None = NS
) -> Request:
    return Request(
        gate_id=GateId("TrainAndDeploy", f"argo-{WF}", step),
        message="Deploy?",
        input_schema={},
        approvers=(),
        min_approvals=1,
        allow_self_approval=False,
        on_timeout="reject",
        on_reject="fail",
        timeout_seconds=3600,
        created_at=T0,
        expires_at=T0 + timedelta(hours=1),
        started_by="starter",
        runtime="argo-workflows",
        origin={"workflow": workflow, "namespace": ns},
    )


def make_decision(outcome: Any = "approved") -> Decision:
    return Decision(
        gate_id=make_request().gate_id,
        outcome=outcome,
        proceed=outcome == "approved",
        decided_by="alice",
        channel="cli",
        deciders=(Actor(login="alice", channel="cli", at=T0),),
        decided_at=T0,
        request_digest=make_request().digest(),
    )


@pytest.fixture(scope="module")
def swagger() -> dict[str, Any]:
    return load_swagger()


@pytest.fixture
def argo(swagger: dict[str, Any]) -> Iterator[tuple[FakeArgoServer, str]]:
    fake = FakeArgoServer(swagger)
    with serve(fake) as url:
        yield fake, url
    assert fake.problems == []


def test_server_resume_approved(argo: tuple[FakeArgoServer, str]) -> None:
    fake, url = argo
    fake.workflows[(NS, WF)] = make_workflow(suspend_node("n1", "deploy"))
    resumer = ArgoServerResumer(url, TOKEN, None)
    assert resumer.resume(make_request(), make_decision("approved")) is True
    node = fake.workflows[(NS, WF)]["status"]["nodes"]["n1"]
    assert node["phase"] == "Succeeded"
    assert node["outputs"]["parameters"] == [{"name": "decision", "value": "approved"}]
    assert "alice" in node["message"]
    (body,) = fake.writes
    assert body["nodeFieldSelector"] == f"inputs.parameters.hitl-gate.value={WF}/deploy"
    assert json.loads(body["outputParameters"]) == {"decision": "approved"}
    assert [m for m, _ in fake.log] == ["GET", "PUT"]


def test_server_accepts_bearer_prefixed_token(argo: tuple[FakeArgoServer, str]) -> None:
    fake, url = argo
    fake.workflows[(NS, WF)] = make_workflow(suspend_node("n1", "deploy"))
    resumer = ArgoServerResumer(url + "/", f"Bearer {TOKEN}", NS)
    assert resumer.resume(make_request(ns=None), make_decision("rejected")) is True
    node = fake.workflows[(NS, WF)]["status"]["nodes"]["n1"]
    assert node["outputs"]["parameters"][0]["value"] == "rejected"


def test_server_second_resume_writes_nothing(argo: tuple[FakeArgoServer, str]) -> None:
    fake, url = argo
    fake.workflows[(NS, WF)] = make_workflow(suspend_node("n1", "deploy"))
    resumer = ArgoServerResumer(url, TOKEN, NS)
    assert resumer.resume(make_request(), make_decision()) is True
    assert resumer.resume(make_request(), make_decision()) is False
    assert len(fake.writes) == 1
    assert [m for m, _ in fake.log] == ["GET", "PUT", "GET"]


def test_server_two_gates_resume_only_the_right_one(argo: tuple[FakeArgoServer, str]) -> None:
    fake, url = argo
    fake.workflows[(NS, WF)] = make_workflow(
        suspend_node("n1", "deploy"), suspend_node("n2", "publish")
    )
    assert ArgoServerResumer(url, TOKEN, NS).resume(make_request("publish"), make_decision())
    nodes = fake.workflows[(NS, WF)]["status"]["nodes"]
    assert nodes["n1"]["phase"] == "Running"
    assert nodes["n2"]["phase"] == "Succeeded"


def test_server_refuses_several_running_matches(argo: tuple[FakeArgoServer, str]) -> None:
    fake, url = argo
    fake.workflows[(NS, WF)] = make_workflow(
        suspend_node("n1", "deploy"), suspend_node("n2", "deploy")
    )
    with pytest.raises(StoreError, match="refusing to resume more than one"):
        ArgoServerResumer(url, TOKEN, NS).resume(make_request(), make_decision())
    assert fake.writes == []


def test_server_no_node_yet_is_an_error(argo: tuple[FakeArgoServer, str]) -> None:
    fake, url = argo
    fake.workflows[(NS, WF)] = make_workflow()
    with pytest.raises(StoreError, match="no suspend node") as info:
        ArgoServerResumer(url, TOKEN, NS).resume(make_request(), make_decision())
    assert "hitl sync" in str(info.value)


def test_server_401_is_a_clear_error(argo: tuple[FakeArgoServer, str]) -> None:
    fake, url = argo
    fake.workflows[(NS, WF)] = make_workflow(suspend_node("n1", "deploy"))
    with pytest.raises(ConfigError, match="refused the token") as info:
        ArgoServerResumer(url, "wrong-token", NS).resume(make_request(), make_decision())
    assert "METAFLOW_HITL_ARGO_TOKEN" in str(info.value)
    assert fake.writes == []


def test_server_token_never_in_errors(argo: tuple[FakeArgoServer, str]) -> None:
    fake, url = argo
    fake.workflows[(NS, WF)] = make_workflow(suspend_node("n1", "deploy"))
    fake.echo_auth_in_errors = True
    with pytest.raises(StoreError) as info:
        ArgoServerResumer(url, TOKEN, NS).resume(make_request(), make_decision())
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(ArgoServerResumer(url, TOKEN, NS))
    # and an unreachable server
    dead = ArgoServerResumer("http://127.0.0.1:9", TOKEN, NS)
    with pytest.raises(StoreError, match="could not reach") as info:
        dead.resume(make_request(), make_decision())
    assert TOKEN not in str(info.value)
    fake.log.clear()


def test_server_missing_workflow_or_namespace() -> None:
    resumer = ArgoServerResumer("http://127.0.0.1:9", TOKEN, None)
    with pytest.raises(ConfigError, match=r"origin\.workflow"):
        resumer.resume(make_request(workflow=None), make_decision())
    with pytest.raises(ConfigError, match="namespace"):
        resumer.resume(make_request(ns=None), make_decision())
    with pytest.raises(ConfigError):
        ArgoServerResumer("argo.example.com", TOKEN, NS)
    with pytest.raises(ConfigError):
        ArgoServerResumer("http://argo", "Bearer ", NS)


# -- the Kubernetes API stand-in --------------------------------------------------------------


class FakeCustomObjects:
    """The two CustomObjectsApi calls the resumer uses, over stored workflows."""

    def __init__(self, *workflows: dict[str, Any]) -> None:
        self.objects = {(w["metadata"]["namespace"], w["metadata"]["name"]): w for w in workflows}
        self.gets = 0
        self.writes: list[dict[str, Any]] = []
        self.conflicts = 0  # answer the next N replaces with 409
        self.on_get: Callable[[dict[str, Any]], None] | None = None

    @staticmethod
    def _error(status: int, reason: str) -> Exception:
        from kubernetes.client.exceptions import ApiException

        exc = ApiException(status=status, reason=reason)
        exc.body = json.dumps({"kind": "Status", "message": reason, "code": status})
        return exc

    def _check(self, group: str, version: str, plural: str) -> None:
        assert (group, version, plural) == ("argoproj.io", "v1alpha1", "workflows")

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> dict[str, Any]:
        self._check(group, version, plural)
        self.gets += 1
        wf = self.objects.get((namespace, name))
        if wf is None:
            raise self._error(404, f'workflows.argoproj.io "{name}" not found')
        out = copy.deepcopy(wf)
        if self.on_get is not None:
            hook, self.on_get = self.on_get, None
            hook(wf)  # another writer changes it right after our read
        return out

    def replace_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any
    ) -> dict[str, Any]:
        self._check(group, version, plural)
        stored = self.objects[(namespace, name)]
        if self.conflicts:
            self.conflicts -= 1
            raise self._error(409, "Conflict")
        if body["metadata"].get("resourceVersion") != stored["metadata"]["resourceVersion"]:
            raise self._error(409, "the object has been modified")
        new = copy.deepcopy(body)
        new["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"]) + 1)
        self.objects[(namespace, name)] = new
        self.writes.append(new)
        return copy.deepcopy(new)


def k8s(api: FakeCustomObjects, **kwargs: Any) -> KubernetesResumer:
    return KubernetesResumer("default", api=api, sleep=lambda _s: None, **kwargs)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain-nodes", "compressed-nodes"])
def test_k8s_resume(compressed: bool) -> None:
    api = FakeCustomObjects(make_workflow(suspend_node("n1", "deploy"), compressed=compressed))
    assert k8s(api).resume(make_request(), make_decision("timed_out")) is True
    (wf,) = api.writes
    assert ("compressedNodes" in wf["status"]) is compressed
    assert ("nodes" in wf["status"]) is not compressed
    node = nodes_of(wf)["n1"]
    assert node["phase"] == "Succeeded"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", node["finishedAt"])
    assert node["outputs"]["parameters"] == [{"name": "decision", "value": "timed_out"}]
    assert "metaflow-hitl" in node["message"]
    assert nodes_of(wf)[f"{WF}-1"]["phase"] == "Running"


def test_k8s_two_gates_only_one_changed() -> None:
    api = FakeCustomObjects(
        make_workflow(suspend_node("n1", "deploy"), suspend_node("n2", "publish"), compressed=True)
    )
    before = nodes_of(api.objects[(NS, WF)])
    assert k8s(api).resume(make_request("deploy"), make_decision())
    after = nodes_of(api.objects[(NS, WF)])
    assert after["n2"] == before["n2"]
    assert after["n1"]["phase"] == "Succeeded"


def test_k8s_already_resumed_writes_nothing() -> None:
    api = FakeCustomObjects(make_workflow(suspend_node("n1", "deploy", phase="Succeeded")))
    assert k8s(api).resume(make_request(), make_decision()) is False
    assert api.writes == []


def test_k8s_refuses_several_running_matches() -> None:
    api = FakeCustomObjects(
        make_workflow(suspend_node("n1", "deploy"), suspend_node("n2", "deploy"))
    )
    with pytest.raises(StoreError, match="more than one"):
        k8s(api).resume(make_request(), make_decision())
    assert api.writes == []


def test_k8s_refuses_offloaded_status() -> None:
    wf = make_workflow(suspend_node("n1", "deploy"))
    wf["status"]["offloadNodeStatusVersion"] = "fnv:123"
    del wf["status"]["nodes"]
    api = FakeCustomObjects(wf)
    with pytest.raises(StoreError, match="offloaded") as info:
        k8s(api).resume(make_request(), make_decision())
    assert "METAFLOW_HITL_ARGO_SERVER" in str(info.value)
    assert api.writes == []


def test_k8s_conflict_then_success_keeps_the_other_write() -> None:
    api = FakeCustomObjects(make_workflow(suspend_node("n1", "deploy"), suspend_node("n2", "x")))

    def other_writer(wf: dict[str, Any]) -> None:
        wf["status"]["nodes"]["n2"]["phase"] = "Succeeded"
        wf["metadata"]["resourceVersion"] = "7"

    api.on_get = other_writer
    assert k8s(api).resume(make_request(), make_decision()) is True
    assert api.gets == 2
    (wf,) = api.writes
    assert wf["status"]["nodes"]["n2"]["phase"] == "Succeeded"  # the other write survived
    assert wf["status"]["nodes"]["n1"]["phase"] == "Succeeded"


def test_k8s_409_storm_is_bounded() -> None:
    api = FakeCustomObjects(make_workflow(suspend_node("n1", "deploy")))
    api.conflicts = 100
    sleeps: list[float] = []
    resumer = KubernetesResumer("default", api=api, sleep=sleeps.append)
    with pytest.raises(StoreError, match="409 Conflict on 5 attempts"):
        resumer.resume(make_request(), make_decision())
    assert api.gets == 5
    assert sleeps == [0.01, 0.02, 0.04, 0.08]
    assert api.writes == []


def test_k8s_global_output_is_upserted() -> None:
    api = FakeCustomObjects(make_workflow(suspend_node("n1", "deploy", global_name="hitl-deploy")))
    assert k8s(api).resume(make_request(), make_decision())
    (wf,) = api.writes
    assert wf["status"]["outputs"]["parameters"] == [{"name": "hitl-deploy", "value": "approved"}]


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (403, ConfigError, "get and update"),
        (404, StoreError, "not found"),
        (500, StoreError, "500"),
    ],
    ids=["forbidden", "missing", "server-error"],
)
def test_k8s_api_errors_are_translated(status: int, error: type[HitlError], text: str) -> None:
    api = FakeCustomObjects()

    def broken(*_args: Any) -> Any:
        raise FakeCustomObjects._error(status, "nope")

    api.get_namespaced_custom_object = broken  # type: ignore[method-assign]
    with pytest.raises(error, match=text):
        k8s(api).resume(make_request(), make_decision())


def test_k8s_unknown_compression_is_refused() -> None:
    wf = make_workflow(suspend_node("n1", "deploy"))
    del wf["status"]["nodes"]
    wf["status"]["compressedNodes"] = base64.b64encode(b"\x0b\x00not-gzip").decode()
    with pytest.raises(StoreError, match="cannot read"):
        k8s(FakeCustomObjects(wf)).resume(make_request(), make_decision())
