"""A gated step's name is safe by construction in the compiled Argo template.

The name is written into template and DAG task names (``hitl-notify-<task>``), ``depends``
expressions (``hitl-suspend-<task>.Succeeded``), the ``hitl-gate`` parameter value and the
notify pod's command line, so :func:`~metaflow_hitl.argo.inject.check_step_name` accepts only
names that are nothing but a name in all of them: ASCII letters, digits and ``_`` from a
letter, whose task name matches Argo's ``workflowFieldNameFmt`` ``[a-zA-Z0-9][-a-zA-Z0-9]*``
and fits ``workflowFieldMaxLength`` (128) with the ``hitl-suspend-`` prefix
(``workflow/validate/validate.go``: v4.1.2 l.1711-1713, v3.5.0 l.1553; applied to
``spec.templates`` and DAG tasks by ``validateWorkflowFieldNames``, v4.1.2 l.187 and l.1459).
A hostile name is refused before any template is written.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from metaflow_hitl.argo.inject import ArgoGate, check_step_name, inject_gates, task_name
from metaflow_hitl.errors import InjectionError

#: Argo's own pattern for template and task names (validate.go, workflowFieldNameFmt).
ARGO_FIELD_NAME = re.compile(r"[a-zA-Z0-9][-a-zA-Z0-9]*")


def template_with(step: str) -> dict[str, Any]:
    task = task_name(step)
    return {
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "dag": {"tasks": [{"name": task, "template": task}]}},
                {"name": task, "container": {"image": "python:3.12", "command": ["true"]}},
            ],
        }
    }


HOSTILE = [
    "deploy'",
    'deploy"',
    "deploy) || true || (x",
    "de ploy",
    "deploy.Succeeded",
    "{{workflow.name}}",
    "dé",  # a Python identifier, not an Argo name
    "_private",  # task name "-private": Argo refuses a leading '-'
    "9lives",
    "",
    "a" * 116,  # hitl-suspend-<116> is 129 characters
]


@pytest.mark.parametrize("step", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_step_name_is_refused(step: str) -> None:
    with pytest.raises(InjectionError, match="cannot gate step"):
        check_step_name(step)
    with pytest.raises(InjectionError, match="cannot gate step"):
        inject_gates(
            template_with(step) if step else template_with("x"),
            [ArgoGate(step, 3600)],
            notify_container=lambda _s, c: c,
        )


@pytest.mark.parametrize("step", ["start", "deploy_model", "A1_b2", "a" * 115])
def test_every_name_written_is_an_argo_name(step: str) -> None:
    check_step_name(step)
    out = inject_gates(
        template_with(step), [ArgoGate(step, 3600)], notify_container=lambda _s, c: c
    )
    for tpl in out["spec"]["templates"]:
        assert ARGO_FIELD_NAME.fullmatch(tpl["name"]), tpl["name"]
        assert len(tpl["name"]) <= 128
    (dag,) = [t for t in out["spec"]["templates"] if "dag" in t]
    for task in dag["dag"]["tasks"]:
        assert ARGO_FIELD_NAME.fullmatch(task["name"]), task["name"]
        for ref in re.findall(r"([^\s()&|!]+)\.Succeeded", task.get("depends", "")):
            assert ARGO_FIELD_NAME.fullmatch(ref), ref
