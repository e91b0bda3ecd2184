"""Leftovers of runs that are over: worktrees and agent processes, saved then removed.

A worker killed for good, a run terminated from the Web UI, a history that expired:
each can leave a task's worktree (maybe with uncommitted work) and its agent's process
group behind. The janitor finds them by magsag's own names (branch
magsag/<run>/tasks/<task>, pidfile <worktree>.pid); whether their run is over is for
the caller to say. Cleaning commits what the worktree holds as WIP on its branch
before removing it, exactly as a failed task does (invariant 3).
"""

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from magsag.activities import parking
from magsag.activities.git import resolve_commit
from magsag.activities.process import kill_recorded_group
from magsag.activities.worktree import close_worktree, list_worktrees
from magsag.contracts import constants as C
from magsag.contracts.activities import CloseWorktreeInput

_TASK_BRANCH = re.compile(rf"^refs/heads/{C.BRANCH_PREFIX}/(?P<run>[^/]+)/tasks/(?P<task>.+)$")


@dataclass(frozen=True)
class Leftover:
    run_id: str
    task: str
    repo: str
    worktree: str
    parked: bool = False  # parked for the run's next task: all its work is committed

    @property
    def branch(self) -> str:
        return C.task_branch(self.run_id, self.task)


async def find_in_repo(repo: str) -> list[Leftover]:
    """Task worktrees magsag registered in this repository: on their task branch, or
    at a task's path (<root>/<run>/<task>) after its agent switched branch there."""
    found = []
    for worktree in await list_worktrees(repo):
        match = _TASK_BRANCH.match(worktree.branch or "")
        path = Path(worktree.path)
        if path.parent.name == parking.PARKED:
            found.append(Leftover(path.parent.parent.name, path.name, repo, str(path), True))
        elif match:
            found.append(Leftover(match["run"], match["task"], repo, worktree.path))
        elif await _is_task_path(repo, path):
            found.append(Leftover(path.parent.name, path.name, repo, worktree.path))
    return found


async def _is_task_path(repo: str, path: Path) -> bool:
    branch = C.task_branch(path.parent.name, path.name)
    return await resolve_commit(f"refs/heads/{branch}", repo) is not None


async def find_under_root(root: Path) -> list[Leftover]:
    """Task worktrees under a worktree root (<root>/<run>/<task>), whatever their repo."""
    found = []
    gitfiles = [*root.glob("*/*/.git"), *root.glob(f"*/{parking.PARKED}/*/.git")]
    for gitfile in sorted(gitfiles):
        repo = _repo_of(gitfile)
        if repo:
            found.extend(
                item for item in await find_in_repo(repo)
                if Path(item.worktree).resolve() == gitfile.parent.resolve()
            )  # fmt: skip
    return found


def _repo_of(gitfile: Path) -> str | None:
    """A linked worktree's .git file reads "gitdir: <repo>/.git/worktrees/<name>", or
    "gitdir: <clone>/worktrees/<name>" for a bare clone of a URL run's remote."""
    try:
        text = gitfile.read_text().strip()
    except OSError:
        return None
    if not text.startswith("gitdir: "):
        return None
    gitdir = Path(text.removeprefix("gitdir: "))
    if gitdir.parent.name != "worktrees":
        return None
    common = gitdir.parent.parent
    return str(common.parent if common.name == ".git" else common)


async def clean(item: Leftover) -> str | None:
    """Kill the task's agent group if it lives, save the work as WIP, remove the
    worktree. Returns the WIP commit, or None when there was nothing to save."""
    if item.parked:
        await parking.discard(item.repo, item.worktree)
        return None
    await asyncio.to_thread(kill_recorded_group, Path(f"{item.worktree}.pid"))
    closed = await close_worktree(
        CloseWorktreeInput.for_task(
            item.repo, item.worktree, item.run_id, item.task, "wip", f"magsag gc: {item.task}"
        )
    )
    return closed.commit
