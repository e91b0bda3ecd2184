"""Checks of a `--repo` that is a git URL, before anything is created (invariant 7).

The remote is asked once with `git ls-remote` (reachable, the base branch is there);
that it takes pushes is learnt when the run's plan is pushed to it (plan_store), still
before the run starts. Workers use their own git credentials; a URL that carries a
password is refused, since the run's history would keep it for anyone to read.
"""

import subprocess

from magsag.activities.git import environment
from magsag.cli.inputs import InputError
from magsag.contracts import constants as C
from magsag.contracts.remotes import password_in, shown, worker_path
from magsag.contracts.run import RunPaths
from magsag.worker import connection

# How long the remote may take to answer before the run is refused.
LS_REMOTE_TIMEOUT = 60


def check_url(url: str) -> str:
    if url.startswith("-"):
        raise InputError(f"--repo {url}: not a repository URL")
    if password_in(url):
        raise InputError(
            f"--repo {shown(url)}: the URL carries a password, which the run's history "
            "would keep; give it to git instead (a credential helper, or an ssh key)"
        )
    return url


def check_base(url: str, base: str | None) -> tuple[str, str]:
    """The base branch on the remote (default: the remote's HEAD); (name, commit)."""
    ref = "HEAD" if base is None else f"refs/heads/{base}"
    commits, symrefs = {}, {}
    for line in _ls_remote(url, ref).splitlines():
        value, _, name = line.partition("\t")
        if value.startswith("ref: "):
            symrefs[name] = value.removeprefix("ref: ")
        else:
            commits[name] = value
    if base is None:
        target = symrefs.get("HEAD", "")
        if not target.startswith("refs/heads/") or "HEAD" not in commits:
            raise InputError(
                f"--repo {shown(url)}: cannot tell its default branch; name it with --base"
            )
        return target.removeprefix("refs/heads/"), commits["HEAD"]
    if ref not in commits:
        raise InputError(f"--base {base}: no such branch on {shown(url)}")
    return base, commits[ref]


def paths(url: str, run_id: str) -> RunPaths:
    """Where the run's files are: on every host, under that host's own state dir."""
    return RunPaths(
        repo=url, worktree_root=worker_path("worktrees"), log_dir=worker_path("runs", run_id)
    )


def activity_queue() -> str:
    """The queue of a URL run's activities: every worker polls it."""
    return C.any_host_queue(connection.task_queue())


def _ls_remote(url: str, ref: str) -> str:
    try:
        found = subprocess.run(
            ["git", "ls-remote", "--symref", url, ref],
            env=environment(),
            capture_output=True,
            text=True,
            timeout=LS_REMOTE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise InputError(
            f"--repo {shown(url)}: no answer in {LS_REMOTE_TIMEOUT}s; is it reachable?"
        ) from None
    if found.returncode != 0:
        why = " ".join(line.strip() for line in found.stderr.splitlines() if line.strip())
        raise InputError(f"--repo {shown(url)}: cannot read it: {why or 'git ls-remote failed'}")
    return found.stdout
