"""``list --all``, ``audit`` and ``sync`` through the index of decided gates, end to end.

The commands run as people run them (``metaflow-hitl --store PATH ...`` through click's
runner, and once through a real pipe and a real terminal) against stores filled by the
production calls (:func:`~metaflow_hitl.gates.open_gate`, :func:`~metaflow_hitl.gates.decide`,
:func:`~metaflow_hitl.gates.expire_gate`, :func:`~metaflow_hitl.review.publish.
publish_decision` into a bare git review repo). The tests prove that:

* every read command prints byte for byte what ``--no-index`` prints, whether its run builds
  the index or uses it, and that what it prints is what the records say;
* ``--no-index`` writes no segment, and the first indexed ``audit`` writes one covering
  every decided gate, which the next run takes every decided gate from;
* a damaged segment costs a ``Warning:`` naming it on stderr, never a wrong or broken stdout;
* ``audit`` still reports (exit 1) a decision the review repo lacks when the index is used;
* ``sync`` publishes the decision its records hold even when a forged segment says
  otherwise, while ``audit --source store`` shows what the index says: the index is trusted
  for what is *read*, never for what is *acted on*;
* ``--json`` is one compact line into a pipe (indented on a terminal), with the same value;
* on S3, an indexed ``audit`` lists the store and reads the segments, and no record.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from metaflow._vendor.click.testing import CliRunner, Result

from metaflow_hitl.cli.main import main
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import decide, expire_gate, open_gate
from metaflow_hitl.index.reader import read_gates
from metaflow_hitl.index.segments import IndexedGate, decode_segment, encode_segment
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Actor, Decision, Request
from metaflow_hitl.render.documents import decision_path
from metaflow_hitl.review.publish import publish_decision
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores import s3 as s3_module
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.stores.s3 import S3ApprovalStore
from metaflow_hitl.timestamps import format_ts
from tests.contract.store_kinds import S3_TEST_ENV, new_bucket
from tests.fakes.moto_s3 import counting_client
from tests.support.git import git

#: Requests are opened from here on, ten minutes apart (fixed: outputs are reproducible and
#: nothing the read commands print depends on the clock).
BASE = datetime(2026, 3, 2, 9, 0, 0, 123000, tzinfo=timezone.utc)
FLOWS = ("Train", "Deploy", "Report")
RUNS = 10
SEGMENTS = ("v1", "index", "decided")


@dataclass
class Filled:
    """What a store was filled with: every request and every decision, by gate id."""

    requests: dict[str, Request] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    votes: dict[str, int] = field(default_factory=dict)

    def decided(self, flow: str | None = None) -> set[str]:
        return {g for g in self.decisions if flow is None or g.startswith(flow + "/")}


def _at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def _vote(
    store: ApprovalStore,
    gate: GateId,
    login: str,
    intent: Any,
    at: datetime,
    **kwargs: Any,
) -> Decision | None:
    actor = Actor(login=login, channel="cli", at=at, source="flag")
    return decide(store, gate, actor=actor, intent=intent, now=at, **kwargs).decision


def fill(store: ApprovalStore, review_repo: Path | None, *, publish: bool = True) -> Filled:
    """Ten gates in each of three flows, in every state, by the production calls.

    ``Train`` gates name ``review_repo`` (a git review repo) and their decisions are published
    to it (``publish``); the other flows have no review repo. Per flow, run:
    1-2 approved by bob with input, 3 rejected by carol, 4 approved by a quorum (bob, carol),
    5 rejected by carol after bob's approval (quorum 2), 6 timed out, 7 approved by dave with
    a remark, 8 pending with one of two approvals, 9 pending, 10 rejected by erin.
    """
    filled = Filled()
    k = 0
    for flow in FLOWS:
        step = "publish" if flow == "Report" else "gate"
        for run in range(1, RUNS + 1):
            k += 1
            gate = GateId(flow, str(run), step)
            opened = _at(10 * k)
            options: dict[str, Any] = {"message": f"{flow} run {run}: go?", "timeout": "24h"}
            if run in (1, 2):
                options["input_schema"] = {"target": "str"}
            if run in (4, 5, 8):
                options["min_approvals"] = 2
            if run == 6:
                options["timeout"] = "1h"
            spec = GateSpec.from_options(**options)
            review: dict[str, str | None] | None = None
            if flow == "Train" and review_repo is not None:
                review = {"backend": "git", "location": str(review_repo)}
            request = spec.request_for(
                gate,
                message=spec.message,
                started_by="alice",
                runtime="local",
                now=opened,
                store=store.location,
                review=review,
            )
            open_gate(store, request)
            filled.requests[str(gate)] = request
            votes = 0
            decision: Decision | None = None
            if run in (1, 2):
                decision = _vote(
                    store, gate, "bob", "approve", _at(10 * k + 1), input={"target": f"prod-{k}"}
                )
                votes = 1
            elif run == 3:
                decision = _vote(store, gate, "carol", "reject", _at(10 * k + 2), reason=f"no {k}")
                votes = 1
            elif run == 4:
                assert _vote(store, gate, "bob", "approve", _at(10 * k + 1)) is None
                decision = _vote(store, gate, "carol", "approve", _at(10 * k + 3))
                votes = 2
            elif run == 5:
                assert _vote(store, gate, "bob", "approve", _at(10 * k + 1)) is None
                decision = _vote(
                    store, gate, "carol", "reject", _at(10 * k + 4), reason="metrics regressed"
                )
                votes = 2
            elif run == 6:
                decision = expire_gate(store, gate, now=_at(10 * k + 61))
            elif run == 7:
                decision = _vote(store, gate, "dave", "approve", _at(10 * k + 5), reason="lgtm")
                votes = 1
            elif run == 8:
                assert _vote(store, gate, "bob", "approve", _at(10 * k + 1)) is None
                votes = 1
            elif run == 10:
                decision = _vote(store, gate, "erin", "reject", _at(10 * k + 6), reason="late")
                votes = 1
            filled.votes[str(gate)] = votes
            if decision is not None:
                filled.decisions[str(gate)] = decision
                if review is not None and publish:
                    publish_decision(request, decision, store=store)
    return filled


@dataclass
class Base:
    """The module's filled local store and its review repo (never written by a test)."""

    root: Path
    review: Path
    filled: Filled


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    tmp = tmp_path_factory.mktemp("index-cli")
    store = LocalApprovalStore(tmp / "store")
    review = tmp / "review.git"
    filled = fill(store, review)
    assert not (store.root / Path(*SEGMENTS)).exists()  # filling reads nothing through the index
    return Base(store.root, review, filled)


@pytest.fixture
def local(base: Base, tmp_path: Path) -> LocalApprovalStore:
    """A copy of the module's store (its own files, so its own inodes and index); the
    requests still name the module's review repo, which these tests only read."""
    shutil.copytree(base.root, tmp_path / "store")
    return LocalApprovalStore(tmp_path / "store")


def run(location: str, *args: str, code: int = 0) -> Result:
    """``metaflow-hitl --store location args`` with stdout and stderr apart."""
    result = CliRunner(mix_stderr=False).invoke(main, ["--store", location, *args])
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result


def segments(store: LocalApprovalStore) -> list[str]:
    folder = store.root / Path(*SEGMENTS)
    return sorted(os.listdir(folder)) if folder.exists() else []


def indexed_twice(store: LocalApprovalStore, *args: str, code: int = 0) -> tuple[Result, ...]:
    """``--no-index``, then twice with the index: the first run builds it, the second uses it."""
    plain = run(store.location, *args, "--no-index", code=code)
    assert segments(store) == []
    builds = run(store.location, *args, code=code)
    written = segments(store)
    assert written, "the first indexed run wrote no segment"
    uses = run(store.location, *args, code=code)
    assert segments(store) == written, "the second run read records it should have found indexed"
    return plain, builds, uses


# -- 1, 2: same bytes as --no-index, and what the records say -----------------------------------


def _check_list(
    rows: list[dict[str, Any]], filled: Filled, flow: str | None, status: str | None
) -> None:
    ids = [row["gate_id"] for row in rows]
    want = {
        g
        for g in filled.requests
        if (flow is None or g.startswith(flow + "/"))
        and (status is None or (g in filled.decisions and filled.decisions[g].outcome == status))
    }
    assert sorted(ids) == sorted(want)
    assert len(ids) == len(set(ids))
    if status is None:  # pending first
        states = [row["state"] for row in rows]
        assert states == sorted(states, key=lambda s: s != "pending")
    for row in rows:
        gate = row["gate_id"]
        assert row["request"] == filled.requests[gate].to_dict()
        assert len(row["votes"]) == filled.votes[gate]
        decision = filled.decisions.get(gate)
        assert row["decision"] == (decision.to_dict() if decision else None)
        assert row["state"] == (decision.outcome if decision else "pending")
    by_id = {row["gate_id"]: row for row in rows}
    if "Train/1/gate" in by_id:  # hand-written: the scenario, not the code, says so
        first = by_id["Train/1/gate"]
        assert (first["state"], first["decision"]["decided_by"]) == ("approved", "bob")
        assert first["decision"]["input"] == {"target": "prod-1"}
    if "Deploy/4/gate" in by_id:
        quorum = by_id["Deploy/4/gate"]
        assert [a["login"] for a in quorum["decision"]["deciders"]] == ["bob", "carol"]
        assert (quorum["approvals"], quorum["needed"]) == (2, 2)
    if "Deploy/8/gate" in by_id:
        assert (by_id["Deploy/8/gate"]["state"], by_id["Deploy/8/gate"]["approvals"]) == (
            "pending",
            1,
        )


def _check_audit(rows: list[dict[str, Any]], filled: Filled, source: str) -> None:
    # Every decision either way: gates without a review repo (not Train's) come from the store.
    assert sorted(r["gate_id"] for r in rows) == sorted(filled.decided())
    assert [r["decided_at"] for r in rows] == sorted(r["decided_at"] for r in rows)
    for row in rows:
        d = filled.decisions[row["gate_id"]]
        assert row["outcome"] == d.outcome
        assert row["decided_by"] == d.decided_by
        assert row["decided_at"] == format_ts(d.decided_at)
        assert row["input"] == d.input
        assert row["reason"] == d.reason
        assert row["deciders"] == [a.login for a in d.deciders]
        assert row["proceed"] == d.proceed
        if source == "review" and row["gate_id"].startswith("Train/"):
            assert len(row["commit"]) == 40
            # The decider authored the commit, marked as asserted: CLI identities are not
            # verified, so the commit must not pass for a GitHub account's.
            marked = (
                "(metaflow-hitl)" if d.outcome == "timed_out" else "(asserted, metaflow-hitl CLI)"
            )
            assert row["author"] == f"{d.decided_by} {marked}"
        else:
            assert row["source"] == "store"
    by_id = {row["gate_id"]: row for row in rows}
    # Hand-written from the scenario in fill().
    assert (by_id["Train/3/gate"]["outcome"], by_id["Train/3/gate"]["decided_by"]) == (
        "rejected",
        "carol",
    )
    assert by_id["Train/3/gate"]["reason"] == "no 3"
    assert by_id["Train/2/gate"]["input"] == {"target": "prod-2"}
    assert (by_id["Train/6/gate"]["outcome"], by_id["Train/6/gate"]["decided_by"]) == (
        "timed_out",
        "timeout",
    )
    assert by_id["Train/5/gate"]["reason"] == "metrics regressed"
    if source == "store":
        assert by_id["Report/7/publish"]["reason"] == "lgtm"
        assert by_id["Report/7/publish"]["decided_by"] == "dave"


JSON_COMMANDS = [
    pytest.param(["list", "--all", "--json"], id="list-all"),
    pytest.param(["list", "--all", "--json", "--flow", "Deploy"], id="list-all-flow"),
    pytest.param(["list", "--json", "--status", "approved"], id="list-status-approved"),
    pytest.param(["audit", "--json"], id="audit-review"),
    pytest.param(["audit", "--source", "store", "--json"], id="audit-store"),
]


@pytest.mark.parametrize("args", JSON_COMMANDS)
def test_json_is_byte_identical_to_no_index_and_says_what_the_records_say(
    local: LocalApprovalStore, base: Base, args: list[str]
) -> None:
    plain, builds, uses = indexed_twice(local, *args)
    assert builds.stdout_bytes == plain.stdout_bytes
    assert uses.stdout_bytes == plain.stdout_bytes
    assert builds.stderr == uses.stderr == plain.stderr == ""
    rows = json.loads(plain.stdout)
    if args[0] == "list":
        flow = args[args.index("--flow") + 1] if "--flow" in args else None
        status = args[args.index("--status") + 1] if "--status" in args else None
        _check_list(rows, base.filled, flow, status)
        # The index built now holds every decided gate the command read.
        reading = read_gates(local, flow=flow)
        assert reading.from_index == len(base.filled.decided(flow))
        in_flow = [g for g in base.filled.requests if flow is None or g.startswith(flow + "/")]
        assert reading.from_records == len(in_flow) - reading.from_index  # the pending ones
    else:
        _check_audit(rows, base.filled, "review" if "store" not in args else "store")
        reading = read_gates(local, decided_only=True)
        assert (reading.from_index, reading.from_records) == (len(base.filled.decisions), 0)
    assert reading.segments_written == 0


def test_no_index_writes_no_segment_and_the_first_audit_writes_one(
    local: LocalApprovalStore, base: Base
) -> None:
    run(local.location, "list", "--all", "--json", "--no-index")
    run(local.location, "audit", "--no-index")
    run(local.location, "audit", "--source", "store", "--no-index", "--json")
    assert not (local.root / Path(*SEGMENTS)).exists()
    run(local.location, "audit")
    (name,) = segments(local)
    data = (local.root / Path(*SEGMENTS) / name).read_bytes()
    segment = decode_segment(name, data, where=name)
    assert segment.current
    assert set(segment.gates) == base.filled.decided()  # every decided gate, no pending one
    tags = local.scan_gates()
    for gate_id, entry in segment.gates.items():
        assert entry.matches(tags[GateId.parse(gate_id)])


@pytest.mark.parametrize("source", ["review", "store"])
def test_audit_table_is_identical_with_and_without_the_index(
    local: LocalApprovalStore, base: Base, source: str
) -> None:
    plain, builds, uses = indexed_twice(local, "audit", "--source", source)
    assert builds.stdout == plain.stdout
    assert uses.stdout == plain.stdout
    header, *rows = plain.stdout.strip().splitlines()
    assert header.split()[:6] == ["GATE", "OUTCOME", "BY", "CHANNEL", "WHEN", "INPUT/REASON"]
    assert len(rows) == len(base.filled.decided())  # without a review repo: from the store
    assert any(line.split()[:3] == ["Train/4/gate", "approved", "bob,"] for line in rows)


# -- 4: a damaged segment --------------------------------------------------------------------


def _truncate(folder: Path, name: str) -> str:
    path = folder / name
    path.write_bytes(path.read_bytes()[:-20])  # no longer hashes to its name
    return name


def _garbage_under_its_own_hash(folder: Path, name: str) -> str:
    import hashlib

    (folder / name).unlink()
    data = b"not a gzip stream at all"
    forged = hashlib.sha256(data).hexdigest() + ".json.gz"
    (folder / forged).write_bytes(data)
    return forged


@pytest.mark.parametrize("damage", [_truncate, _garbage_under_its_own_hash])
def test_a_damaged_segment_is_a_warning_and_the_output_is_unchanged(
    local: LocalApprovalStore, base: Base, damage: Any
) -> None:
    args = ("audit", "--source", "store", "--json")
    plain = run(local.location, *args, "--no-index")
    run(local.location, *args)
    folder = local.root / Path(*SEGMENTS)
    (name,) = segments(local)
    damaged = damage(folder, name)
    for _ in range(2):  # the damaged segment stays; the gates are re-indexed beside it
        result = run(local.location, *args)
        assert result.stdout_bytes == plain.stdout_bytes
        _check_audit(json.loads(result.stdout), base.filled, "store")
        warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
        assert len(warnings) == 1, result.stderr
        assert damaged in warnings[0]
        assert str(folder / damaged) in warnings[0]
    # The table (and list) read the same way.
    table = run(local.location, "audit", "--source", "store")
    assert table.stdout == run(local.location, "audit", "--source", "store", "--no-index").stdout
    assert table.stderr.startswith("Warning:")


# -- 5: a mismatch is a mismatch with the index ----------------------------------------------


@pytest.mark.parametrize("args", [["audit"], ["audit", "--json"]], ids=["table", "json"])
def test_a_decision_missing_from_the_review_repo_fails_audit_with_the_index(
    local: LocalApprovalStore, base: Base, args: list[str]
) -> None:
    gate = GateId("Train", "9", "gate")  # pending; decided now, never published
    decision = _vote(local, gate, "carol", "reject", _at(500), reason="unpublished")
    assert decision is not None
    mismatch = (
        f"Mismatch: {gate}: rejected in the store, missing from the review repo "
        f"(run: metaflow-hitl sync {gate})"
    )
    plain, builds, uses = indexed_twice(local, *args, code=1)
    for result in (plain, builds, uses):
        assert mismatch in result.stderr.splitlines(), result.stderr
        assert result.stdout == plain.stdout
    if "--json" in args:
        rows = json.loads(plain.stdout)
        assert str(gate) not in {r["gate_id"] for r in rows}
        assert len(rows) == len(base.filled.decided())  # the Train gates and those without a repo
    reading = read_gates(local, decided_only=True)
    assert reading.from_index == len(base.filled.decisions) + 1  # the second run used the index


# -- 6: sync acts on the records -------------------------------------------------------------


def test_sync_publishes_the_stored_decision_not_a_forged_index_entry(tmp_path: Path) -> None:
    store = LocalApprovalStore(tmp_path / "store")
    repo = tmp_path / "review.git"
    filled = fill(store, repo, publish=False)
    gate = GateId("Train", "3", "gate")
    assert filled.decisions[str(gate)].outcome == "rejected"
    # Publish every other Train decision, so the repo exists and only this one is missing.
    for name, decision in filled.decisions.items():
        if name.startswith("Train/") and name != str(gate):
            publish_decision(filled.requests[name], decision, store=store)
    run(store.location, "audit", "--source", "store", "--json")  # builds the genuine index

    # Forge: an entry whose tags are the store's real ones, but whose decision says approved.
    tags = store.scan_gates()[gate]
    records = {}
    for record, tag in tags.items():
        data = store.read_record(gate, record)
        assert data is not None
        text = json.loads(data)
        if record == "decision.json":
            assert text["outcome"] == "rejected"
            text.update(outcome="approved", proceed=True)
        records[record] = (tag, json.dumps(text, sort_keys=True, separators=(",", ":")))
    name, data = encode_segment([IndexedGate(str(gate), records)], now=_at(999))
    genuine = store.list_index_segments()
    assert store.create_index_segment(name, data)
    for old in genuine:
        store.delete_index_segment(old)
    assert store.list_index_segments() == [name]

    # What is read trusts the index: the forged outcome shows with it, the true one without.
    def outcome(*extra: str) -> str:
        printed = run(store.location, "audit", "--source", "store", "--json", *extra).stdout
        rows = json.loads(printed)
        return {r["gate_id"]: r["outcome"] for r in rows}[str(gate)]

    assert outcome() == "approved"
    assert outcome("--no-index") == "rejected"

    # What is acted on does not: sync publishes the rejection the records hold.
    synced = run(store.location, "sync", str(gate))
    assert synced.stdout.startswith("1 decision(s) in their review repos"), synced.stdout
    stored = json.loads(git("show", f"main:{decision_path(gate)}", git_dir=repo))
    assert (stored["outcome"], stored["proceed"], stored["decided_by"]) == (
        "rejected",
        False,
        "carol",
    )
    message = git(
        "log", "main", "--no-merges", "--format=%B", "--", decision_path(gate), git_dir=repo
    )
    assert "Hitl-Outcome: rejected" in message
    assert "Hitl-Outcome: approved" not in message

    # The review repo and the true records agree; only the forged index disagrees with them.
    assert run(store.location, "audit", "--no-index").stderr == ""
    forged = run(store.location, "audit", code=1)
    assert (
        f"Mismatch: {gate}: the review repo says rejected by carol, the store approved by carol"
        in forged.stderr.splitlines()
    )


# -- 7: compact JSON into a pipe -------------------------------------------------------------


def test_json_into_a_pipe_is_one_compact_line_and_indented_on_a_terminal(
    local: LocalApprovalStore,
) -> None:
    for args in (["list", "--all", "--json"], ["audit", "--source", "store", "--json"]):
        plain = run(local.location, *args, "--no-index")
        value = json.loads(plain.stdout)
        for result in (run(local.location, *args), run(local.location, *args)):
            assert result.stdout.count("\n") == 1
            assert result.stdout.endswith("\n")
            assert result.stdout == json.dumps(value, sort_keys=True) + "\n"
            assert json.loads(result.stdout) == value
    # The console script itself, into a real pipe and into a real terminal.
    args = ["audit", "--source", "store", "--json"]
    command = [sys.executable, "-c", "from metaflow_hitl.cli.main import main; main()"]
    command += ["--store", local.location, *args]
    piped = subprocess.run(command, capture_output=True, text=True, check=True)
    assert piped.stdout == json.dumps(value, sort_keys=True) + "\n"
    assert json.loads(_on_a_terminal(command)) == value


def _on_a_terminal(command: list[str]) -> str:
    """Run ``command`` with its stdout on a pseudo-terminal; what it printed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(command, stdout=follower, stderr=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    assert text.count("\n") > 10, "not indented on a terminal"
    return text


# -- 8: the S3 store -------------------------------------------------------------------------


@pytest.fixture
def s3_calls(
    moto_s3: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> dict[str, int]:
    """Dummy credentials for the moto server; every S3 call the stores' clients make, by
    operation (the client is made by the store, as in production; a hook counts calls)."""
    for name, value in {**S3_TEST_ENV, "METAFLOW_S3_ENDPOINT_URL": moto_s3}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    calls: dict[str, int] = {}
    monkeypatch.setattr(
        s3_module, "_default_client", counting_client(s3_module._default_client, calls)
    )
    return calls


def test_s3_audit_reads_segments_not_records_and_prints_the_same(
    moto_s3: str,
    s3_calls: dict[str, int],
) -> None:
    store = S3ApprovalStore(new_bucket(moto_s3), "team/hitl")
    filled = fill(store, None)
    location = f"s3://{store.bucket}/{store.prefix}"
    args = ("audit", "--source", "store", "--json")
    counts = []
    outputs = []
    for extra in (("--no-index",), (), ()):
        s3_calls.clear()
        outputs.append(run(location, *args, *extra))
        counts.append(dict(s3_calls))
    plain, builds, uses = outputs
    assert builds.stdout_bytes == plain.stdout_bytes == uses.stdout_bytes
    _check_audit(json.loads(plain.stdout), filled, "store")
    no_index, first, second = counts
    decided = len(filled.decisions)
    # Without the index: every record of every decided gate (request, decision, votes).
    assert no_index.get("GetObject", 0) >= 2 * decided
    assert no_index.get("PutObject", 0) == 0
    # The first indexed run reads the same records and writes one segment.
    assert first.get("GetObject", 0) >= 2 * decided
    assert first.get("PutObject", 0) == 1
    # The second lists the gates (the flows, then each flow) and the segments, reads the one
    # segment, and nothing else: no record, no write.
    assert second == {"ListObjectsV2": second.get("ListObjectsV2", 0), "GetObject": 1}, second
    assert second["ListObjectsV2"] <= 2 + len(FLOWS), second
    reading = read_gates(store, decided_only=True)
    assert (reading.from_index, reading.from_records) == (decided, 0)


@pytest.mark.parametrize("failing", ["Train/1/gate", "Train/3/gate"])
def test_sync_names_the_gate_whose_read_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """A gate whose records cannot be read is reported as itself: not as the gate synced
    before it, and not as an UnboundLocalError when it is the first one."""
    from metaflow_hitl.cli import sync as commands
    from metaflow_hitl.errors import StoreError

    store = LocalApprovalStore(tmp_path / "store")
    fill(store, tmp_path / "review.git", publish=False)
    real = commands.require_request

    def flaky(store_: Any, gate_id: GateId) -> Any:
        if str(gate_id) == failing:
            raise StoreError(f"cannot read {gate_id}'s request")
        return real(store_, gate_id)

    monkeypatch.setattr(commands, "require_request", flaky)
    result = run(store.location, "sync", "--since", "3650d", code=6)  # store or network
    failed = [line for line in result.stderr.splitlines() if line.startswith("Failed:")]
    assert failed == [f"Failed: {failing}: cannot read {failing}'s request"]
