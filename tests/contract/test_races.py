"""Races: many deciders on ONE Argo gate at once, through the real front ends.

Each racer is a real ``metaflow-hitl`` process: the CLI (``approve --as`` / ``reject --as``),
the GitHub Action's ``handle-event`` (an ``issue_comment`` delivery of ``/approve`` or
``/reject <reason>`` from its own collaborator, a real webhook payload validated against
``@octokit/webhooks-schemas``), and the timeout decider ``audit --expire``. The gate is an Argo
gate (``runtime: argo-workflows``, ``origin`` naming its workflow and namespace, as a run on
Argo records it), reviewed on a pull request in :class:`~tests.fakes.github.FakeGitHub`,
and resumed through :class:`~metaflow_hitl.argo.server_resumer.ArgoServerResumer` against
:class:`~tests.fakes.argo_server.FakeArgoServer` (``METAFLOW_HITL_ARGO_SERVER``), which counts
the ``PUT /set`` calls that changed a node.

How the race is made tight, and where the contention is:

* every racer is spawned first and imports everything it will need, then blocks on stdin;
  all are released together ("go"), so their decisions land within a few milliseconds of each
  other instead of being spread over the ~0.5 s each start-up takes;
* the gate expires ``expiry_offset`` seconds after "go": racers that read the clock before that
  moment decide as people, those after it find the gate expired and write the ``timed_out``
  decision (``audit --expire``, and also ``decide``'s own expiry path), so human decisions
  and the timeout contend for the same create-if-absent write; every GitHub comment exists
  before the deliveries, so each ``handle-event`` replays the same history (its earliest
  command decides) while CLI racers each try their own vote.

What must hold whoever wins: exactly one decision in the store (and no pending marker),
exactly one ``PUT /set`` that changed the suspend node (its output is the stored outcome), at
most one racer reporting that it decided (none when the timeout won), every other racer's
output naming the stored decision (the ``AlreadyDecided`` / ``TooLate`` message, the
handle-event reply, or the audit row), and the documented exit codes: CLI losers exit 1
(``Error (@hitl: ...)``), ``handle-event`` and ``audit`` exit 0.

The test runs 16 racers per store to stay within the suite's time budget (each process costs
~0.3-0.6 s of CPU to start on a 2-core machine); ``benchmarks/bench_races.py`` runs the same
harness with 64 racers and several expiry offsets and reports who won and how long it took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import open_gate
from metaflow_hitl.github.review_backend import GitHubReviewBackend
from metaflow_hitl.records import Decision, Request
from metaflow_hitl.render.documents import render_approval_file
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores import open_store
from metaflow_hitl.timestamps import format_ts, utc_now
from tests.contract.store_kinds import S3_TEST_ENV, new_bucket, s3_client
from tests.fakes import webhooks
from tests.fakes.argo_server import (
    NS,
    TOKEN,
    FakeArgoServer,
    load_swagger,
    make_workflow,
    serve,
    suspend_node,
)
from tests.fakes.github import SKIP_REASON, SPEC_FILE, Clock, FakeGitHub
from tests.fakes.published import open_published

REPO = "acme/approvals"
FLOW = "TrainAndDeploy"
STEP = "deploy"

#: The racer program: import what the command will need, say "ready", wait for "go", then run
#: the console script's entry point exactly as ``metaflow-hitl ARGS`` would.
_RACER = """
import sys, time
from metaflow_hitl.cli.main import main
import metaflow_hitl.github.handler, metaflow_hitl.github.events, metaflow_hitl.gates
import metaflow_hitl.argo.server_resumer, metaflow_hitl.github.review_backend, requests
from metaflow_hitl.records import _validator
for kind in ("request", "vote", "decision"):
    _validator(kind)
if sys.argv[1].startswith("s3://"):
    import boto3, metaflow_hitl.stores.s3
print("ready", flush=True)
sys.stdin.readline()
sys.stderr.write("go %.6f\\n" % time.time())
sys.argv = ["metaflow-hitl", "--store", *sys.argv[1:]]
main(prog_name="metaflow-hitl")
"""


@dataclass
class Racer:
    """One racing process and what it printed."""

    kind: str  # "cli-approve", "cli-reject", "event-approve", "event-reject", "expire"
    login: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    output_file: Path | None = None
    proc: subprocess.Popen[str] | None = None
    stdout: str = ""
    stderr: str = ""
    code: int | None = None
    go_at: float = 0.0
    done_at: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


@dataclass
class RaceResult:
    """What one race left behind."""

    request: Request
    decision: Decision
    racers: list[Racer]
    argo: FakeArgoServer
    node: dict[str, Any]
    go: float
    expires_at: float
    pending: list[GateId]
    spawn_s: float

    def winners(self) -> list[Racer]:
        """Racers whose output says that they made the decision."""
        return [r for r in self.racers if _won(r, self.decision)]


def racer_mix(n: int) -> list[str]:
    """``n`` racer kinds: about 3/8 CLI, 3/8 handle-event, 1/4 timeout expirers."""
    kinds = []
    for i in range(n):
        slot = i % 8
        if slot in (0, 3):
            kinds.append("cli-approve")
        elif slot == 6:
            kinds.append("cli-reject")
        elif slot in (1, 4):
            kinds.append("event-approve")
        elif slot == 7:
            kinds.append("event-reject")
        else:
            kinds.append("expire")
    return kinds


def argo_request(store_location: str, gh_url: str, *, now: datetime, expires_at: datetime):
    """An Argo gate's request, as a run on Argo Workflows records it."""
    workflow = "trainanddeploy-race1"
    spec = GateSpec.from_options(message="Deploy model v3?", timeout="1h")
    request = spec.request_for(
        GateId(FLOW, f"argo-{workflow}", STEP),
        message="Deploy model v3?",
        started_by="dave",
        runtime="argo-workflows",
        now=now,
        store=store_location,
        review={"backend": "github", "repo": REPO, "mode": "pr", "api_url": gh_url},
        origin={
            "workflow": workflow,
            "namespace": NS,
            "node_selector": f"inputs.parameters.hitl-gate.value={workflow}/{STEP}",
            "task": f"{FLOW}/argo-{workflow}/{STEP}/t-1",
        },
    )
    return replace(
        request,
        expires_at=expires_at,
        timeout_seconds=max((expires_at - now).total_seconds(), 0.001),
    )


def run_race(
    store_location: str,
    *,
    gh: FakeGitHub,
    argo: FakeArgoServer,
    argo_url: str,
    tmp: Path,
    racers: int,
    expiry_offset: float,
    env: dict[str, str] | None = None,
    setup_margin: float | None = None,
) -> RaceResult:
    """Release ``racers`` deciders on one Argo gate at once; collect what each printed.

    The gate expires ``expiry_offset`` seconds after the racers are released (negative: it
    had already expired).
    """
    kinds = racer_mix(racers)
    base_env = {
        **os.environ,
        **(env or {}),
        "USER": "alice",
        "METAFLOW_HITL_GITHUB_TOKEN": gh.token,
        "METAFLOW_HITL_GITHUB_API_URL": gh.url,
        "METAFLOW_HITL_ARGO_SERVER": argo_url,
        "METAFLOW_HITL_ARGO_TOKEN": TOKEN,
        "METAFLOW_HITL_ARGO_NAMESPACE": NS,
    }
    for name in ("GITHUB_TOKEN", "GITHUB_API_URL", "METAFLOW_HITL_REVIEW", "GITHUB_OUTPUT"):
        base_env.pop(name, None)
    gate = f"{FLOW}/argo-trainanddeploy-race1/{STEP}"
    crew: list[Racer] = []
    for i, kind in enumerate(kinds):
        login = f"{kind.split('-')[0]}{i:02d}"
        if kind == "cli-approve":
            args = ["approve", gate, "--as", login]
        elif kind == "cli-reject":
            args = ["reject", gate, "--as", login, "--reason", f"not now, says {login}"]
        elif kind.startswith("event-"):
            event_path = tmp / f"event-{i:02d}.json"
            args = [
                "handle-event",
                "--event-name",
                "issue_comment",
                "--event-path",
                str(event_path),
            ]
        else:
            args = ["audit", "--expire", "--source", "store", "--json"]
        racer = Racer(kind=kind, login=login, args=args)
        if kind.startswith("event-"):
            racer.output_file = tmp / f"github-output-{i:02d}"
            racer.output_file.write_text("")
            racer.env = {"GITHUB_OUTPUT": str(racer.output_file)}
        crew.append(racer)

    # 1. Spawn everyone; each imports what it needs and waits for "go".
    started = time.monotonic()
    for racer in crew:
        racer.proc = subprocess.Popen(
            [sys.executable, "-c", _RACER, store_location, *racer.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**base_env, **racer.env},
            text=True,
        )
    for racer in crew:
        assert racer.proc is not None
        assert racer.proc.stdout is not None
        line = racer.proc.stdout.readline()
        if line.strip() != "ready":
            _, err = racer.proc.communicate(timeout=30)
            raise AssertionError(f"racer {racer.login} did not start: {line!r} {err}")
    spawn_s = time.monotonic() - started

    # 2. Open the gate: request in the store, pull request with its marker, every comment.
    if setup_margin is None:  # FakeGitHub answers a few requests per comment
        setup_margin = 0.8 + 0.08 * racers
    go = time.time() + setup_margin
    now = utc_now()
    expires = datetime.fromtimestamp(go + expiry_offset, tz=timezone.utc)
    request = argo_request(store_location, gh.url, now=now, expires_at=expires)
    store = open_store(store_location)
    request, created = open_gate(store, request)
    assert created
    backend = GitHubReviewBackend(REPO, mode="pr", api_url=gh.url, token=gh.token)
    refs = open_published(backend, store, request, render_approval_file(request))
    number = int(refs["number"] or 0)
    wf = request.origin["workflow"] or ""
    argo.workflows[(NS, wf)] = make_workflow(suspend_node("n1", STEP, workflow=wf), name=wf)
    for racer in crew:
        if not racer.kind.startswith("event-"):
            continue
        gh.add_collaborator(REPO, racer.login, "write")
        body = "/approve" if racer.kind == "event-approve" else f"/reject no, says {racer.login}"
        cid = gh.add_comment(REPO, number, racer.login, body)
        comment = next(c for c in _api(gh, f"issues/{number}/comments") if c["id"] == cid)
        payload = webhooks.comment_payload(REPO, _api(gh, f"issues/{number}"), comment)
        Path(racer.args[-1]).write_text(json.dumps(payload), encoding="utf-8")
    # 3. Go: release everyone at once, then collect. (A slow setup -- a loaded machine --
    # only moves "go" later, closer to or past the expiry: still a race, reported as such.)
    time.sleep(max(0.0, go - time.time()))
    go = time.time()
    for racer in crew:
        assert racer.proc is not None
        assert racer.proc.stdin is not None
        racer.proc.stdin.write("go\n")
        racer.proc.stdin.flush()

    def collect(racer: Racer) -> None:
        assert racer.proc is not None
        out, err = racer.proc.communicate(timeout=120)
        racer.done_at = time.time()
        racer.code = racer.proc.returncode
        racer.stdout = out
        first, _, rest = err.partition("\n")
        racer.go_at = float(first.split()[1]) if first.startswith("go ") else 0.0
        racer.stderr = rest if first.startswith("go ") else err

    threads = [threading.Thread(target=collect, args=(r,)) for r in crew]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for racer in crew:
        if racer.output_file is not None:
            racer.outputs = _parse_outputs(racer.output_file.read_text())

    decision = store.get_decision(request.gate_id)
    assert decision is not None, "nobody decided the gate"
    node = argo.workflows[(NS, wf)]["status"]["nodes"]["n1"]
    return RaceResult(
        request=request,
        decision=decision,
        racers=crew,
        argo=argo,
        node=node,
        go=go,
        expires_at=expires.timestamp(),
        pending=list(store.list_gates(pending_only=True)),
        spawn_s=spawn_s,
    )


def _api(gh: FakeGitHub, path: str) -> Any:
    import requests

    answer = requests.get(
        f"{gh.url}/repos/{REPO}/{path}", headers={"Authorization": f"token {gh.token}"}, timeout=10
    )
    answer.raise_for_status()
    return answer.json()


def _parse_outputs(text: str) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` in the ``name<<delimiter`` form."""
    outputs, lines = {}, iter(text.splitlines())
    for line in lines:
        name, _, delimiter = line.partition("<<")
        value = []
        for inner in lines:
            if inner == delimiter:
                break
            value.append(inner)
        outputs[name] = "\n".join(value)
    return outputs


def _won(racer: Racer, decision: Decision) -> bool:
    """Whether the racer's output claims the decision as its own act."""
    summary = decision.summary()
    if racer.kind.startswith("cli-"):
        return racer.code == 0 and f": {summary}." in racer.stdout
    if racer.kind.startswith("event-"):
        return racer.stdout.strip() == summary
    return False


def check_race(result: RaceResult) -> list[str]:
    """Every property a race must keep; returns the broken ones (empty when all hold)."""
    d, problems = result.decision, []
    summary = d.summary()
    winners = result.winners()
    human = d.outcome != "timed_out"
    if len(winners) != (1 if human else 0):
        problems.append(
            f"{len(winners)} racers claim the decision ({[w.login for w in winners]}); "
            f"stored: {summary}"
        )
    if (
        human
        and winners
        and d.decided_by != winners[0].login
        and winners[0].kind.startswith("cli-")
    ):
        problems.append(f"the CLI winner {winners[0].login} is not the decider {d.decided_by}")
    if result.pending:
        problems.append(f"still listed as pending: {result.pending}")
    if len(result.argo.writes) != 1:
        problems.append(f"{len(result.argo.writes)} PUT /set calls changed a node, not 1")
    outputs = {p["value"] for p in result.node["outputs"]["parameters"]}
    if result.node["phase"] != "Succeeded" or outputs != {d.outcome}:
        problems.append(f"the suspend node is {result.node['phase']} with outputs {outputs}")
    if result.argo.problems:
        problems.append(f"the Argo server saw unexpected requests: {result.argo.problems}")
    for r in result.racers:
        where = f"{r.kind} {r.login} (exit {r.code}): {r.text.strip()[:400]!r}"
        if r in winners:
            continue
        if r.kind.startswith("cli-"):
            names = summary in r.stderr if human else "by its timeout" in r.stderr
            if not names and f"already decided: {summary}" not in r.stderr:
                problems.append(f"a CLI loser does not name the winner: {where}")
            if r.code != 4 or "Error (@hitl" not in r.stderr:  # 4: refused (errors.py)
                problems.append(f"a CLI loser did not exit 4 (refused) with an error: {where}")
        elif r.kind.startswith("event-"):
            if r.code != 0 or f"({summary})" not in r.stdout:
                problems.append(f"a handle-event loser does not name the winner: {where}")
            if r.outputs.get("decision") != d.outcome:
                problems.append(f"handle-event output decision {r.outputs}: {where}")
        else:
            rows = json.loads(r.stdout) if r.code == 0 and r.stdout.strip() else None
            if rows is None:
                problems.append(f"an expirer failed: {where}")
            elif rows and (rows[0]["decided_by"], rows[0]["outcome"]) != (d.decided_by, d.outcome):
                problems.append(f"an expirer reports another decision: {where}")
            elif not rows and r.go_at >= result.expires_at + 0.5:
                problems.append(f"an expirer after the expiry saw no decision: {where}")
    return problems


def describe(result: RaceResult) -> dict[str, Any]:
    """A JSON-able summary: who won, how racers ended, timings relative to "go"."""
    ends: dict[str, int] = {}
    for r in result.racers:
        how = "won" if r in result.winners() else f"exit {r.code}"
        ends[f"{r.kind}: {how}"] = ends.get(f"{r.kind}: {how}", 0) + 1
    done = sorted(r.done_at - result.go for r in result.racers)
    wake = sorted(r.go_at - result.go for r in result.racers if r.go_at)
    return {
        "racers": len(result.racers),
        "expiry_offset_s": round(result.expires_at - result.go, 3),
        "winner": {
            "outcome": result.decision.outcome,
            "decided_by": result.decision.decided_by,
            "channel": result.decision.channel,
            "decided_at_after_go_s": round(result.decision.decided_at.timestamp() - result.go, 4),
        },
        "ends": dict(sorted(ends.items())),
        "argo_set_calls": result.argo.set_calls,
        "argo_effective_writes": len(result.argo.writes),
        "spawn_s": round(result.spawn_s, 2),
        "wake_after_go_s": {"min": round(wake[0], 4), "max": round(wake[-1], 4)} if wake else {},
        "all_done_after_go_s": round(done[-1], 3),
        "median_done_after_go_s": round(done[len(done) // 2], 3),
        "decision": format_ts(result.decision.decided_at),
    }


# -- the tests ----------------------------------------------------------------------------------

pytestmark = [
    pytest.mark.skipif(not SPEC_FILE.is_file(), reason=SKIP_REASON),
    pytest.mark.skipif(not webhooks.SCHEMA_FILE.is_file(), reason=webhooks.SKIP_REASON),
]

RACERS = 16


@pytest.fixture
def world() -> Iterator[tuple[FakeGitHub, FakeArgoServer, str]]:
    with FakeGitHub() as gh:
        gh.world.clock = Clock(utc_now() - timedelta(minutes=5))
        gh.add_org("acme")
        gh.add_repo(REPO, files={"README.md": "# approvals\n"})
        gh.add_collaborator(REPO, "hitl-bot", "write")
        gh.add_collaborator(REPO, "dave", "write")
        fake = FakeArgoServer(load_swagger())
        with serve(fake) as url:
            yield gh, fake, url
        assert fake.problems == []


def _assert_race(result: RaceResult) -> None:
    problems = check_race(result)
    assert not problems, json.dumps(describe(result), indent=2) + "\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "expiry_offset", [0.05, -1.0], ids=["expires-during-race", "already-expired"]
)
def test_race_local_store(
    world: tuple[FakeGitHub, FakeArgoServer, str], tmp_path: Path, expiry_offset: float
) -> None:
    gh, fake, url = world
    result = run_race(
        str(tmp_path / "store"),
        gh=gh,
        argo=fake,
        argo_url=url,
        tmp=tmp_path,
        racers=RACERS,
        expiry_offset=expiry_offset,
    )
    _assert_race(result)
    decisions = list((tmp_path / "store").rglob("decision.json"))
    assert len(decisions) == 1
    if expiry_offset < 0:
        assert result.decision.outcome == "timed_out"


def test_race_s3_store(
    world: tuple[FakeGitHub, FakeArgoServer, str],
    tmp_path: Path,
    moto_s3: str,
) -> None:
    gh, fake, url = world
    bucket = new_bucket(moto_s3)
    env = {
        **S3_TEST_ENV,
        "METAFLOW_S3_ENDPOINT_URL": moto_s3,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the harness opens the gate in this process
    try:
        result = run_race(
            f"s3://{bucket}/hitl",
            gh=gh,
            argo=fake,
            argo_url=url,
            tmp=tmp_path,
            racers=RACERS,
            expiry_offset=0.05,
            env=env,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    _assert_race(result)
    keys = [
        item["Key"]
        for item in s3_client(moto_s3).list_objects_v2(Bucket=bucket).get("Contents", [])
    ]
    assert [k for k in keys if k.endswith("decision.json")] == [
        f"hitl/v1/gates/{result.request.gate_id}/decision.json"
    ]
