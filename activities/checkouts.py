"""Which worktree of a repository has a branch checked out.

`git update-ref` moves a branch even when a worktree has it checked out, and that
worktree's files then no longer match its branch: its `git status` shows the new
commits as staged reversals. magsag asks here before moving a branch it owns. The
answer comes from the HEAD files git keeps per worktree (the main one and each linked
one): a few small reads, no `git worktree` command (those contend with the worktree
additions and removals of running tasks).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from magsag.activities.git import git

# Files that name the branch a worktree is rebasing (its HEAD is detached meanwhile);
# git refuses to move such a branch too.
_REBASE_HEAD_NAMES = ("rebase-merge/head-name", "rebase-apply/head-name")


async def holder_of(ref: str, repo: str) -> str | None:
    """The path of a worktree that has `ref` (refs/heads/...) checked out, else None."""
    found = await git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=repo)
    return await asyncio.to_thread(_find_holder, Path(found.stdout.strip()), ref)


def _find_holder(common_dir: Path, ref: str) -> str | None:
    for admin_dir, worktree in _worktrees(common_dir):
        if _names(admin_dir, ref):
            return worktree
    return None


def _worktrees(common_dir: Path) -> list[tuple[Path, str]]:
    """(administrative dir, worktree path) of the main worktree and each linked one."""
    main = common_dir.parent if common_dir.name == ".git" else common_dir
    found = [(common_dir, str(main))]
    try:
        linked = sorted((common_dir / "worktrees").iterdir())
    except (FileNotFoundError, NotADirectoryError):
        linked = []
    for admin_dir in linked:
        gitdir = _read(admin_dir / "gitdir")  # <worktree>/.git
        if gitdir:
            found.append((admin_dir, str(Path(gitdir).parent)))
    return found


def _names(admin_dir: Path, ref: str) -> bool:
    if _read(admin_dir / "HEAD") == f"ref: {ref}":
        return True
    return any(_read(admin_dir / name) == ref for name in _REBASE_HEAD_NAMES)


def _read(path: Path) -> str | None:
    """A small file's stripped text; None when it is gone (a worktree removed meanwhile)."""
    try:
        return path.read_text(errors="replace").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
