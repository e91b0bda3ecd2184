"""What an agent leaves in git, against real repositories: retries after a crash
converge, a new attempt starts from the base, gc saves what agents left."""

import shutil

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from magsag.activities import janitor
from magsag.activities.agent import run_agent
from magsag.activities.worktree import close_worktree, create_worktree
from magsag.contracts.activities import CloseWorktreeInput, CreateWorktreeInput
from tests.activities.test_agent import RUN, TASK, agent_input
from tests.support.gitrepo import FILE_PROTOCOL, git_out, make_repo, with_submodule, write_file
from tests.support.runs import parked, worktrees_left

BRANCH = f"magsag/{RUN}/tasks/{TASK}"


async def test_a_rerun_after_a_checkpoint_on_the_agents_commit_converges(repo, tmp_path):
    runs = tmp_path / "runs.log"
    script = f"echo run >> {runs}; date +%s%N > stamp.txt && git add -A && git commit -qm mine"
    inp = agent_input(repo, tmp_path, script)
    first = await ActivityEnvironment().run(run_agent, inp)
    second = await ActivityEnvironment().run(run_agent, inp)  # the worker died after it
    assert second.commit == first.commit and second.changed_files == ["stamp.txt"]
    assert runs.read_text().count("run") == 1
    assert git_out(repo, "log", "--format=%s", f"main..{inp.branch}").splitlines() == [
        f"magsag: {TASK}",
        "mine",
    ]


async def test_a_new_attempt_takes_back_a_worktree_left_on_another_branch(repo, tmp_path):
    switch = "git checkout -q -b side && echo x > x.txt && git add -A && git commit -qm x; exit 1"
    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(run_agent, agent_input(repo, tmp_path, switch))

    check = f'test "$(git symbolic-ref HEAD)" = refs/heads/{BRANCH} && test ! -e x.txt'
    inp = agent_input(repo, tmp_path, f"{check} && echo ok > ok.txt")
    inp.attempt = 2
    out = await ActivityEnvironment().run(run_agent, inp)
    assert out.changed_files == ["ok.txt"]
    assert git_out(repo, "rev-parse", f"{out.commit}^") == inp.base_commit
    assert git_out(repo, "show", "side:x.txt") == "x"  # the agent's branch is not deleted
    assert worktrees_left(repo) == [parked(inp.worktree)]


async def test_a_new_attempt_moves_the_branch_back_from_an_earlier_agents_commits(repo, tmp_path):
    commit = "echo x > x.txt && git add -A && git commit -qm debris; exit 1"
    first = agent_input(repo, tmp_path, commit)
    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(run_agent, first)
    shutil.rmtree(first.worktree)  # its worktree is gone; the branch still holds the commit
    assert git_out(repo, "log", "-1", "--format=%s", BRANCH) == "debris"

    inp = agent_input(repo, tmp_path, "test ! -e x.txt && echo ok > ok.txt")
    inp.attempt = 2
    out = await ActivityEnvironment().run(run_agent, inp)
    assert git_out(repo, "rev-parse", f"{out.commit}^") == inp.base_commit
    assert "x.txt" not in git_out(repo, "ls-tree", "-r", "--name-only", out.commit)


async def test_a_checkpoint_refuses_commits_that_rewrote_the_base(repo, tmp_path):
    inp = agent_input(repo, tmp_path, "echo r > r.txt && git add -A && git commit -q --amend -m r")
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(run_agent, inp)
    assert refused.value.type == "AgentGitState" and refused.value.non_retryable
    assert "rewrote the commits of the task's base" in refused.value.message
    assert refused.value.details[0]["feedback"].startswith("Your work could not be saved")
    # The worktree stays for the WIP save, which keeps everything.
    wip = await ActivityEnvironment().run(
        close_worktree,
        CloseWorktreeInput.for_task(
            str(repo), inp.worktree, RUN, TASK, "wip", base_commit=inp.base_commit
        ),
    )
    assert git_out(repo, "log", "--format=%s", wip.commit).splitlines()[:2] == [
        f"WIP: magsag: {TASK}",
        "r",
    ]


async def test_a_deleted_git_file_after_a_prune_is_registered_again(repo, tmp_path):
    base = git_out(repo, "rev-parse", "main")
    path = tmp_path / "worktrees" / RUN / TASK
    await ActivityEnvironment().run(
        create_worktree,
        CreateWorktreeInput(repo=str(repo), path=str(path), branch=BRANCH, base_commit=base),
    )
    write_file(path, "work.txt", "done\n")
    (path / ".git").unlink()  # the agent's rm -rf .git
    git_out(repo, "worktree", "prune")  # another task's create_worktree, meanwhile

    closed = await ActivityEnvironment().run(
        close_worktree,
        CloseWorktreeInput.for_task(
            str(repo), str(path), RUN, TASK, "checkpoint", base_commit=base
        ),
    )
    assert closed.changed_files == ["work.txt"]
    assert git_out(repo, "show", f"{BRANCH}:work.txt") == "done"
    assert worktrees_left(repo) == [] and not path.exists()


async def test_gc_saves_submodule_work_and_a_worktree_its_agent_switched(tmp_path):
    library = make_repo(tmp_path / "library", {"lib.txt": "lib\n"})
    repo = with_submodule(make_repo(tmp_path / "repo"), library)
    base = git_out(repo, "rev-parse", "main")
    root = tmp_path / "worktrees" / "r9"
    for task in ("inside", "switched"):
        await ActivityEnvironment().run(
            create_worktree,
            CreateWorktreeInput(
                repo=str(repo), path=str(root / task), branch=f"magsag/r9/tasks/{task}",
                base_commit=base,
            ),
        )  # fmt: skip
    git_out(root / "inside", *FILE_PROTOCOL, "submodule", "update", "--init", "-q")
    write_file(root / "inside", "sub/c.txt", "c\n")
    git_out(root / "switched", "checkout", "-q", "-b", "elsewhere")
    write_file(root / "switched", "s.txt", "s\n")

    found = sorted(await janitor.find_in_repo(str(repo)), key=lambda item: item.task)
    assert [(item.run_id, item.task) for item in found] == [("r9", "inside"), ("r9", "switched")]
    for item in found:
        assert await janitor.clean(item)

    assert git_out(repo, "show", "magsag/r9/submodules/inside/sub:c.txt") == "c"
    assert git_out(repo, "show", "magsag/r9/tasks/switched:s.txt") == "s"
    assert worktrees_left(repo) == []
