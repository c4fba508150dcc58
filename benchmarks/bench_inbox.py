"""How fast the inbox (``metaflow-hitl list``) stays with many decided gates.

Fills a store with N decided and P pending gates, then times ``list`` (pending only: reads the
pending index, so it should not grow with N) and ``list --all`` (reads every gate), in process
through the CLI, for the local store and for the S3 store on a loopback moto server.

    python benchmarks/bench_inbox.py                 # local 10,000 + 100; S3 1,000 + 100
    python benchmarks/bench_inbox.py --s3-decided 10000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from metaflow._vendor.click.testing import CliRunner

from metaflow_hitl.cli.main import main
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import _timeout_decision
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores import open_store
from metaflow_hitl.timestamps import utc_now

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.moto_s3 import MOTO_CREDENTIALS, moto_server

RESULTS = Path(__file__).parent / "results" / "inbox.json"


def fill(location: str, decided: int, pending: int) -> float:
    store = open_store(location)
    spec = GateSpec.from_options(message="ok?", timeout="1h")
    start = time.perf_counter()
    for i in range(decided + pending):
        request = spec.request_for(
            GateId("Bench", str(i), "gate"),
            message="ok?",
            started_by="alice",
            runtime="local",
            now=utc_now(),
            store=location,
        )
        store.create_request(request)
        if i < decided:
            store.create_decision(_timeout_decision(request, utc_now()))
    return time.perf_counter() - start


def timed(location: str, *args: str, repeat: int = 5) -> dict[str, float]:
    samples, count = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = CliRunner().invoke(main, ["--store", location, "list", "--json", *args])
        samples.append(time.perf_counter() - t0)
        assert result.exit_code == 0, result.output
        count = len(json.loads(result.output))
    return {"median_s": statistics.median(samples), "max_s": max(samples), "rows": count}


def main_() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--local-decided", type=int, default=10_000)
    parser.add_argument("--s3-decided", type=int, default=1_000)
    parser.add_argument("--pending", type=int, default=100)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        location = os.path.join(tmp, "store")
        results["local"] = {
            "decided": args.local_decided,
            "pending": args.pending,
            "fill_s": fill(location, args.local_decided, args.pending),
            "list_pending": timed(location),
            "list_all": timed(location, "--all", repeat=3),
        }
    with moto_server("bench") as endpoint:
        os.environ.update(MOTO_CREDENTIALS, METAFLOW_S3_ENDPOINT_URL=endpoint)
        location = "s3://bench/hitl"
        results["s3_moto"] = {
            "decided": args.s3_decided,
            "pending": args.pending,
            "fill_s": fill(location, args.s3_decided, args.pending),
            "list_pending": timed(location),
            "list_all": timed(location, "--all", repeat=1),
        }
    results["machine"] = {"nproc": os.cpu_count(), "python": sys.version.split()[0]}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for kind in ("local", "s3_moto"):
        r = results[kind]
        pending, every = r["list_pending"], r["list_all"]
        print(
            f"{kind:8} decided={r['decided']:>6} pending={r['pending']}: "
            f"list {pending['median_s'] * 1000:.0f} ms ({pending['rows']} rows), "
            f"list --all {every['median_s']:.2f} s ({every['rows']} rows)"
        )


if __name__ == "__main__":
    main_()
