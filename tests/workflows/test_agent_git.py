"""Whatever an agent does to git in its worktree, its work reaches the task's result:
commits, branch switches, a detached HEAD, stashes, submodules, a deleted .git."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError

from magsag.contracts import constants as C
from magsag.contracts.run import RunStatus, TaskStatus
from magsag.history.status import run_status
from tests.support.gitrepo import git_out, make_repo, with_submodule, write_file
from tests.support.poll import eventually
from tests.support.runs import (
    bash_plan,
    branch_files,
    run_input,
    run_plan,
    start_run,
    worktrees_left,
)

INIT_SUBMODULE = "git -c protocol.file.allow=always submodule update --init -q"


def _log(repo: Path, ref: str) -> list[str]:
    return git_out(repo, "log", "--format=%s", ref).splitlines()


async def test_the_agents_own_commits_are_part_of_the_checkpoint(client, worker, repo, tmp_path):
    plan = bash_plan(
        [
            {"name": "commits", "prompt": "echo a > a.txt && git add -A && git commit -qm mine"},
            {"name": "and-more", "prompt": "echo b > b.txt && git add -A && git commit -qm b1 "
             "&& echo c > c.txt"},  # a commit, then uncommitted work on top
            {"name": "needs-a", "prompt": "test -f a.txt", "depends_on": ["commits"]},
        ],
        concurrency=2,
    )  # fmt: skip
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)

    assert result.status == RunStatus.SUCCEEDED
    assert {n: t.status for n, t in result.tasks.items()} == dict.fromkeys(
        ["commits", "and-more", "needs-a"], TaskStatus.SUCCEEDED
    )
    commits = result.tasks["commits"]
    assert commits.commit == git_out(repo, "rev-parse", C.task_branch(inp.run_id, "commits"))
    assert commits.changed_files == ["a.txt"]
    # The checkpoint sits on top of the agent's commit and carries magsag's trailers.
    assert _log(repo, commits.commit)[:2] == ["magsag: commits", "mine"]
    assert "Magsag-Task: commits" in git_out(repo, "log", "-1", "--format=%B", commits.commit)
    assert sorted(result.tasks["and-more"].changed_files) == ["b.txt", "c.txt"]
    integration = C.integration_branch(inp.run_id)
    assert {"a.txt", "b.txt", "c.txt"} <= branch_files(repo, integration)
    assert {"mine", "b1"} <= set(_log(repo, integration))
    assert worktrees_left(repo) == []


async def test_a_failed_attempts_commits_go_like_its_other_work(client, worker, repo, tmp_path):
    script = (
        'if [ "$MAGSAG_ATTEMPT" = 1 ]; then echo x > x.txt && git add -A && '
        "git commit -qm debris; exit 1; fi; test ! -e x.txt && echo ok > ok.txt"
    )
    plan = bash_plan([{"name": "flaky", "prompt": script, "retries": 1}])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)

    assert (result.tasks["flaky"].status, result.tasks["flaky"].attempts) == ("succeeded", 2)
    integration = C.integration_branch(inp.run_id)
    assert "ok.txt" in branch_files(repo, integration)
    assert "x.txt" not in branch_files(repo, integration)
    assert "debris" not in _log(repo, integration)


async def test_an_agent_that_switches_branch_or_detaches_head(client, worker, repo, tmp_path):
    plan = bash_plan(
        [
            {"name": "switches", "prompt": "git checkout -q -b other && echo b > b.txt && "
             "git add -A && git commit -qm x"},
            {"name": "detaches", "prompt": "git checkout -q --detach && echo d > d.txt && "
             "git add -A && git commit -qm d && echo e > e.txt"},
            {"name": "orphans", "prompt": "git checkout -q --orphan lost && git rm -rqf . && "
             "echo o > o.txt && git add -A && git commit -qm o", "critical": False},
        ],
        concurrency=3,
    )  # fmt: skip
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)

    tasks = result.tasks
    assert (tasks["switches"].status, tasks["detaches"].status) == ("succeeded", "succeeded")
    integration = C.integration_branch(inp.run_id)
    assert {"b.txt", "d.txt", "e.txt"} <= branch_files(repo, integration)
    # History that does not build on the task branch cannot be a checkpoint: a clear
    # failure, with everything saved as WIP on the task branch.
    orphans = tasks["orphans"]
    assert orphans.status == TaskStatus.FAILED and orphans.attempts == 1
    assert "the agent left the task branch for lost" in orphans.error
    branch = C.task_branch(inp.run_id, "orphans")
    assert orphans.commit == git_out(repo, "rev-parse", branch)
    assert _log(repo, branch)[0].startswith("WIP")
    assert git_out(repo, "show", f"{branch}:o.txt") == "o"
    assert git_out(repo, "rev-parse", f"{branch}^2") == git_out(repo, "rev-parse", "lost")
    assert "o.txt" not in branch_files(repo, integration)
    assert worktrees_left(repo) == []


async def test_an_agents_stash_is_saved_and_leaves_the_users_list(client, worker, repo, tmp_path):
    write_file(repo, "README.md", "# the user's own change\n")
    git_out(repo, "stash", "-q")  # the user's stash entry must stay, alone
    users = git_out(repo, "stash", "list", "--format=%H %gs")
    plan = bash_plan(
        [
            {"name": "stashes", "prompt": "echo s > s.txt && git stash -q -u && echo t > t.txt"},
            {"name": "stashes-detached", "prompt": "git checkout -q --detach && echo d > d.txt "
             "&& git add -A && git commit -qm d && echo u > u.txt && git stash -q -u"},
            {"name": "conflicts", "prompt": "echo one > README.md && git stash -q && "
             "echo two > README.md", "critical": False},
        ],
        concurrency=3,
    )  # fmt: skip
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)

    assert result.tasks["stashes"].status == TaskStatus.SUCCEEDED
    assert result.tasks["stashes-detached"].status == TaskStatus.SUCCEEDED
    integration = C.integration_branch(inp.run_id)
    assert {"s.txt", "t.txt", "d.txt", "u.txt"} <= branch_files(repo, integration)
    conflicts = result.tasks["conflicts"]
    assert conflicts.status == TaskStatus.FAILED
    assert "`git stash` entry" in conflicts.error and "does not merge" in conflicts.error
    branch = C.task_branch(inp.run_id, "conflicts")
    assert git_out(repo, "show", f"{branch}:README.md") == "two"  # the WIP: the worktree
    assert git_out(repo, "show", f"{branch}^2:README.md") == "one"  # ...and the stash entry
    assert git_out(repo, "stash", "list", "--format=%H %gs") == users
    assert worktrees_left(repo) == []


async def test_a_deleted_git_file_is_linked_again_and_the_work_kept(client, worker, repo, tmp_path):
    plan = bash_plan([{"name": "unlinks", "prompt": "rm -rf .git; echo e > e.txt"}])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)

    assert result.tasks["unlinks"].status == TaskStatus.SUCCEEDED
    assert result.tasks["unlinks"].changed_files == ["e.txt"]
    assert "e.txt" in branch_files(repo, C.integration_branch(inp.run_id))
    assert worktrees_left(repo) == []
    assert not (tmp_path / "worktrees" / inp.run_id).exists()  # no orphan folder either


@pytest.fixture
def repo_with_submodule(tmp_path: Path) -> Path:
    library = make_repo(tmp_path / "library", {"lib.txt": "lib\n"})
    return with_submodule(make_repo(tmp_path / "repo"), library)


async def test_worktrees_with_submodules_are_saved_and_removed(
    client, worker, repo_with_submodule, tmp_path
):
    repo = repo_with_submodule
    plan = bash_plan(
        [
            {"name": "inits", "prompt": f"{INIT_SUBMODULE} && echo top > top.txt"},
            {"name": "edits-inside", "prompt": f"{INIT_SUBMODULE} && echo c > sub/c.txt && "
             "echo side > side.txt", "critical": False},
        ],
        concurrency=2,
    )  # fmt: skip
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)

    assert result.tasks["inits"].status == TaskStatus.SUCCEEDED
    assert "top.txt" in branch_files(repo, C.integration_branch(inp.run_id))
    # Work inside the submodule belongs to its own repository: never merged, never lost.
    edits = result.tasks["edits-inside"]
    saved = f"magsag/{inp.run_id}/submodules/edits-inside/sub"
    assert edits.status == TaskStatus.FAILED and edits.attempts == 1
    assert f"inside submodule sub on branch {saved}" in edits.error
    assert git_out(repo, "show", f"{saved}:c.txt") == "c"
    wip = C.task_branch(inp.run_id, "edits-inside")
    assert edits.commit == git_out(repo, "rev-parse", wip)
    assert git_out(repo, "show", f"{wip}:side.txt") == "side"
    assert git_out(repo, "rev-parse", f"{wip}:sub") == git_out(repo, "rev-parse", saved)
    assert worktrees_left(repo) == []


async def test_cancel_saves_and_removes_a_worktree_with_submodules(
    client, worker, repo_with_submodule, tmp_path
):
    repo = repo_with_submodule
    started = tmp_path / "started"
    prompt = f"{INIT_SUBMODULE} && echo c > sub/c.txt && touch {started} && sleep 60"
    inp = run_input(bash_plan([{"name": "busy", "prompt": prompt}]), repo, tmp_path, worker)
    handle = await start_run(client, inp)
    await eventually(started.exists, timeout=30, what="the agent to start")
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    final = (await run_status(handle))[0]
    busy = final.tasks["busy"]
    assert busy.status == TaskStatus.CANCELLED and busy.attempts == 1
    assert busy.commit == git_out(repo, "rev-parse", C.task_branch(inp.run_id, "busy"))
    saved = f"magsag/{inp.run_id}/submodules/busy/sub"
    assert git_out(repo, "show", f"{saved}:c.txt") == "c"
    assert worktrees_left(repo) == []
