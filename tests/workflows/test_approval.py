"""Approval gates: a phase or task waits, durably, until a person decides."""

import pytest
from temporalio.client import WorkflowUpdateFailedError

from magsag.contracts.run import GateDecision, GateStatus, RunResult, RunStatus, TaskStatus
from magsag.history.status import run_status
from magsag.worker.assembly import running_workers
from magsag.workflows.plan import PlanWorkflow
from tests.support.poll import eventually
from tests.support.runs import bash_plan, run_input, start_run


async def _memo(handle) -> RunResult:
    return (await run_status(handle))[0]


async def _refusal(handle, update, decision: GateDecision) -> str:
    """The reason the workflow gives for refusing an update."""
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(update, decision)
    return refused.value.cause.message


async def _gate_waits(handle, gate_id: str):
    result = await _memo(handle)
    return result is not None and result.gates[gate_id].status == GateStatus.WAITING


GATED = dict(
    tasks=None,
    phases=[
        {"name": "build", "tasks": [{"name": "build", "prompt": "echo b > b.txt"}]},
        {"name": "deploy", "approval": True,
         "tasks": [{"name": "deploy", "prompt": "cat b.txt > deployed.txt"}]},
    ],
)  # fmt: skip


async def test_a_gated_phase_waits_across_a_worker_restart_until_approved(
    client, queues, repo, tmp_path
):
    inp = run_input(bash_plan(**GATED), repo, tmp_path, queues)
    async with running_workers(client, queues.host_queue, queues.task_queue):
        handle = await start_run(client, inp)
        await eventually(lambda: _gate_waits(handle, "phase:deploy"), what="the gate")
    # No worker now; the wait is in Temporal. A new worker picks the run up.
    waiting = await _memo(handle)
    assert waiting.tasks["build"].status == TaskStatus.SUCCEEDED
    assert waiting.tasks["deploy"].status == TaskStatus.PENDING
    async with running_workers(client, queues.host_queue, queues.task_queue):
        refusal = await _refusal(handle, PlanWorkflow.approve, GateDecision(phase="nope"))
        assert refusal == "this run has no approval gate phase:nope"
        gate = await handle.execute_update(PlanWorkflow.approve, GateDecision(by="alice"))
        assert (gate.id, gate.status, gate.by) == ("phase:deploy", "approved", "alice")
        result: RunResult = await handle.result()
    assert result.status == RunStatus.SUCCEEDED
    assert result.tasks["deploy"].status == TaskStatus.SUCCEEDED
    assert result.gates["phase:deploy"].by == "alice" and result.gates["phase:deploy"].at
    assert result.tasks["deploy"].started_at >= result.gates["phase:deploy"].at


async def test_a_rejected_task_is_skipped_with_its_reason_and_its_dependents(
    client, worker, repo, tmp_path
):
    plan = bash_plan(
        [
            {"name": "risky", "prompt": "echo r > r.txt", "approval": True},
            {"name": "after", "prompt": "true", "depends_on": ["risky"]},
            {"name": "safe", "prompt": "sleep 3; echo s > s.txt"},  # keeps the run open
        ]
    )
    inp = run_input(plan, repo, tmp_path, worker)
    handle = await start_run(client, inp)
    await eventually(lambda: _gate_waits(handle, "task:risky"), what="the gate")
    refusal = await _refusal(handle, PlanWorkflow.approve, GateDecision(task="after"))
    assert refusal == "this run has no approval gate task:after"
    await handle.execute_update(
        PlanWorkflow.reject, GateDecision(task="risky", by="bob", reason="too risky today")
    )
    refusal = await _refusal(handle, PlanWorkflow.approve, GateDecision(task="risky"))
    assert refusal == "task:risky was already rejected by bob"
    result: RunResult = await handle.result()
    assert result.tasks["risky"].status == TaskStatus.SKIPPED
    assert result.tasks["risky"].error == "rejected by bob: too risky today"
    assert result.tasks["after"].status == TaskStatus.SKIPPED
    assert result.tasks["safe"].status == TaskStatus.SUCCEEDED
    assert result.gates["task:risky"].reason == "too risky today"
