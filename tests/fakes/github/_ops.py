"""How the fake GitHub's operations are written, plus the small read-only ones.

An operation is a function ``(Call) -> Reply`` registered under its OpenAPI ``operationId``
(``@OPERATIONS.add("repos/get")``). It raises :class:`ApiError` for the errors GitHub would
answer, and :class:`NotModelled` for inputs the fake does not model (the server records that as
a contract violation, so a test never passes on behaviour the fake made up).
Operations on issues, pull requests, refs and contents live in the sibling ``_ops_*``
modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ._render import Renderer
from ._state import Repo, World

DOCS = "https://docs.github.com/rest"


class ApiError(Exception):
    """An error answer as GitHub would send it (``basic-error`` or ``validation-error``)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: Sequence[Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.body: dict[str, Any] = {
            "message": message,
            "documentation_url": DOCS,
            "status": str(status),
        }
        if errors is not None:
            self.body["errors"] = list(errors)
        self.headers = dict(headers or {})


class NotModelled(Exception):
    """The request is valid for GitHub but this fake does not model it."""


def validation_failed(*errors: dict[str, Any]) -> ApiError:
    return ApiError(422, "Validation Failed", errors=errors)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None  # JSON-able; None sends no body
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One authenticated request, as an operation sees it."""

    world: World
    render: Renderer
    user: str
    path: str
    params: Mapping[str, str]
    query: Mapping[str, list[str]]
    body: Any

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def field(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default) if isinstance(self.body, dict) else default

    def repo(self, *, write: bool = False) -> Repo:
        """The addressed repository, as the caller may see it (404 hides private ones)."""
        repo = self.world.repo(self.params["owner"], self.params["repo"])
        if repo is None:
            raise ApiError(404, "Not Found")
        role = self.world.role(repo, self.user)
        if repo.private and role is None:
            raise ApiError(404, "Not Found")
        if write and role not in ("write", "maintain", "admin"):
            raise ApiError(403, "Resource not accessible by personal access token")
        return repo

    def number(self, name: str) -> int:
        return int(self.params[name])

    def paginate(self, items: Sequence[Any]) -> Reply:
        """One page of ``items`` with GitHub's ``Link`` header (per_page at most 100)."""
        per_page = max(1, min(100, int(self.arg("per_page", "30") or 30)))
        page = max(1, int(self.arg("page", "1") or 1))
        last = max(1, -(-len(items) // per_page))
        chunk = list(items[(page - 1) * per_page : page * per_page])
        links = []
        for rel, target in (("prev", page - 1), ("next", page + 1), ("first", 1), ("last", last)):
            if (rel in ("prev", "first") and page > 1) or (rel in ("next", "last") and page < last):
                query = {k: v[-1] for k, v in self.query.items()}
                query.update(page=str(target), per_page=str(per_page))
                links.append(f'<{self.render.api}{self.path}?{urlencode(query)}>; rel="{rel}"')
        return Reply(200, chunk, {"Link": ", ".join(links)} if links else {})


Operation = Callable[[Call], Reply]


class Operations(dict[str, Operation]):
    """operationId -> operation."""

    def add(self, operation_id: str) -> Callable[[Operation], Operation]:
        def register(fn: Operation) -> Operation:
            self[operation_id] = fn
            return fn

        return register


OPERATIONS = Operations()


@OPERATIONS.add("users/get-authenticated")
def get_authenticated_user(call: Call) -> Reply:
    return Reply(200, call.render.private_user(call.user))


@OPERATIONS.add("rate-limit/get")
def get_rate_limit(call: Call) -> Reply:
    return Reply(200, call.render.rate_limit(call.world.requests_used, call.world.rate_reset))


@OPERATIONS.add("repos/get")
def get_repo(call: Call) -> Reply:
    repo = call.repo()
    return Reply(200, call.render.repository(repo, full=True, viewer=call.user))


@OPERATIONS.add("repos/get-collaborator-permission-level")
def get_collaborator_permission(call: Call) -> Reply:
    repo = call.repo()
    username = call.params["username"]
    if call.world.user(username) is None:
        raise ApiError(404, f"{username} is not a user")
    return Reply(200, call.render.collaborator_permission(repo, username))


@OPERATIONS.add("repos/list-collaborators")
def list_collaborators(call: Call) -> Reply:
    """Everyone with a role on the repository (``affiliation=all``; the owner included), by
    login; only for callers with push access, as on GitHub."""
    repo = call.repo()
    if call.world.role(repo, call.user) not in ("write", "maintain", "admin"):
        raise ApiError(403, "Must have push access to view repository collaborators.")
    if call.arg("affiliation", "all") != "all" or call.arg("permission", None):
        raise NotModelled("collaborator filters other than affiliation=all")
    logins = sorted({repo.owner, *repo.collaborators}, key=str.lower)
    known = [login for login in logins if call.world.user(login) is not None]
    return call.paginate([call.render.collaborator(repo, login) for login in known])


@OPERATIONS.add("orgs/get")
def get_org(call: Call) -> Reply:
    if call.params["org"].lower() not in call.world.orgs:
        raise ApiError(404, "Not Found")
    return Reply(200, call.render.organization_full(call.params["org"]))


@OPERATIONS.add("teams/get-by-name")
def get_team(call: Call) -> Reply:
    team = call.world.team(call.params["org"], call.params["team_slug"])
    if team is None:
        raise ApiError(404, "Not Found")
    return Reply(200, call.render.team_full(team))


@OPERATIONS.add("teams/get-membership-for-user-in-org")
def get_team_membership(call: Call) -> Reply:
    """Child-team members count as members of the parent, as on GitHub."""
    org, slug, username = call.params["org"], call.params["team_slug"], call.params["username"]
    team = call.world.team(org, slug)
    found = call.world.team_membership(org, slug, username)
    if team is None or found is None:
        raise ApiError(404, "Not Found")
    return Reply(200, call.render.team_membership(team, username, *found))
