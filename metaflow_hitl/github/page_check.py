"""Is a gate's GitHub page still exactly what metaflow-hitl published? (pure; no clients)

A page's marker says which stored request it is about; it authenticates nothing around it.
When metaflow-hitl opens a page it stores a :class:`~metaflow_hitl.records.Publication`: the
page's number, the SHA-256 of the title and body it rendered and the git blob SHA of the
approval file it committed (:func:`publication_for`). Before a vote on a page counts, and
before metaflow-hitl merges a pull request, the page as GitHub's API shows it now is compared
with that record:

* it is the page the record names (same number);
* the title and body hash to the recorded digests (line endings aside);
* the approval file in the diff has the recorded blob SHA: its content is byte for byte what
  was committed, whoever GitHub says authored the commit (commit authors are whatever the
  pusher's git config claims);
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

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from metaflow_hitl.records import Publication, Request
from metaflow_hitl.render.documents import (
    approval_path,
    branch_for,
    render_issue_body,
    render_pr_body,
    render_pr_title,
)

__all__ = ["git_blob_sha", "page_problems", "publication_for", "text_digest"]


def _text(value: Any) -> str:
    return str(value or "").replace("\r\n", "\n").strip()


def text_digest(text: Any) -> str:
    """SHA-256 of a page's title or body, line endings normalised and stripped."""
    return hashlib.sha256(_text(text).encode("utf-8")).hexdigest()


def git_blob_sha(content: str | bytes) -> str:
    """The git object id of a file with ``content`` (``git hash-object``), as GitHub's
    pull request files API reports it in ``sha``."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def publication_for(
    request: Request, refs: Mapping[str, str | None], approval_file: str, now: datetime
) -> Publication | None:
    """The record of a GitHub page just opened for ``request`` (``refs`` from the backend's
    ``open_review``); None when the gate is not reviewed on GitHub."""
    if refs.get("backend") != "github" or not refs.get("number"):
        return None
    is_pull = refs.get("mode") != "issue"
    body = render_pr_body(request) if is_pull else render_issue_body(request)
    return Publication(
        gate_id=request.gate_id,
        repo=str(refs.get("location") or "").removeprefix("github:")
        or str(request.review.get("repo") or ""),
        mode="pr" if is_pull else "issue",
        number=int(str(refs["number"])),
        url=refs.get("url"),
        file_path=approval_path(request.gate_id) if is_pull else None,
        file_sha=git_blob_sha(approval_file) if is_pull else None,
        title_sha256=text_digest(render_pr_title(request)),
        body_sha256=text_digest(body),
        published_at=now,
    )


def _login(user: Any) -> str:
    return str((user or {}).get("login") or "") if isinstance(user, Mapping) else ""


def page_problems(
    request: Request,
    page: Mapping[str, Any],
    *,
    repo: str,
    is_pull: bool,
    publication: Publication | None,
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
    publication
        What was published for the gate (:meth:`ApprovalStore.get_publication`); None when
        the store has no record, and then nothing on the page can be trusted.
    default_branch
        The review repository's default branch (pull requests).
    files, commits
        ``GET /pulls/N/files`` and ``GET /pulls/N/commits`` (pull requests).

    Returns
    -------
    list of str
        Empty when the page is intact.
    """
    gate = request.gate_id
    if publication is None:
        return [
            "the store holds no record of what metaflow-hitl published for the gate (a page "
            "opened by a release before 0.2.0, or a record lost), so nothing on it can be "
            "checked"
        ]
    problems: list[str] = []
    number = page.get("number")
    if number != publication.number:
        problems.append(
            f"it is not the page metaflow-hitl opened for the gate (#{publication.number})"
        )
    if publication.mode != ("pr" if is_pull else "issue"):
        kind = "a pull request" if publication.mode == "pr" else "an issue"
        problems.append(f"the gate was published as {kind}, not on this page")
    if text_digest(page.get("title")) != publication.title_sha256:
        problems.append("its title was edited")
    if text_digest(page.get("body")) != publication.body_sha256:
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
    mine = [f for f in files if f.get("filename") == want]
    if not any(f.get("status") == "added" for f in mine):
        problems.append(f"its diff does not add the approval file {want}")
    elif any(f.get("sha") != publication.file_sha for f in mine):
        problems.append(
            f"its approval file {want} is not the one metaflow-hitl committed (blob "
            f"{str(mine[0].get('sha'))[:12]}, published {str(publication.file_sha)[:12]})"
        )
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
