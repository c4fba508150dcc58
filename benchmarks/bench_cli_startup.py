"""The start-up cost metaflow-hitl adds to ``python flow.py --help``.

Three virtual environments, all with the same Metaflow version:

* ``baseline``: Metaflow only (``benchmarks/.venv-baseline``, created on first use);
* ``dev``: the interpreter running this script: metaflow-hitl installed editable, plus the
  dev tools (what a contributor has);
* ``wheel``: Metaflow plus metaflow-hitl built from ``git archive HEAD`` and installed as a
  wheel with only its runtime dependencies (``benchmarks/.venv-hitl-wheel``; what a user
  gets). Skip it with ``--no-wheel-venv``.

Each command is timed with hyperfine when it is on PATH (else a subprocess loop), in
``--rounds`` rounds that interleave the commands, so drift on a shared machine hits all of
them alike. Then ``python -X importtime -c "import metaflow"`` (repeated, median per module)
attributes the added import time to modules. Results go to
``benchmarks/results/cli_startup.json``.

    python benchmarks/bench_cli_startup.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FLOWS = HERE / "flows"
PLAIN = FLOWS / "plain_flow.py"
GATED = FLOWS / "gated_flow.py"
RESULTS = HERE / "results" / "cli_startup.json"
OURS = ("metaflow_hitl", "metaflow_extensions", "__editable___metaflow_hitl")


@dataclass
class Command:
    key: str
    venv: str
    label: str
    argv: list[str]
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user+system seconds, per run

    @property
    def cpu_mean(self) -> float:
        return statistics.fmean(self.cpu)


# -- environments ---------------------------------------------------------------------------
def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


def _pip_install(venv: Path, *requirements: str) -> None:
    subprocess.run(
        [str(_bin(venv, "python")), "-m", "pip", "install", "-q", *requirements], check=True
    )


def _has_hitl(python: Path) -> bool:
    probe = "import importlib.util as u; print(u.find_spec('metaflow_hitl') is not None)"
    out = subprocess.run(
        [str(python), "-I", "-c", probe], capture_output=True, text=True, check=True
    )
    return out.stdout.strip() == "True"


def _metaflow_version(python: Path) -> str:
    probe = "from importlib.metadata import version; print(version('metaflow'))"
    out = subprocess.run(
        [str(python), "-I", "-c", probe], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
    ).stdout.strip()


def ensure_baseline(venv: Path, version: str) -> Path:
    """A venv with ``metaflow==version`` and no metaflow-hitl; created or reused."""
    python = _bin(venv, "python")
    if not python.exists():
        print(f"creating {venv} (metaflow=={version}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        _pip_install(venv, f"metaflow=={version}")
    found = _metaflow_version(python)
    if found != version:
        print(f"{venv}: metaflow {found} -> {version}", flush=True)
        _pip_install(venv, f"metaflow=={version}")
    if _has_hitl(python):
        sys.exit(f"{venv} has metaflow-hitl installed; it must not (delete it to recreate)")
    return python


def ensure_wheel_venv(venv: Path, version: str) -> tuple[Path, str]:
    """A venv with ``metaflow==version`` and metaflow-hitl from ``git archive HEAD``."""
    python = _bin(venv, "python")
    head = _git("rev-parse", "HEAD")
    marker = venv / "hitl-commit.txt"
    if not python.exists():
        print(f"creating {venv} (metaflow=={version} + metaflow-hitl@{head[:8]}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        _pip_install(venv, f"metaflow=={version}")
    if _metaflow_version(python) != version:
        _pip_install(venv, f"metaflow=={version}")
    if not marker.exists() or marker.read_text().strip() != head:
        print(f"installing metaflow-hitl@{head[:8]} into {venv} ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="hitl-src-") as src:
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", "--format=tar", "HEAD"],
                capture_output=True,
                check=True,
            ).stdout
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(src, filter="tar")
            _pip_install(venv, "--force-reinstall", "--no-deps", src)
            _pip_install(venv, src)  # runtime dependencies, if missing
        marker.write_text(head + "\n")
    if not _has_hitl(python):
        sys.exit(f"{venv}: metaflow-hitl did not install")
    return python, head


# -- timing ---------------------------------------------------------------------------------
def run_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
    env.update(USER="alice", METAFLOW_DATASTORE_SYSROOT_LOCAL=str(workdir))
    env.pop("PYTHONPATH", None)
    return env


def time_hyperfine(
    cmd: Command, warmup: int, runs: int, env: dict[str, str], cwd: Path
) -> tuple[list[float], list[float]]:
    """Wall times per run, and user+system CPU (hyperfine gives only its mean)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        export = Path(fh.name)
    try:
        subprocess.run(
            [
                "hyperfine",
                "--shell=none",
                "--style=none",
                f"--warmup={warmup}",
                f"--runs={runs}",
                f"--export-json={export}",
                subprocess.list2cmdline(cmd.argv),
            ],
            check=True,
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
        )
        result = json.loads(export.read_text())["results"][0]
        times = list(result["times"])
        return times, [result["user"] + result["system"]] * len(times)
    finally:
        export.unlink(missing_ok=True)


def time_loop(
    cmd: Command, warmup: int, runs: int, env: dict[str, str], cwd: Path
) -> tuple[list[float], list[float]]:
    """Wall and user+system CPU times per run, measured around ``subprocess.run``."""
    times, cpu = [], []
    for i in range(warmup + runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            cmd.argv,
            check=True,
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if i >= warmup:
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times, cpu


def stats(times: list[float]) -> dict[str, float]:
    return {
        "n": len(times),
        "median": statistics.median(times),
        "mean": statistics.fmean(times),
        "stdev": statistics.stdev(times) if len(times) > 1 else 0.0,
        "min": min(times),
        "max": max(times),
    }


# -- import time ----------------------------------------------------------------------------
def importtime_once(python: Path, env: dict[str, str], cwd: Path) -> dict[str, dict[str, Any]]:
    """One ``-X importtime`` run: per module its self/cumulative us, depth and children."""
    out = subprocess.run(
        [str(python), "-X", "importtime", "-c", "import metaflow"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=True,
    ).stderr
    modules: dict[str, dict[str, Any]] = {}
    # Lines come in post-order: a module's imports are listed just before it, one deeper.
    finished: dict[int, list[str]] = defaultdict(list)
    for line in out.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        head, cum, name = line.split("|", 2)
        raw = name[1:]
        depth = (len(raw) - len(raw.lstrip(" "))) // 2
        module = raw.strip()
        modules[module] = {
            "self": int(head.split(":", 1)[1]),
            "cum": int(cum),
            "depth": depth,
            "children": finished.pop(depth + 1, []),
        }
        finished[depth].append(module)
    return modules


def _ours(name: str) -> bool:
    return name.startswith(OURS)


def _attributed(modules: dict[str, dict[str, Any]], name: str) -> int:
    """A module's cumulative time less that of its own children that are also ours.

    What remains is its own code plus the third-party modules it is first to import, so
    the figures of our modules add up to their total without double counting.
    """
    m = modules[name]
    return m["cum"] - sum(modules[c]["cum"] for c in m["children"] if _ours(c))


def importtime(python: Path, reps: int, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Median figures per module over ``reps`` interpreter starts."""
    samples = [importtime_once(python, env, cwd) for _ in range(reps)]
    names = set().union(*samples)
    out = {}
    for name in names:
        seen = [s for s in samples if name in s]
        first = seen[0][name]
        out[name] = {
            "self": statistics.median(s[name]["self"] for s in seen),
            "cum": statistics.median(s[name]["cum"] for s in seen),
            "depth": first["depth"],
            "seen": len(seen),
        }
        if _ours(name):
            out[name]["attributed"] = statistics.median(_attributed(s, name) for s in seen)
            third = [c for c in first["children"] if not _ours(c)]
            out[name]["third_party"] = sorted(
                ({"module": c, "cum_us": _median_cum(samples, c)} for c in third),
                key=lambda item: -item["cum_us"],
            )[:3]
    return out


def _median_cum(samples: list[dict[str, Any]], name: str) -> float:
    return statistics.median(s[name]["cum"] for s in samples if name in s)


def attribute(base: dict[str, Any], hitl: dict[str, Any]) -> dict[str, Any]:
    """What the hitl interpreter imports on top of the baseline, and what it costs."""
    added = {n: m for n, m in hitl.items() if n not in base}
    by_package: dict[str, float] = defaultdict(float)
    for name, m in added.items():
        by_package[name.split(".")[0]] += m["self"]
    ours = sorted(
        ((n, m) for n, m in hitl.items() if _ours(n)), key=lambda item: -item[1]["attributed"]
    )
    grown = sorted(
        (
            (n, hitl[n]["self"] - base[n]["self"])
            for n in hitl
            if n in base and hitl[n]["self"] - base[n]["self"] > 0
        ),
        key=lambda item: -item[1],
    )
    return {
        "metaflow_cum_us": {"baseline": base["metaflow"]["cum"], "hitl": hitl["metaflow"]["cum"]},
        "ours_total_us": sum(m["attributed"] for n, m in hitl.items() if _ours(n)),
        "our_modules": sorted(n for n in hitl if _ours(n)),
        "added_modules": len(added),
        "added_self_us": sum(m["self"] for m in added.values()),
        "added_by_package_us": dict(sorted(by_package.items(), key=lambda kv: -kv[1])[:12]),
        "top_our_modules": [
            {
                "module": n,
                "attributed_us": m["attributed"],
                "self_us": m["self"],
                "cum_us": m["cum"],
                "third_party": m["third_party"],
            }
            for n, m in ours[:5]
        ],
        "common_modules_grown_self_us": [{"module": n, "delta_us": d} for n, d in grown[:5]],
    }


#: Issue 18: what the extension may add to ``plain_flow.py --help`` (a flow without gates).
TARGET_MS = 25.0


def budget_verdict(deltas: list[dict[str, Any]], attributions: dict[str, Any]) -> dict[str, Any]:
    """Whether a flow without gates starts within :data:`TARGET_MS` of the baseline.

    Measured on the wheel install (what users get) when it was built, else the editable one.
    """
    by_command = {d["command"]: d for d in deltas}
    key = "wheel:plain" if "wheel:plain" in by_command else "dev:plain"
    delta = by_command[key]
    loaded = attributions[key.split(":")[0]].get("our_modules", [])
    return {
        "command": key,
        "budget_ms": TARGET_MS,
        "added_median_ms": delta["median_ms"],
        "median_ratio": delta["median_ratio"],
        "our_modules_loaded": len(loaded),
        "our_modules": loaded,
        "met": delta["median_ms"] <= TARGET_MS,
    }


# -- report ---------------------------------------------------------------------------------
def print_tables(commands: list[Command], deltas: list[dict[str, Any]], tool: str) -> None:
    print(f"\nstart-up time ({tool}; ms)")
    print(f"{'command':<46} {'n':>3} {'median':>8} {'mean':>8} {'stdev':>7} {'min':>8} {'cpu':>8}")
    print("-" * 94)
    for c in commands:
        s = stats(c.times)
        print(
            f"{c.label:<46} {s['n']:>3} {s['median'] * 1e3:8.1f} {s['mean'] * 1e3:8.1f} "
            f"{s['stdev'] * 1e3:7.1f} {s['min'] * 1e3:8.1f} {c.cpu_mean * 1e3:8.1f}"
        )
    print("(cpu: mean user+system time of the process tree, less sensitive to other load)")
    print("\nadded by metaflow-hitl (vs. the baseline venv; ms)")
    print(f"{'comparison':<56} {'median':>8} {'min':>8} {'cpu':>8} {'ratio':>6}")
    print("-" * 90)
    for d in deltas:
        print(
            f"{d['label']:<56} {d['median_ms']:+8.1f} {d['min_ms']:+8.1f} {d['cpu_ms']:+8.1f} "
            f"{d['median_ratio']:6.2f}"
        )
    print("(ratio: median / baseline median)")


def print_importtime(name: str, attr: dict[str, Any]) -> None:
    cum = attr["metaflow_cum_us"]
    print(
        f"\nimport metaflow, {name} vs baseline (-X importtime, medians): "
        f"{cum['hitl'] / 1e3:.1f} ms vs {cum['baseline'] / 1e3:.1f} ms "
        f"({(cum['hitl'] - cum['baseline']) / 1e3:+.1f} ms); our modules and what they import: "
        f"{attr['ours_total_us'] / 1e3:.1f} ms; {attr['added_modules']} extra modules with "
        f"{attr['added_self_us'] / 1e3:.1f} ms of self time"
    )
    print("  top 5 of our modules (ms: own code + third-party modules they import first):")
    for m in attr["top_our_modules"]:
        third = ", ".join(
            f"{t['module']} {t['cum_us'] / 1e3:.1f}" for t in m["third_party"] if t["cum_us"] >= 500
        )
        print(
            f"    {m['module']:<42} {m['attributed_us'] / 1e3:6.1f}  (self {m['self_us'] / 1e3:.1f}"
            + (f"; {third})" if third else ")")
        )
    print("  extra modules' self time by top-level package (ms):")
    for pkg, us in list(attr["added_by_package_us"].items())[:6]:
        print(f"    {pkg:<42} {us / 1e3:6.1f}")
    print("  modules both import, most self time gained (ms):")
    for m in attr["common_modules_grown_self_us"][:3]:
        print(f"    {m['module']:<42} {m['delta_us'] / 1e3:+6.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="Timed runs per round (7).")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds (3).")
    parser.add_argument("--warmup", type=int, default=3, help="Warm-up runs per round (3).")
    parser.add_argument("--importtime-reps", type=int, default=7, help="-X importtime runs (7).")
    parser.add_argument("--baseline-venv", type=Path, default=HERE / ".venv-baseline")
    parser.add_argument("--wheel-venv", type=Path, default=HERE / ".venv-hitl-wheel")
    parser.add_argument("--no-wheel-venv", action="store_true", help="Skip the wheel venv.")
    parser.add_argument("--no-hyperfine", action="store_true", help="Time with a Python loop.")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results path.")
    args = parser.parse_args(argv)

    if not _has_hitl(Path(sys.executable)):
        sys.exit("run this with the interpreter that has metaflow-hitl installed")
    version = metadata.version("metaflow")
    pythons = {
        "baseline": ensure_baseline(args.baseline_venv, version),
        "dev": Path(sys.executable),
    }
    wheel_commit = None
    if not args.no_wheel_venv:
        pythons["wheel"], wheel_commit = ensure_wheel_venv(args.wheel_venv, version)

    descr = {
        "baseline": "baseline",
        "dev": "dev (editable)",
        "wheel": "wheel",
    }
    commands: list[Command] = []
    for venv, python in pythons.items():
        commands.append(
            Command(
                f"{venv}:plain",
                venv,
                f"{descr[venv]}: plain_flow.py --help",
                [str(python), str(PLAIN), "--help"],
            )
        )
        if venv != "baseline":
            commands.append(
                Command(
                    f"{venv}:gated",
                    venv,
                    f"{descr[venv]}: gated_flow.py --help",
                    [str(python), str(GATED), "--help"],
                )
            )
    for venv, python in pythons.items():
        commands.append(
            Command(
                f"{venv}:import",
                venv,
                f"{descr[venv]}: -c 'import metaflow'",
                [str(python), "-c", "import metaflow"],
            )
        )
    for venv, python in pythons.items():
        commands.append(
            Command(
                f"{venv}:pass",
                venv,
                f"{descr[venv]}: -c pass (interpreter)",
                [str(python), "-c", "pass"],
            )
        )
    console = _bin(Path(sys.executable).parent.parent, "metaflow-hitl")
    if console.exists():
        commands.append(
            Command(
                "dev:console",
                "dev",
                f"{descr['dev']}: metaflow-hitl --help",
                [str(console), "--help"],
            )
        )

    tool = "hyperfine" if shutil.which("hyperfine") and not args.no_hyperfine else "loop"
    timer = time_hyperfine if tool == "hyperfine" else time_loop
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="hitl-startup-") as work:
        workdir = Path(work)
        env = run_env(workdir)
        for cmd in commands:  # fail early, with output, if a command does not work
            subprocess.run(cmd.argv, check=True, env=env, cwd=workdir, capture_output=True)
        for r in range(args.rounds):
            for cmd in commands:
                print(f"round {r + 1}/{args.rounds}: {cmd.label}", flush=True)
                times, cpu = timer(cmd, args.warmup, args.runs, env, workdir)
                cmd.times += times
                cmd.cpu += cpu
        imports = {
            venv: importtime(python, args.importtime_reps, env, workdir)
            for venv, python in pythons.items()
        }
    elapsed = time.time() - started

    by_key = {c.key: c for c in commands}
    deltas = []
    for key, base_key in (
        ("dev:plain", "baseline:plain"),
        ("dev:gated", "baseline:plain"),
        ("wheel:plain", "baseline:plain"),
        ("wheel:gated", "baseline:plain"),
        ("dev:import", "baseline:import"),
        ("wheel:import", "baseline:import"),
        ("dev:pass", "baseline:pass"),
        ("wheel:pass", "baseline:pass"),
    ):
        if key not in by_key:
            continue
        a, b = stats(by_key[key].times), stats(by_key[base_key].times)
        deltas.append(
            {
                "label": f"{by_key[key].label}  -  baseline",
                "command": key,
                "baseline": base_key,
                "median_ms": (a["median"] - b["median"]) * 1e3,
                "min_ms": (a["min"] - b["min"]) * 1e3,
                "cpu_ms": (by_key[key].cpu_mean - by_key[base_key].cpu_mean) * 1e3,
                "median_ratio": a["median"] / b["median"],
            }
        )
    attributions = {
        venv: attribute(imports["baseline"], imports[venv])
        for venv in pythons
        if venv != "baseline"
    }

    print_tables(commands, deltas, tool)
    for venv, attr in attributions.items():
        print_importtime(descr[venv], attr)
    target = budget_verdict(deltas, attributions)
    print(
        f"\ntarget: {target['command']} adds {target['added_median_ms']:+.1f} ms "
        f"(ratio {target['median_ratio']:.3f}; budget +{TARGET_MS:.0f} ms; "
        f"{target['our_modules_loaded']} of our modules loaded): "
        + ("met" if target["met"] else "MISSED")
    )

    dirty = _git("status", "--porcelain", "--", "metaflow_hitl", "metaflow_extensions")
    payload = {
        "benchmark": "cli_startup",
        "machine": {
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "metaflow": version,
            "metaflow_hitl": metadata.version("metaflow-hitl"),
            "git_commit": _git("rev-parse", "--short", "HEAD") or None,
            "package_tree_dirty": bool(dirty),
            "wheel_built_from": wheel_commit,
            "timer": tool,
            "hyperfine": _git_free_version("hyperfine") if tool == "hyperfine" else None,
        },
        "settings": {
            "runs": args.runs,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "importtime_reps": args.importtime_reps,
        },
        "elapsed_s": elapsed,
        "commands": [
            {
                "key": c.key,
                "label": c.label,
                "argv": c.argv,
                **stats(c.times),
                "cpu_mean": c.cpu_mean,
                "times": c.times,
            }
            for c in commands
        ],
        "deltas": deltas,
        "target": target,
        "importtime": attributions,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0 if target["met"] else 1


def _git_free_version(tool: str) -> str | None:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
