"""Resumers wait a bounded time for the suspend node, check the workflow's UID, and tell the
outcomes apart: resumed, already resumed, expired, run ended, run gone.

Against the swagger-checked Argo Server stand-in (HTTP) and the stateful Kubernetes API
stand-in. Argo facts used (argoproj/argo-workflows v4.1.2):

* an expired suspend node is marked ``Succeeded`` with no message, its output keeping the
  default (``workflow/controller/operator.go`` ``executeSuspend``, l.3998-4011); Argo's own
  resume writes ``Resumed by: <user>`` (``workflow/util/util.go`` ``ResumeWorkflow`` l.525);
* ``argo stop``/``terminate`` set ``spec.shutdown`` (``Stop``/``Terminate``) and the operator
  then fails what runs, "Stopped with strategy '...'" (operator.go l.542-543, l.1066-1069);
* a workflow deleted and submitted again under the same name has a new ``metadata.uid``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from metaflow_hitl.argo.k8s_resumer import KubernetesResumer
from metaflow_hitl.argo.node_state import ResumeOutcome
from metaflow_hitl.argo.server_resumer import ArgoServerResumer
from metaflow_hitl.errors import RunEnded, StoreError
from metaflow_hitl.records import Request
from tests.contract.test_argo_resumers import FakeCustomObjects, make_decision, make_request
from tests.fakes.argo_server import (
    NS,
    TOKEN,
    WF,
    FakeArgoServer,
    load_swagger,
    make_workflow,
    serve,
    suspend_node,
)

UID = "6b1f0c2e-0000-4000-8000-000000000001"


def notify_node(step: str = "deploy", phase: str = "Running") -> dict[str, Any]:
    return {
        "id": f"{WF}-notify",
        "name": f"{WF}.hitl-notify-{step}",
        "displayName": f"hitl-notify-{step}",
        "templateName": f"hitl-notify-{step}",
        "type": "Pod",
        "phase": phase,
    }


def with_uid(wf: dict[str, Any], uid: str = UID) -> dict[str, Any]:
    wf["metadata"]["uid"] = uid
    return wf


def uid_request(uid: str = UID) -> Request:
    import dataclasses

    request = make_request()
    return dataclasses.replace(request, origin={**request.origin, "workflow_uid": uid})


@pytest.fixture(scope="module")
def swagger() -> dict[str, Any]:
    return load_swagger()


class Either:
    """One resumer over one stand-in: ``put`` a workflow, ``resumer`` resumes."""

    def __init__(self, kind: str, swagger: dict[str, Any] | None, url: str | None) -> None:
        self.kind = kind
        self.sleeps: list[float] = []
        self.on_sleep: list[Any] = []
        if kind == "server":
            assert swagger is not None
            assert url is not None
            self.fake = FakeArgoServer(swagger)
            self.resumer: Any = ArgoServerResumer(url, TOKEN, NS, sleep=self._sleep)
        else:
            self.api = FakeCustomObjects()
            self.resumer = KubernetesResumer(NS, api=self.api, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep:
            self.on_sleep.pop(0)()

    def put(self, wf: dict[str, Any]) -> None:
        if self.kind == "server":
            self.fake.workflows[(NS, WF)] = wf
        else:
            wf.setdefault("metadata", {}).setdefault("resourceVersion", "1")
            self.api.objects[(NS, WF)] = wf

    def delete(self) -> None:
        (self.fake.workflows if self.kind == "server" else self.api.objects).pop((NS, WF), None)

    def writes(self) -> int:
        return len(self.fake.writes) if self.kind == "server" else len(self.api.writes)


@pytest.fixture(params=["server", "kubernetes"])
def either(request: pytest.FixtureRequest) -> Iterator[Either]:
    if request.param == "kubernetes":
        yield Either("kubernetes", None, None)
        return
    spec = request.getfixturevalue("swagger")
    holder = Either.__new__(Either)
    fake = FakeArgoServer(spec)
    with serve(fake) as url:
        holder.kind = "server"
        holder.sleeps = []
        holder.on_sleep = []
        holder.fake = fake
        holder.resumer = ArgoServerResumer(url, TOKEN, NS, sleep=holder._sleep)
        yield holder
    assert fake.problems == []


def test_a_decision_before_the_suspend_node_waits_for_it(either: Either) -> None:
    """The notify pod is still finishing when the decision arrives: the resumer reads again
    until the controller has created the suspend node, then resumes it."""
    either.put(make_workflow(notify_node(phase="Running")))
    either.on_sleep = [
        lambda: None,
        lambda: either.put(
            make_workflow(notify_node(phase="Succeeded"), suspend_node("n1", "deploy"))
        ),
    ]
    result = either.resumer.resume_gate(make_request(), make_decision(), wait_seconds=30)
    assert result.outcome is ResumeOutcome.RESUMED
    assert len(either.sleeps) == 2
    assert either.sleeps[0] == 0.5
    assert either.writes() == 1


def test_the_wait_is_bounded(either: Either) -> None:
    either.put(make_workflow(notify_node(phase="Succeeded")))
    with pytest.raises(StoreError, match=r"no suspend node for the gate after waiting 0\.001s"):
        either.resumer.resume_gate(make_request(), make_decision(), wait_seconds=0.001)
    assert either.writes() == 0


def test_no_notify_node_and_no_suspend_node_is_not_waited_for(either: Either) -> None:
    either.put(make_workflow())
    with pytest.raises(StoreError, match="no suspend node"):
        either.resumer.resume(make_request(), make_decision())
    assert either.sleeps == []


def test_another_run_with_the_same_name_is_never_written(either: Either) -> None:
    """The gate's workflow was deleted and a new one submitted under its name: its node has
    the same ``hitl-gate`` value, but the UID differs, so nothing is written."""
    either.put(with_uid(make_workflow(suspend_node("n1", "deploy")), "another-uid"))
    result = either.resumer.resume_gate(uid_request(), make_decision(), wait_seconds=0)
    assert (result.outcome, result.run_state) == (ResumeOutcome.RUN_GONE, "replaced")
    with pytest.raises(RunEnded, match="UID") as info:
        either.resumer.resume(uid_request(), make_decision())
    assert info.value.outcome == "run_gone"
    assert either.writes() == 0
    either.put(with_uid(make_workflow(suspend_node("n1", "deploy"))))
    assert either.resumer.resume(uid_request(), make_decision()) is True


@pytest.mark.parametrize(
    ("shutdown", "phase", "state"),
    [
        ("Stop", "Running", "stopped"),
        ("Terminate", "Running", "terminated"),
        (None, "Failed", "failed"),
    ],
)
def test_a_stopped_or_failed_run_is_not_resumed(
    either: Either, shutdown: str | None, phase: str, state: str
) -> None:
    wf = make_workflow(suspend_node("n1", "deploy"))
    wf["status"]["phase"] = phase
    if shutdown:
        wf["spec"]["shutdown"] = shutdown
    else:
        wf["status"]["message"] = "child 'train' failed"  # failFast elsewhere
        wf["status"]["nodes"]["n1"]["phase"] = "Failed"
    either.put(wf)
    result = either.resumer.resume_gate(make_request(), make_decision(), wait_seconds=0)
    assert (result.outcome, result.run_state) == (ResumeOutcome.RUN_ENDED, state)
    assert either.writes() == 0


def test_a_deleted_run_is_gone(either: Either) -> None:
    either.delete()
    result = either.resumer.resume_gate(make_request(), make_decision(), wait_seconds=0)
    assert (result.outcome, result.run_state) == (ResumeOutcome.RUN_GONE, "deleted")
    with pytest.raises(RunEnded, match="not found"):
        either.resumer.resume(make_request(), make_decision())


def test_expired_and_already_resumed_are_told_apart(either: Either) -> None:
    expired = suspend_node("n1", "deploy", phase="Succeeded")  # default output, no message
    either.put(make_workflow(expired))
    assert (
        either.resumer.resume_gate(make_request(), make_decision(), wait_seconds=0).outcome
        is ResumeOutcome.EXPIRED
    )
    either.put(make_workflow(suspend_node("n1", "deploy")))
    assert either.resumer.resume(make_request(), make_decision()) is True
    again = either.resumer.resume_gate(make_request(), make_decision(), wait_seconds=0)
    assert again.outcome is ResumeOutcome.ALREADY_RESUMED
    assert either.resumer.resume(make_request(), make_decision()) is False
    assert either.writes() == 1
