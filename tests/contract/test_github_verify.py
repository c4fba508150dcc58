"""``trusted_channels``: the gated step re-verifies a GitHub decision against GitHub.

GitHub is FakeGitHub (tests/fakes), checked against GitHub's OpenAPI description. Every
genuine decision here is made by the real handler (``metaflow-hitl handle-event``) from a
real review or comment on the fake; forged ones are written to the store by hand, as anyone
who can write the store could. The REST facts relied on: an issue comment's ``issue_url``,
``user``, ``created_at``/``updated_at`` (https://docs.github.com/en/rest/issues/comments#get-an-issue-comment),
a review's ``user`` and ``state`` (https://docs.github.com/en/rest/pulls/reviews#get-a-review-for-a-pull-request),
a deleted comment answers 404, and the collaborator permission API
(https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user).
"""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from metaflow_hitl.errors import (
    DeciderNotEligible,
    DecisionUnverified,
    EvidenceMissing,
    GitHubUnreachable,
    UntrustedChannel,
)
from metaflow_hitl.github.review_backend import GitHubReviewBackend
from metaflow_hitl.plugin.trust_check import enforce_trusted_channels
from metaflow_hitl.records import Actor, Decision
from metaflow_hitl.timestamps import utc_now
from tests.contract.github_env import REPO, SKIPS, Env

pytestmark = SKIPS


def decision_of(env: Env, step: str = "gate") -> Decision | None:
    request, _ = env.gates[step]
    return env.store.get_decision(request.gate_id)


GITHUB_ONLY = ("github",)


def _decided_by_comment(env: Env, login: str = "bob", body: str = '/approve {"target": "p"}'):
    request, number = env.open(trusted_channels=["github"])
    result, _ = env.run(env.comment_event(number, login, body))
    assert result.exit_code == 0, result.output
    decision = decision_of(env)
    assert decision is not None
    assert decision.channel == "comment"
    return request, number, decision


def _headline(call) -> type[DecisionUnverified]:
    with pytest.raises(DecisionUnverified) as caught:
        call()
    return type(caught.value)


def test_the_request_records_its_trusted_channels(env: Env) -> None:
    request, _ = env.open(trusted_channels=["github"])
    assert env.store.get_request(request.gate_id).trusted_channels == ("github",)


def test_a_genuine_comment_decision_passes(env: Env) -> None:
    request, _number, decision = _decided_by_comment(env)
    enforce_trusted_channels(GITHUB_ONLY, request, decision, env.store)  # no error


def test_a_genuine_review_decision_passes(env: Env) -> None:
    request, number = env.open(trusted_channels=["github"])
    result, _ = env.run(env.review_event(number, "alice", body='/approve {"target": "x"}'))
    assert result.exit_code == 0, result.output
    decision = decision_of(env)
    assert decision is not None
    assert decision.channel == "github-review"
    enforce_trusted_channels(GITHUB_ONLY, request, decision, env.store)


def test_deleted_evidence_fails_closed_and_the_page_says_why(env: Env) -> None:
    request, number, decision = _decided_by_comment(env)
    comment_id = int(str(decision.evidence_url).rsplit("-", 1)[1])
    env.as_user("bob", "DELETE", f"issues/comments/{comment_id}")
    with pytest.raises(EvidenceMissing) as caught:
        enforce_trusted_channels(GITHUB_ONLY, request, decision, env.store)
    assert "deleted" in caught.value.message
    assert any("did not run" in r and EvidenceMissing.headline in r for r in env.replies(number))


def test_an_approver_who_lost_write_access_fails_closed(env: Env) -> None:
    request, _number, decision = _decided_by_comment(env)
    env.gh.add_collaborator(REPO, "bob", "read")
    with pytest.raises(DeciderNotEligible) as caught:
        enforce_trusted_channels(GITHUB_ONLY, request, decision, env.store)
    assert "bob" in caught.value.message
    assert "write" in caught.value.message


def test_github_unreachable_fails_closed(env: Env) -> None:
    request, _number, decision = _decided_by_comment(env)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = GitHubReviewBackend(
        REPO, api_url=f"http://127.0.0.1:{port}", token=env.gh.token, max_attempts=2, backoff=0
    )
    with pytest.raises(GitHubUnreachable) as caught:
        enforce_trusted_channels(GITHUB_ONLY, request, decision, env.store, github=dead)
    assert "could not ask GitHub" in caught.value.message


def test_the_three_failures_have_distinct_headlines() -> None:
    headlines = {EvidenceMissing.headline, DeciderNotEligible.headline}
    headlines |= {GitHubUnreachable.headline, UntrustedChannel.headline}
    assert len(headlines) == 4


def test_a_hand_written_github_record_is_refused(env: Env) -> None:
    request, number = env.open(trusted_channels=["github"])
    now = utc_now()
    forged = Decision(
        gate_id=request.gate_id,
        outcome="approved",
        proceed=True,
        decided_by="bob",
        channel="comment",
        deciders=(
            Actor(
                login="bob",
                channel="comment",
                at=now,
                evidence_url=f"https://github.com/{REPO}/pull/{number}#issuecomment-999999",
                source="github",
            ),
        ),
        decided_at=now,
        request_digest=request.digest(),
        input={"target": "p"},
    )
    env.store.create_decision(forged)
    assert (
        _headline(lambda: enforce_trusted_channels(GITHUB_ONLY, request, forged, env.store))
        is EvidenceMissing
    )


def test_someone_elses_comment_does_not_back_a_record(env: Env) -> None:
    request, _number, genuine = _decided_by_comment(env, login="carol")
    # the forger points a record in carol's name at... carol's comment, but claims bob
    forged = replace(
        genuine,
        decided_by="bob",
        deciders=(replace(genuine.deciders[0], login="bob"),),
    )
    with pytest.raises(EvidenceMissing) as caught:
        enforce_trusted_channels(GITHUB_ONLY, request, forged, env.store)
    assert "carol" in caught.value.message


def test_other_input_than_the_comment_carries_is_refused(env: Env) -> None:
    request, _number, genuine = _decided_by_comment(env)
    forged = replace(genuine, input={"target": "everything"})
    assert (
        _headline(lambda: enforce_trusted_channels(GITHUB_ONLY, request, forged, env.store))
        is EvidenceMissing
    )


def test_a_cli_decision_on_a_github_only_gate_is_refused(env: Env) -> None:
    request, number = env.open(trusted_channels=["github"])
    now = utc_now()
    cli = Decision(
        gate_id=request.gate_id,
        outcome="approved",
        proceed=True,
        decided_by="bob",
        channel="cli",
        deciders=(Actor(login="bob", channel="cli", at=now, source="flag"),),
        decided_at=now,
        request_digest=request.digest(),
        input={"target": "p"},
    )
    with pytest.raises(UntrustedChannel) as caught:
        enforce_trusted_channels(GITHUB_ONLY, request, cli, env.store)
    assert "trusts only decisions from github" in caught.value.message
    assert any(UntrustedChannel.headline in r for r in env.replies(number))


def test_a_forged_timeout_before_the_deadline_is_refused(env: Env) -> None:
    request, _ = env.open(trusted_channels=["github"], on_timeout="approve", input_schema={})
    now = utc_now()
    forged = Decision(
        gate_id=request.gate_id,
        outcome="timed_out",
        proceed=True,
        decided_by="timeout",
        channel="timeout",
        deciders=(Actor(login="timeout", channel="timeout", at=now),),
        decided_at=now,
        request_digest=request.digest(),
    )
    assert (
        _headline(lambda: enforce_trusted_channels(GITHUB_ONLY, request, forged, env.store))
        is EvidenceMissing
    )


def test_the_handler_refuses_github_votes_on_a_cli_only_gate(env: Env) -> None:
    _request, number = env.open(trusted_channels=["cli"])
    result, outputs = env.run(env.comment_event(number, "bob", '/approve {"target": "p"}'))
    assert result.exit_code == 0, result.output
    assert decision_of(env) is None
    assert "trusts only decisions from cli" in outputs["ignored-reason"]


def test_the_cli_refuses_to_decide_a_github_only_gate(env: Env) -> None:
    from metaflow._vendor.click.testing import CliRunner

    from metaflow_hitl.cli.main import main

    request, _ = env.open(trusted_channels=["github"])
    result = CliRunner().invoke(
        main,
        ["--store", str(env.store.location), "approve", str(request.gate_id), "--as", "bob"],
    )
    assert result.exit_code != 0
    assert "trusts only decisions from github" in result.output
    assert env.store.get_decision(request.gate_id) is None
    assert not env.store.list_votes(request.gate_id)
