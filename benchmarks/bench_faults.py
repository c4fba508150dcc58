"""Figures for faults injected at the boundaries (docs/reliability.md, "Faults").

Runs the scenarios of ``tests/contract/test_faults.py`` more times, and with more kills, and
records retry counts and elapsed times: S3 faults during ``metaflow-hitl approve``
(subprocesses, moto S3 behind the fault proxy), GitHub faults during notify, Argo Server
faults after the decision (then ``hitl sync``), Kubernetes 409 storms, and SIGKILLs mid-write.

    . .venv/bin/activate
    python benchmarks/bench_faults.py --runs 3 --kills 200 --s3-kills 30

Writes ``benchmarks/results/faults.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("USER", "alice")

from tests.contract import test_faults as tf  # noqa: E402
from tests.fakes.faults import FaultProxy  # noqa: E402
from tests.fakes.moto_s3 import serialised_moto_server  # noqa: E402


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def s3_scenarios(endpoint: str, runs: int) -> dict[str, Any]:
    from metaflow_hitl.stores.s3 import S3ApprovalStore
    from tests.contract.store_kinds import new_bucket, s3_client

    out: dict[str, Any] = {}
    cases = {
        name: (fault, {"METAFLOW_HITL_S3_TIMEOUT": "1"}) for name, fault in tf.S3_TRANSIENT.items()
    }
    cases["503-slowdown-forever"] = (lambda p: tf._slowdown(p, None), {})
    cases["drop-forever (AWS_MAX_ATTEMPTS=1)"] = (
        lambda p: p.drop("PUT", tf.DECISION_PUT, times=None),
        {"AWS_MAX_ATTEMPTS": "1"},
    )
    cases["drop-forever (botocore default)"] = (
        lambda p: p.drop("PUT", tf.DECISION_PUT, times=None),
        {},
    )
    for name, (fault, env) in cases.items():
        rows = []
        for _ in range(runs):
            bucket = new_bucket(endpoint)
            store = S3ApprovalStore(bucket, tf.PREFIX, client=s3_client(endpoint))
            store.create_request(tf.make_request(tf.S3_GATE))
            with tempfile.TemporaryDirectory() as tmp, FaultProxy(endpoint) as proxy:
                fault(proxy)
                setup = tf.S3Setup(endpoint, bucket, store, proxy, Path(tmp))
                started = time.monotonic()
                done = setup.run(
                    "approve",
                    str(tf.S3_GATE),
                    "--as",
                    "alice",
                    "--input",
                    '{"target": "prod"}',
                    **env,
                )
                elapsed = time.monotonic() - started
                setup.records()  # every object decodes
                rows.append(
                    {
                        "exit": done.returncode,
                        "elapsed_s": round(elapsed, 3),
                        "decision_puts": proxy.count("PUT", tf.DECISION_PUT),
                        "decision_puts_forwarded": proxy.count(
                            "PUT", tf.DECISION_PUT, forwarded=True
                        ),
                        "requests": len(proxy.log),
                        "decided": store.get_decision(tf.S3_GATE) is not None,
                    }
                )
        out[name] = {"runs": rows, "elapsed_s": summary([r["elapsed_s"] for r in rows])}
        print(
            f"s3 {name:40} exit={[r['exit'] for r in rows]} "
            f"puts={[r['decision_puts'] for r in rows]} {out[name]['elapsed_s']}"
        )
    return out


def kill_scenarios(endpoint: str, kills: int, s3_kills: int) -> dict[str, Any]:
    from metaflow_hitl.stores.local import LocalApprovalStore
    from metaflow_hitl.stores.s3 import S3ApprovalStore
    from tests.contract.store_kinds import new_bucket, s3_client

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "_hitl"
        started = time.monotonic()
        report = tf.kill_many(
            str(root),
            LocalApprovalStore(root),
            lambda: tf.local_objects(root),
            kills=kills,
            env={},
            rng=random.Random(1),
            window=(0.0, 0.2),
        )
        leftovers = len([p for p in root.rglob(".tmp-*")])
        out["local"] = {
            "kills": report.kills,
            "records_checked": report.records,
            "gates_decided": len(report.decisions),
            "temp_files_left": leftovers,
            "elapsed_s": round(time.monotonic() - started, 1),
        }
        print("kills local", out["local"])
        bucket = new_bucket(endpoint)
        store = S3ApprovalStore(bucket, tf.PREFIX, client=s3_client(endpoint))
        with FaultProxy(endpoint) as proxy:
            proxy.delay("PUT", None, 0.05, times=None)
            started = time.monotonic()
            report = tf.kill_many(
                f"s3://{bucket}/{tf.PREFIX}",
                store,
                lambda: tf.s3_objects(endpoint, bucket),
                kills=s3_kills,
                env=tf.s3_env(proxy.url, Path(tmp)),
                rng=random.Random(2),
                window=(0.0, 0.04),
                proxy=proxy,
            )
            undelivered = [e for e in proxy.exchanges("PUT") if not e.delivered]
        out["s3"] = {
            "kills": report.kills,
            "kills_with_a_put_on_the_wire": len(undelivered),
            "records_checked": report.records,
            "gates_decided": len(report.decisions),
            "elapsed_s": round(time.monotonic() - started, 1),
        }
        print("kills s3", out["s3"])
    return out


def k8s_scenarios() -> dict[str, Any]:
    from kubernetes import client

    from metaflow_hitl.errors import StoreError
    from tests.fakes.argo_server import SPECS, make_workflow, suspend_node
    from tests.fakes.k8s_api import FakeKubernetes, serve, workflow_validator

    validator = workflow_validator(SPECS / "v3.7.18" / "schema.json")
    out = {}
    for storm in (0, 1, 2, 4, 1000):
        fake = FakeKubernetes(validator)
        fake.add(make_workflow(suspend_node("n1", tf.ARGO_STEP), compressed=True))
        fake.storm(storm)
        with serve(fake) as url:
            config = client.Configuration()
            config.host = url
            api = client.CustomObjectsApi(client.ApiClient(config))
            sleeps: list[float] = []
            request = tf.argo_request()
            started = time.monotonic()
            try:
                result = str(
                    tf._k8s_resumer(api, sleeps).resume(request, tf.make_decision(request, "alice"))
                )
            except StoreError as exc:
                result = f"StoreError: {exc.message[:60]}"
            out[f"storm-{storm}"] = {
                "result": result,
                "conflicts": fake.conflicts(),
                "requests": len(fake.log),
                "slept_s": round(sum(sleeps), 3),
                "elapsed_s": round(time.monotonic() - started, 3),
                "schema_problems": len(fake.problems),
            }
        print("k8s", storm, out[f"storm-{storm}"])
    return out


def github_scenarios(runs: int) -> dict[str, Any]:
    import pytest

    out: dict[str, Any] = {}
    for name, fault in tf.GITHUB_PR_FAULTS.items():
        rows = []
        for _ in range(runs):
            mp = pytest.MonkeyPatch()
            with tf.github_setup(mp) as setup:
                fault(setup.proxy)
                started = time.monotonic()
                setup.open()
                rows.append(
                    {
                        "elapsed_s": round(time.monotonic() - started, 3),
                        "requests": len(setup.proxy.log),
                        "faulted": len([e for e in setup.proxy.log if e.fault]),
                        "waited_s": round(sum(setup.sleeps), 3),
                        "pulls": len(setup.pulls()),
                        "branches": len(setup.gate_branches()),
                    }
                )
            mp.undo()
        out[name] = {"runs": rows, "elapsed_s": summary([r["elapsed_s"] for r in rows])}
        print(f"github {name:30} {rows[0]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--s3-kills", type=int, default=30)
    args = parser.parse_args()
    started = time.monotonic()
    result: dict[str, Any] = {
        "benchmark": "faults",
        "machine": {
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "git_commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip(),
        },
        "settings": vars(args),
    }
    result["github_notify"] = github_scenarios(args.runs)
    result["kubernetes_409"] = k8s_scenarios()
    with serialised_moto_server() as endpoint:
        result["s3_decide"] = s3_scenarios(endpoint, args.runs)
        result["sigkill"] = kill_scenarios(endpoint, args.kills, args.s3_kills)
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    path = ROOT / "benchmarks" / "results" / "faults.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path} in {result['elapsed_s']} s")


if __name__ == "__main__":
    main()
