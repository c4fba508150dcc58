"""A flow without gates is the same flow with metaflow-hitl installed as without it.

The same flow (a parameter, a foreach, a join, ``@retry``, a user tag) runs in two venvs with
the same Metaflow: this one (metaflow-hitl installed) and one with Metaflow alone. Its
artifacts (content hashes and values), task metadata, tags, logs and console output, and the
Argo WorkflowTemplate ``argo-workflows create --only-json`` compiles, are compared after
masking only what differs between any two runs (run and task ids, times, pids, the code
package's address and digest) and Metaflow's version banner, which names every installed
extension: Metaflow appends ``+hitl(<version>)`` to ``metaflow_version``
(``metaflow/metaflow_version.py``, ``get_version`` adding ``extension_info()``'s packages).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.venvs import make_venv, pins

pytestmark = pytest.mark.slow

FLOWS = Path(__file__).parent / "flows"
FLOW = "parity_flow.py"
#: ``metaflow_version`` as Metaflow reports it with the extension: ``2.19.39+hitl(0.2.0)``.
BANNER = re.compile(r"(\d+\.\d+\.\d+[\w.]*)\+hitl\([^)]*\)")

DUMP = """
import json, sys
from metaflow import Flow, namespace
namespace(None)
run = Flow("ParityFlow").latest_run
out = {"tags": sorted(run.tags), "system_tags": sorted(run.system_tags),
       "successful": run.successful, "steps": {}}
for step in run:
    tasks = []
    for task in step:
        tasks.append({
            "index": task.index,
            "artifacts": {a.id: {"sha": a.sha, "repr": repr(a.data)} for a in task},
            "metadata": sorted((m.name, m.type, m.value) for m in task.metadata),
            "tags": sorted(task.tags),
            "stdout": task.stdout,
            "stderr": task.stderr,
        })
    out["steps"][step.id] = sorted(tasks, key=lambda t: (str(t["index"]), t["stdout"]))
print(json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def plain_metaflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Metaflow alone at this venv's version, with the clients its S3 datastore and Argo need."""
    return make_venv(
        tmp_path_factory.mktemp("no-hitl") / "venv",
        *pins("metaflow", "boto3", "requests", "kubernetes"),
    )


def _run(
    python: Path, cwd: Path, env: dict[str, str], *argv: str, stdout_only: bool = False
) -> str:
    done = subprocess.run(
        [str(python), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout if stdout_only else done.stdout + done.stderr


def _mask(text: str) -> str:
    text = BANNER.sub(r"\1", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?Z?", "<time>", text)
    text = re.sub(r"\(pid \d+\)", "(pid <pid>)", text)
    return re.sub(r"\b\d{13,}\b", "<run>", text)  # local run ids: microseconds since 1970


def _flow_dir(base: Path, name: str) -> Path:
    where = base / name
    where.mkdir()
    shutil.copy(FLOWS / FLOW, where / FLOW)
    return where


def _local_env(where: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
    return {
        **env,
        "USER": "alice",
        "METAFLOW_HOME": str(where / "home"),
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(where),
        "METAFLOW_DEFAULT_DATASTORE": "local",
        "METAFLOW_DEFAULT_METADATA": "local",
    }


def test_a_run_without_gates_is_the_same_with_and_without_the_extension(
    plain_metaflow: Path, tmp_path: Path
) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for name, python in (("without", plain_metaflow), ("with", Path(sys.executable))):
        where = _flow_dir(tmp_path, name)
        env = _local_env(where)
        console = _run(python, where, env, FLOW, "--no-pylint", "run", "--tag", "team:x")
        dump = _run(python, where, env, "-c", DUMP)
        seen[name] = {
            "console": _mask(console).replace(str(where), "<dir>"),
            "run": json.loads(_mask(dump).replace(str(where), "<dir>")),
            "banner": next(x for x in console.splitlines() if "executing ParityFlow" in x),
        }
    # The comparison sees both runs, and the only masked difference is the banner.
    assert seen["with"]["banner"] != seen["without"]["banner"]
    assert "+hitl(" in seen["with"]["banner"]
    assert seen["with"]["run"]["successful"] is True
    assert seen["with"]["run"]["steps"]["join"][0]["artifacts"]["total"]["repr"] == "5"
    assert "team:x" in seen["with"]["run"]["tags"]
    assert seen["with"]["run"] == seen["without"]["run"]
    # Parallel tasks' lines interleave as they come: the same lines, in either order.
    assert sorted(seen["with"]["console"].splitlines()) == sorted(
        seen["without"]["console"].splitlines()
    )


def _help_lines(text: str) -> list[str]:
    """``--help`` lines in a canonical order: Metaflow lists choices and commands from sets and
    dicts filled as plugins load, so their order varies between two runs of one install."""
    lines = [
        re.sub(r"\[([\w|]+)\]", lambda m: "[" + "|".join(sorted(m.group(1).split("|"))) + "]", x)
        for x in text.splitlines()
    ]
    return sorted(lines)


def test_help_differs_by_the_hitl_command_only(plain_metaflow: Path, tmp_path: Path) -> None:
    """``--help`` lists every CLI plugin; the extension's ``hitl`` group is its one line."""
    helps = {}
    for name, python in (("without", plain_metaflow), ("with", Path(sys.executable))):
        where = _flow_dir(tmp_path, name)
        out = _run(python, where, _local_env(where), FLOW, "--no-pylint", "--help")
        helps[name] = _help_lines(_mask(out))
    without, with_ = helps["without"], helps["with"]
    added = [line for line in with_ if line not in without]
    assert len(added) == 1, added
    assert added[0].split()[0] == "hitl"
    assert [line for line in with_ if line not in added] == without
    assert any(line.split()[:1] == ["argo-workflows"] for line in without)


def _template_text(template: dict[str, Any]) -> str:
    """The compiled template with the code package's address, digest and time, and the
    parameter file's random name, masked."""
    text = json.dumps(template, indent=1, sort_keys=True)
    text = re.sub(r"s3://bucket/[^\s\"']*?/data/[0-9a-f]{2}/[0-9a-f]{40}", "<package-url>", text)
    text = re.sub(r"data/[0-9a-f]{2}/[0-9a-f]{40}", "data/<xx>/<sha>", text)
    # the parameters file the start pod writes: a random name per compile
    for name in set(re.findall(r"`pwd`/([a-z]{10})\b", text)):
        text = re.sub(rf"\b{name}\b", "<params-file>", text)
    text = re.sub(r"\b[0-9a-f]{40}\b", "<sha>", text)
    return _mask(text)


def test_the_compiled_argo_template_is_the_same(
    plain_metaflow: Path, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """Compiled against the loopback S3 server; the code package is uploaded by each side."""
    texts = {}
    for name, python in (("without", plain_metaflow), ("with", Path(sys.executable))):
        where = _flow_dir(tmp_path, name)
        env = {**s3_env, "USER": "alice", "METAFLOW_HOME": str(where / "home")}
        env = {k: v for k, v in env.items() if not k.startswith("METAFLOW_HITL_")}
        out = _run(
            python,
            where,
            env,
            FLOW,
            "--no-pylint",
            "argo-workflows",
            "create",
            "--only-json",
            stdout_only=True,
        )
        template = json.loads(out)
        texts[name] = _template_text(template)
    assert '"kind": "WorkflowTemplate"' in texts["with"]
    assert "<package-url>" in texts["with"]
    assert "hitl" not in texts["with"].lower()
    assert texts["with"] == texts["without"]
