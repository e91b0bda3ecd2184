"""A merge conflict as a resolver meets it: the merge left in a worktree with its
markers, the tasks on the other side, and whether any marker is left afterwards."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from magsag.activities.git import GitError, git, identity_args, merge_base
from magsag.contracts.constants import TRAILER_TASK

# The lines git writes around a conflict (`|||||||` with merge.conflictStyle diff3/zdiff3).
_MARKER = re.compile(rb"^(?:<{7}|>{7}|\|{7})(?: |$)|^={7}$", re.MULTILINE)


async def merge_with_markers(worktree: str, commit: str) -> list[str]:
    """Merge `commit` into the worktree's HEAD without committing; the conflicted paths,
    their conflict markers left in the files. rerere stays off: the resolver, not a
    recorded resolution, decides."""
    args = ("-c", "rerere.enabled=false", "merge", "--no-commit", "--no-ff", "--quiet", commit)
    merged = await git(*await identity_args(worktree), *args, cwd=worktree, check=False)
    found = await git("diff", "--name-only", "-z", "--diff-filter=U", cwd=worktree)
    files = [f for f in found.stdout.split("\0") if f]
    if merged.returncode not in (0, 1) or (merged.returncode == 1 and not files):
        raise GitError(args, merged.stderr or merged.stdout, merged.returncode)
    return files


async def sides(repo: str, tip: str, commit: str, files: list[str]) -> dict[str, list[str]]:
    """The tasks whose commits last changed each file on the integration branch since it
    parted from `commit`, by their Magsag-Task trailers: {task: [files]}, latest first.
    One git call: the branch's own line (first parents) from the newest commit back."""
    base = await merge_base(tip, commit, repo)
    if base is None or not files:
        return {}
    found = await git(
        "-c", "core.quotePath=false", "log", "--first-parent", "--name-only",
        f"--format=%x01%(trailers:key={TRAILER_TASK},valueonly,separator=%x2C)",
        f"{base}..{tip}", "--", *files, cwd=repo,
    )  # fmt: skip
    owners: dict[str, list[str]] = {}
    left = set(files)
    for record in found.stdout.split("\x01")[1:]:
        task, *changed = record.strip("\n").split("\n")
        task = task.split(",")[0].strip()
        for path in (p for p in changed if p in left):
            if task:  # a commit without trailers (the user's) names no intent
                owners.setdefault(task, []).append(path)
            left.discard(path)
    return owners


async def markers_left(worktree: str, files: list[str]) -> str | None:
    """What is still unresolved: the first conflict marker left in the conflicted files."""

    def scan() -> str | None:
        for name in files:
            try:
                data = Path(worktree, name).read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                continue  # deleted (or made a directory): the resolver's choice
            found = _MARKER.search(data)
            if found:
                line = data.count(b"\n", 0, found.start()) + 1
                return f"conflict markers are left in {name} (line {line})"
        return None

    return await asyncio.to_thread(scan)
