"""What an Argo gate costs: the notify task (time, GitHub requests) and the pods held
while it waits (zero), next to a gate that polls from inside the step's pod.

The flow is compiled for real (``argo-workflows create --only-json`` against a loopback moto
S3 server); the notify task's container script runs as a local process (code package
downloaded from S3, as in a pod) against the OpenAPI-validated GitHub test server. The
waiting cost is read from the compiled template: the suspend template has no container, so no
pod exists while the gate waits. A polling gate (what a gate without Argo support does: the
step's pod sleeps until a decision) holds the gated step's own pod, with its requested CPU and
memory, for as long as the gate waits.

Also (``--watch-runs N``): decision -> node resumed through the in-cluster resumer,
``metaflow-hitl sync --watch PERIOD`` as a subprocess over the moto S3 store and the stateful
Kubernetes API stand-in (kubeconfig), for each polling period; and (``--action``) a
decision's Action time cold and warm under ``act`` (``tests/integration/test_action_act.py``,
the cache service stood in by a local directory).

Run: ``python benchmarks/bench_argo.py --runs 5 --watch-runs 5 --action`` (a few minutes).
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


def bench_watch(runs: int, periods: tuple[float, ...] = (1.0, 5.0)) -> dict[str, Any]:
    """Decision recorded in S3 -> the suspend node resumed by ``sync --watch``, per period."""
    import subprocess
    from datetime import timedelta

    from metaflow_hitl.gate_id import GateId
    from metaflow_hitl.gates import decide, open_gate
    from metaflow_hitl.records import Actor
    from metaflow_hitl.spec import GateSpec
    from metaflow_hitl.stores import open_store
    from metaflow_hitl.timestamps import utc_now
    from tests.fakes import k8s_api
    from tests.fakes.argo_server import make_workflow, suspend_node
    from tests.integration.kube_argo import _kubeconfig

    out: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    with moto_server("bucket") as endpoint, _removed(tmp):
        env = {**os.environ, **metaflow_s3_env(endpoint, "bucket")}
        os.environ.update(MOTO_CREDENTIALS)
        os.environ["METAFLOW_S3_ENDPOINT_URL"] = env["METAFLOW_S3_ENDPOINT_URL"]
        store_url = "s3://bucket/metaflow/_hitl"
        store = open_store(store_url)
        kube = k8s_api.FakeKubernetes()
        with k8s_api.serve(kube) as url:
            kubeconfig = _kubeconfig(tmp, url)
            for period in periods:
                child = {
                    **env,
                    "METAFLOW_HITL_STORE": store_url,
                    "METAFLOW_HITL_KUBECONFIG": str(kubeconfig),
                }
                script = Path(sys.executable).with_name("metaflow-hitl")
                log = (tmp / f"watch-{period}.log").open("w")
                watcher = subprocess.Popen(
                    [str(script), "sync", "--watch", f"{period:g}s"],
                    env=child,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                samples = []
                try:
                    time.sleep(max(3.0, period * 2))  # started and polling
                    for i in range(runs):
                        name = f"wf-{int(period)}-{i}"
                        spec = GateSpec.from_options(message="go?", timeout="1h")
                        request = spec.request_for(
                            GateId("BenchFlow", f"argo-{name}", "gate"),
                            message="go?",
                            started_by="bench",
                            runtime="argo-workflows",
                            now=utc_now() - timedelta(seconds=1),
                            store=store_url,
                            origin={"workflow": name, "namespace": "default"},
                        )
                        open_gate(store, request)
                        kube.add(
                            make_workflow(
                                suspend_node("n1", "gate", workflow=name),
                                name=name,
                                namespace="default",
                            )
                        )
                        writes = len(kube.writes)
                        time.sleep(period * (i % 3) / 3)  # decisions land anywhere in a period
                        t0 = time.perf_counter()
                        decide(
                            store,
                            request.gate_id,
                            actor=Actor(login="bob", channel="cli", at=utc_now()),
                            intent="approve",
                        )
                        while len(kube.writes) == writes:
                            if time.perf_counter() - t0 > period * 4 + 30:
                                raise SystemExit(f"no resume within {period * 4 + 30}s")
                            time.sleep(0.01)
                        samples.append(round(time.perf_counter() - t0, 3))
                finally:
                    watcher.terminate()
                    watcher.wait(10)
                    log.close()
                out[f"{period:g}s"] = {
                    "decision_to_resumed_s": samples,
                    "median_s": statistics.median(samples),
                    "max_s": max(samples),
                }
                print(f"sync --watch {period:g}s: decision -> node resumed {out[f'{period:g}s']}")
    return out


def bench_action() -> dict[str, Any]:
    """A decision's Action time under act, cold (pip install) then warm (cache restored)."""
    import re
    import subprocess

    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-s",
            "tests/integration/test_action_act.py", "-k", "cached",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )  # fmt: skip
    found = re.search(r"ACTION-TIMING cold=([\d.]+)s warm=([\d.]+)s", done.stdout)
    if done.returncode != 0 or not found:
        return {"error": (done.stdout + done.stderr)[-2000:]}
    result = {"cold_s": float(found.group(1)), "warm_s": float(found.group(2))}
    print(f"Action under act: cold {result['cold_s']} s, warm {result['warm_s']} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--watch-runs", type=int, default=0)
    parser.add_argument("--action", action="store_true")
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
    if args.watch_runs:
        result["in_cluster_resumer"] = bench_watch(args.watch_runs)
    if args.action:
        result["action_under_act"] = bench_action()
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
