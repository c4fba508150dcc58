"""The pure core imports no Metaflow, GitHub, git, boto3 or kubernetes.

One subprocess installs an import blocker for those packages, proves the blocker works
(``import metaflow`` fails although Metaflow is installed), then imports every core module
and reports, per module, what went wrong. The tests read that report.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

BLOCKED = ("metaflow", "metaflow_extensions", "github", "git", "boto3", "botocore", "kubernetes")

CORE_MODULES = (
    "metaflow_hitl",
    "metaflow_hitl.errors",
    "metaflow_hitl.durations",
    "metaflow_hitl.gate_id",
    "metaflow_hitl.input_schema",
    "metaflow_hitl.records",
    "metaflow_hitl.timestamps",
    "metaflow_hitl.policy",
    "metaflow_hitl.slash_commands",
    "metaflow_hitl.gates",
    "metaflow_hitl.reminders",
    "metaflow_hitl.spec",
    "metaflow_hitl.message",
    "metaflow_hitl.ports",
    "metaflow_hitl.stores",
    "metaflow_hitl.stores.local",
    "metaflow_hitl.index.segments",
    "metaflow_hitl.index.reader",
    "metaflow_hitl.stores.parallel",
    "metaflow_hitl.render.documents",
    "metaflow_hitl.markers",
    "metaflow_hitl.render.markdown",
    "metaflow_hitl.github.events",
    "metaflow_hitl.github.workflow_run",
    "metaflow_hitl.argo.inject",
    # adapters whose heavy client is imported on first use, never at import time
    "metaflow_hitl.stores.s3",
    "metaflow_hitl.github.handler",
    "metaflow_hitl.notify",
    "metaflow_hitl.argo.server_resumer",
    "metaflow_hitl.argo.k8s_resumer",
)

#: Glue and adapters the core must not pull in as a side effect.
NOT_CORE = ("metaflow_hitl.plugin", "metaflow_hitl.cli")

_PROBE = textwrap.dedent(
    """
    import importlib, importlib.util, json, sys, traceback

    BLOCKED = set(json.loads(sys.argv[1]))
    MODULES = json.loads(sys.argv[2])
    NOT_CORE = json.loads(sys.argv[3])
    report = {
        "preloaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
        "installed": {n: importlib.util.find_spec(n) is not None for n in sorted(BLOCKED)},
    }

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked by test_core_purity: {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    try:
        import metaflow  # noqa: F401
        report["blocker_works"] = False
    except ImportError:
        report["blocker_works"] = True

    report["modules"] = {}
    for name in MODULES:
        try:
            importlib.import_module(name)
            report["modules"][name] = None
        except BaseException:
            report["modules"][name] = traceback.format_exc(limit=-3)
    report["loaded_blocked"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    report["loaded_not_core"] = sorted(
        m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in NOT_CORE)
    )
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def report() -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _PROBE,
            json.dumps(BLOCKED),
            json.dumps(CORE_MODULES),
            json.dumps(NOT_CORE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_metaflow_is_installed_so_blocking_it_means_something() -> None:
    assert importlib.util.find_spec("metaflow") is not None


def test_nothing_blocked_was_imported_before_the_blocker(report: dict) -> None:
    assert report["preloaded"] == []


def test_blocker_makes_import_metaflow_fail(report: dict) -> None:
    assert report["installed"]["metaflow"], "metaflow must be importable without the blocker"
    assert report["blocker_works"] is True


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_without_blocked_packages(report: dict, module: str) -> None:
    assert report["modules"][module] is None, report["modules"][module]


def test_core_pulls_in_no_blocked_package(report: dict) -> None:
    assert report["loaded_blocked"] == []


def test_core_pulls_in_no_glue_or_cli(report: dict) -> None:
    assert report["loaded_not_core"] == []
