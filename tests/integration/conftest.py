"""Real Metaflow runs in subprocesses, each in its own datastore root.

Runs start as ``alice`` (USER) so that approvals ``--as reviewer`` are not self-approvals.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

FLOWS = Path(__file__).parent / "flows"


class FlowWorkspace:
    """A temp directory holding one flow file and its own ``.metaflow`` datastore."""

    def __init__(self, root: Path, flow_file: str) -> None:
        self.root = root
        shutil.copy(FLOWS / flow_file, root / flow_file)
        self.flow = root / flow_file
        self.store = root / ".metaflow" / "_hitl"
        self.env = {
            **os.environ,
            "USER": "alice",
            "USERNAME": "alice",
            "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root),
            "METAFLOW_HOME": str(root / "mfhome"),
            "METAFLOW_DEFAULT_METADATA": "local",
            "METAFLOW_DEFAULT_DATASTORE": "local",
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("METAFLOW_HITL_ACTOR", "METAFLOW_USER", "METAFLOW_HITL_REVIEW"):
            self.env.pop(name, None)
        self.procs: list[subprocess.Popen[str]] = []

    def command(self, *args: str) -> list[str]:
        return [sys.executable, str(self.flow), "--no-pylint", *args]

    def start(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            self.command("run", *args),
            cwd=self.root,
            env={**self.env, **(extra_env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # so the run and its task processes can be killed together
        )
        self.procs.append(proc)
        return proc

    def start_command(self, *args: str) -> subprocess.Popen[str]:
        """Start ``python flow.py ARGS`` with output in ``<root>/<first arg>.log``."""
        log = open(self.root / f"{args[0]}.log", "w")  # noqa: SIM115 - closed with the run
        proc = subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def hitl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run("hitl", *args, timeout=timeout)

    def console(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("metaflow-hitl")
        return subprocess.run(
            [str(exe), "--store", str(self.store), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def wait_for_gate(self, proc: subprocess.Popen[str] | None = None, timeout: float = 60) -> str:
        """Wait until a gate is pending; return its full id."""
        deadline = time.monotonic() + timeout
        pending = self.store / "v1" / "pending"
        while time.monotonic() < deadline:
            found = sorted(p for p in pending.glob("*/*/*") if p.is_file())
            if found:
                flow, run, step = found[0].relative_to(pending).parts
                return f"{flow}/{run}/{step}"
            if proc is not None and proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"run ended before its gate opened:\n{out}")
            time.sleep(0.05)
        raise AssertionError("no gate opened in time")

    def finish(self, proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out

    def client(self, code: str) -> object:
        """Run ``code`` with the Metaflow client; it must print one JSON value."""
        script = "from metaflow import namespace, Flow, Run, Task\nnamespace(None)\n" + code
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    def kill(self, proc: subprocess.Popen[str]) -> None:
        """Kill a run and every task process it started."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def kill_all(self) -> None:
        for proc in self.procs:
            self.kill(proc)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[callable]:
    made: list[FlowWorkspace] = []

    def make(flow_file: str) -> FlowWorkspace:
        ws = FlowWorkspace(tmp_path, flow_file)
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.kill_all()


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A loopback S3 server (bucket ``bucket``) and the environment a Metaflow run needs."""
    from tests.fakes.moto_s3 import metaflow_s3_env, moto_server
    from tests.integration.kube_argo import serve_kube

    # Metaflow before 2.17 looks up the existing deployment even for --only-json: an empty
    # loopback Kubernetes API answers it (and stores what a real `create` registers).
    with (
        moto_server("bucket") as endpoint,
        serve_kube(tmp_path_factory.mktemp("kube")) as (_api, kubeconfig),
    ):
        yield {
            **os.environ,
            **metaflow_s3_env(endpoint, "bucket"),
            "METAFLOW_HOME": str(tmp_path_factory.mktemp("mfhome")),
            "KUBECONFIG": str(kubeconfig),
        }
