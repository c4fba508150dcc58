"""Approval store adapters, and :func:`open_store` to pick one from a location string."""

from __future__ import annotations

import os
from pathlib import Path

from metaflow_hitl.errors import ConfigError
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.stores.local import LocalApprovalStore

__all__ = ["STORE_DIRNAME", "LocalApprovalStore", "open_store", "store_for_datastore_root"]

#: The folder, beside Metaflow's flows in a datastore root, that holds the gates.
STORE_DIRNAME = "_hitl"


def store_for_datastore_root(datastore_root: str) -> ApprovalStore:
    """The store that lives under a Metaflow datastore root (``.../.metaflow``)."""
    return open_store(os.path.join(datastore_root, STORE_DIRNAME))


def open_store(location: str) -> ApprovalStore:
    """Open a store from ``location``.

    Parameters
    ----------
    location
        A directory (``/path/.metaflow/_hitl``) or ``file://`` URL for the local store, or
        ``s3://bucket/prefix`` for the S3 store (needs the ``[s3]`` extra).

    Raises
    ------
    ConfigError
        For a location this release cannot open.
    """
    text = str(location).strip()
    if text.startswith("file://"):
        text = text[len("file://") :]
    if text.startswith("s3://"):
        return _open_s3(text)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigError(
            f"store {location!r}: the {scheme}:// store is not supported by this release; "
            "use a local directory."
        )
    if not text:
        raise ConfigError("the store location is empty; pass --store PATH.")
    return LocalApprovalStore(Path(text).expanduser())


def _open_s3(url: str) -> ApprovalStore:
    try:
        import boto3  # noqa: F401 - checked here so the error names the fix
    except ImportError:
        raise ConfigError(
            f"store {url!r} needs boto3, which is not installed.",
            hint="pip install 'metaflow-hitl[s3]'",
        ) from None
    from metaflow_hitl.stores.s3 import S3ApprovalStore, split_s3_url

    bucket, prefix = split_s3_url(url)
    return S3ApprovalStore(bucket, prefix)
