"""A review repo on GitHub (or GitHub Enterprise Server): a pull request or an issue per gate.

``review="github:acme/approvals"`` opens a pull request per gate; ``?mode=issue`` opens an
issue instead. Decisions are committed as ``decisions/<flow>/<run>/<step>.json`` with git
trailers in the message (as :mod:`metaflow_hitl.review.git_backend` writes them), so the review
repo's history on its default branch is the audit trail.

* ``mode="pr"``: :meth:`GitHubReviewBackend.open_review` creates branch
  ``hitl/<flow>/<run>/<step>`` from the default branch, commits the approval file to it
  through the contents API, opens a pull request, asks the gate's approvers for a review
  (logins as reviewers, ``@org/team`` as team reviewers; a refusal is logged, never fatal)
  and labels it ``metaflow-hitl``. :meth:`~GitHubReviewBackend.record_decision` commits an
  approval on the gate branch and merges the pull request; a rejection or a timeout is
  committed on the default branch and the pull request is closed. Either way one reply
  comment says what was decided.
* ``mode="issue"``: one labelled issue per gate, assigned to the approver logins; the
  decision is committed on the default branch and the issue is closed with a reply.

Everything is looked up before it is created (the pull request by ``head=owner:branch``,
``state=all``; the branch by its ref; the issue by the hidden gate marker in its body, among
the issues carrying the label), so a retried or re-run notify opens no duplicate. The first
decision wins: a different decision already in the repo raises :class:`ReviewConflict`.

Transport: PyGithub's ``Requester`` (its documented way to call any endpoint), one HTTP
request per call, with PyGithub's own retries **off** — they repeat a ``POST`` after a 5xx,
which duplicates issues and comments. Instead, reads are retried on 5xx; any request refused
by a rate limit (403/429 with ``Retry-After`` or ``X-RateLimit-Remaining: 0``) is repeated
after the wait GitHub asks for; and a write whose answer was lost is never repeated blind:
its resource is looked up again first. Waits are bounded by ``max_wait``.

The token comes from ``METAFLOW_HITL_GITHUB_TOKEN``, then ``GITHUB_TOKEN``; it is never
written to a record, a message or a log.

GitHub REST docs wrapped here:
https://docs.github.com/rest/git/refs,
https://docs.github.com/rest/repos/contents#create-or-update-file-contents,
https://docs.github.com/rest/pulls/pulls, https://docs.github.com/rest/pulls/review-requests,
https://docs.github.com/rest/issues/issues, https://docs.github.com/rest/issues/comments,
https://docs.github.com/rest/issues/labels, https://docs.github.com/rest/commits/commits,
https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from metaflow_hitl.errors import ConfigError, RecordError, ReviewConflict, StoreError
from metaflow_hitl.github.page_check import page_problems
from metaflow_hitl.markers import (
    decision_reply_tag,
    is_bot_reply,
    parse_markers,
    reminder_tag,
    reply_event_tag,
)
from metaflow_hitl.records import Decision, Publication, Reminder, Request, decode_record
from metaflow_hitl.render.documents import (
    RUN_ENDED_EVENT,
    approval_path,
    branch_for,
    decision_path,
    render_decision_record,
    render_issue_body,
    render_pr_body,
    render_pr_title,
    render_reminder_comment,
    render_reply,
    render_run_ended_comment,
)
from metaflow_hitl.review.authorship import commit_author
from metaflow_hitl.review.config import GITHUB_TOKEN_ENVS, github_api_url
from metaflow_hitl.review.trailers import AuditEntry, decision_commit_message
from metaflow_hitl.timestamps import format_ts

__all__ = ["LABEL", "GitHubReviewBackend"]

log = logging.getLogger("metaflow_hitl.review.github")

#: The label on every gate's pull request or issue.
LABEL = "metaflow-hitl"
MODES = ("pr", "issue")
MERGE_METHODS = ("merge", "squash", "rebase")
#: How far back (in issue ``updated_at``) an issue-mode lookup reaches before the request's
#: creation time; covers clock skew between the notifier and GitHub.
_ISSUE_LOOKBACK = timedelta(days=1)
_T = TypeVar("_T")


class _Unknown(Exception):
    """A write got no usable answer (5xx, connection lost): it may or may not have happened."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GitHubReviewBackend:
    """The review port over a GitHub repository.

    Parameters
    ----------
    repo
        ``owner/name`` of the review repository.
    mode
        ``"pr"`` (a branch and a pull request per gate) or ``"issue"`` (an issue per gate).
    api_url
        The REST API root; default ``$METAFLOW_HITL_GITHUB_API_URL``, ``$GITHUB_API_URL``,
        else ``https://api.github.com`` (GHES: ``https://HOST/api/v3``).
    token
        The token; default ``$METAFLOW_HITL_GITHUB_TOKEN``, then ``$GITHUB_TOKEN``. It needs
        contents, pull requests and issues write access to ``repo``.
    merge_method
        How an approved pull request is merged: ``merge`` (a merge commit), ``squash`` or
        ``rebase``.
    max_attempts
        Attempts per request (and per lookup-then-create cycle) before giving up.
    max_wait
        Seconds this backend may sleep in total per call (rate limits and backoff); a wait
        GitHub asks for beyond it fails fast instead.
    backoff
        First delay after a 5xx or a lost answer; doubles per attempt.
    timeout
        Seconds per HTTP request.
    seconds_between_writes
        PyGithub's pause between writes (0: rely on GitHub's rate-limit answers instead).
    sleep
        The sleep function (tests pass one that records instead of waiting).

    Attributes
    ----------
    requests_made
        HTTP requests sent so far, retries included.
    """

    kind = "github"

    def __init__(
        self,
        repo: str,
        *,
        mode: str = "pr",
        api_url: str | None = None,
        token: str | None = None,
        merge_method: str = "merge",
        max_attempts: int = 5,
        max_wait: float = 120.0,
        backoff: float = 1.0,
        timeout: int = 15,
        seconds_between_writes: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        owner, _, name = str(repo).partition("/")
        if not owner or not name or "/" in name:
            raise ConfigError(f"GitHub review repo {repo!r} is not 'owner/name'.")
        if mode not in MODES:
            raise ConfigError(f"GitHub review mode {mode!r} is not one of {', '.join(MODES)}.")
        if merge_method not in MERGE_METHODS:
            raise ConfigError(f"merge method {merge_method!r}: use {', '.join(MERGE_METHODS)}.")
        self.repo, self.owner, self.mode = f"{owner}/{name}", owner, mode
        self.location = f"github:{self.repo}"
        self.api_url = github_api_url(api_url)
        self.merge_method = merge_method
        self.max_attempts, self.max_wait, self.backoff = max(1, max_attempts), max_wait, backoff
        self.timeout, self.seconds_between_writes = timeout, seconds_between_writes
        self.requests_made = 0
        self._sleep = sleep
        self._token = token
        self._requester: Any = None
        self._waited = 0.0
        self._default_branch: str | None = None
        self._login: str | bool | None = False  # False: not asked yet
        self._comments: dict[int, list[dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"GitHubReviewBackend({self.repo!r}, mode={self.mode!r}, api_url={self.api_url!r})"

    # -- transport --------------------------------------------------------------------------
    def _client(self) -> Any:
        if self._requester is None:
            token = self._token or next(
                (os.environ[v] for v in GITHUB_TOKEN_ENVS if os.environ.get(v)), None
            )
            if not token:
                raise ConfigError(
                    f"review repo {self.location} needs a GitHub token, and none is set.",
                    hint="Set METAFLOW_HITL_GITHUB_TOKEN (or GITHUB_TOKEN) to a token with "
                    f"contents, pull requests and issues write access to {self.repo}.",
                )
            self._token = token
            import github  # lazily: the core and the git backend do not need PyGithub

            client = github.Github(
                auth=github.Auth.Token(token),
                base_url=self.api_url,
                timeout=self.timeout,
                user_agent="metaflow-hitl",
                per_page=100,
                retry=0,  # never repeat a write blind; see the module docstring
                seconds_between_requests=0,
                seconds_between_writes=self.seconds_between_writes,
            )
            self._requester = client.requester
        return self._requester

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _request(
        self,
        verb: str,
        path: str,
        *,
        what: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (),
        safe_to_repeat: bool | None = None,
    ) -> Any:
        """Send one request (plus retries) and return its JSON.

        Statuses in ``expect`` are raised as PyGithub's ``GithubException`` for the caller to
        handle; other errors become :class:`StoreError` / :class:`ConfigError`. A 5xx or a
        lost answer is retried when ``safe_to_repeat`` (default: reads), else raised as
        :class:`_Unknown` so the caller looks before it writes again.
        """
        from github import GithubException
        from requests import RequestException

        repeat = verb == "GET" if safe_to_repeat is None else safe_to_repeat
        requester = self._client()
        url = path if path.startswith("/") else f"/repos/{self.repo}/{path}".rstrip("/")
        attempt = 0
        while True:
            attempt += 1
            self.requests_made += 1
            try:
                _, data = requester.requestJsonAndCheck(verb, url, parameters=params, input=body)
                return data
            except GithubException as exc:
                wait = _rate_limit_wait(exc)
                if wait is not None:  # refused before it ran: safe to repeat, writes too
                    self._pause(wait, what, attempt, f"rate limited ({exc.status})")
                    continue
                if exc.status in expect:
                    raise
                if exc.status < 500:
                    raise self._error(exc, what) from None
                reason = f"GitHub answered {exc.status}"
            except RequestException as exc:
                reason = f"no answer ({type(exc).__name__})"
            if not repeat:
                raise _Unknown(reason)
            self._pause(self._delay(attempt), what, attempt, reason)

    def _delay(self, attempt: int) -> float:
        return min(30.0, self.backoff * 2 ** (attempt - 1))

    def _pause(self, seconds: float, what: str, attempt: int, reason: str) -> None:
        seconds = max(0.0, seconds)
        if attempt >= self.max_attempts or self._waited + seconds > self.max_wait:
            raise StoreError(
                f"GitHub did not complete {what} on {self.repo} ({self.api_url}): {reason} "
                f"after {attempt} attempt(s), {self._waited:.1f}s waited (max_wait="
                f"{self.max_wait:g}s, next wait {seconds:.1f}s).",
                hint="Nothing was duplicated; retry later (re-running is safe).",
            )
        self._waited += seconds
        self._sleep(seconds)

    def _error(self, exc: Any, what: str) -> Exception:
        data = exc.data if isinstance(exc.data, dict) else {}
        said = self._scrub(str(data.get("message") or exc.data or "")).strip()[:300]
        where = f"{self.repo} ({self.api_url})"
        if exc.status == 401:
            return ConfigError(
                f"GitHub rejected the token for {what} on {where}: 401 {said}.",
                hint="Set METAFLOW_HITL_GITHUB_TOKEN (or GITHUB_TOKEN) to a valid token.",
            )
        if exc.status == 404:
            return StoreError(
                f"GitHub answered 404 to {what}: {where} does not exist, or the token cannot "
                "see it.",
                hint="Check review='github:owner/repo', the API URL and the token's access.",
            )
        if exc.status == 403:
            return StoreError(
                f"GitHub refused {what} on {where}: 403 {said}.",
                hint="The token needs contents, pull requests and issues write access.",
            )
        return StoreError(f"GitHub answered {exc.status} to {what} on {where}: {said}")

    def _ensure(
        self,
        what: str,
        lookup: Callable[[], _T | None],
        create: Callable[[], _T],
        *,
        known_missing: bool = False,
        exists: Callable[[Any], bool] = lambda exc: False,
    ) -> tuple[_T, bool]:
        """Find a resource or create it: ``(resource, created)``. After a lost answer or an
        "already exists" refusal it looks again instead of creating blind."""
        for attempt in range(1, self.max_attempts + 1):
            if not known_missing:
                found = lookup()
                if found is not None:
                    return found, False
            known_missing = False
            try:
                return create(), True
            except _Unknown as exc:
                self._pause(self._delay(attempt), what, attempt, exc.reason)
            except Exception as exc:
                if not (getattr(exc, "status", None) and exists(exc)):
                    raise
                log.info("%s: GitHub says it exists already; looking it up", what)
        raise StoreError(f"could not complete {what} on {self.repo} after {attempt} attempts")

    # -- small reads and writes -------------------------------------------------------------
    def _get(self, path: str, what: str, params: dict[str, Any] | None = None) -> Any | None:
        """A GET whose 404 means "not there" (``None``)."""
        from github import GithubException

        try:
            return self._request("GET", path, what=what, params=params, expect=(404,))
        except GithubException:
            return None

    def _pages(self, path: str, what: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, fetching pages of 100 only as they are needed."""
        page = 1
        while True:
            items = self._request(
                "GET", path, what=what, params={**params, "per_page": 100, "page": page}
            )
            yield from items
            if len(items) < 100:
                return
            page += 1

    def _get_ref(self, branch: str) -> str | None:
        data = self._get(f"git/ref/heads/{_q(branch)}", "read a branch")
        return None if data is None else str(data["object"]["sha"])

    def _get_file(self, path: str, ref: str | None = None) -> str | None:
        data = self._get(f"contents/{_q(path)}", f"read {path}", {"ref": ref} if ref else None)
        if data is None:
            return None
        if not isinstance(data, dict) or data.get("type") != "file":
            raise StoreError(f"{path} in {self.repo} is not a file")
        return base64.b64decode(data.get("content") or "").decode("utf-8")

    def _put_file(
        self,
        path: str,
        text: str,
        *,
        message: str,
        branch: str | None,
        lookup: Callable[[], str | None],
        author: tuple[str, str] | None = None,
    ) -> bool:
        """Create a file, never overwrite one; True if this call created it."""
        body: dict[str, Any] = {
            "message": message,
            "content": base64.b64encode(text.encode()).decode("ascii"),
        }
        if branch:
            body["branch"] = branch
        if author:
            body["author"] = {"name": author[0], "email": author[1]}
        what = f"commit {path}"
        _, created = self._ensure(
            what,
            lookup,
            lambda: self._request(
                "PUT", f"contents/{_q(path)}", what=what, body=body, expect=(409, 422)
            ),
            known_missing=True,
            exists=lambda exc: exc.status in (409, 422),
        )
        return created

    def _find_pull(self, branch: str) -> dict[str, Any] | None:
        """The gate's own pull request: from ``branch`` into the default branch, opened by
        this token's account (a decoy from the same branch into another base, or opened by
        someone else, is never the gate's page); the first such one."""
        params = {
            "head": f"{self.owner}:{branch}",
            "base": self.default_branch(),
            "state": "all",
        }
        pulls = self._request("GET", "pulls", what="look up the pull request", params=params)
        ours = [p for p in pulls if self.is_ours(p)]
        return min(ours, key=lambda p: int(p["number"])) if ours else None

    def _find_issue(self, request: Request) -> dict[str, Any] | None:
        """The gate's issue: labelled, updated since the request was made, with its marker."""
        since = format_ts(request.created_at - _ISSUE_LOOKBACK)
        params = {"labels": LABEL, "state": "all", "since": since}
        found = []
        for issue in self._pages("issues", "look up the issue", params):
            markers = parse_markers(issue.get("body"))
            if (
                "pull_request" not in issue
                and any(m.gate_id == str(request.gate_id) for m in markers)
                and self.is_ours(issue)  # a decoy with a copied marker is not the page
            ):
                found.append(issue)
        return min(found, key=lambda i: int(i["number"])) if found else None

    def check_page(
        self,
        request: Request,
        page: dict[str, Any],
        *,
        is_pull: bool,
        publication: Publication | None,
    ) -> list[str]:
        """What differs between ``page`` and what was published for ``request``
        (:func:`metaflow_hitl.github.page_check.page_problems`, against the stored ``publication``);
        also that this token's account opened it. Empty: the page is intact."""
        problems = []
        if not self.is_ours(page):
            opener = (page.get("user") or {}).get("login")
            problems.append(f"it was opened by {opener}, not by metaflow-hitl's account")
        if is_pull:
            number = int(page["number"])
            problems += page_problems(
                request,
                page,
                repo=self.repo,
                is_pull=True,
                publication=publication,
                default_branch=self.default_branch(),
                files=self.list_files(number),
                commits=self.list_pull_commits(number),
            )
        else:
            problems += page_problems(
                request, page, repo=self.repo, is_pull=False, publication=publication
            )
        return problems

    def _whoami(self) -> str | None:
        """The token's login, or None where GitHub will not say (App installation tokens)."""
        from github import GithubException

        if self._login is False:
            try:
                data = self._request(
                    "GET", "/user", what="read the token's user", expect=(403, 404)
                )
                self._login = str(data["login"])
            except GithubException:
                self._login = None
        return self._login if isinstance(self._login, str) else None

    def _refs(self, **extra: Any) -> dict[str, str | None]:
        refs = {"backend": "github", "location": self.location, "mode": self.mode, **extra}
        return {k: None if v is None else str(v) for k, v in refs.items()}

    # -- reads and replies for the Action (metaflow_hitl.github.handler) --------------------
    def whoami(self) -> str | None:
        """The token's login, or None for tokens GitHub will not name (App installations)."""
        return self._whoami()

    def permission(self, login: str) -> str | None:
        """``login``'s permission on the repo (``admin``/``write``/``read``/``none``), from the
        collaborator-permission API; None when GitHub does not know the user."""
        data = self._get(f"collaborators/{_q(login)}/permission", f"read {login}'s permission")
        return None if data is None else str(data.get("permission") or "none")

    def permissions(self, *, limit: int = 300) -> dict[str, str] | None:
        """Every collaborator's permission (lower-case login -> ``admin``/``write``/``read``/
        ``none``) from one listing (``GET /repos/{o}/{r}/collaborators?affiliation=all``:
        outside collaborators, members through teams and base permissions, owners), at most
        ``limit`` entries; None when the token may not list them. A login not in the result
        is not known to lack access (the listing may be cut): ask :meth:`permission`.

        The listing's ``permissions`` flags map to the permission API's legacy names as GitHub
        maps roles: admin -> ``admin``; maintain, push -> ``write``; triage, pull -> ``read``
        (https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user).
        """
        from github import GithubException

        out: dict[str, str] = {}
        page = 1
        while len(out) < limit:
            try:
                items = self._request(
                    "GET",
                    "collaborators",
                    what="list collaborators",
                    params={"affiliation": "all", "per_page": 100, "page": page},
                    expect=(403, 404),
                )
            except GithubException:
                return None  # the token may not list them: ask per account
            for item in items:
                flags = item.get("permissions") or {}
                level = (
                    "admin"
                    if flags.get("admin")
                    else "write"
                    if flags.get("push") or flags.get("maintain")
                    else "read"
                    if flags.get("pull") or flags.get("triage")
                    else "none"
                )
                out[str(item.get("login") or "").lower()] = level
            if len(items) < 100:
                break
            page += 1
        return out

    def team_member(self, org: str, slug: str, login: str) -> bool | None:
        """Whether ``login`` is an active member of ``@org/slug`` (child teams included);
        None when the token may not read the team (GITHUB_TOKEN has no org scope)."""
        from github import GithubException

        path = f"/orgs/{_q(org)}/teams/{_q(slug)}/memberships/{_q(login)}"
        try:
            data = self._request("GET", path, what="read a team membership", expect=(403, 404))
        except GithubException as exc:
            return False if exc.status == 404 else None
        return data.get("state") == "active"

    def get_pull(self, number: int) -> dict[str, Any] | None:
        """The pull request, or None."""
        return self._get(f"pulls/{int(number)}", f"read #{number}")

    def get_issue(self, number: int) -> dict[str, Any] | None:
        """The issue (or a pull request's issue view), or None."""
        return self._get(f"issues/{int(number)}", f"read #{number}")

    def get_comment(self, comment_id: int) -> dict[str, Any] | None:
        """The issue comment as GitHub holds it now, or None when it is gone."""
        return self._get(f"issues/comments/{int(comment_id)}", f"read comment {comment_id}")

    def get_review(self, number: int, review_id: int) -> dict[str, Any] | None:
        """Review ``review_id`` of pull request ``number`` as GitHub holds it now, or None."""
        path = f"pulls/{int(number)}/reviews/{int(review_id)}"
        return self._get(path, f"read review {review_id} of #{number}")

    def list_files(self, number: int) -> list[dict[str, Any]]:
        """The files pull request ``number`` changes against its base (GitHub's diff)."""
        return list(self._pages(f"pulls/{int(number)}/files", f"read the files of #{number}", {}))

    def list_pull_commits(self, number: int) -> list[dict[str, Any]]:
        """The commits of pull request ``number``, oldest first."""
        where = f"pulls/{int(number)}/commits"
        return list(self._pages(where, f"read the commits of #{number}", {}))

    def default_branch(self) -> str:
        """The review repo's default branch (read once)."""
        if self._default_branch is None:
            self._default_branch = str(
                self._request("GET", "", what="read the repository")["default_branch"]
            )
        return self._default_branch

    def list_reviews(self, number: int) -> list[dict[str, Any]]:
        """Every review of pull request ``number``, oldest first."""
        return list(self._pages(f"pulls/{int(number)}/reviews", f"read reviews of #{number}", {}))

    def list_comments(self, number: int, *, fresh: bool = False) -> list[dict[str, Any]]:
        """Every comment on issue or pull request ``number``, oldest first.

        Read once per backend (one Action run) and kept, with this backend's own replies
        added, so replaying the history, counting refusals and finding earlier replies cost
        one listing per event; ``fresh`` reads it again."""
        if fresh or number not in self._comments:
            where = f"issues/{int(number)}/comments"
            self._comments[number] = list(self._pages(where, f"read the comments of #{number}", {}))
        return list(self._comments[number])

    def comment_once(self, number: int, text: str, tag: str) -> bool:
        """Post ``text`` on ``number`` unless a comment of this token already contains ``tag``;
        True if this call posted it."""
        where = f"issues/{int(number)}/comments"
        looked: list[bool] = []

        def lookup() -> dict[str, Any] | None:
            # the run's listing first; after a lost answer, what GitHub holds now
            for c in self.list_comments(number, fresh=bool(looked)):
                if tag in str(c.get("body") or "") and self.is_ours(c):
                    return c
            looked.append(True)
            return None

        made, posted = self._ensure(
            f"reply on #{number}",
            lookup,
            lambda: self._request("POST", where, what=f"reply on #{number}", body={"body": text}),
        )
        if posted and number in self._comments and isinstance(made, dict):
            self._comments[number].append(made)
        return posted

    def post_reminder(self, request: Request, reminder: Reminder) -> dict[str, str | None] | None:
        """Comment reminder ``reminder.number`` on the gate's open pull request or issue, once
        (looked up by its hidden reminder marker among this token's comments, so a retry or a
        re-run never posts it twice). Returns ``number``, ``url`` and ``posted``; ``None``
        when the gate has no open page."""

        self._waited = 0.0
        self._comments.clear()  # a new operation reads the page anew
        if self.mode == "issue":
            item = self._find_issue(request)
        else:
            item = self._find_pull(branch_for(request.gate_id))
        if item is None or item.get("state") != "open":
            return None
        tag = reminder_tag(request.gate_id, reminder.number)
        posted = self.comment_once(item["number"], render_reminder_comment(request, reminder), tag)
        return self._refs(number=item["number"], url=item["html_url"], posted=posted)

    def post_run_ended(
        self, request: Request, decision: Decision, why: str
    ) -> dict[str, str | None] | None:
        """Comment on the gate's pull request or issue (open or not) that its run ended before
        it was resumed, once per gate (found again by the ``run-ended`` reply tag among this
        token's comments). Returns ``number``, ``url`` and ``posted``; ``None`` when the gate
        has no page."""
        self._waited = 0.0
        self._comments.clear()  # a new operation reads the page anew
        if self.mode == "issue":
            item = self._find_issue(request)
        else:
            item = self._find_pull(branch_for(request.gate_id))
        if item is None:
            return None
        tag = reply_event_tag(request.gate_id, RUN_ENDED_EVENT)
        text = render_run_ended_comment(request, decision, why)
        posted = self.comment_once(item["number"], text, tag)
        return self._refs(number=item["number"], url=item["html_url"], posted=posted)

    # -- ReviewBackend ----------------------------------------------------------------------
    def open_review(self, request: Request, *, approval_file: str) -> dict[str, str | None]:
        """Open the gate's pull request (or issue), unless it exists.

        Parameters
        ----------
        request
            The stored request.
        approval_file
            The rendered approval file, committed at ``approvals/<flow>/<run>/<step>.md``
            (pull request mode; issue mode renders the issue body from the request).

        Returns
        -------
        dict
            ``backend``, ``location``, ``mode``, ``number``, ``url`` (the web page) and, in
            pull request mode, ``branch`` and ``path``.

        Raises
        ------
        ConfigError
            No token is set, or GitHub rejects it.
        StoreError
            GitHub refused, or kept failing past the bounded retries.
        """
        self._waited = 0.0
        self._comments.clear()  # a new operation reads the page anew
        if self.mode == "issue":
            issue = self._open_issue(request)
            return self._refs(number=issue["number"], url=issue["html_url"])
        branch, path = branch_for(request.gate_id), approval_path(request.gate_id)
        pull = self._find_pull(branch)
        if pull is None:
            pull = self._open_pull(request, branch, path, approval_file)
        elif LABEL not in {label["name"] for label in pull.get("labels") or []}:
            self._label(pull["number"])  # a crash came between the pull request and its label
        return self._refs(branch=branch, path=path, number=pull["number"], url=pull["html_url"])

    def _open_pull(
        self, request: Request, branch: str, path: str, approval_file: str
    ) -> dict[str, Any]:
        default = self.default_branch()
        exists = lambda exc: "already exists" in json.dumps(exc.data)  # noqa: E731
        on_branch = None
        if self._get_ref(branch) is None:
            base = self._get_ref(default)
            if base is None:
                raise StoreError(f"{self.repo} has no branch {default} to start {branch} from")
            new_ref = {"ref": f"refs/heads/{branch}", "sha": base}
            self._ensure(
                f"create branch {branch}",
                lambda: self._get_ref(branch),
                lambda: self._request(
                    "POST", "git/refs", what=f"create branch {branch}", body=new_ref, expect=(422,)
                ),
                known_missing=True,
                exists=exists,
            )
        else:  # a crash left the branch: is the approval file on it?
            on_branch = self._get_file(path, ref=branch)
        if on_branch is None:
            message = (
                f"hitl: open gate {request.gate_id}\n\nHitl-Gate: {request.gate_id}\n"
                f"Hitl-Request-Digest: {request.digest()}\n"
            )
            self._put_file(
                path,
                approval_file,
                message=message,
                branch=branch,
                lookup=lambda: self._get_file(path, ref=branch),
            )
        body = {
            "title": render_pr_title(request),
            "body": render_pr_body(request),
            "head": branch,
            "base": default,
        }
        pull, created = self._ensure(
            "open the pull request",
            lambda: self._find_pull(branch),
            lambda: self._request(
                "POST", "pulls", what="open the pull request", body=body, expect=(422,)
            ),
            known_missing=True,
            exists=exists,
        )
        if created:
            self._ask_reviewers(request, pull["number"])
        if LABEL not in {label["name"] for label in pull.get("labels") or []}:
            self._label(pull["number"])
        return dict(pull)

    def _try(self, path: str, what: str, body: Any) -> str | None:
        """An idempotent POST that must not fail the gate: GitHub's refusal, or None."""
        from github import GithubException

        try:
            self._request(
                "POST", path, what=what, body=body, safe_to_repeat=True, expect=(403, 404, 410, 422)
            )
        except (GithubException, StoreError) as exc:
            data = getattr(exc, "data", None)
            return self._scrub(str(data.get("message") if isinstance(data, dict) else exc))
        return None

    def _label(self, number: int) -> None:
        refused = self._try(f"issues/{number}/labels", "label", {"labels": [LABEL]})
        if refused:
            log.warning("could not label #%s in %s %s: %s", number, self.repo, LABEL, refused)

    def _ask_reviewers(self, request: Request, number: int) -> None:
        """Ask the approvers for a review (logins, and teams of the repo's org), except the
        run's starter. GitHub refuses the whole list for one non-collaborator, so after a
        refusal each is asked alone; refusals are logged, never raised."""
        users, teams = [], []
        for entry in (a.strip().lstrip("@") for a in request.approvers):
            org, _, slug = entry.rpartition("/")
            if org and org.lower() != self.owner.lower():
                log.warning("not asking team @%s to review: not an org of %s", entry, self.repo)
            elif org:
                teams.append(slug)
            elif entry.lower() != request.started_by.lower():
                users.append(entry)
        path, what = f"pulls/{number}/requested_reviewers", "request reviews"
        body = lambda u, t: {"reviewers": u, "team_reviewers": t}  # noqa: E731
        if not (users or teams) or not self._try(path, what, body(users, teams)):
            return
        refused: list[tuple[list[str], list[str]]] = [([u], []) for u in users]
        refused += [([], [t]) for t in teams]
        if len(refused) > 1:
            refused = [(u, t) for u, t in refused if self._try(path, what, body(u, t))]
        for u, t in refused:
            log.warning(
                "review request for %s on %s#%s refused by GitHub",
                ", ".join(u + ["@" + s for s in t]),
                self.repo,
                number,
            )

    def _open_issue(self, request: Request) -> dict[str, Any]:
        from github import GithubException

        starter = request.started_by.lower()
        people = [a.lstrip("@") for a in request.approvers if "/" not in a]
        body: dict[str, Any] = {
            "title": render_pr_title(request),
            "labels": [LABEL],
            "body": render_issue_body(request),
        }
        assignees = [p for p in people if p.lower() != starter][:10]  # GitHub takes 10
        if assignees:
            body["assignees"] = assignees

        def create() -> dict[str, Any]:
            try:
                return dict(
                    self._request("POST", "issues", what="open the issue", body=body, expect=(422,))
                )
            except GithubException as exc:
                if "assignees" not in json.dumps(exc.data) or "assignees" not in body:
                    raise self._error(exc, "open the issue") from None
            log.warning(
                "GitHub refused assignees %s in %s; opening the issue unassigned",
                ", ".join(assignees),
                self.repo,
            )
            del body["assignees"]  # a refused create made nothing: creating again is safe
            return dict(self._request("POST", "issues", what="open the issue", body=body))

        issue, _ = self._ensure("open the issue", lambda: self._find_issue(request), create)
        return issue

    def record_decision(
        self, request: Request, decision: Decision, *, publication: Publication | None
    ) -> dict[str, str | None]:
        """Commit the decision record, merge or close the pull request (or close the issue),
        and reply once.

        ``publication`` is what the store records as published for the gate: an approved
        pull request is merged only while it matches it
        (:func:`metaflow_hitl.github.page_check.page_problems`), pinned to the head just checked;
        else it is closed and the reply names the change.

        An approval is committed on the gate branch, which is then merged (``merge_method``);
        a rejection or a timeout is committed on the default branch and the pull request
        closed. Idempotent: recording the same decision again changes nothing.

        Returns
        -------
        dict
            ``backend``, ``location``, ``mode``, ``path``, and ``number``, ``url`` and
            ``commit`` (the merge commit, if merged here) when the gate has a page.

        Raises
        ------
        ReviewConflict
            If the repo already holds a different decision for this gate (the first stands).
        StoreError
            GitHub refused (e.g. the pull request cannot be merged) or kept failing.
        """
        self._waited = 0.0
        self._comments.clear()  # a new operation reads the page anew
        path = decision_path(request.gate_id)
        if self.mode == "issue":
            item = self._find_issue(request)
        else:
            item = self._find_pull(branch_for(request.gate_id))
        is_open = item is not None and item["state"] == "open"
        merging = self.mode == "pr" and is_open and decision.outcome == "approved"
        changed: list[str] = []
        if merging and item is not None:
            # Nothing the Action did not write reaches the default branch: merge only the
            # page exactly as published, pinned to the head commit just checked.
            item = self._request("GET", f"pulls/{item['number']}", what="read the pull request")
            changed = self.check_page(request, item, is_pull=True, publication=publication)
            merging = not changed
        existing = self._get_file(path)
        if existing is None and item is not None and self.mode == "pr" and decision.proceed:
            # a decision committed on the gate branch by an earlier release, left by a merge
            # that failed
            existing = self._get_file(path, ref=item["head"]["ref"])
        if existing is not None:
            _check_same(existing, decision, path)
        if item is None:
            if existing is None:
                self._commit_decision(request, decision, path)
            return self._refs(path=path)
        number, commit = item["number"], None
        if merging:
            try:
                commit = self._merge(request, decision, number, sha=str(item["head"]["sha"]))
            except StoreError:
                if existing is None:  # the audit trail holds the decision all the same
                    self._commit_decision(request, decision, path)
                raise
        elif is_open:
            state = {"state": "closed"}
            if self.mode == "issue":
                state["state_reason"] = "completed" if decision.proceed else "not_planned"
            self._request(
                "PATCH",
                f"{'issues' if self.mode == 'issue' else 'pulls'}/{number}",
                what=f"close #{number}",
                body=state,
                safe_to_repeat=True,
            )
        wrote = existing is None and self._commit_decision(request, decision, path)
        self._reply(request, decision, number, known_missing=wrote, changed=changed)
        return self._refs(path=path, number=number, url=item["html_url"], commit=commit)

    def _commit_decision(self, request: Request, decision: Decision, path: str) -> bool:
        """Commit the decision record on the default branch (never on the gate's branch,
        which is not ours alone); True if this call created it."""
        return self._put_file(
            path,
            render_decision_record(request, decision),
            message=decision_commit_message(request, decision),
            branch=None,
            author=commit_author(decision),
            lookup=lambda: _same_or_none(self._get_file(path), decision, path),
        )

    def _merge(self, request: Request, decision: Decision, number: int, *, sha: str) -> str:
        """Merge pull request ``number`` at head ``sha`` only: GitHub refuses (409) when the
        head moved after it was checked."""
        from github import GithubException

        body: dict[str, Any] = {
            "sha": sha,
            "merge_method": self.merge_method,
            "commit_title": f"hitl: merge {request.gate_id} (approved)",
        }
        if self.merge_method == "squash":  # the squash commit must carry the trailers
            body["commit_message"] = decision_commit_message(request, decision).split("\n\n", 1)[1]

        def merged() -> str | None:
            pull = self._request("GET", f"pulls/{number}", what=f"read #{number}")
            return pull.get("merge_commit_sha") if pull.get("merged") else None

        try:
            sha, _ = self._ensure(
                f"merge #{number}",
                merged,
                lambda: self._request(
                    "PUT",
                    f"pulls/{number}/merge",
                    what=f"merge #{number}",
                    body=body,
                    expect=(405, 409),
                )["sha"],
                known_missing=True,
            )
        except GithubException as exc:
            done = merged()  # a concurrent publisher of the same decision merged it first
            if done:
                return str(done)
            said = self._scrub(str((exc.data or {}).get("message", "")))
            raise StoreError(
                f"GitHub would not merge #{number} in {self.repo} ({exc.status} {said}); the "
                f"decision is committed as {decision_path(request.gate_id)} on the default "
                "branch.",
                hint="Merge the pull request by hand (or let the token bypass branch "
                "protection), then record the decision again: that is safe.",
            ) from None
        return str(sha)

    def _reply(
        self,
        request: Request,
        decision: Decision,
        number: int,
        *,
        known_missing: bool,
        changed: Sequence[str] = (),
    ) -> None:
        """Post the reply unless this token already posted it (found by the decision's nonce
        and the comment's author; the text alone never decides)."""
        tag = decision_reply_tag(decision.nonce)
        text = render_reply(request, decision).rstrip("\n")
        if changed:
            text += (
                "\n\nThis pull request was **not merged**: it changed after metaflow-hitl "
                "opened it (" + "; ".join(changed) + "). The decision is recorded in "
                f"`{decision_path(request.gate_id)}` on the default branch."
            )
        text += "\n\n" + tag + "\n"
        where = f"issues/{number}/comments"

        def lookup() -> dict[str, Any] | None:
            for c in self._pages(where, f"read the comments of #{number}", {}):
                if is_bot_reply(c.get("body")) and tag in c["body"] and self.is_ours(c):
                    return c
            return None

        self._ensure(
            f"reply on #{number}",
            lookup,
            lambda: self._request("POST", where, what=f"reply on #{number}", body={"body": text}),
            known_missing=known_missing,
        )

    def is_ours(self, item: dict[str, Any]) -> bool:
        """Whether this token's account wrote ``item`` (a comment, issue or pull request);
        for an App token, which GitHub will not name, any bot account."""
        user = item.get("user") or {}
        me = self._whoami()
        if me is None:  # an App token cannot read /user; its comments come from a bot account
            return bool(user.get("type") == "Bot")
        return str(user.get("login", "")).lower() == me.lower()

    def audit(self) -> list[AuditEntry]:
        """Every decision commit (``decisions/``) on the default branch, oldest first."""
        self._waited = 0.0
        self._comments.clear()  # a new operation reads the page anew
        commits = list(self._pages("commits", "read the decisions", {"path": "decisions"}))
        entries, seen = [], set()
        for item in reversed(commits):
            entry = AuditEntry.from_commit(
                item["commit"]["message"],
                commit=item["sha"],
                author=(item["commit"].get("author") or {}).get("name", ""),
            )
            key = (entry.gate_id, entry.decided_at) if entry else None
            if entry is None or key in seen:
                continue
            seen.add(key)
            entries.append(entry)
        return entries


def _q(path: str) -> str:
    return quote(path, safe="/")


def _rate_limit_wait(exc: Any) -> float | None:
    """Seconds GitHub asks us to wait, if ``exc`` is a rate-limit refusal (else None)."""
    if exc.status not in (403, 429):
        return None
    headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
    message = str((exc.data or {}).get("message", "") if isinstance(exc.data, dict) else "")
    if headers.get("retry-after", "").strip().isdigit():
        return float(headers["retry-after"])
    reset = headers.get("x-ratelimit-reset", "")
    if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(0.0, int(reset) - time.time()) + 1.0
    if "rate limit" in message.lower():
        return 60.0  # GitHub: "wait for at least one minute before retrying"
    return None


def _check_same(existing: str, decision: Decision, path: str) -> None:
    try:
        recorded = decode_record(existing, Decision, where=path)
    except RecordError as exc:
        raise ReviewConflict(f"the review repo's {path} is not a decision record: {exc}") from None
    if recorded.nonce != decision.nonce:
        raise ReviewConflict(
            f"the review repo already records {recorded.summary()} for {decision.gate_id}; "
            f"not recording {decision.summary()}. The first decision stands.",
            hint=f"Compare with the store: metaflow-hitl show {decision.gate_id}",
        )


def _same_or_none(existing: str | None, decision: Decision, path: str) -> str | None:
    if existing is not None:
        _check_same(existing, decision, path)
    return existing
