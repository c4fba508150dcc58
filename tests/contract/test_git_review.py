"""The git review backend against a real git server (git daemon) on loopback."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from metaflow_hitl.errors import ReviewConflict, StoreError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import decide, open_gate
from metaflow_hitl.records import Actor, Decision, decode_record
from metaflow_hitl.render.documents import approval_path, decision_path, render_approval_file
from metaflow_hitl.review.git_backend import GitReviewBackend, branch_for
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now
from tests.support.git import git


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[str]:
    """A git daemon serving <tmp>/srv/approvals.git (push enabled) on 127.0.0.1."""
    base = tmp_path / "srv"
    bare = base / "approvals.git"
    git("init", "--bare", "--initial-branch=main", str(bare))
    seed = tmp_path / "seed"
    git("init", "--initial-branch=main", str(seed))
    (seed / "README.md").write_text("approvals\n")
    git("add", "README.md", cwd=seed)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-m", "init", cwd=seed)
    git("push", str(bare), "main", cwd=seed)
    port = _free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--enable=receive-pack",
            "--reuseaddr",
            "--informative-errors",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"git://127.0.0.1:{port}/approvals.git"
    deadline = time.monotonic() + 30
    while subprocess.run(["git", "ls-remote", url], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "git daemon did not start"
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait()


def _gate(tmp_path: Path, step: str = "gate", run: str = "7") -> tuple:
    store = LocalApprovalStore(tmp_path / f"store-{run}-{step}")
    spec = GateSpec.from_options(message="Deploy <b>@acme/all</b>?", input_schema={"target": "str"})
    request = spec.request_for(
        GateId("Flow", run, step),
        message="Deploy?",
        started_by="alice",
        runtime="local",
        now=utc_now(),
        store=store.location,
    )
    open_gate(store, request)
    return store, request


def _approve(store, request, login="bob") -> Decision:
    actor = Actor(login=login, channel="cli", at=utc_now(), source="flag")
    return decide(
        store, request.gate_id, actor=actor, intent="approve", input={"target": "prod"}
    ).decision


def _log(url: str, tmp_path: Path, ref: str = "main") -> list[str]:
    clone = tmp_path / f"inspect-{time.monotonic_ns()}"
    git("clone", "-q", url, str(clone))
    return git("log", "--topo-order", f"origin/{ref}", "--format=%an|%s", cwd=clone).splitlines()


def test_open_review_is_idempotent_and_pushes_the_approval_file(daemon, tmp_path):
    backend = GitReviewBackend(daemon)
    _, request = _gate(tmp_path)
    first = backend.open_review(request, approval_file=render_approval_file(request))
    again = backend.open_review(request, approval_file="a different rendering")
    assert first == again
    assert first["branch"] == branch_for(request.gate_id) == "hitl/Flow/7/gate"
    clone = tmp_path / "c"
    git("clone", "-q", daemon, str(clone))
    text = git("show", f"origin/{first['branch']}:{approval_path(request.gate_id)}", cwd=clone)
    assert request.digest() in text  # the marker pins the stored request
    commits = git("log", f"origin/{first['branch']}", "--format=%s", cwd=clone).splitlines()
    assert commits == ["hitl: open gate Flow/7/gate", "init"]


def test_decision_is_a_commit_by_the_decider_merged_into_main(daemon, tmp_path):
    backend = GitReviewBackend(daemon)
    store, request = _gate(tmp_path)
    backend.open_review(request, approval_file=render_approval_file(request))
    decision = _approve(store, request)
    refs = backend.record_decision(request, decision)
    assert backend.record_decision(request, decision) == refs  # idempotent, no new commit
    log = _log(daemon, tmp_path)
    assert log[:3] == [
        "metaflow-hitl|hitl: merge Flow/7/gate (approved)",
        "bob|hitl: Flow/7/gate approved by bob (cli)",
        "metaflow-hitl|hitl: open gate Flow/7/gate",
    ]
    clone = tmp_path / "inspect-decision"
    git("clone", "-q", daemon, str(clone))
    merged = git("show", f"origin/main:{decision_path(request.gate_id)}", cwd=clone)
    assert decode_record(merged, Decision) == decision
    # Merged, the gate's branch is gone (main keeps its commits): a branch per pending gate.
    heads = git("ls-remote", "--heads", daemon, cwd=tmp_path).split()
    assert "refs/heads/main" in heads
    assert f"refs/heads/{branch_for(request.gate_id)}" not in heads
    # ...and a late open_review of the decided gate does not bring it back.
    backend.open_review(request, approval_file=render_approval_file(request))
    assert f"refs/heads/{branch_for(request.gate_id)}" not in git(
        "ls-remote", "--heads", daemon, cwd=tmp_path
    )
    (entry,) = backend.audit()
    assert (entry.gate_id, entry.outcome, entry.decided_by, entry.channel, entry.author) == (
        "Flow/7/gate",
        "approved",
        "bob",
        "cli",
        "bob",
    )
    assert entry.request_digest == request.digest()


def test_a_different_decision_for_the_same_gate_is_refused(daemon, tmp_path):
    backend = GitReviewBackend(daemon)
    store, request = _gate(tmp_path)
    decision = _approve(store, request)
    backend.record_decision(request, decision)
    rival = Decision(**{**decision.__dict__, "nonce": "other", "decided_by": "eve"})
    with pytest.raises(ReviewConflict, match="already records approved by bob"):
        backend.record_decision(request, rival)
    assert len(backend.audit()) == 1


def test_concurrent_deciders_on_different_gates_all_land(daemon, tmp_path):
    gates = [_gate(tmp_path, step=f"g{i}") for i in range(4)]
    decisions = [
        _approve(store, request, login=f"user{i}") for i, (store, request) in enumerate(gates)
    ]
    backends = [GitReviewBackend(daemon) for _ in gates]
    errors: list[BaseException] = []

    def record(i: int) -> None:
        try:
            backends[i].record_decision(gates[i][1], decisions[i])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(len(gates))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(e.gate_id for e in GitReviewBackend(daemon).audit()) == [
        f"Flow/7/g{i}" for i in range(4)
    ]
    # racing on main cost retries: more pushes than the 2 per gate of an uncontended run
    assert sum(b.pushes for b in backends) >= 2 * len(gates)


def test_two_deciders_racing_on_one_gate_first_decision_wins(daemon, tmp_path):
    store, request = _gate(tmp_path)
    decision = _approve(store, request)
    rival = Decision(
        **{
            **decision.__dict__,
            "nonce": "rival",
            "outcome": "rejected",
            "proceed": False,
            "decided_by": "eve",
            "input": {},
        }
    )
    results: dict[str, object] = {}

    def record(name: str, d: Decision) -> None:
        try:
            results[name] = GitReviewBackend(daemon).record_decision(request, d)
        except ReviewConflict as exc:
            results[name] = exc

    threads = [
        threading.Thread(target=record, args=("a", decision)),
        threading.Thread(target=record, args=("b", rival)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conflicts = [r for r in results.values() if isinstance(r, ReviewConflict)]
    assert len(conflicts) == 1
    (entry,) = GitReviewBackend(daemon).audit()
    winner = decision if isinstance(results["b"], ReviewConflict) else rival
    assert entry.decided_by == winner.decided_by
    clone = tmp_path / "c2"
    git("clone", "-q", daemon, str(clone))
    text = git("show", f"origin/main:{decision_path(request.gate_id)}", cwd=clone)
    assert winner.nonce in text


def test_the_local_default_repo_is_created_on_first_use(tmp_path):
    backend = GitReviewBackend(str(tmp_path / "review.git"))
    store, request = _gate(tmp_path)
    backend.open_review(request, approval_file="hello")
    backend.record_decision(request, _approve(store, request))
    log = git(
        "--git-dir", str(tmp_path / "review.git"), "log", "--topo-order", "main", "--format=%s"
    )
    assert log.splitlines()[-1] == "hitl: create review repo"
    assert [e.decided_by for e in backend.audit()] == ["bob"]


def test_errors_never_show_credentials(tmp_path):
    backend = GitReviewBackend(f"http://hitl:s3cret-token@127.0.0.1:{_free_port()}/x.git")
    _, request = _gate(tmp_path)
    with pytest.raises(StoreError) as info:
        backend.open_review(request, approval_file="x")
    assert "s3cret-token" not in str(info.value)
    assert "cannot clone review repo" in str(info.value)
