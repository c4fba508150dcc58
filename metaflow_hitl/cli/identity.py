"""Who is running the CLI: ``--as``, then ``METAFLOW_HITL_ACTOR``, git config, the OS user.

CLI identities are *asserted*, not authenticated: anyone who can write the store can claim
any name. Records keep where the name came from (``source``) so the audit trail says so;
authenticated identities come from GitHub.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess

from metaflow_hitl.errors import ConfigError

__all__ = ["resolve_actor_login"]

_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62})")


def _git_config(key: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run(
            [git, "config", "--get", key], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip()
    return value or None


def resolve_actor_login(flag: str | None) -> tuple[str, str]:
    """Return ``(login, source)`` for the person running the CLI.

    Raises
    ------
    ConfigError
        If the chosen login is not a plausible user name.
    """
    candidates = [
        (flag, "flag"),
        (os.environ.get("METAFLOW_HITL_ACTOR"), "env"),
    ]
    for value, source in candidates:
        if value:
            return _checked(value, source), source
    git_user = _git_config("github.user")
    if git_user:
        return _checked(git_user, "git-config"), "git-config"
    return _checked(getpass.getuser(), "os-user"), "os-user"


def _checked(login: str, source: str) -> str:
    login = login.strip().lstrip("@")
    if not _LOGIN.fullmatch(login):
        raise ConfigError(
            f"{login!r} (from {source}) is not a valid login; use letters, digits, '.', '_' "
            "and '-', e.g. --as alice."
        )
    return login
