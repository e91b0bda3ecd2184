"""A small async git runner shared by the repo-bound activities.

git runs as an asyncio subprocess (never a shell, never a blocking call in async code),
with LC_ALL=C so its output and messages are parseable.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from temporalio.exceptions import ApplicationError

from magsag.activities import stale_locks
from magsag.contracts.constants import TRAILER_RUN, TRAILER_TASK
from magsag.contracts.failures import FailureKind

logger = logging.getLogger(__name__)

# Identity used for magsag's own commits when the repository has none configured.
FALLBACK_NAME = "magsag"
FALLBACK_EMAIL = "magsag@localhost"

# Variables that would point git at another repository than `cwd` (e.g. a worker
# started from inside a git hook); every call must act on the directory it is given.
_LOCATING_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_PREFIX",
)


@dataclass(frozen=True)
class GitResult:
    stdout: str
    stderr: str
    returncode: int


class GitError(Exception):
    def __init__(self, args: tuple[str, ...], stderr: str, returncode: int) -> None:
        self.command = ("git", *args)
        self.stderr = stderr.strip()
        self.returncode = returncode
        super().__init__(f"{' '.join(self.command)} failed ({returncode}): {self.stderr}")


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git call gets: the caller's, minus what would point git at
    another repository, with parseable output."""
    env = {k: v for k, v in os.environ.items() if k not in _LOCATING_VARS}
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0")
    if extra:
        env.update(extra)
    return env


async def git(
    *args: str,
    cwd: str | Path,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    pass_fds: tuple[int, ...] = (),
) -> GitResult:
    """Run `git <args>` in `cwd`; raise GitError on a non-zero exit when `check`.
    `pass_fds` are inherited by git (a lock it must hold for as long as it runs).

    A command stopped by a lock file that a killed git left behind runs again once the
    stale lock is removed (invariant 2: a retry after a crash converges)."""
    result = await _run(args, cwd, env, input, pass_fds)
    lock = stale_locks.lock_in_the_way(result.stderr) if result.returncode else None
    if lock is not None and await asyncio.to_thread(stale_locks.remove_if_stale, lock):
        logger.warning("removed stale lock %s left by a killed git", lock)
        result = await _run(args, cwd, env, input, pass_fds)
    if check and result.returncode != 0:
        raise GitError(args, result.stderr, result.returncode)
    return result


async def _run(
    args: tuple[str, ...], cwd: str | Path, env: Mapping[str, str] | None, input, pass_fds
) -> GitResult:
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=str(cwd),
        env=environment(env),
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        pass_fds=pass_fds,
    )
    data = input.encode() if isinstance(input, str) else input
    # Shielded: on cancellation git still runs to its end; killing it mid-write would
    # leave *.lock files behind that break every later git call on the repository.
    out, err = await asyncio.shield(proc.communicate(data))
    return GitResult(
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        returncode=proc.returncode or 0,
    )


async def commit_tree(tree: str, parents: list[str], message: str, cwd: str | Path) -> str:
    """A commit of `tree` with `parents` (git commit-tree: no hooks, no ref moves).

    It is made with the configured identity, else with magsag's fallback. Asking git
    for the identity first would cost a call per commit: the first try runs with
    user.useConfigOnly, which makes git refuse rather than guess when none is configured
    (a variable such as GIT_AUTHOR_NAME counts as configured, as it always did)."""
    args = ["commit-tree", tree, *(arg for parent in parents for arg in ("-p", parent)), "-F", "-"]
    made = await git("-c", "user.useConfigOnly=true", *args, cwd=cwd, input=message, check=False)
    if made.returncode != 0 and _NO_IDENTITY in made.stderr:
        made = await git(*await identity_args(cwd), *args, cwd=cwd, input=message, check=False)
    if made.returncode != 0:
        raise GitError(tuple(args), made.stderr, made.returncode)
    return made.stdout.strip()


# How git refuses a commit under user.useConfigOnly when no name or email is configured.
_NO_IDENTITY = "auto-detection is disabled"


async def identity_args(cwd: str | Path) -> list[str]:
    """`-c user.*` flags for a commit, only when no identity is configured.

    A configured identity (config or GIT_AUTHOR_*/GIT_COMMITTER_* variables, which take
    precedence over -c anyway) is always the one used.
    """
    found = await git("config", "--get-regexp", r"^user\.(name|email)$", cwd=cwd, check=False)
    keys = {line.split(" ", 1)[0] for line in found.stdout.splitlines()}
    flags: list[str] = []
    if "user.name" not in keys:
        flags += ["-c", f"user.name={FALLBACK_NAME}"]
    if "user.email" not in keys:
        flags += ["-c", f"user.email={FALLBACK_EMAIL}"]
    return flags


async def resolve_commit(rev: str, cwd: str | Path) -> str | None:
    """The commit SHA `rev` names, or None when it names no commit."""
    if rev.startswith("-"):  # never let a revision be read as an option
        return None
    found = await git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=cwd, check=False)
    return found.stdout.strip() if found.returncode == 0 else None


async def check_branch_name(branch: str, cwd: str | Path) -> None:
    """Refuse, for good, a branch name git would not accept."""
    found = await git("check-ref-format", f"refs/heads/{branch}", cwd=cwd, check=False)
    if found.returncode != 0 or branch.startswith("-"):
        raise ApplicationError(
            f"invalid branch name: {branch!r}", type=FailureKind.GIT_ERROR, non_retryable=True
        )


# What leads the message of a WIP commit (partial work of a failed or cancelled task).
WIP_PREFIX = "WIP: "


def trailer_block(run_id: str, task: str) -> str:
    return f"{TRAILER_RUN}: {run_id}\n{TRAILER_TASK}: {task}\n"


async def has_trailers(commit: str, run_id: str, task: str, cwd: str | Path) -> bool:
    """Whether `commit` is magsag's own commit for this run and task (its trailers say so)."""
    return (await _own_commit(commit, run_id, task, cwd)) is not None


async def is_checkpoint(commit: str, run_id: str, task: str, cwd: str | Path) -> bool:
    """Whether `commit` is this task's checkpoint: its own commit, not a WIP save."""
    subject = await _own_commit(commit, run_id, task, cwd)
    return subject is not None and not subject.startswith(WIP_PREFIX)


async def _own_commit(commit: str, run_id: str, task: str, cwd: str | Path) -> str | None:
    """The subject of `commit` when it is magsag's for this run and task, else None."""
    shown = await git("show", "-s", "--format=%s%n%(trailers:only,unfold)", commit, cwd=cwd)
    subject, _, trailers = shown.stdout.partition("\n")
    pairs = {
        tuple(part.strip() for part in line.split(":", 1))
        for line in trailers.splitlines()
        if ":" in line
    }
    return subject if {(TRAILER_RUN, run_id), (TRAILER_TASK, task)} <= pairs else None


async def changed_files(commit: str, cwd: str | Path, since: str | None = None) -> list[str]:
    """Paths the commit changes relative to `since`, by default its (first) parent."""
    revs = [since, commit] if since else [commit]
    out = await git(
        "diff-tree", "-r", "-z", "--root", "--no-commit-id", "--name-only", *revs, cwd=cwd
    )
    return [p for p in out.stdout.split("\0") if p]


async def is_ancestor(ancestor: str, commit: str, cwd: str | Path) -> bool:
    """Whether `ancestor` is `commit` or one of its ancestors (exit 1 says no; any other
    failure, an unknown commit or a killed git, is an error)."""
    args = ("merge-base", "--is-ancestor", ancestor, commit)
    found = await git(*args, cwd=cwd, check=False)
    if found.returncode not in (0, 1):
        raise GitError(args, found.stderr, found.returncode)
    return found.returncode == 0


async def merge_base(a: str, b: str, cwd: str | Path) -> str | None:
    """The best common ancestor of two commits, None when they have none. It is `a`
    exactly when `a` is an ancestor of `b` (or `b` itself), and `b` when `b` is one of `a`."""
    args = ("merge-base", a, b)
    found = await git(*args, cwd=cwd, check=False)
    if found.returncode not in (0, 1):
        raise GitError(args, found.stderr, found.returncode)
    return found.stdout.strip() or None


def refusal(message: str) -> ApplicationError:
    """A checkpoint refused because of what the agent did to git (its work is saved as
    WIP instead): another attempt may do better, a Temporal retry of the same attempt
    would not."""
    return ApplicationError(message, type=FailureKind.AGENT_GIT_STATE, non_retryable=True)


def to_application_error(err: GitError, non_retryable: bool = False) -> ApplicationError:
    return ApplicationError(str(err), type=FailureKind.GIT_ERROR, non_retryable=non_retryable)
