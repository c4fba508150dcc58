"""How long the gates on a workflow's longest path can keep it waiting.

Argo counts suspended time against the workflow's ``activeDeadlineSeconds``
(``--workflow-timeout``): a run whose gates wait one after another (gate A, then gate B on a
later step) needs the *sum* of their timeouts, not each alone. :func:`longest_gate_wait` walks
the compiled DAG (tasks' ``depends`` expressions or ``dependencies`` lists; a task whose
template is itself a DAG counts that DAG's longest path) and returns the largest sum of gate
timeouts along any chain of tasks. Gates on parallel branches are not added up.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["longest_gate_wait", "upstream_tasks"]

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z]+)?")


def upstream_tasks(task: Mapping[str, Any]) -> list[str]:
    """The task names a DAG task waits for (``depends`` or ``dependencies``)."""
    names = list(task.get("dependencies") or [])
    for token in _TOKEN.findall(str(task.get("depends") or "")):
        names.append(token.split(".", 1)[0])
    return names


def longest_gate_wait(template: Mapping[str, Any], waits: Mapping[str, float]) -> float:
    """The largest sum of ``waits`` (DAG task name -> seconds) along one chain of tasks of
    the workflow's entrypoint DAG."""
    spec = template.get("spec") or {}
    templates = {t.get("name"): t for t in spec.get("templates") or []}

    @functools.cache
    def dag_longest(name: str) -> float:
        tasks = {t["name"]: t for t in (templates[name].get("dag") or {}).get("tasks") or []}

        @functools.cache
        def ending_at(task_name: str) -> float:
            task = tasks[task_name]
            inner = task.get("template")
            own = waits.get(task_name, 0.0)
            if inner in templates and "dag" in templates[inner] and inner != name:
                own += dag_longest(inner)
            before = [ending_at(u) for u in upstream_tasks(task) if u in tasks]
            return own + max(before, default=0.0)

        return max((ending_at(t) for t in tasks), default=0.0)

    entry = spec.get("entrypoint")
    if entry not in templates or "dag" not in templates[entry]:
        return max(waits.values(), default=0.0)
    return dag_longest(entry)
