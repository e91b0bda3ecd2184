"""What an agent did to git in its worktree, put right before its work is saved.

An agent is untrusted (invariant 9): it may commit, switch branch, detach HEAD or delete
the worktree's .git file. Before a worktree is saved, these helpers bring it back onto
the task branch without losing what the agent made; before an attempt starts, they bring
the branch and the worktree back to the task's base commit. Stashes and submodules have
modules of their own.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from temporalio import activity

from magsag.activities import checkouts, stashes, submodules
from magsag.activities.git import git, is_ancestor, refusal, resolve_commit
from magsag.contracts.activities import CloseWorktreeInput


async def relink(repo: str, path: str, branch: str, admin) -> bool:
    """Give its .git file back to a worktree whose agent deleted it; True if it did.

    The repository's registration of the worktree still holds its HEAD and index. When
    something pruned the registration meanwhile, the folder is registered again on the
    task branch, its files kept as they are. `admin` runs `git worktree` commands."""
    wt = Path(path)
    if not wt.is_dir() or os.path.lexists(wt / ".git"):
        return False
    registration = await _registration_of(repo, wt)
    if registration is not None:
        await asyncio.to_thread((wt / ".git").write_text, f"gitdir: {registration}\n")
    elif await asyncio.to_thread(lambda: any(wt.iterdir())):
        await _register_again(repo, wt, branch, admin)
    else:
        return False  # an empty folder holds no work
    activity.logger.warning("the agent deleted %s/.git; the worktree is linked again", path)
    return True


async def _registration_of(repo: str, wt: Path) -> Path | None:
    common = (await git("rev-parse", "--git-common-dir", cwd=repo)).stdout.strip()
    target = os.path.realpath(wt / ".git")

    def find() -> Path | None:
        for gitdir in Path(repo, common).glob("worktrees/*/gitdir"):
            try:
                if os.path.realpath(gitdir.read_text().strip()) == target:
                    return gitdir.parent
            except OSError:
                continue
        return None

    return await asyncio.to_thread(find)


async def _register_again(repo: str, wt: Path, branch: str, admin) -> None:
    """Register the folder anew without touching its files. Each step leaves a state the
    next try converges from: a scratch worktree lends its registration, which is
    pointed at the folder before the folder gets the link."""
    scratch = wt.with_name(f"{wt.name}.relinking")
    if not (scratch / ".git").exists():
        await admin(repo, "add", "--no-checkout", "--quiet", str(scratch), branch)
    await git("reset", "--quiet", cwd=scratch)  # its index from the branch; no files

    def hand_over() -> None:
        (checkouts.registration(scratch) / "gitdir").write_text(f"{os.path.abspath(wt / '.git')}\n")
        (scratch / ".git").rename(wt / ".git")
        scratch.rmdir()

    await asyncio.to_thread(hand_over)


async def back_on_branch(input: CloseWorktreeInput) -> list[str]:
    """Put the worktree's HEAD back on the task branch before it is saved; returns what
    the save must also keep as parents.

    An agent that switched branch or detached HEAD made its commits on top of the task
    branch: the branch moves to them (compare-and-swap), nothing else changes. What does
    not build on the task branch refuses a checkpoint; a WIP save keeps it as a parent."""
    path, ref = input.path, f"refs/heads/{input.branch}"
    on = (await git("symbolic-ref", "-q", "HEAD", cwd=path, check=False)).stdout.strip()
    if on == ref:
        return []
    head = await resolve_commit("HEAD", path)
    tip = await resolve_commit(ref, path)
    where = on.removeprefix("refs/heads/") or "a detached HEAD"
    anchor = tip or input.base_commit
    if head is not None and (anchor in (None, head) or await is_ancestor(anchor, head, path)):
        if head != tip:
            message = f"magsag: the agent's commits on {where}"
            await git("update-ref", "-m", message, ref, head, tip or "", cwd=path)
        await git("symbolic-ref", "HEAD", ref, cwd=path)
        activity.logger.info("took the agent's work on %s back to %s", where, input.branch)
        return []
    if input.mode == "checkpoint":
        raise refusal(f"the agent left the task branch for {where}, which does not build on it")
    await git("symbolic-ref", "HEAD", ref, cwd=path)  # files and index stay as they are
    return [head] if head else []


async def check_builds_on_base(input: CloseWorktreeInput, head: str) -> None:
    """A checkpoint holds the agent's commits only when they build on the task's base."""
    base = input.base_commit
    if input.mode == "checkpoint" and base and head != base:
        if not await is_ancestor(base, head, input.path):
            raise refusal("the agent rewrote the commits of the task's base")


async def reclaim(repo: str, path: str, branch: str, admin) -> None:
    """Before a new attempt, the worktree an earlier one left, back on the task branch
    (its contents are reset afterwards), so it is reused rather than refused."""
    if not Path(path).is_dir():
        return
    await relink(repo, path, branch, admin)
    ref = f"refs/heads/{branch}"
    on = await git("symbolic-ref", "-q", "HEAD", cwd=path, check=False)
    if on.returncode > 1 or on.stdout.strip() == ref:
        return  # not a worktree (create_worktree deals with it), or on the branch
    mine = await git("rev-parse", "--git-common-dir", cwd=path, check=False)
    ours = await git("rev-parse", "--git-common-dir", cwd=repo)
    if os.path.realpath(Path(path, mine.stdout.strip())) == os.path.realpath(
        Path(repo, ours.stdout.strip())
    ):
        await git("symbolic-ref", "HEAD", ref, cwd=path)


async def start_from_base(worktree: str, branch: str, base: str, tip: str | None) -> None:
    """Bring the task branch and the worktree back to the base for a new attempt.

    What an earlier attempt left goes: its files, as always, and also its agent's
    commits, stash entries and submodule changes. The branch moves by compare-and-swap
    from the tip the caller found to hold no checkpoint."""
    ref = f"refs/heads/{branch}"
    if tip != base:
        message = "magsag: a new attempt starts from the base"
        await git("update-ref", "-m", message, ref, base, tip or "", cwd=worktree)
    await git("reset", "--hard", "--quiet", cwd=worktree)
    await git("clean", "-ffdxq", cwd=worktree)
    await submodules.reset(worktree)
    await stashes.drop(worktree, await stashes.entries_of(worktree, branch))
