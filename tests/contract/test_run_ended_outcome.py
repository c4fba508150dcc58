"""One outcome when a decided Argo gate's run ended before it could be resumed, wherever the
decision is settled: the Action (``metaflow-hitl handle-event``), ``metaflow-hitl sync`` and
``sync --watch``.

The rule lives in :func:`metaflow_hitl.settle.settle`: the resumer's
:class:`~metaflow_hitl.errors.RunEnded` is an outcome, not a failure (nothing can ever resume the
node, and no repair command would change that). The decision is recorded and stands, the gate's
page gets one reply saying the run ended and nothing was resumed, every front end prints the same
line (:meth:`~metaflow_hitl.settle.Settled.notice`) and exits 0. Before, the Action exited 1
(a red job naming ``sync GATE``, which could never help) while ``sync`` exited 0.

The world is real where it can be: webhook payloads validated against
``@octokit/webhooks-schemas`` and a GitHub fake checked against GitHub's OpenAPI description
(``tests/fakes/github``), and the Argo Server fake (``tests/fakes/argo_server.py``) validating
every request against Argo's own swagger. What the resumer reads, from Argo's source: a
workflow that is gone answers 404 (``server/workflow/workflow_server.go`` ``GetWorkflow``), and a
stopped one keeps ``spec.shutdown: Stop`` with ``status.phase: Failed``
(``workflow/controller/operator.go``, ``shutdown`` handling), as
``tests/contract/test_argo_resume_outcomes.py`` cites.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from metaflow_hitl.argo.k8s_resumer import KubernetesResumer
from metaflow_hitl.argo.settings import RuntimeResumer
from metaflow_hitl.cli.group import CliContext
from metaflow_hitl.cli.watch import WatchState, watch_pass
from metaflow_hitl.gates import decide
from metaflow_hitl.records import Actor
from metaflow_hitl.timestamps import utc_now
from tests.contract.github_env import SKIPS, Env
from tests.contract.test_argo_resumers import FakeCustomObjects
from tests.fakes.argo_server import (
    NS,
    TOKEN,
    FakeArgoServer,
    load_swagger,
    make_workflow,
    serve,
    suspend_node,
)

pytestmark = SKIPS

WF = "trainflow-ended1"
ORIGIN = {"workflow": WF, "namespace": NS}


@pytest.fixture
def argo(env: Env) -> Iterator[FakeArgoServer]:
    """The Argo Server fake, and the settings the Action and the CLI read to reach it."""
    fake = FakeArgoServer(load_swagger())
    with serve(fake) as url:
        env.monkeypatch.setenv("METAFLOW_HITL_ARGO_SERVER", url)
        env.monkeypatch.setenv("METAFLOW_HITL_ARGO_TOKEN", TOKEN)
        env.monkeypatch.setenv("METAFLOW_HITL_ARGO_NAMESPACE", NS)
        env.monkeypatch.delenv("METAFLOW_HITL_ARGO_RESUME", raising=False)
        yield fake


def stopped(name: str = WF) -> dict[str, Any]:
    """A workflow stopped (``argo stop``) while its gate waited."""
    wf = make_workflow(suspend_node("n1", "gate", workflow=name), name=name)
    wf["spec"]["shutdown"] = "Stop"
    wf["status"]["phase"] = "Failed"
    wf["status"]["message"] = "Stopped with strategy 'Stop'"
    return wf


class FlakyCustomObjects(FakeCustomObjects):
    """The stateful Workflow stand-in whose API server answers the next ``fail_reads`` reads
    with HTTP 500 (an API server restarting)."""

    fail_reads = 0

    def get_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        if self.fail_reads:
            self.fail_reads -= 1
            raise self._error(500, "etcdserver: leader changed")
        return super().get_namespaced_custom_object(*args)


def run_ended_replies(env: Env, number: int) -> list[str]:
    return [r for r in env.replies(number) if "**Run ended:**" in r]


def cli(*args: str) -> Any:
    from metaflow._vendor.click.testing import CliRunner

    from metaflow_hitl.cli.main import main

    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("how", ["gone", "stopped"])
def test_the_action_records_replies_and_exits_0_when_the_run_ended(
    env: Env, argo: FakeArgoServer, how: str
) -> None:
    request, number = env.open(run="argo-ended1", origin=ORIGIN, input_schema=None)
    if how == "stopped":
        argo.workflows[(NS, WF)] = stopped()
    result, outputs = env.run(env.comment_event(number, "alice", "/approve"))
    assert result.exit_code == 0, result.output
    decision = env.store.get_decision(request.gate_id)
    assert decision is not None
    assert decision.outcome == "approved"
    assert outputs["decision"] == "approved"
    assert "Not resumed:" in result.output
    assert "nothing was resumed" in result.output
    assert "nothing to retry" in result.output
    assert f"gate {request.gate_id} cannot be resumed" in result.output
    assert argo.set_calls == 0  # nothing was written to Argo
    (reply,) = run_ended_replies(env, number)
    assert "nothing was resumed" in reply
    assert "approved by alice" in reply
    # A second event on the decided gate settles again: still exit 0, still one reply.
    again, _ = env.run(env.comment_event(number, "bob", "/approve"))
    assert again.exit_code == 0, again.output
    assert "Not resumed:" in again.output
    assert len(run_ended_replies(env, number)) == 1


def test_sync_says_the_same_and_exits_0(env: Env, argo: FakeArgoServer) -> None:
    """``sync`` (the repair command) on a gate decided elsewhere whose run is gone: the same
    line, the page told once, exit 0; a second ``sync`` posts nothing more."""
    request, number = env.open(run="argo-ended2", origin=ORIGIN, input_schema=None)
    decide(
        env.store,
        request.gate_id,
        actor=Actor(login="alice", channel="cli", at=utc_now()),
        intent="approve",
    )
    result = cli("sync", str(request.gate_id))
    assert result.exit_code == 0, result.output
    assert "Not resumed:" in result.output
    assert "nothing was resumed" in result.output
    assert "Failed" not in result.output
    assert len(run_ended_replies(env, number)) == 1
    again = cli("sync", str(request.gate_id))
    assert again.exit_code == 0, again.output
    assert len(run_ended_replies(env, number)) == 1


def test_a_real_resume_failure_still_fails_the_action(env: Env, argo: FakeArgoServer) -> None:
    """Only the ended run is an outcome: an Argo Server that refuses the token is a failure
    (exit 1, the decision stands, the repair command named)."""
    request, number = env.open(run="argo-ended3", origin=ORIGIN, input_schema=None)
    argo.workflows[(NS, WF)] = make_workflow(suspend_node("n1", "gate", workflow=WF), name=WF)
    env.monkeypatch.setenv("METAFLOW_HITL_ARGO_TOKEN", "not-the-token")
    result, _ = env.run(env.comment_event(number, "alice", "/approve"))
    assert result.exit_code == 1, result.output
    assert env.store.get_decision(request.gate_id) is not None
    assert "sync" in result.output
    assert run_ended_replies(env, number) == []


def test_watch_settles_through_settle(env: Env) -> None:
    """``sync --watch`` settles each newly recorded decision with :func:`settle`: a live run is
    resumed, a run that ended gets the same page reply and line (not a failure, not retried),
    and a gate it closes itself (run ended before anyone decided) is published, so its page
    says so; the run-ended decision is never resumed."""
    api = FakeCustomObjects()
    resumer = KubernetesResumer(NS, api=api, sleep=lambda _s: None)
    ctx = CliContext(store=env.store, resumer=RuntimeResumer(lambda: resumer))
    live, live_page = env.open(
        "live", run="argo-watch1", origin={**ORIGIN, "workflow": "wf-a"}, input_schema=None
    )
    ended, ended_page = env.open(
        "ended", run="argo-watch1", origin={**ORIGIN, "workflow": "wf-b"}, input_schema=None
    )
    closing, closing_page = env.open(
        "closing", run="argo-watch1", origin={**ORIGIN, "workflow": "wf-c"}
    )
    api.objects[(NS, "wf-a")] = make_workflow(
        suspend_node("a1", "live", workflow="wf-a"), name="wf-a"
    )
    api.objects[(NS, "wf-b")] = stopped("wf-b")
    # wf-c does not exist: its run is gone before anyone decided
    for request in (live, ended):
        decide(
            env.store,
            request.gate_id,
            actor=Actor(login="alice", channel="cli", at=utc_now()),
            intent="approve",
        )
    state = WatchState()
    lines: list[str] = []
    problems = watch_pass(ctx, state, since_seconds=86400, probe_every=0, echo=lines.append)
    assert problems == 0, lines
    assert dict(state.outcomes) == {
        str(live.gate_id): "resumed",
        str(ended.gate_id): "run_ended",
        str(closing.gate_id): "closed",
    }
    assert len(api.writes) == 1  # only the live gate's node
    assert any(line.startswith("Not resumed:") for line in lines)
    assert len(run_ended_replies(env, ended_page)) == 1
    assert run_ended_replies(env, live_page) == []
    closed = env.store.get_decision(closing.gate_id)
    assert closed is not None
    assert closed.run_ended == "deleted"
    assert env.pull(closing_page)["state"] == "closed"  # published: the page was closed
    assert any("its run ended" in r for r in env.replies(closing_page))
    # Nothing is tried again: the next passes read nothing and write nothing.
    gets = api.gets
    watch_pass(ctx, state, since_seconds=86400, probe_every=1e9, echo=lines.append)
    assert api.gets == gets
    assert len(run_ended_replies(env, ended_page)) == 1


def test_watch_retries_a_failed_resume_with_the_repair_command(env: Env) -> None:
    api = FlakyCustomObjects()
    resumer = KubernetesResumer(NS, api=api, sleep=lambda _s: None)
    ctx = CliContext(store=env.store, resumer=RuntimeResumer(lambda: resumer))
    request, _ = env.open(
        "flaky", run="argo-watch2", origin={**ORIGIN, "workflow": "wf-d"}, input_schema=None
    )
    api.objects[(NS, "wf-d")] = make_workflow(
        suspend_node("d1", "flaky", workflow="wf-d"), name="wf-d"
    )
    decide(
        env.store,
        request.gate_id,
        actor=Actor(login="alice", channel="cli", at=utc_now()),
        intent="approve",
    )
    api.fail_reads = 1
    state = WatchState()
    lines: list[str] = []
    assert watch_pass(ctx, state, since_seconds=86400, probe_every=1e9, echo=lines.append) == 1
    assert state.outcomes == [(str(request.gate_id), "failed")]
    assert any(f"sync {request.gate_id}" in line for line in lines)
    assert watch_pass(ctx, state, since_seconds=86400, probe_every=1e9, echo=lines.append) == 0
    assert state.outcomes[-1] == (str(request.gate_id), "resumed")
    assert len(api.writes) == 1
