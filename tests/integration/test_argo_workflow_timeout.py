"""``--workflow-timeout`` against the gates on the longest path, not each gate alone.

Argo's workflow deadline (``spec.activeDeadlineSeconds``) runs while a suspend node waits:
``executeSuspend`` requeues at the earlier of the suspend deadline and the workflow deadline
(``workflow/controller/operator.go`` v4.1.2 l.4015-4021), and a workflow past its deadline
fails what is running. Two gates in sequence therefore need the sum of their timeouts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from metaflow_hitl.argo.gate_paths import longest_gate_wait, upstream_tasks
from tests.integration.test_argo_inject import FLOWS


def _create(s3_env, tmp_path, timeout: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(FLOWS / "two_gates_flow.py", tmp_path / "two_gates_flow.py")
    return subprocess.run(
        [
            sys.executable,
            "two_gates_flow.py",
            "--no-pylint",
            "argo-workflows",
            "create",
            "--only-json",
            "--workflow-timeout",
            timeout,
        ],
        cwd=tmp_path,
        env=s3_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_two_gates_in_sequence_need_the_sum_of_their_timeouts(s3_env, tmp_path):
    """``two_gates_flow``: 1h on ``start`` then 2h on ``deploy_model``. 9000 s holds either
    alone but not both; 10800 s holds both."""
    short = _create(s3_env, tmp_path, "9000")
    assert short.returncode != 0
    assert not short.stdout.strip()
    assert "longest path can wait 10800s in all" in short.stderr
    assert "times out after 9000s (--workflow-timeout)" in short.stderr
    enough = _create(s3_env, tmp_path, "10800")
    assert enough.returncode == 0, enough.stderr


def _dag(*tasks):
    return {
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "dag": {"tasks": list(tasks)}}],
        }
    }


def test_gates_on_parallel_branches_are_not_added_up():
    """A split: ``a`` and ``b`` both after ``start``, joined by ``join``."""
    template = _dag(
        {"name": "start", "template": "start"},
        {"name": "a", "template": "a", "depends": "start.Succeeded"},
        {"name": "b", "template": "b", "depends": "start.Succeeded"},
        {"name": "join", "template": "join", "depends": "(a.Succeeded) && b.Succeeded"},
    )
    assert longest_gate_wait(template, {"a": 600, "b": 900}) == 900
    assert longest_gate_wait(template, {"a": 600, "b": 900, "join": 100}) == 1000
    legacy = _dag(
        {"name": "start", "template": "start"},
        {"name": "a", "template": "a", "dependencies": ["start"]},
        {"name": "end", "template": "end", "dependencies": ["a"]},
    )
    assert longest_gate_wait(legacy, {"start": 5, "a": 7}) == 12
    assert upstream_tasks({"depends": "(hitl-suspend-x.Succeeded) || y"}) == [
        "hitl-suspend-x",
        "y",
    ]


def test_a_nested_dag_counts_its_own_longest_path():
    template = _dag(
        {"name": "start", "template": "start"},
        {"name": "inner", "template": "inner-dag", "depends": "start.Succeeded"},
    )
    template["spec"]["templates"].append(
        {
            "name": "inner-dag",
            "dag": {
                "tasks": [
                    {"name": "x", "template": "x"},
                    {"name": "y", "template": "y", "depends": "x.Succeeded"},
                ]
            },
        }
    )
    assert longest_gate_wait(template, {"start": 10, "x": 20, "y": 30}) == 60
