"""``metaflow-hitl list``: the inbox across flows, with its filters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from metaflow._vendor.click.testing import CliRunner

from metaflow_hitl.cli.main import main
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import decide, open_gate
from metaflow_hitl.records import Actor
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now


@pytest.fixture
def store(tmp_path: Path) -> LocalApprovalStore:
    store = LocalApprovalStore(tmp_path / "store")
    gates = [
        ("Train", "1", "gate", {"approvers": ["bob"]}),
        ("Train", "2", "gate", {"approvers": ["carol", "@acme/leads"]}),
        ("Deploy", "7", "ship", {}),
        ("Deploy", "8", "ship", {"approvers": ["carol"]}),
    ]
    for flow, run, step, options in gates:
        spec = GateSpec.from_options(message=f"{flow} {run}?", **options)
        request = spec.request_for(
            GateId(flow, run, step),
            message=f"{flow} {run}?",
            started_by="alice",
            runtime="local",
            now=utc_now(),
            store=store.location,
        )
        open_gate(store, request)
    decide(
        store,
        GateId("Deploy", "8", "ship"),
        intent="reject",
        reason="no",
        actor=Actor(login="carol", channel="cli", at=utc_now()),
    )
    return store


def inbox(store: LocalApprovalStore, *args: str) -> list[str]:
    result = CliRunner().invoke(main, ["--store", store.location, "list", "--json", *args])
    assert result.exit_code == 0, result.output
    return [row["gate_id"] for row in json.loads(result.output)]


def test_pending_first_across_flows(store):
    assert sorted(inbox(store)) == ["Deploy/7/ship", "Train/1/gate", "Train/2/gate"]
    everything = inbox(store, "--all")
    assert len(everything) == 4
    assert everything[-1] == "Deploy/8/ship"  # decided gates come after pending ones


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--flow", "Train"], ["Train/1/gate", "Train/2/gate"]),
        (["--status", "rejected"], ["Deploy/8/ship"]),
        (["--status", "pending", "--flow", "Deploy"], ["Deploy/7/ship"]),
        (["--mine", "--as", "bob"], ["Deploy/7/ship", "Train/1/gate", "Train/2/gate"]),
        (["--mine", "--as", "carol"], ["Deploy/7/ship", "Train/2/gate"]),
        (["--mine", "--as", "alice"], []),  # she started them all: self-approval is refused
        (["--run-id", "2"], ["Train/2/gate"]),
    ],
    ids=["flow", "status", "status-flow", "mine-team", "mine-listed", "mine-starter", "run"],
)
def test_filters(store, args, expected):
    assert sorted(inbox(store, *args)) == expected


def test_table_for_people(store):
    result = CliRunner().invoke(main, ["--store", store.location, "list"])
    assert result.exit_code == 0, result.output
    header, *rows = result.output.strip().splitlines()
    assert header.split() == ["GATE", "STATE", "AGE", "EXPIRES", "APPROVERS", "MESSAGE"]
    assert len(rows) == 3
