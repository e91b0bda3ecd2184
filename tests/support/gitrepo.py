"""Real git repositories for tests (synchronous helpers; tests are not under test here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

DEFAULT_FILES = {
    "README.md": "# sample\n",
    "src/app.py": "print('hello')\n",
    ".gitignore": "build/\n",
}


def git_out(repo: str | Path, *args: str) -> str:
    """Run git in `repo` and return its stripped stdout; raise on failure."""
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def write_file(root: str | Path, relpath: str, content: str) -> Path:
    target = Path(root) / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    return target


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A repository on branch main with one commit of `files` and a local identity."""
    path.mkdir(parents=True, exist_ok=True)
    git_out(path, "init", "-q", "-b", "main")
    git_out(path, "config", "user.name", "Test User")
    git_out(path, "config", "user.email", "test@example.com")
    git_out(path, "config", "commit.gpgsign", "false")
    for relpath, content in (DEFAULT_FILES if files is None else files).items():
        write_file(path, relpath, content)
    git_out(path, "add", "-A")
    git_out(path, "commit", "-q", "-m", "initial")
    return path


def commit_file(repo_or_worktree: str | Path, relpath: str, content: str, message: str) -> str:
    """Write and commit one file on the current branch; return the new commit SHA."""
    write_file(repo_or_worktree, relpath, content)
    git_out(repo_or_worktree, "add", "--", relpath)
    git_out(repo_or_worktree, "commit", "-q", "-m", message)
    return git_out(repo_or_worktree, "rev-parse", "HEAD")


def user_side(repo: str | Path) -> tuple[str, ...]:
    """What magsag must never change in the user's checkout: branch, base tip, status."""
    return (
        git_out(repo, "symbolic-ref", "HEAD"),
        git_out(repo, "rev-parse", "refs/heads/main"),
        git_out(repo, "status", "--porcelain", "--untracked-files=all"),
        git_out(repo, "diff"),
    )


def checkpoints_on(repo: str | Path, branch: str) -> list[str]:
    """Task names of magsag's checkpoint commits reachable from branch (merges excluded)."""
    out = git_out(repo, "log", "--no-merges", "--format=%(trailers:key=Magsag-Task,valueonly)",
                  branch)  # fmt: skip
    return [line for line in out.splitlines() if line]


# Submodules from local paths need the file protocol, which git disallows by default.
FILE_PROTOCOL = ("-c", "protocol.file.allow=always")


def with_submodule(repo: Path, library: Path, path: str = "sub") -> Path:
    """Add `library` as a submodule of `repo` at `path`, committed on the current branch."""
    git_out(repo, *FILE_PROTOCOL, "submodule", "add", "-q", str(library), path)
    git_out(repo, "commit", "-qm", f"add submodule {path}")
    return repo


def record_git_calls(tmp_path: Path, monkeypatch) -> Path:
    """Put a git on PATH that logs each call's arguments (a line each) to the file
    returned, then runs the real git: what a step costs in git processes."""
    log, shim = tmp_path / "git-calls.log", tmp_path / "git-shim" / "git"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {shutil.which("git")} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    return log
