"""``hitl audit``'s comparison of the review repos' history with the store
(metaflow_hitl.cli.audit.reconcile), table-tested without git or GitHub."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from metaflow_hitl.cli.audit import reconcile
from metaflow_hitl.records import Decision
from metaflow_hitl.timestamps import format_ts
from tests.support.builders import T0, actor, build_request

REQUEST = build_request()
GATE = str(REQUEST.gate_id)


def decision(outcome: str = "approved", by: str = "bob") -> Decision:
    return Decision(
        gate_id=REQUEST.gate_id,
        outcome=outcome,  # type: ignore[arg-type]
        proceed=outcome == "approved",
        decided_by=by,
        channel="cli",
        deciders=(actor(by),),
        decided_at=T0,
        request_digest=REQUEST.digest(),
        input={"target": "prod"},
    )


def row(outcome: str = "approved", by: str = "bob", gate: str = GATE) -> dict[str, Any]:
    return {
        "gate_id": gate,
        "outcome": outcome,
        "decided_by": by,
        "channel": "cli",
        "decided_at": format_ts(T0),
        "commit": "c0ffee",
    }


CASES: list[tuple[str, dict[str, Decision], dict[str, dict[str, Any]], set[str], list[str]]] = [
    ("in agreement", {GATE: decision()}, {GATE: row()}, {GATE}, []),
    (
        "missing from the repo",
        {GATE: decision()},
        {},
        {GATE},
        [
            f"{GATE}: approved in the store, missing from the review repo "
            f"(run: metaflow-hitl sync {GATE})"
        ],
    ),
    (
        "the repo says otherwise",
        {GATE: decision("rejected", "carol")},
        {GATE: row()},
        {GATE},
        [f"{GATE}: the review repo says approved by bob, the store rejected by carol"],
    ),
    (
        "in the repo, not in the store",
        {},
        {"Other/1/gate": row(gate="Other/1/gate")},
        {GATE},
        ["Other/1/gate: in the review repo but not in the store"],
    ),
    ("a gate without a review repo is no mismatch", {}, {}, {GATE}, []),
]


@pytest.mark.parametrize(
    ("case", "reviewed", "seen", "every", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_reconcile(case: str, reviewed: dict, seen: dict, every: set, expected: list[str]) -> None:
    assert reconcile(reviewed, seen, every_gate=every) == expected


def test_rows_are_completed_from_the_store() -> None:
    """The trailers carry no input, reason or identity: the row gets them from the store."""
    seen = {GATE: row()}
    made = replace(decision(), reason="ship it")
    reconcile({GATE: made}, seen, every_gate={GATE})
    assert seen[GATE]["input"] == {"target": "prod"}
    assert seen[GATE]["reason"] == "ship it"
    assert seen[GATE]["deciders"] == ["bob"]
    assert seen[GATE]["proceed"] is True
    assert str(seen[GATE]["identity"]).startswith("asserted")
