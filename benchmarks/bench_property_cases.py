"""How many generated cases the property tests actually run (measured, not configured).

Runs the Hypothesis tests with Hypothesis's own statistics (``--hypothesis-show-statistics``,
the pytest plugin Hypothesis ships) and reads, per test, how many test cases passed, failed or
were invalid (rejected by ``assume``/filters before the property ran) in each phase, and why
generation stopped. ``max_examples`` is an upper bound: a small strategy is exhausted early and
filters discard cases, so the configured number says little about what ran.

    python benchmarks/bench_property_cases.py                     # every file with @given
    python benchmarks/bench_property_cases.py tests/unit/test_properties.py

Prints one line per test and the totals, and writes ``results/property_cases.json``. A failing
property fails this script too (pytest's exit status).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "property_cases.json"

#: ``tests/unit/test_x.py::test_name:`` (a test's header in the statistics section).
HEADER = re.compile(r"^(tests/\S+::\S+):$")
#: ``- during generate phase (1.23 seconds):``
PHASE = re.compile(r"^\s*- during (\w+) phase \(([\d.]+) seconds\):$")
#: ``- 150 passing, 0 failing, and 3 invalid test cases`` (Hypothesis >= 6.100) or the older
#: ``- 150 passing examples, 0 failing examples, 3 invalid examples``.
COUNTS = re.compile(
    r"^\s*- (\d+) passing(?: examples)?, (\d+) failing(?: examples)?,"
    r"(?: and)? (\d+) invalid (?:test cases|examples)"
)
STOPPED = re.compile(r"^\s*- Stopped because (.+)$")


def property_files() -> list[str]:
    """Every test file under ``tests/`` that holds a Hypothesis ``@given`` test."""
    return sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("test_*.py")
        if "@given" in p.read_text(encoding="utf-8")
    )


def parse_statistics(text: str) -> dict[str, dict[str, Any]]:
    """Per test id: ``passing``, ``failing``, ``invalid`` (summed over phases), ``phases`` and
    ``stopped`` (Hypothesis's reason), from pytest's ``--hypothesis-show-statistics`` output."""
    tests: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    phase = ""
    for line in text.splitlines():
        if match := HEADER.match(line):
            current = tests.setdefault(
                match[1], {"passing": 0, "failing": 0, "invalid": 0, "phases": {}, "stopped": ""}
            )
        elif current is None:
            continue
        elif match := PHASE.match(line):
            phase = match[1]
            current["phases"][phase] = {"seconds": float(match[2])}
        elif match := COUNTS.match(line):
            passing, failing, invalid = (int(g) for g in match.groups())
            current["passing"] += passing
            current["failing"] += failing
            current["invalid"] += invalid
            current["phases"].setdefault(phase, {}).update(
                passing=passing, failing=failing, invalid=invalid
            )
        elif match := STOPPED.match(line):
            current["stopped"] = match[1].strip()
    return tests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="test files (default: every file with @given)")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON")
    args = parser.parse_args()
    paths = args.paths or property_files()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
         "--hypothesis-show-statistics", *paths],
        cwd=ROOT,
        env={**os.environ, "USER": os.environ.get("USER", "alice")},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    tests = parse_statistics(done.stdout)
    if not tests:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        sys.stderr.write("no Hypothesis statistics found in pytest's output\n")
        return done.returncode or 1
    by_file: dict[str, dict[str, int]] = {}
    for test_id, stats in sorted(tests.items()):
        print(
            f"{stats['passing']:>6} passing {stats['invalid']:>5} invalid "
            f"{stats['failing']:>3} failing  {test_id}  ({stats['stopped']})"
        )
        totals = by_file.setdefault(
            test_id.split("::")[0], {"tests": 0, "passing": 0, "invalid": 0}
        )
        totals["tests"] += 1
        totals["passing"] += stats["passing"]
        totals["invalid"] += stats["invalid"]
    print()
    for path, totals in by_file.items():
        print(f"{totals['passing']:>6} passing {totals['invalid']:>5} invalid  "
              f"{totals['tests']:>3} properties  {path}")  # fmt: skip
    passing = sum(t["passing"] for t in tests.values())
    invalid = sum(t["invalid"] for t in tests.values())
    print(f"{passing:>6} passing {invalid:>5} invalid  {len(tests):>3} properties  "
          f"in all ({seconds:.0f} s wall, pytest exit {done.returncode})")  # fmt: skip
    if not args.no_write:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "commit": commit,
                    "python": platform.python_version(),
                    "cores": os.cpu_count(),
                    "seconds": round(seconds, 1),
                    "pytest_exit": done.returncode,
                    "passing": passing,
                    "invalid": invalid,
                    "by_file": by_file,
                    "tests": tests,
                },
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
