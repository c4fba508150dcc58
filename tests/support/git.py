"""The one ``git`` runner for tests: work trees (``cwd``) and bare repositories (``git_dir``)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(*args: str, cwd: Path | str | None = None, git_dir: Path | str | None = None) -> str:
    """Run ``git ARGS`` and return its standard output.

    Parameters
    ----------
    *args
        The git command and its arguments, e.g. ``"log", "--format=%s", "main"``.
    cwd
        The work tree to run in (default: the current directory).
    git_dir
        A repository to read directly (``git --git-dir``), e.g. a bare review repository.

    Raises
    ------
    AssertionError
        When git exits non-zero; the message holds the command and git's own error.
    """
    command = ["git", *(("--git-dir", str(git_dir)) if git_dir is not None else ()), *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout
