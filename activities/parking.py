"""Parked worktrees: a finished task's worktree serves the run's next task.

`git worktree add` writes every file of the tree and `git worktree remove` deletes them:
on a repository of thousands of files that costs a task more than its orchestration (on
these machines ~0.1 ms of kernel time per file each way), and a migration run whose tasks
each add a file makes every task dearer than the last. So once a task's work is
committed, its worktree is parked instead: moved to <root>/<run>/.parked/<task>. The
run's next task moves a parked worktree to its own path and checks its branch out there
(`checkout --force`, then `clean`), which rewrites only the files that differ. The run's end removes
what is still parked (record_run_end); `magsag gc` does it for a run ended from outside.

A parked worktree holds nothing that is not committed (it is parked only after its
checkpoint), so removing one loses nothing. Claims and parks are `git worktree move`s
under the repository's worktree lock, so two workers on one host never take the same
one. A claim cut short leaves the worktree at the task's path on another task's branch,
which the next attempt's reclaim_worktree puts back on its own branch (then resets).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path

from magsag.activities.git import git
from magsag.activities.repo_lock import common_dir, worktree_admin_lock

# Task names start with [a-z0-9], so no task's worktree is ever called this.
PARKED = ".parked"


def parked_dir(run_folder: str | Path) -> Path:
    """Where a run's parked worktrees wait: <worktree root>/<run>/.parked."""
    return Path(run_folder) / PARKED


async def claim(repo: str, path: str, branch: str) -> bool:
    """Move one of the run's parked worktrees to `path` and check `branch` out there,
    its files exactly the branch's (only those that differ are written). False when
    none is parked."""
    parked = parked_dir(Path(path).parent)
    async with worktree_admin_lock(repo) as held:
        for candidate in await asyncio.to_thread(_parked_in, parked):
            moved = await git(
                "worktree", "move", str(candidate), path, cwd=repo, check=False,
                pass_fds=(held,),
            )  # fmt: skip
            if moved.returncode == 0:
                break
        else:
            return False
        # Under the lock too: checking a branch out reads the repository's worktree
        # records, which a `git worktree add` beside it may have half written ("failed
        # to read .git/worktrees/<x>/commondir", git 2.39).
        await git("checkout", "--force", "--quiet", branch, cwd=path, pass_fds=(held,))
    await git("clean", "-ffdxq", cwd=path)  # the parked task's untracked and ignored files
    return True


async def take_back(repo: str, path: str) -> bool:
    """Move the task's own parked worktree back to its path: an attempt whose worker
    died after parking it is run again (its checkpoint is then found, not redone)."""
    mine = parked_dir(Path(path).parent) / Path(path).name
    if os.path.lexists(path) or not (mine / ".git").is_file():
        return False
    async with worktree_admin_lock(repo) as held:
        await git("worktree", "move", str(mine), path, cwd=repo, pass_fds=(held,))
    return True


async def park(repo: str, path: str, task: str) -> bool:
    """Move the worktree among the run's parked ones (HEAD stays on the task's branch,
    at the commit just made). False when git refuses to move it (submodules, a lock):
    the caller removes it instead."""
    parked = parked_dir(Path(path).parent)
    await asyncio.to_thread(parked.mkdir, exist_ok=True)
    async with worktree_admin_lock(repo) as held:
        moved = await git(
            "worktree", "move", path, str(parked / task), cwd=repo, check=False,
            pass_fds=(held,),
        )  # fmt: skip
    return moved.returncode == 0


async def discard_all(repo: str, run_folder: str | Path) -> list[str]:
    """Remove every parked worktree of a run (all their work is committed), side by side
    (the run's end waits for it); then the run's folder, if nothing else is in it.
    Returns the paths removed."""
    parked = parked_dir(run_folder)
    candidates = await asyncio.to_thread(_parked_in, parked)
    if candidates:
        common = await common_dir(repo)
        async with worktree_admin_lock(repo):
            await asyncio.gather(*(asyncio.to_thread(_remove, common, c) for c in candidates))
    for folder in (parked, Path(run_folder)):
        with contextlib.suppress(OSError):
            folder.rmdir()
    return [str(candidate) for candidate in candidates]


async def discard(repo: str, path: str) -> None:
    """Remove one parked worktree."""
    common = await common_dir(repo)
    async with worktree_admin_lock(repo):
        await asyncio.to_thread(_remove, common, Path(path))


def _remove(common: Path, worktree: Path) -> None:
    """What `git worktree remove --force` does, without a git process per worktree: its
    folder (ignored files, such as build outputs, go too), then its registration in the
    repository (<common dir>/worktrees/<id>, named by its .git file). A removal cut short
    leaves a registration without a folder, which create_worktree prunes."""
    text = (worktree / ".git").read_text().strip()
    registration = Path(text.removeprefix("gitdir: ")).resolve()
    if not text.startswith("gitdir: ") or registration.parent != common / "worktrees":
        raise ValueError(f"{worktree} is not a worktree of {common.parent}")
    shutil.rmtree(worktree)
    shutil.rmtree(registration, ignore_errors=True)


def _parked_in(parked: Path) -> list[Path]:
    """The parked worktrees in a run's .parked folder (a folder without its .git file
    is no worktree: left to gc)."""
    try:
        return sorted(p for p in parked.iterdir() if (p / ".git").is_file())
    except FileNotFoundError:
        return []
