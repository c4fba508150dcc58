"""A review repo on any git remote: a branch per gate, decisions as commits.

Works with every remote git speaks — a local bare repo, ``file://``, ``git://``,
``http(s)://``, ssh — through gitpython (which runs ``git`` with an argument list, never a
shell). Each operation works in a fresh temporary clone, so concurrent writers never share a
working tree; git's own rule (a push must fast-forward) arbitrates between them.

* :meth:`GitReviewBackend.open_review` pushes ``hitl/<flow>/<run>/<step>`` with the approval
  file at ``approvals/<flow>/<run>/<step>.md``, creating the branch only if it does not exist
  (``--force-with-lease=<ref>:``), so a retried notify changes nothing.
* :meth:`GitReviewBackend.record_decision` commits ``decisions/<flow>/<run>/<step>.json`` on the
  gate branch with the decider as author and git trailers in the message
  (``Hitl-Gate``, ``Hitl-Outcome``...), then merges the branch into the default branch and
  deletes it in the same atomic push (the merge keeps its history), so the repo holds a branch
  per *pending* gate and pushes stay fast at any size.
  A non-fast-forward rejection is retried from a fresh fetch; if the gate branch already holds a
  different decision, the first one stands and :class:`ReviewConflict` is raised.
* :meth:`GitReviewBackend.audit` reads the default branch's history: every decision commit.

Operations clone only the default branch and the gate's branch, with a sparse checkout of the
one file they write. See https://git-scm.com/docs/git-push (push rules, ``--force-with-lease``,
``--atomic``).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git

from metaflow_hitl.errors import RecordError, ReviewConflict, StoreError
from metaflow_hitl.records import Decision, Publication, Request, decode_record
from metaflow_hitl.render.documents import (
    approval_path,
    branch_for,
    decision_path,
    render_decision_record,
)
from metaflow_hitl.review.redact import redact
from metaflow_hitl.review.trailers import AuditEntry, decision_commit_message, open_commit_message

__all__ = ["GitReviewBackend", "branch_for"]

BOT_NAME = "metaflow-hitl"
BOT_EMAIL = "metaflow-hitl@users.noreply.github.com"
_ATTEMPTS = 8
# How git reports a push that lost a race (non-fast-forward, lease broken, ref created or
# moved by a concurrent push between its check and its update).
_REJECTED = (
    "[rejected]",
    "[remote rejected]",
    "stale info",
    "fetch first",
    "non-fast-forward",
    "cannot lock ref",
    "reference already exists",
    "failed to update ref",
)


def _author(login: str) -> git.Actor:
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", login) or "unknown"
    return git.Actor(safe, f"{safe}@users.noreply.github.com")


_BOT = git.Actor(BOT_NAME, BOT_EMAIL)


def _tree(repo: git.Repo) -> Path:
    if repo.working_tree_dir is None:  # pragma: no cover - our clones are never bare
        raise StoreError("internal: the review clone has no working tree")
    return Path(repo.working_tree_dir)


def _commit(repo: git.Repo, paths: list[str], message: str, author: git.Actor) -> None:
    """Commit through the git CLI (committer: the bot, from the clone's config).

    Not gitpython's IndexFile: its methods chdir into the working tree, which is process-wide
    and breaks concurrent operations in other threads.
    """
    repo.git.add("--", *paths)
    repo.git.commit("-q", "-m", message, f"--author={author.name} <{author.email}>")


class GitReviewBackend:
    """The review port over a git remote.

    Parameters
    ----------
    remote
        Anything ``git clone`` accepts. A path to a directory that does not exist yet is
        created as a bare repository on first use (the local default).
    default_branch
        The branch decisions are merged into.
    """

    kind = "git"

    def __init__(self, remote: str, *, default_branch: str = "main") -> None:
        self.remote = str(remote)
        self.location = redact(self.remote)  # shown to people: never with credentials
        self.default_branch = default_branch
        self.pushes = 0  # pushes made, for tests and benchmarks
        self._ready = False

    def __repr__(self) -> str:
        return f"GitReviewBackend({self.location!r})"

    # -- plumbing ---------------------------------------------------------------------------
    def _is_local_path(self) -> bool:
        return "://" not in self.remote and ":" not in self.remote.split("/")[0]

    def _ensure_local_remote(self) -> None:
        """Create the bare repository (with a first commit on the default branch) if absent."""
        if self._ready or not self._is_local_path():
            return
        path = Path(self.remote)
        if not (path / "HEAD").exists():
            try:
                path.mkdir(parents=True, exist_ok=True)
                git.Repo.init(path, bare=True, initial_branch=self.default_branch)
            except (OSError, git.GitError) as exc:
                raise StoreError(
                    f"review repo {self.remote} is not a git repository and cannot be created "
                    f"there: {exc}",
                    hint="Check the path (METAFLOW_HITL_REVIEW or review=) and its permissions.",
                ) from None
        elif self._has_default_branch(path):
            self._ready = True  # the usual case: no clone needed to find out
            return
        with self._clone(paths=("README.md",)) as repo:
            if any(r.remote_head == self.default_branch for r in repo.remotes.origin.refs):
                self._ready = True
                return
            readme = _tree(repo) / "README.md"
            readme.write_text(
                "# Approvals\n\nReview repo of metaflow-hitl: `approvals/` holds what each gate "
                "asked, `decisions/` what was decided; `git log` is the audit trail.\n"
            )
            _commit(repo, ["README.md"], "hitl: create review repo", _BOT)
            self._push(repo, f"HEAD:refs/heads/{self.default_branch}", create_only=True)
        self._ready = True  # created here, or by a concurrent writer that won the push

    def _has_default_branch(self, path: Path) -> bool:
        try:
            git.Repo(path).git.rev_parse("--verify", "--quiet", f"refs/heads/{self.default_branch}")
        except git.GitCommandError:
            return False
        return True

    @contextmanager
    def _clone(self, branch: str | None = None, paths: tuple[str, ...] = ()) -> Iterator[git.Repo]:
        """A fresh clone of the default branch only, plus ``branch`` if it exists, whose
        checkouts write only ``paths``.

        A review repo holds a branch and two files per gate; cloning every branch and checking
        out every file made each decision cost seconds at 10,000 gates. Only the branches an
        operation reads are fetched, and only the files it writes are checked out (a sparse
        checkout); everything else is read from git objects.
        """
        tmp = tempfile.mkdtemp(prefix="hitl-review-")
        try:
            env = {"GIT_TERMINAL_PROMPT": "0"}
            try:
                repo = git.Repo.clone_from(
                    self.remote,
                    tmp,
                    env=env,
                    no_checkout=True,
                    single_branch=True,
                    branch=self.default_branch,
                )
            except git.GitCommandError as exc:
                if "not found in upstream" not in _stderr(exc):
                    raise StoreError(
                        f"cannot clone review repo {self.location}: {_stderr(exc)}",
                        hint="Check the review= setting / METAFLOW_HITL_REVIEW and your git "
                        "access.",
                    ) from None
                shutil.rmtree(tmp, ignore_errors=True)  # an empty repo: no default branch yet
                repo = git.Repo.clone_from(self.remote, tmp, env=env, no_checkout=True)
            with repo.config_writer() as cfg:
                cfg.set_value("user", "name", BOT_NAME)
                cfg.set_value("user", "email", BOT_EMAIL)
                cfg.set_value("core", "sparseCheckout", "true")
            info = Path(repo.git_dir) / "info"
            info.mkdir(exist_ok=True)
            # Non-cone patterns, anchored: exactly these files (works with any git since 1.7).
            patterns = [f"/{p.lstrip('/')}" for p in paths] or ["/README.md"]
            (info / "sparse-checkout").write_text("\n".join(patterns) + "\n", encoding="utf-8")
            if branch is not None:
                try:
                    repo.git.fetch(
                        "--no-tags", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}"
                    )
                except git.GitCommandError as exc:
                    if "couldn't find remote ref" not in _stderr(exc).lower():
                        raise StoreError(
                            f"cannot fetch {branch} from review repo {self.location}: "
                            f"{_stderr(exc)}"
                        ) from None
            yield repo
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _push(self, repo: git.Repo, refspec: str, *more: str, create_only: bool = False) -> bool:
        """Push (several refspecs: atomically); False when git refuses (not a fast-forward,
        or the ref exists)."""
        args = ["--porcelain", "origin", refspec, *more]
        if more:
            args.insert(0, "--atomic")
        if create_only:
            args.insert(0, f"--force-with-lease={refspec.split(':', 1)[1]}:")
        self.pushes += 1
        try:
            repo.git.push(*args)
        except git.GitCommandError as exc:
            text = _stderr(exc) + str(exc.stdout or "")
            if any(sign in text for sign in _REJECTED):
                return False
            raise StoreError(
                f"cannot push to review repo {self.location}: {_stderr(exc)}"
            ) from None
        return True

    @staticmethod
    def _remote_has(repo: git.Repo, branch: str) -> bool:
        return any(r.remote_head == branch for r in repo.remotes.origin.refs)

    @staticmethod
    def _read(repo: git.Repo, rev: str, path: str) -> str | None:
        try:
            return repo.git.show(f"{rev}:{path}")
        except git.GitCommandError:
            return None

    # -- ReviewBackend ----------------------------------------------------------------------
    def open_review(self, request: Request, *, approval_file: str) -> dict[str, str | None]:
        """Push the gate's branch with its approval file, unless it exists."""
        self._ensure_local_remote()
        branch = branch_for(request.gate_id)
        path = approval_path(request.gate_id)
        decided_path = decision_path(request.gate_id)
        refs: dict[str, str | None] = {
            "backend": "git",
            "location": self.location,
            "branch": branch,
            "path": path,
        }
        for _ in range(_ATTEMPTS):
            with self._clone(branch, (path,)) as repo:
                if self._remote_has(repo, branch):
                    return refs
                if self._read(repo, f"origin/{self.default_branch}", decided_path) is not None:
                    return refs  # decided and merged already (its branch was deleted)
                repo.git.checkout("-B", branch, f"origin/{self.default_branch}")
                target = _tree(repo) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(approval_file, encoding="utf-8")
                _commit(repo, [path], open_commit_message(request), _BOT)
                if self._push(repo, f"HEAD:refs/heads/{branch}", create_only=True):
                    return refs
        raise StoreError(f"could not open the review branch {branch} in {self.location}")

    def record_decision(
        self, request: Request, decision: Decision, *, publication: Publication | None = None
    ) -> dict[str, str | None]:
        """Commit the decision on the gate branch (author: the decider) and merge it.

        ``publication`` is unused: a git review repository has no page that votes come from.

        Idempotent: recording the same decision again changes nothing.

        Raises
        ------
        ReviewConflict
            If the repo already holds a different decision for this gate.
        """
        self._ensure_local_remote()
        branch = branch_for(request.gate_id)
        path = decision_path(request.gate_id)
        content = render_decision_record(request, decision)
        message = decision_commit_message(request, decision)
        author = _author(decision.decided_by)
        for attempt in range(_ATTEMPTS):
            with self._clone(branch, (path,)) as repo:
                main = f"origin/{self.default_branch}"
                # The default branch first: a racing decider may have merged its decision and
                # deleted the branch, and a branch pushed after that (ours, by an earlier
                # attempt) would otherwise be re-read as the decision and conflict at merge.
                on_main = self._read(repo, main, path) is not None
                base = main if on_main or not self._remote_has(repo, branch) else f"origin/{branch}"
                existing = self._read(repo, base, path)
                if existing is not None:
                    self._check_same(existing, decision, path)
                    # the commit that wrote the decision (the branch tip, or on main once the
                    # branch was merged and deleted)
                    decided = repo.git.log(
                        "-1", "--no-merges", "--format=%H", "--diff-filter=A", base, "--", path
                    ).strip() or repo.git.rev_parse(base)
                else:
                    repo.git.checkout("-B", branch, base)
                    target = _tree(repo) / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(content, encoding="utf-8")
                    _commit(repo, [path], message, author)
                    if not self._push(repo, f"HEAD:refs/heads/{branch}"):
                        time.sleep(0.05 * (attempt + 1))
                        continue  # someone else wrote the branch: re-read it
                    decided = repo.git.rev_parse("HEAD")
                if self._merged(repo, decided):
                    if self._remote_has(repo, branch):  # a merge whose branch was kept
                        self._push(repo, f":refs/heads/{branch}")
                    return self._refs(branch, path, decided)
                repo.git.checkout("-B", self.default_branch, f"origin/{self.default_branch}")
                repo.git.merge(
                    "--no-ff",
                    "-m",
                    f"hitl: merge {request.gate_id} ({decision.outcome})",
                    decided,
                )
                # Merged, the gate's branch is deleted in the same atomic push: the repo keeps
                # a branch per pending gate only, so pushes stay fast with any history.
                head = f"HEAD:refs/heads/{self.default_branch}"
                if self._push(repo, head, f":refs/heads/{branch}"):
                    return self._refs(branch, path, decided)
                time.sleep(0.05 * (attempt + 1))  # main moved: fetch again and re-merge
        raise StoreError(
            f"could not record the decision of {request.gate_id} in {self.location} after "
            f"{_ATTEMPTS} attempts (the default branch kept moving)",
            hint=f"Retry later: metaflow-hitl sync {request.gate_id}",
        )

    def _merged(self, repo: git.Repo, commit: str) -> bool:
        try:
            repo.git.merge_base("--is-ancestor", commit, f"origin/{self.default_branch}")
        except git.GitCommandError:
            return False
        return True

    def _refs(self, branch: str, path: str, commit: str) -> dict[str, str | None]:
        return {
            "backend": "git",
            "location": self.location,
            "branch": branch,
            "path": path,
            "commit": commit,
        }

    @staticmethod
    def _check_same(existing: str, decision: Decision, path: str) -> None:
        try:
            recorded = decode_record(existing, Decision, where=path)
        except RecordError as exc:
            raise ReviewConflict(
                f"the review repo's {path} is not a decision record: {exc}"
            ) from None
        if recorded.nonce != decision.nonce:
            raise ReviewConflict(
                f"the review repo already records {recorded.summary()} for {decision.gate_id}; "
                f"not recording {decision.summary()}. The first decision stands.",
                hint=f"Compare with the store: metaflow-hitl show {decision.gate_id}",
            )

    def audit(self) -> list[AuditEntry]:
        """Every decision commit on the default branch, oldest first."""
        log_format = ("--reverse", "--no-merges", "--format=%H%x00%an%x00%B%x1e")
        if self._is_local_path():
            # A repository on this machine is read in place (reading needs no clone).
            path = Path(self.remote)
            if not (path / "HEAD").exists() or not self._has_default_branch(path):
                return []
            try:
                log = git.Repo(path).git.log(f"refs/heads/{self.default_branch}", *log_format)
            except git.GitCommandError as exc:
                raise StoreError(
                    f"cannot read the history of review repo {self.location}: {_stderr(exc)}"
                ) from None
        else:
            with self._clone() as repo:
                if not self._remote_has(repo, self.default_branch):
                    return []
                log = repo.git.log(f"origin/{self.default_branch}", *log_format)
        entries = []
        for chunk in log.split("\x1e"):
            if not chunk.strip():
                continue
            sha, author, body = chunk.strip("\n").split("\x00", 2)
            entry = AuditEntry.from_commit(body, commit=sha, author=author)
            if entry is not None:
                entries.append(entry)
        return entries


def _stderr(exc: git.GitCommandError) -> str:
    return redact(str(exc.stderr or exc).strip())
