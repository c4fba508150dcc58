"""One Metaflow run of a test flow in a subprocess, its output in a log file.

Shared by the remote-compute tests (Kubernetes, Batch): ``start`` a ``run`` or ``resume``,
``wait_for`` a line, decide with ``hitl``, ``finish`` or ``kill`` (its whole process group).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["FlowRun", "s3_run_env"]

FLOWS = Path(__file__).resolve().parents[1] / "integration" / "flows"


def s3_run_env(tmp: Path, s3_endpoint: str, **extra: str) -> dict[str, str]:
    """This process's environment for a run on the S3 datastore ``s3://bucket/metaflow`` of a
    moto server, local metadata in ``tmp``, no review repo, and none of the caller's
    identity or store settings; ``extra`` last."""
    from tests.fakes.moto_s3 import metaflow_s3_env

    env = {
        **os.environ,
        **metaflow_s3_env(s3_endpoint, "bucket"),
        "METAFLOW_HOME": str(tmp / "mfhome"),
        "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(tmp),
        "METAFLOW_HITL_REVIEW": "none",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    for name in ("METAFLOW_HITL_ACTOR", "METAFLOW_USER", "METAFLOW_HITL_STORE"):
        env.pop(name, None)
    return env


class FlowRun:
    """``python FLOW --datastore=s3 run`` in ``tmp``, with ``env`` as its whole environment."""

    def __init__(self, tmp: Path, flow_file: str, env: dict[str, str]) -> None:
        (tmp / flow_file).write_text((FLOWS / flow_file).read_text())
        self.tmp = tmp
        self.flow_file = flow_file
        self.env = env
        self.log = tmp / "run.log"
        self.proc: subprocess.Popen[str] | None = None

    def command(self, *args: str) -> list[str]:
        return [sys.executable, self.flow_file, "--no-pylint", "--datastore=s3", *args]

    def start(self, *args: str, command: str = "run") -> None:
        self.log = self.tmp / f"{command}.log"
        self.proc = subprocess.Popen(
            self.command(command, *args),
            cwd=self.tmp,
            env=self.env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc is not None
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never printed {text!r}:\n{self.output()}")
            time.sleep(0.1)

    def hitl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command("hitl", *args),
            cwd=self.tmp,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def finish(self, timeout: float = 120) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
