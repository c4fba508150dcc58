"""Fixtures shared by the contract tests (the ``contract`` tier).

``moto_s3``  one moto S3 server on loopback for the session (skips without ``moto[server]``).
``kind``     each :data:`~tests.contract.store_kinds.STORE_KINDS` entry in turn.
``store``    a new, empty store of that kind.
``env``      the GitHub Action's world: a FakeGitHub with an org, a review repo and accounts,
             a local store, and the environment ``metaflow-hitl handle-event`` reads
             (:class:`~tests.contract.github_env.Env`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now
from tests.contract.github_env import REPO, Env
from tests.contract.store_kinds import STORE_KINDS, StoreKind, require_conditional_writes
from tests.fakes.github import Clock, FakeGitHub
from tests.fakes.moto_s3 import serialised_moto_server


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """The endpoint URL of a moto S3 server on loopback, for the whole session."""
    pytest.importorskip("boto3")
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        pytest.skip("moto[server] is not installed")
    with serialised_moto_server() as endpoint:
        require_conditional_writes(endpoint)
        yield endpoint


@pytest.fixture(params=STORE_KINDS, ids=[k.name for k in STORE_KINDS])
def kind(request: pytest.FixtureRequest) -> StoreKind:
    return request.param


@pytest.fixture
def store(kind: StoreKind, tmp_path: Path, request: pytest.FixtureRequest) -> ApprovalStore:
    made = kind.make(tmp_path, **{name: request.getfixturevalue(name) for name in kind.needs})
    assert isinstance(made, ApprovalStore)
    return made


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    for name in ("GITHUB_TOKEN", "GITHUB_API_URL", "METAFLOW_HITL_REVIEW"):
        monkeypatch.delenv(name, raising=False)
    for name in ("METAFLOW_HITL_REQUIRE_MERGE", "METAFLOW_HITL_ALLOW_EDITS"):
        monkeypatch.delenv(name, raising=False)
    with FakeGitHub() as gh:
        gh.world.clock = Clock(utc_now() - timedelta(minutes=5))
        gh.add_org("acme")
        gh.add_repo(REPO, files={"README.md": "# approvals\n"})
        gh.add_collaborator(REPO, "hitl-bot", "write")
        for login, role in [("alice", "write"), ("bob", "maintain"), ("carol", "write")]:
            gh.add_collaborator(REPO, login, role)
        gh.add_collaborator(REPO, "dave", "write")  # started the run
        gh.add_collaborator(REPO, "reader", "read")
        gh.add_user("mallory")
        gh.add_team("acme", "ml-leads", members=["bob"])
        store = LocalApprovalStore(tmp_path / "store")
        monkeypatch.setenv("METAFLOW_HITL_STORE", str(store.location))
        monkeypatch.setenv("METAFLOW_HITL_GITHUB_TOKEN", gh.token)
        monkeypatch.setenv("METAFLOW_HITL_GITHUB_API_URL", gh.url)
        yield Env(gh=gh, store=store, tmp=tmp_path, monkeypatch=monkeypatch)
