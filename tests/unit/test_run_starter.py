"""Who started an Argo run, from its labels and annotations (issue 14, section 4).

The label keys are Argo's (``workflow/common/common.go``: ``LabelKeyCreator``,
``LabelKeyCreatorEmail``, ``LabelKeyCreatorPreferredUsername``, ``LabelKeyCronWorkflow``,
``LabelKeyPreviousWorkflowName``; v3.7.18 lines 67-69, 94-96, v4.1.2 lines 81-83, 108-110);
the creator values are what ``workflow/creator/creator.go`` ``Label`` writes (DNS-friendly,
an email's ``@`` as ``.at.``). The annotations are Metaflow's: ``metaflow/triggered_by`` from
the Argo Events sensor's trigger (``metaflow/plugins/argo/argo_workflows.py``) and
``metaflow/triggered_by_user`` from ``argo-workflows trigger``
(``metaflow/plugins/argo/argo_client.py`` ``trigger_workflow_template``). An empty map is
marshalled as ``null`` by Go's ``json.Marshal`` (Argo's ``setGlobalParameters``).
"""

from __future__ import annotations

import json

import pytest

from metaflow_hitl.errors import ConfigError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.policy import check_decider
from metaflow_hitl.render.phrases import starter_line
from metaflow_hitl.run_starter import argo_starter, has_human_starter, started_by_of
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.timestamps import utc_now

A = "workflows.argoproj.io/"
MAP = {"alice": "alice-smith", "bob": "bob-gh"}
EVENT = json.dumps([{"name": "data_ready", "type": "event"}])

CASES = [
    # (labels, annotations, kind, metaflow, github)
    ({A + "creator-preferred-username": "bob"}, {}, "human", "bob", "bob-gh"),
    (
        {A + "creator": "0a1b2c", A + "creator-preferred-username": "bob"},
        {},
        "human",
        "bob",
        "bob-gh",
    ),
    ({A + "creator": "0a1b2c"}, {}, "human", "0a1b2c", None),
    ({A + "creator-email": "bob.at.example.com"}, {}, "human", "bob.at.example.com", None),
    # the Argo Server resubmitted a cron run: the creator labels name the resubmitter
    (
        {A + "cron-workflow": "nightly", A + "creator-preferred-username": "bob"},
        {},
        "human",
        "bob",
        "bob-gh",
    ),
    ({A + "cron-workflow": "nightly"}, {}, "scheduled", None, None),
    # a resubmit without creator labels carries the old run's labels: unknown, not scheduled
    (
        {A + "cron-workflow": "nightly", A + "resubmitted-from-workflow": "flow-abc"},
        {},
        "unknown",
        "alice",
        "alice-smith",
    ),
    ({}, {"metaflow/triggered_by": EVENT}, "event", None, None),
    (
        {},
        {"metaflow/triggered_by_user": json.dumps({"type": "user", "name": "bob"})},
        "human",
        "bob",
        "bob-gh",
    ),
    (
        {},
        {"metaflow/triggered_by_user": json.dumps({"type": "production", "name": "tok"})},
        "unknown",
        "alice",
        "alice-smith",
    ),
    ({}, {}, "unknown", "alice", "alice-smith"),
    (None, None, "unknown", "alice", "alice-smith"),  # a template compiled before this
]


@pytest.mark.parametrize(("labels", "annotations", "kind", "metaflow", "github"), CASES)
def test_the_starter_is_read_from_labels_then_annotations(
    labels, annotations, kind, metaflow, github
) -> None:
    starter = argo_starter(
        None if labels is None else json.dumps(labels),
        None if annotations is None else json.dumps(annotations),
        deployer="alice",
        mapping=MAP,
    )
    assert (starter["kind"], starter["metaflow"], starter["github"]) == (kind, metaflow, github)
    assert starter["source"]
    assert has_human_starter(starter) == (kind not in ("scheduled", "event"))


def test_go_null_maps_read_as_empty() -> None:
    starter = argo_starter("null", "null", deployer=None, mapping={})
    assert starter == {
        "kind": "unknown",
        "metaflow": None,
        "github": None,
        "source": "METAFLOW_OWNER (the deployer)",
    }
    assert started_by_of(starter, None) == "argo-workflows"


@pytest.mark.parametrize("bad", ["{not json", '["a"]'])
def test_unreadable_metadata_fails_closed(bad) -> None:
    with pytest.raises(ConfigError):
        argo_starter(bad, "{}", deployer="alice", mapping={})


def _request(starter, started_by):
    return GateSpec.from_options(message="m").request_for(
        GateId("F", "argo-f-1", "gate"),
        message="m",
        started_by=started_by,
        runtime="argo-workflows",
        now=utc_now(),
        store="",
        starter=starter,
    )


def test_self_approval_refuses_the_human_starter_not_the_deployer() -> None:
    starter = argo_starter(
        json.dumps({A + "creator-preferred-username": "bob"}), "{}", deployer="alice", mapping=MAP
    )
    request = _request(starter, started_by_of(starter, "alice"))
    assert request.started_by == "bob"
    for login in ("bob", "bob-gh"):
        refusal = check_decider(request, login, "approve", permission="write")
        assert refusal is not None
        assert refusal.code == "self_approval"
    assert check_decider(request, "alice", "approve", permission="write") is None
    assert "human: bob, GitHub bob-gh" in starter_line(starter)


@pytest.mark.parametrize(
    ("labels", "annotations"),
    [({A + "cron-workflow": "nightly"}, {}), ({}, {"metaflow/triggered_by": EVENT})],
)
def test_a_scheduled_or_event_run_has_no_starter_to_refuse(labels, annotations) -> None:
    starter = argo_starter(
        json.dumps(labels), json.dumps(annotations), deployer="alice", mapping=MAP
    )
    request = _request(starter, started_by_of(starter, "alice"))
    assert request.started_by == "alice"  # the deployer, shown as before
    assert check_decider(request, "alice", "approve", permission="write") is None
    assert check_decider(request, "alice-smith", "approve", permission="write") is None
    assert "no human starter" in starter_line(starter)


def test_an_unknown_starter_keeps_refusing_the_deployer() -> None:
    starter = argo_starter("{}", "{}", deployer="alice", mapping=MAP)
    request = _request(starter, started_by_of(starter, "alice"))
    refusal = check_decider(request, "alice-smith", "approve", permission="write")
    assert refusal is not None
    assert refusal.code == "self_approval"
