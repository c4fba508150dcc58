"""What an Argo gate costs: the notify task (time, GitHub requests) and the pods held
while it waits (zero), next to a gate that polls from inside the step's pod.

The flow is compiled for real (``argo-workflows create --only-json`` against a loopback moto
S3 server); the notify task's container script runs as a local process (code package
downloaded from S3, as in a pod) against the OpenAPI-validated GitHub test server. The
waiting cost is read from the compiled template: the suspend template has no container, so no
pod exists while the gate waits. A polling gate (what a gate without Argo support does: the
step's pod sleeps until a decision) holds the gated step's own pod, with its requested CPU and
memory, for as long as the gate waits.

Run: ``python benchmarks/bench_argo.py --runs 5`` (about 1 minute).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.github import FakeGitHub  # noqa: E402
from tests.fakes.moto_s3 import MOTO_CREDENTIALS, metaflow_s3_env, moto_server  # noqa: E402
from tests.integration.argo_pods import Workflow, compile_flow, pods_supported  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "argo.json"
FLOW = ROOT / "tests" / "integration" / "flows" / "deploy_flow.py"
REPO = "acme/approvals"
ONLY_JSON = "--only-json"
WAIT_HOURS = (1, 4, 24)


@contextmanager
def _removed(folder: Path) -> Iterator[None]:
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def parse_quantity(text: str) -> float:
    text = str(text)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}
    for unit, size in units.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * size
    return float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    reason = pods_supported()
    if reason:
        sys.exit(reason)
    tmp = Path(tempfile.mkdtemp(prefix="bench-argo-"))
    with moto_server("bucket") as endpoint, _removed(tmp):
        env = {**os.environ, **metaflow_s3_env(endpoint, "bucket")}
        os.environ.update(MOTO_CREDENTIALS)
        with FakeGitHub() as gh:
            gh.add_org("acme")
            gh.add_repo(REPO, files={"README.md": "# approvals\n"})
            gh.add_collaborator(REPO, "hitl-bot", "write")
            deployer = {
                **env,
                "METAFLOW_HITL_REVIEW": f"github:{REPO}",
                "METAFLOW_HITL_GITHUB_API_URL": gh.url,
            }
            template = compile_flow(deployer, tmp, FLOW.name, gated=True)
            by_name = {t["name"]: t for t in template["spec"]["templates"]}
            suspend = by_name["hitl-suspend-gate"]
            pod_kinds = ("container", "script", "resource", "containerSet", "http", "plugin")
            pods_while_waiting = sum(1 for kind in pod_kinds if kind in suspend)
            step_resources = by_name["gate"]["container"]["resources"]["requests"]
            notify_resources = by_name["hitl-notify-gate"]["container"]["resources"]["requests"]

            secrets = {"METAFLOW_HITL_GITHUB_TOKEN": gh.token}
            samples = []
            for i in range(args.runs):
                wf = Workflow(template, f"deployflow-b{i:04d}", tmp / f"pods{i}", env=env)
                start = wf.run("start")
                assert start.returncode == 0, start.output
                before = gh.count()
                t0 = time.perf_counter()
                notify = wf.run(
                    "hitl-notify-gate",
                    inputs=wf.path("start", str(start.task_id)),
                    extra_env=secrets,
                )
                wall = time.perf_counter() - t0
                assert notify.returncode == 0, notify.output
                samples.append({"wall_s": round(wall, 3), "github_requests": gh.count() - before})

    cpu = parse_quantity(step_resources.get("cpu", "0"))
    mem_gib = parse_quantity(step_resources.get("memory", "0")) / 2**30
    notify_s = statistics.median(s["wall_s"] for s in samples)
    n_cpu = parse_quantity(notify_resources["cpu"])
    n_gib = parse_quantity(notify_resources["memory"]) / 2**30
    comparison = [
        {
            "wait_hours": h,
            "hitl": {
                "pods_while_waiting": pods_while_waiting,
                "cpu_core_hours": round(n_cpu * notify_s / 3600, 5),
                "memory_gib_hours": round(n_gib * notify_s / 3600, 5),
            },
            "polling_gate": {
                "pods_while_waiting": 1,
                "cpu_core_hours": round(cpu * h, 3),
                "memory_gib_hours": round(mem_gib * h, 3),
            },
        }
        for h in WAIT_HOURS
    ]
    result: dict[str, Any] = {
        "notify": {
            "runs": samples,
            "median_wall_s": notify_s,
            "median_github_requests": statistics.median(s["github_requests"] for s in samples),
            "note": "wall time of the notify container script run as a local process: code "
            "package download from S3, Metaflow start-up, request, PR, exit",
        },
        "suspend_template": suspend,
        "gated_step_requests": step_resources,
        "notify_requests": notify_resources,
        "waiting_cost": comparison,
        "machine": {"nproc": os.cpu_count(), "python": sys.version.split()[0]},
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"notify task: median {notify_s:.2f} s wall, {result['notify']['median_github_requests']}"
        " GitHub requests"
    )
    print(f"pods while waiting: {pods_while_waiting} (suspend template keys: {sorted(suspend)})")
    print("wait   hitl cpu-h  polling cpu-h  polling GiB-h")
    for row in comparison:
        hitl, polling = row["hitl"], row["polling_gate"]
        print(
            f"{row['wait_hours']:>3} h  {hitl['cpu_core_hours']:>10}  "
            f"{polling['cpu_core_hours']:>13}  {polling['memory_gib_hours']:>13}"
        )


if __name__ == "__main__":
    main()
