"""A run continues as new every few tasks (tiny threshold) and nothing changes for the
user: every task ends as it would in one execution, each checkpoint is merged once,
a task running across the hand-over is waited for (or cancelled) by the next
execution, status reads every task from the memos of the executions plus the packed
input, and each execution's history replays."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle

from magsag.contracts import constants as C
from magsag.contracts.run import (
    STATUS_MEMO,
    GateDecision,
    GateStatus,
    Handover,
    RunStatus,
    TaskResult,
    TaskStatus,
    Usage,
)
from magsag.contracts.task_rows import pack_all, unpack_statuses
from magsag.history import status
from magsag.history.status import execution_input, initial_state, run_status
from magsag.workflows.plan import PlanWorkflow
from tests.support.gitrepo import checkpoints_on, git_out
from tests.support.poll import eventually
from tests.support.processes import processes_named, unique_name
from tests.support.runs import bash_plan, run_input, start_run, worktrees_left
from tests.workflows.test_replay import replay_and_record


def _plan(tmp_path: Path):
    release = tmp_path / "release"
    quick = [{"name": f"q{i}", "prompt": f"echo {i} > q{i}.txt"} for i in range(1, 7)]
    return bash_plan(
        [
            # Starts first and runs until released: it spans several hand-overs.
            {"name": "slow", "priority": 9,
             "prompt": f"echo s > slow.txt; while [ ! -e {release} ]; do sleep 0.1; done"},
            *quick,
            {"name": "flaky", "prompt": '[ "$MAGSAG_ATTEMPT" = 2 ] && echo f > f.txt',
             "retries": 1},
            {"name": "left", "prompt": "echo left > README.md"},
            {"name": "right", "prompt": "sleep 1; echo right > README.md", "critical": False},
            {"name": "after-right", "prompt": "true", "depends_on": ["right"]},
            {"name": "gated", "prompt": "echo g > g.txt", "approval": True,
             "depends_on": ["q6"]},
            {"name": "last", "prompt": "cat slow.txt f.txt g.txt > last.txt",
             "depends_on": ["slow", "flaky", "gated"]},
        ],
        concurrency=2,
    ), release  # fmt: skip


async def test_a_run_that_continues_as_new_ends_as_one_execution_would(
    client, worker, repo, tmp_path, monkeypatch
):
    plan, release = _plan(tmp_path)
    inp = run_input(plan, repo, tmp_path, worker).model_copy(update={"continue_after": 3})
    handle = await start_run(client, inp)

    async def gate_waits():
        result, _ = await run_status(handle)
        return result.gates["task:gated"].status == GateStatus.WAITING

    await eventually(gate_waits, timeout=60, what="the gate to wait")
    waiting, _ = await run_status(handle)
    # Tasks that ended in earlier executions read back from the packed input.
    assert waiting.tasks["q1"].status == TaskStatus.SUCCEEDED and waiting.tasks["q1"].commit
    assert waiting.tasks["slow"].status == TaskStatus.RUNNING
    assert (await execution_input(handle)).handover.execution >= 2
    await handle.execute_update(PlanWorkflow.approve, GateDecision(by="alice"))
    release.touch()
    await handle.result()

    result, closed = await run_status(handle)
    assert closed and result.status == RunStatus.SUCCEEDED
    statuses = {name: task.status.value for name, task in result.tasks.items()}
    assert statuses == {
        **{task.name: "succeeded" for task in plan.tasks},
        "right": "conflicted", "after-right": "skipped",
    }  # fmt: skip
    assert list(result.tasks) == [task.name for task in plan.tasks]
    assert result.tasks["flaky"].attempts == 2
    assert result.tasks["right"].conflict_files == ["README.md"]
    assert result.gates["task:gated"].by == "alice"
    # Every checkpoint is on the integration branch exactly once, in the final tip.
    branch = C.integration_branch(inp.run_id)
    succeeded = [n for n, s in statuses.items() if s == "succeeded"]
    assert sorted(checkpoints_on(repo, branch)) == sorted(succeeded)
    assert result.integration_commit == git_out(repo, "rev-parse", branch)
    assert worktrees_left(repo) == []
    finished = json.loads(Path(inp.paths.log_dir, "run.jsonl").read_text().splitlines()[-1])
    assert finished["event"] == "run_finished" and finished["tasks"] == statuses

    executions = await _executions(client, inp.run_id)
    assert len(executions) >= 3
    # Each memo upsert carries the tasks that changed, never the whole table.
    for run_id in executions:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        upserts = [
            e.workflow_properties_modified_event_attributes.upserted_memo.fields
            for e in history.events
            if e.HasField("workflow_properties_modified_event_attributes")
        ]
        assert upserts and all(STATUS_MEMO not in fields for fields in upserts)
        assert max(len(fields) for fields in upserts) <= len(plan.tasks) // 2
    # Each hand-over passes the ended tasks as packed statuses, their details by
    # reference: the input names the executions before it, whose memos hold them.
    inputs = [
        await execution_input(client.get_workflow_handle(handle.id, run_id=run_id))
        for run_id in executions
    ]
    for index, handed in enumerate(inputs[1:], start=1):
        assert handed.handover.earlier_runs == executions[:index]
        assert handed.handover.done.rows == {}
    names = [task.name for task in plan.tasks]
    ended_first = set(unpack_statuses(inputs[1].handover.ended, names))
    assert ended_first and all(result.tasks[name].commit for name in ended_first)
    await replay_and_record(
        client,
        inp.run_id,
        [t.name for t in plan.tasks if t.name != "after-right"],
        executions=executions,
        folder_suffix="-continued",
    )

    # A command reading the run again and again (the live view) reads each earlier
    # execution's memo once: it never changes after the hand-over.
    described = []
    describe = WorkflowHandle.describe

    async def counted(self, *args, **kwargs):
        described.append(self.run_id)
        return await describe(self, *args, **kwargs)

    monkeypatch.setattr(WorkflowHandle, "describe", counted)
    for _ in range(3):
        assert (await run_status(handle))[0] == result
    earlier = [run_id for run_id in described if run_id in executions[:-1]]
    assert sorted(earlier) == sorted(set(earlier))
    monkeypatch.undo()
    # It keeps a bounded number of them (a standing worker reads them run after run).
    monkeypatch.setattr(status, "ENDED_KEPT", 1)
    monkeypatch.setattr(status, "_ENDED_IN", {})
    assert (await run_status(handle))[0] == result
    assert len(status._ENDED_IN) == 1
    monkeypatch.undo()

    # An execution the server has dropped (past the namespace's retention) leaves its
    # tasks with their statuses.
    whole = await initial_state(handle, inputs[-1])
    assert all(whole.tasks[name] == result.tasks[name] for name in ended_first)
    gone = inputs[-1].model_copy(deep=True)
    gone.handover.earlier_runs[0] = str(uuid.uuid4())  # no such execution
    dropped = await initial_state(handle, gone)
    for name in names:
        if name in ended_first:
            assert dropped.tasks[name].status == result.tasks[name].status
            assert dropped.tasks[name].commit is None
        else:
            assert dropped.tasks[name] == whole.tasks[name]


async def test_cancelling_a_continued_run_stops_the_task_an_earlier_execution_started(
    client, worker, repo, tmp_path
):
    name = unique_name()
    plan = bash_plan(
        [
            {"name": "held", "priority": 9,
             "prompt": f"echo w > w.txt; exec -a {name} sleep 300"},
            *[{"name": f"q{i}", "prompt": f"echo {i} > q{i}.txt"} for i in range(1, 6)],
            {"name": "never", "prompt": "true", "depends_on": ["held"]},
        ],
        concurrency=2,
    )  # fmt: skip
    inp = run_input(plan, repo, tmp_path, worker).model_copy(update={"continue_after": 2})
    handle = await start_run(client, inp)

    async def quick_ones_done():
        result, _ = await run_status(handle)
        done = [result.tasks[f"q{i}"].status == TaskStatus.SUCCEEDED for i in range(1, 6)]
        return all(done) and processes_named(name)

    await eventually(quick_ones_done, timeout=60, what="the quick tasks")
    assert "held" in (await execution_input(handle)).handover.running.rows
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    await eventually(lambda: processes_named(name) == [], timeout=15, what="the agent to die")
    result, closed = await run_status(handle)
    assert closed and result.status == RunStatus.CANCELLED
    held = result.tasks["held"]
    assert held.status == TaskStatus.CANCELLED
    assert held.commit == git_out(repo, "rev-parse", C.task_branch(inp.run_id, "held"))
    assert "w.txt" in git_out(repo, "ls-tree", "--name-only", held.commit)
    assert result.tasks["never"].status == TaskStatus.CANCELLED
    assert worktrees_left(repo) == []


async def _executions(client, run_id: str) -> list[str]:
    """Run ids of the run's executions, first to last, following the hand-overs."""
    workflow_id = C.plan_workflow_id(run_id)
    execution = (await client.get_workflow_handle(workflow_id).describe()).run_id
    run_ids = []
    while execution:
        run_ids.append(execution)
        history = await client.get_workflow_handle(workflow_id, run_id=execution).fetch_history()
        execution = history.events[0].workflow_execution_started_event_attributes
        execution = execution.continued_execution_run_id
    return list(reversed(run_ids))


async def test_a_task_handed_over_before_its_workflow_started_is_started_by_the_next_execution(
    client, worker, repo, tmp_path
):
    # Runs recorded before the hand-over waited for child starts could continue as new
    # while the server had yet to start a child, which it then never did: the next
    # execution waited for a workflow that did not exist (a 10,000-task run hung so).
    plan = bash_plan(
        [{"name": "never", "prompt": "echo n > n.txt"}, {"name": "done", "prompt": "true"}]
    )
    inp = run_input(plan, repo, tmp_path, worker)
    now = datetime.now(UTC)
    done = TaskResult(name="done", status=TaskStatus.SUCCEEDED, started_at=now, finished_at=now)
    never = TaskResult(name="never", status=TaskStatus.RUNNING, started_at=now)
    base = inp.base_commit
    git_out(repo, "update-ref", f"refs/heads/{C.integration_branch(inp.run_id)}", base)
    inp.handover = Handover(
        execution=1, started_at=now, integration_commit=base, usage=Usage(), attempts=1,
        done=pack_all([done], now), running=pack_all([never], now),
    )  # fmt: skip
    result = await (await start_run(client, inp)).result()
    assert result.status == RunStatus.SUCCEEDED
    assert result.tasks["never"].status == TaskStatus.SUCCEEDED
    assert git_out(repo, "show", f"{C.integration_branch(inp.run_id)}:n.txt") == "n"
