"""Where a run stands, from what Temporal keeps: needs no worker.

The workflow publishes its state in its memo (contracts/run.py RUN_MEMO: the run's
header and a key per task changed in the current execution) and returns it as its
result; tasks that ended in an earlier execution, or were carried from a resumed run,
are packed in the current execution's input. A run ended from outside (cancelled,
terminated, timed out) still reads "running" there, so the execution's status says how
it ended. Runs started before that layout kept the whole state under STATUS_MEMO.
"""

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from magsag.contracts.run import (
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
    # The current execution's input; should the run continue as new meanwhile, the
    # next one's input holds what this memo shows, as it stood at the hand-over.
    run_input = await execution_input(handle)
    result = RunResult.initial(run_input)  # the plan's tasks and the packed ones
    if description.status == WorkflowExecutionStatus.COMPLETED:
        ended: RunResult = await handle.result()
        result = ended.model_copy(update={"tasks": result.tasks | ended.tasks})
    else:
        memo = await description.memo()
        if RUN_MEMO in memo:  # else the workflow has not published yet
            result = result.model_copy(update=_header(memo[RUN_MEMO]))
        for key, value in memo.items():
            if key.startswith(TASK_MEMO_PREFIX):
                task = TaskResult.model_validate(value)
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
