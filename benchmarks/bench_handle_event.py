"""Time from a GitHub event to a recorded decision, for ``metaflow-hitl handle-event``.

Against FakeGitHub (the local GitHub held to GitHub's OpenAPI description, ``tests/fakes/``;
needs ``npm ci``) and a local store. Each sample opens a fresh gate through the GitHub review
backend, submits an approving review on the fake, derives its ``pull_request_review`` webhook
payload (validated against ``@octokit/webhooks-schemas``) and hands it over:

* **in-process**: ``normalize_event`` + ``handle_event``; ``recorded`` is when the decision is
  in the store (the moment publishing starts), ``done`` when the call returns (decision
  committed, pull request merged, reply posted);
* **cold subprocess, import**: ``python -c`` that imports the CLI (``metaflow_hitl.cli.main``)
  in a fresh interpreter, then handles the event; ``import`` is the import alone;
* **cold subprocess, console script**: ``metaflow-hitl handle-event`` as the Action runs it,
  wall time from spawn to exit (interpreter start, imports, handling, shutdown).

Wall times include the fake's request validation (a few ms per request) and loopback HTTP,
not GitHub's latency: against api.github.com add the request count times its round trip.

    python benchmarks/bench_handle_event.py [--runs 10] [--cold 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
RESULTS = HERE / "results" / "handle_event.json"
sys.path.insert(0, str(REPO_ROOT))

from metaflow_hitl.gate_id import GateId  # noqa: E402
from metaflow_hitl.gates import open_gate  # noqa: E402
from metaflow_hitl.github.events import normalize_event  # noqa: E402
from metaflow_hitl.github.handler import NoopResumer, handle_event  # noqa: E402
from metaflow_hitl.github.review_backend import GitHubReviewBackend  # noqa: E402
from metaflow_hitl.render.documents import render_approval_file  # noqa: E402
from metaflow_hitl.review.publish import publish_decision  # noqa: E402
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
from tests.fakes.published import open_published  # noqa: E402

REVIEW_REPO = "acme/approvals"
COLD = """
import json, sys, time
t0 = time.perf_counter()
from metaflow_hitl.cli.main import main
t1 = time.perf_counter()
try:
    main(["handle-event", "--event-name", sys.argv[1], "--event-path", sys.argv[2]],
         standalone_mode=False)
finally:
    t2 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "handle_s": t2 - t1}), file=sys.stderr)
"""


def _event(gh: FakeGitHub, store: LocalApprovalStore, step: str) -> tuple[str, dict[str, Any]]:
    spec = GateSpec.from_options(message="Deploy?", input_schema={"target": "str"})
    request = spec.request_for(
        GateId("BenchFlow", "1", step),
        message="Deploy?",
        started_by="dave",
        runtime="local",
        now=utc_now(),
        store=store.location,
        review={"backend": "github", "repo": REVIEW_REPO, "mode": "pr", "api_url": gh.url},
    )
    request, _ = open_gate(store, request)
    backend = GitHubReviewBackend(REVIEW_REPO, api_url=gh.url, token=gh.token)
    number = int(open_published(backend, store, request, render_approval_file(request))["number"])
    gh.add_review(REVIEW_REPO, number, "alice", "APPROVED", body='/approve {"target": "prod"}')
    pull = backend.get_pull(number)
    review = backend.list_reviews(number)[-1]
    assert pull is not None
    return "pull_request_review", webhooks.review_payload(
        REVIEW_REPO, pull, review, state="approved"
    )


def _summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 1),
        "min_ms": round(ms[0], 1),
        "max_ms": round(ms[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="in-process samples")
    parser.add_argument("--cold", type=int, default=5, help="samples of each subprocess kind")
    args = parser.parse_args()
    if not SPEC_FILE.is_file():
        sys.exit(SKIP_REASON)
    samples: dict[str, list[float]] = {k: [] for k in ("recorded", "done", "requests")}
    cold: dict[str, list[float]] = {k: [] for k in ("import", "handle", "wall_c", "wall_script")}
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub() as gh:
        gh.world.clock = Clock(utc_now() - timedelta(minutes=5))
        gh.add_org("acme")
        gh.add_repo(REVIEW_REPO, files={"README.md": "# approvals\n"})
        for login in ("hitl-bot", "alice"):
            gh.add_collaborator(REVIEW_REPO, login, "write")
        store = LocalApprovalStore(Path(tmp) / "store")
        env = {
            **os.environ,
            "METAFLOW_HITL_STORE": str(store.location),
            "METAFLOW_HITL_GITHUB_TOKEN": gh.token,
            "METAFLOW_HITL_GITHUB_API_URL": gh.url,
        }
        os.environ["METAFLOW_HITL_GITHUB_TOKEN"] = gh.token  # publish_decision reads it
        for i in range(args.runs):
            name, payload = _event(gh, store, f"inproc{i}")
            marks: dict[str, float] = {}

            def publish(request: Any, decision: Any, marks: dict[str, float] = marks) -> Any:
                marks["recorded"] = time.perf_counter()
                return publish_decision(request, decision, store=store)

            before = gh.request_count
            t0 = time.perf_counter()
            github = GitHubReviewBackend(REVIEW_REPO, api_url=gh.url, token=gh.token)
            outcome = handle_event(
                normalize_event(name, payload),
                store=store,
                github=github,
                resumer=NoopResumer(),
                publish=publish,
            )
            t1 = time.perf_counter()
            assert outcome.decision == "approved", outcome
            samples["recorded"].append(marks["recorded"] - t0)
            samples["done"].append(t1 - t0)
            samples["requests"].append(float(gh.request_count - before))
        script = Path(sys.executable).parent / "metaflow-hitl"
        for i in range(args.cold):
            for kind in ("c", "script"):
                name, payload = _event(gh, store, f"cold{kind}{i}")
                path = Path(tmp) / f"event-{kind}{i}.json"
                path.write_text(json.dumps(payload))
                if kind == "c":
                    command = [sys.executable, "-c", COLD, name, str(path)]
                else:
                    command = [str(script), "handle-event", "--event-name", name]
                    command += ["--event-path", str(path)]
                t0 = time.perf_counter()
                proc = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                cold[f"wall_{kind}"].append(time.perf_counter() - t0)
                if kind == "c":
                    inner = json.loads(proc.stderr.strip().splitlines()[-1])
                    cold["import"].append(inner["import_s"])
                    cold["handle"].append(inner["handle_s"])
    requests = samples.pop("requests")
    result = {
        "benchmark": "handle_event",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "metaflow": metadata.version("metaflow"),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                cwd=REPO_ROOT,
            ).stdout.strip(),
        },
        "in_process": {
            "event_to_recorded": _summary(samples["recorded"]),
            "event_to_done": _summary(samples["done"]),
            "requests_per_event": statistics.median(requests),
            "samples_s": samples,
        },
        "cold_subprocess": {
            "import_cli": _summary(cold["import"]),
            "handle_after_import": _summary(cold["handle"]),
            "python_c_wall": _summary(cold["wall_c"]),
            "console_script_wall": _summary(cold["wall_script"]),
            "samples_s": cold,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'measure':<44}{'median ms':>10}{'min':>8}{'max':>8}")
    for section in ("in_process", "cold_subprocess"):
        for key, value in result[section].items():
            if isinstance(value, dict) and "median_ms" in value:
                print(
                    f"{section + '.' + key:<44}{value['median_ms']:>10}{value['min_ms']:>8}"
                    f"{value['max_ms']:>8}"
                )
    print(f"requests per event (median): {result['in_process']['requests_per_event']}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
