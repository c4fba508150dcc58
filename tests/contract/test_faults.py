"""Faults injected for real at the boundaries: a TCP proxy (:class:`tests.fakes.faults.FaultProxy`)
between the real client and a real local server drops connections, loses answers, answers
5xx/429/403 with ``Retry-After``, delays or hangs; processes are SIGKILLed mid-write.

1. GitHub during notify: ``open_review`` through the proxy to FakeGitHub (OpenAPI-checked):
   one pull request (or issue) and one branch, whatever fails; a clear error past the budget.
2. S3 during decide: ``metaflow-hitl --store s3://... approve`` / ``handle-event`` as
   subprocesses, the moto S3 server behind the proxy: exit 0 through retries or exit 1 naming
   S3 and what to do; every object decodes; a retry succeeds or reports the same winner.
3. Argo resume after the decision is stored: the Argo Server stand-in behind the proxy; the
   command exits 1 saying the decision is recorded and to run ``hitl sync``, which then resumes
   exactly that node once.
4. A Kubernetes 409 storm: a real ``CustomObjectsApi`` against a stateful API server on
   loopback (tests/fakes/k8s_api.py) that answers 409 to stale ``resourceVersion`` writes.
5. Killed mid-write: writer processes forked from one parent are SIGKILLed at random moments
   (local store; S3 through the proxy, with the kill during the PUT); no torn record, listed
   gates are consistent, the first decision never changes.

Figures (retry counts, elapsed times, more kills) come from ``benchmarks/bench_faults.py``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from metaflow_hitl.errors import StoreError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import open_gate
from metaflow_hitl.github import review_backend as github_repo
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Actor, Decision, Request, Vote, decode_record
from metaflow_hitl.render.documents import render_approval_file
from metaflow_hitl.review.git_backend import branch_for
from metaflow_hitl.review.publish import open_review
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.stores.s3 import S3ApprovalStore
from metaflow_hitl.timestamps import utc_now
from tests.contract.store_kinds import S3_TEST_ENV, new_bucket, s3_client
from tests.fakes.faults import FaultProxy, s3_error
from tests.fakes.published import open_published
from tests.support.processes import python_path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "metaflow-hitl"
REPO = "acme/approvals"
PREFIX = "team/hitl"
DECISION_PUT = r"/decision\.json$"


# -- shared helpers ---------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``metaflow-hitl ARGS`` in a subprocess with ``env`` on top of a clean environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METAFLOW_HITL"))}
    for name in ("GITHUB_TOKEN", "GITHUB_API_URL", "METAFLOW_S3_ENDPOINT_URL"):
        base.pop(name, None)
    proc = subprocess.run(
        [str(SCRIPT), *args],
        env={**base, "USER": "alice", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return proc


def s3_env(endpoint: str, tmp: Path, **extra: str) -> dict[str, str]:
    """Dummy credentials and Metaflow's endpoint setting for a child process."""
    return {
        **S3_TEST_ENV,
        "METAFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        **extra,
    }


def make_request(
    gate: GateId,
    *,
    runtime: str = "local",
    review: dict[str, str | None] | None = None,
    origin: dict[str, str | None] | None = None,
    store: str = "test",
) -> Request:
    spec = GateSpec.from_options(message="Deploy model v3?", input_schema={"target": "str"})
    return spec.request_for(
        gate,
        message="Deploy model v3?",
        started_by="dave",
        runtime=runtime,  # type: ignore[arg-type]
        now=utc_now(),
        store=store,
        review=review,
        origin=origin,
    )


def make_decision(request: Request, login: str, outcome: str = "approved") -> Decision:
    at = utc_now()
    return Decision(
        gate_id=request.gate_id,
        outcome=outcome,  # type: ignore[arg-type]
        proceed=outcome == "approved",
        decided_by=login,
        channel="cli",
        deciders=(Actor(login=login, channel="cli", at=at),),
        decided_at=at,
        request_digest=request.digest(),
        input={"target": "prod"} if outcome == "approved" else {},
        reason=None if outcome == "approved" else "no",
    )


_KINDS: dict[str, type[Any]] = {"request.json": Request, "decision.json": Decision}


def decode_all(items: dict[str, bytes]) -> dict[str, Any]:
    """Decode every record (by its name); any torn or foreign object fails the test."""
    out = {}
    for key, data in items.items():
        name = key.rsplit("/", 1)[-1]
        if "/pending/" in key:
            assert data == b"", f"pending marker {key} is not empty"
            continue
        kind = Vote if "/votes/" in key else _KINDS.get(name)
        if kind is None:
            continue  # a record kind another feature adds (reminders)
        out[key] = decode_record(data, kind, where=key)
    return out


def s3_objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    client = s3_client(endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [item["Key"] for page in pages for item in page.get("Contents", ())]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def local_objects(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


# == 2. S3 during decide ======================================================================

S3_GATE = GateId("TrainFlow", "1732", "gate")
#: alice approves the S3 gate through the CLI.
ALICE_APPROVES = ("approve", str(S3_GATE), "--as", "alice", "--input", '{"target": "prod"}')


@dataclass
class S3Setup:
    moto: str
    bucket: str
    store: S3ApprovalStore  # talks to moto directly, for setup and checks
    proxy: FaultProxy
    tmp: Path

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{PREFIX}"

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return cli("--store", self.url, *args, env=s3_env(self.proxy.url, self.tmp, **env))

    def records(self) -> dict[str, Any]:
        return decode_all(s3_objects(self.moto, self.bucket))


@pytest.fixture
def s3(moto_s3: str, tmp_path: Path) -> Iterator[S3Setup]:
    bucket = new_bucket(moto_s3)
    store = S3ApprovalStore(bucket, PREFIX, client=s3_client(moto_s3))
    with FaultProxy(moto_s3, max_hang=20) as proxy:
        yield S3Setup(moto_s3, bucket, store, proxy, tmp_path)


def _slowdown(proxy: FaultProxy, times: int | None) -> None:
    proxy.status("PUT", DECISION_PUT, 503, times=times, body=s3_error("SlowDown", "Reduce rate"))


S3_TRANSIENT = {
    "503-slowdown-x2": lambda p: _slowdown(p, 2),
    "500-x2": lambda p: p.status("PUT", DECISION_PUT, 500, times=2, body=s3_error("InternalError")),
    "drop-before": lambda p: p.drop("PUT", DECISION_PUT),
    "lost-response": lambda p: p.drop("PUT", DECISION_PUT, after=True),
    "hang-after-write": lambda p: p.hang("PUT", DECISION_PUT, after=True),
    "slow-list": lambda p: p.delay("GET", r"list-type=2", 0.5),
}


#: The faults the test suite runs (the benchmark runs them all, several times).
S3_TESTED = ["503-slowdown-x2", "lost-response", "hang-after-write"]


@pytest.mark.parametrize("fault", S3_TESTED, ids=S3_TESTED)
def test_s3_decide_succeeds_through_transient_faults(s3: S3Setup, fault: str) -> None:
    request = make_request(S3_GATE)
    s3.store.create_request(request)
    S3_TRANSIENT[fault](s3.proxy)

    done = s3.run(
        *ALICE_APPROVES,
        METAFLOW_HITL_S3_TIMEOUT="1",
    )

    assert done.returncode == 0, done.stderr
    s3.proxy.assert_consumed()
    decision = s3.store.get_decision(S3_GATE)
    assert decision is not None
    assert (decision.decided_by, decision.input) == ("alice", {"target": "prod"})
    records = s3.records()
    assert [k for k in records if k.endswith("decision.json")] == [
        f"{PREFIX}/v1/gates/TrainFlow/1732/gate/decision.json"
    ]
    assert len([k for k in records if "/votes/" in k]) == 1
    assert list(s3.store.list_gates(pending_only=True)) == []
    assert not any("/pending/" in k for k in s3_objects(s3.moto, s3.bucket))  # marker removed
    if fault in ("lost-response", "hang-after-write"):
        # The write landed twice on the wire; the second got 412 and the nonce said "ours".
        assert s3.proxy.count("PUT", DECISION_PUT, forwarded=True) == 2
    if fault != "lost-response":
        return
    again = s3.run("approve", str(S3_GATE), "--as", "bob", "--input", '{"target": "x"}')
    assert again.returncode == 4  # refused: already decided
    assert "already decided" in again.stderr
    assert "approved by alice" in again.stderr  # the same winner


def test_s3_decide_fails_loudly_then_a_retry_succeeds(s3: S3Setup) -> None:
    request = make_request(S3_GATE)
    s3.store.create_request(request)
    _slowdown(s3.proxy, None)

    failed = s3.run(*ALICE_APPROVES)

    assert failed.returncode == 6  # store error
    assert "S3 said SlowDown (HTTP 503)" in failed.stderr
    assert f"s3://{s3.bucket}/{PREFIX}/v1/gates/TrainFlow/1732/gate/decision.json" in failed.stderr
    assert "Run the same command again" in failed.stderr
    assert "testing" not in failed.stderr  # no credentials
    assert s3.proxy.count("PUT", DECISION_PUT) == 3  # botocore's standard mode: 3 attempts
    assert s3.store.get_decision(S3_GATE) is None
    s3.records()  # the vote that was written decodes; nothing is torn
    assert list(s3.store.list_gates(pending_only=True)) == [S3_GATE]

    s3.proxy.clear()
    retried = s3.run(*ALICE_APPROVES)
    decision = s3.store.get_decision(S3_GATE)
    assert decision is not None
    assert (decision.decided_by, decision.input) == ("alice", {"target": "prod"})
    assert "approved by alice" in retried.stdout + retried.stderr  # the same winner
    records = s3.records()
    assert len([k for k in records if k.endswith("decision.json")]) == 1


def test_s3_retry_after_a_failed_decision_write_reports_success(s3: S3Setup) -> None:
    s3.store.create_request(make_request(S3_GATE))
    _slowdown(s3.proxy, None)
    first = s3.run(
        *ALICE_APPROVES,
        AWS_MAX_ATTEMPTS="1",
    )
    assert first.returncode == 6  # store error
    s3.proxy.clear()
    retried = s3.run(*ALICE_APPROVES)
    assert retried.returncode == 0, retried.stderr


def test_s3_endless_drops_give_up_after_bounded_attempts(s3: S3Setup) -> None:
    s3.store.create_request(make_request(S3_GATE))
    s3.proxy.drop("PUT", DECISION_PUT, times=None)

    started = time.monotonic()
    failed = s3.run(
        *ALICE_APPROVES,
        AWS_MAX_ATTEMPTS="1",
    )

    assert failed.returncode == 6  # store error
    assert time.monotonic() - started < 30
    assert "losing the response (5 attempts)" in failed.stderr
    assert "check the S3 endpoint" in failed.stderr
    assert s3.proxy.count("PUT", DECISION_PUT) == 5
    assert s3.store.get_decision(S3_GATE) is None
    s3.records()


# == 1. GitHub during notify ====================================================================


@dataclass
class GitHubSetup:
    gh: Any
    proxy: FaultProxy
    store: LocalApprovalStore
    sleeps: list[float] = field(default_factory=list)

    def open(self, step: str = "gate", mode: str = "pr") -> tuple[Request, dict[str, Any]]:
        review = {"backend": "github", "repo": REPO, "mode": mode, "api_url": self.proxy.url}
        request = make_request(GateId("TrainFlow", "1732", step), review=review)
        return request, open_review(request, render_approval_file(request), store=self.store)

    def pulls(self) -> list[Any]:
        return [i for i in self.gh.repo(REPO).issues.values() if i.pull is not None]

    def issues(self) -> list[Any]:
        return [i for i in self.gh.repo(REPO).issues.values() if i.pull is None]

    def gate_branches(self) -> list[str]:
        refs = self.gh.repo(REPO).refs
        return sorted(r.removeprefix("refs/heads/") for r in refs if "hitl/" in r)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[GitHubSetup]:
    with github_setup(monkeypatch, tmp_path) as setup:
        yield setup


@contextmanager
def github_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[GitHubSetup]:
    """FakeGitHub behind a FaultProxy; the notify path's backend with test-sized backoff."""
    from tests.fakes.github import SKIP_REASON, SPEC_FILE, Clock, FakeGitHub

    if not SPEC_FILE.is_file():
        pytest.skip(SKIP_REASON)
    for name in ("GITHUB_TOKEN", "GITHUB_API_URL", "METAFLOW_HITL_GITHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    with FakeGitHub() as gh, FaultProxy(gh.url) as proxy:
        gh.world.clock = Clock(utc_now() - timedelta(minutes=5))
        gh.add_org("acme")
        gh.add_repo(REPO, files={"README.md": "# approvals\n"})
        gh.add_collaborator(REPO, "hitl-bot", "write")
        gh.add_collaborator(REPO, "alice", "write")
        monkeypatch.setenv("METAFLOW_HITL_GITHUB_TOKEN", gh.token)
        setup = GitHubSetup(gh, proxy, LocalApprovalStore(tmp_path / "notify-store"))

        def sleep(seconds: float) -> None:  # waits for real, and counts
            setup.sleeps.append(seconds)
            time.sleep(seconds)

        class Backend(github_repo.GitHubReviewBackend):
            """The production backend with test-sized backoff (the notify path builds it)."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.update(backoff=0.05, sleep=sleep, timeout=2)
                super().__init__(*args, **kwargs)

        monkeypatch.setattr(github_repo, "GitHubReviewBackend", Backend)
        yield setup


RATE_LIMITED = json.dumps(
    {
        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
        "you try again.",
        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
    }
)
GITHUB_PR_FAULTS = {
    "502-on-create-x2": lambda p: p.status("POST", r"/pulls$", 502, times=2),
    "pull-created-answer-lost": lambda p: p.drop("POST", r"/pulls$", after=True),
    "branch-created-answer-lost": lambda p: p.drop("POST", r"/git/refs$", after=True),
    "file-committed-502-after": lambda p: p.status("PUT", r"/contents/", 502, after=True),
    "read-hangs": lambda p: p.hang("GET", r"/pulls\?", times=1),
    "secondary-403-and-429": lambda p: (
        p.status("POST", r"/pulls$", 403, headers={"Retry-After": "1"}, body=RATE_LIMITED),
        p.status("POST", r"/git/refs$", 429, headers={"Retry-After": "1"}, body=RATE_LIMITED),
    ),
}


@pytest.mark.parametrize("fault", list(GITHUB_PR_FAULTS), ids=list(GITHUB_PR_FAULTS))
def test_github_notify_opens_one_pull_and_one_branch(github: GitHubSetup, fault: str) -> None:
    GITHUB_PR_FAULTS[fault](github.proxy)
    request, refs = github.open()
    github.proxy.assert_consumed()
    assert len(github.pulls()) == 1
    assert github.gate_branches() == [branch_for(request.gate_id)]
    assert refs["number"] == str(github.pulls()[0].number)
    if fault == "secondary-403-and-429":
        assert github.sleeps == [1.0, 1.0]  # Retry-After, honoured for real
    # A re-run of notify (a retried task) finds everything and writes nothing.
    writes = github.proxy.count("POST") + github.proxy.count("PUT")
    github.open()
    assert github.proxy.count("POST") + github.proxy.count("PUT") == writes
    assert len(github.pulls()) == 1


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda p: p.drop("POST", r"/issues$", after=True), id="issue-answer-lost"),
        pytest.param(lambda p: p.status("POST", r"/issues$", 502, after=True), id="502-after"),
        pytest.param(
            lambda p: p.status("POST", r"/issues$", 429, headers={"Retry-After": "0"}), id="429"
        ),
    ],
)
def test_github_notify_opens_one_issue(github: GitHubSetup, fault: Any) -> None:
    fault(github.proxy)
    github.open(mode="issue")
    github.proxy.assert_consumed()
    assert len(github.issues()) == 1
    assert github.gate_branches() == []


def test_github_budget_exhausted_is_a_clear_error_then_a_rerun_succeeds(
    github: GitHubSetup,
) -> None:
    github.proxy.status("POST", r"/pulls$", 502, times=None)
    with pytest.raises(StoreError) as info:
        github.open()
    text = str(info.value)
    assert "GitHub did not complete open the pull request" in text
    assert "after 5 attempt(s)" in text
    assert "retry later (re-running is safe)" in text
    assert github.gh.token not in text
    assert github.proxy.count("POST", r"/pulls$") == 5  # bounded
    assert github.pulls() == []

    github.proxy.clear()
    request, _ = github.open()
    assert len(github.pulls()) == 1
    assert github.gate_branches() == [branch_for(request.gate_id)]  # the branch was reused


# == 3. Argo resume after the decision is stored ==================================================

ARGO_STEP = "deploy"


@dataclass
class ArgoSetup:
    fake: Any
    proxy: FaultProxy
    store: LocalApprovalStore
    request: Request
    env: dict[str, str]

    def node(self) -> dict[str, Any]:
        from tests.fakes.argo_server import NS, WF, nodes_of

        return dict(nodes_of(self.fake.workflows[(NS, WF)])["n1"])

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli("--store", self.store.location, *args, env=self.env)


def argo_request(review: dict[str, str | None] | None = None, store: str = "test") -> Request:
    from tests.fakes.argo_server import NS, WF

    return make_request(
        GateId("TrainAndDeploy", f"argo-{WF}", ARGO_STEP),
        runtime="argo-workflows",
        origin={"workflow": WF, "namespace": NS},
        review=review,
        store=store,
    )


@pytest.fixture
def argo(tmp_path: Path) -> Iterator[ArgoSetup]:
    from tests.fakes import argo_server

    fake = argo_server.FakeArgoServer(argo_server.load_swagger())
    fake.workflows[(argo_server.NS, argo_server.WF)] = argo_server.make_workflow(
        argo_server.suspend_node("n1", ARGO_STEP)
    )
    store = LocalApprovalStore(tmp_path / "store")
    request = argo_request(store=store.location)
    store.create_request(request)
    with argo_server.serve(fake) as url, FaultProxy(url, max_hang=20) as proxy:
        env = {
            "METAFLOW_HITL_ARGO_SERVER": proxy.url,
            "METAFLOW_HITL_ARGO_TOKEN": argo_server.TOKEN,
            "METAFLOW_HITL_ARGO_TIMEOUT": "1",
        }
        yield ArgoSetup(fake, proxy, store, request, env)
    assert fake.problems == []


SET = r"/set$"
ARGO_FAULTS = {
    "503": lambda p: p.status("PUT", SET, 503, times=None, body='{"code":14,"message":"down"}'),
    "drop": lambda p: p.drop("PUT", SET, times=None),
    "timeout": lambda p: p.hang("PUT", SET, times=None),
}


@pytest.mark.parametrize("fault", list(ARGO_FAULTS), ids=list(ARGO_FAULTS))
def test_argo_resume_failure_keeps_the_decision_and_sync_resumes_once(
    argo: ArgoSetup, fault: str
) -> None:
    from tests.fakes.argo_server import TOKEN

    ARGO_FAULTS[fault](argo.proxy)
    done = argo.run(
        "approve", str(argo.request.gate_id), "--as", "alice", "--input", '{"target": "prod"}'
    )

    assert done.returncode == 7, done.stdout  # recorded, follow-up incomplete
    assert "is recorded and stands" in done.stderr
    assert f"metaflow-hitl --store {argo.store.location} sync {argo.request.gate_id}" in done.stderr
    assert TOKEN not in done.stderr
    decision = argo.store.get_decision(argo.request.gate_id)
    assert decision is not None
    assert decision.decided_by == "alice"
    assert argo.node()["phase"] == "Running"
    assert argo.fake.writes == []

    argo.proxy.clear()
    synced = argo.run("sync")
    assert synced.returncode == 0, synced.stderr
    assert f"Resumed {argo.request.gate_id}" in synced.stdout
    assert "1 Argo gate(s) resumed" in synced.stdout
    node = argo.node()
    assert node["phase"] == "Succeeded"
    assert node["outputs"]["parameters"] == [{"name": "decision", "value": "approved"}]
    assert len(argo.fake.writes) == 1

    puts = argo.proxy.count("PUT", SET)
    again = argo.run("sync")
    assert again.returncode == 0, again.stderr
    assert "0 Argo gate(s) resumed" in again.stdout
    assert argo.proxy.count("PUT", SET) == puts  # read, saw it resumed, wrote nothing
    assert len(argo.fake.writes) == 1
    assert argo.store.get_decision(argo.request.gate_id) == decision


def test_argo_lost_resume_answer_is_not_an_error(argo: ArgoSetup) -> None:
    """The /set landed but its answer was lost: the resumer reads again and sees it done."""
    argo.proxy.drop("PUT", SET, after=True)
    done = argo.run(
        "approve", str(argo.request.gate_id), "--as", "alice", "--input", '{"target": "prod"}'
    )
    assert done.returncode == 0, done.stderr
    assert argo.node()["phase"] == "Succeeded"
    assert len(argo.fake.writes) == 1


def test_handle_event_argo_resume_failure_then_sync(tmp_path: Path, argo: ArgoSetup) -> None:
    """The GitHub Action's path: the decision is recorded and published, the resume fails."""
    from tests.fakes import webhooks
    from tests.fakes.github import SKIP_REASON, SPEC_FILE, Clock, FakeGitHub

    if not SPEC_FILE.is_file() or not webhooks.SCHEMA_FILE.is_file():
        pytest.skip(SKIP_REASON)
    store = LocalApprovalStore(tmp_path / "gh-store")
    with FakeGitHub() as gh:
        gh.world.clock = Clock(utc_now() - timedelta(minutes=5))
        gh.add_org("acme")
        gh.add_repo(REPO, files={"README.md": "# approvals\n"})
        gh.add_collaborator(REPO, "hitl-bot", "write")
        gh.add_collaborator(REPO, "alice", "write")
        review = {"backend": "github", "repo": REPO, "mode": "pr", "api_url": gh.url}
        request, _ = open_gate(store, argo_request(review, store.location))
        backend = github_repo.GitHubReviewBackend(REPO, api_url=gh.url, token=gh.token)
        number = int(open_published(backend, store, request, "# approve\n")["number"] or 0)
        comment_id = gh.add_comment(REPO, number, "alice", '/approve {"target": "prod"}')
        import requests

        auth = {"Authorization": f"token {gh.token}"}
        issue = requests.get(f"{gh.url}/repos/{REPO}/issues/{number}", headers=auth, timeout=10)
        comments = requests.get(issue.json()["comments_url"], headers=auth, timeout=10).json()
        comment = next(c for c in comments if c["id"] == comment_id)
        payload = webhooks.comment_payload(REPO, issue.json(), comment)
        event = tmp_path / "event.json"
        event.write_text(json.dumps(payload))
        argo.proxy.status("PUT", SET, 503, times=None, body='{"code":14,"message":"down"}')
        env = {
            **argo.env,
            "METAFLOW_HITL_STORE": store.location,
            "METAFLOW_HITL_GITHUB_TOKEN": gh.token,
            "METAFLOW_HITL_GITHUB_API_URL": gh.url,
            "GITHUB_EVENT_NAME": "issue_comment",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_OUTPUT": str(tmp_path / "out"),
        }
        done = cli("handle-event", env=env)
        assert done.returncode == 1, done.stdout
        assert "is recorded and stands" in done.stderr
        assert f"sync {request.gate_id}" in done.stderr  # the repair command
        assert gh.token not in done.stdout + done.stderr
        decision = store.get_decision(request.gate_id)
        assert decision is not None
        assert decision.decided_by == "alice"
        assert argo.node()["phase"] == "Running"

        argo.proxy.clear()
        synced = cli("sync", env=env)
        assert synced.returncode == 0, synced.stderr
        assert "1 Argo gate(s) resumed" in synced.stdout
        assert argo.node()["phase"] == "Succeeded"
        assert len(argo.fake.writes) == 1


# == 4. Kubernetes 409 storm ======================================================================


@pytest.fixture
def k8s() -> Iterator[tuple[Any, Any]]:
    pytest.importorskip("kubernetes")
    from kubernetes import client

    from tests.fakes.argo_server import SPECS
    from tests.fakes.k8s_api import FakeKubernetes, serve, workflow_validator

    fake = FakeKubernetes(workflow_validator(SPECS / "v3.7.18" / "schema.json"))
    with serve(fake) as url:
        config = client.Configuration()
        config.host = url
        yield fake, client.CustomObjectsApi(client.ApiClient(config))
    assert fake.problems == []


def _k8s_resumer(api: Any, sleeps: list[float]) -> Any:
    from metaflow_hitl.argo.k8s_resumer import KubernetesResumer

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    return KubernetesResumer(None, api=api, sleep=sleep)


@pytest.mark.parametrize("compressed", [False, True], ids=["nodes", "compressed-nodes"])
def test_k8s_short_409_storm_succeeds_and_keeps_other_nodes(
    k8s: tuple[Any, Any], compressed: bool
) -> None:
    from tests.fakes.argo_server import NS, WF, make_workflow, nodes_of, suspend_node

    fake, api = k8s
    fake.add(
        make_workflow(
            suspend_node("n1", ARGO_STEP), suspend_node("n2", "other"), compressed=compressed
        )
    )
    fake.storm(3)
    sleeps: list[float] = []
    request = argo_request()
    assert _k8s_resumer(api, sleeps).resume(request, make_decision(request, "alice")) is True
    assert fake.conflicts() == 3
    assert sleeps == [0.01, 0.02, 0.04]
    (written,) = fake.writes
    assert ("compressedNodes" in written["status"]) is compressed
    nodes = nodes_of(written)
    assert nodes["n1"]["phase"] == "Succeeded"
    assert nodes["n1"]["outputs"]["parameters"] == [{"name": "decision", "value": "approved"}]
    assert nodes["n2"]["phase"] == "Running"
    assert fake.objects[(NS, WF)]["metadata"]["resourceVersion"] == "5"  # 3 bumps + ours


def test_k8s_endless_409_storm_is_bounded_with_a_clear_error(k8s: tuple[Any, Any]) -> None:
    from tests.fakes.argo_server import make_workflow, suspend_node

    fake, api = k8s
    fake.add(make_workflow(suspend_node("n1", ARGO_STEP)))
    fake.storm(1000)
    sleeps: list[float] = []
    request = argo_request()
    with pytest.raises(StoreError, match="409 Conflict on 5 attempts") as info:
        _k8s_resumer(api, sleeps).resume(request, make_decision(request, "alice"))
    assert "nothing was written" in str(info.value)
    assert "hitl sync" in str(info.value)
    assert fake.conflicts() == 5
    assert [m for m, _, _ in fake.log] == ["GET", "PUT"] * 5
    assert fake.writes == []


# == 5. Killed mid-write ==========================================================================

#: A parent that imports once, then forks one writer per line read; prints each child's pid.
#: A writer cycles over GATES gates: opens the gate (create-if-absent), votes, and tries to
#: decide it with its own decision; it announces nothing, so kills land anywhere.
WRITER = textwrap.dedent(
    """
    import os, random, signal, sys
    from tests.contract.test_faults import kill_writer_loop
    from metaflow_hitl.stores import open_store
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    location = sys.argv[1]
    open_store(location)  # import everything before forking
    print("ready", flush=True)
    for line in sys.stdin:
        seed = int(line)
        pid = os.fork()
        if pid == 0:
            kill_writer_loop(open_store(location), seed)
            os._exit(0)
        print(pid, flush=True)
    """
)
GATES = 6


def kill_gate(i: int) -> GateId:
    return GateId("KillFlow", str(100 + i), "gate")


def kill_writer_loop(store: ApprovalStore, seed: int) -> None:
    """Write requests, votes and racing decisions forever (until killed)."""
    rng = random.Random(seed)
    while True:
        i = rng.randrange(GATES)
        request = make_request(kill_gate(i))
        store.create_request(request)
        stored = store.get_request(kill_gate(i)) or request
        login = f"w{seed}"
        store.add_vote(
            Vote(
                gate_id=kill_gate(i),
                intent="approve",
                actor=Actor(login=login, channel="cli", at=utc_now()),
            )
        )
        store.create_decision(make_decision(stored, login, rng.choice(["approved", "rejected"])))


@dataclass
class KillReport:
    kills: int = 0
    decisions: dict[GateId, Decision] = field(default_factory=dict)
    records: int = 0
    leftovers: int = 0


def kill_many(
    location: str,
    store: ApprovalStore,
    objects: Any,
    *,
    kills: int,
    env: dict[str, str],
    rng: random.Random,
    window: tuple[float, float] = (0.0, 0.05),
    proxy: FaultProxy | None = None,
) -> KillReport:
    """SIGKILL ``kills`` writers at random moments; check the store after each kill."""
    report = KillReport()
    parent = subprocess.Popen(
        [sys.executable, "-c", WRITER, location],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "USER": "alice", **env, "PYTHONPATH": python_path(ROOT)},
    )
    try:
        assert parent.stdout is not None
        assert parent.stdin is not None
        assert parent.stdout.readline().strip() == "ready"
        for n in range(kills):
            parent.stdin.write(f"{rng.randrange(1 << 30)}\n")
            parent.stdin.flush()
            before = proxy.count("PUT") if proxy else 0
            pid = int(parent.stdout.readline())
            if proxy is not None:  # kill while the k-th PUT of this writer is on the wire
                wait_for_puts(proxy, before + rng.randint(1, 5))
            time.sleep(rng.uniform(*window))
            os.kill(pid, signal.SIGKILL)
            report.kills += 1
            if n % 5 == 4 or n == kills - 1:
                check_store(store, objects(), report)
    finally:
        if parent.stdin is not None:
            parent.stdin.close()
        parent.wait(timeout=30)
    return report


def wait_for_puts(proxy: FaultProxy, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while proxy.count("PUT") < count:
        assert time.monotonic() < deadline, "the writer made no progress"
        time.sleep(0.005)


def check_store(store: ApprovalStore, items: dict[str, bytes], report: KillReport) -> None:
    """No torn record; listed gates are consistent; the first decision never changes."""
    records = decode_all(items)  # raises on any torn record
    report.records = len(records)
    every = set(store.list_gates(pending_only=False))
    pending = set(store.list_gates(pending_only=True))
    assert pending <= every
    for gate in every:
        request = store.get_request(gate)
        assert request is not None, f"{gate} is listed but has no request"
        decision = store.get_decision(gate)
        if decision is None:
            assert gate in pending, f"{gate} is undecided but not listed as pending"
            continue
        assert gate not in pending
        assert decision.request_digest == request.digest()
        first = report.decisions.setdefault(gate, decision)
        assert decision == first, f"the decision on {gate} changed after it was made"


def test_sigkill_mid_write_local_store(tmp_path: Path) -> None:
    root = tmp_path / "_hitl"
    store = LocalApprovalStore(root)
    report = kill_many(
        str(root),
        store,
        lambda: local_objects(root),
        kills=50,
        env={},
        rng=random.Random(7),
        window=(0.01, 0.2),
    )
    assert report.kills == 50
    assert report.decisions  # writers got far enough to decide gates
    assert report.records > 0


def test_a_writer_killed_before_its_request_landed_leaves_no_listed_gate(tmp_path: Path) -> None:
    """Regression (found by the kill benchmark): a writer SIGKILLed between creating the gate's
    folder and linking its request.json left a folder that list_gates(pending_only=False)
    listed, so ``hitl list --all`` failed with "no gate"."""
    store = LocalApprovalStore(tmp_path / "_hitl")
    folder = tmp_path / "_hitl" / "v1" / "gates" / "KillFlow" / "100" / "gate"
    folder.mkdir(parents=True)
    (folder / ".tmp-request.json-abc").write_bytes(b'{"format": "metaflow-h')  # torn temp
    assert list(store.list_gates(pending_only=False)) == []
    store.create_request(make_request(kill_gate(0)))
    assert list(store.list_gates(pending_only=False)) == [kill_gate(0)]
    check_store(store, local_objects(tmp_path / "_hitl"), KillReport())


def test_sigkill_during_s3_puts(moto_s3: str, tmp_path: Path) -> None:
    bucket = new_bucket(moto_s3)
    store = S3ApprovalStore(bucket, PREFIX, client=s3_client(moto_s3))
    with FaultProxy(moto_s3) as proxy:
        proxy.delay("PUT", None, 0.05, times=None)  # every PUT is on the wire for 0.05 s
        report = kill_many(
            f"s3://{bucket}/{PREFIX}",
            store,
            lambda: s3_objects(moto_s3, bucket),
            kills=S3_KILLS,
            env=s3_env(proxy.url, tmp_path),
            rng=random.Random(11),
            window=(0.0, 0.04),  # after the k-th PUT arrived: during its 0.05 s delay
            proxy=proxy,
        )
    assert report.kills == S3_KILLS
    assert report.decisions
    # Kills that landed while a PUT was on the wire: its answer found no client.
    assert [e for e in proxy.exchanges("PUT") if not e.delivered]


S3_KILLS = 6
