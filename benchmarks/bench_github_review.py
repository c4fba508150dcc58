"""GitHub API requests and in-process time per gate, for the GitHub review backend.

Runs :class:`~metaflow_hitl.github.review_backend.GitHubReviewBackend` against FakeGitHub (the
local GitHub held to GitHub's OpenAPI description, ``tests/fakes/``; needs ``npm ci``), in
pull request mode and in issue mode, approving half the gates and rejecting the other half.
Per gate it records the requests of ``open_review`` and of ``record_decision`` (split into
reads and writes, from the fake's log), the same for a re-run of both (idempotency: reads
only), the wall time of each call, and the CPU time of the calling thread (our code,
PyGithub and requests; the fake server's validation runs on its own thread).

Wall times include the fake's request validation (a few ms per request) and loopback HTTP,
not GitHub's latency: against api.github.com multiply the request counts by its round trip.

    python benchmarks/bench_github_review.py [--gates 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "github_review.json"
sys.path.insert(0, str(REPO))

from metaflow_hitl.gate_id import GateId  # noqa: E402
from metaflow_hitl.github.page_check import publication_for  # noqa: E402
from metaflow_hitl.github.review_backend import GitHubReviewBackend  # noqa: E402
from metaflow_hitl.records import Actor, Decision, Request  # noqa: E402
from metaflow_hitl.render.documents import render_approval_file  # noqa: E402
from metaflow_hitl.spec import GateSpec  # noqa: E402
from metaflow_hitl.timestamps import utc_now  # noqa: E402
from tests.fakes.github import (  # noqa: E402
    SKIP_REASON,
    SPEC_FILE,
    Clock,
    FakeGitHub,
)

REVIEW_REPO = "acme/approvals"


def _request(step: str) -> Request:
    spec = GateSpec.from_options(
        message="Deploy model v3?",
        input_schema={"target": "str"},
        approvers=["alice", "bob", "@acme/ml-leads"],
    )
    return spec.request_for(
        GateId("BenchFlow", "1", step),
        message="Deploy model v3?",
        started_by="dave",
        runtime="local",
        now=utc_now(),
        store="/tmp/bench-store",
    )


def _decision(request: Request, outcome: str) -> Decision:
    login = "alice" if outcome == "approved" else "bob"
    actor = Actor(login=login, channel="cli", at=utc_now(), source="flag")
    return Decision(
        gate_id=request.gate_id,
        outcome=outcome,  # type: ignore[arg-type]
        proceed=outcome == "approved",
        decided_by=login,
        channel="cli",
        deciders=(actor,),
        decided_at=utc_now(),
        request_digest=request.digest(),
        reason=None if outcome == "approved" else "not now",
    )


def _timed(gh: FakeGitHub, make: Any, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call ``make().method(*args, **kwargs)``: a fresh backend, as backend_for_request makes."""
    backend = make()
    before = len(gh.requests)
    wall, cpu = time.perf_counter(), time.thread_time()
    getattr(backend, method)(*args, **kwargs)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    new = gh.requests[before:]
    return {
        "requests": len(new),
        "writes": sum(r.is_write for r in new),
        "wall_ms": wall * 1000,
        "cpu_ms": cpu * 1000,
    }


def run_mode(mode: str, gates: int) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    with FakeGitHub() as gh:
        gh.world.clock = Clock(utc_now() - timedelta(minutes=5))
        gh.add_org("acme")
        gh.add_repo(REVIEW_REPO)
        for login in ("hitl-bot", "alice", "bob"):
            gh.add_collaborator(REVIEW_REPO, login, "write")
        gh.add_team("acme", "ml-leads", members=["bob"])

        def backend() -> GitHubReviewBackend:
            return GitHubReviewBackend(
                REVIEW_REPO, mode=mode, api_url=gh.url, token=gh.token, backoff=0.0
            )

        for i in range(gates + 1):  # gate 0 warms imports and the fake's caches
            request = _request(f"gate_{i}")
            outcome = "approved" if i % 2 else "rejected"
            decision = _decision(request, outcome)
            approval = render_approval_file(request)
            b = backend
            # what the store records of the page (publish.open_review): refs as the backend
            # returns them, computed here without a request
            mode_refs = {"backend": "github", "location": f"github:{REVIEW_REPO}", "mode": mode}
            published = publication_for(
                request, {**mode_refs, "number": str(i + 1)}, approval, utc_now()
            )
            sample = {
                "outcome": outcome,
                "open": _timed(gh, b, "open_review", request, approval_file=approval),
                "decide": _timed(
                    gh, b, "record_decision", request, decision, publication=published
                ),
                "reopen": _timed(gh, b, "open_review", request, approval_file=""),
                "redecide": _timed(
                    gh, b, "record_decision", request, decision, publication=published
                ),
            }
            if i:
                samples.append(sample)
        assert len(gh.repo(REVIEW_REPO).issues) == gates + 1, "a duplicate was opened"
    return {"mode": mode, "gates": gates, "samples": samples, "summary": _summary(samples)}


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for outcome in ("approved", "rejected"):
        chosen = [s for s in samples if s["outcome"] == outcome]
        row: dict[str, Any] = {}
        for phase in ("open", "decide", "reopen", "redecide"):
            values = [s[phase] for s in chosen]
            row[phase] = {
                "requests": sorted({v["requests"] for v in values}),
                "writes": sorted({v["writes"] for v in values}),
                "wall_ms_median": statistics.median(v["wall_ms"] for v in values),
                "cpu_ms_median": statistics.median(v["cpu_ms"] for v in values),
            }
        gate = [s["open"]["wall_ms"] + s["decide"]["wall_ms"] for s in chosen]
        cpu = [s["open"]["cpu_ms"] + s["decide"]["cpu_ms"] for s in chosen]
        row["per_gate"] = {
            "requests": sorted({s["open"]["requests"] + s["decide"]["requests"] for s in chosen}),
            "wall_ms_median": statistics.median(gate),
            "cpu_ms_median": statistics.median(cpu),
        }
        out[outcome] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gates", type=int, default=20, help="gates per mode (default 20)")
    args = parser.parse_args()
    if not SPEC_FILE.is_file():
        sys.exit(SKIP_REASON)
    started = time.perf_counter()
    modes = [run_mode(mode, args.gates) for mode in ("pr", "issue")]
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "metaflow_hitl"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    result = {
        "benchmark": "github_review",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "pygithub": metadata.version("PyGithub"),
            "git_commit": commit,
            "package_tree_dirty": dirty,
        },
        "settings": {"gates_per_mode": args.gates, "approvers": "alice, bob, @acme/ml-leads"},
        "elapsed_s": time.perf_counter() - started,
        "modes": modes,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'mode':6} {'outcome':9} {'phase':9} {'requests':>9} {'writes':>7} "
        f"{'wall ms':>8} {'cpu ms':>7}"
    )
    for m in modes:
        for outcome, row in m["summary"].items():
            for phase in ("open", "decide", "reopen", "redecide"):
                r = row[phase]
                print(
                    f"{m['mode']:6} {outcome:9} {phase:9} {r['requests']!s:>9} "
                    f"{r['writes']!s:>7} {r['wall_ms_median']:8.1f} {r['cpu_ms_median']:7.1f}"
                )
            g = row["per_gate"]
            print(
                f"{m['mode']:6} {outcome:9} {'per gate':9} {g['requests']!s:>9} {'':>7} "
                f"{g['wall_ms_median']:8.1f} {g['cpu_ms_median']:7.1f}"
            )
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
