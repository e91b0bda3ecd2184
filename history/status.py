"""Where a run stands, from what Temporal keeps: needs no worker.

The workflow publishes its state in its memo (contracts/run.py RUN_MEMO: the run's
header and a key per task changed in the current execution) and returns it as its
result. The current execution's input packs the tasks carried from a resumed run and
the statuses of the tasks that ended in an earlier execution, whose details are in that
execution's memo (the input lists the earlier executions). A run ended from outside
(cancelled, terminated, timed out) still reads "running" there, so the execution's
status says how it ended. Runs started before that layout kept the whole state under
STATUS_MEMO.
"""

import asyncio
from collections.abc import Mapping

from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from magsag.contracts.run import (
    FINISHED_TASK_STATUSES,
    RUN_MEMO,
    STATUS_MEMO,
    TASK_MEMO_PREFIX,
    RunInput,
    RunResult,
    RunStatus,
    TaskResult,
)
from magsag.contracts.wire import data_converter

STATUS_OF_CLOSED = {
    WorkflowExecutionStatus.CANCELED: RunStatus.CANCELLED,
    WorkflowExecutionStatus.FAILED: RunStatus.FAILED,
    WorkflowExecutionStatus.TERMINATED: RunStatus.FAILED,
    WorkflowExecutionStatus.TIMED_OUT: RunStatus.FAILED,
}


def effective_status(recorded: RunStatus, execution: WorkflowExecutionStatus | None) -> RunStatus:
    """The recorded status, unless the execution ended while it said running."""
    if recorded == RunStatus.RUNNING and execution not in (None, WorkflowExecutionStatus.RUNNING):
        return STATUS_OF_CLOSED.get(execution, RunStatus.FAILED)
    return recorded


def execution_status_name(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status else "unknown"


async def run_status(handle: WorkflowHandle) -> tuple[RunResult, bool]:
    """The run's state, every task in plan order, and whether it has ended."""
    description = await handle.describe()
    closed = description.status != WorkflowExecutionStatus.RUNNING
    fields = description.raw_description.workflow_execution_info.memo.fields
    if STATUS_MEMO in fields:
        return await _whole_state(handle, description), closed
    # The input of the execution described: the memo read is that execution's.
    current = execution_handle(handle, description.run_id)
    run_input = await execution_input(current)
    result = await initial_state(current, run_input)
    if description.status == WorkflowExecutionStatus.COMPLETED:
        ended: RunResult = await handle.result()
        result = ended.model_copy(update={"tasks": result.tasks | ended.tasks})
    else:
        if RUN_MEMO in fields:  # else the workflow has not published yet
            header = await description.memo_value(RUN_MEMO)
            result = result.model_copy(update=_header(header))
        for task in _tasks_in(fields):
            result.tasks[task.name] = task
    result.status = effective_status(result.status, description.status)
    return result, closed


async def execution_input(handle: WorkflowHandle) -> RunInput:
    """The input an execution of a run started with: the first event of its history."""
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [run_input] = await data_converter.decode(payloads, [RunInput])
        return run_input
    raise LookupError(f"run {handle.id} has no history")


async def initial_state(handle: WorkflowHandle, run_input: RunInput) -> RunResult:
    """The run as the execution that started with run_input found it: every task of the
    plan, those carried from a resumed run or ended in earlier executions as they ended
    (the details of the latter from the memos of the executions they ended in)."""
    earlier = run_input.handover.earlier_runs if run_input.handover else []
    found = await asyncio.gather(*(_ended_in(execution_handle(handle, r)) for r in earlier))
    ended = {task.name: task for tasks in found for task in tasks}  # one execution each
    return RunResult.initial(run_input, ended=ended)


def execution_handle(handle: WorkflowHandle, run_id: str) -> WorkflowHandle:
    """A handle on one execution of the run's workflow."""
    # The SDK keeps a handle's client private; this is how a handle is made from one.
    return WorkflowHandle(handle._client, handle.id, run_id=run_id, result_type=RunResult)


# What an earlier execution's memo says never changes once it has continued as new: a
# command that reads a long run again and again (the live view of `run` and `watch`)
# reads and parses each such memo once. By run id, the newest ENDED_KEPT: a standing
# worker reads them too (a pull request's body), run after run.
_ENDED_IN: dict[str, list[TaskResult]] = {}
ENDED_KEPT = 32  # executions; a 10,000-task run has about 15


async def _ended_in(handle: WorkflowHandle) -> list[TaskResult]:
    """The tasks that ended in an earlier execution, from its memo; none once the
    server has dropped it (past the namespace's retention: they then read with their
    packed statuses only)."""
    if handle.run_id in _ENDED_IN:
        return _ENDED_IN[handle.run_id]
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return []
    fields = description.raw_description.workflow_execution_info.memo.fields
    ended = [task for task in _tasks_in(fields) if task.status in FINISHED_TASK_STATUSES]
    if description.status != WorkflowExecutionStatus.RUNNING:
        while len(_ENDED_IN) >= ENDED_KEPT:
            del _ENDED_IN[next(iter(_ENDED_IN))]  # the oldest
        _ENDED_IN[handle.run_id] = ended
    return ended


def _tasks_in(fields: Mapping[str, Payload]) -> list[TaskResult]:
    """The tasks of a memo: each value is a task's JSON (contracts/run.py task_memo),
    read straight into the model: a memo holds up to a thousand of them."""
    return [
        TaskResult.model_validate_json(payload.data)
        for key, payload in fields.items()
        if key.startswith(TASK_MEMO_PREFIX)
    ]


def _header(value: dict) -> dict:
    """The RUN_MEMO value as RunResult fields (its counts and execution aside)."""
    fields = RunResult.model_validate(value | {"tasks": {}})
    return {name: getattr(fields, name) for name in value if name in RunResult.model_fields}


async def _whole_state(handle: WorkflowHandle, description) -> RunResult:
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result()
    result = await description.memo_value(STATUS_MEMO, type_hint=RunResult)
    result.status = effective_status(result.status, description.status)
    return result
