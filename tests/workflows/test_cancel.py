"""Cancelling a run reaches every agent, saves partial work, removes every worktree."""

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from magsag.contracts import constants as C
from magsag.contracts.run import TaskStatus
from magsag.history.status import run_status
from tests.support.gitrepo import git_out
from tests.support.poll import eventually
from tests.support.processes import pid_alive
from tests.support.runs import bash_plan, branch_files, run_input, start_run, worktrees_left


async def test_cancel_stops_agents_saves_wip_and_removes_worktrees(client, worker, repo, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    busy = (
        f"echo partial > partial-$MAGSAG_TASK.txt; sleep 300 & echo $! > {pids}/$MAGSAG_TASK; wait"
    )
    plan = bash_plan(
        [
            {"name": "quick", "prompt": "echo q > quick.txt", "priority": 9},
            {"name": "busy-a", "prompt": busy},
            {"name": "busy-b", "prompt": busy},
            {"name": "later", "prompt": "true", "depends_on": ["busy-a"]},
        ],
        concurrency=3,
    )
    inp = run_input(plan, repo, tmp_path, worker)
    handle = await start_run(client, inp)

    async def both_busy_and_quick_merged():
        result, _ = await run_status(handle)
        merged = result.tasks["quick"].status == TaskStatus.SUCCEEDED
        return merged and len(list(pids.iterdir())) == 2

    await eventually(both_busy_and_quick_merged, timeout=30, what="agents to be busy")
    agent_pids = {p.name: int(p.read_text()) for p in pids.iterdir()}
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)

    # Every agent process is gone (heartbeat timeout is the bound; it is much faster).
    for pid in agent_pids.values():
        await eventually(lambda pid=pid: not pid_alive(pid), timeout=C.HEARTBEAT_TIMEOUT.seconds)
    final = (await run_status(handle))[0]
    assert final.status == "cancelled"
    assert {n: t.status for n, t in final.tasks.items()} == {
        "quick": TaskStatus.SUCCEEDED,
        "busy-a": TaskStatus.CANCELLED,
        "busy-b": TaskStatus.CANCELLED,
        "later": TaskStatus.CANCELLED,
    }
    for name in ("busy-a", "busy-b"):
        branch = C.task_branch(inp.run_id, name)
        assert git_out(repo, "show", f"{branch}:partial-{name}.txt") == "partial"
        assert git_out(repo, "log", "-1", "--format=%s", branch).startswith("WIP")
        # The status says so: the WIP commit and the attempt that was cut short.
        assert final.tasks[name].commit == git_out(repo, "rev-parse", branch)
        assert final.tasks[name].attempts == 1
    assert worktrees_left(repo) == []
    assert "quick.txt" in branch_files(repo, C.integration_branch(inp.run_id))
