"""A worker's cached clone of a remote: where it works on the tasks of URL runs.

One bare clone per remote under <state>/clones, made once and reused by every task
(objects are shared, never a fresh clone per task). Only the refs a step needs are
fetched, into refs/remotes/origin/ (what this host makes stays in refs/heads/ until
pushed), and pushes are never forced (invariant 3): a push the remote refuses because
it is not a fast-forward is a PushRejected, which the caller answers by fetching again.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from temporalio.exceptions import ApplicationError

from magsag.activities.git import GitError, environment, git, resolve_commit
from magsag.contracts.failures import FailureKind
from magsag.contracts.remotes import shown
from magsag.worker import connection

REMOTE = "origin"
TRACKING = f"refs/remotes/{REMOTE}/"
# How the remote says a push was refused because the ref moved (not a fast-forward).
_RACE_LOST = ("non-fast-forward", "fetch first", "[rejected]", "stale info")

_MAKING: dict[str, asyncio.Lock] = {}
_FETCHING: dict[str, asyncio.Lock] = {}


class PushRejected(Exception):
    """The remote's ref is not where this host last saw it: fetch and try again."""


def clone_path(url: str, state_dir: Path | None = None) -> Path:
    """Where this host keeps its clone of `url`: named for people, keyed by the URL."""
    key = hashlib.sha256(url.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").rsplit("/", 1)[-1])[:40]
    root = state_dir or connection.state_dir()
    return root / "clones" / f"{name.removesuffix('.git') or 'repo'}-{key}.git"


def make(url: str, state_dir: Path | None = None) -> Path:
    """This host's clone of `url`, made (empty: steps fetch what they need) if missing.
    Made aside and renamed into place, so a process killed half-way leaves no half clone."""
    path = clone_path(url, state_dir)
    if (path / "HEAD").exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f"{path.name}.new-{os.getpid()}")
    shutil.rmtree(aside, ignore_errors=True)

    def run(*args: str, cwd: Path) -> None:
        subprocess.run(["git", *args], cwd=cwd, env=environment(), check=True, capture_output=True)

    run("init", "--quiet", "--bare", str(aside), cwd=path.parent)
    run("remote", "add", REMOTE, url, cwd=aside)
    # The branches this host makes keep a reflog, as in a repository with a checkout.
    run("config", "core.logAllRefUpdates", "true", cwd=aside)
    try:
        aside.rename(path)
    except OSError:  # another process of this host made it meanwhile
        shutil.rmtree(aside, ignore_errors=True)
    return path


async def ensure(url: str) -> str:
    """This host's clone of `url` (see make), for an activity."""
    path = clone_path(url)
    if not (path / "HEAD").exists():
        async with _MAKING.setdefault(str(path), asyncio.Lock()):
            await asyncio.to_thread(make, url)
    return str(path)


def tracking(ref: str) -> str:
    """Where a fetch puts the remote's `refs/heads/<x>`: refs/remotes/origin/<x>."""
    return TRACKING + ref.removeprefix("refs/heads/")


def branches(*names: str, optional: bool = False) -> list[str]:
    """Refspecs fetching branches into their tracking refs. An optional branch may not
    exist on the remote: its refspec is a pattern, which matches nothing without error."""
    star = "*" if optional else ""
    return [f"+refs/heads/{name}{star}:{TRACKING}{name}{star}" for name in names]


async def fetch(clone: str, refspecs: list[str], url: str) -> None:
    """Fetch the refspecs from the remote (tags and everything else stay behind). What
    this host has of the remote is told from its tracking refs alone: the clone's own
    branches pile up over runs, and listing each of them per fetch would cost O(runs)."""
    if not refspecs:
        return
    # One fetch at a time per clone in this worker: two updating one tracking ref at
    # once would fail on its lock (the retry would cost a second).
    async with _FETCHING.setdefault(clone, asyncio.Lock()):
        await _fetch(clone, refspecs, url)


async def _fetch(clone: str, refspecs: list[str], url: str) -> None:
    try:
        await git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                  f"--negotiation-tip={TRACKING}*", REMOTE, *refspecs, cwd=clone)  # fmt: skip
    except GitError as err:
        raise _unreachable(err, url) from None


async def missing(clone: str, objects: list[str]) -> bool:
    """Whether any of the objects is not in the clone (one git call for them all)."""
    if not objects:
        return False
    names = "".join(f"{name}\n" for name in objects)
    found = await git("cat-file", "--batch-check=%(objectname)", cwd=clone, input=names)
    return any(line.endswith(" missing") for line in found.stdout.splitlines())


async def remote_tip(clone: str, branch: str) -> str | None:
    """The branch's tip as the last fetch saw it on the remote."""
    return await resolve_commit(tracking(f"refs/heads/{branch}"), clone)


async def push(clone: str, commit: str, branch: str, url: str) -> None:
    """Move the remote's branch to `commit`, only by a fast-forward (or create it)."""
    found = await git("push", "--quiet", "--porcelain", REMOTE, f"{commit}:refs/heads/{branch}",
                      cwd=clone, check=False)  # fmt: skip
    if found.returncode == 0:  # git moved the branch's tracking ref with it
        return
    said = f"{found.stdout}\n{found.stderr}"
    if any(sign in said for sign in _RACE_LOST):
        raise PushRejected(f"{branch} moved on {shown(url)}")
    raise ApplicationError(
        f"could not push {branch} to {shown(url)}: {_git_said(found.stderr or found.stdout)}",
        type=FailureKind.PUSH_REJECTED,
        non_retryable=True,
    )


def _git_said(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "\t"]
    return " ".join(lines)[-500:] or "no message"


def _unreachable(err: GitError, url: str) -> ApplicationError:
    # Retryable: a network that comes back, or another worker that can reach it.
    return ApplicationError(
        f"could not fetch from {shown(url)}: {_git_said(err.stderr)}", type=FailureKind.GIT_ERROR
    )
