"""Parked worktrees: a finished task's worktree serves the run's next task, which sees
exactly its own base, and nothing of it outlives the run."""

import asyncio
import fcntl
import os
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from magsag.activities import janitor, parking, repo_lock
from magsag.activities.agent import run_agent
from magsag.activities.git import git
from magsag.activities.run_log import record_run_end
from magsag.contracts.activities import AgentInput, RunEndRecord
from magsag.contracts.run import RunResult, RunStatus
from tests.activities.test_agent import RUN, agent_input
from tests.support.gitrepo import commit_file, git_out
from tests.support.runs import parked, worktrees_left


def task_input(repo: Path, root: Path, task: str, script: str, base: str) -> AgentInput:
    """An attempt of `task`, its worktree under root (tmp_path/worktrees)."""
    return agent_input(repo, root.parent, script, task=task, base_commit=base)


async def run(inp: AgentInput):
    return await ActivityEnvironment().run(run_agent, inp)


async def test_the_next_task_takes_the_parked_worktree_and_sees_only_its_base(repo, tmp_path):
    base = commit_file(repo, ".gitignore", "*.log\n", "ignore logs")
    root = tmp_path / "worktrees"
    # Task a leaves a committed file, an ignored file and a changed tracked file.
    first = "echo a > a.txt; echo x > build.log; echo a >> README.md"
    a = await run(task_input(repo, root, "a", first, base))
    assert worktrees_left(repo) == [parked(root / RUN / "a")]

    # Task b starts from the same base: none of a's files, README.md as the base has it.
    check = "test ! -e a.txt && test ! -e build.log && ! grep -q '^a$' README.md"
    second = f"{check} && echo b > b.txt"
    b = await run(task_input(repo, root, "b", second, base))

    assert b.changed_files == ["b.txt"]
    assert git_out(repo, "rev-parse", f"{b.commit}^") == base
    assert git_out(repo, "show", f"{a.commit}:a.txt") == "a"  # a's work stays on its branch
    # b took a's worktree: a's parked folder is gone, b's is there now.
    assert worktrees_left(repo) == [parked(root / RUN / "b")]


async def test_a_claim_writes_only_the_files_that_differ(repo, tmp_path):
    # The point of parking: a repository of many files costs a task only what changed.
    for n in range(50):
        (repo / f"file{n}.txt").write_text(f"{n}\n")
    git_out(repo, "add", "-A")
    git_out(repo, "commit", "-qm", "many files")
    base = git_out(repo, "rev-parse", "HEAD")
    root, stamps = tmp_path / "worktrees", tmp_path / "stamps"
    record = f"stat -c %Y%y file7.txt | tr -d ' ' >> {stamps}"
    await run(task_input(repo, root, "a", f"{record}; echo a > a.txt", base))
    await run(task_input(repo, root, "b", f"{record}; echo b > b.txt", base))
    first, second = stamps.read_text().split()
    assert first == second  # the same file, not written again for b (a checkout would)


async def test_tasks_claiming_at_once_each_get_their_own_worktree(repo, tmp_path):
    base = git_out(repo, "rev-parse", "main")
    root = tmp_path / "worktrees"
    for task in ("p1", "p2"):
        await run(task_input(repo, root, task, f"echo {task} > {task}.txt", base))
    script = 'test -z "$(git status --porcelain)" && echo {t} > {t}.txt && sleep 0.5'
    outs = await asyncio.gather(
        *(run(task_input(repo, root, t, script.format(t=t), base)) for t in ("c1", "c2", "c3"))
    )
    assert [out.changed_files for out in outs] == [["c1.txt"], ["c2.txt"], ["c3.txt"]]
    assert sorted(worktrees_left(repo)) == sorted(
        parked(root / RUN / t) for t in ("c1", "c2", "c3")
    )


async def test_a_claim_checks_its_branch_out_under_the_worktree_lock(repo, tmp_path, monkeypatch):
    # git 2.39's checkout reads every worktree's records, which a `git worktree add` of
    # another task may have half written: "failed to read .git/worktrees/<x>/commondir".
    base = git_out(repo, "rev-parse", "main")
    root = tmp_path / "worktrees"
    await run(task_input(repo, root, "a", "echo a > a.txt", base))
    lock = repo / ".git" / repo_lock.LOCK_NAME
    checkouts = []

    async def git_noting_the_lock(*args, **kwargs):
        if args[0] == "checkout":
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                checkouts.append("unlocked")
            except BlockingIOError:
                checkouts.append("locked")
            finally:
                os.close(fd)
        return await git(*args, **kwargs)

    monkeypatch.setattr(parking, "git", git_noting_the_lock)
    out = await run(task_input(repo, root, "b", "echo b > b.txt", base))
    assert out.changed_files == ["b.txt"]
    assert checkouts == ["locked"]


async def test_a_claim_cut_short_converges_on_the_next_attempt(repo, tmp_path):
    base = git_out(repo, "rev-parse", "main")
    root = tmp_path / "worktrees"
    await run(task_input(repo, root, "a", "echo a > a.txt", base))
    # The worker died right after moving a's parked worktree to b's path: the folder is
    # b's, HEAD still on a's branch with a's files.
    b = task_input(repo, root, "b", "test ! -e a.txt && echo b > b.txt", base)
    git_out(repo, "worktree", "move", parked(root / RUN / "a"), b.worktree)

    out = await run(b)

    assert out.changed_files == ["b.txt"]
    assert git_out(repo, "rev-parse", f"{out.commit}^") == base
    assert git_out(repo, "log", "-1", "--format=%s", f"magsag/{RUN}/tasks/a").startswith("magsag")


async def test_the_runs_end_removes_its_parked_worktrees(repo, tmp_path):
    base = git_out(repo, "rev-parse", "main")
    root = tmp_path / "worktrees"
    a = await run(task_input(repo, root, "a", "echo a > a.txt; echo x > junk.o", base))
    result = RunResult(
        run_id=RUN, plan="p", status=RunStatus.SUCCEEDED, repo=str(repo), base="main",
        integration_branch=f"magsag/{RUN}/integration", tasks={},
    )  # fmt: skip
    end = RunEndRecord(
        log_dir=str(tmp_path / "logs"), repo=str(repo), run_folder=str(root / RUN), result=result
    )
    await ActivityEnvironment().run(record_run_end, end)
    await ActivityEnvironment().run(record_run_end, end)  # retried: converges
    assert worktrees_left(repo) == [] and not (root / RUN).exists()
    assert git_out(repo, "rev-parse", f"magsag/{RUN}/tasks/a") == a.commit


async def test_gc_removes_what_a_run_ended_from_outside_left_parked(repo, tmp_path):
    base = git_out(repo, "rev-parse", "main")
    root = tmp_path / "worktrees"
    a = await run(task_input(repo, root, "a", "echo a > a.txt", base))
    [found] = await janitor.find_under_root(root)
    assert (found.run_id, found.task, found.parked) == (RUN, "a", True)
    assert [item.worktree for item in await janitor.find_in_repo(str(repo))] == [found.worktree]
    assert await janitor.clean(found) is None  # nothing to save: it is all on the branch
    assert worktrees_left(repo) == []
    assert git_out(repo, "rev-parse", f"magsag/{RUN}/tasks/a") == a.commit
