"""``deploy/argo/`` (the in-cluster resumer) validated against Kubernetes' schemas.

The schemas (``tests/specs/k8s/schemas.json``) are generated from the official Kubernetes
Python client's models, which are generated from the Kubernetes OpenAPI description, and made
strict (unknown fields refused, required fields required); the test checks they are current.
Beyond the schema: the Role grants exactly ``get`` and ``update`` on ``workflows.argoproj.io``
(what :class:`~metaflow_hitl.argo.k8s_resumer.KubernetesResumer` calls), the RoleBinding and
the Deployment name the same ServiceAccount, and the container's arguments are accepted by
the real ``metaflow-hitl sync``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests" / "specs" / "k8s" / "schemas.json"
MANIFESTS = sorted((ROOT / "deploy" / "argo").glob("*.yaml"))


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in MANIFESTS:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _validator(kind_key: str) -> Draft7Validator:
    schemas = json.loads(SCHEMAS.read_text())
    model = schemas["kinds"][kind_key]
    return Draft7Validator(
        {"$ref": f"#/definitions/{model}", "definitions": schemas["definitions"]}
    )


def test_the_schemas_are_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "k8s_schema_generate", SCHEMAS.parent / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generate = module.generate
    assert json.loads(SCHEMAS.read_text()) == json.loads(json.dumps(generate()))


def test_every_manifest_is_a_valid_kubernetes_object() -> None:
    docs = _documents()
    assert {d["kind"] for d in docs} == {"ServiceAccount", "Role", "RoleBinding", "Deployment"}
    for doc in docs:
        errors = sorted(_validator(f"{doc['apiVersion']}/{doc['kind']}").iter_errors(doc), key=str)
        assert not errors, [f"{doc['kind']} {list(e.path)}: {e.message}" for e in errors[:5]]


def test_the_strict_schema_refuses_a_misspelt_field() -> None:
    (deployment,) = [d for d in _documents() if d["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["serviceAcountName"] = "typo"
    assert list(_validator("apps/v1/Deployment").iter_errors(deployment))


def test_rbac_is_least_privilege_and_consistent() -> None:
    docs = {d["kind"]: d for d in _documents()}
    assert docs["Role"]["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["get", "update"]}
    ]
    account = docs["ServiceAccount"]["metadata"]["name"]
    namespace = docs["ServiceAccount"]["metadata"]["namespace"]
    assert docs["RoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": namespace}
    ]
    assert docs["RoleBinding"]["roleRef"]["name"] == docs["Role"]["metadata"]["name"]
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account
    for kind in docs.values():
        assert kind["metadata"]["namespace"] == namespace


def test_the_container_runs_a_command_that_exists() -> None:
    (deployment,) = [d for d in _documents() if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["metaflow-hitl"]
    args = container["args"]
    assert args[:2] == ["sync", "--watch"]
    console = Path(sys.executable).with_name("metaflow-hitl")
    shown = subprocess.run(
        [str(console), "sync", "--help"], capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    for option in (a for a in args if a.startswith("--")):
        assert option in shown.stdout
    env = {e["name"] for e in container["env"]}
    assert {"METAFLOW_HITL_STORE", "METAFLOW_HITL_ARGO_NAMESPACE"} <= env
    assert "METAFLOW_HITL_ARGO_SERVER" not in env  # in-cluster: the Kubernetes API
