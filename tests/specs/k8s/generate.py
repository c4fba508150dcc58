"""Generate strict JSON Schemas of the Kubernetes kinds ``deploy/argo/`` uses.

Source: the official Kubernetes Python client's models (``kubernetes.client.models``), which
are generated from the Kubernetes OpenAPI description: each model's ``openapi_types`` and
``attribute_map`` give its fields and their types, and a field is required when its setter
refuses ``None`` ("must not be `None`"). Unknown fields are refused
(``additionalProperties: false``), ``IntOrString`` and ``Quantity`` take strings or numbers.

Run ``python tests/specs/k8s/generate.py`` to rewrite ``schemas.json`` (the client version
is recorded in it); ``tests/integration/test_argo_deploy_manifests.py`` checks that it is
current for the installed client.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

KINDS = {
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding",
    ("apps/v1", "Deployment"): "V1Deployment",
}
OUT = Path(__file__).with_name("schemas.json")
_SCALARS = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string"},
    "date": {"type": "string"},
    "object": {},
}


def _type(name: str, defs: dict[str, Any]) -> dict[str, Any]:
    if name in _SCALARS:
        return dict(_SCALARS[name])
    m = re.fullmatch(r"list\[(.+)\]", name)
    if m:
        return {"type": "array", "items": _type(m.group(1), defs)}
    m = re.fullmatch(r"dict\(str, (.+)\)|dict\[str, (.+)\]", name)
    if m:
        return {"type": "object", "additionalProperties": _type(m.group(1) or m.group(2), defs)}
    _model(name, defs)
    return {"$ref": f"#/definitions/{name}"}


def _model(name: str, defs: dict[str, Any]) -> None:
    import kubernetes.client as k8s

    if name in defs:
        return
    cls = getattr(k8s, name)
    defs[name] = {}
    props, required = {}, []
    for attr, kind in cls.openapi_types.items():
        key = cls.attribute_map[attr]
        if attr in ("int_or_string",) or kind == "object":
            props[key] = {"type": ["string", "integer", "number", "object", "array", "boolean"]}
        else:
            props[key] = _type(kind, defs)
        setter = getattr(cls, attr).fset
        if setter is not None and "must not be `None`" in inspect.getsource(setter):
            required.append(key)
    defs[name] = {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def generate() -> dict[str, Any]:
    import kubernetes

    defs: dict[str, Any] = {}
    kinds = {}
    for (api_version, kind), model in KINDS.items():
        _model(model, defs)
        kinds[f"{api_version}/{kind}"] = model
    # Quantities (resources) and IntOrString fields are typed str by the client, but
    # Kubernetes takes numbers there too; ports are ints or names.
    return {
        "source": f"kubernetes Python client {kubernetes.__version__} (kubernetes.client.models)",
        "kinds": kinds,
        "definitions": defs,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(generate(), indent=1, sort_keys=True) + "\n")
