"""One `git worktree add/remove/list/prune` at a time per repository, across processes.

git 2.39 fails concurrent worktree commands on one repository ("failed to read
.git/worktrees/<x>/commondir"). Two workers on one host, or a new worker beside the
git a killed one left running, must wait for each other rather than fail and retry.
The lock is an flock on a file in the repository's common git dir; the git command
inherits the locked descriptor, so a git orphaned by a killed worker keeps the lock
until it exits.
"""

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

from magsag.activities.git import git

LOCK_NAME = "magsag-worktrees.lock"
POLL_SECONDS = 0.01

# In this process, one holder at a time per repository waits on the file lock.
_IN_PROCESS: dict[str, asyncio.Lock] = {}
_COMMON_DIRS: dict[str, Path] = {}


async def common_dir(repo: str) -> Path:
    """The repository's common git dir (the main .git even when repo is a worktree)."""
    key = os.path.realpath(repo)
    if key not in _COMMON_DIRS:
        found = await git("rev-parse", "--git-common-dir", cwd=repo, check=False)
        common = found.stdout.strip() if found.returncode == 0 else ".git"
        _COMMON_DIRS[key] = Path(key, common).resolve()
    return _COMMON_DIRS[key]


@contextlib.asynccontextmanager
async def worktree_admin_lock(repo: str) -> AsyncIterator[int]:
    """Hold the repository's worktree lock; yields the descriptor to pass to git."""
    async with _IN_PROCESS.setdefault(os.path.realpath(repo), asyncio.Lock()):
        fd = os.open(await common_dir(repo) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:  # polled, not blocking in a thread: cancellable at any moment
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(POLL_SECONDS)
            yield fd
        finally:
            os.close(fd)  # releases the lock once no git holding it is left
