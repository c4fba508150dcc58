"""The GitHub Action's world for the contract tests: :class:`Env` and what it needs.

Not a test module: the ``env`` fixture that makes an :class:`Env` is in
``tests/contract/conftest.py``; test modules import :data:`SKIPS`, :data:`REPO` and :class:`Env`
from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import open_gate
from metaflow_hitl.github.review_backend import GitHubReviewBackend
from metaflow_hitl.records import Request
from metaflow_hitl.render.documents import render_approval_file
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now
from tests.fakes import webhooks
from tests.fakes.github import SKIP_REASON, SPEC_FILE, FakeGitHub
from tests.fakes.published import open_published

#: The skips of every test that drives FakeGitHub with webhook payloads.
SKIPS = [
    pytest.mark.skipif(not SPEC_FILE.is_file(), reason=SKIP_REASON),
    pytest.mark.skipif(not webhooks.SCHEMA_FILE.is_file(), reason=webhooks.SKIP_REASON),
]

REPO = "acme/approvals"


@dataclass
class Env:
    gh: FakeGitHub
    store: LocalApprovalStore
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    gates: dict[str, tuple[Request, int]] = field(default_factory=dict)

    # -- GitHub side ----------------------------------------------------------------------
    def api(self, path: str, token: str | None = None) -> Any:
        headers = {"Authorization": f"token {token or self.gh.token}"}
        answer = requests.get(f"{self.gh.url}/repos/{REPO}/{path}", headers=headers, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def open(
        self,
        step: str = "gate",
        *,
        mode: str = "pr",
        started_by: str = "dave",
        run: str = "1732",
        origin: dict[str, str] | None = None,
        **options: Any,
    ) -> tuple[Request, int]:
        """Open a gate reviewed on a page of the fake; with ``origin`` (``workflow``,
        ``namespace``) it is an Argo gate, as a run on Argo records it."""
        options.setdefault("input_schema", {"target": "str"})
        spec = GateSpec.from_options(message="Deploy model v3?", **options)
        request = spec.request_for(
            GateId("TrainFlow", run, step),
            message="Deploy model v3?",
            started_by=started_by,
            runtime="argo-workflows" if origin else "local",
            origin=origin,
            now=utc_now(),
            store=self.store.location,
            review={"backend": "github", "repo": REPO, "mode": mode, "api_url": self.gh.url},
        )
        request, _ = open_gate(self.store, request)
        backend = GitHubReviewBackend(REPO, mode=mode, api_url=self.gh.url, token=self.gh.token)
        refs = open_published(backend, self.store, request, render_approval_file(request))
        number = int(refs["number"] or 0)
        self.gates[step] = (request, number)
        return request, number

    def as_user(self, login: str, method: str, path: str, body: Any = None) -> Any:
        """``login`` calls the API (``path`` under the review repo), as an attacker or a
        reviewer would from their own account; returns the answer's JSON (None for 204)."""
        token = f"t-{login}"
        self.gh.add_token(token, login)
        answer = requests.request(
            method,
            f"{self.gh.url}/repos/{REPO}/{path}",
            headers={"Authorization": f"token {token}"},
            json=body,
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def merge(self, number: int, login: str) -> None:
        self.as_user(login, "PUT", f"pulls/{number}/merge", {"merge_method": "merge"})

    def close(self, number: int, login: str) -> None:
        self.as_user(login, "PATCH", f"pulls/{number}", {"state": "closed"})

    def pull(self, number: int) -> dict[str, Any]:
        return self.api(f"pulls/{number}")

    def comment(self, number: int, login: str, body: str, *, edited: bool = False) -> dict:
        cid = self.gh.add_comment(REPO, number, login, body)
        if edited:
            for c in self.gh.repo(REPO).comments:
                if c.id == cid:
                    c.updated_at = c.updated_at + timedelta(minutes=1)
        return next(c for c in self.api(f"issues/{number}/comments") if c["id"] == cid)

    def review(self, number: int, login: str, state: str = "APPROVED", **kw: Any) -> dict:
        rid = self.gh.add_review(REPO, number, login, state, **kw)
        return next(r for r in self.api(f"pulls/{number}/reviews") if r["id"] == rid)

    # -- events -----------------------------------------------------------------------------
    def comment_event(self, number: int, login: str, body: str, **kw: Any) -> tuple[str, dict]:
        edited = kw.pop("action", "created") == "edited"
        comment = self.comment(number, login, body, edited=edited)
        issue = self.api(f"issues/{number}")
        action = "edited" if edited else "created"
        payload = webhooks.comment_payload(REPO, issue, comment, action=action, **kw)
        return "issue_comment", payload

    def review_event(self, number: int, login: str, state: str = "approved", **kw: Any):
        review = self.review(number, login, state.upper(), **kw)
        payload = webhooks.review_payload(REPO, self.pull(number), review, state=state)
        return "pull_request_review", payload

    def closed_event(self, number: int, login: str, *, merged: bool, **kw: Any):
        pull = self.pull(number)
        return "pull_request", webhooks.closed_payload(
            REPO, pull, sender=login, merged=merged, **kw
        )

    def run(self, event: tuple[str, dict], *, extra_env: dict[str, str] | None = None):
        """``metaflow-hitl handle-event`` in-process (click's CliRunner)."""
        from metaflow._vendor.click.testing import CliRunner

        from metaflow_hitl.cli.main import main

        name, payload = event
        path = self.tmp / f"event-{len(list(self.tmp.glob('event-*')))}.json"
        path.write_text(json.dumps(payload), encoding="utf-8")
        out = self.tmp / "github_output"
        out.write_text("")
        for key, value in (extra_env or {}).items():
            self.monkeypatch.setenv(key, value)
        self.monkeypatch.setenv("GITHUB_OUTPUT", str(out))
        result = CliRunner().invoke(
            main, ["handle-event", "--event-name", name, "--event-path", str(path)]
        )
        outputs = parse_outputs(out.read_text())
        return result, outputs

    def replies(self, number: int) -> list[str]:
        return [
            c["body"]
            for c in self.api(f"issues/{number}/comments")
            if c["user"]["login"] == "hitl-bot"
        ]


def parse_outputs(text: str) -> dict[str, str]:
    """Read ``$GITHUB_OUTPUT`` written in the ``name<<delimiter`` form."""
    outputs, lines = {}, iter(text.splitlines())
    for line in lines:
        name, _, delimiter = line.partition("<<")
        assert delimiter.startswith("ghadelimiter_"), line
        value = []
        for inner in lines:
            if inner == delimiter:
                break
            value.append(inner)
        outputs[name] = "\n".join(value)
    return outputs
