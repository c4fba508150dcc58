"""Scale: 1,000 to 10,000 gates in one store -- what ``list``, ``audit``, ``show`` and one
``approve`` cost, and how the cost grows.

The store (local directory, and S3 on a loopback moto server) is filled in steps up to each
size in ``--sizes`` through the store API in parallel threads. Every gate is reviewed in a
local bare git repo (``review: git``); its history is written with ``git fast-import`` in the
shape ``GitReviewBackend.record_decision`` leaves: one decision commit per decided gate on
``main`` (``decisions/<flow>/<run>/<step>.json``, the ``Hitl-*`` trailers, the decider as
author) and one ``hitl/<flow>/<run>/<step>`` branch per gate. ``--pending`` gates stay
undecided; the others are decided (half approved by bob -- the vote and decision
``gates.decide`` stores, written directly -- and half timed out).

At each size it first runs one ``audit --source store``, which indexes the gates decided since
the previous size (the *index update*, timed on its own). Then it times, in process through the
CLI (click's runner; median of ``--repeat``): ``list`` (the pending-first inbox), ``list --all``,
``audit`` (git history checked against the store), ``audit --source store``, ``show GATE``,
``list --all`` and ``audit --source store`` with ``--no-index`` (every record read), and
``approve GATE`` of a pending gate (including its commit to the review repo); and the same
commands cold, as ``metaflow-hitl --store ... CMD`` subprocesses.

    python benchmarks/bench_scale.py                                  # local + S3, 1k 5k 10k
    python benchmarks/bench_scale.py --stores local --sizes 1000 10000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from metaflow._vendor.click.testing import CliRunner

from metaflow_hitl.cli.main import main
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import _timeout_decision, decide
from metaflow_hitl.records import Actor, Decision, Request, Vote
from metaflow_hitl.render.documents import (
    decision_path,
    render_commit_message,
    render_decision_record,
)
from metaflow_hitl.review.publish import publish_decision
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores import open_store
from metaflow_hitl.timestamps import utc_now

RESULTS = Path(__file__).parent / "results"
CONSOLE = str(Path(sys.executable).with_name("metaflow-hitl"))
FLOWS = 10
#: The commands timed without the index too (as every history read cost before it).
NO_INDEX = ("list --all --no-index", "audit --source store --no-index")


# -- the moto server --------------------------------------------------------------------------


@contextmanager
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server serving one request at a time (as the test fixture does, so moto's
    conditional PUT cannot interleave with another), with this process's AWS settings pointed
    at it; yields its endpoint."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.fakes.moto_s3 import MOTO_CREDENTIALS, serialised_moto_server

    with serialised_moto_server() as endpoint:
        os.environ.update(MOTO_CREDENTIALS, METAFLOW_S3_ENDPOINT_URL=endpoint)
        yield endpoint


# -- filling ------------------------------------------------------------------------------------


def gate_of(i: int) -> GateId:
    return GateId(f"Flow{i % FLOWS}", str(1000 + i), "deploy")


def fill(
    location: str, review: str, start: int, end: int, pending: int, threads: int
) -> tuple[list[tuple[Request, Decision]], float]:
    """Create gates ``start..end-1``; the first ``pending`` overall stay undecided."""
    store = open_store(location)
    spec = GateSpec.from_options(message="Deploy model?", timeout="7d", approvers=["bob"])

    def one(i: int) -> tuple[Request, Decision] | None:
        now = utc_now()
        request = spec.request_for(
            gate_of(i),
            message=f"Deploy model v{i}?",
            started_by="alice",
            runtime="local",
            now=now,
            store=location,
            review={"backend": "git", "location": review},
        )
        store.create_request(request)
        if i < pending:
            return None
        if i % 2:
            return request, store.create_decision(_timeout_decision(request, now))
        # What gates.decide stores for bob's approval, written directly: decide() also lists
        # the votes, which on moto scans the whole bucket and would slow the fill (below).
        actor = Actor(login="bob", channel="cli", at=now, source="flag")
        store.add_vote(Vote(gate_id=request.gate_id, intent="approve", actor=actor))
        decision = Decision(
            gate_id=request.gate_id,
            outcome="approved",
            proceed=True,
            decided_by="bob",
            channel="cli",
            deciders=(actor,),
            decided_at=now,
            request_digest=request.digest(),
        )
        return request, store.create_decision(decision)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        pairs = [p for p in pool.map(one, range(start, end)) if p is not None]
    return pairs, time.perf_counter() - t0


def write_history(review: str, pairs: list[tuple[Request, Decision]], first: bool) -> float:
    """Append one decision commit per pair to ``main`` (fast-import), as merged decisions leave
    it: no branch for a decided gate."""
    t0 = time.perf_counter()
    if first:
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", review], check=True)
    lines: list[bytes] = []

    def data(text: str) -> None:
        raw = text.encode("utf-8")
        lines.append(b"data %d\n" % len(raw) + raw + b"\n")

    stamp = int(time.time())
    for n, (request, decision) in enumerate(pairs):
        lines.append(b"commit refs/heads/main\n")
        lines.append(b"mark :%d\n" % (n + 1))
        who = decision.decided_by.encode()
        lines.append(b"author %s <%s@users.noreply.github.com> %d +0000\n" % (who, who, stamp))
        bot = b"metaflow-hitl <metaflow-hitl@users.noreply.github.com>"
        lines.append(b"committer %s %d +0000\n" % (bot, stamp))
        data(render_commit_message(request, decision))
        if n == 0 and not first:
            lines.append(b"from refs/heads/main^0\n")
        lines.append(b"M 100644 inline %s\n" % decision_path(request.gate_id).encode())
        data(render_decision_record(request, decision))
        # A decided gate's branch is deleted when its decision is merged (git_repo.py): the
        # repo keeps a branch per pending gate only.
    subprocess.run(
        ["git", "-C", review, "fast-import", "--quiet"], input=b"".join(lines), check=True
    )
    return time.perf_counter() - t0


# -- timing -------------------------------------------------------------------------------------


#: S3 requests made in this process, by operation (counted by a botocore event hook).
S3_CALLS: dict[str, int] = {}


def _count_s3_requests() -> None:
    """Count every S3 request the store's clients make (benchmark instrumentation)."""
    from metaflow_hitl.stores import s3

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.fakes.moto_s3 import counting_client

    s3._default_client = counting_client(s3._default_client, S3_CALLS)


def in_process(location: str, args: list[str], repeat: int) -> dict[str, Any]:
    samples, rows, code = [], None, 0
    requests: dict[str, int] = {}
    for _ in range(repeat):
        S3_CALLS.clear()
        t0 = time.perf_counter()
        result = CliRunner().invoke(main, ["--store", location, *args])
        samples.append(time.perf_counter() - t0)
        requests = dict(S3_CALLS)
        code = result.exit_code
        if code != 0:
            raise RuntimeError(f"{args}: exit {code}: {result.output[-2000:]}")
        if "--json" in args:
            parsed = json.loads(result.output)
            rows = len(parsed) if isinstance(parsed, list) else 1
    out: dict[str, Any] = {"median_s": statistics.median(samples), "samples_s": samples}
    out["rows"] = rows
    if requests:
        out["s3_requests"] = requests
        out["s3_requests_total"] = sum(requests.values())
    return out


def cold(location: str, args: list[str], repeat: int) -> dict[str, Any]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [CONSOLE, "--store", location, *args], capture_output=True, text=True, check=False
        )
        samples.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"cold {args}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    return {"median_s": statistics.median(samples), "samples_s": samples}


def _say(size: int, how: str, name: str, seconds: float, requests: int | None = None) -> None:
    extra = f" ({requests} S3 requests)" if requests else ""
    print(f"  {size:>6} {how:10} {name:22} {seconds:.3f} s{extra}", flush=True)


def decide_only(location: str, gate_id: GateId) -> float:
    """One approval through ``gates.decide`` alone: the store's part of a decision."""
    store = open_store(location)
    t0 = time.perf_counter()
    actor = Actor(login="bob", channel="cli", at=utc_now(), source="flag")
    result = decide(store, gate_id, actor=actor, intent="approve")
    assert result.decision is not None
    seconds = time.perf_counter() - t0
    request = store.get_request(gate_id)
    assert request is not None
    publish_decision(
        request, result.decision, store=store
    )  # untimed: keeps the review repo in step
    return seconds


def measure(
    location: str,
    size: int,
    next_pending: Callable[[], GateId],
    repeat: int,
    slow_repeat: int,
    full_max: int = 0,
) -> dict[str, Any]:
    shown = str(gate_of(size - 1))
    out: dict[str, Any] = {"gates": size, "in_process": {}, "cold": {}}
    # The first history read after the fill indexes the gates decided since the last size
    # (all of them at the first size): the one-off cost of the index, reported on its own.
    got = out["in_process"]["index update"] = in_process(
        location, ["audit", "--source", "store", "--json"], 1
    )
    _say(size, "in-process", "index update", got["median_s"], got.get("s3_requests_total"))
    commands = {
        "list": (["list", "--json"], repeat),
        "list --all": (["list", "--all", "--json"], max(slow_repeat, 1)),
        "audit": (["audit", "--json"], max(slow_repeat, 1)),
        "audit --source store": (["audit", "--source", "store", "--json"], max(slow_repeat, 1)),
        "show": (["show", shown, "--json"], repeat),
        # Without the index: every record read and validated (the cost before the index).
        "list --all --no-index": (["list", "--all", "--json", "--no-index"], 1),
        "audit --source store --no-index": (
            ["audit", "--source", "store", "--json", "--no-index"],
            1,
        ),
    }
    slow = ("list --all", "audit", "audit --source store", *NO_INDEX)
    for name, (args, n) in commands.items():
        if full_max and size > full_max and name in NO_INDEX:
            continue  # beyond --s3-full-max: see the request counts at the smaller sizes
        got = out["in_process"][name] = in_process(location, args, n)
        _say(size, "in-process", name, got["median_s"], got.get("s3_requests_total"))
    seconds = decide_only(location, next_pending())
    out["in_process"]["decide (store only)"] = {"median_s": seconds}
    _say(size, "in-process", "decide (store only)", seconds)
    approve = ["approve", str(next_pending()), "--as", "bob", "--json"]
    out["in_process"]["approve"] = in_process(location, approve, 1)
    _say(size, "in-process", "approve", out["in_process"]["approve"]["median_s"])
    for name, (args, _) in commands.items():
        if name not in out["in_process"]:
            continue
        if name in NO_INDEX or (slow_repeat == 0 and name in slow):
            continue  # in process only (cold adds only start-up)
        out["cold"][name] = cold(location, args, 1)
        _say(size, "cold", name, out["cold"][name]["median_s"])
    approve = ["approve", str(next_pending()), "--as", "bob", "--json"]
    out["cold"]["approve"] = cold(location, approve, 1)
    _say(size, "cold", "approve", out["cold"]["approve"]["median_s"])
    return out


def run_store(
    kind: str,
    location: str,
    sizes: list[int],
    args: argparse.Namespace,
    tmp: str,
    save: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    review = os.path.join(tmp, f"review-{kind}.git")
    pending_left = list(range(args.pending))

    def next_pending() -> GateId:
        return gate_of(pending_left.pop(0))

    steps: list[dict[str, Any]] = []
    record = {"store": kind, "steps": steps}
    done = 0
    for size in sizes:
        pairs, fill_s = fill(location, review, done, size, args.pending, args.threads)
        git_s = write_history(review, pairs, first=done == 0)
        print(f"{kind}: filled {done}..{size} in {fill_s:.1f} s (+ git {git_s:.1f} s)", flush=True)
        done = size
        slow = args.slow_repeat if kind == "local" else args.s3_slow_repeat
        full_max = 0 if kind == "local" else args.s3_full_max
        step = measure(location, size, next_pending, args.repeat, slow, full_max)
        step.update(fill_s=fill_s, git_history_s=git_s, pending=len(pending_left))
        steps.append(step)
        save(record)  # after every size: a later failure keeps what was measured
    return record


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--stores", nargs="+", default=["local", "s3"], choices=["local", "s3"])
    parser.add_argument("--pending", type=int, default=100)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slow-repeat", type=int, default=3)
    parser.add_argument(
        "--s3-slow-repeat",
        type=int,
        default=0,
        help="runs of the slow S3 commands; 0: one in-process run and no cold run",
    )
    parser.add_argument(
        "--s3-full-max",
        type=int,
        default=0,
        help="above this many gates, skip the --no-index reads on S3 (0: never skip)",
    )
    parser.add_argument("--out", default=str(RESULTS / "scale.json"))
    args = parser.parse_args()
    os.environ["USER"] = os.environ.get("USER") or "alice"
    results: dict[str, Any] = {
        "sizes": args.sizes,
        "pending": args.pending,
        "machine": {"nproc": os.cpu_count(), "python": sys.version.split()[0]},
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "stores": [],
    }
    out = Path(args.out)
    out.parent.mkdir(exist_ok=True)

    def save(record: dict[str, Any]) -> None:
        stores = [r for r in results["stores"] if r["store"] != record["store"]]
        results["stores"] = [*stores, record]
        results["load_average"] = list(os.getloadavg())
        out.write_text(json.dumps(results, indent=2) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        if "local" in args.stores:
            run_store("local", os.path.join(tmp, "store"), args.sizes, args, tmp, save)
        if "s3" in args.stores:
            # One request at a time, as in the tests: moto's threaded server answers some
            # concurrent requests with 500s. Client threads still overlap with the server.
            _count_s3_requests()
            with s3_endpoint() as endpoint:
                import boto3

                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
                run_store("s3", "s3://bench/hitl", args.sizes, args, tmp, save)


if __name__ == "__main__":
    main_()
