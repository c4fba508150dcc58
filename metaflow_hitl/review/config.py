"""Which review backend a gate uses, from ``review=``, ``METAFLOW_HITL_REVIEW`` or the default.

Accepted values:

* ``git:<remote>`` — any git remote: ``git:/srv/approvals.git``, ``git:file:///srv/a.git``,
  ``git:git://host/a.git``, ``git:https://host/a.git``, ``git:git@host:org/a.git``;
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
from typing import Any

from metaflow_hitl.errors import ConfigError
from metaflow_hitl.records import Request
from metaflow_hitl.review.redact import redact

__all__ = ["backend_for_request", "parse_review", "review_settings"]

ENV = "METAFLOW_HITL_REVIEW"


def parse_review(value: str | None, *, store_location: str) -> dict[str, str | None]:
    """Resolve a ``review`` value into the settings recorded in the request.

    Parameters
    ----------
    value
        The decorator's ``review`` (``None`` falls back to ``METAFLOW_HITL_REVIEW``, then the
        local default).
    store_location
        The local store directory, home of the default review repo.

    Raises
    ------
    ConfigError
        For an unknown scheme, listing the accepted ones.
    """
    text = (value if value not in (None, "") else os.environ.get(ENV, "")) or ""
    text = str(text).strip()
    if not text:
        if "://" in store_location:
            return {"backend": "none"}
        return {"backend": "git", "location": os.path.join(store_location, "review.git")}
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
    if scheme == "github" and rest.strip():
        raise ConfigError(
            f"review={text!r}: the GitHub review backend is not available in this release; "
            "use review='git:<remote>' (a GitHub repo works as a plain git remote) or 'none'."
        )
    raise ConfigError(
        f"review={text!r} is not a review setting; use 'git:<remote>' (e.g. "
        "'git:/srv/approvals.git' or 'git:https://host/org/approvals.git') or 'none'."
    )


def review_settings(request: Request) -> dict[str, Any]:
    """The review settings a request was opened with."""
    return dict(request.review or {"backend": "none"})


def backend_for_request(request: Request) -> Any | None:
    """Build the review backend a request names, or ``None`` for ``backend: none``."""
    settings = review_settings(request)
    kind = settings.get("backend", "none")
    if kind == "none":
        return None
    if kind == "git":
        from metaflow_hitl.review.git_repo import GitReviewBackend

        return GitReviewBackend(str(settings["location"]))
    raise ConfigError(f"gate {request.gate_id} names review backend {kind!r}, unknown here.")
