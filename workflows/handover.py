"""Continue-as-new for long runs: what a run hands its next execution, and how that
execution takes over the tasks still running.

A plan workflow's history grows with every task, and Temporal ends an execution near
51,200 events or 50 MB. After starting `continue_after` tasks the run merges what has
finished and continues as new under the same workflow id, handing over its totals, the
tasks still running as rows and the ended ones as packed statuses (contracts/task_rows.py):
their details stay in the memos of the executions they ended in, which the hand-over
lists, so what it carries does not grow with the tasks done. Its task workflows go on
(started with the ABANDON close policy); the next execution waits for each with the
await_task activity and cancels them, when the run is cancelled, through their workflow
ids.
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
    from magsag.contracts.task_rows import pack_all, pack_statuses
    from magsag.contracts.wire import MAX_PAYLOAD_BYTES, size_on_the_wire

# Patch: the run continues as new only once every task it started has its workflow
# started (before: a child the server had not started yet was never started).
HANDOVER_AFTER_STARTS = "handover-after-starts"
# Patch: the next execution gets the ended tasks' statuses packed and the run ids of the
# executions before it, whose memos hold those tasks' details (before: a row for every
# ended task, so each hand-over's input grew with the run, and their sum as its square).
DONE_BY_REFERENCE = "done-by-reference"
# What the next execution's input may take of Temporal's payload limit.
PAYLOAD_BUDGET = MAX_PAYLOAD_BYTES - 128 * 1024


def next_input(
    inp: RunInput, result: RunResult, running: list[str], attempts: int, this_run: str | None
) -> RunInput:
    """The input of the run's next execution: the same run, where it stands now.
    this_run: the run id of this execution, when the ended tasks go by reference
    (DONE_BY_REFERENCE); None hands them over as rows."""
    if inp.carried:  # a run resumed before carried_rows existed
        inp = inp.model_copy(
            update={
                "carried": {},
                "carried_rows": pack_all(inp.carried.values(), result.started_at),
            }
        )
    handing = Handover(
        execution=inp.handover.execution + 1 if inp.handover else 1,
        started_at=result.started_at,
        integration_commit=result.integration_commit,
        usage=result.usage,
        attempts=attempts,
        gates=result.gates,
        done=pack_all([], result.started_at),
        running=pack_all([result.tasks[n] for n in running], result.started_at),
    )
    handed = inp.model_copy(update={"plan": inp.plan.without_summaries(), "handover": handing})
    if this_run is not None:
        _by_reference(handing, inp, result, this_run)
    else:
        _as_rows(handed, inp, result)
    return handed


def _ended(inp: RunInput, result: RunResult) -> list[TaskResult | None]:
    """Each task in plan order if it ended in this run (carried tasks of a resumed run
    stay apart: describe tells them from the rest), else None."""
    carried = inp.carried_names()
    tasks = (result.tasks[t.name] for t in inp.plan.tasks)
    return [
        t if t.status in FINISHED_TASK_STATUSES and t.name not in carried else None for t in tasks
    ]


def _by_reference(handing: Handover, inp: RunInput, result: RunResult, this_run: str) -> None:
    """The ended tasks as statuses, their details by reference: the memo of each
    execution keeps the tasks that changed in it (workflows/live_state.py), and
    history/status.py reads the memos of the executions listed here. Rows a run handed
    over before this patch are handed on as they were."""
    before = inp.handover
    if before is not None:
        handing.done = before.done
    handing.ended = pack_statuses(t.status if t else None for t in _ended(inp, result))
    handing.earlier_runs = [*(before.earlier_runs if before else []), this_run]


def _as_rows(handed: RunInput, inp: RunInput, result: RunResult) -> None:
    """Every ended task as a row in handed's hand-over (runs recorded before
    DONE_BY_REFERENCE)."""
    done = [t for t in _ended(inp, result) if t]
    handed.handover.done = pack_all(done, result.started_at)
    if size_on_the_wire(handed) > PAYLOAD_BUDGET:
        # Thousands of failures with long texts: hand over their statuses without the
        # texts (the histories of the executions they ended in and run.jsonl keep them).
        handed.handover.done = pack_all(
            [t.model_copy(update={"error": None, "conflict_files": []}) for t in done],
            result.started_at,
        )


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
