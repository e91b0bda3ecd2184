"""What a host's cached clones (clones.py) keep of runs that are over, for `magsag gc`.

A clone gathers, run after run, the branches its host made (refs/heads/magsag/<run>/...)
and its copies of the remote's (refs/remotes/origin/magsag/<run>/...). Once a run is
over, the copies can go (the remote has the branches), and so can a branch of the host
whose tip is the one the remote has, or whose changes the remote's integration branch
holds: its work is there. A branch whose work the remote lacks (a WIP `gc` saved after
a crash, say) stays. Every ref goes by compare-and-swap
from the value just read, so nothing written meanwhile is dropped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.exceptions import ApplicationError

from magsag.activities import clones
from magsag.activities.clones import TRACKING
from magsag.activities.git import git, is_ancestor
from magsag.activities.worktree import list_worktrees
from magsag.contracts import constants as C

_MINE = f"refs/heads/{C.BRANCH_PREFIX}/"
_COPIES = f"{TRACKING}{C.BRANCH_PREFIX}/"


@dataclass
class RunRefs:
    """A run's refs in one clone: name -> commit."""

    mine: dict[str, str] = field(default_factory=dict)
    copies: dict[str, str] = field(default_factory=dict)

    def copy_of(self, ref: str) -> str | None:
        """The commit the remote's branch of this name had, as last fetched or pushed."""
        return self.copies.get(_COPIES + ref.removeprefix(_MINE))


def clones_of(state_dir: Path) -> list[Path]:
    return sorted(p for p in (state_dir / "clones").glob("*.git") if (p / "HEAD").exists())


async def runs_in(clone: Path) -> dict[str, RunRefs]:
    """The runs a clone holds refs of, by run id."""
    listed = await git("for-each-ref", "--format=%(refname) %(objectname)", _MINE, _COPIES,
                       cwd=clone)  # fmt: skip
    runs: dict[str, RunRefs] = defaultdict(RunRefs)
    for line in listed.stdout.splitlines():
        ref, sha = line.split()
        mine = ref.startswith(_MINE)
        run = ref.removeprefix(_MINE if mine else _COPIES).split("/", 1)[0]
        (runs[run].mine if mine else runs[run].copies)[ref] = sha
    return dict(runs)


async def refresh(clone: Path, run_id: str, refs: RunRefs) -> bool:
    """Fetch the remote's integration branch of the run again, only reading the remote:
    the copy of a host that died is from before, without the tasks redone elsewhere since.
    False when the remote cannot be read (or has no such branch): the old copy then
    decides, which keeps more."""
    branch = C.integration_branch(run_id)
    try:  # url: only for the error's text, which gc does not show
        await clones.fetch(str(clone), clones.branches(branch), url=str(clone))
    except ApplicationError:
        return False
    copy = f"{TRACKING}{branch}"
    refs.copies[copy] = (await git("rev-parse", "--verify", copy, cwd=clone)).stdout.strip()
    return True


async def on_remote(clone: Path, run_id: str, refs: RunRefs) -> dict[str, str]:
    """The host's branches of the run whose work the remote has: the remote's branch of
    that name is at the same commit, or its integration branch holds it (a merged
    checkpoint, a branch left at the base) or holds the same changes (a checkpoint this
    host committed but never pushed before it died, the task then redone elsewhere)."""
    merged = refs.copy_of(f"refs/heads/{C.integration_branch(run_id)}")
    found = {}
    for ref, sha in refs.mine.items():
        if refs.copy_of(ref) == sha or (
            merged
            and (await is_ancestor(sha, merged, clone) or await _changes_in(sha, merged, clone))
        ):
            found[ref] = sha
    return found


async def _changes_in(sha: str, merged: str, clone: Path) -> bool:
    """Whether each commit of sha that merged lacks has its change (the same patch) in
    merged: `git cherry` marks those "-", and a change found nowhere there "+"."""
    cherry = await git("cherry", merged, sha, cwd=clone, check=False)
    lines = cherry.stdout.splitlines()
    return cherry.returncode == 0 and bool(lines) and all(line.startswith("-") for line in lines)


async def prune(clone: Path, run_id: str, refs: RunRefs) -> tuple[int, int]:
    """Drop the run's copies and the host's branches the remote has; (dropped, kept).
    A branch a worktree has checked out stays (gc removes the run's worktrees first)."""
    checked_out = {w.branch for w in await list_worktrees(str(clone))}
    pushed = await on_remote(clone, run_id, refs)
    gone = {ref: sha for ref, sha in pushed.items() if ref not in checked_out} | refs.copies
    dropped = 0
    for ref, sha in gone.items():
        done = await git("update-ref", "-d", ref, sha, cwd=clone, check=False)
        dropped += done.returncode == 0
    return dropped, len(refs.mine) + len(refs.copies) - dropped
