"""Where a run stands, from what Temporal keeps: needs no worker.

The workflow publishes its state in its memo and returns it as its result; a run ended
from outside (cancelled, terminated, timed out) still reads "running" there, so the
execution's status says how it ended.
"""

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from magsag.contracts.run import RunResult, RunStatus
from magsag.workflows.plan import STATUS_MEMO

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
    """The run's state and whether it has ended: the result of a finished run, else the
    state the workflow keeps in its memo."""
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result(), True
    result = await description.memo_value(STATUS_MEMO, type_hint=RunResult)
    result.status = effective_status(result.status, description.status)
    return result, description.status != WorkflowExecutionStatus.RUNNING
