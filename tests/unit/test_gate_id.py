"""Gate ids: readable, deterministic, and never a path trick."""

from __future__ import annotations

import pytest

from metaflow_hitl.errors import GateRefError
from metaflow_hitl.gate_id import GateId, parse_gate_ref


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("TrainAndDeploy/1732/gate", id="local-run"),
        pytest.param("Flow/argo-trainflow-x7k2p/approve_deploy", id="argo-run"),
        pytest.param("_F/run_1.2-3/_s", id="underscores-dots-dashes"),
        pytest.param("F/1..2/s", id="double-dot-inside-run-id"),
        pytest.param("F" * 128 + "/1/s", id="longest-flow-name"),
    ],
)
def test_parse_and_str_round_trip(text: str) -> None:
    gate = GateId.parse(text)
    assert str(gate) == text
    assert GateId.parse(str(gate)) == gate


def test_components_and_derived_names() -> None:
    gate = GateId.parse("TrainAndDeploy/1732/gate")
    assert (gate.flow, gate.run_id, gate.step) == ("TrainAndDeploy", "1732", "gate")
    assert gate.short == "1732/gate"
    assert gate.slug == "TrainAndDeploy--1732--gate"


def test_surrounding_whitespace_is_ignored() -> None:
    assert GateId.parse("  F/1/s\n") == GateId("F", "1", "s")


def test_run_step_form_uses_the_known_flow() -> None:
    assert parse_gate_ref("1732/gate", flow="TrainAndDeploy") == GateId(
        "TrainAndDeploy", "1732", "gate"
    )


def test_full_form_still_accepted_inside_a_flow() -> None:
    assert parse_gate_ref("Other/9/s", flow="TrainAndDeploy") == GateId("Other", "9", "s")


def test_run_step_form_refused_without_a_flow_and_says_what_works() -> None:
    with pytest.raises(GateRefError) as info:
        parse_gate_ref("1732/gate", flow=None)
    assert "FLOW/RUN/STEP" in str(info.value)
    assert "RUN/STEP" not in str(info.value).replace("FLOW/RUN/STEP", "")
    assert "hitl list" in (info.value.hint or "")


def test_refusal_inside_a_flow_offers_both_forms() -> None:
    with pytest.raises(GateRefError, match=r"FLOW/RUN/STEP or RUN/STEP"):
        parse_gate_ref("just-one-part", flow="F")


HOSTILE = [
    pytest.param("", id="empty"),
    pytest.param("/", id="lone-slash"),
    pytest.param("//", id="three-empty-parts"),
    pytest.param("..", id="dotdot"),
    pytest.param(".", id="dot"),
    pytest.param("../../etc/passwd", id="etc-passwd-traversal"),
    pytest.param("F/../s", id="dotdot-as-run"),
    pytest.param("F/./s", id="dot-as-run"),
    pytest.param("../1/s", id="dotdot-as-flow"),
    pytest.param("F/1/..", id="dotdot-as-step"),
    pytest.param("F/.hidden/s", id="run-starting-with-dot"),
    pytest.param("F/-rf/s", id="run-starting-with-dash"),
    pytest.param("a/b/c/d", id="four-parts"),
    pytest.param("/F/1/s", id="absolute-path"),
    pytest.param("F/1/s/", id="trailing-slash"),
    pytest.param("F\\1\\s", id="backslashes"),
    pytest.param("F/1/my step", id="space-in-step"),
    pytest.param("My Flow/1/s", id="space-in-flow"),
    pytest.param("F/1 2/s", id="space-in-run"),
    pytest.param("F/1/s\nx", id="newline-in-step"),
    pytest.param("F/1\n/s", id="newline-in-run"),
    pytest.param("F/1/s\x00", id="nul-in-step"),
    pytest.param("F/1\x00/s", id="nul-in-run"),
    pytest.param("F/1/s\tx", id="tab-in-step"),
    pytest.param("Fl\u043ew/1/s", id="cyrillic-o-in-flow"),
    pytest.param("F/1/g\u0430te", id="cyrillic-a-in-step"),
    pytest.param("F/\uff11\uff17/s", id="fullwidth-digits-in-run"),
    pytest.param("F/\u0661\u0662/s", id="arabic-indic-digits-in-run"),
    pytest.param("F\u2215x/1/s", id="division-slash-lookalike"),
    pytest.param("1Flow/1/s", id="flow-starting-with-digit"),
    pytest.param("F/1/2step", id="step-starting-with-digit"),
    pytest.param("F-low/1/s", id="dash-in-flow"),
    pytest.param("F/1/s.tep", id="dot-in-step"),
    pytest.param("F/%2e%2e/s", id="url-encoded-dotdot"),
    pytest.param("F/~/s", id="tilde-run"),
    pytest.param("F/$HOME/s", id="shell-variable-run"),
    pytest.param("F" * 129 + "/1/s", id="flow-name-too-long"),
    pytest.param("F/" + "1" * 254 + "/s", id="run-id-too-long"),
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_gate_refs_are_refused(text: str) -> None:
    with pytest.raises(GateRefError):
        GateId.parse(text)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_gate_refs_are_refused_inside_a_flow_too(text: str) -> None:
    with pytest.raises(GateRefError):
        parse_gate_ref(text, flow="F")


@pytest.mark.parametrize(
    ("flow", "run_id", "step"),
    [
        pytest.param("F", "..", "s", id="dotdot-run"),
        pytest.param("F", ".", "s", id="dot-run"),
        pytest.param("F", "a/b", "s", id="slash-in-run"),
        pytest.param("F", "1", "", id="empty-step"),
        pytest.param("", "1", "s", id="empty-flow"),
        pytest.param("F", "", "s", id="empty-run"),
        pytest.param("F", 1, "s", id="int-run"),
        pytest.param(None, "1", "s", id="none-flow"),
    ],
)
def test_constructor_checks_every_component(flow: object, run_id: object, step: object) -> None:
    with pytest.raises(GateRefError):
        GateId(flow, run_id, step)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        pytest.param(("F-x", "1", "s"), "flow name 'F-x'", id="flow"),
        pytest.param(("F", "..", "s"), "run id '..'", id="run"),
        pytest.param(("F", "1", "s x"), "step name 's x'", id="step"),
    ],
)
def test_refusal_names_the_component_and_the_value(args: tuple[str, str, str], kind: str) -> None:
    with pytest.raises(GateRefError, match=kind):
        GateId(*args)


def test_gate_ids_are_hashable_and_ordered() -> None:
    a, b = GateId("A", "1", "s"), GateId("B", "1", "s")
    assert sorted([b, a]) == [a, b]
    assert len({a, GateId("A", "1", "s")}) == 1
