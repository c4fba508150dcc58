"""64 deciders racing on one Argo gate: who wins, and what every loser is told.

Runs the harness of ``tests/contract/test_races.py`` (real ``metaflow-hitl`` processes: CLI
approve/reject, ``handle-event`` comment deliveries, ``audit --expire``; FakeGitHub; the
swagger-checked Argo Server stand-in) with 64 racers, for the local store and for S3 on a
loopback moto server, at several expiry offsets (the gate expires that many seconds after the
racers are released), and checks every property of the test on every round.

    python benchmarks/bench_races.py                        # offsets -1, 0, 0.005, 0.02, 0.05
    python benchmarks/bench_races.py --racers 64 --offsets 0 0.01 --stores local
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metaflow_hitl.timestamps import utc_now  # noqa: E402
from tests.contract.store_kinds import S3_TEST_ENV  # noqa: E402
from tests.contract.test_races import (  # noqa: E402
    REPO,
    check_race,
    describe,
    run_race,
)
from tests.fakes.argo_server import FakeArgoServer, load_swagger, serve  # noqa: E402
from tests.fakes.github import Clock, FakeGitHub  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "races.json"


def one_round(store: str, racers: int, offset: float, moto: str | None) -> dict[str, object]:
    with FakeGitHub() as gh, tempfile.TemporaryDirectory() as tmp:
        gh.world.clock = Clock(utc_now() - timedelta(minutes=5))
        gh.add_org("acme")
        gh.add_repo(REPO, files={"README.md": "# approvals\n"})
        gh.add_collaborator(REPO, "hitl-bot", "write")
        gh.add_collaborator(REPO, "dave", "write")
        fake = FakeArgoServer(load_swagger())
        env: dict[str, str] = {}
        if store == "s3":
            from tests.contract.store_kinds import new_bucket

            assert moto is not None
            env = {
                **S3_TEST_ENV,
                "METAFLOW_S3_ENDPOINT_URL": moto,
                "AWS_CONFIG_FILE": os.path.join(tmp, "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmp, "no-aws-credentials"),
            }
            os.environ.update(env)
            location = f"s3://{new_bucket(moto)}/hitl"
        else:
            location = os.path.join(tmp, "store")
        with serve(fake) as url:
            t0 = time.monotonic()
            result = run_race(
                location,
                gh=gh,
                argo=fake,
                argo_url=url,
                tmp=Path(tmp),
                racers=racers,
                expiry_offset=offset,
                env=env,
            )
            wall = time.monotonic() - t0
        problems = check_race(result)
        row = {"store": store, **describe(result), "round_wall_s": round(wall, 1)}
        row["problems"] = problems
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--racers", type=int, default=64)
    parser.add_argument("--offsets", type=float, nargs="+", default=[-1.0, 0.0, 0.005, 0.02, 0.05])
    parser.add_argument("--stores", nargs="+", default=["local", "s3"], choices=["local", "s3"])
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    rounds = []
    with contextlib.ExitStack() as stack:
        moto = None
        if "s3" in args.stores:
            from bench_scale import s3_endpoint  # type: ignore[import-not-found]

            moto = stack.enter_context(s3_endpoint())
        for store in args.stores:
            for offset in args.offsets:
                row = one_round(store, args.racers, offset, moto)
                rounds.append(row)
                w: dict[str, Any] = row["winner"]  # type: ignore[assignment]
                print(
                    f"{store:5} offset {offset:+.3f}s: {w['outcome']} by {w['decided_by']} "
                    f"({w['channel']}) {w['decided_at_after_go_s'] * 1000:.1f} ms after go; "
                    f"/set calls {row['argo_set_calls']}, "
                    f"effective {row['argo_effective_writes']}; "
                    f"all done {row['all_done_after_go_s']} s; "
                    f"{'OK' if not row['problems'] else row['problems']}",
                    flush=True,
                )
    out = {
        "racers": args.racers,
        "rounds": rounds,
        "machine": {"nproc": os.cpu_count(), "python": sys.version.split()[0]},
        "load_average_after": list(os.getloadavg()),
    }
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    if any(r["problems"] for r in rounds):
        sys.exit(1)


if __name__ == "__main__":
    main()
