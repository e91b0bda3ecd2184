"""Stash entries of tasks that save at once leave the shared stash list, and the user's
entry stays: git drops entries by position only, so drops that interleave shift each
other's positions."""

import asyncio
from pathlib import Path

from magsag.activities import stashes
from tests.support.gitrepo import git_out, write_file


def stash_in_worktree(repo: Path, name: str) -> tuple[str, stashes.Entry]:
    """A worktree on its own branch with one stash entry; (worktree, entry)."""
    worktree = repo.parent / name
    git_out(repo, "worktree", "add", "-q", "-b", name, str(worktree), "main")
    write_file(worktree, "README.md", f"{name}\n")
    git_out(worktree, "stash", "-q")
    commit, parents = git_out(worktree, "log", "-1", "--format=%H %P", "stash").split(" ", 1)
    return str(worktree), stashes.Entry(commit, tuple(parents.split()), f"WIP on {name}")


async def test_tasks_dropping_at_once_keep_the_users_entry(repo):
    write_file(repo, "README.md", "the user's own change\n")
    git_out(repo, "stash", "-q")
    users = git_out(repo, "stash", "list", "--format=%H")
    for round_ in range(4):
        made = [stash_in_worktree(repo, f"t{round_}-{n}") for n in range(5)]
        await asyncio.gather(*(stashes.drop(wt, [entry]) for wt, entry in made))
        assert git_out(repo, "stash", "list", "--format=%H") == users
