"""The content digest of a request and the reuse rule of ``resume`` (pure, local store)."""

from __future__ import annotations

from dataclasses import replace

from metaflow_hitl.content import Content, changed_parts, reuse_origin_gate
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import open_gate
from metaflow_hitl.render.documents import render_approval_file
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now

A = Content(artifacts={"accuracy": "sha1:aa", "model": "sha1:mm"}, code="flow-file:x", message="m")


def _open(store, run: str, content: Content | None, **extra):
    spec = GateSpec.from_options(message="Deploy?")
    request = spec.request_for(
        GateId("F", run, "gate"),
        message="Deploy?",
        started_by="alice",
        runtime="local",
        now=utc_now(),
        store=str(store.location),
        content=None if content is None else content.to_dict(),
        **extra,
    )
    return open_gate(store, request)[0]


def test_the_digest_covers_artifacts_code_and_message() -> None:
    assert Content.from_dict(A.to_dict()) == A
    for changed in (
        replace(A, artifacts={**A.artifacts, "accuracy": "sha1:bb"}),
        replace(A, code="code-package:y"),
        replace(A, message="n"),
    ):
        assert changed.digest != A.digest
    tampered = {**A.to_dict(), "code": "flow-file:other"}  # digest no longer matches
    assert Content.from_dict(tampered) is None


def test_changed_parts_names_what_differs() -> None:
    new = replace(A, artifacts={"accuracy": "sha1:bb", "extra": "sha1:ee"}, message="n")
    assert changed_parts(A, new) == ["accuracy", "+extra", "-model", "message"]
    assert changed_parts(None, A)[0].startswith("unknown")


def test_reuse_only_for_the_same_content(tmp_path) -> None:
    store = LocalApprovalStore(tmp_path)
    _open(store, "1", A)
    own = GateId("F", "2", "gate")
    assert reuse_origin_gate(store, own, "1", A).gate_id == GateId("F", "1", "gate")
    other = replace(A, artifacts={**A.artifacts, "accuracy": "sha1:bb"})
    reuse = reuse_origin_gate(store, own, "1", other)
    assert reuse.gate_id == own
    assert reuse.origin == {
        "supersedes": "F/1/gate",
        "supersedes_outcome": "pending",
        "changed": "accuracy",
    }
    assert reuse_origin_gate(store, own, None, A).gate_id == own


def test_an_origin_without_content_is_never_reused(tmp_path) -> None:
    store = LocalApprovalStore(tmp_path)
    _open(store, "1", None)  # a request of an older release
    reuse = reuse_origin_gate(store, GateId("F", "2", "gate"), "1", A)
    assert reuse.gate_id == GateId("F", "2", "gate")
    assert reuse.origin["changed"].startswith("unknown")


def test_the_approval_file_shows_the_content_and_what_changed(tmp_path) -> None:
    store = LocalApprovalStore(tmp_path)
    request = _open(
        store,
        "2",
        A,
        origin={"supersedes": "F/1/gate", "supersedes_outcome": "approved", "changed": "accuracy"},
        links={"earlier_decision": "https://github.com/acme/a/pull/1#issuecomment-1"},
    )
    text = render_approval_file(request)
    assert A.short() in text
    assert "accuracy, model" in text
    assert "F/1/gate" in text
    assert "(approved)" in text
    assert "https://github.com/acme/a/pull/1#issuecomment-1" in text


def test_the_card_shows_the_content_trust_and_asserted_identities() -> None:
    from metaflow_hitl.plugin.card import render_card_html
    from tests.integration.test_card import decision_dict, parse, request_dict

    request = request_dict(content=A.to_dict(), trusted_channels=["cli"])
    cli = {"login": "bob", "channel": "cli", "at": "2026-01-01T01:00:00.000Z", "source": "flag"}
    decision = decision_dict(channel="cli", deciders=[cli])
    text = "\n".join(parse(render_card_html(request, decision)).text)
    assert A.short() in text
    assert "accuracy, model" in text
    assert "Trusted channels" in text
    assert "asserted, unverified (flag)" in text
    github = decision_dict()  # reviews and comments: GitHub authenticated the login
    assert "verified (github)" in "\n".join(parse(render_card_html(request, github)).text)
