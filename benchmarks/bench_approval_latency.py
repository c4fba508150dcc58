"""Approval-to-continue latency of a ``@hitl`` gate on a local run.

For each run: start ``python benchmarks/flows/latency_flow.py run`` in a subprocess (its own
datastore in a temporary directory), wait until its gate is pending, wait a random "think
time" (so the approval lands at a random phase of the task's polling), approve the gate, and
measure how long until the gated step's first line runs.

* ``t0`` is the moment the decision record is written, taken two ways:
  ``decision.json``'s mtime (primary: the file is written, fsync-ed, then linked into
  place), and the moment the approve call returned (in-process ``decide()``, or the
  ``metaflow-hitl approve`` console script exiting, which includes its interpreter
  shutdown and so is later than the write).
* ``t1`` is ``time.time()`` on the first line of the gated step (the flow writes it to the
  file named by ``HITL_BENCH_T1_FILE``).

Configurations are interleaved run by run, so machine noise hits them alike. Results go to
``benchmarks/results/approval_latency.json``.

    python benchmarks/bench_approval_latency.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import decide
from metaflow_hitl.records import Actor
from metaflow_hitl.stores import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now

HERE = Path(__file__).resolve().parent
FLOW = HERE / "flows" / "latency_flow.py"
FLOW_NAME = "HitlLatencyFlow"
GATED_STEP = "gate"
RESULTS = HERE / "results" / "approval_latency.json"
STARTER = "alice"
REVIEWER = "reviewer"


@dataclass(frozen=True)
class Config:
    poll: str  # "default" (decorator default, 0.1 s) or a duration such as "1s"
    decider: str  # "inprocess" or "cli"

    @property
    def label(self) -> str:
        poll = "default (0.1s)" if self.poll == "default" else self.poll
        return f"poll={poll}, approve via {self.decider}"

    @classmethod
    def parse(cls, text: str) -> Config:
        poll, _, decider = text.partition(":")
        decider = decider or "inprocess"
        if decider not in ("inprocess", "cli"):
            raise argparse.ArgumentTypeError(f"decider must be inprocess or cli: {text!r}")
        return cls(poll=poll or "default", decider=decider)


DEFAULT_CONFIGS = ("default:inprocess", "1s:inprocess", "0.01s:inprocess", "default:cli")


def _console_script() -> str:
    beside = Path(sys.executable).with_name("metaflow-hitl")
    found = str(beside) if beside.exists() else shutil.which("metaflow-hitl")
    if not found:
        sys.exit("metaflow-hitl console script not found; install the package (pip install -e .)")
    return found


def _wait_pending(
    store: LocalApprovalStore, proc: subprocess.Popen[bytes], log: Path, limit: float
) -> GateId:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for gate_id in store.list_gates(pending_only=True, flow=FLOW_NAME):
            return gate_id
        if proc.poll() is not None:
            raise RuntimeError(
                f"run exited ({proc.returncode}) before its gate opened:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        time.sleep(0.005)
    proc.kill()
    raise RuntimeError(f"no pending gate after {limit:.0f}s:\n" + log.read_text()[-3000:])


def one_run(config: Config, think: float, console: str, keep: bool) -> dict[str, Any]:
    """Run the flow once, approve its gate after ``think`` seconds, return the timings."""
    tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-"))
    t1_file = tmp / "t1"
    log = tmp / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_HITL_")}
    env.update(
        USER=STARTER,
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(tmp),
        HITL_BENCH_T1_FILE=str(t1_file),
    )
    env.pop("HITL_BENCH_POLL_INTERVAL", None)
    if config.poll != "default":
        env["HITL_BENCH_POLL_INTERVAL"] = config.poll
    root = tmp / ".metaflow" / "_hitl"
    store = LocalApprovalStore(root)
    try:
        with log.open("wb") as out:
            t_start = time.time()
            proc = subprocess.Popen(
                [sys.executable, str(FLOW), "run"],
                cwd=tmp,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                gate_id = _wait_pending(store, proc, log, limit=120)
                t_pending = time.time()
                time.sleep(think)
                cli_seconds = None
                if config.decider == "inprocess":
                    actor = Actor(login=REVIEWER, channel="cli", at=utc_now(), source="flag")
                    result = decide(store, gate_id, actor=actor, intent="approve")
                    t0_return = time.time()
                    assert result.decision is not None
                    assert result.decision.proceed
                else:
                    cmd = [console, "--store", str(root), "approve", str(gate_id)]
                    t_cli = time.time()
                    subprocess.run(
                        [*cmd, "--as", REVIEWER], check=True, env=env, stdout=subprocess.DEVNULL
                    )
                    t0_return = time.time()
                    cli_seconds = t0_return - t_cli
                # The store's documented layout: <root>/v1/gates/<flow>/<run>/<step>/...
                gate_dir = root / "v1" / "gates" / gate_id.flow / gate_id.run_id / gate_id.step
                t0_mtime = (gate_dir / "decision.json").stat().st_mtime
                t_opened = (gate_dir / "request.json").stat().st_mtime
                rc = proc.wait(timeout=120)
                t_exit = time.time()
            finally:
                if proc.poll() is None:
                    proc.kill()
        if rc != 0:
            raise RuntimeError(f"run failed ({rc}):\n" + log.read_text(errors="replace")[-3000:])
        t1 = float(t1_file.read_text())
        return {
            "run_id": gate_id.run_id,
            "think_s": think,
            "latency_from_mtime_s": t1 - t0_mtime,
            "latency_from_return_s": t1 - t0_return,
            "approve_cli_s": cli_seconds,
            "start_to_gate_open_s": t_opened - t_start,
            "gate_open_to_pending_seen_s": t_pending - t_opened,
            "gate_open_to_decision_s": t0_mtime - t_opened,
            "step_start_to_exit_s": t_exit - t1,
            "wall_s": t_exit - t_start,
            "wall_excluding_gate_wait_s": (t_exit - t_start) - (t0_mtime - t_opened),
        }
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def summarize(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p90 = (
        statistics.quantiles(ordered, n=10, method="inclusive")[8]
        if len(ordered) > 1
        else ordered[0]
    )
    return {
        "median": statistics.median(ordered),
        "p90": p90,
        "max": ordered[-1],
        "min": ordered[0],
        "mean": statistics.fmean(ordered),
    }


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        [
            "git",
            "-C",
            str(HERE.parent),
            "status",
            "--porcelain",
            "--",
            "metaflow_hitl",
            "metaflow_extensions",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "metaflow": metadata.version("metaflow"),
        "metaflow_hitl": metadata.version("metaflow-hitl"),
        "git_commit": commit or None,
        "package_tree_dirty": bool(dirty),
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:8.1f}"


def print_table(results: list[dict[str, Any]]) -> None:
    head = (
        f"{'configuration':<44} {'n':>3}  {'latency ms (t0 = decision.json mtime)':^30}"
        f"  {'ms (t0 = approve returned)':^26}  {'wall s':^17}"
    )
    sub = (
        f"{'':<44} {'':>3}  {'median':>8} {'p90':>8} {'max':>8}  "
        f"  {'median':>8} {'p90':>8} {'max':>8}  {'median':>8} {'p90':>8}"
    )
    print(head)
    print(sub)
    print("-" * len(sub))
    for r in results:
        m, ret, wall = r["latency_from_mtime_s"], r["latency_from_return_s"], r["wall_s"]
        print(
            f"{r['label']:<44} {r['n']:>3}  {_ms(m['median'])} {_ms(m['p90'])} {_ms(m['max'])}  "
            f"  {_ms(ret['median'])} {_ms(ret['p90'])} {_ms(ret['max'])}  "
            f"{wall['median']:8.2f} {wall['p90']:8.2f}"
        )
    print()
    print(f"{'configuration':<44}  median s: start->gate open, decision->exit, wall-minus-wait")
    for r in results:
        print(
            f"{r['label']:<44}  {r['start_to_gate_open_s']['median']:.2f}, "
            f"{r['decision_to_exit_s']['median']:.2f}, "
            f"{r['wall_excluding_gate_wait_s']['median']:.2f}"
            + (
                f"   (approve CLI took {r['approve_cli_s']['median']:.2f} s)"
                if r.get("approve_cli_s")
                else ""
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="Runs per configuration (10).")
    parser.add_argument(
        "--config",
        action="append",
        type=Config.parse,
        help="POLL:DECIDER, repeatable; POLL is 'default' or a duration ('1s'), DECIDER is "
        f"'inprocess' or 'cli'. Default: {' '.join(DEFAULT_CONFIGS)}.",
    )
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(0.3, 1.3),
        metavar=("MIN", "MAX"),
        help="Seconds to wait after the gate is pending before approving, drawn uniformly "
        "(0.3 1.3: one full 1 s poll period, so the approval lands at a random phase).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed for the think times.")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results path.")
    parser.add_argument("--keep", action="store_true", help="Keep each run's temp directory.")
    args = parser.parse_args(argv)
    configs = args.config or [Config.parse(c) for c in DEFAULT_CONFIGS]
    console = _console_script()
    rng = random.Random(args.seed)

    samples: dict[Config, list[dict[str, Any]]] = {c: [] for c in configs}
    started = time.time()
    for i in range(args.runs):
        for config in configs:
            think = rng.uniform(*args.think)
            sample = one_run(config, think, console, args.keep)
            samples[config].append(sample)
            print(
                f"[{i + 1}/{args.runs}] {config.label:<44} latency "
                f"{sample['latency_from_mtime_s'] * 1000:7.1f} ms (mtime) "
                f"{sample['latency_from_return_s'] * 1000:7.1f} ms (return), "
                f"wall {sample['wall_s']:.2f} s",
                flush=True,
            )
    elapsed = time.time() - started

    results = []
    for config, runs in samples.items():
        entry: dict[str, Any] = {
            "label": config.label,
            "poll_interval": config.poll,
            "decider": config.decider,
            "n": len(runs),
        }
        for key in (
            "latency_from_mtime_s",
            "latency_from_return_s",
            "start_to_gate_open_s",
            "wall_s",
            "wall_excluding_gate_wait_s",
        ):
            entry[key] = summarize([r[key] for r in runs])
        entry["decision_to_exit_s"] = summarize(
            [r["latency_from_mtime_s"] + r["step_start_to_exit_s"] for r in runs]
        )
        cli = [r["approve_cli_s"] for r in runs if r["approve_cli_s"] is not None]
        entry["approve_cli_s"] = summarize(cli) if cli else None
        entry["samples"] = runs
        results.append(entry)

    print()
    print_table(results)
    payload = {
        "benchmark": "approval_latency",
        "machine": machine(),
        "settings": {
            "runs": args.runs,
            "think_s": list(args.think),
            "seed": args.seed,
            "flow": str(FLOW.relative_to(HERE.parent)),
        },
        "elapsed_s": elapsed,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
