"""Checks of everything a user passes in, before anything is created (invariant 7)."""

import os
import re
import secrets
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from magsag.activities import git
from magsag.contracts.constants import MAX_CONCURRENCY
from magsag.contracts.plan import Plan
from magsag.contracts.plan_loader import PlanError, load_plan


class InputError(ValueError):
    """Bad input; str() is the one line shown before exiting 2."""


def check_plan(path: Path, provider_map: dict[str, str] | None = None) -> Plan:
    """The plan file loaded and normalized, with its runners' options checked."""
    from magsag.activities.runners import check_spec  # the adapters: only plan commands

    try:
        plan = load_plan(path, provider_map)
    except PlanError as err:
        raise InputError(str(err)) from None
    for name, runner in plan.runners.items():
        try:
            check_spec(runner)
        except ValueError as err:
            raise InputError(f"{path}: runner '{name}': {err}") from None
    return plan


def check_repo(path: Path) -> Path:
    repo_path = path.expanduser().resolve()
    if not repo_path.exists():
        raise InputError(f"--repo {path}: no such directory")
    # One call: bare or not, then the top of the work tree (git refuses that one for a
    # bare repository, after printing the first).
    found = _git(repo_path, "rev-parse", "--is-bare-repository", "--show-toplevel")
    lines = found.stdout.splitlines()
    if not lines:
        raise InputError(f"--repo {path}: not a git repository")
    if lines[0] == "true":
        raise InputError(f"--repo {path}: a bare repository has no working tree to branch from")
    if found.returncode != 0 or len(lines) < 2:
        raise InputError(f"--repo {path}: not a git repository")
    top = Path(lines[1]).resolve()
    if top != repo_path:
        raise InputError(f"--repo {path}: not the top of its repository (that is {top})")
    return top


def check_base(repo_path: Path, base: str | None) -> tuple[str, str]:
    """Resolve the base branch (default: the checked-out one); returns (name, commit)."""
    if base is None:
        _check_no_operation_in_progress(repo_path)
        head = _git(repo_path, "symbolic-ref", "--quiet", "HEAD")
        if head.returncode == 1:
            raise InputError("--base: HEAD is detached; name the branch to start from")
        if head.returncode != 0 or not head.stdout.startswith("refs/heads/"):
            raise InputError("--base: cannot tell the current branch; name it")
        base = head.stdout.strip().removeprefix("refs/heads/")
    found = _git(repo_path, "rev-parse", "--verify", "--quiet", "--end-of-options",
                 f"{base}^{{commit}}")  # fmt: skip
    if found.returncode != 0:
        raise InputError(f"--base {base}: no such branch or commit in {repo_path}")
    return base, found.stdout.strip()


# Files git keeps while an operation on the checked-out branch is unfinished.
_IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
}


def _check_no_operation_in_progress(repo_path: Path) -> None:
    """Starting from the checked-out branch mid-merge would start from half a state."""
    git_dir = repo_path / ".git"
    if not git_dir.is_dir():  # a linked worktree's or a submodule's .git file names it
        git_dir = Path(_git(repo_path, "rev-parse", "--absolute-git-dir").stdout.strip())
    for name, what in _IN_PROGRESS.items():
        if (git_dir / name).exists():
            raise InputError(
                f"--repo {repo_path}: {what} is in progress on the checked-out "
                "branch; finish or abort it, or name the branch with --base"
            )


def uncommitted_note(repo_path: Path) -> Callable[[], str | None]:
    """A run starts from commits only: say so when the user's checkout has more. The
    check runs beside the caller's next ones; calling the result waits for it."""
    diff = subprocess.Popen(
        ["git", "diff", "--quiet", "HEAD", "--"], cwd=repo_path, env=git.environment(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def note() -> str | None:
        if diff.wait() != 1:
            return None
        return (
            f"note: uncommitted changes in {repo_path} are not part of the run "
            "(it starts from the base branch's last commit)"
        )

    return note


def _git(repo_path: Path, *args: str) -> subprocess.CompletedProcess:
    """git on the repository the user named (never one that GIT_DIR and the like point
    at), with parseable output. Plain git: GitPython took longer to import than these
    checks take to run."""
    return subprocess.run(
        ["git", *args], cwd=repo_path, env=git.environment(), capture_output=True, text=True
    )


def check_worktree_root(root: Path, repo_path: Path) -> Path:
    resolved = root.expanduser().resolve()
    if resolved == repo_path or repo_path in resolved.parents:
        raise InputError(
            f"--worktree-root {root}: inside the repository's tree; choose a directory outside it"
        )
    check_writable_dir(resolved, f"--worktree-root {root}")
    return resolved


def check_state_dir(state: Path) -> Path:
    """Logs and run files go there; a run that cannot write them is refused at start."""
    chosen = "MAGSAG_STATE_DIR" if os.environ.get("MAGSAG_STATE_DIR") else "default"
    check_writable_dir(state, f"state directory {state} ({chosen})")
    return state


def check_writable_dir(path: Path, label: str) -> None:
    """`path` is a directory this user can write in, or can be made one; creates nothing."""
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        problem = "is not a directory"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = "is not writable by this user"
    else:
        return
    where = "it" if existing == path else f"cannot be created: {existing}"
    raise InputError(f"{label}: {where} {problem}")


def check_concurrency(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= MAX_CONCURRENCY:
        raise InputError(f"--concurrency {value}: must be between 1 and {MAX_CONCURRENCY}")
    return value


def parse_provider_map(text: str | None) -> dict[str, str]:
    """ "backend=codex,frontend=claude" -> {"backend": "codex", "frontend": "claude"}."""
    mapping: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        category, sep, runner = (part.strip() for part in pair.partition("="))
        if not sep or not category or not runner:
            raise InputError(f"--provider-map {text}: write CATEGORY=RUNNER[,CATEGORY=RUNNER]")
        mapping[category] = runner
    return mapping


def check_max_cost(value: float | None) -> None:
    if value is not None and value <= 0:
        raise InputError(f"--max-cost {value}: must be more than 0")


def new_run_id(plan_name: str) -> str:
    """Readable, unique and safe as a branch segment: <plan>-<utc time>-<random>."""
    slug = re.sub(r"[^a-z0-9]+", "-", plan_name.lower()).strip("-")[:24].strip("-") or "run"
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{slug}-{stamp}-{secrets.token_hex(2)}"
