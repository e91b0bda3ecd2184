"""Worktree commands of several processes on one repository wait for each other.

git 2.39 fails concurrent `git worktree add/remove` on one repository; two workers on
one host (or a new worker beside a killed one's git) must never collide.
"""

import subprocess
import sys
import textwrap
import time

from tests.support.runs import worktrees_left

WORKER = textwrap.dedent(
    """
    import asyncio, os, shutil, sys, time
    from temporalio.testing import ActivityEnvironment
    from magsag.activities.worktree import close_worktree, create_worktree
    from magsag.contracts.activities import CloseWorktreeInput, CreateWorktreeInput

    repo, root, name, base, go = sys.argv[1:6]

    async def one(i):
        path = f"{root}/{name}-{i}"
        env = ActivityEnvironment()
        # A worktree whose folder is gone: the next create_worktree prunes it, and a
        # prune beside another process's add deletes what that add is making.
        await env.run(create_worktree, CreateWorktreeInput(
            repo=repo, path=f"{path}-gone", branch=f"gone/{name}-{i}", base_commit=base))
        shutil.rmtree(f"{path}-gone")
        await env.run(create_worktree, CreateWorktreeInput(
            repo=repo, path=path, branch=f"magsag/r/tasks/{name}-{i}", base_commit=base))
        open(f"{path}/{name}-{i}.txt", "w").write("x")
        await env.run(close_worktree, CloseWorktreeInput.for_task(
            repo, path, "r", f"{name}-{i}", "checkpoint"))

    async def main():
        while not os.path.exists(go):  # all processes start together
            time.sleep(0.005)
        await asyncio.gather(*(one(i) for i in range(12)))

    asyncio.run(main())
    """
)


def test_two_processes_making_worktrees_in_one_repository_never_collide(repo, tmp_path):
    base = subprocess.run(["git", "rev-parse", "main"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(repo), str(tmp_path / "wt"), name, base, go],
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name in ("one", "two", "three")
    ]
    time.sleep(2)  # not a race: they only wait for `go` meanwhile, to start together
    go.touch()
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], errors
    assert worktrees_left(repo) == []
    listed = subprocess.run(["git", "branch", "--list", "magsag/r/tasks/*"], cwd=repo,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert len(listed.stdout.split()) == 36
