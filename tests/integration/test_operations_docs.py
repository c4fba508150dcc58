"""``docs/operations.md`` and ``docs/troubleshooting.md`` say what is true.

- The IAM documents parse, and their resources are the S3 store's own keys
  (``S3ApprovalStore._key``, layout v1) for the documented store URL.
- On a moto server with IAM checks switched on (``/moto-api/reset-auth``; moto evaluates the
  action and resource of each S3 request, ``moto/core/authorization.py``
  ``_authenticate_and_authorize_s3_action``, but not the ``s3:prefix`` condition, which is
  therefore checked here against the store's listing prefixes), each role's documented policy
  lets its own work through and refuses the rest: a flow or the Action records a whole gate;
  the resumer reads, writes the index, runs the documented ``sync`` command, and cannot decide.
- The OIDC trust policy admits the environment the example workflows use, in the subject
  format GitHub documents for jobs with an environment, ``repo:<owner>/<repo>:environment:
  <name>`` (https://docs.github.com/en/actions/reference/security/oidc).
- Every shell command of both pages runs here (``pip uninstall`` runs in the wheel's own venv,
  ``tests/integration/test_packaging.py``), and the ignore reasons the troubleshooting table
  quotes are the handler's own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import decide
from metaflow_hitl.records import Actor
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.stores.s3 import S3ApprovalStore, split_s3_url
from metaflow_hitl.timestamps import utc_now

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
TROUBLESHOOTING = ROOT / "docs" / "troubleshooting.md"
STORE_URL = "s3://acme-metaflow/metaflow/_hitl"  # the store the page's examples use
BIN = Path(sys.executable).parent


def bob() -> Actor:
    return Actor(login="bob", channel="cli", at=utc_now())


def fenced(path: Path, lang: str) -> list[str]:
    """The bodies of the page's fenced blocks in ``lang`` (indented blocks included)."""
    text = path.read_text()
    return [
        "\n".join(line[len(indent) :] for line in body.splitlines())
        for indent, body in re.findall(rf"(?ms)^( *)```{lang}\n(.*?)^\1```", text)
    ]


def commands(path: Path) -> list[str]:
    return [
        line.strip()
        for block in fenced(path, "bash")
        for line in block.splitlines()
        if line.strip()
    ]


def policies() -> dict[str, dict[str, Any]]:
    """The page's JSON documents by the Sids of their statements (``"HitlStoreList+..."``)."""
    docs = [json.loads(block) for block in fenced(OPERATIONS, "json")]
    return {"+".join(s["Sid"] for s in d["Statement"]): d for d in docs}


def store_keys() -> S3ApprovalStore:
    bucket, prefix = split_s3_url(STORE_URL)
    return S3ApprovalStore(bucket, prefix, client=object())


def test_the_policies_name_the_stores_own_keys():
    store = store_keys()
    bucket_arn = f"arn:aws:s3:::{store.bucket}"
    records = f"{bucket_arn}/{store._key()}/*"
    index = f"{bucket_arn}/{store._key('index')}/*"
    docs = policies()
    assert set(docs) == {
        "HitlStoreList+HitlStoreRecords",
        "HitlStoreList+HitlStoreRead+HitlIndexWrite",
        "HitlActionOidc",
    }
    for name, doc in docs.items():
        assert doc["Version"] == "2012-10-17", name
    flows = {s["Sid"]: s for s in docs["HitlStoreList+HitlStoreRecords"]["Statement"]}
    resumer = {s["Sid"]: s for s in docs["HitlStoreList+HitlStoreRead+HitlIndexWrite"]["Statement"]}
    for listing in (flows["HitlStoreList"], resumer["HitlStoreList"]):
        assert listing["Action"] == "s3:ListBucket"
        assert listing["Resource"] == bucket_arn
        (pattern,) = listing["Condition"]["StringLike"]["s3:prefix"]
        assert pattern == f"{store._key()}/*"
        # every prefix the store lists under matches it (moto does not evaluate the condition)
        gate = GateId("F", "1", "s")
        for prefix in (
            store._key("gates") + "/",
            store._key("pending") + "/",
            store._key("index", "decided") + "/",
            store._gate_key(gate, "votes") + "/",
            store._gate_key(gate, "reminders") + "/",
            store._gate_key(gate, "page-changes") + "/",
        ):
            assert re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), prefix), prefix
    assert flows["HitlStoreRecords"]["Resource"] == records
    assert sorted(flows["HitlStoreRecords"]["Action"]) == [
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:PutObject",
    ]
    assert resumer["HitlStoreRead"] == {
        "Sid": "HitlStoreRead",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": records,
    }
    assert resumer["HitlIndexWrite"]["Resource"] == index
    assert sorted(resumer["HitlIndexWrite"]["Action"]) == ["s3:DeleteObject", "s3:PutObject"]


def test_the_trust_policy_admits_the_example_workflows_environment_only():
    (statement,) = policies()["HitlActionOidc"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(
        ":oidc-provider/token.actions.githubusercontent.com"
    )
    condition = statement["Condition"]["StringEquals"]  # exact match: no wildcard subject
    assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    environments = set()
    for name in ("hitl-comments.yml", "hitl-review-decide.yml"):
        workflow = yaml.safe_load((ROOT / "github_action" / name).read_text())
        environments |= {
            job["environment"] for job in workflow["jobs"].values() if "environment" in job
        }
    assert environments == {"metaflow-hitl"}
    assert condition["token.actions.githubusercontent.com:sub"] == (
        "repo:acme/approvals:environment:metaflow-hitl"
    )


# -- the policies on S3 with IAM checks on --------------------------------------------------


def _request(gate: GateId, store: str) -> Any:
    spec = GateSpec.from_options(message="ship?", timeout="1h")
    return spec.request_for(
        gate, message="ship?", started_by="alice", runtime="local", now=utc_now(), store=store
    )


@pytest.fixture(scope="module")
def iam_s3():
    """A moto server whose S3 checks each request against the documented policies: yields
    the endpoint and the credentials of a ``flows`` user and a ``resumer`` user."""
    import boto3
    import requests

    from tests.fakes.moto_s3 import MOTO_CREDENTIALS, moto_server

    docs = policies()
    with moto_server("acme-metaflow") as endpoint:
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        users = {}
        for user, doc in (
            ("flows", docs["HitlStoreList+HitlStoreRecords"]),
            ("resumer", docs["HitlStoreList+HitlStoreRead+HitlIndexWrite"]),
        ):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName=user, PolicyDocument=json.dumps(doc))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            users[user] = {
                **MOTO_CREDENTIALS,
                "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            }
        # from here on every request is authenticated and authorised
        done = requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
        assert done.status_code == 200, done.text
        yield endpoint, users


def _client(endpoint: str, creds: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=creds["AWS_DEFAULT_REGION"],
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
    )


def _store(endpoint: str, creds: dict[str, str]) -> S3ApprovalStore:
    bucket, prefix = split_s3_url(STORE_URL)
    return S3ApprovalStore(bucket, prefix, client=_client(endpoint, creds))


def test_the_flows_policy_records_a_whole_gate_and_nothing_outside(iam_s3):
    from botocore.exceptions import ClientError

    endpoint, users = iam_s3
    store = _store(endpoint, users["flows"])
    gate = GateId("Ops", "1", "gate")
    assert store.create_request(_request(gate, STORE_URL))
    assert [g for g in store.list_gates(pending_only=True)] == [gate]
    result = decide(store, gate, actor=bob(), intent="approve")
    assert result.decision is not None
    assert result.decision.outcome == "approved"
    assert store.get_decision(gate) is not None
    assert list(store.list_gates(pending_only=True)) == []  # the marker was deleted
    assert store.create_index_segment("0" * 64 + ".json.gz", b"x")
    store.delete_index_segment("0" * 64 + ".json.gz")
    client = _client(endpoint, users["flows"])
    with pytest.raises(ClientError, match="AccessDenied"):
        client.put_object(Bucket="acme-metaflow", Key="metaflow/data/x", Body=b"x")
    with pytest.raises(ClientError, match="AccessDenied"):
        client.get_object(Bucket="acme-metaflow", Key="metaflow/_hitl/v2/x")


def test_the_resumer_policy_reads_syncs_and_cannot_decide(iam_s3, tmp_path):
    from metaflow_hitl.errors import StoreError

    endpoint, users = iam_s3
    flows = _store(endpoint, users["flows"])
    decided, pending = GateId("Ops", "2", "gate"), GateId("Ops", "3", "gate")
    for gate in (decided, pending):
        flows.create_request(_request(gate, STORE_URL))
    decide(
        flows,
        decided,
        actor=bob(),
        intent="reject",
        reason="no",
    )
    resumer = _store(endpoint, users["resumer"])
    assert resumer.get_decision(decided) is not None
    assert pending in set(resumer.list_gates(pending_only=True))
    with pytest.raises(StoreError):
        decide(
            resumer,
            pending,
            actor=bob(),
            intent="approve",
        )
    assert flows.get_decision(pending) is None
    # the documented CronJob command, with the resumer's credentials (it writes the index)
    (sync,) = [c for c in commands(OPERATIONS) if " sync --since 7d" in c]
    env = {
        **os.environ,
        **users["resumer"],
        "METAFLOW_S3_ENDPOINT_URL": endpoint,
        "METAFLOW_HITL_STORE": STORE_URL,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    done = _sh(sync, env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Argo gate(s) resumed" in done.stdout
    assert "warn" not in done.stderr.lower(), done.stderr  # it could write the index
    assert resumer.list_index_segments(), "sync wrote no index segment"


# -- every command of both pages ------------------------------------------------------------


def _sh(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; {command}"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def local_store(tmp_path: Path) -> dict[str, Any]:
    """A local store with an old decided gate, a new decided gate and a pending gate."""
    root = tmp_path / "store"
    store = LocalApprovalStore(root)
    old, new, pending = (GateId("Ops", str(n), "gate") for n in (10, 11, 12))
    for gate in (old, new, pending):
        store.create_request(_request(gate, str(root)))
    for gate in (old, new):
        decide(store, gate, actor=bob(), intent="approve")
    decision = root / "v1" / "gates" / "Ops" / "10" / "gate" / "decision.json"
    long_ago = time.time() - timedelta(days=500).total_seconds()
    os.utime(decision, (long_ago, long_ago))
    env = {
        **os.environ,
        "METAFLOW_HITL_STORE": str(root),
        "GATE": str(new),
        "EVENT_NAME": "pull_request_review",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    (tmp_path / "event.json").write_text(
        json.dumps(
            {
                "action": "submitted",
                "review": {"id": 7, "state": "commented", "user": {"login": "bob"}},
                "pull_request": {"number": 3},
                "repository": {"full_name": "acme/approvals"},
                "sender": {"login": "bob"},
            }
        )
    )
    return {"root": root, "env": env, "old": old, "new": new, "pending": pending}


#: Each command of the pages (a distinctive part of it) and what running it must show.
LOCAL = {
    "metaflow-hitl --version": "metaflow-hitl",
    "list --all": "Ops/11/gate",
    "audit --source store": "Ops/11/gate",
    '"$METAFLOW_HITL_STORE" list': "Ops/12/gate",
    'show "$GATE" --json': '"outcome"',
    'sync "$GATE"': "decision(s) in their review repos",
    " sync --since 1d": "decision(s) in their review repos",
    "handle-event --event-name": "ignored: a review that only comments is not a vote",
}
ELSEWHERE = {
    " sync --since 7d": "test_the_resumer_policy_reads_syncs_and_cannot_decide",
    "pip uninstall -y metaflow-hitl": "test_packaging.py::test_wheel_installs_...",
    "-mtime +400": "test_the_retention_command_deletes_old_decided_gates_only",
}


def _which(command: str) -> str:
    found = [k for k in (*LOCAL, *ELSEWHERE) if k in command]
    assert found, f"no test runs this documented command: {command}"
    return max(found, key=len)


def test_every_documented_command_is_exercised():
    for command in commands(OPERATIONS) + commands(TROUBLESHOOTING):
        _which(command)


@pytest.mark.parametrize("page", [OPERATIONS, TROUBLESHOOTING], ids=lambda p: p.name)
def test_the_pages_metaflow_hitl_commands_run(page, local_store, tmp_path):
    ran = 0
    for command in commands(page):
        key = _which(command)
        if key not in LOCAL:
            continue
        done = _sh(command, local_store["env"], tmp_path)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert LOCAL[key] in done.stdout, (command, done.stdout)
        ran += 1
    assert ran >= 3


def test_the_retention_command_deletes_old_decided_gates_only(local_store, tmp_path):
    (prune,) = [c for c in commands(OPERATIONS) if "-mtime +400" in c]
    env, root = local_store["env"], local_store["root"]
    listed = _sh('metaflow-hitl --store "$METAFLOW_HITL_STORE" list --all --json', env, tmp_path)
    assert listed.returncode == 0, listed.stderr  # builds the index of decided gates first
    done = _sh(prune, env, tmp_path)
    assert done.returncode == 0, done.stderr
    gates = root / "v1" / "gates" / "Ops"
    assert not (gates / "10").joinpath("gate").exists()
    assert (gates / "11" / "gate" / "decision.json").exists()
    assert (gates / "12" / "gate" / "request.json").exists()
    for command, gone in (("list --all", "Ops/10/gate"), ("audit --source store", "Ops/10/gate")):
        done = _sh(f'metaflow-hitl --store "$METAFLOW_HITL_STORE" {command}', env, tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        assert gone not in done.stdout, done.stdout
        assert "Ops/11/gate" in done.stdout, done.stdout


def test_the_ignore_reasons_quoted_are_the_handlers():
    handler = (ROOT / "metaflow_hitl" / "github" / "handler.py").read_text()
    events = (ROOT / "metaflow_hitl" / "github" / "events.py").read_text()
    source = handler + events
    table = TROUBLESHOOTING.read_text().split("| the reason says |", 1)[1].split("\n\n", 1)[0]
    quoted = re.findall(r"^\| (.+?) \|", table, flags=re.M)[1:]
    assert len(quoted) >= 6
    for cell in quoted:
        for phrase in re.findall(r"`([^`]+)`", cell):
            for piece in re.split(r"\.\.\.|LOGIN|#N|N\b", phrase):
                piece = piece.strip(" ;:")
                if len(piece) > 3:
                    assert piece in source, (phrase, piece)


def test_the_pages_are_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    for page in ("docs/operations.md", "docs/troubleshooting.md"):
        assert f"`{page}`" in readme, page
    assert shutil.which("bash")
