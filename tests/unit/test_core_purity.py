"""The pure core imports no Metaflow, GitHub, git, boto3 or kubernetes, nor any adapter.

The core is found by walking its folders (the package's top level, ``index/``, ``render/``);
a new folder must be classified here as core or adapter. A second check imports each adapter
module alone and proves it loads no client library until used.

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
from pathlib import Path

import pytest

import metaflow_hitl

BLOCKED = ("metaflow", "metaflow_extensions", "github", "git", "boto3", "botocore", "kubernetes")

PACKAGE = Path(metaflow_hitl.__file__).parent
#: The core's folders besides the top level: the read cache and what people read.
CORE_FOLDERS = ("index", "render")
#: One folder per technology (and the front ends); the core imports none of them.
ADAPTER_FOLDERS = ("stores", "review", "github", "argo", "notify")


def _modules_of(folder: Path, prefix: str) -> list[str]:
    return [prefix] + [
        f"{prefix}.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"
    ]


#: Every module of the core, found by walking its folders (never a hand-kept list): the
#: top-level modules of the package, and ``index/`` and ``render/``.
CORE_MODULES = tuple(
    _modules_of(PACKAGE, "metaflow_hitl")
    + [m for d in CORE_FOLDERS for m in _modules_of(PACKAGE / d, f"metaflow_hitl.{d}")]
)

#: Glue and adapters the core must not pull in as a side effect.
NOT_CORE = tuple(f"metaflow_hitl.{d}" for d in (*ADAPTER_FOLDERS, "plugin", "cli"))

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


def test_the_walk_finds_the_core() -> None:
    """The walk is not vacuous: it finds the modules the architecture names as core."""
    for name in ("gates", "settle", "records", "policy", "markers", "ports"):
        assert f"metaflow_hitl.{name}" in CORE_MODULES
    assert "metaflow_hitl.index.reader" in CORE_MODULES
    assert "metaflow_hitl.render.documents" in CORE_MODULES
    assert not any(m.startswith(NOT_CORE) for m in CORE_MODULES)
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders == {*CORE_FOLDERS, *ADAPTER_FOLDERS, "plugin", "cli"}, (
        "a new folder must be classified as core or adapter here"
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


#: Client libraries an adapter talks through.
CLIENTS = ("github", "git", "boto3", "botocore", "kubernetes", "apprise", "requests", "urllib3")
#: The one adapter module that imports its client at import time (gitpython is the git
#: backend's whole transport, and needs no credentials or network to import); every other
#: adapter imports its client on first use, so ``import metaflow_hitl.<folder>`` is free.
EAGER_CLIENTS = {"metaflow_hitl.review.git_backend": {"git"}}

ADAPTER_MODULES = tuple(
    m for d in ADAPTER_FOLDERS for m in _modules_of(PACKAGE / d, f"metaflow_hitl.{d}")
)

_CLIENT_PROBE = textwrap.dedent(
    """
    import importlib, json, sys
    clients = set(json.loads(sys.argv[1]))
    importlib.import_module(sys.argv[2])
    print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & clients)))
    """
)


@pytest.mark.parametrize("module", ADAPTER_MODULES)
def test_importing_an_adapter_loads_no_client_library(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CLIENT_PROBE, json.dumps(CLIENTS), module],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert loaded <= EAGER_CLIENTS.get(module, set()), f"{module} loads {sorted(loaded)}"


def test_the_client_probe_can_fail() -> None:
    """The probe sees a client loaded at import time (gitpython by the git backend)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CLIENT_PROBE,
            json.dumps(CLIENTS),
            "metaflow_hitl.review.git_backend",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["git"]
