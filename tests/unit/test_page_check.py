"""The rules of :func:`~metaflow_hitl.github.page_check.page_problems`, one change at a time.

The page, its files and commits are shaped like GitHub's REST answers (``GET /pulls/N``,
``/pulls/N/files``, ``/pulls/N/commits``; https://docs.github.com/rest/pulls/pulls); the
``sha`` of a files entry is the file's git blob id at the head
(https://docs.github.com/rest/pulls/pulls#list-pull-requests-files), which
:func:`git_blob_sha` computes as ``git hash-object`` does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from metaflow_hitl.github.page_check import (
    git_blob_sha,
    page_problems,
    publication_for,
    text_digest,
)
from metaflow_hitl.render.documents import (
    approval_path,
    branch_for,
    render_approval_file,
    render_issue_body,
    render_pr_body,
    render_pr_title,
)
from tests.support.builders import T0, build_request

REPO = "acme/approvals"
BOT = "hitl-bot"
REQUEST = build_request(review={"backend": "github", "repo": REPO, "mode": "pr"})
FILE = render_approval_file(REQUEST)
PUBLISHED = publication_for(
    REQUEST,
    {"backend": "github", "location": f"github:{REPO}", "mode": "pr", "number": "7"},
    FILE,
    T0,
)
ISSUE_PUBLISHED = publication_for(
    REQUEST,
    {"backend": "github", "location": f"github:{REPO}", "mode": "issue", "number": "8"},
    "",
    T0,
)


def _pull() -> dict[str, Any]:
    return {
        "number": 7,
        "title": render_pr_title(REQUEST),
        "body": render_pr_body(REQUEST),
        "user": {"login": BOT},
        "head": {"ref": branch_for(REQUEST.gate_id), "repo": {"full_name": REPO}, "sha": "h1"},
        "base": {"ref": "main"},
    }


def _files() -> list[dict[str, Any]]:
    return [
        {"filename": approval_path(REQUEST.gate_id), "status": "added", "sha": git_blob_sha(FILE)}
    ]


def _commits() -> list[dict[str, Any]]:
    return [{"sha": "h1" + "0" * 38, "author": {"login": BOT}}]


def _check(
    page: dict[str, Any] | None = None,
    files: list[dict[str, Any]] | None = None,
    commits: list[dict[str, Any]] | None = None,
    publication: Any = PUBLISHED,
) -> list[str]:
    return page_problems(
        REQUEST,
        page if page is not None else _pull(),
        repo=REPO,
        is_pull=True,
        publication=publication,
        default_branch="main",
        files=files if files is not None else _files(),
        commits=commits if commits is not None else _commits(),
    )


def test_the_page_as_published_is_intact() -> None:
    assert _check() == []
    issue = {"number": 8, "title": render_pr_title(REQUEST), "body": render_issue_body(REQUEST)}
    assert (
        page_problems(REQUEST, issue, repo=REPO, is_pull=False, publication=ISSUE_PUBLISHED) == []
    )


def test_line_endings_and_outer_whitespace_do_not_count_as_edits() -> None:
    page = _pull()
    page["body"] = "\n" + page["body"].replace("\n", "\r\n") + "  \n"
    assert _check(page) == []


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(page: dict[str, Any]) -> None:
        target = page
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


PAGE_CHANGES = [
    ("title", _set(("title",), "Deploy v3 everywhere"), "its title was edited"),
    (
        "body around the marker",
        lambda p: p.update(body=p["body"] + "\n\nAlso: deploy to prod."),
        "description was edited",
    ),
    ("body emptied", _set(("body",), ""), "description was edited"),
    ("another number", _set(("number",), 9), "not the page metaflow-hitl opened"),
    ("head branch", _set(("head", "ref"), "hitl/Other/1/gate"), "not from the gate's branch"),
    ("head from a fork", _set(("head", "repo"), {"full_name": "evil/approvals"}), "evil/approvals"),
    ("base", _set(("base", "ref"), "release"), "not the default branch 'main'"),
]


@pytest.mark.parametrize(
    ("case", "change", "problem"), PAGE_CHANGES, ids=[c[0] for c in PAGE_CHANGES]
)
def test_each_change_to_the_page_is_named(
    case: str, change: Callable[[dict[str, Any]], None], problem: str
) -> None:
    page = _pull()
    change(page)
    problems = _check(page)
    assert len(problems) == 1, problems
    assert problem in problems[0]


FILE_CHANGES = [
    (
        "approval file rewritten",
        [{**_files()[0], "sha": git_blob_sha("Deploy everywhere\n")}],
        "is not the one metaflow-hitl committed",
    ),
    (
        "a workflow added",
        [*_files(), {"filename": ".github/workflows/x.yml", "status": "added", "sha": "a" * 40}],
        "changes files other than",
    ),
    ("approval file deleted", [], "does not add the approval file"),
    (
        "approval file modified, not added",
        [{**_files()[0], "status": "modified"}],
        "does not add the approval file",
    ),
]


@pytest.mark.parametrize(
    ("case", "files", "problem"), FILE_CHANGES, ids=[c[0] for c in FILE_CHANGES]
)
def test_each_change_to_the_diff_is_named(
    case: str, files: list[dict[str, Any]], problem: str
) -> None:
    problems = _check(files=files)
    assert any(problem in p for p in problems), problems


COMMIT_CHANGES = [
    (
        "a second commit by carol",
        [*_commits(), {"sha": "c" * 40, "author": {"login": "carol"}}],
        "by carol",
    ),
    ("the commit by someone else", [{"sha": "c" * 40, "author": {"login": "carol"}}], "by carol"),
    ("an unlinked author", [{"sha": "c" * 40, "author": None}], "by an unknown account"),
    (
        "two commits by the bot",
        [*_commits(), {"sha": "d" * 40, "author": {"login": BOT}}],
        "holds 2",
    ),
]


@pytest.mark.parametrize(
    ("case", "commits", "problem"), COMMIT_CHANGES, ids=[c[0] for c in COMMIT_CHANGES]
)
def test_each_change_to_the_commits_is_named(
    case: str, commits: list[dict[str, Any]], problem: str
) -> None:
    problems = _check(commits=commits)
    assert any(problem in p for p in problems), problems


def test_no_publication_record_is_a_problem_whatever_the_page() -> None:
    problems = _check(publication=None)
    assert problems == [problems[0]]
    assert "holds no record" in problems[0]


def test_a_record_of_another_mode_does_not_vouch_for_the_page() -> None:
    assert ISSUE_PUBLISHED is not None
    problems = _check(publication=replace(ISSUE_PUBLISHED, number=7))
    assert any("published as an issue" in p for p in problems), problems


def test_the_record_is_what_was_rendered_not_what_a_newer_release_would_render() -> None:
    """A page is checked against the digests stored when it opened: a release whose
    templates render differently still recognises it, and a page that matches the new
    rendering but not the record is a changed page."""
    assert PUBLISHED is not None
    old_release = replace(PUBLISHED, body_sha256=text_digest("the body as 0.1.9 rendered it"))
    page = _pull()
    page["body"] = "the body as 0.1.9 rendered it"
    assert _check(page, publication=old_release) == []
    assert any("description was edited" in p for p in _check(publication=old_release))


def test_publication_for_records_digests_and_the_blob_sha() -> None:
    assert PUBLISHED is not None
    assert (PUBLISHED.repo, PUBLISHED.mode, PUBLISHED.number) == (REPO, "pr", 7)
    assert PUBLISHED.file_path == approval_path(REQUEST.gate_id)
    assert PUBLISHED.title_sha256 == text_digest(render_pr_title(REQUEST))
    assert ISSUE_PUBLISHED is not None
    assert (ISSUE_PUBLISHED.file_sha, ISSUE_PUBLISHED.file_path) == (None, None)
    assert ISSUE_PUBLISHED.body_sha256 == text_digest(render_issue_body(REQUEST))
    local = {"backend": "git", "location": "/tmp/r", "mode": "pr", "number": None}
    assert publication_for(REQUEST, local, FILE, T0) is None


@pytest.mark.parametrize("content", ["", "x\n", "Deploy — ✓\n", FILE])
def test_git_blob_sha_is_git_hash_object(content: str) -> None:
    done = subprocess.run(
        ["git", "hash-object", "--stdin"],
        input=content.encode(),
        capture_output=True,
        check=True,
    )
    assert git_blob_sha(content) == done.stdout.decode().strip()
