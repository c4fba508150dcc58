"""A local, stateful GitHub REST API for tests, held to GitHub's own OpenAPI description.

:class:`FakeGitHub` serves the operations a PyGithub-based review backend uses (refs, the
contents API, pull requests, issues, comments, labels, review requests, reviews, merges,
collaborator permission, org teams and membership, ``/user``, ``/rate_limit``; the list is
:data:`OPERATIONS`) on ``http://127.0.0.1:<ephemeral port>`` from a background thread.

Every request and every response is checked against the description in the npm package
``@octokit/openapi`` (:mod:`tests.fakes.github._openapi`). An undocumented request, a documented
one the fake does not implement, an invalid request, an invalid response, a behaviour the fake
does not model and a crash of the fake are all recorded in :attr:`FakeGitHub.violations` and
raised as :class:`ContractViolation` by :meth:`FakeGitHub.assert_clean`, which leaving the
``with`` block calls. So neither the client under test nor the fake can drift from GitHub's
contract unnoticed.

Usage::

    with FakeGitHub() as gh:                      # token "ghp_fake" acts as user "hitl-bot"
        gh.add_repo("acme/reviews")
        gh.add_collaborator("acme/reviews", "hitl-bot", "write")
        gh.fail_next("pulls/create", 502)         # one 502, then normal answers
        client = github.Github(auth=github.Auth.Token(gh.token), base_url=gh.url)
        ...
        assert gh.count("pulls/create") == 2

Faults are scripted per route, an operationId (``"pulls/create"``) or ``"METHOD /pattern"``
(``"POST /repos/{owner}/{repo}/pulls"``): the next ``times`` matching requests get ``status``.
With ``after_write=True`` the operation runs first and only its answer is lost, which is how a
test proves that a retry does not duplicate a write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from http.server import ThreadingHTTPServer
from typing import Any

from ._dispatch import Dispatcher, Fault, LoggedRequest, RequestHandler
from ._openapi import SPEC_FILE, GitHubContract, SpecMissing, load_contract
from ._ops import OPERATIONS as CORE_OPERATIONS
from ._ops_git import OPERATIONS as GIT_OPERATIONS
from ._ops_issues import OPERATIONS as ISSUE_OPERATIONS
from ._ops_issues import find_issue, post_comment
from ._ops_pulls import OPERATIONS as PULL_OPERATIONS
from ._ops_pulls import submit_review
from ._state import ROLES, Issue, Label, Repo, Team, World

__all__ = [
    "OPERATIONS",
    "SKIP_REASON",
    "SPEC_FILE",
    "ContractViolation",
    "FakeGitHub",
    "LoggedRequest",
    "SpecMissing",
]

#: operationId -> operation, for every operation the fake implements.
OPERATIONS = {**CORE_OPERATIONS, **GIT_OPERATIONS, **ISSUE_OPERATIONS, **PULL_OPERATIONS}

SKIP_REASON = (
    "GitHub's OpenAPI description is not installed (node_modules/@octokit/openapi): "
    "run `npm ci` at the repository root, see tests/fakes/README.md"
)

SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID "
    "0000:FAKE:0000000:0000000:00000000."
)
_RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"


class ContractViolation(AssertionError):
    """A request or response broke GitHub's OpenAPI description, or the fake could not
    answer it (unknown route, operation not implemented, behaviour not modelled, crash)."""


class FakeGitHub:
    """Seed it, point a client at :attr:`url` with :attr:`token`, then assert on its state
    and its request log.

    ``tokens`` maps tokens to the logins they authenticate (users are created as needed);
    ``web`` is the host of ``html_url`` fields.
    """

    def __init__(
        self, *, tokens: Mapping[str, str] | None = None, web: str = "https://github.com"
    ) -> None:
        self.contract: GitHubContract = load_contract(frozenset(OPERATIONS))
        self.world = World()
        self.world.rate_reset = int(time.time()) + 3600
        self._dispatch = Dispatcher(self.contract, OPERATIONS, self.world)
        self._dispatch.web = web
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for token, login in (tokens or {"ghp_fake": "hitl-bot"}).items():
            self.add_token(token, login)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeGitHub:
        handler = type("Handler", (RequestHandler,), {"dispatcher": self._dispatch})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._dispatch.api = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.stop()
        if exc is None:
            self.assert_clean()
        elif self.violations:  # likely the cause of ``exc``; it stays chained as context
            raise ContractViolation(self._report())

    @property
    def url(self) -> str:
        """Base URL for clients (``GITHUB_API_URL``, PyGithub's ``base_url``), no slash."""
        if self._server is None:
            raise RuntimeError("FakeGitHub is not started: use `with FakeGitHub() as gh:`")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token(self) -> str:
        """The first configured token."""
        return next(iter(self._dispatch.tokens))

    # -- contract -----------------------------------------------------------------------------
    @property
    def violations(self) -> list[str]:
        """Violations so far (the live list)."""
        return self._dispatch.violations

    def take_violations(self) -> list[str]:
        """Return the violations so far and forget them (for tests that expect some)."""
        with self._dispatch.lock:
            taken = list(self.violations)
            self.violations.clear()
            return taken

    def assert_clean(self, *, faults_consumed: bool = True) -> None:
        """Raise :class:`ContractViolation` for any violation and, unless told otherwise, for
        scripted faults no request used (a test whose fault never fired proves nothing)."""
        with self._dispatch.lock:
            if faults_consumed:
                self.violations.extend(
                    f"scripted fault never used: {f.route} ({f.remaining} left)"
                    for f in self._dispatch.faults
                    if f.remaining
                )
                self._dispatch.faults.clear()
            if self.violations:
                raise ContractViolation(self._report())

    def _report(self) -> str:
        head = f"{len(self.violations)} GitHub contract violation(s), spec {self.contract.version}:"
        return "\n".join([head, *(f"  - {v}" for v in self.violations)])

    # -- seeding ------------------------------------------------------------------------------
    def add_token(self, token: str, login: str) -> None:
        """Let ``token`` act as ``login`` (creating the user)."""
        with self._dispatch.lock:
            self.world.add_user(login)
            self._dispatch.tokens[token] = login

    def add_user(self, login: str, **kwargs: Any) -> None:
        """A user; optional ``type`` ("User" or "Bot"), ``name``, ``email``, ``site_admin``."""
        with self._dispatch.lock:
            self.world.add_user(login, **kwargs)

    def add_org(self, login: str) -> None:
        with self._dispatch.lock:
            self.world.add_org(login)

    def add_org_member(self, org: str, login: str, *, public: bool = True) -> None:
        """Org membership; ``author_association`` shows MEMBER only when it is public."""
        with self._dispatch.lock:
            self.world.add_user(login)
            self.world.add_org(org).members[login.lower()] = public

    def add_team(
        self,
        org: str,
        slug: str,
        *,
        name: str | None = None,
        parent: str | None = None,
        members: Mapping[str, str] | list[str] | None = None,
    ) -> None:
        """A team of ``org``; ``members`` is a list of logins or login -> role ("member" or
        "maintainer"); ``parent`` is the parent team's slug (its members include ours)."""
        with self._dispatch.lock:
            self.world.add_org(org)
            team = Team(self.world.new_id(), org, slug, name or slug, parent)
            self.world.teams[(org.lower(), slug.lower())] = team
            if isinstance(members, Mapping):
                roles = dict(members)
            else:
                roles = dict.fromkeys(members or [], "member")
            for login, role in roles.items():
                self.add_team_member(org, slug, login, role=role)

    def add_team_member(
        self, org: str, slug: str, login: str, *, role: str = "member", state: str = "active"
    ) -> None:
        """``state`` is "active" or "pending" (invited, not yet accepted)."""
        with self._dispatch.lock:
            self.world.add_user(login)
            team = self.world.team(org, slug)
            if team is None:
                raise KeyError(f"no team {org}/{slug}: call add_team first")
            team.members[login.lower()] = (role, state)

    def add_repo(self, full_name: str, **kwargs: Any) -> Repo:
        """A repository with one commit; optional ``default_branch`` ("main"), ``private``
        (True), ``description``, ``files`` (path -> text or bytes; default a README)."""
        with self._dispatch.lock:
            return self.world.add_repo(full_name, **kwargs)

    def add_collaborator(self, full_name: str, login: str, role: str = "write") -> None:
        """Grant a repository role: read, triage, write, maintain or admin."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        with self._dispatch.lock:
            self.world.add_user(login)
            self.repo(full_name).collaborators[login.lower()] = role

    def add_label(
        self, full_name: str, name: str, *, color: str = "ededed", description: str | None = None
    ) -> None:
        with self._dispatch.lock:
            label = Label(self.world.new_id(), name, color, description)
            self.repo(full_name).labels[name.lower()] = label

    def push_file(
        self,
        full_name: str,
        path: str,
        content: str | bytes,
        *,
        branch: str | None = None,
        message: str = "Update file",
        author: str | None = None,
    ) -> str:
        """Commit a file as a ``git push`` would (no API request, nothing logged) and return
        the commit sha. A new ``branch`` starts from the default branch."""
        with self._dispatch.lock:
            repo = self.repo(full_name)
            branch = branch or repo.default_branch
            head = repo.branch_sha(branch) or repo.branch_sha(repo.default_branch)
            if head is None:
                raise KeyError(f"{full_name} has no branch {repo.default_branch}")
            data = content.encode() if isinstance(content, str) else content
            who = author or repo.owner
            commit = repo.commit(
                parents=(head,),
                tree={**repo.commits[head].tree, path: repo.put_blob(data)},
                message=message,
                author=(who, f"{who}@users.noreply.github.com"),
                when=self.world.clock.tick(),
            )
            repo.refs[f"refs/heads/{branch}"] = commit.sha
            self._pushed(repo, branch)
            return commit.sha

    def force_push(self, full_name: str, branch: str, sha: str) -> None:
        """Point ``branch`` at commit ``sha``, as ``git push --force`` would (no API request)."""
        with self._dispatch.lock:
            repo = self.repo(full_name)
            if sha not in repo.commits:
                raise KeyError(f"{full_name} has no commit {sha}")
            repo.refs[f"refs/heads/{branch}"] = sha
            self._pushed(repo, branch)

    def _pushed(self, repo: Any, branch: str) -> None:
        # GitHub bumps a pull request's updated_at when its head branch moves.
        for issue in repo.issues.values():
            if issue.pull is not None and issue.pull.head_ref == branch and issue.state == "open":
                issue.updated_at = self.world.clock.tick()

    # -- history as a given user --------------------------------------------------------------
    def add_comment(self, full_name: str, number: int, login: str, body: str) -> int:
        """``login`` comments on issue or pull request ``number``; returns the comment id."""
        with self._dispatch.lock:
            user = self.world.add_user(login)
            repo = self.repo(full_name)
            issue = self.issue(full_name, number)
            return post_comment(self._dispatch.call(login), repo, issue, user.login, body).id

    def add_review(
        self,
        full_name: str,
        number: int,
        login: str,
        state: str = "APPROVED",
        *,
        body: str = "",
        commit_id: str | None = None,
    ) -> int:
        """``login`` submits a review (APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED or
        PENDING) of pull request ``number``, on its head unless ``commit_id``; returns its id.
        GitHub's rules apply: the author cannot approve, a comment needs a body."""
        with self._dispatch.lock:
            self.world.add_user(login)
            repo = self.repo(full_name)
            issue = self.issue(full_name, number)
            if issue.pull is None:
                raise ValueError(f"#{number} is an issue, not a pull request")
            call = self._dispatch.call(login)
            return submit_review(call, repo, issue, login, state, body, commit_id).id

    # -- inspection ---------------------------------------------------------------------------
    def repo(self, full_name: str) -> Repo:
        """The live state of a repository (read it; seed it through the methods above)."""
        owner, name = full_name.split("/")
        repo = self.world.repo(owner, name)
        if repo is None:
            raise KeyError(f"no repository {full_name}: call add_repo first")
        return repo

    def issue(self, full_name: str, number: int) -> Issue:
        """An issue, or a pull request (its ``pull`` is set), by number."""
        call = self._dispatch.call("", params={"issue_number": str(number)})
        return find_issue(call, self.repo(full_name))

    def file(self, full_name: str, path: str, ref: str | None = None) -> bytes | None:
        """A file's bytes at ``ref`` (a branch, tag or sha; default branch when None)."""
        repo = self.repo(full_name)
        sha = repo.resolve(ref)
        blob = repo.commits[sha].tree.get(path) if sha else None
        return None if blob is None else repo.blobs[blob]

    # -- request log --------------------------------------------------------------------------
    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request so far, oldest first."""
        with self._dispatch.lock:
            return list(self._dispatch.log)

    @property
    def request_count(self) -> int:
        return len(self._dispatch.log)

    def count(self, route: str | None = None, *, writes_only: bool = False) -> int:
        """Requests to ``route`` (operationId or ``"METHOD /pattern"``; None for all)."""
        return sum(
            1
            for r in self.requests
            if (not writes_only or r.is_write)
            and (route is None or route in (r.operation_id, f"{r.method} {r.pattern}"))
        )

    def clear_log(self) -> None:
        with self._dispatch.lock:
            self._dispatch.log.clear()

    # -- faults -------------------------------------------------------------------------------
    def fail_next(
        self,
        route: str,
        status: int = 502,
        *,
        times: int = 1,
        after_write: bool = False,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``times`` requests to ``route`` with ``status`` (and ``headers``,
        ``body``). With ``after_write`` the operation runs first and only its answer is lost.
        ``route``: an operationId the fake implements, ``"METHOD /pattern"``, or ``"*"``."""
        self._add_fault(Fault(route, times, status, after_write, dict(headers or {}), body))

    def rate_limit_next(
        self,
        route: str,
        *,
        kind: str = "secondary",
        status: int = 403,
        retry_after: int = 1,
        times: int = 1,
    ) -> None:
        """Answer like GitHub's rate limits (``status`` 403 or 429): ``secondary`` sends
        ``Retry-After``; ``primary`` sends ``X-RateLimit-Remaining: 0`` and a reset time
        ``retry_after`` seconds away."""
        if kind == "secondary":
            headers = {"Retry-After": str(retry_after)}
            message = SECONDARY_RATE_LIMIT_MESSAGE
        elif kind == "primary":
            headers = {
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + retry_after),
            }
            message = "API rate limit exceeded for user ID 1."
        else:
            raise ValueError(f"kind is 'secondary' or 'primary', not {kind!r}")
        body = {"message": message, "documentation_url": _RATE_LIMIT_DOCS}
        self.fail_next(route, status, times=times, headers=headers, body=body)

    def tamper_next(self, route: str, edit: Callable[[Any], Any], *, times: int = 1) -> None:
        """Pass the next real answer's JSON body through ``edit`` before it is validated and
        sent: the way to prove that the fake's response validation bites."""
        self._add_fault(Fault(route, times, edit=edit))

    def _add_fault(self, fault: Fault) -> None:
        route = fault.route
        if route != "*" and " " not in route and route not in OPERATIONS:
            raise ValueError(f"{route!r} is not an operation the fake implements")
        with self._dispatch.lock:
            self._dispatch.faults.append(fault)
