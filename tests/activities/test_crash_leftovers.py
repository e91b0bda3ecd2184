"""What a worker killed with its git commands leaves behind, cleaned up by the retry.

A SIGKILL of a worker's process group kills git half-way: lock files stay, a worktree
stays half made (registered, detached, locked "initializing"), a removal stays half
done. The retried activity must recognise each and converge, never report it as the
task's failure, and never mistake what a half-done removal deleted for the agent's work.
"""

import json
import os
import time
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from magsag.activities.agent import run_agent
from magsag.activities.integration import integrate
from magsag.activities.worktree import removal_marker
from magsag.contracts.activities import IntegrateInput, IntegrateItem
from tests.activities.test_agent import RUN, TASK, agent_input
from tests.activities.test_worktree import BRANCH, close, create
from tests.support.gitrepo import commit_file, git_out, make_repo, write_file
from tests.support.runs import parked, worktrees_left

LONG_AGO = time.time() - 60


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def stale_lock(path: Path) -> Path:
    """A lock file as a killed git leaves it: nobody holds it, and it is not new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    os.utime(path, (LONG_AGO, LONG_AGO))
    return path


def admin_dir(repo: Path, worktree: Path) -> Path:
    return repo / ".git" / "worktrees" / worktree.name


async def test_a_stale_index_lock_in_the_worktree_does_not_stop_the_save(repo, tmp_path):
    worktree = tmp_path / "wt" / TASK
    await create(repo, worktree)
    write_file(worktree, "work.txt", "the agent's work\n")
    lock = stale_lock(admin_dir(repo, worktree) / "index.lock")

    closed = await close(repo, worktree)

    assert not lock.exists()
    assert git_out(repo, "show", f"{closed.commit}:work.txt") == "the agent's work"
    assert worktrees_left(repo) == []


async def test_a_lock_still_in_use_is_left_alone(repo, tmp_path):
    worktree = tmp_path / "wt" / TASK
    await create(repo, worktree)
    write_file(worktree, "work.txt", "the agent's work\n")
    lock = admin_dir(repo, worktree) / "index.lock"
    with lock.open("w"):  # held open, as a running git holds it
        os.utime(lock, (LONG_AGO, LONG_AGO))
        with pytest.raises(ApplicationError) as failed:
            await close(repo, worktree)
    assert "index.lock" in str(failed.value) and not failed.value.non_retryable
    assert lock.exists()


async def test_a_stale_lock_on_the_integration_branch_does_not_stop_the_merge(repo, tmp_path):
    branch = f"magsag/{RUN}/integration"
    git_out(repo, "branch", branch, "main")
    task_commit = commit_file(repo, "feature.txt", "x\n", "feature")
    git_out(repo, "reset", "-q", "--hard", "HEAD~1")
    lock = stale_lock(repo / ".git" / "refs" / "heads" / f"{branch}.lock")

    out = await ActivityEnvironment().run(
        integrate,
        IntegrateInput(repo=str(repo), branch=branch, run_id=RUN,
                       items=[IntegrateItem(task=TASK, commit=task_commit)]),
    )  # fmt: skip

    assert out.outcomes[0].merged and not lock.exists()
    assert git_out(repo, "rev-parse", branch) == task_commit


def half_made_worktree(repo: Path, worktree: Path) -> None:
    """Registered, locked "initializing", HEAD still the placeholder: what a `git
    worktree add` killed before its checkout leaves."""
    git_out(repo, "worktree", "add", "-q", "--detach", "--lock", "--reason", "initializing",
            str(worktree), "main")  # fmt: skip
    (admin_dir(repo, worktree) / "HEAD").write_text("0" * 40 + "\n")


async def test_a_half_made_worktree_is_made_again(repo, tmp_path):
    worktree = tmp_path / "wt" / TASK
    half_made_worktree(repo, worktree)

    created = await create(repo, worktree)

    assert not created.reused
    assert git_out(worktree, "symbolic-ref", "HEAD") == f"refs/heads/{BRANCH}"
    assert (worktree / "README.md").exists()
    closed = await close(repo, worktree)
    assert closed.removed and worktrees_left(repo) == []


async def test_closing_a_half_made_worktree_removes_it(repo, tmp_path):
    worktree = tmp_path / "wt" / TASK
    git_out(repo, "branch", BRANCH, "main")
    half_made_worktree(repo, worktree)

    closed = await close(repo, worktree, mode="wip")

    assert closed.commit is None and worktrees_left(repo) == []


def checkout_cut_short(repo: Path, worktree: Path) -> None:
    """Registered on the task's branch and locked "initializing", a file of the tree
    written and none of the rest: a new worktree whose checkout outside the worktree
    lock (activities/worktree_add.py) was killed."""
    git_out(repo, "branch", BRANCH, "main")
    git_out(repo, "worktree", "add", "-q", "--no-checkout", "--lock", "--reason",
            "initializing", str(worktree), BRANCH)  # fmt: skip
    write_file(worktree, "README.md", "# half written")


async def test_a_worktree_whose_checkout_was_cut_short_is_made_again(repo, tmp_path):
    worktree = tmp_path / "wt" / TASK
    checkout_cut_short(repo, worktree)

    created = await create(repo, worktree)

    assert not created.reused
    assert git_out(worktree, "status", "--porcelain") == ""
    assert (worktree / "README.md").read_text() == (repo / "README.md").read_text()
    assert not (admin_dir(repo, worktree) / "locked").exists()


async def test_closing_a_worktree_whose_checkout_was_cut_short_commits_no_deletion(repo, tmp_path):
    # Its index and files say every file of the tree is gone: saving them as WIP would
    # commit the deletion of the whole tree on the task's branch.
    worktree = tmp_path / "wt" / TASK
    checkout_cut_short(repo, worktree)

    closed = await close(repo, worktree, mode="wip")

    assert closed.commit is None and worktrees_left(repo) == []
    assert git_out(repo, "rev-parse", BRANCH) == git_out(repo, "rev-parse", "main")


def interrupted_removal(repo: Path, worktree: Path) -> str:
    """The checkpoint is on the branch, the removal was under way when git died: some
    files are gone from the worktree, which is still registered."""
    commit = commit_file(worktree, "work.txt", "done\n", f"magsag: {TASK}\n\n"
                         f"Magsag-Run: {RUN}\nMagsag-Task: {TASK}\n")  # fmt: skip
    removal_marker(str(worktree)).write_text(json.dumps({"commit": commit, "tip": commit}))
    (worktree / "work.txt").unlink()
    (worktree / "README.md").unlink()
    return commit


async def test_a_half_done_removal_is_finished_without_committing_what_it_deleted(repo, tmp_path):
    worktree = tmp_path / "wt" / TASK
    await create(repo, worktree)
    checkpoint = interrupted_removal(repo, worktree)

    closed = await close(repo, worktree)

    assert closed.commit == checkpoint
    assert git_out(repo, "rev-parse", BRANCH) == checkpoint  # no commit of the deletions
    assert worktrees_left(repo) == [] and not removal_marker(str(worktree)).exists()


async def test_an_attempt_whose_removal_was_cut_short_does_not_run_the_agent_again(repo, tmp_path):
    ran = tmp_path / "agent-ran"
    inp = agent_input(repo, tmp_path, f"touch {ran}; echo again > work.txt")
    worktree = Path(inp.worktree)
    await create(repo, worktree)
    checkpoint = interrupted_removal(repo, worktree)

    out = await ActivityEnvironment().run(run_agent, inp)

    assert not ran.exists()
    assert out.commit == checkpoint and git_out(repo, "rev-parse", BRANCH) == checkpoint
    assert worktrees_left(repo) == [parked(inp.worktree)]
