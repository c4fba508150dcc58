"""Is a gate's GitHub page still exactly what metaflow-hitl published? (pure; no clients)

A page's marker says which stored request it is about; it authenticates nothing around it.
Before a vote on a page counts, and before metaflow-hitl merges a pull request, the page is
compared with what is rendered from the **stored** request and with what GitHub's API says
now:

* the title and body are exactly :func:`~metaflow_hitl.rendering.render_pr_title` and
  :func:`~metaflow_hitl.rendering.render_pr_body` (or ``render_issue_body``) of the stored
  request (line endings aside);
* a pull request goes from the gate's branch ``hitl/<flow>/<run>/<step>`` of the review
  repository itself into its default branch;
* its diff against the base is exactly one added file, the gate's approval file;
* it holds exactly one commit, whose author (the GitHub account GitHub matched to it) is the
  account that opened the page (the committer is not compared: GitHub may sign API commits
  as its own ``web-flow`` committer).

:func:`page_problems` returns one sentence per difference, naming who changed what where
the API says it; an empty list means the page is intact. A changed page decides nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from metaflow_hitl.records import Request
from metaflow_hitl.rendering import (
    approval_path,
    branch_for,
    render_issue_body,
    render_pr_body,
    render_pr_title,
)

__all__ = ["page_problems"]


def _text(value: Any) -> str:
    return str(value or "").replace("\r\n", "\n").strip()


def _login(user: Any) -> str:
    return str((user or {}).get("login") or "") if isinstance(user, Mapping) else ""


def page_problems(
    request: Request,
    page: Mapping[str, Any],
    *,
    repo: str,
    is_pull: bool,
    default_branch: str | None = None,
    files: Sequence[Mapping[str, Any]] = (),
    commits: Sequence[Mapping[str, Any]] = (),
) -> list[str]:
    """What differs between a gate's page and what metaflow-hitl published for it.

    Parameters
    ----------
    request
        The gate's request, read from the store (the authority).
    page
        The pull request (``GET /pulls/N``) or issue (``GET /issues/N``) as GitHub returns it.
    repo
        The review repository, ``owner/name``.
    is_pull
        Whether ``page`` is a pull request.
    default_branch
        The review repository's default branch (pull requests).
    files, commits
        ``GET /pulls/N/files`` and ``GET /pulls/N/commits`` (pull requests).

    Returns
    -------
    list of str
        Empty when the page is intact.
    """
    problems: list[str] = []
    gate = request.gate_id
    if _text(page.get("title")) != _text(render_pr_title(request)):
        problems.append("its title was edited")
    body = render_pr_body(request) if is_pull else render_issue_body(request)
    if _text(page.get("body")) != _text(body):
        problems.append(
            "its description was edited around the marker (GitHub's REST API does not say "
            "by whom: see the edit history on the page)"
        )
    if not is_pull:
        return problems
    opener = _login(page.get("user"))
    head = page.get("head") or {}
    base = page.get("base") or {}
    head_repo = str((head.get("repo") or {}).get("full_name") or "")
    if head.get("ref") != branch_for(gate) or head_repo.lower() != repo.lower():
        problems.append(
            f"it comes from {head_repo}:{head.get('ref')}, not from the gate's branch "
            f"{repo}:{branch_for(gate)}"
        )
    if default_branch is not None and base.get("ref") != default_branch:
        problems.append(
            f"it targets {base.get('ref')!r}, not the default branch {default_branch!r}"
        )
    want = approval_path(gate)
    others = sorted(str(f.get("filename")) for f in files if f.get("filename") != want)
    if others:
        problems.append(f"it changes files other than {want}: {', '.join(others[:10])}")
    if not any(f.get("filename") == want and f.get("status") == "added" for f in files):
        problems.append(f"its diff does not add the approval file {want}")
    foreign = []
    for commit in commits:
        author = _login(commit.get("author"))
        if not opener or author.lower() != opener.lower():
            foreign.append(f"{str(commit.get('sha'))[:12]} by {author or 'an unknown account'}")
    if foreign:
        problems.append(f"commits not made by {opener or 'its opener'}: {'; '.join(foreign)}")
    elif len(commits) != 1:
        problems.append(f"it holds {len(commits)} commits, not the one that opened it")
    return problems
