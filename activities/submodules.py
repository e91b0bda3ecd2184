"""Submodules in a task's worktree: each one is a repository of its own.

A commit of the task's repository holds a submodule's commit (its gitlink), never the
submodule's files, and the submodule's repository goes with the worktree. So work found
inside a submodule (changes, or a commit that no remote branch or tag of the submodule
has) is saved first: committed in the submodule, then fetched into the task's repository
as branch magsag/<run>/submodules/<task>/<path>. A checkpoint refuses such work: the
integration branch would point at a commit nobody could fetch. A WIP save records it.
A submodule as it was cloned is no work at all: its worktree is checkpointed as usual.
"""

from __future__ import annotations

import re
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from magsag.activities.git import GitError, commit_tree, git, refusal, trailer_block
from magsag.contracts import constants as C
from magsag.contracts.activities import CloseWorktreeInput
from magsag.contracts.failures import FailureKind

# `git submodule foreach` runs these with the submodule's path and recorded commit set.
_LIST = 'printf "%s\\0" "$displaypath"'
_RESET = 'git checkout -q -f --detach "$sha1" && git clean -ffdxq'


def saved_branch(run_id: str, task: str, path: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_/-]+", "-", path).strip("/-") or "submodule"
    return f"{C.BRANCH_PREFIX}/{run_id}/submodules/{task}/{safe}"


async def checked_out(worktree: str) -> list[str]:
    """Paths of the submodules checked out in the worktree, innermost first."""
    if not Path(worktree, ".gitmodules").exists():
        return []
    out = await git("submodule", "foreach", "--recursive", "--quiet", _LIST, cwd=worktree)
    return sorted((p for p in out.stdout.split("\0") if p), key=lambda p: -p.count("/"))


async def save_work(input: CloseWorktreeInput) -> None:
    """Save what the agent made inside the worktree's submodules (see the module doc);
    refuse a checkpoint that would leave such work out."""
    saved = []
    for path in await checked_out(input.path):
        sub = str(Path(input.path, path))
        head = await _commit_changes(sub, input, path)
        if await _published(sub, head) or head == await _recorded_at_base(input, path):
            continue
        saved.append(f"{path} on branch {await _store(input, path, sub, head)}")
    if saved and input.mode == "checkpoint":
        raise refusal(
            "the agent changed files inside submodule "
            + ", ".join(saved)
            + " (a repository of its own, which a checkpoint cannot hold); saved there"
        )
    for line in saved:
        activity.logger.warning("saved work inside submodule %s", line)


async def _commit_changes(sub: str, input: CloseWorktreeInput, path: str) -> str:
    """The submodule's HEAD, after committing what it holds uncommitted."""
    await git("add", "-A", cwd=sub)
    tree = (await git("write-tree", cwd=sub)).stdout.strip()
    head = (await git("rev-parse", "--verify", "HEAD", cwd=sub)).stdout.strip()
    if tree == (await git("rev-parse", "--verify", "HEAD^{tree}", cwd=sub)).stdout.strip():
        return head
    trailers = trailer_block(input.run_id, input.task)
    message = f"WIP: magsag: {input.task} (inside {path})\n\n{trailers}"
    commit = await commit_tree(tree, [head], message, sub)
    await git("update-ref", "-m", "magsag: save work", "HEAD", commit, head, cwd=sub)
    return commit


async def _published(sub: str, commit: str) -> bool:
    """Whether a remote branch or a tag of the submodule has the commit."""
    found = await git(
        "for-each-ref", "--count=1", "--format=x", "--contains", commit,
        "refs/remotes", "refs/tags", cwd=sub,
    )  # fmt: skip
    return bool(found.stdout.strip())


async def _recorded_at_base(input: CloseWorktreeInput, path: str) -> str | None:
    """The submodule commit the task's base records (e.g. a local-only one)."""
    if not input.base_commit:
        return None
    found = await git("rev-parse", "--verify", "--quiet", f"{input.base_commit}:{path}",
                      cwd=input.path, check=False)  # fmt: skip
    return found.stdout.strip() or None


async def _store(input: CloseWorktreeInput, path: str, sub: str, commit: str) -> str:
    """Fetch the submodule's commit into the task's repository; the branch it is on.
    The branch only moves forward: an earlier save it does not lead to gets a sibling."""
    branch = saved_branch(input.run_id, input.task, path)
    for name in (branch, f"{branch}-{commit[:12]}"):
        fetched = await git(
            "-c", "protocol.file.allow=always", "fetch", "--quiet", "--no-tags",
            "--no-write-fetch-head", str(Path(sub).resolve()), f"{commit}:refs/heads/{name}",
            cwd=input.repo, check=False,
        )  # fmt: skip
        if fetched.returncode == 0:
            return name
    raise GitError(("fetch", sub, commit), fetched.stderr, fetched.returncode)


async def reset(worktree: str) -> None:
    """Put every checked-out submodule back at the commit recorded for it, clean."""
    if Path(worktree, ".gitmodules").exists():
        await git("submodule", "foreach", "--recursive", "--quiet", _RESET, cwd=worktree)


async def remove_worktree(repo: str, path: str, admin) -> None:
    """`git worktree remove`, which refuses any worktree with submodules, even when all
    is saved: then --force, once git status (inside submodules too) shows nothing."""
    try:
        await admin(repo, "remove", path)
    except GitError as err:
        if "containing submodules" not in err.stderr:
            raise
        left = await git("status", "--porcelain", "--ignore-submodules=none", cwd=path)
        if left.stdout.strip():
            raise ApplicationError(
                f"{path} still holds unsaved changes, not removed: "
                + " ".join(left.stdout.split()[:6]),
                type=FailureKind.GIT_ERROR,
                non_retryable=True,
            ) from None
        await admin(repo, "remove", "--force", path)
