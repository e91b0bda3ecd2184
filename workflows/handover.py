"""Continue-as-new for long runs: what a run hands its next execution, and how that
execution takes over the tasks still running.

A plan workflow's history grows with every task, and Temporal ends an execution near
51,200 events or 50 MB. After starting `continue_after` tasks the run merges what has
finished and continues as new under the same workflow id, handing over its totals and
its tasks packed as rows (contracts/task_rows.py). Its task workflows go on (started
with the ABANDON close policy); the next execution waits for each with the await_task
activity and cancels them, when the run is cancelled, through their workflow ids.
"""

from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import activity_stubs as activities
    from magsag.contracts import constants as C
    from magsag.contracts.activities import AwaitTaskInput
    from magsag.contracts.failures import FailureKind
    from magsag.contracts.run import (
        FINISHED_TASK_STATUSES,
        Handover,
        RunInput,
        RunResult,
        TaskResult,
    )
    from magsag.contracts.task_rows import pack_all
    from magsag.contracts.wire import MAX_PAYLOAD_BYTES, size_on_the_wire

# Patch: the run continues as new only once every task it started has its workflow
# started (before: a child the server had not started yet was never started).
HANDOVER_AFTER_STARTS = "handover-after-starts"
# What the next execution's input may take of Temporal's payload limit.
PAYLOAD_BUDGET = MAX_PAYLOAD_BYTES - 128 * 1024


def next_input(inp: RunInput, result: RunResult, running: list[str], attempts: int) -> RunInput:
    """The input of the run's next execution: the same run, where it stands now."""
    earlier = inp.handover.execution + 1 if inp.handover else 1
    carried = inp.carried_names()
    # Carried tasks of a resumed run stay apart (describe tells them from the rest);
    # pending tasks are pending by default.
    done = [
        task
        for name, task in result.tasks.items()
        if task.status in FINISHED_TASK_STATUSES and name not in carried
    ]
    if inp.carried:  # a run resumed before carried_rows existed
        inp = inp.model_copy(
            update={
                "carried": {},
                "carried_rows": pack_all(inp.carried.values(), result.started_at),
            }
        )
    handed = inp.model_copy(
        update={
            "plan": inp.plan.without_summaries(),
            "handover": Handover(
                execution=earlier,
                started_at=result.started_at,
                integration_commit=result.integration_commit,
                usage=result.usage,
                attempts=attempts,
                gates=result.gates,
                done=pack_all(done, result.started_at),
                running=pack_all([result.tasks[n] for n in running], result.started_at),
            ),
        }
    )
    if size_on_the_wire(handed) > PAYLOAD_BUDGET:
        # Thousands of failures with long texts: hand over their statuses without the
        # texts (the histories of the executions they ended in and run.jsonl keep them).
        handed.handover.done = pack_all(
            [t.model_copy(update={"error": None, "conflict_files": []}) for t in done],
            result.started_at,
        )
    return handed


async def adopt(
    inp: RunInput, name: str, current: TaskResult, start: Callable[[], Awaitable[TaskResult]]
) -> TaskResult:
    """Wait for a task an earlier execution started; its result as the child's would be.
    A task whose workflow never started (runs recorded before HANDOVER_AFTER_STARTS could
    continue as new before the server started it) is started here: `start`."""
    try:
        result = await workflow.execute_activity(
            activities.await_task,
            AwaitTaskInput(task=name, workflow_id=C.task_workflow_id(inp.run_id, name)),
            task_queue=inp.host_queue,
            start_to_close_timeout=C.ADOPTED_TASK_TIMEOUT,
            heartbeat_timeout=C.HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=C.RETRY_MAX_INTERVAL),
            summary=f"await {name} (started before the run continued as new)",
        )
    except ActivityError as err:
        cause = err.cause
        if not (isinstance(cause, ApplicationError) and cause.type == FailureKind.TASK_NOT_STARTED):
            raise
        workflow.logger.warning("task %s was never started: starting it", name)
        return await start()
    return result.model_copy(
        update={
            "started_at": result.started_at or current.started_at,
            "finished_at": result.finished_at or workflow.now(),
        }
    )


async def cancel_adopted(inp: RunInput, name: str) -> None:
    """Ask a task an earlier execution started to stop; its await_task returns its end."""
    handle = workflow.get_external_workflow_handle(C.task_workflow_id(inp.run_id, name))
    try:
        await handle.cancel()
    except Exception as err:  # it ended meanwhile: await_task has its result
        workflow.logger.info("task %s was not cancelled: %s", name, err)
