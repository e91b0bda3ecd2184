"""A new worktree for a task, with the repository's worktree lock held only while git
registers it.

`git worktree add` checks the files out too, and on a repository of thousands of files
that takes most of a second, while every other task's worktree step (claims, parks,
other adds: repo_lock.py) waits for the lock: the first wave of a 32-task run on
10,000 files waited ~20 s for its worktrees one by one. Only the registration needs the
lock (concurrent adds on git 2.39 read each other's half-written records), so these are
the steps of git's own add, the checkout outside the lock: register the worktree locked
ADD_IN_PROGRESS, `reset --hard`, the post-checkout hook, unlock. Cut short anywhere, it is
the half-made worktree create_worktree removes and makes again, as after a killed add.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from magsag.activities.checkouts import registration
from magsag.activities.git import git
from magsag.activities.repo_lock import common_dir, worktree_admin_lock

# The lock reason `git worktree add` gives a worktree until its checkout is done.
ADD_IN_PROGRESS = "initializing"
# The "previous HEAD" git's post-checkout hook is given for a new worktree.
NO_COMMIT = "0" * 40

# core.hooksPath by repository, read once per process: a hook looked up per worktree
# costs no git process when there is none, as for most repositories.
_HOOKS_PATHS: dict[str, str] = {}


async def add_worktree(repo: str, path: str, branch: str, commit: str) -> None:
    """A worktree at `path` on `branch` (whose tip is `commit`), files checked out.
    Raises GitError."""
    async with worktree_admin_lock(repo) as held:
        await git(
            "worktree", "add", "--quiet", "--no-checkout", "--lock", "--reason",
            ADD_IN_PROGRESS, "--", path, branch, cwd=repo, pass_fds=(held,),
        )  # fmt: skip
    # Neither reads the other worktrees' records, which a concurrent add may be writing.
    await git("reset", "--hard", "--quiet", "--no-recurse-submodules", cwd=path)
    if await _has_post_checkout_hook(repo, Path(path)):
        await git("hook", "run", "post-checkout", "--", NO_COMMIT, commit, "1", cwd=path)
    await asyncio.to_thread(_unlock, Path(path))


async def _has_post_checkout_hook(repo: str, worktree: Path) -> bool:
    key = os.path.realpath(repo)
    if key not in _HOOKS_PATHS:
        found = await git("config", "--get", "core.hooksPath", cwd=repo, check=False)
        _HOOKS_PATHS[key] = found.stdout.strip()
    configured = os.path.expanduser(_HOOKS_PATHS[key])
    # A relative core.hooksPath is relative to where hooks run: the worktree's top.
    hooks = worktree / configured if configured else await common_dir(repo) / "hooks"
    return os.access(hooks / "post-checkout", os.X_OK)


def _unlock(worktree: Path) -> None:
    """What `git worktree unlock` does, without its reading every worktree's records."""
    (registration(worktree) / "locked").unlink(missing_ok=True)
