"""An agent's `git stash`: refs/stash is shared by every worktree of a repository, so
the entry lands in the user's stash list, and the work in it would not be saved.

A task's entries are told apart by the branch their message names ("WIP on <branch>:"
or "On <branch>:"), the task branch being this task's alone, or, when the agent stashed
on another branch or a detached HEAD, by the commit they were made on: one the agent
committed in this attempt. Other tasks' and the user's entries are never touched.
Saving a worktree folds the entries into the commit (a three-way merge of each entry's
changes onto the worktree's tree). An entry that does not merge cleanly refuses a
checkpoint; a WIP save keeps it as an extra parent. Once the save is on the branch the
entries leave the stash list, which ends as the user had it.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from magsag.activities.git import GitError, commit_tree, git, refusal
from magsag.activities.repo_lock import worktree_admin_lock

# Waits between tries to store back an entry dropped by mistake (about 3 s in all).
STORE_BACK_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


@dataclass(frozen=True)
class Entry:
    commit: str
    parents: tuple[str, ...]  # the HEAD it was made on, its index, its untracked files
    subject: str


@dataclass
class Folded:
    tree: str
    unmerged: list[str] = field(default_factory=list)  # entries kept as parents instead
    entries: list[Entry] = field(default_factory=list)  # to drop once the save is made


def _stash_log_exists(cwd: str) -> bool:
    """Whether the repository has a stash at all: its entries are the reflog of
    refs/stash, so no such log means none, known without running git (the usual case,
    on every checkpoint). When unsure, say yes and let git answer."""
    dotgit = Path(cwd, ".git")
    try:
        if dotgit.is_dir():
            common = dotgit
        else:
            gitdir = Path(cwd, dotgit.read_text().split("gitdir:", 1)[1].strip())
            common = gitdir / (gitdir / "commondir").read_text().strip()
    except (OSError, IndexError):
        return True
    return (common / "logs" / "refs" / "stash").exists()


async def entries_of(cwd: str, branch: str, made_on: frozenset[str] = frozenset()) -> list[Entry]:
    """The stash entries made on `branch` or on one of the commits `made_on`, oldest first."""
    if not _stash_log_exists(cwd):
        return []
    out = await git("stash", "list", "--format=%H%x00%P%x00%gs%x00", cwd=cwd)
    fields = out.stdout.split("\0")
    names = (f"WIP on {branch}:", f"On {branch}:")
    listed = [
        Entry(commit.strip(), tuple(parents.split()), subject)
        for commit, parents, subject in zip(fields[0::3], fields[1::3], fields[2::3], strict=False)
    ]
    mine = [e for e in listed if e.subject.startswith(names) or e.parents[0] in made_on]
    return mine[::-1]


async def fold(
    cwd: str, branch: str, head: str, tree: str, checkpoint: bool, base: str | None
) -> Folded:
    """The tree with the task's stash entries merged in. An entry that does not merge
    refuses a checkpoint; a WIP save keeps it in `unmerged`."""
    entries = await entries_of(cwd, branch, await _agent_commits(cwd, base, head))
    folded = Folded(tree, entries=entries)
    if not entries:
        return folded
    for entry in entries:
        merged = await _merge(cwd, head, folded.tree, entry)
        if merged is not None:
            folded.tree = merged
            continue
        if checkpoint:
            raise refusal(
                f"the agent's `git stash` entry ({entry.subject}) does not merge with its "
                "other changes"
            )
        folded.unmerged.append(entry.commit)
    return folded


async def _agent_commits(cwd: str, base: str | None, head: str) -> frozenset[str]:
    if not base or base == head:
        return frozenset()
    listed = await git("rev-list", f"{base}..{head}", cwd=cwd)
    return frozenset(listed.stdout.split())


async def _merge(cwd: str, head: str, tree: str, entry: Entry) -> str | None:
    """`tree` (on top of `head`) with the entry's changes; None on a conflict."""
    stashed = await _commit(cwd, await _stashed_tree(cwd, entry), entry.parents[0])
    ours = await _commit(cwd, tree, head)
    return await _merge_tree(cwd, ours, stashed)


async def _stashed_tree(cwd: str, entry: Entry) -> str:
    """The worktree the entry saved: with `git stash -u`, its untracked files too (a
    third parent), laid over the tracked ones in a scratch index."""
    if len(entry.parents) < 3:
        return (await git("rev-parse", f"{entry.commit}^{{tree}}", cwd=cwd)).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="magsag-stash-") as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch, "index"))}
        await git("read-tree", entry.commit, entry.parents[2], cwd=cwd, env=index)
        return (await git("write-tree", cwd=cwd, env=index)).stdout.strip()


async def _commit(cwd: str, tree: str, parent: str) -> str:
    """A throwaway commit, only for merge-tree to find the merge base."""
    return await commit_tree(tree, [parent], "magsag: fold", cwd)


async def _merge_tree(cwd: str, ours: str, theirs: str) -> str | None:
    args = ("merge-tree", "--write-tree", ours, theirs)
    merged = await git(*args, cwd=cwd, check=False)
    if merged.returncode == 1:
        return None
    if merged.returncode != 0:
        raise GitError(args, merged.stderr, merged.returncode)
    return merged.stdout.split("\n", 1)[0].strip()


async def drop(cwd: str, entries: list[Entry]) -> None:
    """Remove the entries from the stash list, leaving everyone else's.

    git drops entries by position only. magsag's own drops take the repository's
    worktree lock, so two tasks saving at once do not shift each other's positions; an
    agent stashing meanwhile still can, and an entry dropped by mistake is stored back
    (at the top of the list), retried until git takes it: it must not be lost."""
    if not entries:
        return
    async with worktree_admin_lock(cwd):
        for entry in entries:
            await _drop_one(cwd, entry)


async def _drop_one(cwd: str, entry: Entry) -> None:
    for _ in range(3):
        listed = await git("stash", "list", "--format=%H", cwd=cwd)
        commits = listed.stdout.split()
        if entry.commit not in commits:
            return
        position = f"stash@{{{commits.index(entry.commit)}}}"
        dropped = await git("stash", "drop", position, cwd=cwd)
        gone = dropped.stdout.strip().rsplit("(", 1)[-1].rstrip(")")
        if gone == entry.commit:
            return
        if gone in commits:
            await _store_back(cwd, gone)


async def _store_back(cwd: str, commit: str) -> None:
    subject = (await git("log", "-1", "--format=%s", commit, cwd=cwd)).stdout.strip()
    for pause in STORE_BACK_PAUSES:
        stored = await git("stash", "store", "-m", subject, commit, cwd=cwd, check=False)
        if stored.returncode == 0:
            return
        await asyncio.sleep(pause)  # refs/stash locked by another git: try again
    await git("stash", "store", "-m", subject, commit, cwd=cwd)
