"""Worktree activities: give a task its own checkout, then save its work and remove it.

Both activities converge when retried after a crash between any two of their steps
(DESIGN invariant 2) and never throw away uncommitted work (invariant 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from magsag.activities import (
    agent_git,
    checkouts,
    parking,
    remote_runs,
    run_log,
    stashes,
    submodules,
)
from magsag.activities.checkouts import Worktree
from magsag.activities.git import (
    WIP_PREFIX,
    GitError,
    changed_files,
    check_branch_name,
    commit_tree,
    git,
    has_trailers,
    is_ancestor,
    resolve_commit,
    to_application_error,
    trailer_block,
)
from magsag.activities.keepalive import heartbeating
from magsag.activities.repo_lock import common_dir, worktree_admin_lock
from magsag.activities.worktree_add import ADD_IN_PROGRESS, add_worktree
from magsag.contracts import remotes
from magsag.contracts.activities import (
    CloseWorktreeInput,
    CloseWorktreeOutput,
    CreateWorktreeInput,
    CreateWorktreeOutput,
)
from magsag.contracts.failures import FailureKind


async def _worktree_admin(repo: str, *args: str, check: bool = True):
    async with worktree_admin_lock(repo) as held:
        return await git("worktree", *args, cwd=repo, check=check, pass_fds=(held,))


async def list_worktrees(repo: str) -> list[Worktree]:
    """The repository's worktrees, read from git's files under the worktree lock (a
    `git worktree add` that holds it may be half-way through registering one)."""
    common = await common_dir(repo)
    async with worktree_admin_lock(repo):
        return await asyncio.to_thread(checkouts.worktrees, common)


def _same_path(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _find(worktrees: list[Worktree], path: str) -> Worktree | None:
    return next((w for w in worktrees if _same_path(w.path, path)), None)


def _clear_path(path: Path) -> Path | None:
    """Make `path` usable by `git worktree add`; move (never delete) what is in the way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.path.lexists(path) or (path.is_dir() and not any(path.iterdir())):
        return None
    n = 1
    while os.path.lexists(aside := path.with_name(f"{path.name}.stale-{n}")):
        n += 1
    path.rename(aside)
    return aside


async def _discarded_if_half_made(repo: str, worktree: Worktree) -> bool:
    """Remove a worktree a `git worktree add` killed with its worker left half made.
    No agent ran in it (the agent starts after the add), so nothing is lost."""
    if worktree.locked != ADD_IN_PROGRESS:
        return False
    await _worktree_admin(repo, "remove", "--force", "--force", worktree.path)
    activity.logger.warning("removed the half-made worktree %s", worktree.path)
    return True


async def create_worktree(input: CreateWorktreeInput) -> CreateWorktreeOutput:
    if await _nothing_in_the_way(input):
        made = await _add_on_new_branch(input)
        if made is not None:
            return made
    repo, ref = input.repo, f"refs/heads/{input.branch}"
    await check_branch_name(input.branch, repo)
    base = await resolve_commit(input.base_commit, repo)
    if base is None:
        raise ApplicationError(
            f"base commit {input.base_commit!r} not found in {repo}",
            type=FailureKind.GIT_ERROR,
            non_retryable=True,
        )
    try:
        if await parking.take_back(repo, input.path):
            activity.logger.info("took back the worktree %s had parked", input.path)
        worktrees = await list_worktrees(repo)
        if any(w.prunable for w in worktrees):
            # Their directories are gone, so pruning loses nothing; it frees their
            # branches and paths (a registration left by a crash would block ours).
            await _worktree_admin(repo, "prune")
            worktrees = [w for w in worktrees if not w.prunable]
        mine = _find(worktrees, input.path)
        if mine is not None and await _discarded_if_half_made(repo, mine):
            mine = None  # the add starts over
        if mine is not None:
            if mine.branch != ref:
                raise ApplicationError(
                    f"{input.path} is a worktree on {mine.branch or 'a detached HEAD'}, "
                    f"not {ref}; refusing to touch it",
                    type=FailureKind.GIT_ERROR,
                    non_retryable=True,
                )
            activity.logger.info("reusing worktree %s on %s", input.path, input.branch)
            return CreateWorktreeOutput(
                path=input.path, branch=input.branch, base_commit=base, reused=True
            )
        aside = await asyncio.to_thread(_clear_path, Path(input.path))
        if aside is not None:
            activity.logger.warning("moved stale %s aside to %s", input.path, aside)
        tip = await resolve_commit(ref, repo)
        if tip is None:
            # The empty old value makes creation atomic; losing a race to an earlier
            # attempt is fine, the branch it made is the one we want.
            await git(
                "update-ref", "-m", "magsag: task branch", ref, base, "", cwd=repo, check=False
            )
        await add_worktree(repo, input.path, input.branch, tip or base)
    except GitError as err:
        raise to_application_error(err) from err
    activity.logger.info("created worktree %s on %s", input.path, input.branch)
    return CreateWorktreeOutput(
        path=input.path, branch=input.branch, base_commit=base, reused=False
    )


async def _nothing_in_the_way(input: CreateWorktreeInput) -> bool:
    """Nothing at the worktree's path, and no registration to prune (a crash leaves
    them; pruning is for the careful steps of create_worktree). Read from git's files:
    no git call."""
    if os.path.lexists(input.path):
        return False
    common = await common_dir(input.repo)
    registered = await asyncio.to_thread(checkouts.worktrees, common)
    return not any(w.prunable for w in registered)


async def _add_on_new_branch(input: CreateWorktreeInput) -> CreateWorktreeOutput | None:
    """A task's first attempt, in few git calls: its branch, created at the base, and a
    worktree on it: one the run parked (parking.py) or a new one. Whatever stops them
    (the branch exists, a registration or a bad name or base in the way) is left to the
    careful steps of create_worktree (None), which converge from anything these calls
    leave half done."""
    ref = f"refs/heads/{input.branch}"
    made = await git(
        "update-ref", "-m", "magsag: task branch", ref, input.base_commit, "",
        cwd=input.repo, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        return None
    how = "took a parked worktree as"
    if not await parking.claim(input.repo, input.path, input.branch):
        how = "created worktree"
        try:
            await add_worktree(input.repo, input.path, input.branch, input.base_commit)
        except GitError:
            return None
    activity.logger.info("%s %s on new branch %s", how, input.path, input.branch)
    return CreateWorktreeOutput(
        path=input.path,
        branch=input.branch,
        base_commit=input.base_commit,
        reused=False,
        new_branch=True,
    )


async def reclaim_worktree(repo: str, path: str, branch: str) -> None:
    """Before an attempt: put back on its branch the worktree an earlier attempt's agent
    left elsewhere (or without its .git file), so create_worktree reuses it."""
    await agent_git.reclaim(repo, path, branch, _worktree_admin)


def _message(input: CloseWorktreeInput) -> str:
    text = input.message.strip() or f"magsag: {input.mode} {input.task}"
    if input.mode == "wip":
        text = f"{WIP_PREFIX}{text}"
    return f"{text}\n\n{trailer_block(input.run_id, input.task)}"


async def _commit_all(input: CloseWorktreeInput, also_keep: list[str]) -> str | None:
    """Commit the whole worktree to its branch; the commit, or None when nothing changed.

    Plumbing (write-tree, commit-tree, update-ref) rather than `git commit`: the user's
    hooks cannot reject or rewrite a save of the agent's work, and the branch moves by
    compare-and-swap. The commit goes on top of what the agent committed itself and
    folds in its stash entries; a WIP also keeps `also_keep` (and unmerged entries) as
    parents. Work inside submodules is saved first (see submodules.py).
    """
    wt = input.path
    await submodules.save_work(input)
    # The files' tree and the branch's head, side by side (staging leaves HEAD alone).
    tree, heads = await asyncio.gather(
        _staged_tree(wt), git("rev-parse", "HEAD", "HEAD^{tree}", cwd=wt)
    )
    head, head_tree = heads.stdout.split()
    await agent_git.check_builds_on_base(input, head)
    checkpoint = input.mode == "checkpoint"
    folded = await stashes.fold(wt, input.branch, head, tree, checkpoint, input.base_commit)
    parents = [head, *also_keep, *folded.unmerged, *await _merged_side(input, head)]
    commit = await _commit_on_branch(input, head, folded.tree, parents, head_tree)
    if folded.tree != tree:  # the stashed changes are in the commit, not yet in the files
        await git("reset", "--hard", "--quiet", cwd=wt)
    await stashes.drop(wt, folded.entries)  # their work is on the branch now
    return commit


async def _staged_tree(wt: str) -> str:
    """Everything in the worktree staged; the tree object of that index."""
    await git("add", "-A", cwd=wt)
    return (await git("write-tree", cwd=wt)).stdout.strip()


async def _merged_side(input: CloseWorktreeInput, head: str) -> list[str]:
    """The merge's other side, unless the commits are on it already (a retry, or an
    agent that committed the merge itself)."""
    other = input.merge_parent
    if other is None or await is_ancestor(other, head, input.path):
        return []
    return [other]


async def _commit_on_branch(
    input: CloseWorktreeInput, head: str, tree: str, parents: list[str], head_tree: str
) -> str | None:
    """Commit `tree` with `parents` and move the branch from `head` to it, if needed."""
    if tree == head_tree and parents == [head]:
        # Clean: nothing was done, an earlier attempt already committed it, or the agent
        # committed its work itself (which the checkpoint then marks).
        if await has_trailers(head, input.run_id, input.task, input.path):
            return head
        if input.base_commit in (None, head):
            return None
    commit = await commit_tree(tree, parents, _message(input), input.path)
    await git(
        "update-ref",
        "-m",
        f"magsag: {input.mode} {input.task}",
        f"refs/heads/{input.branch}",
        commit,
        head,
        cwd=input.path,
    )
    return commit


async def _changed_files(commit: str | None, input: CloseWorktreeInput) -> list[str]:
    return await changed_files(commit, input.repo, since=input.base_commit) if commit else []


async def _already_closed(input: CloseWorktreeInput) -> CloseWorktreeOutput:
    """A retry after the removal: recognise our commit at the branch tip by its trailers."""
    tip = await resolve_commit(f"refs/heads/{input.branch}", input.repo)
    if tip is None or not await has_trailers(tip, input.run_id, input.task, input.repo):
        return CloseWorktreeOutput(commit=None, changed_files=[], removed=True)
    files = await changed_files(tip, input.repo, since=input.base_commit)
    return CloseWorktreeOutput(commit=tip, changed_files=files, removed=True)


@activity.defn
@heartbeating
async def close_worktree(input: CloseWorktreeInput) -> CloseWorktreeOutput:
    if remotes.is_url(input.repo):
        return await remote_runs.close_worktree(input, close_worktree)
    repo, ref = input.repo, f"refs/heads/{input.branch}"
    marker = removal_marker(input.path)
    try:
        await agent_git.relink(repo, input.path, input.branch, _worktree_admin)
        mine = _find(await list_worktrees(repo), input.path)
        if mine is not None and await _discarded_if_half_made(repo, mine):
            mine = None
        if mine is None or mine.prunable:
            if mine is not None:
                await _worktree_admin(repo, "prune")
            marker.unlink(missing_ok=True)
            activity.logger.info("worktree %s already removed", input.path)
            return await _already_closed(input)
        interrupted = await _interrupted_removal(marker, input)
        if interrupted is not None:
            # A removal killed half-way left files deleted: committing now would save
            # the deletions. The work is on the branch already, so finish the removal.
            commit = interrupted.commit
        else:
            also_keep = [] if mine.branch == ref else await agent_git.back_on_branch(input)
            commit = await _commit_all(input, also_keep)
            _write_marker(marker, commit)
        # What the commit changed is read while the removal waits for the worktree lock.
        parked, files = await asyncio.gather(
            _park_or_remove(input, interrupted is not None), _changed_files(commit, input)
        )
    except GitError as err:
        raise to_application_error(err) from err
    marker.unlink(missing_ok=True)
    _remove_if_empty(Path(input.path).parent)  # the run's folder under the worktree root
    if input.mode == "wip":
        run_log.append(input.log_dir, "work_saved", task=input.task, commit=commit)
    event = "worktree_parked" if parked else "worktree_removed"
    run_log.append(input.log_dir, event, task=input.task, path=input.path)
    activity.logger.info(
        "closed worktree %s (%s): %s", input.path, input.mode, commit or "nothing to commit"
    )
    return CloseWorktreeOutput(commit=commit, changed_files=files, removed=True)


async def _park_or_remove(input: CloseWorktreeInput, interrupted: bool) -> bool:
    """Once the work is on the branch: park the worktree for the run's next task when
    asked to (parking.py), else remove it. True when parked."""
    if input.park and await parking.park(input.repo, input.path, input.task):
        return True
    if interrupted:  # a removal cut short: its files may be half deleted
        await _worktree_admin(input.repo, "remove", "--force", input.path)
    else:
        # No --force: git itself refuses to remove a worktree with uncommitted changes
        # (ignored files go with it, which is what they are for). Submodules aside.
        await submodules.remove_worktree(input.repo, input.path, _worktree_admin)
    return False


@dataclass(frozen=True)
class _Removal:
    commit: str | None  # what the interrupted closing committed (None: nothing)


def removal_marker(worktree: str) -> Path:
    """Written beside the worktree once its work is on the branch, just before the
    removal starts; a retry that finds it knows the removal was under way."""
    return Path(f"{worktree}.closing")


def _write_marker(marker: Path, commit: str | None) -> None:
    """The branch's tip is the commit made (None: the worktree was clean, nothing to lose)."""
    marker.write_text(json.dumps({"commit": commit, "tip": commit}))


async def _interrupted_removal(marker: Path, input: CloseWorktreeInput) -> _Removal | None:
    """The removal a killed closing had started, if the branch is still where it was."""
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    tip = await resolve_commit(f"refs/heads/{input.branch}", input.repo)
    if record.get("tip") not in (None, tip):
        return None  # the branch moved since: not the closing this marker was written by
    return _Removal(commit=record.get("commit"))


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()
