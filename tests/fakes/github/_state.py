"""The state behind the fake GitHub server: users, orgs, teams, repos with git history, issues
and pull requests, comments, reviews and labels.

Git is modelled as GitHub's contents API sees it: each commit holds a whole flat tree
(path -> blob sha); blob shas are real git blob hashes, so a sha a client computes locally
(``git hash-object``) matches. Issues and pull requests share one numbering per repository, as on
GitHub; a pull request is an :class:`Issue` whose ``pull`` is set.

Time comes from :class:`Clock`, which steps one second per event from a fixed start, so
timestamps are deterministic and strictly ordered (history replays sort by them).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

#: Repository roles, lowest first, and the legacy ``permission`` each maps to
#: ("the maintain role is mapped to write and the triage role is mapped to read").
ROLES: dict[str, str] = {
    "read": "read",
    "triage": "read",
    "write": "write",
    "maintain": "write",
    "admin": "admin",
}

ReviewState = Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"]


class Clock:
    """Deterministic time: every :meth:`tick` is one second after the previous one."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2024, 1, 1, tzinfo=timezone.utc)

    def tick(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now

    def now(self) -> datetime:
        return self._now


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def blob_sha(content: bytes) -> str:
    """The git blob id of ``content`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class User:
    id: int
    login: str
    type: Literal["User", "Bot", "Organization"] = "User"
    name: str | None = None
    email: str | None = None
    site_admin: bool = False
    created_at: datetime | None = None


@dataclass
class Team:
    id: int
    org: str
    slug: str
    name: str
    parent: str | None = None  # slug of the parent team
    description: str | None = None
    # lower-case login -> (role, state)
    members: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class Org:
    user: User
    members: dict[str, bool] = field(default_factory=dict)  # lower-case login -> public?


@dataclass(frozen=True)
class Commit:
    sha: str
    tree: dict[str, str]  # path -> blob sha
    tree_sha: str
    parents: tuple[str, ...]
    message: str
    author_name: str
    author_email: str
    date: datetime


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None
    default: bool = False


@dataclass
class Pull:
    id: int
    head_ref: str
    head_sha: str  # last known head commit; follows the branch while it exists
    base_ref: str
    draft: bool = False
    maintainer_can_modify: bool = False
    merged: bool = False
    merged_at: datetime | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    requested_reviewers: list[str] = field(default_factory=list)
    requested_teams: list[str] = field(default_factory=list)


@dataclass
class Issue:
    id: int
    number: int
    title: str
    body: str | None
    user: str
    created_at: datetime
    updated_at: datetime
    state: Literal["open", "closed"] = "open"
    state_reason: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    labels: list[str] = field(default_factory=list)  # label names, in the order added
    assignees: list[str] = field(default_factory=list)
    pull: Pull | None = None


@dataclass
class Comment:
    id: int
    issue_number: int
    user: str
    body: str
    created_at: datetime
    updated_at: datetime


@dataclass
class Review:
    id: int
    pull_number: int
    user: str
    state: ReviewState
    body: str
    commit_id: str
    submitted_at: datetime


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    private: bool
    default_branch: str
    description: str | None
    created_at: datetime
    pushed_at: datetime
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> commit sha
    commits: dict[str, Commit] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)  # lower-case name -> label
    collaborators: dict[str, str] = field(default_factory=dict)  # lower-case login -> role
    issues: dict[int, Issue] = field(default_factory=dict)
    comments: list[Comment] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    # -- git ----------------------------------------------------------------------------------
    def branch_sha(self, branch: str) -> str | None:
        return self.refs.get(f"refs/heads/{branch}")

    def resolve(self, ref: str | None) -> str | None:
        """A commit sha for a branch name, a ``refs/...`` name, a tag name or a sha."""
        if ref is None:
            return self.branch_sha(self.default_branch)
        for candidate in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if candidate in self.refs:
                return self.refs[candidate]
        return ref if ref in self.commits else None

    def ancestors(self, sha: str) -> set[str]:
        """``sha`` and every commit reachable from it."""
        seen: set[str] = set()
        stack = [sha]
        while stack:
            current = stack.pop()
            if current in seen or current not in self.commits:
                continue
            seen.add(current)
            stack.extend(self.commits[current].parents)
        return seen

    def commit(
        self,
        *,
        parents: tuple[str, ...],
        tree: dict[str, str],
        message: str,
        author: tuple[str, str],
        when: datetime,
    ) -> Commit:
        tree_sha = _sha1("\n".join(f"{p}\0{s}" for p, s in sorted(tree.items())))
        sha = _sha1(f"tree {tree_sha}\n{' '.join(parents)}\n{author}\n{iso(when)}\n{message}")
        made = Commit(sha, dict(tree), tree_sha, parents, message, author[0], author[1], when)
        self.commits[sha] = made
        self.pushed_at = when
        return made

    def put_blob(self, content: bytes) -> str:
        sha = blob_sha(content)
        self.blobs[sha] = content
        return sha

    # -- issues -------------------------------------------------------------------------------
    def next_number(self) -> int:
        return max(self.issues, default=0) + 1

    def issue_comments(self, number: int) -> list[Comment]:
        return [c for c in self.comments if c.issue_number == number]

    def pull_reviews(self, number: int) -> list[Review]:
        return [r for r in self.reviews if r.pull_number == number]

    def head_sha(self, issue: Issue) -> str:
        assert issue.pull is not None
        live = self.branch_sha(issue.pull.head_ref)
        if live is not None and not issue.pull.merged and issue.state == "open":
            issue.pull.head_sha = live
        return issue.pull.head_sha


class World:
    """Everything the fake GitHub knows. Not thread-safe: the server serialises access."""

    def __init__(self) -> None:
        self.clock = Clock()
        self._ids = itertools.count(1001)
        self.users: dict[str, User] = {}
        self.orgs: dict[str, Org] = {}
        self.teams: dict[tuple[str, str], Team] = {}
        self.repos: dict[str, Repo] = {}
        self.requests_used = 0  # what GET /rate_limit and the X-RateLimit-* headers report
        self.rate_reset = 0  # epoch seconds

    def new_id(self) -> int:
        return next(self._ids)

    # -- lookup (GitHub logins and repository names are case-insensitive) ----------------------
    def user(self, login: str) -> User | None:
        return self.users.get(login.lower())

    def repo(self, owner: str, name: str) -> Repo | None:
        return self.repos.get(f"{owner}/{name}".lower())

    def team(self, org: str, slug: str) -> Team | None:
        return self.teams.get((org.lower(), slug.lower()))

    # -- seeding --------------------------------------------------------------------------------
    def add_user(
        self,
        login: str,
        *,
        type: Literal["User", "Bot", "Organization"] = "User",
        name: str | None = None,
        email: str | None = None,
        site_admin: bool = False,
    ) -> User:
        existing = self.user(login)
        if existing is not None:
            return existing
        user = User(self.new_id(), login, type, name, email, site_admin, self.clock.tick())
        self.users[login.lower()] = user
        return user

    def add_org(self, login: str) -> Org:
        key = login.lower()
        if key not in self.orgs:
            user = self.add_user(login, type="Organization")
            user.type = "Organization"  # it may have been seeded as a repository owner
            self.orgs[key] = Org(user)
        return self.orgs[key]

    def add_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        private: bool = True,
        description: str | None = None,
        files: dict[str, str | bytes] | None = None,
    ) -> Repo:
        owner, name = full_name.split("/")
        if self.user(owner) is None:
            self.add_user(owner)
        created = self.clock.tick()
        repo = Repo(
            id=self.new_id(),
            owner=self.user(owner).login,  # type: ignore[union-attr]
            name=name,
            private=private,
            default_branch=default_branch,
            description=description,
            created_at=created,
            pushed_at=created,
        )
        tree = {
            path: repo.put_blob(content.encode() if isinstance(content, str) else content)
            for path, content in (files or {"README.md": f"# {name}\n"}).items()
        }
        root = repo.commit(
            parents=(),
            tree=tree,
            message="Initial commit",
            author=(repo.owner, f"{repo.owner}@users.noreply.github.com"),
            when=created,
        )
        repo.refs[f"refs/heads/{default_branch}"] = root.sha
        self.repos[full_name.lower()] = repo
        return repo

    # -- permissions ----------------------------------------------------------------------------
    def role(self, repo: Repo, login: str) -> str | None:
        """The user's highest repository role, or None (no access beyond public read)."""
        if login.lower() == repo.owner.lower():
            return "admin"
        # Org owners are not modelled: seed them as admin collaborators.
        return repo.collaborators.get(login.lower())

    def association(self, repo: Repo, login: str) -> str:
        """``author_association`` as GitHub reports it (private org members look like
        CONTRIBUTOR, see actions/github-script#643)."""
        if login.lower() == repo.owner.lower():
            return "OWNER"
        org = self.orgs.get(repo.owner.lower())
        if org is not None and login.lower() in org.members:
            return "MEMBER" if org.members[login.lower()] else "CONTRIBUTOR"
        if self.role(repo, login) is not None:
            return "COLLABORATOR"
        return "NONE"

    def team_membership(self, org: str, slug: str, login: str) -> tuple[str, str] | None:
        """(role, state) of ``login`` in the team or any of its child teams."""
        team = self.team(org, slug)
        if team is None:
            return None
        found = team.members.get(login.lower())
        if found is not None:
            return found
        for child in self.teams.values():
            if (
                child.org.lower() == team.org.lower()
                and (child.parent or "").lower() == team.slug.lower()
            ):
                found = self.team_membership(org, child.slug, login)
                if found is not None:
                    return found
        return None
