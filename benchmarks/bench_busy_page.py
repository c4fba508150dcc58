"""GitHub requests per event on a busy gate page: 200 comments from 50 accounts.

Against FakeGitHub (GitHub's OpenAPI contract enforced, ``tests/fakes/``; needs ``npm ci``)
and a local store. A pull-request gate with ``min_approvals=60`` (so it stays open) gets 200
comments from 50 collaborators with write access (each: three remarks and one ``/approve``);
then each of ``--events`` further ``/approve`` comments is handed to ``handle_event`` and the
requests it sends are counted by operation.

    python benchmarks/bench_busy_page.py [--events 5] [--out FILE]

To measure an older tree, put it first on the path: ``PYTHONPATH=/path/to/old/tree python
benchmarks/bench_busy_page.py --out /tmp/before.json`` (its fakes must serve its requests).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] or HERE.parent)))

from metaflow_hitl.gate_id import GateId  # noqa: E402
from metaflow_hitl.gates import open_gate  # noqa: E402
from metaflow_hitl.github.events import normalize_event  # noqa: E402
from metaflow_hitl.github.handler import NoopResumer, handle_event  # noqa: E402
from metaflow_hitl.github.review_backend import GitHubReviewBackend  # noqa: E402
from metaflow_hitl.render.documents import render_approval_file  # noqa: E402
from metaflow_hitl.spec import GateSpec  # noqa: E402
from metaflow_hitl.stores.local import LocalApprovalStore  # noqa: E402
from metaflow_hitl.timestamps import utc_now  # noqa: E402
from tests.fakes import webhooks  # noqa: E402
from tests.fakes.github import (  # noqa: E402
    SKIP_REASON,
    SPEC_FILE,
    Clock,
    FakeGitHub,
)

try:  # an older tree (PYTHONPATH, below) kept no publication record
    from tests.fakes.published import open_published
except ImportError:  # pragma: no cover - measuring an older tree

    def open_published(backend, store, request, approval_file):  # type: ignore[no-untyped-def]
        return backend.open_review(request, approval_file=approval_file)


REPO = "acme/approvals"
ACCOUNTS, COMMENTS = 50, 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "busy_page.json")
    args = parser.parse_args()
    if not SPEC_FILE.is_file():
        sys.exit(SKIP_REASON)
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub() as gh:
        gh.world.clock = Clock(utc_now() - timedelta(minutes=5))
        gh.add_org("acme")
        gh.add_repo(REPO, files={"README.md": "# approvals\n"})
        gh.add_collaborator(REPO, "hitl-bot", "write")
        people = [f"user{i:02d}" for i in range(ACCOUNTS)]
        for login in [*people, "alice"]:
            gh.add_collaborator(REPO, login, "write")
        store = LocalApprovalStore(Path(tmp) / "store")
        os.environ["METAFLOW_HITL_GITHUB_TOKEN"] = gh.token
        spec = GateSpec.from_options(message="Deploy?", min_approvals=60)
        request = spec.request_for(
            GateId("Busy", "1", "gate"),
            message="Deploy?",
            started_by="dave",
            runtime="local",
            now=utc_now(),
            store=store.location,
            review={"backend": "github", "repo": REPO, "mode": "pr", "api_url": gh.url},
        )
        request, _ = open_gate(store, request)
        backend = GitHubReviewBackend(REPO, api_url=gh.url, token=gh.token)
        number = int(
            open_published(backend, store, request, render_approval_file(request))["number"] or 0
        )
        for i in range(COMMENTS):
            login = people[i % ACCOUNTS]
            gh.add_comment(REPO, number, login, "/approve" if i >= 150 else f"remark {i}")
        counts: list[int] = []
        by_op: collections.Counter[str] = collections.Counter()
        for k in range(args.events):
            cid = gh.add_comment(REPO, number, "alice", "/approve" if k == 0 else "/reject no")
            comment = next(c for c in gh.repo(REPO).comments if c.id == cid)
            github = GitHubReviewBackend(REPO, api_url=gh.url, token=gh.token)
            issue = github.get_issue(number) or {}
            rest = github.list_comments(number)
            payload = webhooks.comment_payload(
                REPO, issue, next(c for c in rest if c["id"] == comment.id)
            )
            gh.clear_log()
            github = GitHubReviewBackend(REPO, api_url=gh.url, token=gh.token)
            handle_event(
                normalize_event("issue_comment", payload),
                store=store,
                github=github,
                resumer=NoopResumer(),
            )
            counts.append(gh.request_count)
            by_op.update(r.operation_id or "?" for r in gh.requests)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    result = {
        "benchmark": "busy_page",
        "page": {"comments": COMMENTS, "accounts": ACCOUNTS},
        "commit": commit,
        "requests_per_event": {"median": statistics.median(counts), "max": max(counts)},
        "samples": counts,
        "by_operation_per_event": {k: v / len(counts) for k, v in sorted(by_op.items())},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
