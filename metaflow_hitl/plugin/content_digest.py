"""The Metaflow side of a gate's content digest (:mod:`metaflow_hitl.content`).

Metaflow stores every artifact content-addressed: ``TaskDataStore.save_artifacts`` records
``self._objects[name] = result.key`` (metaflow/datastore/task_datastore.py, line 496 at
Netflix/metaflow d2dd7f953), the key being ``sha1(blob).hexdigest()`` of the serialized
artifact (metaflow/datastore/content_addressed_store.py, line 98), and
``TaskDataStore.items()`` returns those ``(name, key)`` pairs (task_datastore.py, line 1031).
So the hashes are read, never recomputed, and equal whenever an artifact's bytes are equal
(a resume that clones unchanged upstream tasks keeps them). The code is the code package's
SHA, which Metaflow passes to remote tasks as ``METAFLOW_CODE_SHA``
(metaflow/plugins/argo/argo_workflows.py, line 3061), else the flow file's SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

from metaflow_hitl.content import Content, sha256_text

__all__ = ["code_digest", "content_of"]


def code_digest(flow_file: str) -> str:
    """``code-package:<sha>`` when running from a code package, else the flow file's
    ``flow-file:sha256:<hex>``."""
    package = os.environ.get("METAFLOW_CODE_SHA")
    if package:
        return f"code-package:{package}"
    digest = hashlib.sha256()
    with open(flow_file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"flow-file:sha256:{digest.hexdigest()}"


def content_of(inputs: Iterable[Any], *, join: bool, flow_file: str, message: str) -> Content:
    """The content of a gate over its task's input datastores (every input of a join,
    named ``<step>.<artifact>``); Metaflow's own ``_``-prefixed artifacts are left out."""
    artifacts: dict[str, str] = {}
    for ds in inputs or []:
        for name, key in ds.items():
            if str(name).startswith("_"):
                continue
            artifacts[f"{ds.step_name}.{name}" if join else str(name)] = f"sha1:{key}"
    return Content(artifacts=artifacts, code=code_digest(flow_file), message=sha256_text(message))
