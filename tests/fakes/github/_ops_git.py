"""Refs and the contents API of the fake GitHub.

Error answers follow GitHub where we know them; the ones marked [guess] in
``tests/fakes/README.md`` are our best reading of the REST docs, not observed traffic.
"""

from __future__ import annotations

import base64
import binascii

from ._ops import ApiError, Call, NotModelled, Operations, Reply
from ._state import Repo

OPERATIONS = Operations()


def _full_ref(call: Call) -> str:
    return "refs/" + call.params["ref"].removeprefix("refs/")


@OPERATIONS.add("git/get-ref")
def get_ref(call: Call) -> Reply:
    repo = call.repo()
    ref = _full_ref(call)
    if ref not in repo.refs:
        raise ApiError(404, "Not Found")
    return Reply(200, call.render.git_ref(repo, ref))


@OPERATIONS.add("git/create-ref")
def create_ref(call: Call) -> Reply:
    repo = call.repo(write=True)
    ref, sha = call.field("ref"), call.field("sha")
    if not ref.startswith("refs/") or ref.count("/") < 2:
        raise ApiError(422, "Reference name is invalid")  # [guess] wording
    if ref in repo.refs:
        raise ApiError(422, "Reference already exists")
    if sha not in repo.commits:
        raise ApiError(422, "Object does not exist")
    repo.refs[ref] = sha
    body = call.render.git_ref(repo, ref)
    return Reply(201, body, {"Location": body["url"]})


@OPERATIONS.add("git/update-ref")
def update_ref(call: Call) -> Reply:
    """``force`` false (the default) allows fast-forwards only."""
    repo = call.repo(write=True)
    ref, sha = _full_ref(call), call.field("sha")
    if ref not in repo.refs:
        raise ApiError(422, "Reference does not exist")
    if sha not in repo.commits:
        raise ApiError(422, "Object does not exist")
    if not call.field("force", False) and repo.refs[ref] not in repo.ancestors(sha):
        raise ApiError(422, "Update is not a fast forward")
    repo.refs[ref] = sha
    return Reply(200, call.render.git_ref(repo, ref))


@OPERATIONS.add("git/delete-ref")
def delete_ref(call: Call) -> Reply:
    repo = call.repo(write=True)
    ref = _full_ref(call)
    if ref not in repo.refs:
        raise ApiError(422, "Reference does not exist")
    del repo.refs[ref]
    return Reply(204)


def _commit_for(repo: Repo, ref: str | None) -> tuple[str, str]:
    """(ref name to echo, commit sha) for ``?ref=`` (default: the default branch)."""
    name = ref or repo.default_branch
    sha = repo.resolve(name)
    if sha is None:
        raise ApiError(404, f"No commit found for the ref {name}")
    return name, sha


@OPERATIONS.add("repos/get-content")
def get_content(call: Call) -> Reply:
    """A file (``content-file``) or a directory listing (``content-directory``)."""
    repo = call.repo()
    ref, sha = _commit_for(repo, call.arg("ref"))
    tree = repo.commits[sha].tree
    path = call.params["path"].strip("/")
    if path in tree:
        return Reply(200, call.render.content_file(repo, path, ref, tree[path]))
    prefix = path + "/"
    children: dict[str, str | None] = {}
    for file_path, blob in tree.items():
        if file_path.startswith(prefix):
            rest = file_path[len(prefix) :]
            child = prefix + rest.split("/", 1)[0]
            children[child] = blob if "/" not in rest else None
    if not children:
        raise ApiError(404, "Not Found")
    entries = [call.render.content_entry(repo, p, ref, s) for p, s in sorted(children.items())]
    return Reply(200, entries)


def _decode(content: str) -> bytes:
    try:
        return base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "content is not valid Base64") from None


@OPERATIONS.add("repos/create-or-update-file-contents")
def put_content(call: Call) -> Reply:
    """One commit on ``branch``; updating needs the current blob ``sha``.

    No ``sha`` for an existing file -> 422; a ``sha`` that is not the current blob -> 409;
    a missing branch -> 404 [guess].
    """
    repo = call.repo(write=True)
    path = call.params["path"].strip("/")
    branch = call.field("branch") or repo.default_branch
    head = repo.branch_sha(branch)
    if head is None:
        raise ApiError(404, f"Branch {branch} not found")
    data = _decode(call.field("content"))
    tree = dict(repo.commits[head].tree)
    current, given = tree.get(path), call.field("sha")
    if current is not None and given is None:
        raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
    if given is not None and given != current:
        raise ApiError(409, f"{path} does not match {given}")
    if any(p.startswith(path + "/") for p in tree) or any(path.startswith(p + "/") for p in tree):
        raise ApiError(422, f"{path} collides with a directory or file of the same name")
    tree[path] = repo.put_blob(data)
    person = call.field("committer") or call.field("author") or {}
    author = (
        person.get("name") or call.user,
        person.get("email") or f"{call.user}@users.noreply.github.com",
    )
    when = call.world.clock.tick()
    commit = repo.commit(
        parents=(head,), tree=tree, message=call.field("message"), author=author, when=when
    )
    repo.refs[f"refs/heads/{branch}"] = commit.sha
    body = call.render.file_commit(repo, path, branch, commit.sha)
    return Reply(201 if current is None else 200, body)


def _subtree(tree: dict[str, str], path: str) -> dict[str, str]:
    """The entries of ``tree`` at ``path`` (a file) or under it (a directory)."""
    prefix = path + "/"
    return {p: s for p, s in tree.items() if p == path or p.startswith(prefix)}


@OPERATIONS.add("repos/list-commits")
def list_commits(call: Call) -> Reply:
    """Commits reachable from ``sha`` (a branch, tag or sha; default branch when absent),
    newest first. With ``path``, only commits that changed it, simplified as ``git log --
    path`` does: a merge that matches one of its parents at ``path`` is left out."""
    repo = call.repo()
    for name in ("author", "committer", "since", "until"):
        if call.arg(name) is not None:
            raise NotModelled(f"filtering commits by {name}")
    start = repo.resolve(call.arg("sha"))
    if start is None:
        raise ApiError(404, "Not Found")
    path = (call.arg("path") or "").strip("/")
    found = []
    for sha in repo.ancestors(start):
        commit = repo.commits[sha]
        if path:
            mine = _subtree(commit.tree, path)
            parents = [_subtree(repo.commits[p].tree, path) for p in commit.parents]
            if (parents and any(mine == theirs for theirs in parents)) or (
                not parents and not mine
            ):
                continue
        found.append(commit)
    found.sort(key=lambda c: (c.date, c.sha), reverse=True)
    return call.paginate([call.render.commit(repo, c.sha) for c in found])
