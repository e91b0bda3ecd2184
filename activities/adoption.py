"""Waiting for a task an earlier execution of the run started.

When the plan workflow continues as new, the tasks it runs go on: their workflows were
started with the ABANDON close policy. The next execution waits for each through this
activity, which follows the task workflow to its end and returns its TaskResult, the
one the plan workflow would have got as the child's result.
"""

import asyncio

from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory, CancelledError
from temporalio.service import RPCError, RPCStatusCode

from magsag.activities.keepalive import heartbeating
from magsag.contracts.activities import AwaitTaskInput
from magsag.contracts.failures import FailureKind
from magsag.contracts.run import TaskResult, TaskStatus


@activity.defn
@heartbeating
async def await_task(inp: AwaitTaskInput) -> TaskResult:
    handle = activity.client().get_workflow_handle(inp.workflow_id, result_type=TaskResult)
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        return _ended_unsuccessfully(inp.task, err.cause)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # The execution that started it continued as new before the server started the
        # workflow, which it then never did: the waiting execution starts the task.
        raise ApplicationError(
            f"task {inp.task} was never started",
            type=FailureKind.TASK_NOT_STARTED,
            non_retryable=True,
        ) from None
    except asyncio.CancelledError:
        details = activity.cancellation_details()
        if details is not None and details.not_found:
            # The execution that waited continued as new again; the next one waits.
            raise ApplicationError(
                "the run continued as new", category=ApplicationErrorCategory.BENIGN
            ) from None
        raise


def _ended_unsuccessfully(task: str, cause: BaseException | None) -> TaskResult:
    """A failed task workflow carries its TaskResult in the failure's details."""
    if isinstance(cause, ApplicationError) and cause.type == FailureKind.TASK_FAILED:
        if cause.details:
            return TaskResult.model_validate(cause.details[0])
    status = TaskStatus.CANCELLED if isinstance(cause, CancelledError) else TaskStatus.FAILED
    reason = " ".join(str(cause or "the task workflow ended").split())
    return TaskResult(name=task, status=status, error=reason)
