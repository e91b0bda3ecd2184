"""A repository's worktrees, read from the files git keeps for them.

`git worktree list` prints what these files say, but it is a process per call and must
run under the worktree lock (it fails beside a concurrent `git worktree add` on git
2.39), which every task's worktree addition and removal waits for. magsag reads the
files itself: the main worktree's HEAD in the common git dir and, for each linked one,
<common dir>/worktrees/<id>/ with `gitdir` (where its .git file is), `HEAD` and `locked`.

The same files say which worktree has a branch checked out. `git update-ref` moves a
branch even when a worktree has it checked out, and that worktree's files then no longer
match its branch: its `git status` shows the new commits as staged reversals. magsag
asks here before moving a branch it owns.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from magsag.activities.repo_lock import common_dir

# Files that name the branch a worktree is rebasing (its HEAD is detached meanwhile);
# git refuses to move such a branch too.
_REBASE_HEAD_NAMES = ("rebase-merge/head-name", "rebase-apply/head-name")


@dataclass(frozen=True)
class Worktree:
    path: str
    branch: str | None  # full ref, None when detached
    prunable: bool  # registered, but its directory (or its .git file) is gone
    locked: str | None = None  # the lock's reason ("" when none was given)


def registration(worktree: Path) -> Path:
    """<common dir>/worktrees/<id>, named by a linked worktree's .git file."""
    gitdir = (worktree / ".git").read_text().strip().removeprefix("gitdir: ")
    return worktree / gitdir


def worktrees(common: Path) -> list[Worktree]:
    """The main worktree and each linked one, as `git worktree list` reports them."""
    return [worktree for _, worktree in _registered(common)]


async def holder_of(ref: str, repo: str) -> str | None:
    """The path of a worktree that has `ref` (refs/heads/...) checked out, else None."""
    return await asyncio.to_thread(_find_holder, await common_dir(repo), ref)


def _find_holder(common: Path, ref: str) -> str | None:
    for admin_dir, worktree in _registered(common):
        if worktree.branch == ref or any(
            _read(admin_dir / name) == ref for name in _REBASE_HEAD_NAMES
        ):
            return worktree.path
    return None


def _registered(common: Path) -> list[tuple[Path, Worktree]]:
    """(administrative dir, worktree) of the main worktree and each linked one. A linked
    one without a readable gitdir file is left out, as git leaves it out."""
    main = common.parent if common.name == ".git" else common
    found = [(common, Worktree(str(main), _branch(common), prunable=False))]
    try:
        linked = sorted((common / "worktrees").iterdir())
    except (FileNotFoundError, NotADirectoryError):
        linked = []
    for admin_dir in linked:
        gitdir = _read(admin_dir / "gitdir")  # <worktree>/.git
        if not gitdir:
            continue
        gitdir = os.path.normpath(admin_dir / gitdir)  # absolute as git writes it
        locked = _read(admin_dir / "locked")
        worktree = Worktree(
            path=gitdir.removesuffix(f"{os.sep}.git"),
            branch=_branch(admin_dir),
            prunable=locked is None and not os.path.exists(gitdir),
            locked=locked,
        )
        found.append((admin_dir, worktree))
    return found


def _branch(admin_dir: Path) -> str | None:
    head = _read(admin_dir / "HEAD") or ""
    return head.removeprefix("ref:").strip() if head.startswith("ref:") else None


def _read(path: Path) -> str | None:
    """A small file's stripped text; None when it is gone (a worktree removed meanwhile)."""
    try:
        return path.read_text(errors="replace").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
