"""Metaflow users -> GitHub logins (``METAFLOW_HITL_IDENTITY_MAP``).

Self-approval compares the person approving with the person who started the run. On GitHub
the approver is a GitHub login; the starter is a Metaflow user name (``current.username``:
``METAFLOW_USER``, else the OS user). They are different name spaces: ``alice`` on a laptop
may be ``alice-smith`` on GitHub. The identity map says who is who; the request records the
starter in both forms (``starter``), and :func:`metaflow_hitl.policy.check_decider` refuses a
self-approval under either name.

The setting is a JSON object (``{"alice": "alice-smith"}``) or the path of a file holding one.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from metaflow_hitl.errors import ConfigError

__all__ = ["ENV", "github_login_for", "parse_identity_map", "starter_record"]

ENV = "METAFLOW_HITL_IDENTITY_MAP"
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")


def parse_identity_map(value: str | None) -> dict[str, str]:
    """Parse the setting: a JSON object, or a path to a JSON file with one.

    Returns
    -------
    dict
        Lower-cased Metaflow user -> GitHub login.

    Raises
    ------
    ConfigError
        For unreadable JSON, a value that is not a GitHub login, or a missing file.
    """
    if value is None or not str(value).strip():
        return {}
    text = str(value).strip()
    where = ENV
    if not text.startswith("{"):
        try:
            with open(os.path.expanduser(text), encoding="utf-8") as handle:
                text, where = handle.read(), f"{ENV} file {value}"
        except OSError as exc:
            raise ConfigError(
                f"{ENV}={value!r}: not a JSON object, nor a readable file ({exc})."
            ) from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where} is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a JSON object of Metaflow user -> GitHub login.")
    out: dict[str, str] = {}
    for user, login in data.items():
        name = str(login).strip().lstrip("@")
        if not isinstance(login, str) or not _LOGIN.fullmatch(name):
            raise ConfigError(f"{where}: {login!r} (for {user!r}) is not a GitHub login.")
        out[str(user).strip().lower()] = name
    return out


def github_login_for(user: str | None, mapping: dict[str, str]) -> str | None:
    """The GitHub login of Metaflow user ``user``, or ``None`` when the map has none."""
    if not user:
        return None
    return mapping.get(user.strip().lower())


def starter_record(
    user: str | None, mapping: dict[str, str], *, kind: str = "human", source: str = "metaflow"
) -> dict[str, str | None]:
    """What a request records about who started the run (its ``starter`` field)."""
    return {
        "kind": kind,
        "metaflow": user or None,
        "github": github_login_for(user, mapping),
        "source": source,
    }
