"""``metaflow-hitl sync --watch`` (the in-cluster resumer's loop) over a real local store and
the Kubernetes resumer on a stateful Workflow stand-in.

* a decision recorded by someone else (the Action on a hosted runner) is carried to its
  suspend node on the next pass; later passes do not read or write again (cheap polling:
  one store listing per pass);
* a decision recorded before the suspend node exists is resumed once the node appears;
* a pending gate whose run was stopped or deleted is closed: a ``run-ended`` decision
  (``Decision.run_ended``), so reminders stop and ``list`` shows ``run_ended``;
* the record: old decisions (no ``run_ended``) still decode, new ones round-trip and
  validate against the version-1 schema.

Argo facts: see ``tests/contract/test_argo_resume_outcomes.py``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from metaflow_hitl.argo.k8s_resumer import KubernetesResumer
from metaflow_hitl.argo.run_end import run_ended_decision
from metaflow_hitl.cli.group import CliContext
from metaflow_hitl.cli.watch import WatchState, watch, watch_pass
from metaflow_hitl.errors import AlreadyDecided
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import decide, gate_status, open_gate
from metaflow_hitl.records import Actor, Decision, decode_record, encode_record
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now
from tests.contract.test_argo_resumers import FakeCustomObjects
from tests.fakes.argo_server import NS, make_workflow, nodes_of, suspend_node

UID = "0b6f7d2e-1111-4000-8000-00000000000a"


def argo_request(store: LocalApprovalStore, workflow: str, step: str = "deploy") -> Any:
    spec = GateSpec.from_options(message="Deploy?", timeout="1h")
    request = spec.request_for(
        GateId("TrainAndDeploy", f"argo-{workflow}", step),
        message="Deploy?",
        started_by="starter",
        runtime="argo-workflows",
        now=utc_now(),
        store=store.location,
        origin={"workflow": workflow, "namespace": NS, "workflow_uid": UID},
    )
    open_gate(store, request)
    return request


def workflow(name: str, *nodes: dict[str, Any]) -> dict[str, Any]:
    wf = make_workflow(*nodes, name=name)
    wf["metadata"]["uid"] = UID
    return wf


def approve(store: LocalApprovalStore, request: Any) -> None:
    decide(
        store,
        request.gate_id,
        actor=Actor(login="alice", channel="github-review", at=utc_now()),
        intent="approve",
    )


@pytest.fixture
def setup(tmp_path: Path) -> tuple[CliContext, LocalApprovalStore, FakeCustomObjects]:
    store = LocalApprovalStore(tmp_path / "store")
    api = FakeCustomObjects()
    resumer = KubernetesResumer(NS, api=api, sleep=lambda _s: None)
    from metaflow_hitl.argo.settings import RuntimeResumer

    return CliContext(store=store, resumer=RuntimeResumer(lambda: resumer)), store, api


def test_watch_resumes_decisions_recorded_elsewhere_once(setup: Any) -> None:
    ctx, store, api = setup
    request = argo_request(store, "wf-one")
    api.objects[(NS, "wf-one")] = workflow(
        "wf-one", suspend_node("n1", "deploy", workflow="wf-one")
    )
    state = WatchState()
    lines: list[str] = []
    assert watch_pass(ctx, state, since_seconds=86400, echo=lines.append) == 0
    assert api.writes == []  # undecided: nothing to resume, and the run is alive
    gets = api.gets
    approve(store, request)  # the Action, on a hosted runner, records it in S3
    assert watch_pass(ctx, state, since_seconds=86400, probe_every=1e9, echo=lines.append) == 0
    (written,) = api.writes
    assert nodes_of(written)["n1"]["phase"] == "Succeeded"
    assert nodes_of(written)["n1"]["outputs"]["parameters"][0]["value"] == "approved"
    assert any("resumed" in line for line in lines)
    gets = api.gets
    watch_pass(ctx, state, since_seconds=86400, probe_every=1e9, echo=lines.append)
    assert api.gets == gets  # nothing new in the store listing: no workflow read
    assert len(api.writes) == 1


def test_watch_resumes_a_decision_that_came_before_its_node(setup: Any) -> None:
    ctx, store, api = setup
    request = argo_request(store, "wf-two")
    notify = {
        "id": "wf-two-notify",
        "name": "wf-two.hitl-notify-deploy",
        "displayName": "hitl-notify-deploy",
        "templateName": "hitl-notify-deploy",
        "type": "Pod",
        "phase": "Running",
    }
    api.objects[(NS, "wf-two")] = workflow("wf-two", notify)
    approve(store, request)
    sleeps: list[float] = []

    def controller_catches_up(seconds: float) -> None:
        sleeps.append(seconds)
        api.objects[(NS, "wf-two")] = workflow(
            "wf-two",
            {**notify, "phase": "Succeeded"},
            suspend_node("n1", "deploy", workflow="wf-two"),
        )

    ctx.resumer._adapter()._sleep = controller_catches_up  # type: ignore[attr-defined]
    state = watch(ctx, interval=0, since_seconds=86400, max_passes=1, echo=lambda _l: None)
    assert state.outcomes == [(str(request.gate_id), "resumed")]
    assert sleeps == [0.5]
    assert len(api.writes) == 1


@pytest.mark.parametrize("how", ["stopped", "deleted"])
def test_watch_closes_gates_of_ended_runs(setup: Any, how: str) -> None:
    ctx, store, api = setup
    request = argo_request(store, "wf-three")
    wf = workflow("wf-three", suspend_node("n1", "deploy", workflow="wf-three"))
    if how == "stopped":
        wf["spec"]["shutdown"] = "Stop"
        wf["status"]["phase"] = "Failed"
        wf["status"]["message"] = "Stopped with strategy 'Stop'"
        api.objects[(NS, "wf-three")] = wf
    lines: list[str] = []
    state = watch(ctx, interval=0, since_seconds=86400, max_passes=1, echo=lines.append)
    assert state.outcomes == [(str(request.gate_id), "closed")]
    decision = store.get_decision(request.gate_id)
    assert decision is not None
    assert decision.run_ended == how
    assert (decision.outcome, decision.proceed, decision.channel) == (
        "rejected",
        False,
        "run-ended",
    )
    assert "run ended" in (decision.reason or "")
    assert gate_status(store, request.gate_id).state == "run_ended"
    assert list(store.list_gates(pending_only=True)) == []  # no more reminders
    assert api.writes == []
    # A person deciding afterwards is told it is decided: the first decision stands.
    with pytest.raises(AlreadyDecided, match="its run ended"):
        approve(store, request)
    assert store.get_decision(request.gate_id) == decision


def test_the_run_ended_field_is_optional_and_versioned(setup: Any) -> None:
    _ctx, store, _api = setup
    request = argo_request(store, "wf-four")
    closed = run_ended_decision(request, run_state="terminated", detail="shutdown 'Terminate'")
    data = json.loads(encode_record(closed))
    assert data["version"] == 1
    assert data["run_ended"] == "terminated"
    assert decode_record(encode_record(closed), Decision) == closed
    older = {k: v for k, v in data.items() if k != "run_ended"}
    older.update(channel="cli", decided_by="alice")
    older["deciders"][0].update(channel="cli", login="alice")
    again = decode_record(json.dumps(older).encode(), Decision)
    assert again.run_ended is None
    bad = {**data, "run_ended": "exploded"}
    with pytest.raises(Exception, match=r"run_ended|exploded"):
        decode_record(json.dumps(bad).encode(), Decision)
    assert closed.summary().startswith("closed, its run ended (terminated)")
    assert closed.decided_at - request.created_at < timedelta(minutes=1)
