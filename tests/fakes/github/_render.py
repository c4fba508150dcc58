"""GitHub-shaped JSON for the fake GitHub server's state.

Each function builds one schema of GitHub's OpenAPI description (named in its docstring) with
every property the schema requires; the server validates the result, so a missing or mistyped
field here fails the test that caused the response. API URLs point at the fake (PyGithub follows
``url`` fields and refuses other hosts); web URLs (``html_url``) point at ``web``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ._state import ROLES, Comment, Issue, Label, Repo, Review, Team, User, World, iso

_REPO_URL_SUFFIXES = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


@dataclass(frozen=True)
class Renderer:
    world: World
    api: str  # the fake's base URL, no trailing slash
    web: str = "https://github.com"

    # -- people ---------------------------------------------------------------------------------
    def simple_user(self, login: str) -> dict[str, Any]:
        """``simple-user`` (also fits ``nullable-simple-user``)."""
        user = self.world.user(login) or User(0, login)
        u = f"{self.api}/users/{quote(user.login)}"
        return {
            "login": user.login,
            "id": user.id,
            "node_id": f"U_{user.id}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
            "gravatar_id": "",
            "url": u,
            "html_url": f"{self.web}/{quote(user.login)}",
            "followers_url": f"{u}/followers",
            "following_url": f"{u}/following{{/other_user}}",
            "gists_url": f"{u}/gists{{/gist_id}}",
            "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{u}/subscriptions",
            "organizations_url": f"{u}/orgs",
            "repos_url": f"{u}/repos",
            "events_url": f"{u}/events{{/privacy}}",
            "received_events_url": f"{u}/received_events",
            "type": user.type,
            "user_view_type": "public",
            "site_admin": user.site_admin,
        }

    def private_user(self, login: str) -> dict[str, Any]:
        """``private-user`` (what ``GET /user`` returns for the token's owner)."""
        user = self.world.user(login)
        assert user is not None
        return {
            **self.simple_user(login),
            "user_view_type": "private",
            "name": user.name,
            "company": None,
            "blog": "",
            "location": None,
            "email": user.email,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": iso(user.created_at),
            "updated_at": iso(user.created_at),
            "private_gists": 0,
            "total_private_repos": 0,
            "owned_private_repos": 0,
            "disk_usage": 0,
            "collaborators": 0,
            "two_factor_authentication": True,
        }

    def organization_full(self, login: str) -> dict[str, Any]:
        """``organization-full``."""
        user = self.world.user(login)
        assert user is not None
        o = f"{self.api}/orgs/{quote(user.login)}"
        return {
            "login": user.login,
            "id": user.id,
            "node_id": f"O_{user.id}",
            "url": o,
            "repos_url": f"{o}/repos",
            "events_url": f"{o}/events",
            "hooks_url": f"{o}/hooks",
            "issues_url": f"{o}/issues",
            "members_url": f"{o}/members{{/member}}",
            "public_members_url": f"{o}/public_members{{/member}}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
            "description": None,
            "html_url": f"{self.web}/{quote(user.login)}",
            "has_organization_projects": True,
            "has_repository_projects": True,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "type": "Organization",
            "created_at": iso(user.created_at),
            "updated_at": iso(user.created_at),
            "archived_at": None,
        }

    def collaborator_permission(self, repo: Repo, login: str) -> dict[str, Any]:
        """``repository-collaborator-permission``."""
        role = self.world.role(repo, login)
        permission = ROLES[role] if role else ("none" if repo.private else "read")
        return {
            "permission": permission,
            "role_name": role or permission,
            "user": self.collaborator(repo, login),
        }

    def collaborator(self, repo: Repo, login: str) -> dict[str, Any]:
        """``collaborator`` (``GET /repos/{o}/{r}/collaborators`` items)."""
        role = self.world.role(repo, login)
        permission = ROLES[role] if role else ("none" if repo.private else "read")
        level = list(ROLES).index(role) if role else -1
        return {
            **self.simple_user(login),
            "permissions": {
                "pull": level >= 0 or not repo.private,
                "triage": level >= 1,
                "push": level >= 2,
                "maintain": level >= 3,
                "admin": level >= 4,
            },
            "role_name": role or permission,
        }

    # -- teams ----------------------------------------------------------------------------------
    def team(self, team: Team) -> dict[str, Any]:
        """``team`` (also fits ``team-simple`` and ``nullable-team-simple``).

        ``url`` is the ``/orgs/{org}/teams/{slug}`` route (GitHub answers with
        ``/organizations/{id}/team/{id}``, which its description does not document), so a client
        that follows it, as PyGithub's ``Team.get_team_membership`` does, stays on documented
        routes.
        """
        t = f"{self.api}/orgs/{quote(team.org)}/teams/{quote(team.slug)}"
        parent = self.world.team(team.org, team.parent) if team.parent else None
        org = self.world.user(team.org)
        return {
            "id": team.id,
            "node_id": f"T_{team.id}",
            "url": t,
            "html_url": f"{self.web}/orgs/{quote(team.org)}/teams/{quote(team.slug)}",
            "name": team.name,
            "slug": team.slug,
            "description": team.description,
            "privacy": "closed",
            "notification_setting": "notifications_enabled",
            "permission": "pull",
            "members_url": f"{t}/members{{/member}}",
            "repositories_url": f"{t}/repos",
            "type": "organization",
            "organization_id": org.id if org else 0,
            "parent": self._team_simple(parent) if parent else None,
        }

    def _team_simple(self, team: Team) -> dict[str, Any]:
        full = self.team(team)
        del full["parent"]
        return full

    def team_full(self, team: Team) -> dict[str, Any]:
        """``team-full``."""
        return {
            **self.team(team),
            "created_at": iso(self.world.clock.now()),
            "updated_at": iso(self.world.clock.now()),
            "members_count": len(team.members),
            "repos_count": 0,
            "organization": self.organization_full(team.org),
        }

    def team_membership(self, team: Team, login: str, role: str, state: str) -> dict[str, Any]:
        """``team-membership``."""
        return {
            "url": f"{self.team(team)['url']}/memberships/{quote(login)}",
            "role": role,
            "state": state,
        }

    # -- repositories ---------------------------------------------------------------------------
    def repository(self, repo: Repo, *, full: bool = False, viewer: str | None = None) -> dict:
        """``repository``, or ``full-repository`` when ``full``."""
        r = f"{self.api}/repos/{quote(repo.owner)}/{quote(repo.name)}"
        html = f"{self.web}/{repo.owner}/{repo.name}"
        open_issues = sum(1 for i in repo.issues.values() if i.state == "open")
        body: dict[str, Any] = {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.simple_user(repo.owner),
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "html_url": html,
            "description": repo.description,
            "fork": False,
            "url": r,
            **{key: r + suffix for key, suffix in _REPO_URL_SUFFIXES.items()},
            "git_url": f"git://github.com/{repo.full_name}.git",
            "ssh_url": f"git@github.com:{repo.full_name}.git",
            "clone_url": f"{html}.git",
            "svn_url": html,
            "mirror_url": None,
            "homepage": None,
            "language": None,
            "forks": 0,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers": 0,
            "watchers_count": 0,
            "size": sum(len(b) for b in repo.blobs.values()) // 1024,
            "default_branch": repo.default_branch,
            "open_issues": open_issues,
            "open_issues_count": open_issues,
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "license": None,
            "pushed_at": iso(repo.pushed_at),
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.pushed_at),
            "allow_forking": False,
            "web_commit_signoff_required": False,
        }
        if viewer is not None:
            role = self.world.role(repo, viewer)
            level = list(ROLES).index(role) if role else -1
            body["permissions"] = {
                "admin": level >= 4,
                "maintain": level >= 3,
                "push": level >= 2,
                "triage": level >= 1,
                "pull": level >= 0 or not repo.private,
            }
        if full:
            org = self.world.orgs.get(repo.owner.lower())
            body.update(
                network_count=0,
                subscribers_count=0,
                allow_merge_commit=True,
                allow_squash_merge=True,
                allow_rebase_merge=True,
                allow_auto_merge=False,
                delete_branch_on_merge=False,
            )
            if org is not None:
                body["organization"] = self.simple_user(org.user.login)
        return body

    def git_ref(self, repo: Repo, ref: str) -> dict[str, Any]:
        """``git-ref``."""
        r = f"{self.api}/repos/{quote(repo.owner)}/{quote(repo.name)}"
        sha = repo.refs[ref]
        return {
            "ref": ref,
            "node_id": f"REF_{repo.id}_{ref}",
            "url": f"{r}/git/{quote(ref)}",
            "object": {"type": "commit", "sha": sha, "url": f"{r}/git/commits/{sha}"},
        }

    def _content_links(self, repo: Repo, path: str, ref: str, sha: str) -> dict[str, Any]:
        r = f"{self.api}/repos/{quote(repo.owner)}/{quote(repo.name)}"
        url = f"{r}/contents/{quote(path)}?ref={quote(ref, safe='')}"
        git = f"{r}/git/blobs/{sha}"
        html = f"{self.web}/{repo.full_name}/blob/{quote(ref)}/{quote(path)}"
        return {
            "url": url,
            "git_url": git,
            "html_url": html,
            "download_url": f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}",
            "_links": {"self": url, "git": git, "html": html},
        }

    def content_file(self, repo: Repo, path: str, ref: str, sha: str) -> dict[str, Any]:
        """``content-file``; ``content`` is base64 in 60-character lines, as GitHub sends it."""
        data = repo.blobs[sha]
        encoded = base64.b64encode(data).decode()
        lines = [encoded[i : i + 60] for i in range(0, len(encoded), 60)]
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": "".join(line + "\n" for line in lines),
            "sha": sha,
            **self._content_links(repo, path, ref, sha),
        }

    def content_entry(self, repo: Repo, path: str, ref: str, sha: str | None) -> dict[str, Any]:
        """One item of ``content-directory`` (``sha`` None means a directory)."""
        name = path.rsplit("/", 1)[-1]
        if sha is None:  # directories get a placeholder sha: trees are not modelled
            links = self._content_links(repo, path, ref, "0" * 40)
            links["download_url"] = None
            links["html_url"] = links["html_url"].replace("/blob/", "/tree/", 1)
            links["_links"]["html"] = links["html_url"]
            return {"type": "dir", "size": 0, "name": name, "path": path, "sha": "0" * 40, **links}
        entry = self.content_file(repo, path, ref, sha)
        del entry["content"], entry["encoding"]
        return entry

    def file_commit(self, repo: Repo, path: str, branch: str, commit_sha: str) -> dict:
        """``file-commit`` (the answer to a contents PUT)."""
        r = f"{self.api}/repos/{quote(repo.owner)}/{quote(repo.name)}"
        commit = repo.commits[commit_sha]
        sha = commit.tree[path]
        content = self.content_file(repo, path, branch, sha)
        del content["content"], content["encoding"]
        person = {
            "name": commit.author_name,
            "email": commit.author_email,
            "date": iso(commit.date),
        }
        return {
            "content": content,
            "commit": {
                "sha": commit.sha,
                "node_id": f"C_{commit.sha[:12]}",
                "url": f"{r}/git/commits/{commit.sha}",
                "html_url": f"{self.web}/{repo.full_name}/commit/{commit.sha}",
                "author": person,
                "committer": person,
                "message": commit.message,
                "tree": {"url": f"{r}/git/trees/{commit.tree_sha}", "sha": commit.tree_sha},
                "parents": [
                    {
                        "url": f"{r}/git/commits/{p}",
                        "html_url": f"{self.web}/{repo.full_name}/commit/{p}",
                        "sha": p,
                    }
                    for p in commit.parents
                ],
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
        }

    def commit(self, repo: Repo, sha: str) -> dict[str, Any]:
        """``commit`` (an item of ``GET /repos/{owner}/{repo}/commits``). The GitHub account
        is the user whose login is the author name, if there is one (GitHub matches emails)."""
        r = f"{self.api}/repos/{quote(repo.owner)}/{quote(repo.name)}"
        commit = repo.commits[sha]
        person = {
            "name": commit.author_name,
            "email": commit.author_email,
            "date": iso(commit.date),
        }
        account = (
            self.simple_user(commit.author_name) if self.world.user(commit.author_name) else None
        )
        return {
            "url": f"{r}/commits/{sha}",
            "sha": sha,
            "node_id": f"C_{sha[:12]}",
            "html_url": f"{self.web}/{repo.full_name}/commit/{sha}",
            "comments_url": f"{r}/commits/{sha}/comments",
            "commit": {
                "url": f"{r}/git/commits/{sha}",
                "author": person,
                "committer": person,
                "message": commit.message,
                "comment_count": 0,
                "tree": {"url": f"{r}/git/trees/{commit.tree_sha}", "sha": commit.tree_sha},
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "author": account,
            "committer": account,
            "parents": [
                {
                    "sha": p,
                    "url": f"{r}/commits/{p}",
                    "html_url": f"{self.web}/{repo.full_name}/commit/{p}",
                }
                for p in commit.parents
            ],
        }

    # -- issues and pull requests -----------------------------------------------------------------
    def label(self, repo: Repo, label: Label) -> dict[str, Any]:
        """``label``."""
        r = f"{self.api}/repos/{quote(repo.owner)}/{quote(repo.name)}"
        return {
            "id": label.id,
            "node_id": f"LA_{label.id}",
            "url": f"{r}/labels/{quote(label.name)}",
            "name": label.name,
            "description": label.description,
            "color": label.color,
            "default": label.default,
        }

    def _labels(self, repo: Repo, issue: Issue) -> list[dict[str, Any]]:
        return [self.label(repo, repo.labels[name.lower()]) for name in issue.labels]

    def issue(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        """``issue`` (pull requests included, with ``pull_request`` set)."""
        r = f"{self.api}/repos/{quote(repo.owner)}/{quote(repo.name)}"
        i = f"{r}/issues/{issue.number}"
        kind = "pull" if issue.pull else "issues"
        body: dict[str, Any] = {
            "id": issue.id,
            "node_id": f"I_{issue.id}",
            "url": i,
            "repository_url": r,
            "labels_url": f"{i}/labels{{/name}}",
            "comments_url": f"{i}/comments",
            "events_url": f"{i}/events",
            "timeline_url": f"{i}/timeline",
            "html_url": f"{self.web}/{repo.full_name}/{kind}/{issue.number}",
            "number": issue.number,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "title": issue.title,
            "body": issue.body,
            "user": self.simple_user(issue.user),
            "labels": self._labels(repo, issue),
            "assignee": self.simple_user(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.simple_user(a) for a in issue.assignees],
            "milestone": None,
            "locked": False,
            "active_lock_reason": None,
            "comments": len(repo.issue_comments(issue.number)),
            "closed_at": iso(issue.closed_at),
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_by": self.simple_user(issue.closed_by) if issue.closed_by else None,
            "author_association": self.world.association(repo, issue.user),
        }
        if issue.pull is not None:
            p = f"{self.web}/{repo.full_name}/pull/{issue.number}"
            body["pull_request"] = {
                "url": f"{r}/pulls/{issue.number}",
                "html_url": p,
                "diff_url": f"{p}.diff",
                "patch_url": f"{p}.patch",
                "merged_at": iso(issue.pull.merged_at),
            }
            body["draft"] = issue.pull.draft
        return body

    def pull(self, repo: Repo, issue: Issue, *, full: bool = True) -> dict[str, Any]:
        """``pull-request``, or ``pull-request-simple`` when not ``full``."""
        pull = issue.pull
        assert pull is not None
        r = f"{self.api}/repos/{quote(repo.owner)}/{quote(repo.name)}"
        p = f"{r}/pulls/{issue.number}"
        i = f"{r}/issues/{issue.number}"
        html = f"{self.web}/{repo.full_name}/pull/{issue.number}"
        head_sha = repo.head_sha(issue)
        base_sha = repo.branch_sha(pull.base_ref) or head_sha
        links = {
            "self": p,
            "html": html,
            "issue": i,
            "comments": f"{i}/comments",
            "review_comments": f"{p}/comments",
            "review_comment": f"{r}/pulls/comments{{/number}}",
            "commits": f"{p}/commits",
            "statuses": f"{r}/statuses/{head_sha}",
        }
        teams = [self.world.team(repo.owner, slug) for slug in pull.requested_teams]
        body: dict[str, Any] = {
            "url": p,
            "id": pull.id,
            "node_id": f"PR_{pull.id}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": i,
            "commits_url": f"{p}/commits",
            "review_comments_url": f"{p}/comments",
            "review_comment_url": f"{r}/pulls/comments{{/number}}",
            "comments_url": f"{i}/comments",
            "statuses_url": f"{r}/statuses/{head_sha}",
            "number": issue.number,
            "state": issue.state,
            "locked": False,
            "title": issue.title,
            "user": self.simple_user(issue.user),
            "body": issue.body,
            "labels": self._labels(repo, issue),
            "milestone": None,
            "active_lock_reason": None,
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at),
            "merged_at": iso(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": self.simple_user(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.simple_user(a) for a in issue.assignees],
            "requested_reviewers": [self.simple_user(u) for u in pull.requested_reviewers],
            "requested_teams": [self.team(t) for t in teams if t is not None],
            "head": self._branch(repo, pull.head_ref, head_sha),
            "base": self._branch(repo, pull.base_ref, base_sha),
            "_links": {k: {"href": v} for k, v in links.items()},
            "author_association": self.world.association(repo, issue.user),
            "auto_merge": None,
            "draft": pull.draft,
        }
        if full:
            base_tree = repo.commits[base_sha].tree if base_sha in repo.commits else {}
            head_tree = repo.commits[head_sha].tree if head_sha in repo.commits else {}
            changed = {
                p
                for p in base_tree.keys() | head_tree.keys()
                if base_tree.get(p) != head_tree.get(p)
            }
            ahead = repo.ancestors(head_sha) - repo.ancestors(base_sha)
            open_ = issue.state == "open"
            body.update(
                merged=pull.merged,
                mergeable=True if open_ else None,
                rebaseable=True if open_ else None,
                mergeable_state="clean" if open_ else "unknown",
                merged_by=self.simple_user(pull.merged_by) if pull.merged_by else None,
                comments=len(repo.issue_comments(issue.number)),
                review_comments=0,
                maintainer_can_modify=pull.maintainer_can_modify,
                commits=len(ahead),
                additions=sum(_lines(repo, head_tree.get(p)) for p in changed),
                deletions=sum(_lines(repo, base_tree.get(p)) for p in changed),
                changed_files=len(changed),
            )
        return body

    def _branch(self, repo: Repo, ref: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{repo.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self.simple_user(repo.owner),
            "repo": self.repository(repo),
        }

    def comment(self, repo: Repo, comment: Comment) -> dict[str, Any]:
        """``issue-comment``."""
        r = f"{self.api}/repos/{quote(repo.owner)}/{quote(repo.name)}"
        issue = repo.issues[comment.issue_number]
        kind = "pull" if issue.pull else "issues"
        return {
            "id": comment.id,
            "node_id": f"IC_{comment.id}",
            "url": f"{r}/issues/comments/{comment.id}",
            "html_url": f"{self.web}/{repo.full_name}/{kind}/{issue.number}"
            f"#issuecomment-{comment.id}",
            "issue_url": f"{r}/issues/{issue.number}",
            "body": comment.body,
            "user": self.simple_user(comment.user),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "author_association": self.world.association(repo, comment.user),
        }

    def review(self, repo: Repo, review: Review) -> dict[str, Any]:
        """``pull-request-review``."""
        r = f"{self.api}/repos/{quote(repo.owner)}/{quote(repo.name)}"
        html = (
            f"{self.web}/{repo.full_name}/pull/{review.pull_number}#pullrequestreview-{review.id}"
        )
        pull_url = f"{r}/pulls/{review.pull_number}"
        body: dict[str, Any] = {
            "id": review.id,
            "node_id": f"PRR_{review.id}",
            "user": self.simple_user(review.user),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": pull_url,
            "_links": {"html": {"href": html}, "pull_request": {"href": pull_url}},
            "commit_id": review.commit_id,
            "author_association": self.world.association(repo, review.user),
        }
        if review.state != "PENDING":
            body["submitted_at"] = iso(review.submitted_at)
        return body

    # -- misc -----------------------------------------------------------------------------------
    def rate_limit(self, used: int, reset: int) -> dict[str, Any]:
        """``rate-limit-overview``."""
        core = {"limit": 5000, "used": used, "remaining": max(0, 5000 - used), "reset": reset}
        idle = {"limit": 30, "used": 0, "remaining": 30, "reset": reset}
        return {
            "resources": {"core": core, "search": idle, "graphql": {**core, "used": 0}},
            "rate": core,
        }


def _lines(repo: Repo, sha: str | None) -> int:
    return 0 if sha is None else repo.blobs[sha].count(b"\n")
