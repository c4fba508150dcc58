"""A waiting gate on S3: requests per hour of waiting, and approve -> continue latency per phase.

Runs :func:`metaflow_hitl.gates.wait_for_decision` (what a waiting local task runs) against
an :class:`~metaflow_hitl.stores.s3.S3ApprovalStore` on a loopback moto server, counting
every S3 request its client sends (botocore ``before-call`` events).

1. Requests per hour: the wait runs with a simulated clock (each ``sleep`` moves it, no real
   waiting) but real S3 requests, for the first hour of a gate and for an hour of a gate
   that is a day old, with the default schedule (``polling.DEFAULT_SCHEDULE``) and the old
   fixed 0.1 s. The fixed interval's hour is extrapolated from its first 6 simulated
   minutes (36,000 real requests would take minutes of moto time).
2. Latency: real clock. A gate is opened ``age`` seconds ago (one age per phase), a thread
   waits on it, a decision is recorded after a random think time (0-6 s), and the time from
   the decision's write returning to the wait returning is measured.

    python benchmarks/bench_poll.py --runs 5

Results go to ``benchmarks/results/poll.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from metaflow_hitl import gates  # noqa: E402
from metaflow_hitl.gate_id import GateId  # noqa: E402
from metaflow_hitl.polling import DEFAULT_SCHEDULE, PollSchedule  # noqa: E402
from metaflow_hitl.records import Actor  # noqa: E402
from metaflow_hitl.spec import GateSpec  # noqa: E402
from metaflow_hitl.stores.s3 import S3ApprovalStore  # noqa: E402
from metaflow_hitl.timestamps import utc_now  # noqa: E402
from tests.fakes.moto_s3 import MOTO_CREDENTIALS, moto_server  # noqa: E402

RESULTS = HERE / "results" / "poll.json"
#: One gate age per phase of the default schedule.
PHASES = {"fast (age 5 s)": 5.0, "middle (age 60 s)": 60.0, "gentle (age 10 min)": 600.0}


def _client(endpoint: str, calls: dict[str, int]) -> Any:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, **_aws())

    def count(model: Any, **_: Any) -> None:
        calls[model.name] = calls.get(model.name, 0) + 1

    client.meta.events.register("before-call.s3", count)
    return client


def _aws() -> dict[str, str]:
    return {
        "aws_access_key_id": MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": MOTO_CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def _open(store: S3ApprovalStore, name: str, created: datetime, timeout: str) -> GateId:
    gate = GateId("PollBench", name, "gate")
    spec = GateSpec.from_options(message="bench", timeout=timeout)
    request = spec.request_for(
        gate,
        message="bench",
        started_by="alice",
        runtime="local",
        now=created,
        store=store.location,
    )
    gates.open_gate(store, request)
    return gate


def requests_per_hour(
    endpoint: str, poll: float | PollSchedule, age_hours: float, simulated_s: float
) -> dict[str, Any]:
    """S3 requests of ``simulated_s`` seconds of waiting (simulated clock, real requests)."""
    calls: dict[str, int] = {}
    store = S3ApprovalStore("bucket", "bench", client=_client(endpoint, calls))
    start = datetime(2026, 12, 4, 10, 0, tzinfo=utc_now().tzinfo) + timedelta(hours=age_hours)
    created = datetime(2026, 12, 4, 10, 0, tzinfo=start.tzinfo)
    gate = _open(store, f"rph-{random.randrange(10**9)}", created, "2d")
    calls.clear()
    now = [start]
    end = start + timedelta(seconds=simulated_s)

    def sleep(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)
        if now[0] >= end:
            gates.decide(
                store,
                gate,
                actor=Actor(login="bob", channel="cli", at=now[0]),
                intent="approve",
                now=now[0],
            )

    gates.wait_for_decision(store, gate, poll_interval=poll, clock=lambda: now[0], sleep=sleep)
    # includes the decide() that ends the wait; main() subtracts its measured cost
    return {"simulated_seconds": simulated_s, "requests": sum(calls.values())}


def _decide_cost(endpoint: str) -> int:
    calls: dict[str, int] = {}
    store = S3ApprovalStore("bucket", "bench", client=_client(endpoint, calls))
    gate = _open(store, f"cost-{random.randrange(10**9)}", utc_now(), "1h")
    calls.clear()
    gates.decide(
        store, gate, actor=Actor(login="bob", channel="cli", at=utc_now()), intent="approve"
    )
    return sum(calls.values())


def latency(endpoint: str, age: float, think: float) -> float:
    """Seconds from the decision's write returning to the waiting call returning."""
    store = S3ApprovalStore("bucket", "bench", client=_client(endpoint, {}))
    decider = S3ApprovalStore("bucket", "bench", client=_client(endpoint, {}))
    gate = _open(store, f"lat-{random.randrange(10**9)}", utc_now() - timedelta(seconds=age), "1d")
    done: list[float] = []
    waiter = threading.Thread(
        target=lambda: (
            gates.wait_for_decision(store, gate, poll_interval=DEFAULT_SCHEDULE),
            done.append(time.monotonic()),
        )
    )
    waiter.start()
    time.sleep(think)
    gates.decide(
        decider, gate, actor=Actor(login="bob", channel="cli", at=utc_now()), intent="approve"
    )
    t0 = time.monotonic()
    waiter.join(60)
    return done[0] - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="latency samples per phase")
    args = parser.parse_args()
    random.seed(7)
    with moto_server("bucket") as endpoint:
        cost = _decide_cost(endpoint)
        rph = {
            "default schedule, first hour": requests_per_hour(endpoint, DEFAULT_SCHEDULE, 0, 3600),
            "default schedule, a day-old gate": requests_per_hour(
                endpoint, DEFAULT_SCHEDULE, 24, 3600
            ),
            "fixed 0.1 s (before), first 6 min x 10": requests_per_hour(endpoint, 0.1, 0, 360),
        }
        for row in rph.values():
            row["per_hour"] = round((row["requests"] - cost) * 3600.0 / row["simulated_seconds"])
        lat: dict[str, Any] = {}
        for label, age in PHASES.items():
            samples = [latency(endpoint, age, random.uniform(0, 6)) for _ in range(args.runs)]
            lat[label] = {
                "interval_s": DEFAULT_SCHEDULE.interval(age),
                "median_s": round(statistics.median(samples), 3),
                "max_s": round(max(samples), 3),
                "samples_s": [round(s, 3) for s in samples],
            }
    print(f"decide() costs {cost} S3 requests (subtracted)")
    print(f"{'S3 requests per hour of waiting':45} per hour")
    for label, row in rph.items():
        print(f"  {label:43} {row['per_hour']:>8}")
    print(f"{'approve -> continue latency (S3, moto)':45} interval  median   max")
    for label, row in lat.items():
        print(f"  {label:43} {row['interval_s']:>6}s {row['median_s']:>7}s {row['max_s']:>6}s")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {"python": platform.python_version(), "platform": platform.platform()},
                "schedule": {
                    "phases": DEFAULT_SCHEDULE.phases,
                    "ceiling": DEFAULT_SCHEDULE.ceiling,
                },
                "decide_requests": cost,
                "requests_per_hour": rph,
                "latency": lat,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
