"""Run the containers of a compiled Argo WorkflowTemplate as local processes.

Each pod's ``bash -c`` script runs unchanged but for what Argo would fill in: the
``{{...}}`` placeholders (workflow name, creation time, input paths, retries, workflow
parameters), the Downward API variables, and the shared ``/tmp/mf-input-paths`` file (made
per pod). It downloads the real code package from the S3 server, as a pod does.

Metaflow's Argo decorator writes the task id to ``/mnt/out/task_id`` (an ``emptyDir`` in a
pod): :func:`pods_supported` says whether this machine lets us create it.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT_DIR = Path("/mnt/out")
FLOWS = Path(__file__).parent / "flows"


def pods_supported() -> str | None:
    """``None`` if pods can run here, else why not (a skip reason)."""
    try:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        probe = OUT_DIR / f".probe-{os.getpid()}"  # per process: xdist workers probe at once
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        return f"Metaflow's Argo tasks write {OUT_DIR}/task_id, which is not writable here: {exc}"
    return None


@dataclass
class PodResult:
    returncode: int
    stdout: str
    stderr: str
    task_id: str | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Workflow:
    """One submitted workflow of a template: its name, creation time and parameters."""

    template: dict[str, Any]
    name: str
    root: Path
    env: dict[str, str]
    created: str = "2026-11-25T10:00:00Z"
    uid: str = "6b1f0c2e-0000-4000-8000-000000000001"
    #: The pod image's interpreter (its directory goes first on PATH); default: this one.
    python: Path | None = None
    #: The workflow's labels and annotations (``{{workflow.labels.json}}`` and
    #: ``{{workflow.annotations.json}}``: Go's ``json.Marshal`` of the maps).
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None

    def _template(self, name: str) -> dict[str, Any]:
        for t in self.template["spec"]["templates"]:
            if t["name"] == name:
                return t
        raise KeyError(name)

    def _params(self) -> dict[str, str]:
        args = self.template["spec"].get("arguments") or {}
        return {p["name"]: str(p.get("value", "")) for p in args.get("parameters") or []}

    def _fill(self, text: str, inputs: str, retries: int, paths_file: Path) -> str:
        params = self._params()
        text = re.sub(
            r"\{\{=toBase64\(workflow\.parameters\['([^']+)'\]\)\}\}",
            lambda m: base64.b64encode(params[m.group(1)].encode()).decode(),
            text,
        )
        for key, value in {
            "{{workflow.name}}": self.name,
            "{{workflow.creationTimestamp}}": self.created,
            "{{workflow.uid}}": self.uid,
            "{{workflow.labels.json}}": json.dumps(self.labels or {}, sort_keys=True),
            "{{workflow.annotations.json}}": json.dumps(self.annotations or {}, sort_keys=True),
            "{{inputs.parameters.input-paths}}": inputs,
            "{{retries}}": str(retries),
            "/tmp/mf-input-paths": str(paths_file),
        }.items():
            text = text.replace(key, value)
        assert "{{" not in text, re.findall(r"\{\{[^}]*\}\}", text)
        return text

    def run(
        self,
        template: str,
        *,
        inputs: str = "",
        retries: int = 0,
        extra_env: dict[str, str] | None = None,
        timeout: float = 180,
    ) -> PodResult:
        """Run template ``template``'s container like its pod would; returns its outcome."""
        spec = self._template(template)["container"]
        workdir = self.root / f"{template}-{len(list(self.root.glob(template + '-*')))}"
        workdir.mkdir(parents=True)
        paths_file = workdir / "mf-input-paths"
        env = dict(self.env)
        python = self.python or Path(sys.executable)
        env["PATH"] = f"{python.parent}:{env.get('PATH', '')}"
        for item in spec.get("env") or []:
            if item.get("value") is not None:
                env[item["name"]] = self._fill(str(item["value"]), inputs, retries, paths_file)
            elif item.get("valueFrom"):  # the Downward API
                env[item["name"]] = f"{self.name}-{template}-{item['name'].lower()}"
        env["METAFLOW_SKIP_INSTALL_DEPENDENCIES"] = "1"  # the venv has boto3 and requests
        env.update(extra_env or {})
        task_file = OUT_DIR / "task_id"
        command = spec["command"]
        assert command[:2] == ["bash", "-c"], command
        script = self._fill(command[2], inputs, retries, paths_file)
        # Metaflow's Argo decorator writes the fixed path /mnt/out/task_id (a per-pod emptyDir
        # on Kubernetes, one directory here): one pod at a time across xdist workers.
        with (OUT_DIR / ".pods.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            task_file.unlink(missing_ok=True)
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            task_id = task_file.read_text().strip() if task_file.exists() else None
        return PodResult(done.returncode, done.stdout, done.stderr, task_id)

    def path(self, step: str, task_id: str) -> str:
        """An input path as Argo passes it: ``argo-<workflow>/<step>/<task>``."""
        return f"argo-{self.name}/{step}/{task_id}"


#: Runs a flow with the compile hook switched off: the template Metaflow alone produces.
UNGATED = (
    "import runpy, sys; import metaflow_hitl.plugin.argo_compile as hook; "
    "hook.install_compile_hook = lambda: None; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def compile_flow(
    env: dict[str, str], tmp_path: Path, flow: str, *args: str, gated: bool = False
) -> dict[str, Any]:
    """``argo-workflows create --only-json``: with the plugin's gates, or Metaflow's alone."""
    shutil.copy(FLOWS / flow, tmp_path / flow)
    python = [sys.executable] if gated else [sys.executable, "-c", UNGATED]
    done = subprocess.run(
        [*python, flow, "--no-pylint", "argo-workflows", "create", "--only-json", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
