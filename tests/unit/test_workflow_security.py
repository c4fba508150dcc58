"""The Action and the example workflows keep the security rules of docs/github-action.md.

Parsed with PyYAML, no GitHub involved. Each rule is one test over every file, so a failure
names the file and the place that broke it:

- no ``${{`` inside a ``run:`` script (expressions are substituted before the shell parses
  the script; event text must arrive through ``env:``);
- every ``uses:`` of a remote action pinned to a full 40-hex commit SHA;
- a top-level ``permissions:`` in every workflow, and no ``pull_request_target``;
- no checkout of a pull request's head (nor any ref taken from the event);
- no ``cancel-in-progress: true`` (a running decision must never be cancelled);
- every input of ``action.yml`` has a description and a default, and it states its contract.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
WORKFLOWS = sorted((ROOT / "github_action").glob("*.yml"))
FILES = [ACTION, *WORKFLOWS]
SHA = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    return data


def _on(data: dict[Any, Any]) -> Any:
    # YAML 1.1 reads a bare `on` key as the boolean True.
    return data.get("on", data.get(True))


def _steps(path: Path, data: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, step) for every step of the action or of every job of a workflow."""
    if path == ACTION:
        for i, step in enumerate(data["runs"].get("steps", [])):
            yield f"runs.steps[{i}]", step
        return
    for job_id, job in (data.get("jobs") or {}).items():
        for i, step in enumerate(job.get("steps", [])):
            yield f"jobs.{job_id}.steps[{i}]", step


def _walk(node: Any, where: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(where, key, value) for every mapping entry, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield where, key, value
            yield from _walk(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{where}[{i}]")


def test_there_is_something_to_check() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {
        "hitl-comments.yml",
        "hitl-reviews.yml",
        "hitl-review-decide.yml",
        "hitl-remind.yml",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_expression_inside_run_scripts(path: Path) -> None:
    for where, step in _steps(path, _load(path)):
        assert "${{" not in str(step.get("run", "")), (
            f"{path.name} {where}: `${{{{ }}}}` inside `run:`; pass the value through `env:`"
        )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_remote_actions_are_pinned_to_a_full_sha(path: Path) -> None:
    for where, key, value in _walk(_load(path)):
        if key != "uses" or str(value).startswith(("./", "docker://")):
            continue
        assert SHA.match(str(value)), (
            f"{path.name} {where}: `uses: {value}` is not pinned to a 40-hex commit SHA"
        )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_start_from_no_permissions(path: Path) -> None:
    data = _load(path)
    assert "permissions" in data, f"{path.name}: no top-level `permissions:`"
    assert data["permissions"] in ({}, None), (
        f"{path.name}: top-level permissions {data['permissions']!r}; use `permissions: {{}}` "
        "and grant per job"
    )
    for job_id, job in data["jobs"].items():
        granted = job.get("permissions", {}) or {}
        assert isinstance(granted, dict), f"{path.name} jobs.{job_id}: permissions {granted!r}"
        # id-token: only on the jobs that touch the store (test_store_jobs_get_oidc_...)
        extra = set(granted) - {"contents", "pull-requests", "issues", "id-token"}
        assert not extra, f"{path.name} jobs.{job_id}: unexpected permissions {sorted(extra)}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_pull_request_target(path: Path) -> None:
    on = _on(_load(path))
    events = [on] if isinstance(on, str) else list(on or [])
    assert "pull_request_target" not in events, f"{path.name}: pull_request_target"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_never_checks_out_the_pull_request_head(path: Path) -> None:
    for where, step in _steps(path, _load(path)):
        uses = str(step.get("uses", ""))
        if not uses.startswith("actions/checkout@"):
            continue
        ref = str((step.get("with") or {}).get("ref", ""))
        repository = str((step.get("with") or {}).get("repository", ""))
        message = f"{path.name} {where}: checks out {ref or repository!r} from the event"
        assert "github.event" not in ref + repository, message
        assert "head" not in ref, message
    text = path.read_text(encoding="utf-8")
    for needle in ("refs/pull/", "pull_request.head.sha", "workflow_run.head_sha"):
        for line in text.splitlines():
            if needle in line and not line.lstrip().startswith("#"):
                pytest.fail(f"{path.name}: uses {needle!r} outside a comment: {line.strip()}")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_never_cancels_a_running_decision(path: Path) -> None:
    for where, key, value in _walk(_load(path)):
        if key == "cancel-in-progress":
            assert value is False, f"{path.name} {where}: cancel-in-progress: {value!r}"
        if key == "concurrency" and isinstance(value, dict):
            assert value.get("cancel-in-progress") is False, (
                f"{path.name} {where}: say `cancel-in-progress: false` explicitly"
            )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_privileged_jobs_run_only_from_the_default_branch(path: Path) -> None:
    """A job that may write (or holds the credentials' environment) runs only on events
    whose workflow file comes from the default branch."""
    data = _load(path)
    on = _on(data)
    events = {on} if isinstance(on, str) else set(on or [])
    # "Last commit on default branch" for each of these, and `issues` "will only trigger a
    # workflow run if the workflow file is on the default branch"
    # (https://docs.github.com/actions/writing-workflows/choosing-when-your-workflow-runs/events-that-trigger-workflows)
    trusted = {"issue_comment", "issues", "workflow_run", "workflow_dispatch", "schedule"}
    for job_id, job in data["jobs"].items():
        privileged = bool(job.get("permissions")) or "environment" in job
        if privileged:
            assert events <= trusted, (
                f"{path.name} jobs.{job_id}: privileged, but triggered by "
                f"{sorted(events - trusted)}, which run a workflow file from the PR's ref"
            )


def test_action_inputs_all_have_a_description_and_a_default() -> None:
    inputs = _load(ACTION)["inputs"]
    for name, spec in inputs.items():
        assert str(spec.get("description", "")).strip(), f"input {name}: no description"
        assert "default" in spec, f"input {name}: no default"
        assert not spec.get("required"), f"input {name}: required (give it a default)"


def test_action_contract_is_versioned_and_complete() -> None:
    text = ACTION.read_text(encoding="utf-8")
    assert re.search(r"^# metaflow-hitl action contract v\d+$", text, re.M)
    data = _load(ACTION)
    assert set(data["inputs"]) == {
        "github-token",
        "store",
        "review-api-url",
        "require-merge",
        "allow-edits",
        "argo-server",
        "argo-token",
        "kubeconfig",
        "namespace",
        "python-version",
        # added in contract v1 with defaults that keep the earlier behaviour:
        "extras",
        "argo-ca-bundle",
        "argo-insecure-skip-verify",
        "cache",
        "argo-resume",
    }
    assert set(data["outputs"]) == {"gate-id", "decision", "ignored-reason"}
    assert data["runs"]["using"] == "composite"
    env = {k: v for _, step in _steps(ACTION, data) for k, v in (step.get("env") or {}).items()}
    for name, var in {
        "store": "METAFLOW_HITL_STORE",
        "github-token": "METAFLOW_HITL_GITHUB_TOKEN",
        "review-api-url": "METAFLOW_HITL_GITHUB_API_URL",
        "require-merge": "METAFLOW_HITL_REQUIRE_MERGE",
        "allow-edits": "METAFLOW_HITL_ALLOW_EDITS",
        "argo-ca-bundle": "METAFLOW_HITL_ARGO_CA_BUNDLE",
        "argo-insecure-skip-verify": "METAFLOW_HITL_ARGO_INSECURE_SKIP_VERIFY",
    }.items():
        assert env.get(var) == f"${{{{ inputs.{name} }}}}", f"{var} is not mapped from {name}"


def test_the_remind_workflow_is_scheduled_and_installs_a_pinned_commit() -> None:
    path = ROOT / "github_action" / "hitl-remind.yml"
    data = _load(path)
    assert set(_on(data)) == {"schedule", "workflow_dispatch"}
    steps = [step for _, step in _steps(path, data)]
    sources = [str((s.get("env") or {}).get("METAFLOW_HITL_SOURCE", "")) for s in steps]
    pinned = [s for s in sources if s]
    assert len(pinned) == 1
    assert re.fullmatch(r"git\+https://github\.com/[^@\s]+@[0-9a-f]{40}", pinned[0]), pinned[0]
    assert any(re.search(r"metaflow-hitl\"? remind\b", str(s.get("run", ""))) for s in steps)


# -- least privilege and secrets in logs (docs/reliability.md, "Security of the example
# workflows") ---------------------------------------------------------------------------------

# (``inputs.kubeconfig != ''`` is a boolean, not the kubeconfig: it picks the install extras.)
_SECRET_EXPR = re.compile(
    r"secrets\.|github\.token|inputs\.[\w-]*token|inputs\.kubeconfig(?!\s*!=\s*'')", re.I
)
_TRACE = re.compile(
    r"(^|[;&|]\s*|\s)(set\s+-[a-wyz]*x|set\s+-o\s+xtrace|bash\s+-[a-z]*x|printenv|export\s+-p|"
    r"declare\s+-p|env\s*$|env\s*[|>;])",
    re.M,
)


def _jobs(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from (_load(path).get("jobs") or {}).items()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_states_its_own_permissions_and_a_timeout(path: Path) -> None:
    """No job inherits permissions, and none can hang on to its token for hours."""
    for job_id, job in _jobs(path):
        assert "permissions" in job, f"{path.name} jobs.{job_id}: no `permissions:`"
        minutes = job.get("timeout-minutes")
        assert isinstance(minutes, int), f"{path.name} jobs.{job_id}: no `timeout-minutes`"
        assert 0 < minutes <= 30, f"{path.name} jobs.{job_id}: timeout-minutes {minutes}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_are_never_given_to_a_whole_job_or_workflow(path: Path) -> None:
    """Workflow- and job-level ``env:`` reaches every step, installers included; secrets
    belong to the one step that uses them."""
    data = _load(path)
    scopes = [("env", data.get("env"))] + [
        (f"jobs.{job_id}.env", job.get("env")) for job_id, job in _jobs(path)
    ]
    for where, env in scopes:
        for name, value in (env or {}).items():
            assert not _SECRET_EXPR.search(str(value)), f"{path.name} {where}.{name}: {value}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_secrets_never_reach_installers_names_or_conditions(path: Path) -> None:
    """An install step runs third-party build code, and ``name``/``if``/``concurrency``
    values are shown in the UI and logs: none of them may hold a secret or a token."""
    data = _load(path)
    for where, step in _steps(path, data):
        installs = "pip install" in str(step.get("run", "")) or "setup-python" in str(
            step.get("uses", "")
        )
        if installs:
            passed = {**(step.get("env") or {}), **(step.get("with") or {})}
            for name, value in passed.items():
                assert not _SECRET_EXPR.search(str(value)), (
                    f"{path.name} {where}: the install step receives {name}={value}"
                )
        for key in ("name", "if"):
            assert not _SECRET_EXPR.search(str(step.get(key, ""))), f"{path.name} {where}.{key}"
    for job_id, job in _jobs(path) if path != ACTION else []:
        for key in ("name", "if", "concurrency", "runs-on"):
            value = str(job.get(key, ""))
            assert "secrets." not in value, f"{path.name} jobs.{job_id}.{key}: {value}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_run_scripts_neither_trace_nor_print_a_secret(path: Path) -> None:
    """No shell tracing or environment dumps, and no script names a variable that holds a
    secret (the program reads it from its environment; the shell never expands it)."""
    for where, step in _steps(path, _load(path)):
        script = str(step.get("run", ""))
        match = _TRACE.search(script)
        assert match is None, f"{path.name} {where}: `{match.group(0).strip()}` may log secrets"
        for name, value in (step.get("env") or {}).items():
            if _SECRET_EXPR.search(str(value)):
                assert not re.search(rf"\$\{{?{re.escape(name)}\b", script), (
                    f"{path.name} {where}: the script expands ${name}, which holds a secret"
                )


def test_every_composite_run_step_names_its_shell() -> None:
    for where, step in _steps(ACTION, _load(ACTION)):
        if "run" in step:
            assert step.get("shell") == "bash", f"action.yml {where}: `shell: bash` missing"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_checkouts_do_not_keep_the_token(path: Path) -> None:
    for where, step in _steps(path, _load(path)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert (step.get("with") or {}).get("persist-credentials") is False, (
                f"{path.name} {where}: set `persist-credentials: false`"
            )


@pytest.mark.parametrize(
    "script",
    ["set -x", "set -eux", "set -o xtrace", "bash -x run.sh", "printenv", "env | sort", "env",
     "export -p", 'echo "$METAFLOW_HITL_GITHUB_TOKEN"'],
)  # fmt: skip
def test_the_checks_catch_what_they_look_for(script: str) -> None:
    """The rules above are regexes: make sure each still matches what it must refuse."""
    step = {"run": script, "env": {"METAFLOW_HITL_GITHUB_TOKEN": "${{ inputs.github-token }}"}}
    traced = _TRACE.search(script) is not None
    expands = re.search(r"\$\{?METAFLOW_HITL_GITHUB_TOKEN\b", str(step["run"])) is not None
    assert traced or expands


# -- cloud credentials: OIDC on the jobs that touch the store, never static keys ----------------

#: aws-actions/configure-aws-credentials v6.2.3 (tag commit, read from the repository).
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials@"


def _touches_store(job: dict[str, Any]) -> bool:
    for step in job.get("steps", []):
        if "store" in (step.get("with") or {}) or "METAFLOW_HITL_STORE" in (step.get("env") or {}):
            return True
    return False


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_store_jobs_get_oidc_credentials_and_nothing_else_does(path: Path) -> None:
    """docs/argo.md tells users to reach the S3 store through an OIDC role: the jobs that read
    or write the store ask for ``id-token: write`` (job level only) and assume the role with a
    SHA-pinned configure-aws-credentials step before the store is used; no static AWS keys
    (https://docs.github.com/actions/security-for-github-actions/security-hardening-your-deployments/configuring-openid-connect-in-amazon-web-services)."""
    data = _load(path)
    assert "id-token" not in (data.get("permissions") or {})
    text = path.read_text(encoding="utf-8")
    assert "AWS_ACCESS_KEY_ID" not in text
    assert "AWS_SECRET_ACCESS_KEY" not in text
    for job_id, job in (data.get("jobs") or {}).items():
        perms = job.get("permissions") or {}
        steps = job.get("steps", [])
        uses = [str(s.get("uses", "")) for s in steps]
        if not _touches_store(job):
            assert "id-token" not in perms, f"{path.name} {job_id}: id-token without the store"
            continue
        assert perms.get("id-token") == "write", f"{path.name} {job_id}: no id-token: write"
        aws = [i for i, u in enumerate(uses) if u.startswith(AWS_CREDENTIALS)]
        assert aws, f"{path.name} {job_id}: no configure-aws-credentials step"
        assert SHA.match(uses[aws[0]]), uses[aws[0]]
        first_store = next(i for i, s in enumerate(steps) if _touches_store({"steps": [s]}))
        assert aws[0] < first_store
        assert "role-to-assume" in (steps[aws[0]].get("with") or {})
