"""Which review backend a gate uses, from ``review=``, ``METAFLOW_HITL_REVIEW`` or the default.

Accepted values:

* ``git:<remote>`` — any git remote: ``git:/srv/approvals.git``, ``git:file:///srv/a.git``,
  ``git:git://host/a.git``, ``git:https://host/a.git``, ``git:git@host:org/a.git``;
* ``github:<owner>/<repo>`` — a pull request per gate in a GitHub repository;
  ``github:<owner>/<repo>?mode=issue`` opens an issue instead. Options (query form):
  ``mode=pr|issue``, ``merge=merge|squash|rebase`` (how an approval is merged),
  ``api_url=https://HOST/api/v3`` (GitHub Enterprise Server). The API URL otherwise comes
  from ``METAFLOW_HITL_GITHUB_API_URL``, then ``GITHUB_API_URL``, else
  ``https://api.github.com``, and is recorded in the request. The token is read when the
  backend is used, from ``METAFLOW_HITL_GITHUB_TOKEN``, then ``GITHUB_TOKEN``; it is never
  recorded;
* ``none`` — no review repo: the store alone (``hitl`` CLI decisions only);
* unset — the local default: a bare git repo ``review.git`` inside the store
  (``.metaflow/_hitl/review.git``), created on first use, so the git audit trail works with
  no setup.

The resolved choice is written into each request (``request.review``), so every later
decider — CLI, console script, GitHub Action — uses the backend the gate was opened with.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from metaflow_hitl.errors import ConfigError
from metaflow_hitl.records import Request
from metaflow_hitl.review.redact import redact

__all__ = [
    "GITHUB_API_URL_ENVS",
    "GITHUB_TOKEN_ENVS",
    "backend_for_request",
    "backend_for_review",
    "github_api_url",
    "parse_review",
]

ENV = "METAFLOW_HITL_REVIEW"
#: Where the GitHub token is read from, first set wins.
GITHUB_TOKEN_ENVS = ("METAFLOW_HITL_GITHUB_TOKEN", "GITHUB_TOKEN")
#: Where the GitHub API URL is read from, first set wins (GitHub Enterprise Server).
GITHUB_API_URL_ENVS = ("METAFLOW_HITL_GITHUB_API_URL", "GITHUB_API_URL")
DEFAULT_GITHUB_API_URL = "https://api.github.com"
_GITHUB_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_GITHUB_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")
_GITHUB_OPTIONS = {"mode": ("pr", "issue"), "merge": ("merge", "squash", "rebase"), "api_url": ()}


def parse_review(value: str | None, *, local_store: str | None) -> dict[str, str | None]:
    """Resolve a ``review`` value into the settings recorded in the request.

    Parameters
    ----------
    value
        The decorator's ``review`` (``None`` falls back to ``METAFLOW_HITL_REVIEW``, then the
        local default).
    local_store
        The local store directory, home of the default review repo; ``None`` when the store
        is remote (:attr:`~metaflow_hitl.ports.ApprovalStore.is_remote`).

    Raises
    ------
    ConfigError
        For an unknown scheme, listing the accepted ones.
    """
    text = (value if value not in (None, "") else os.environ.get(ENV, "")) or ""
    text = str(text).strip()
    if not text:
        if local_store is None:
            return {"backend": "none"}
        return {"backend": "git", "location": os.path.join(local_store, "review.git")}
    if text == "none":
        return {"backend": "none"}
    scheme, _, rest = text.partition(":")
    if scheme == "git" and rest.strip():
        remote = rest.strip()
        if re.search(r"://[^/@\s]+@", remote) and not remote.startswith("ssh://"):
            raise ConfigError(
                f"review='git:{redact(remote)}' embeds credentials in the URL, which would be "
                "written into every request record. Use a git credential helper or ssh instead."
            )
        return {"backend": "git", "location": remote}
    if scheme == "github":
        return _parse_github(text, rest.strip())
    raise ConfigError(
        f"review={text!r} is not a review setting; use 'github:<owner>/<repo>' (e.g. "
        "'github:acme/approvals' or 'github:acme/approvals?mode=issue'), 'git:<remote>' (e.g. "
        "'git:/srv/approvals.git' or 'git:https://host/org/approvals.git') or 'none'."
    )


def _parse_github(text: str, rest: str) -> dict[str, str | None]:
    target, _, query = rest.partition("?")
    example = "e.g. review='github:acme/approvals' or 'github:acme/approvals?mode=issue'"
    if "://" in target or target.startswith(("github.com", "www.")):
        raise ConfigError(
            f"review={text!r}: name the repository as 'github:<owner>/<repo>', not a URL "
            f"({example}); for GitHub Enterprise Server add '?api_url=https://HOST/api/v3' "
            "or set METAFLOW_HITL_GITHUB_API_URL."
        )
    owner, _, repo = target.partition("/")
    if not (
        _GITHUB_OWNER.fullmatch(owner)
        and _GITHUB_REPO.fullmatch(repo)
        and repo not in (".", "..")
        and not repo.endswith(".git")
    ):
        raise ConfigError(
            f"review={text!r}: {target!r} is not a GitHub repository as '<owner>/<repo>' "
            f"(letters, digits, '-' in the owner; also '.' and '_' in the repo; no '.git'); "
            f"{example}."
        )
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _GITHUB_OPTIONS:
            raise ConfigError(
                f"review={text!r}: unknown option {key!r}; the options are "
                f"{', '.join(_GITHUB_OPTIONS)} (e.g. '?mode=issue')."
            )
        if key in options:
            raise ConfigError(f"review={text!r}: option {key!r} is given twice.")
        choices = _GITHUB_OPTIONS[key]
        if choices and value not in choices:
            raise ConfigError(
                f"review={text!r}: {key}={value!r} is not one of {', '.join(choices)}."
            )
        options[key] = value
    if query and not options:
        raise ConfigError(f"review={text!r}: write options as '?mode=issue&merge=squash'.")
    return {
        "backend": "github",
        "location": f"github:{owner}/{repo}",
        "repo": f"{owner}/{repo}",
        "mode": options.get("mode", "pr"),
        "merge": options.get("merge", "merge"),
        "api_url": github_api_url(options.get("api_url")),
    }


def github_api_url(value: str | None = None) -> str:
    """The GitHub REST API root: ``value``, else ``$METAFLOW_HITL_GITHUB_API_URL``, else
    ``$GITHUB_API_URL``, else ``https://api.github.com``; without a trailing slash.

    Raises
    ------
    ConfigError
        If the URL is not ``http(s)://host[/path]``, or carries credentials (which would end
        up in records and logs).
    """
    source = "api_url"
    if not value:
        source, value = next(
            ((v, os.environ[v]) for v in GITHUB_API_URL_ENVS if os.environ.get(v, "").strip()),
            ("default", DEFAULT_GITHUB_API_URL),
        )
    url = str(value).strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ConfigError(
            f"the GitHub API URL from {source} is not an http(s) URL; use e.g. "
            "https://api.github.com or https://HOST/api/v3 (GitHub Enterprise Server)."
        )
    if parts.username or parts.password:
        raise ConfigError(
            f"the GitHub API URL from {source} contains credentials; remove them and set "
            "the token in METAFLOW_HITL_GITHUB_TOKEN instead."
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"the GitHub API URL from {source} must not have a query or fragment.")
    return url


def backend_for_request(request: Request) -> Any | None:
    """Build the review backend a request names, or ``None`` for ``backend: none``."""
    return backend_for_review(request.review, gate_id=str(request.gate_id))


def backend_for_review(review: Mapping[str, Any] | None, *, gate_id: str) -> Any | None:
    """Build the backend of a request's ``review`` settings, or ``None`` for ``none``."""
    settings = dict(review or {"backend": "none"})
    kind = settings.get("backend", "none")
    if kind == "none":
        return None
    if kind == "git":
        from metaflow_hitl.review.git_backend import GitReviewBackend

        return GitReviewBackend(str(settings["location"]))
    if kind == "github":
        from metaflow_hitl.github.review_backend import GitHubReviewBackend

        return GitHubReviewBackend(
            str(settings.get("repo") or ""),
            mode=str(settings.get("mode") or "pr"),
            merge_method=str(settings.get("merge") or "merge"),
            api_url=settings.get("api_url") or None,
        )
    raise ConfigError(f"gate {gate_id} names review backend {kind!r}, unknown here.")
